// Every query of the Grafana dashboards against a real Prometheus (Debian package) scraping the lab's two
// exporters during a pacing-capped BBR flow A -> B: each one, Grafana's variables substituted with the
// lab flow's values, returns series, or is listed below as expected-empty with the reason. Then the
// exporter's landing page in headless Chromium (Debian package, driven by playwright-core) shows the
// flow's hop row with the limiting hop, and a screenshot is saved.
//
// Prometheus, the exporters and Chromium run inside node A's namespace (Prometheus scrapes B across
// the lab link); the test reaches them through an HTTP relay on a unix socket (test/support/ns-http.ts).
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { chromium, type BrowserContext } from 'playwright-core';
import { UID } from '../../src/dashboards/common';
import { DASHBOARDS } from '../../src/dashboards';
import { DEFAULT_CONFIG } from '../../src/mixin/config';
import { DashQuery, Json, committedDashboards, parseLabelValues, queriesOf, rulesDefined, substitute } from '../support/dashboards';
import { NsHttp } from '../support/ns-http';
import { Proc, requireBuild, waitFor } from '../support/procs';
import { A_IP, B_IP, Exporter, Flow, IPERF_PORT, NS_A, labDown, labSkipReason, labUp, nodeDevice, startExporter, startFlow } from './lab';

const skip = labSkipReason();
const d = skip ? describe.skip : describe;
if (skip) console.warn(`dashboards e2e skipped: ${skip}`);

const CHROMIUM = '/usr/bin/chromium';
const PROM_PORT = 19090;
const A_INSTANCE = '127.0.0.1:9632';
const B_INSTANCE = `${B_IP}:9632`;
export const OUTPUT_DIR = process.env.FLOWPATH_TEST_OUTPUT ?? path.join(__dirname, '..', '..', 'test-output');

/** The lab flow as the Flow path's variables see it from node A (the client, sending). */
const VARS: Record<string, Record<string, string>> = {
  [UID.fleet]: { datasource: 'prometheus', node: `${A_INSTANCE}|${B_INSTANCE}` },
  [UID.flow]: {
    datasource: 'prometheus', node: A_INSTANCE, peer: B_IP, service_port: String(IPERF_PORT), role: 'client', local_ip: A_IP, peer_instance: B_INSTANCE,
  },
  [UID.node]: { datasource: 'prometheus', node: A_INSTANCE, device: '.*' },
};
/** Values the variable queries must offer in the lab (the chain node -> peer -> service port -> role -> local ip). */
const VARIABLE_VALUES: Record<string, Record<string, string>> = {
  [UID.fleet]: { node: A_INSTANCE },
  [UID.flow]: { node: A_INSTANCE, peer: B_IP, service_port: String(IPERF_PORT), role: 'client', local_ip: A_IP, peer_instance: B_INSTANCE },
  [UID.node]: { node: A_INSTANCE, device: 'a-int' },
};

/**
 * Queries that return nothing in this lab, and why. Keys: `<dashboard uid> <panel "title" refId>`.
 * A query listed here that does return series fails the test too (the list must stay true).
 */
const TAP = 'the lab node device is a tap (the userspace datapath\'s internal port)';
const LINK = `${TAP}, not a real link: the link-speed rule only trusts devices of class ${DEFAULT_CONFIG.linkSpeedClasses}, and the lab has none`;
const DAY = 'compares with the same hour a day earlier (offset 1d); the lab Prometheus is a minute old';
const EXPECTED_EMPTY: Record<string, string> = {
  'flowpath-fleet panel "Pacing-limited share: now vs a day earlier" A': DAY,
  'flowpath-fleet panel "Goodput now vs a day earlier" A': DAY,
  'flowpath-flow-path panel "Goodput, pacing, delivery rate and link speed: peer ($peer)" D':
    'the receiver sets no SO_MAX_PACING_RATE (only the sender\'s iperf3 --fq-rate caps pacing)',
  'flowpath-flow-path panel "Goodput, pacing, delivery rate and link speed: this node ($node)" F': LINK,
  'flowpath-flow-path panel "Goodput, pacing, delivery rate and link speed: peer ($peer)" F': LINK,
  'flowpath-node-path panel "NIC rings, channels, offloads and coalescing" C': `${TAP}: tun reports no ring sizes (ethtool -g)`,
  'flowpath-node-path panel "NIC rings, channels, offloads and coalescing" D': `${TAP}: tun reports no ring sizes (ethtool -g)`,
  'flowpath-node-path panel "NIC rings, channels, offloads and coalescing" E': `${TAP}: tun reports no ring sizes (ethtool -g)`,
  'flowpath-node-path panel "NIC rings, channels, offloads and coalescing" K': `${TAP}: tun has no interrupt coalescing (ethtool -c)`,
  'flowpath-node-path panel "NIC rings, channels, offloads and coalescing" L': `${TAP}: tun has no interrupt coalescing (ethtool -c)`,
  'flowpath-node-path panel "TX queue stops (ring full)" A': `${TAP}: tun has no netdev per-queue stats (qstats tx-stop)`,
  'flowpath-node-path panel "TX queue stops (ring full)" B': `${TAP}: tun has no byte queue limits (BQL)`,
  'flowpath-node-path panel "Qdisc backlog and fq pacing" B': 'fq only: the lab has no fq qdisc (pacing is SO_MAX_PACING_RATE in TCP)',
  'flowpath-node-path panel "RX queue → IRQ → CPU, and RPS" A': `${TAP}: a virtual device has no IRQs`,
  'flowpath-node-path panel "OVS masks per packet" A': 'kernel OVS datapath only (n_mask_hit); the lab runs the userspace (netdev) datapath',
  'flowpath-node-path panel "OVS upcalls" C': 'kernel OVS datapath only (per-port upcall stats, Linux 6.2+); the lab runs the userspace datapath',
};

function key(q: DashQuery): string {
  return `${q.dashboard.replace(/\.json$/, '')} ${q.where}`;
}

d('Grafana dashboards against a real Prometheus in the lab', () => {
  let flow: Flow | undefined;
  const exporters: Exporter[] = [];
  let prom: Proc | undefined;
  let relay: NsHttp | undefined;
  let dir = '';

  const promQuery = async (q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> => {
    const r = await relay!.get(`http://127.0.0.1:${PROM_PORT}/api/v1/query?query=${encodeURIComponent(q)}`);
    const j = JSON.parse(r.body);
    if (j.status !== 'success') throw new Error(`query failed: ${q}: ${r.body}`);
    return j.data.result;
  };

  beforeAll(async () => {
    requireBuild();
    if (spawnSync('prometheus', ['--version']).status !== 0) throw new Error('prometheus is not installed: run scripts/install-test-deps');
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/install-test-deps (Debian package chromium)`);
    await labUp({ topo: 'ovs' });
    // Only the iperf3 connections are sampled (not the scrapes); the node's own device is a tap (the
    // userspace datapath's internal port), which the nic collector leaves out unless included.
    const flags = (node: 'a' | 'b', listen: string) => [
      `--web.listen-address=${listen}`, `--flows.watch=port = ${IPERF_PORT}`, `--diagnosis.watch=port = ${IPERF_PORT}`,
      '--diagnosis.top=0', '--diagnosis.window=5s', `--collector.nic.device-include=${nodeDevice('ovs', node)}`,
    ];
    exporters.push(await startExporter('a', flags('a', '0.0.0.0:9632')));
    exporters.push(await startExporter('b', flags('b', B_INSTANCE)));
    flow = await startFlow('pace', { cc: 'bbr', seconds: 150 });

    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-dash-e2e-'));
    // The repository's rules (prometheus/), and one alert that fires at once on a limited flow so the
    // alert panels and annotations have something to show (the real alerts wait minutes: `for:`).
    const alertFile = path.join(dir, 'e2e-alerts.yml');
    fs.writeFileSync(alertFile, [
      'groups:',
      '  - name: dashboards-e2e',
      '    rules:',
      '      - alert: FlowpathE2eFlowLimited',
      '        expr: max by (instance) (flowpath_flow_verdict_info) > 0',
      '        labels: {severity: info}',
    ].join('\n') + '\n');
    const cfg = [
      'global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}',
      `rule_files: ${JSON.stringify([...rulesDefined().files, alertFile])}`,
      'scrape_configs:',
      '  - job_name: flowpath',
      `    static_configs: [{targets: ['${A_INSTANCE}', '${B_INSTANCE}']}]`,
    ];
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), cfg.join('\n') + '\n');
    let out = '';
    const child = spawn('ip', ['netns', 'exec', NS_A, 'prometheus', `--config.file=${dir}/prometheus.yml`, `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${PROM_PORT}`, '--log.level=warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.setEncoding('utf8').on('data', (x: string) => (out += x));
    child.stderr!.setEncoding('utf8').on('data', (x: string) => (out += x));
    prom = {
      child,
      output: () => out,
      stop: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      },
    };
    relay = await NsHttp.start(NS_A);
    await waitFor('Prometheus to scrape both exporters', async () => {
      const up = await promQuery('up{job="flowpath"} == 1');
      return up.length === 2 ? up : undefined;
    }, 60000, 500).catch((e) => {
      throw new Error(`${(e as Error).message}\nprometheus:\n${out.slice(-3000)}`);
    });
    // The verdict needs --diagnosis.window of samples; rates need a few scrapes.
    await waitFor('a verdict for the lab flow in Prometheus', async () => {
      const v = await promQuery(`flowpath_flow_verdict_info{instance="${A_INSTANCE}", peer_port="${IPERF_PORT}"}`);
      return v.length > 0 ? v : undefined;
    }, 60000, 1000);
  }, 180_000);

  afterAll(async () => {
    await relay?.stop();
    await prom?.stop();
    await flow?.stop().catch(() => undefined);
    for (const e of exporters) await e.stop().catch(() => undefined);
    await labDown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('every variable query offers the lab flow\'s values', async () => {
    const missing: string[] = [];
    for (const c of committedDashboards()) {
      const want = VARIABLE_VALUES[c.json.uid];
      for (const v of c.json.templating.list as Json[]) {
        if (v.type !== 'query') continue;
        const { selector, label } = parseLabelValues(v.query.query);
        const rows = await promQuery(substitute(selector, VARS[c.json.uid]));
        const values = new Set(rows.map((r) => r.metric[label]));
        if (!values.has(want[v.name])) missing.push(`${c.file} variable ${v.name}: ${want[v.name]} not in [${[...values].join(', ')}]`);
      }
    }
    expect(missing).toEqual([]);
  }, 60_000);

  it('every panel and annotation query returns series, or is listed as expected-empty with a reason', async () => {
    const evaluate = async () => {
      const empty: string[] = [];
      const unexpectedlyFull: string[] = [];
      let withData = 0;
      const seen = new Set<string>();
      for (const c of committedDashboards()) {
        for (const q of queriesOf(c.file, c.json).filter((x) => x.kind !== 'variable')) {
          const k = key(q);
          seen.add(k);
          const expr = substitute(q.expr, { ...VARS[c.json.uid], __rate_interval: '10s' });
          const rows = await promQuery(expr);
          if (rows.length === 0 && !(k in EXPECTED_EMPTY)) empty.push(`${k}: ${expr}`);
          if (rows.length > 0 && k in EXPECTED_EMPTY) unexpectedlyFull.push(`${k} (listed as empty: ${EXPECTED_EMPTY[k]})`);
          if (rows.length > 0) withData++;
        }
      }
      return { empty, unexpectedlyFull, withData, seen };
    };
    // A series appears once its inputs have been scraped twice within its window and, for a recorded one,
    // once the rule has evaluated after that: on a loaded machine that follows the first verdict by a few
    // scrape and evaluation intervals. Wait for that (bounded), then judge the last evaluation whole.
    let r = await evaluate();
    const deadline = Date.now() + 60_000;
    while (r.empty.length > 0 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 2000));
      r = await evaluate();
    }
    const { empty, unexpectedlyFull, withData, seen } = r;
    expect(empty).toEqual([]);
    expect(unexpectedlyFull).toEqual([]);
    expect(Object.keys(EXPECTED_EMPTY).filter((k) => !seen.has(k))).toEqual([]); // no stale entries
    expect(withData).toBeGreaterThan(60);
    expect(DASHBOARDS.length).toBe(3);
  }, 150_000);

  it('the landing page in headless Chromium shows the lab flow\'s hops with the limiting hop', async () => {
    fs.mkdirSync(OUTPUT_DIR, { recursive: true });
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-chromium-'));
    // Chromium runs inside node A's namespace, where the exporter listens.
    const wrapper = path.join(profile, 'chromium-in-netns');
    fs.writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${NS_A} ${CHROMIUM} "$@"\n`, { mode: 0o755 });
    let ctx: BrowserContext | undefined;
    try {
      ctx = await chromium.launchPersistentContext(path.join(profile, 'data'), {
        executablePath: wrapper,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
          '--disable-component-update', '--disable-sync'],
        viewport: { width: 1400, height: 900 },
        timeout: 60_000,
      });
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      await page.goto(`http://${A_INSTANCE}/`, { waitUntil: 'load' });
      const api = (await page.evaluate(async () => (await fetch('api/diagnosis')).json())) as Json;
      const mine = (api.flows as Json[]).find((f) => f.id.endsWith(`-${B_IP}:${IPERF_PORT}`) && f.top);
      expect(mine).toBeDefined();
      const section = page.locator(`section.flow[data-flow="${mine.id}"]`);
      // the script's first refresh has redrawn the flows from /api/diagnosis
      await page.locator('#status', { hasText: 'updated' }).waitFor({ timeout: 20_000 });
      await expect(section.locator('li.hop').count()).resolves.toBe(11);
      const limiting = section.locator(`li.hop[data-hop="${mine.top.hop}"]`);
      await expect(limiting.getAttribute('data-status')).resolves.toBe('limiting');
      await expect(limiting.isVisible()).resolves.toBe(true);
      await expect(limiting.locator('.s').innerText()).resolves.toBe('LIMITING');
      await expect(section.locator('.verdict').innerText()).resolves.toContain('Limited at');
      const shot = path.join(OUTPUT_DIR, 'landing.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
    } finally {
      await ctx?.close();
      fs.rmSync(profile, { recursive: true, force: true });
    }
  }, 120_000);

});
