// HTTP interface: /metrics (text exposition, gzip when asked), /healthz, /readyz, a landing page at /,
// and the JSON API mounted by later features (/api/...).

import express, { Express, Request, Response } from 'express';
import * as zlib from 'zlib';
import { Exporter, maxRequestsFlag, telemetryPathFlag } from './exporter';
import { mountLandingPage } from './web/landing';

export interface ServerOptions {
  /** Extra routes (e.g. the diagnosis API) mounted before the landing page. */
  routes?: (app: Express) => void;
}

export function createApp(exporter: Exporter, opts: ServerOptions = {}): Express {
  const app = express();
  app.disable('x-powered-by');
  const telemetryPath = exporter.config.get(telemetryPathFlag);
  const maxRequests = exporter.config.get(maxRequestsFlag);
  let inFlight = 0;
  let ready = false;

  app.get(telemetryPath, async (req: Request, res: Response) => {
    if (maxRequests > 0 && inFlight >= maxRequests) {
      res.status(503).type('text/plain').send(`Limit of concurrent requests reached (${maxRequests}), try again later.\n`);
      return;
    }
    inFlight++;
    try {
      const body = await exporter.metricsText();
      ready = true;
      res.set('Content-Type', 'text/plain; version=0.0.4; charset=utf-8');
      if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
        res.set('Content-Encoding', 'gzip');
        res.send(zlib.gzipSync(body));
      } else {
        res.send(body);
      }
    } catch (e) {
      exporter.log.error('scrape failed', { err: (e as Error).message });
      res.status(500).type('text/plain').send(`error gathering metrics: ${(e as Error).message}\n`);
    } finally {
      inFlight--;
    }
  });

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });

  // Ready once the collectors are built and one scrape has run (or the landing page asked for status).
  app.get('/readyz', async (_req, res) => {
    if (!ready) {
      try {
        await exporter.metricsText();
        ready = true;
      } catch {
        /* stays not ready */
      }
    }
    if (ready) res.type('text/plain').send('ready\n');
    else res.status(503).type('text/plain').send('not ready\n');
  });

  opts.routes?.(app);

  mountLandingPage(app, exporter);

  return app;
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
