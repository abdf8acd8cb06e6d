import request from 'supertest';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as zlib from 'zlib';
import { Config } from '../../src/core/flags';
import { nullLogger } from '../../src/core/log';
import { Exporter, allFlags } from '../../src/exporter';
import { createApp, parseListenAddress } from '../../src/server';
import { fakeDefs } from '../support/fake-collectors';
import { promtoolCheckMetrics } from '../support/promtool';

function setup(overrides: Record<string, string | boolean> = {}) {
  const state: { okCalls: number; hang?: Promise<void>; fail?: string } = { okCalls: 0 };
  const defs = fakeDefs(state);
  const exporter = new Exporter(Config.from(allFlags(defs), overrides), nullLogger, defs);
  return { state, exporter, app: createApp(exporter) };
}

describe('HTTP server', () => {
  it('serves /metrics in the text format with collector status, build info and process metrics', async () => {
    const { app } = setup();
    const res = await request(app).get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0.0.4/);
    expect(res.text).toContain('flowpath_fake_value{device="eth0"} 1');
    expect(res.text).toMatch(/flowpath_build_info\{version="0\.1\.0",nodejs_version="[\d.]+"\} 1/);
    expect(res.text).toContain('flowpath_scrape_collector_success{collector="fakeok"} 1');
    expect(res.text).toContain('process_resident_memory_bytes');
    const check = promtoolCheckMetrics(res.text);
    expect(check.output).toBe('');
    expect(check.status).toBe(0);
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

describe('parseListenAddress', () => {
  it.each([
    [':9632', { host: undefined, port: 9632 }],
    ['127.0.0.1:9100', { host: '127.0.0.1', port: 9100 }],
    ['[::1]:80', { host: '::1', port: 80 }],
  ])('%s', (a, want) => expect(parseListenAddress(a)).toEqual(want));
  it.each(['9632', 'host', ':99999', 'a:b'])('rejects %s', (a) => expect(() => parseListenAddress(a)).toThrow());
});
