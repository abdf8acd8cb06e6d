import request from 'supertest';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as zlib from 'zlib';
import { Config } from '../../src/core/flags';
import { nullLogger } from '../../src/core/log';
import { Exporter, allFlags } from '../../src/exporter';
import { ServerOptions, createApp, parseListenAddress, scrapeDeadline } from '../../src/server';
import { FakeState, fakeDefs } from '../support/fake-collectors';
import { promtoolProblems } from '../support/promtool';
import { parseOpenMetrics } from '../support/openmetrics';

function setup(overrides: Record<string, string | boolean> = {}, opts: ServerOptions = {}) {
  const state: FakeState = { okCalls: 0 };
  const defs = fakeDefs(state);
  const exporter = new Exporter(Config.from(allFlags(defs), overrides), nullLogger, defs);
  return { state, exporter, app: createApp(exporter, opts) };
}

/** GET on a real listening server (raw node client: no automatic decompression, exact headers). */
async function rawGet(app: ReturnType<typeof createApp>, path: string, headers: Record<string, string> = {}) {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const port = (server.address() as AddressInfo).port;
    return await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        })
        .on('error', reject);
    });
  } finally {
    server.close();
  }
}

describe('HTTP server', () => {
  it('serves /metrics in the text format with collector status, build info and process metrics', async () => {
    const { app } = setup();
    const res = await request(app).get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0.0.4/);
    expect(res.text).toContain('flowpath_fake_value{device="eth0"} 1');
    expect(res.text).toMatch(/flowpath_build_info\{version="0\.1\.0",nodejs_version="[\d.]+"\} 1/);
    expect(res.text).toContain('flowpath_scrape_collector_success{collector="fakeok"} 1');
    // prom-client's default metrics, in the same response
    for (const f of ['process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_space_size_used_bytes{space=', '# TYPE nodejs_gc_duration_seconds histogram'])
      expect(res.text).toContain(`\n${f}`);
    expect(promtoolProblems(res.text)).toEqual([]);
  });

  it('serves OpenMetrics when the Accept header asks for it: # EOF, counters per the OpenMetrics rules, UNIT lines', async () => {
    const { app } = setup();
    // what Prometheus 2.x sends by default
    const accept = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
    const res = await request(app).get('/metrics').set('Accept', accept).expect(200);
    expect(res.headers['content-type']).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    expect(res.text.endsWith('\n# EOF\n')).toBe(true);
    expect(res.text.match(/# EOF/g)).toHaveLength(1);
    expect(res.text).toContain('# TYPE flowpath_fake_events counter\nflowpath_fake_events_total 42\n');
    expect(res.text).toContain('# TYPE flowpath_scrape_collector_duration_seconds gauge\n# UNIT flowpath_scrape_collector_duration_seconds seconds\n');
    const fams = new Map(parseOpenMetrics(res.text).map((f) => [f.name, f]));
    expect(fams.get('flowpath_fake_events')).toMatchObject({ type: 'counter', samples: [{ name: 'flowpath_fake_events_total', value: 42 }] });
    expect(fams.get('flowpath_scrape_collector_duration_seconds')?.unit).toBe('seconds');
    expect(fams.get('nodejs_gc_duration_seconds')?.type).toBe('histogram');
    expect(fams.get('process_cpu_seconds')?.type).toBe('counter');
    // the text format stays the default, and is kept when preferred
    for (const a of [undefined, 'text/plain', '*/*', 'application/openmetrics-text;q=0.2,text/plain;q=0.5', 'application/openmetrics-text;q=0']) {
      const r = a === undefined ? await request(app).get('/metrics') : await request(app).get('/metrics').set('Accept', a);
      expect(r.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(r.text).not.toContain('# EOF');
    }
  });

  it('N parallel scrapes all succeed with the same data (they share the collection in flight)', async () => {
    let arrived = 0;
    const { app, state } = setup({ 'web.max-requests': '40' }, { guard: (_q, _s, next) => (arrived++, next()) });
    let release!: () => void;
    state.hang = new Promise<void>((r) => (release = r));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const agent = request(server);
      for (let round = 0; round < 3; round++) {
        const all = Array.from({ length: 12 }, () => agent.get('/metrics').then((r) => r));
        // all 12 are in the server (one started the collection, 11 joined it) before it completes
        while (arrived < 12 * (round + 1)) await new Promise((r) => setTimeout(r, 5));
        await new Promise((r) => setImmediate(r));
        release();
        const res = await Promise.all(all);
        const flowpath = (t: string) => t.split('\n').filter((l) => l.startsWith('flowpath_') && !l.startsWith('flowpath_scrape_collector_duration')).join('\n');
        for (const r of res) {
          expect(r.status).toBe(200);
          for (const c of ['fakeok', 'fakefail', 'fakeslow']) expect(r.text).toContain(`flowpath_scrape_collector_success{collector="${c}"} 1\n`);
          expect(flowpath(r.text)).toBe(flowpath(res[0].text));
        }
        state.hang = new Promise<void>((r) => (release = r));
      }
      expect(state.slowCalls).toBe(3);
    } finally {
      release();
      server.close();
    }
  });

  it('honours X-Prometheus-Scrape-Timeout-Seconds: a hung collector is failed before Prometheus gives up', async () => {
    const { app, state } = setup({ 'scrape.timeout': '60s' });
    let release!: () => void;
    state.hang = new Promise<void>((r) => (release = r));
    try {
      const res = await request(app).get('/metrics').set('X-Prometheus-Scrape-Timeout-Seconds', '0.3').expect(200);
      expect(res.text).toContain('flowpath_scrape_collector_success{collector="fakeslow"} 0\n');
      expect(res.text).toContain('flowpath_scrape_collector_success{collector="fakeok"} 1\n');
    } finally {
      release();
    }
  });

  it('negotiates gzip by q-value and says Vary: Accept-Encoding', async () => {
    const { app } = setup();
    const cases: Array<[string | undefined, boolean]> = [
      ['gzip;q=0', false],
      ['gzip;q=0, identity', false],
      ['identity;q=1, gzip;q=0.5', false],
      ['*;q=0, identity', false],
      [undefined, false],
      ['br', false],
      ['gzip;q=0.5', true],
      ['deflate, gzip;q=1.0, *;q=0.5', true],
      ['*', true],
      ['GZIP', true],
    ];
    for (const [ae, gz] of cases) {
      const r = await rawGet(app, '/metrics', ae === undefined ? {} : { 'Accept-Encoding': ae });
      expect([ae, r.headers['content-encoding']]).toEqual([ae, gz ? 'gzip' : undefined]);
      expect(r.headers.vary).toMatch(/Accept-Encoding/);
      const text = gz ? zlib.gunzipSync(r.body).toString() : r.body.toString();
      expect(text).toContain('flowpath_fake_events_total 42');
    }
  });

  it('gzips when the client accepts it', async () => {
    const { app } = setup();
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const { headers, body } = await new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: '/metrics', headers: { 'Accept-Encoding': 'gzip' } }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
          })
          .on('error', reject);
      });
      expect(headers['content-encoding']).toBe('gzip');
      expect(body.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
      expect(zlib.gunzipSync(body).toString()).toContain('flowpath_fake_events_total 42');
    } finally {
      server.close();
    }
  });

  it('still answers 200 when a collector fails, marking it failed', async () => {
    const { app, state } = setup();
    state.fail = 'cannot read';
    const res = await request(app).get('/metrics').expect(200);
    expect(res.text).toContain('flowpath_scrape_collector_success{collector="fakefail"} 0');
    expect(res.text).toContain('flowpath_fake_value{device="eth0"}');
  });

  it('honours --web.telemetry-path', async () => {
    const { app } = setup({ 'web.telemetry-path': '/m' });
    await request(app).get('/m').expect(200);
    await request(app).get('/metrics').expect(404);
  });

  it('bounds concurrent scrapes with --web.max-requests', async () => {
    const { app, state } = setup({ 'web.max-requests': '1', 'scrape.timeout': '5s' });
    let release!: () => void;
    state.hang = new Promise<void>((r) => (release = r));
    const agent = request(app);
    const first = agent.get('/metrics').then((r) => r);
    // Wait until the first scrape is in flight.
    await new Promise((r) => setTimeout(r, 50));
    const second = await request(app).get('/metrics');
    expect(second.status).toBe(503);
    expect(second.text).toMatch(/Limit of concurrent requests reached \(1\)/);
    release();
    expect((await first).status).toBe(200);
  });

  it('/readyz before the first collection joins it within --web.max-requests; it never starts a second one', async () => {
    const { app, state } = setup({ 'web.max-requests': '1', 'scrape.timeout': '5s' });
    let release!: () => void;
    state.hang = new Promise<void>((r) => (release = r));
    const scrape = request(app).get('/metrics').then((r) => r);
    while (!state.slowCalls) await new Promise((r) => setTimeout(r, 5));
    // the only slot is taken by the scrape: not ready, answered at once, nothing collected
    await request(app).get('/readyz').expect(503, 'not ready\n');
    expect(state.okCalls).toBe(1);
    release();
    expect((await scrape).status).toBe(200);
    await request(app).get('/readyz').expect(200, 'ready\n');
    expect(state.okCalls).toBe(1);
    expect(state.slowCalls).toBe(1);
  });

  it('limits /api/* to --web.max-requests at once like /metrics', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { app } = setup({ 'web.max-requests': '1' }, {
      routes: (a) =>
        a.get('/api/slow', async (_req, res) => {
          await gate;
          res.json({ ok: true });
        }),
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const first = request(server).get('/api/slow').then((r) => r);
      await new Promise((r) => setTimeout(r, 50));
      const second = await request(server).get('/api/slow');
      expect(second.status).toBe(503);
      expect(second.body.error).toMatch(/Limit of concurrent requests reached \(1\)/);
      await request(server).get('/metrics').expect(200); // its own budget
      release();
      expect((await first).status).toBe(200);
      await request(server).get('/api/slow').expect(200); // the slot was given back
    } finally {
      server.close();
    }
  });

  it('answers errors with a short plain message, never a stack trace; malformed URLs get 400', async () => {
    const { app } = setup({}, {
      routes: (a) => {
        a.get('/api/throws', () => {
          throw new Error('secret internal detail');
        });
        a.get('/api/rejects', async () => {
          throw new TypeError('another internal detail');
        });
        a.get('/api/item/:id', (req, res) => {
          res.json({ id: req.params.id });
        });
      },
    });
    for (const path of ['/api/throws', '/api/rejects']) {
      const r = await request(app).get(path).expect(500);
      expect(r.headers['content-type']).toMatch(/^text\/plain/);
      expect(r.text).toBe('internal error\n');
    }
    for (const path of ['/api/item/%E0%A4%A', '/%E0%A4%A', '/metrics%zz']) {
      const r = await request(app).get(path).expect(400);
      expect(r.text).toMatch(/^(malformed URL|bad request)\n$/);
    }
    const nf = await request(app).get('/no/such/page').expect(404);
    expect(nf.text).toBe('not found\n');
    for (const r of [nf]) expect(r.text).not.toMatch(/at .*\.(ts|js):\d+/);
  });

  it('serves /healthz, /readyz and a landing page listing collectors and their last status', async () => {
    const { app, state } = setup();
    await request(app).get('/healthz').expect(200, 'ok\n');
    await request(app).get('/readyz').expect(200, 'ready\n');
    state.fail = 'no such file';
    await request(app).get('/metrics');
    const page = await request(app).get('/').expect(200);
    expect(page.headers['content-type']).toMatch(/html/);
    expect(page.text).toContain('<td>fakeok</td><td>ok</td>');
    expect(page.text).toContain('<td>fakefail</td><td>failed: no such file</td>');
    expect(page.text).toContain('<td>fakeoff</td><td>disabled</td>');
    expect(page.text).toContain('href="metrics"');
  });
});

describe('scrapeDeadline', () => {
  it.each([
    [undefined, 10, 10],
    ['15', 10, 10],
    ['10', 30, 9.5],
    ['0.5', 30, 0.45],
    ['1', 30, 0.9],
    ['abc', 7, 7],
    ['-3', 7, 7],
    ['0', 7, 7],
    ['1e3', 7, 7],
  ])('header %s, --scrape.timeout %s → %s', (h, flag, want) => expect(scrapeDeadline(h, flag)).toBe(want));
});

describe('parseListenAddress', () => {
  it.each([
    [':9632', { host: undefined, port: 9632 }],
    ['127.0.0.1:9100', { host: '127.0.0.1', port: 9100 }],
    ['[::1]:80', { host: '::1', port: 80 }],
  ])('%s', (a, want) => expect(parseListenAddress(a)).toEqual(want));
  it.each(['9632', 'host', ':99999', 'a:b'])('rejects %s', (a) => expect(() => parseListenAddress(a)).toThrow());
});
