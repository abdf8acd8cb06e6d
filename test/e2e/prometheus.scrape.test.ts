// A real Prometheus (Debian package) scrapes the built exporter on loopback; its query API must return
// the exporter's series, including per-flow series for a live TCP flow.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { Proc, freePort, httpGet, startExporter, startProc, waitFor } from '../support/procs';

const havePrometheus = spawnSync('prometheus', ['--version']).status === 0;
const maybe = havePrometheus ? describe : describe.skip;
if (!havePrometheus) console.warn('prometheus not installed: run scripts/install-test-deps');

async function query(promUrl: string, q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const r = await httpGet(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
  const j = JSON.parse(r.body);
  if (j.status !== 'success') throw new Error(`query ${q}: ${r.body}`);
  return j.data.result;
}

maybe('Prometheus scrapes flowpath', () => {
  let exporter: Proc & { url: string };
  let prom: Proc;
  let promUrl: string;
  let dir: string;
  let server: net.Server;
  let client: net.Socket;
  let flowPort: number;

  beforeAll(async () => {
    // A loopback flow on a known port that the flow selector picks.
    server = net.createServer((s) => s.resume());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    flowPort = (server.address() as net.AddressInfo).port;
    client = net.connect(flowPort, '127.0.0.1');
    await new Promise<void>((r) => client.once('connect', () => r()));
    client.write(Buffer.alloc(1 << 20));

    const sel = `sport = ${flowPort} or dport = ${flowPort}`;
    exporter = await startExporter([`--flows.select=${sel}`, `--diagnosis.watch=${sel}`]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-prom-'));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    fs.writeFileSync(
      path.join(dir, 'prometheus.yml'),
      `global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:\n  - job_name: flowpath\n    static_configs: [{targets: ['${exporter.url.replace('http://', '')}']}]\n`,
    );
    prom = startProc('prometheus', [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ]);
  }, 60000);

  afterAll(async () => {
    client?.destroy();
    server?.close();
    await prom?.stop();
    await exporter?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the target is up and every collector succeeded', async () => {
    const up = await waitFor(
      'prometheus to scrape flowpath',
      async () => {
        const r = await query(promUrl, 'up{job="flowpath"}');
        return r.length === 1 && r[0].value[1] === '1' ? r : undefined;
      },
      40000,
      500,
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\nprometheus output:\n${prom.output().slice(-2000)}`);
    });
    expect(up[0].metric.instance).toBe(exporter.url.replace('http://', ''));
    const ok = await query(promUrl, 'flowpath_scrape_collector_success');
    expect(ok.length).toBeGreaterThan(0);
    const failed = ok.filter((r) => r.value[1] !== '1').map((r) => r.metric.collector);
    // OVS is not running in this test: its collector reports up=0 but still succeeds.
    expect(failed).toEqual([]);
    const info = await query(promUrl, 'flowpath_build_info');
    expect(info[0].metric.version).toBe('0.1.0');
  }, 60000);

  it('per-flow series of the live loopback flow are queryable', async () => {
    const rows = await waitFor(
      'flow series',
      async () => {
        const r = await query(promUrl, `flowpath_flow_info{local_port="${flowPort}"}`);
        return r.length > 0 ? r : undefined;
      },
      20000,
      500,
    );
    expect(rows[0].metric.local_ip).toBe('127.0.0.1');
    expect(rows[0].metric.peer_ip).toBe('127.0.0.1');
    const acked = await query(promUrl, `flowpath_flow_acked_bytes_total{peer_port="${flowPort}"}`);
    expect(acked.length).toBe(1);
    expect(Number(acked[0].value[1])).toBeGreaterThan(0);
  }, 40000);

  it('the diagnosis API of the running exporter samples the watched flow and Prometheus has its limit attribution', async () => {
    const flows = await waitFor(
      'watched flow in /api/flows',
      async () => {
        const j = JSON.parse((await httpGet(`${exporter.url}/api/flows`)).body);
        const mine = j.flows.filter((f: { local_port: number; sampled: boolean }) => f.local_port === flowPort && f.sampled);
        return mine.length > 0 ? mine : undefined;
      },
      15000,
      300,
    );
    expect(flows[0].local_ip).toBe('127.0.0.1');
    const d = await httpGet(`${exporter.url}/api/diagnosis?flow=${encodeURIComponent(`sport = ${flowPort}`)}`);
    expect(d.status).toBe(200);
    const body = JSON.parse(d.body);
    expect(body.id).toContain(String(flowPort));
    const bad = await httpGet(`${exporter.url}/api/diagnosis?flow=${encodeURIComponent('sport = ')}`);
    expect(bad.status).toBe(400);
    const limited = await waitFor(
      'flowpath_flow_limited_seconds_total in Prometheus',
      async () => {
        const r = await query(promUrl, `sum by (local_port) (flowpath_flow_limited_seconds_total{local_port="${flowPort}"})`);
        return r.length > 0 && Number(r[0].value[1]) > 0 ? r : undefined;
      },
      20000,
      500,
    );
    expect(limited[0].metric.local_port).toBe(String(flowPort));
  }, 40000);
});
