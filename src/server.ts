// HTTP interface: /metrics (text format or OpenMetrics, gzip when asked), /healthz, /readyz, a landing
// page at /, and the JSON API mounted by later features (/api/...).
//
// /metrics and /api/* each take at most --web.max-requests requests at once (503 beyond). Concurrent
// scrapes share the collection in flight (src/collectors/registry.ts). Every error answers a short
// plain message, never a stack trace.

import express, { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import { promisify } from 'util';
import * as zlib from 'zlib';
import { Exporter, maxRequestsFlag, scrapeTimeoutFlag, telemetryPathFlag } from './exporter';
import { CONTENT_TYPES, chooseEncoding, chooseFormat } from './negotiate';
import { VERSION } from './version';

const gzip = promisify(zlib.gzip);

export interface ServerOptions {
  /** Extra routes (e.g. the diagnosis API) mounted before the landing page. */
  routes?: (app: Express) => void;
  /** Runs before every route, health endpoints included (basic auth from --web.config.file). */
  guard?: RequestHandler;
  /** Headers added to every response (http_server_config.headers of --web.config.file). */
  headers?: Readonly<Record<string, string>>;
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

/** Taken off Prometheus' scrape timeout so that the answer arrives before Prometheus gives up. */
export const SCRAPE_TIMEOUT_OFFSET_SECONDS = 0.5;

/**
 * The deadline of one scrape: min(X-Prometheus-Scrape-Timeout-Seconds − offset, --scrape.timeout),
 * the offset being 0.5 s or a tenth of a short timeout; a missing or malformed header gives the flag.
 */
export function scrapeDeadline(header: string | undefined, flagSeconds: number): number {
  const h = header === undefined || !/^\d+(\.\d+)?$/.test(header.trim()) ? NaN : Number(header);
  if (!(h > 0)) return flagSeconds;
  return Math.min(flagSeconds, h - Math.min(SCRAPE_TIMEOUT_OFFSET_SECONDS, h / 10));
}

/** A bound on the requests of one kind in progress (0 = none). */
class Limit {
  private inFlight = 0;
  constructor(readonly max: number) {}
  /** Takes a slot until the response is done; false when all are taken. */
  enter(res: Response): boolean {
    if (this.max > 0 && this.inFlight >= this.max) return false;
    this.inFlight++;
    let left = false;
    res.once('close', () => {
      if (left) return;
      left = true;
      this.inFlight--;
    });
    return true;
  }
}

const tooMany = (max: number) => `Limit of concurrent requests reached (${max}), try again later.\n`;

/** An error whose message is safe to show the client, with its 4xx status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function createApp(exporter: Exporter, opts: ServerOptions = {}): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('env', 'production'); // express's own fallbacks never render stack traces
  const telemetryPath = exporter.config.get(telemetryPathFlag);
  const scrapes = new Limit(exporter.config.get(maxRequestsFlag));
  const apiRequests = new Limit(exporter.config.get(maxRequestsFlag));
  const flagTimeout = exporter.config.get(scrapeTimeoutFlag);

  if (opts.headers) {
    const headers = opts.headers;
    app.use((_req, res, next) => {
      res.set(headers);
      next();
    });
  }
  if (opts.guard) app.use(opts.guard);
  app.use((req, _res, next) => {
    try {
      decodeURIComponent(req.path);
    } catch {
      return next(new HttpError(400, 'malformed URL'));
    }
    next();
  });

  app.get(telemetryPath, async (req: Request, res: Response) => {
    if (!scrapes.enter(res)) {
      res.status(503).type('text/plain').send(tooMany(scrapes.max));
      return;
    }
    res.vary('Accept').vary('Accept-Encoding');
    try {
      const format = chooseFormat(req.headers.accept);
      const timeoutSeconds = scrapeDeadline(req.get('X-Prometheus-Scrape-Timeout-Seconds'), flagTimeout);
      const body = await exporter.metricsText({ format, timeoutSeconds });
      res.set('Content-Type', CONTENT_TYPES[format]);
      if (chooseEncoding(req.headers['accept-encoding']) === 'gzip') {
        const zipped = await gzip(body); // off the event loop, unlike gzipSync
        res.set('Content-Encoding', 'gzip').send(zipped);
      } else {
        res.send(body);
      }
    } catch (e) {
      exporter.log.error('scrape failed', { err: (e as Error).message });
      res.status(500).type('text/plain').send(`error gathering metrics: ${(e as Error).message}\n`);
    }
  });

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });

  // Ready once one collection has completed. Before that a probe joins the collection in flight (or
  // starts the one every scrape would share), counted against --web.max-requests like a scrape.
  app.get('/readyz', async (_req, res) => {
    if (exporter.registry.completedRounds === 0 && scrapes.enter(res)) {
      try {
        await exporter.registry.scrape();
      } catch {
        /* stays not ready */
      }
    }
    if (exporter.registry.completedRounds > 0) res.type('text/plain').send('ready\n');
    else res.status(503).type('text/plain').send('not ready\n');
  });

  app.use('/api', (_req, res, next) => {
    if (apiRequests.enter(res)) return next();
    res.status(503).json({ error: tooMany(apiRequests.max).trim() });
  });

  opts.routes?.(app);

  app.get('/', (_req, res) => {
    const rows = exporter.registry
      .statuses()
      .map((s) => {
        const state = !s.enabled ? 'disabled' : s.lastSuccess === undefined ? 'not scraped yet' : s.lastSuccess ? 'ok' : `failed: ${s.lastError ?? ''}`;
        const dur = s.lastDurationSeconds === undefined ? '' : `${(s.lastDurationSeconds * 1000).toFixed(1)} ms`;
        return `<tr><td>${escapeHtml(s.name)}</td><td>${escapeHtml(state)}</td><td>${dur}</td></tr>`;
      })
      .join('\n');
    res.type('html').send(`<!doctype html>
<html><head><meta charset="utf-8"><title>flowpath exporter</title></head>
<body>
<h1>flowpath ${escapeHtml(VERSION)}</h1>
<p>Why can't this single TCP flow reach line rate? Per-flow TCP_INFO, NIC, qdisc, softirq and OVS metrics.</p>
<ul>
<li><a href="${escapeHtml(telemetryPath.replace(/^\//, ''))}">Metrics</a></li>
<li><a href="healthz">Health</a> · <a href="readyz">Readiness</a></li>
<li><a href="api/flows">Flows (JSON)</a> · <a href="api/diagnosis">Diagnosis (JSON)</a></li>
</ul>
<h2>Collectors</h2>
<table border="1" cellpadding="4"><tr><th>collector</th><th>last status</th><th>last duration</th></tr>
${rows}
</table>
</body></html>
`);
  });

  app.use((_req, res) => {
    res.status(404).type('text/plain').send('not found\n');
  });
  // The last handler: a short message for every error (4xx says what was wrong, 5xx only that it failed).
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = httpStatusOf(err);
    if (status >= 500) exporter.log.error('request failed', { path: req.path, err: err instanceof Error ? err.message : String(err) });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const message = err instanceof HttpError ? err.message : status >= 500 ? 'internal error' : 'bad request';
    res.status(status).type('text/plain').send(message + '\n');
  });

  return app;
}

function httpStatusOf(err: unknown): number {
  if (err instanceof URIError) return 400;
  const s = (err as { status?: unknown; statusCode?: unknown } | null)?.status ?? (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' && s >= 400 && s < 600 ? s : 500;
}

/** Split "host:port" / ":port" / "[v6]:port" into listen arguments. */
export function parseListenAddress(addr: string): { host?: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) throw new Error(`bad listen address "${addr}" (want host:port or :port)`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`bad port in listen address "${addr}"`);
  const host = m[1] ?? (m[2] === '' ? undefined : m[2]);
  return { host, port };
}
