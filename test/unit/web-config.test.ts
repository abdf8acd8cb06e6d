// --web.config.file: the exporter-toolkit format parsed strictly, and TLS + basic auth exercised with
// real clients (curl and Node's https) against certificates made here with openssl: right and wrong
// passwords, missing auth, a client trusting another CA, client certificates required, plain HTTP to
// the TLS port, and a certificate renewed on disk while serving.

import { execFile, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as os from 'os';
import * as path from 'path';
import type { AddressInfo } from 'net';
import type { TLSSocket } from 'tls';
import bcrypt from 'bcryptjs';
import { Config } from '../../src/core/flags';
import { nullLogger } from '../../src/core/log';
import { Exporter, allFlags } from '../../src/exporter';
import { createApp } from '../../src/server';
import { main } from '../../src/cli';
import { WebConfigError, WebConfigHolder, basicAuthGuard, createHttpsServer, loadWebConfig, parseWebConfig } from '../../src/web-config';
import { FakeState, fakeDefs } from '../support/fake-collectors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-webcfg-'));
const f = (name: string) => path.join(dir, name);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, and certificates it signs (EC P-256, valid two days). */
function makeCa(name: string): void {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`);
}
function makeCert(name: string, ca: string, cn: string, ext: string): void {
  fs.writeFileSync(f(`${name}.ext`), ext + '\n');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
}

const SERVER_EXT = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth';
const CLIENT_EXT = 'subjectAltName=DNS:prometheus.example\nextendedKeyUsage=clientAuth';

beforeAll(() => {
  makeCa('ca'); // signs the server certificates
  makeCa('clientca'); // signs the accepted client certificate
  makeCa('otherca'); // trusted by no one here
  makeCert('server', 'ca', 'flowpath-1', SERVER_EXT);
  makeCert('server2', 'ca', 'flowpath-2', SERVER_EXT);
  makeCert('client', 'clientca', 'prometheus', CLIENT_EXT);
  makeCert('stranger', 'otherca', 'stranger', CLIENT_EXT);
  fs.writeFileSync(f('badkey.key'), '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const HASH = bcrypt.hashSync('s3cret', 4); // cost 4: fast to check in tests

function writeConfig(name: string, yaml: string): string {
  fs.writeFileSync(f(name), yaml);
  return f(name);
}

interface Running {
  port: number;
  state: FakeState;
  close(): Promise<void>;
}

async function serve(configFile: string): Promise<Running> {
  const state: FakeState = { okCalls: 0 };
  const defs = fakeDefs(state);
  const exporter = new Exporter(Config.from(allFlags(defs), {}), nullLogger, defs);
  const holder = new WebConfigHolder(loadWebConfig(configFile));
  const app = createApp(exporter, {
    guard: holder.current.users.size ? basicAuthGuard(holder) : undefined,
    headers: holder.current.headers,
    routes: (a) => a.get('/api/flows', (_q, r) => void r.json({ flows: [] })),
  });
  const server = holder.current.tls ? createHttpsServer(holder, app, nullLogger) : http.createServer(app);
  server.keepAliveTimeout = 1;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    state,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

interface CurlResult {
  code: number;
  status: string;
  body: string;
}

/** curl exit code, HTTP status ("000" when none) and body. */
function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '20', '-o', '-', '-w', '\n%{http_code}', ...args], { cwd: dir }, (err, stdout) => {
      const i = stdout.lastIndexOf('\n');
      resolve({ code: err ? Number((err as NodeJS.ErrnoException & { code: unknown }).code) : 0, status: stdout.slice(i + 1), body: stdout.slice(0, Math.max(0, i)) });
    });
  });
}

interface NodeResult {
  status?: number;
  headers?: http.IncomingHttpHeaders;
  body?: string;
  peerCn?: string;
  error?: string;
}

function nodeGet(port: number, p: string, opts: https.RequestOptions = {}): Promise<NodeResult> {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: p, ca: fs.readFileSync(f('ca.pem')), agent: false, timeout: 20000, ...opts }, (res) => {
      const peerCn = String((res.socket as TLSSocket).getPeerCertificate().subject?.CN ?? '');
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body, peerCn }));
      res.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
    });
    req.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
  });
}

describe('parseWebConfig', () => {
  it('reads the exporter-toolkit fields; file names are relative to the config file', () => {
    const c = parseWebConfig(
      `tls_server_config:
  cert_file: server.pem
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: /etc/ca.pem
  min_version: TLS13
  client_allowed_sans: [prometheus.example]
  curve_preferences: [X25519, CurveP256]
http_server_config:
  http2: false
  headers:
    X-Frame-Options: deny
    Strict-Transport-Security: max-age=31536000
basic_auth_users:
  alice: ${HASH}
`,
      '/srv/flowpath/web.yml',
    );
    expect(c.tls).toMatchObject({
      certFile: '/srv/flowpath/server.pem',
      keyFile: '/srv/flowpath/server.key',
      clientCaFile: '/etc/ca.pem',
      clientAuthType: 'RequireAndVerifyClientCert',
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      clientAllowedSans: ['prometheus.example'],
      ecdhCurve: 'X25519:P-256',
    });
    expect(c.headers).toEqual({ 'X-Frame-Options': 'deny', 'Strict-Transport-Security': 'max-age=31536000' });
    expect([...c.users.keys()]).toEqual(['alice']);
    expect(parseWebConfig('', 'x.yml')).toMatchObject({ tls: undefined, headers: {}, users: new Map() });
  });

  it.each([
    ['tls_server_config: {cert_file: a}', /missing key_file/],
    ['tls_server_config: {key_file: a}', /missing cert_file/],
    ['tls_server_config: {cert_file: a, key_file: b, client_auth_type: Sometimes}', /client_auth_type: invalid "Sometimes"/],
    ['tls_server_config: {cert_file: a, key_file: b, client_ca_file: c}', /client_ca_file is set but client_auth_type is NoClientCert/],
    ['tls_server_config: {cert_file: a, key_file: b, client_auth_type: RequireAndVerifyClientCert}', /needs client_ca_file/],
    ['tls_server_config: {cert_file: a, key_file: b, min_version: TLS14}', /unknown TLS version "TLS14"/],
    ['tls_server_config: {cert_file: a, key_file: b, min_version: TLS13, max_version: TLS12}', /min_version is above max_version/],
    ['tls_server_config: {cert_file: a, key_file: b, cipher_suites: [TLS_AES_128_GCM_SHA256]}', /cipher_suites is not supported/],
    ['tls_server_config: {cert_file: a, key_file: b, client_allowed_sans: [x]}', /client_allowed_sans needs/],
    ['tls_server_config: {cert_file: a, key_file: b, certfile: c}', /unknown field "certfile"/],
    ['basic_auth_users: {alice: plaintext}', /basic_auth_users.alice: not a bcrypt hash/],
    ['http_server_config: {headers: {X-Powered-By: me}}', /"X-Powered-By" cannot be set/],
    ['http_server_config: {headers: {X-Frame-Options: allow}}', /is not deny or sameorigin/],
    ['rate_limit: {interval: 1s, burst: 2}', /rate_limit is not supported/],
    ['tls_config: {}', /unknown field "tls_config"/],
    ['- a list', /must be a mapping/],
    ['a: [unclosed', /not valid YAML/],
  ])('refuses %s', (yaml, why) => {
    expect(() => parseWebConfig(yaml, '/x/web.yml')).toThrow(WebConfigError);
    expect(() => parseWebConfig(yaml, '/x/web.yml')).toThrow(why);
  });

  it('loadWebConfig fails on unreadable or mismatched TLS files', () => {
    expect(() => loadWebConfig(f('none.yml'))).toThrow(/cannot read .*none.yml: ENOENT/);
    expect(() => loadWebConfig(writeConfig('missing.yml', 'tls_server_config: {cert_file: nope.pem, key_file: server.key}'))).toThrow(/cannot read cert_file .*nope.pem/);
    expect(() => loadWebConfig(writeConfig('bad.yml', 'tls_server_config: {cert_file: server.pem, key_file: badkey.key}'))).toThrow(/tls_server_config: /);
    expect(() => loadWebConfig(writeConfig('mismatch.yml', 'tls_server_config: {cert_file: server.pem, key_file: server2.key}'))).toThrow(/tls_server_config: /);
  });
});

describe('flowpath --web.config.file', () => {
  it('an invalid config exits 2 with a one-line reason', async () => {
    const err: string[] = [];
    const code = await main(['--web.config.file', writeConfig('invalid.yml', 'basic_auth_users: {bob: hunter2}')], { stdout: () => undefined, stderr: (s) => err.push(s) });
    expect(code).toBe(2);
    expect(err.join('')).toMatch(/^flowpath: --web\.config\.file: basic_auth_users\.bob: not a bcrypt hash .*\n$/);
    expect(err.join('').split('\n')).toHaveLength(2);
  });

  it('--help names the flag', async () => {
    const out: string[] = [];
    await main(['--help'], { stdout: (s) => out.push(s), stderr: () => undefined });
    expect(out.join('')).toMatch(/--web\.config\.file=<file>/);
  });
});

describe('TLS and basic auth with real clients', () => {
  jest.setTimeout(60000);

  it('basic auth over TLS: right password 200, wrong or missing 401 with WWW-Authenticate, on every path', async () => {
    const srv = await serve(
      writeConfig('auth.yml', `tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\nbasic_auth_users:\n  alice: ${HASH}\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n`),
    );
    try {
      const url = (p: string) => `https://127.0.0.1:${srv.port}${p}`;
      const ok = await curl(['--cacert', 'ca.pem', '-u', 'alice:s3cret', url('/metrics')]);
      expect([ok.code, ok.status]).toEqual([0, '200']);
      expect(ok.body).toContain('flowpath_fake_events_total 42');
      for (const p of ['/metrics', '/api/flows', '/healthz', '/readyz', '/']) {
        const wrong = await curl(['--cacert', 'ca.pem', '-u', 'alice:wrong', url(p)]);
        expect([p, wrong.status]).toEqual([p, '401']);
        const unknown = await curl(['--cacert', 'ca.pem', '-u', 'mallory:s3cret', url(p)]);
        expect([p, unknown.status]).toEqual([p, '401']);
        const none = await nodeGet(srv.port, p);
        expect([p, none.status]).toEqual([p, 401]);
        expect(none.headers?.['www-authenticate']).toMatch(/^Basic realm="flowpath"/);
        expect(none.body).not.toContain('flowpath_');
      }
      const node = await nodeGet(srv.port, '/api/flows', { auth: 'alice:s3cret' });
      expect([node.status, node.body]).toEqual([200, '{"flows":[]}']);
      expect(node.headers?.['x-content-type-options']).toBe('nosniff');
      // malformed Authorization headers
      for (const h of ['Basic', 'Basic !!!', 'Bearer abc', `Basic ${Buffer.from('alice').toString('base64')}`]) {
        expect((await nodeGet(srv.port, '/metrics', { headers: { Authorization: h } })).status).toBe(401);
      }
      expect(srv.state.okCalls).toBe(1); // only the authenticated scrape collected
    } finally {
      await srv.close();
    }
  });

  it('a client that trusts another CA refuses the server; plain HTTP to the TLS port gets no data', async () => {
    const srv = await serve(writeConfig('tls.yml', 'tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n'));
    try {
      const wrongCa = await curl(['--cacert', 'otherca.pem', `https://127.0.0.1:${srv.port}/metrics`]);
      expect(wrongCa.code).toBe(60); // peer certificate cannot be authenticated with given CA certificates
      const node = await nodeGet(srv.port, '/metrics', { ca: fs.readFileSync(f('otherca.pem')) });
      expect(node.error).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
      const plain = await curl([`http://127.0.0.1:${srv.port}/metrics`]);
      expect(plain.code).not.toBe(0);
      expect(plain.body).not.toContain('flowpath_');
      const plainNode = await new Promise<string>((resolve) => {
        http.get({ host: '127.0.0.1', port: srv.port, path: '/metrics', agent: false }, (res) => resolve(`status ${res.statusCode}`)).on('error', (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message));
      });
      expect(plainNode).toMatch(/ECONNRESET|socket hang up|HPE_/);
      const good = await curl(['--cacert', 'ca.pem', `https://127.0.0.1:${srv.port}/metrics`]);
      expect([good.code, good.status]).toEqual([0, '200']);
    } finally {
      await srv.close();
    }
  });

  it('RequireAndVerifyClientCert: no client certificate or one from another CA is refused; the right one is served', async () => {
    const srv = await serve(
      writeConfig('mtls.yml', 'tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clientca.pem\n'),
    );
    try {
      const url = `https://127.0.0.1:${srv.port}/metrics`;
      const none = await curl(['--cacert', 'ca.pem', url]);
      expect(none.code).not.toBe(0);
      expect(none.body).not.toContain('flowpath_');
      const stranger = await curl(['--cacert', 'ca.pem', '--cert', 'stranger.pem', '--key', 'stranger.key', url]);
      expect(stranger.code).not.toBe(0);
      const good = await curl(['--cacert', 'ca.pem', '--cert', 'client.pem', '--key', 'client.key', url]);
      expect([good.code, good.status]).toEqual([0, '200']);
      expect((await nodeGet(srv.port, '/metrics')).error).toBeDefined();
      expect((await nodeGet(srv.port, '/metrics', { cert: fs.readFileSync(f('stranger.pem')), key: fs.readFileSync(f('stranger.key')) })).error).toBeDefined();
      const node = await nodeGet(srv.port, '/metrics', { cert: fs.readFileSync(f('client.pem')), key: fs.readFileSync(f('client.key')) });
      expect(node.status).toBe(200);
    } finally {
      await srv.close();
    }
  });

  it('RequireAnyClientCert with client_allowed_sans: a certificate is required and its SAN must be listed', async () => {
    const srv = await serve(
      writeConfig('sans.yml', 'tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [prometheus.example]\n'),
    );
    try {
      const url = `https://127.0.0.1:${srv.port}/metrics`;
      expect((await curl(['--cacert', 'ca.pem', url])).code).not.toBe(0);
      const good = await curl(['--cacert', 'ca.pem', '--cert', 'client.pem', '--key', 'client.key', url]);
      expect([good.code, good.status]).toEqual([0, '200']);
      // any CA is fine under RequireAnyClientCert, but this SAN is the same: allowed
      expect((await curl(['--cacert', 'ca.pem', '--cert', 'stranger.pem', '--key', 'stranger.key', url])).status).toBe('200');
      // the server's own certificate as a client certificate has other SANs: refused
      expect((await curl(['--cacert', 'ca.pem', '--cert', 'server.pem', '--key', 'server.key', url])).code).not.toBe(0);
    } finally {
      await srv.close();
    }
  });

  it('min_version TLS13 refuses a TLS 1.2 client', async () => {
    const srv = await serve(writeConfig('tls13.yml', 'tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  min_version: TLS13\n'));
    try {
      const url = `https://127.0.0.1:${srv.port}/metrics`;
      expect((await curl(['--cacert', 'ca.pem', '--tls-max', '1.2', url])).code).toBe(35); // handshake failed
      expect((await curl(['--cacert', 'ca.pem', '--tlsv1.3', url])).status).toBe('200');
    } finally {
      await srv.close();
    }
  });

  it('a certificate renewed on disk is served from the next connection on; a broken one keeps the old', async () => {
    fs.copyFileSync(f('server.pem'), f('live.pem'));
    fs.copyFileSync(f('server.key'), f('live.key'));
    const srv = await serve(writeConfig('reload.yml', 'tls_server_config:\n  cert_file: live.pem\n  key_file: live.key\n'));
    try {
      expect((await nodeGet(srv.port, '/healthz')).peerCn).toBe('flowpath-1');
      // a half-written renewal (new certificate, old key) is refused: the old pair is kept
      fs.copyFileSync(f('server2.pem'), f('live.pem'));
      expect((await nodeGet(srv.port, '/healthz')).peerCn).toBe('flowpath-1');
      fs.copyFileSync(f('server2.key'), f('live.key'));
      expect((await nodeGet(srv.port, '/healthz')).peerCn).toBe('flowpath-2');
      const c = await curl(['--cacert', 'ca.pem', `https://127.0.0.1:${srv.port}/healthz`]);
      expect([c.code, c.body]).toEqual([0, 'ok\n']);
    } finally {
      await srv.close();
    }
  });
});
