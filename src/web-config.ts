// --web.config.file: TLS and basic authentication in the web configuration format the Prometheus
// exporters share (exporter-toolkit): tls_server_config, http_server_config.headers, basic_auth_users.
//
// - TLS through Node's https server. The certificate, key and client CA are re-read when their files
//   (or the config file) change: each new connection checks their modification times first, so a
//   renewed certificate is served from the next connection on without a restart.
// - client_auth_type maps Go's policies onto Node's requestCert/rejectUnauthorized; the policies
//   TLS alone cannot express (a certificate required but not verified, verified only when given,
//   client_allowed_sans) are checked when the handshake completes, before any request is read.
// - basic_auth_users: bcrypt hashes (bcryptjs, asynchronous so a check never blocks the event loop).
//   A successful check is cached (by a hash of user, password and bcrypt hash), as exporter-toolkit
//   does, so a scrape costs one bcrypt only the first time. An unknown user is checked against a
//   dummy hash so that answers take as long as for a known one.
// - Applies to every path: /metrics, /api/*, /healthz, /readyz and /.
//
// Not supported (the config is refused with a one-line reason): cipher_suites (Go suite names),
// rate_limit (use --web.max-requests). http_server_config.http2 is accepted; the server speaks HTTP/1.1.

import bcrypt from 'bcryptjs';
import { createHash } from 'crypto';
import * as fs from 'fs';
import type * as http from 'http';
import * as https from 'https';
import * as path from 'path';
import type { RequestHandler } from 'express';
import * as tls from 'tls';
import type { SecureContextOptions, TLSSocket } from 'tls';
import { parse as parseYaml } from 'yaml';
import type { Logger } from './core/log';

export class WebConfigError extends Error {}

const CLIENT_AUTH_TYPES = ['NoClientCert', 'RequestClientCert', 'RequireAnyClientCert', 'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert'] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

const TLS_VERSIONS: Record<string, 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'> = {
  TLS10: 'TLSv1',
  TLS11: 'TLSv1.1',
  TLS12: 'TLSv1.2',
  TLS13: 'TLSv1.3',
};
const CURVES: Record<string, string> = { CurveP256: 'P-256', CurveP384: 'P-384', CurveP521: 'P-521', X25519: 'X25519' };
const HEADERS = ['Content-Security-Policy', 'X-Frame-Options', 'X-Content-Type-Options', 'X-XSS-Protection', 'Strict-Transport-Security'];
const BCRYPT_RE = /^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$/;

export interface TlsConfig {
  certFile?: string;
  keyFile?: string;
  clientCaFile?: string;
  cert?: string;
  key?: string;
  clientCa?: string;
  clientAuthType: ClientAuthType;
  clientAllowedSans: string[];
  minVersion: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  maxVersion: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  honorCipherOrder: boolean;
  ecdhCurve?: string;
}

export interface WebConfig {
  file: string;
  tls?: TlsConfig;
  headers: Record<string, string>;
  /** user → bcrypt hash; empty: no authentication. */
  users: Map<string, string>;
}

type Obj = Record<string, unknown>;

function object(v: unknown, where: string): Obj {
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new WebConfigError(`${where} must be a mapping`);
  return v as Obj;
}

function onlyKeys(o: Obj, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new WebConfigError(`${where}: unknown field "${k}"`);
}

function str(o: Obj, k: string, where: string): string | undefined {
  const v = o[k];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new WebConfigError(`${where}.${k} must be a string`);
  return v;
}

function strList(o: Obj, k: string, where: string): string[] {
  const v = o[k];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new WebConfigError(`${where}.${k} must be a list of strings`);
  return v as string[];
}

/** Parse and check a web config; relative file names are relative to the config file's directory. */
export function parseWebConfig(text: string, file: string): WebConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new WebConfigError(`not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const top = object(doc, 'the file');
  onlyKeys(top, ['tls_server_config', 'http_server_config', 'basic_auth_users', 'rate_limit'], 'the file');
  if (top.rate_limit !== undefined && top.rate_limit !== null) throw new WebConfigError('rate_limit is not supported by flowpath (use --web.max-requests)');
  const dir = path.dirname(path.resolve(file));
  const rel = (f: string | undefined) => (f === undefined ? undefined : path.resolve(dir, f));

  let tls: TlsConfig | undefined;
  if (top.tls_server_config !== undefined && top.tls_server_config !== null) {
    const w = 'tls_server_config';
    const t = object(top.tls_server_config, w);
    onlyKeys(t, ['cert', 'key', 'client_ca', 'cert_file', 'key_file', 'client_ca_file', 'client_auth_type', 'client_allowed_sans', 'min_version', 'max_version', 'cipher_suites', 'prefer_server_cipher_suites', 'curve_preferences'], w);
    const cfg: TlsConfig = {
      certFile: rel(str(t, 'cert_file', w)),
      keyFile: rel(str(t, 'key_file', w)),
      clientCaFile: rel(str(t, 'client_ca_file', w)),
      cert: str(t, 'cert', w),
      key: str(t, 'key', w),
      clientCa: str(t, 'client_ca', w),
      clientAuthType: 'NoClientCert',
      clientAllowedSans: strList(t, 'client_allowed_sans', w),
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
      honorCipherOrder: true,
    };
    if (cfg.cert !== undefined && cfg.certFile !== undefined) throw new WebConfigError(`${w}: give cert or cert_file, not both`);
    if (cfg.key !== undefined && cfg.keyFile !== undefined) throw new WebConfigError(`${w}: give key or key_file, not both`);
    if (cfg.clientCa !== undefined && cfg.clientCaFile !== undefined) throw new WebConfigError(`${w}: give client_ca or client_ca_file, not both`);
    if (cfg.cert === undefined && cfg.certFile === undefined) throw new WebConfigError(`${w}: missing cert_file`);
    if (cfg.key === undefined && cfg.keyFile === undefined) throw new WebConfigError(`${w}: missing key_file`);
    const auth = str(t, 'client_auth_type', w);
    if (auth !== undefined) {
      if (!(CLIENT_AUTH_TYPES as readonly string[]).includes(auth)) throw new WebConfigError(`${w}.client_auth_type: invalid "${auth}" (one of ${CLIENT_AUTH_TYPES.join(', ')})`);
      cfg.clientAuthType = auth as ClientAuthType;
    }
    const hasCa = cfg.clientCa !== undefined || cfg.clientCaFile !== undefined;
    if (hasCa && cfg.clientAuthType === 'NoClientCert') throw new WebConfigError(`${w}: client_ca_file is set but client_auth_type is NoClientCert`);
    if (!hasCa && (cfg.clientAuthType === 'RequireAndVerifyClientCert' || cfg.clientAuthType === 'VerifyClientCertIfGiven')) {
      throw new WebConfigError(`${w}: client_auth_type ${cfg.clientAuthType} needs client_ca_file`);
    }
    if (cfg.clientAllowedSans.length && cfg.clientAuthType !== 'RequireAnyClientCert' && cfg.clientAuthType !== 'RequireAndVerifyClientCert') {
      throw new WebConfigError(`${w}: client_allowed_sans needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert`);
    }
    for (const [k, field] of [['min_version', 'minVersion'], ['max_version', 'maxVersion']] as const) {
      const v = str(t, k, w);
      if (v === undefined) continue;
      if (!TLS_VERSIONS[v]) throw new WebConfigError(`${w}.${k}: unknown TLS version "${v}" (TLS10, TLS11, TLS12, TLS13)`);
      cfg[field] = TLS_VERSIONS[v];
    }
    if (Number(cfg.minVersion.replace('TLSv', '')) > Number(cfg.maxVersion.replace('TLSv', ''))) throw new WebConfigError(`${w}: min_version is above max_version`);
    if (strList(t, 'cipher_suites', w).length) throw new WebConfigError(`${w}.cipher_suites is not supported by flowpath (Node.js picks the suites of the TLS version)`);
    if (t.prefer_server_cipher_suites !== undefined) {
      if (typeof t.prefer_server_cipher_suites !== 'boolean') throw new WebConfigError(`${w}.prefer_server_cipher_suites must be true or false`);
      cfg.honorCipherOrder = t.prefer_server_cipher_suites;
    }
    const curves = strList(t, 'curve_preferences', w);
    for (const c of curves) if (!CURVES[c]) throw new WebConfigError(`${w}.curve_preferences: unknown curve "${c}" (${Object.keys(CURVES).join(', ')})`);
    if (curves.length) cfg.ecdhCurve = curves.map((c) => CURVES[c]).join(':');
    tls = cfg;
  }

  const h = object(top.http_server_config, 'http_server_config');
  onlyKeys(h, ['http2', 'headers'], 'http_server_config');
  if (h.http2 !== undefined && typeof h.http2 !== 'boolean') throw new WebConfigError('http_server_config.http2 must be true or false');
  const headers: Record<string, string> = {};
  const hh = object(h.headers, 'http_server_config.headers');
  for (const [k, v] of Object.entries(hh)) {
    const name = HEADERS.find((x) => x.toLowerCase() === k.toLowerCase());
    if (!name) throw new WebConfigError(`http_server_config.headers: "${k}" cannot be set (${HEADERS.join(', ')})`);
    if (typeof v !== 'string') throw new WebConfigError(`http_server_config.headers.${k} must be a string`);
    if (name === 'X-Frame-Options' && !/^(deny|sameorigin)$/i.test(v)) throw new WebConfigError(`http_server_config.headers.X-Frame-Options: "${v}" is not deny or sameorigin`);
    if (name === 'X-Content-Type-Options' && !/^nosniff$/i.test(v)) throw new WebConfigError(`http_server_config.headers.X-Content-Type-Options: "${v}" is not nosniff`);
    if (v !== '') headers[name] = v;
  }

  const users = new Map<string, string>();
  for (const [u, hash] of Object.entries(object(top.basic_auth_users, 'basic_auth_users'))) {
    if (typeof hash !== 'string' || !BCRYPT_RE.test(hash)) throw new WebConfigError(`basic_auth_users.${u}: not a bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\\n')`);
    if (u.includes(':')) throw new WebConfigError(`basic_auth_users: user name "${u}" contains ":"`);
    users.set(u, hash);
  }
  return { file, tls, headers, users };
}

/** Read, parse and check the file, and load the TLS material once (so a bad key fails at start). */
export function loadWebConfig(file: string): WebConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new WebConfigError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const cfg = parseWebConfig(text, file);
  if (cfg.tls) secureContextOptions(cfg.tls);
  return cfg;
}

function readPem(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new WebConfigError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The secure-context part of the TLS options (what a certificate reload replaces). */
export function secureContextOptions(t: TlsConfig): SecureContextOptions {
  const opts: SecureContextOptions = {
    cert: t.cert ?? readPem(t.certFile as string, 'cert_file'),
    key: t.key ?? readPem(t.keyFile as string, 'key_file'),
    minVersion: t.minVersion,
    maxVersion: t.maxVersion,
    honorCipherOrder: t.honorCipherOrder,
  };
  const ca = t.clientCa ?? (t.clientCaFile === undefined ? undefined : readPem(t.clientCaFile, 'client_ca_file'));
  if (ca !== undefined) opts.ca = ca;
  if (t.ecdhCurve) opts.ecdhCurve = t.ecdhCurve;
  try {
    // Builds the context: a key that does not match the certificate, or garbage PEM, fails here.
    tls.createSecureContext(opts);
  } catch (e) {
    throw new WebConfigError(`tls_server_config: ${(e as Error).message}`);
  }
  return opts;
}

/** Why a completed handshake must be refused under the client auth policy, or null. */
export function clientCertProblem(t: TlsConfig, sock: TLSSocket): string | null {
  const peer = sock.getPeerCertificate();
  const given = peer !== null && peer !== undefined && Object.keys(peer).length > 0;
  const needs = t.clientAuthType === 'RequireAnyClientCert' || t.clientAuthType === 'RequireAndVerifyClientCert';
  if (needs && !given) return 'no client certificate';
  if (given && (t.clientAuthType === 'VerifyClientCertIfGiven' || t.clientAuthType === 'RequireAndVerifyClientCert') && !sock.authorized) {
    return `client certificate not verified: ${String(sock.authorizationError)}`;
  }
  if (t.clientAllowedSans.length) {
    const sans = (peer.subjectaltname ?? '').split(/,\s*/).map((s) => s.replace(/^(DNS|IP Address|email|URI):/, ''));
    if (!t.clientAllowedSans.some((a) => sans.includes(a))) return 'client certificate SAN not allowed';
  }
  return null;
}

/**
 * An https server for the app with the config's TLS settings. Each new connection first checks the
 * modification times of the config and TLS files and, when one changed, loads the new certificate
 * (a file caught half-written is logged and the previous certificate kept).
 */
export function createHttpsServer(web: WebConfigHolder, app: http.RequestListener, log: Logger): https.Server {
  const t = web.current.tls as TlsConfig;
  const policy = t.clientAuthType;
  const server = https.createServer(
    {
      ...secureContextOptions(t),
      requestCert: policy !== 'NoClientCert',
      rejectUnauthorized: policy === 'RequireAndVerifyClientCert',
    },
    app,
  );
  server.prependListener('connection', () => {
    if (!web.refresh(log)) return;
    const now = web.current.tls;
    if (!now) return log.warn('web config: TLS cannot be turned off without a restart; keeping the old certificate');
    try {
      server.setSecureContext(secureContextOptions(now));
      log.info('web config: TLS certificate reloaded', { file: web.current.file });
    } catch (e) {
      log.error('web config: cannot load the new TLS certificate; keeping the old one', { err: (e as Error).message });
    }
  });
  server.prependListener('secureConnection', (sock: TLSSocket) => {
    const problem = web.current.tls ? clientCertProblem(web.current.tls, sock) : null;
    if (problem) {
      log.debug('TLS connection refused', { reason: problem, remote: sock.remoteAddress });
      sock.destroy();
    }
  });
  return server;
}

/** The config in force, re-loaded when the config file or one of its TLS files changes. */
export class WebConfigHolder {
  private stamp: string;
  constructor(public current: WebConfig) {
    this.stamp = this.mtimes();
  }

  private mtimes(): string {
    const t = this.current.tls;
    return [this.current.file, t?.certFile, t?.keyFile, t?.clientCaFile]
      .map((f) => {
        if (f === undefined) return '';
        try {
          const st = fs.statSync(f);
          return `${st.mtimeMs}/${st.size}/${st.ino}`;
        } catch {
          return 'missing';
        }
      })
      .join('|');
  }

  /** Re-load when a file changed; true when the config in force changed. */
  refresh(log: Logger): boolean {
    const stamp = this.mtimes();
    if (stamp === this.stamp) return false;
    this.stamp = stamp;
    try {
      this.current = loadWebConfig(this.current.file);
      return true;
    } catch (e) {
      log.error('web config: reload failed; keeping the previous one', { err: (e as Error).message });
      return false;
    }
  }
}

/** A valid hash of a random password: unknown users are checked against it, so they cost as much. */
const DUMMY_HASH = '$2b$10$.oXkol4tAQyYlwzFmsXjY.WiToOptwpj5a2syKz4lXOVEzVU2ejMu';
const CACHE_MAX = 100;

/** Express middleware enforcing basic_auth_users (none configured: everything passes). */
export function basicAuthGuard(web: WebConfigHolder): RequestHandler {
  const ok = new Set<string>();
  const deny = (res: Parameters<RequestHandler>[1]) =>
    res.status(401).set('WWW-Authenticate', 'Basic realm="flowpath", charset="UTF-8"').type('text/plain').send('Unauthorized\n');
  return (req, res, next) => {
    const users = web.current.users;
    if (users.size === 0) return next();
    const m = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(req.headers.authorization ?? '');
    if (!m) return void deny(res);
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return void deny(res);
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const hash = users.get(user);
    const key = createHash('sha256').update(`${user}\0${password}\0${hash ?? ''}`).digest('base64');
    if (hash !== undefined && ok.has(key)) return next();
    bcrypt.compare(password, hash ?? DUMMY_HASH).then(
      (good) => {
        if (!good || hash === undefined) return void deny(res);
        if (ok.size >= CACHE_MAX) ok.delete(ok.values().next().value as string);
        ok.add(key);
        next();
      },
      (e: unknown) => next(e),
    );
  };
}
