// Live cross-check of the ovs collector against `ovs-appctl` on private OVS instances (userspace
// datapath; this machine has no openvswitch.ko). Needs root. Everything created here (ovsdb-server,
// ovs-vswitchd, iperf3, namespaces, temp dirs) is removed in afterAll, also when a test fails.
//
// How "the same moment" is arranged: read ovs-appctl (A1), wait for a background snapshot that STARTED
// after A1 finished, read ovs-appctl again (A2). Every counter then satisfies A1 <= exporter <= A2, and
// when nothing moved (A1 == A2: idle) the exporter must equal ovs-appctl exactly.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import request from 'supertest';
import type { Express } from 'express';
import { Config } from '../../src/core/flags';
import { nullLogger } from '../../src/core/log';
import { Exporter, allFlags } from '../../src/exporter';
import { createApp } from '../../src/server';
import { ALL_COLLECTORS } from '../../src/collectors';
import { ovsCollector } from '../../src/collectors/ovs';
import { PrivateOvs, sh, shAsync, skipReason } from '../support/private-ovs';
import { promtoolProblems } from '../support/promtool';

const reason = skipReason();
const live = reason ? describe.skip : describe;
if (reason) console.warn(`ovs.vs-appctl: live tests skipped: ${reason}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Series = Map<string, number>;

function parseExposition(text: string): Series {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return m;
}

async function scrape(app: Express): Promise<{ text: string; s: Series }> {
  const res = await request(app).get('/metrics').expect(200);
  return { text: res.text, s: parseExposition(res.text) };
}

async function scrapeUntil(app: Express, pred: (s: Series) => boolean, what: string, tries = 200): Promise<{ text: string; s: Series }> {
  let last: { text: string; s: Series } | null = null;
  for (let i = 0; i < tries; i++) {
    last = await scrape(app);
    if (pred(last.s)) return last;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}; last /metrics:\n${last?.text.split('\n').filter((l) => l.startsWith('flowpath_ovs_up') || l.startsWith('flowpath_ovs_snap')).join('\n')}`);
}

/** Snapshot read start (s): taken-at minus its duration. */
const snapStart = (s: Series) => (s.get('flowpath_ovs_snapshot_timestamp_seconds') ?? 0) - (s.get('flowpath_ovs_refresh_duration_seconds') ?? 0);

// ---- what ovs-appctl says, extracted with the test's own regexes (independent of src/ parsers) --------
interface AppctlPort {
  rxPackets: number;
  rxErrors: string;
  rxDropped: string;
  txPackets: number;
  txErrors: string;
  txDropped: string;
  rxBytes: number;
  txBytes: number;
}
interface AppctlView {
  hit: number;
  missed: number;
  lost: number;
  flows: number;
  ports: Map<string, AppctlPort>;
  /** thread key "main" or "pmd:<numa>:<core>" -> label -> value (cycle counts excluded) */
  pmd: Map<string, Record<string, number>>;
  /** Cycle counts per thread: they grow even when no packet moves, so they never decide "idle". */
  cycles: Map<string, Record<string, number>>;
}

function readAppctl(ovs: PrivateOvs): AppctlView {
  const dp = ovs.appctl('dpctl/show', '-s');
  const l = /lookups: hit:(\d+) missed:(\d+) lost:(\d+)\n\s+flows: (\d+)/.exec(dp);
  if (!l) throw new Error(`unexpected dpctl/show output:\n${dp}`);
  const ports = new Map<string, AppctlPort>();
  const re = /port \d+: (\S+)[^\n]*\n\s+RX packets:(\d+) errors:(\S+) dropped:(\S+)[^\n]*\n\s+TX packets:(\d+) errors:(\S+) dropped:(\S+)[^\n]*\n[^\n]*\n\s+RX bytes:(\d+)[^\n]*?TX bytes:(\d+)/g;
  for (const m of dp.matchAll(re)) {
    ports.set(m[1], { rxPackets: +m[2], rxErrors: m[3], rxDropped: m[4], txPackets: +m[5], txErrors: m[6], txDropped: m[7], rxBytes: +m[8], txBytes: +m[9] });
  }
  const pmd = new Map<string, Record<string, number>>();
  const cycles = new Map<string, Record<string, number>>();
  const ps = ovs.appctl('dpif-netdev/pmd-stats-show');
  for (const block of ps.split(/\n(?=\S)/)) {
    const h = /^(?:pmd thread numa_id (\d+) core_id (\d+)|main thread):/.exec(block);
    if (!h) continue;
    const vals: Record<string, number> = {};
    const cyc: Record<string, number> = {};
    for (const m of block.matchAll(/^\s+([a-z][a-z. ]+): (\d+)(?:\.\d+)?/gm)) (m[1].includes('cycles') ? cyc : vals)[m[1]] = Number(m[2]);
    const key = h[1] === undefined ? 'main' : `pmd:${h[1]}:${h[2]}`;
    pmd.set(key, vals);
    cycles.set(key, cyc);
  }
  return { hit: +l[1], missed: +l[2], lost: +l[3], flows: +l[4], ports, pmd, cycles };
}

const sameView = (a: AppctlView, b: AppctlView) =>
  JSON.stringify({ ...a, ports: [...a.ports], pmd: [...a.pmd], cycles: null }) === JSON.stringify({ ...b, ports: [...b.ports], pmd: [...b.pmd], cycles: null });

/** A1, a snapshot that started after A1, A2. */
async function bracket(ovs: PrivateOvs, app: Express): Promise<{ a1: AppctlView; s: Series; text: string; a2: AppctlView; idle: boolean }> {
  const a1 = readAppctl(ovs);
  const t1 = Date.now() / 1000;
  const { s, text } = await scrapeUntil(app, (x) => x.get('flowpath_ovs_up') === 1 && snapStart(x) > t1, 'a snapshot after the first ovs-appctl read');
  const a2 = readAppctl(ovs);
  return { a1, s, text, a2, idle: sameView(a1, a2) };
}

/** Retry until a bracket is idle (nothing moved between A1 and A2). */
async function idleBracket(ovs: PrivateOvs, app: Express) {
  for (let i = 0; i < 20; i++) {
    const b = await bracket(ovs, app);
    if (b.idle) return b;
    await sleep(300);
  }
  throw new Error('OVS never idle for one bracket (background traffic?)');
}

function expectBetween(lo: number, v: number | undefined, hi: number, what: string): void {
  if (v === undefined || !(lo <= v && v <= hi)) throw new Error(`${what}: exporter ${v} not within ovs-appctl [${lo}, ${hi}]`);
}

const PMD_LABELS: Array<[string, string]> = [
  ['packets received', 'flowpath_ovs_pmd_packets_received_total'],
  ['packet recirculations', 'flowpath_ovs_pmd_recirculations_total'],
  ['phwol hits', 'flowpath_ovs_pmd_phwol_hits_total'],
  ['mfex opt hits', 'flowpath_ovs_pmd_mfex_opt_hits_total'],
  ['simple match hits', 'flowpath_ovs_pmd_simple_match_hits_total'],
  ['emc hits', 'flowpath_ovs_pmd_emc_hits_total'],
  ['smc hits', 'flowpath_ovs_pmd_smc_hits_total'],
  ['megaflow hits', 'flowpath_ovs_pmd_megaflow_hits_total'],
  ['miss with success upcall', 'flowpath_ovs_pmd_upcalls_total'],
  ['miss with failed upcall', 'flowpath_ovs_pmd_lost_upcalls_total'],
];

const DP = 'datapath="netdev@ovs-netdev",source="unixctl"';
const portKey = (name: string, type: string, internal: boolean) => `datapath="netdev@ovs-netdev",port="${name}",type="${type}",internal="${internal}",source="unixctl"`;
const threadKey = (k: string) => {
  if (k === 'main') return 'datapath="netdev@ovs-netdev",thread="main",numa="",cpu=""';
  const [, numa, core] = k.split(':');
  return `datapath="netdev@ovs-netdev",thread="pmd",numa="${numa}",cpu="${core}"`;
};

/** Compare every datapath, port and PMD counter of the snapshot with the bracketing ovs-appctl reads. */
function crossCheck(b: { a1: AppctlView; s: Series; a2: AppctlView; idle: boolean }, portTypes: Record<string, string>): number {
  const { a1, s, a2 } = b;
  let compared = 0;
  const chk = (lo: number, v: number | undefined, hi: number, what: string) => {
    if (b.idle) expect([what, v]).toEqual([what, lo]);
    else expectBetween(lo, v, hi, what);
    compared++;
  };
  chk(a1.hit, s.get(`flowpath_ovs_datapath_lookups_hit_total{${DP}}`), a2.hit, 'lookups hit');
  chk(a1.missed, s.get(`flowpath_ovs_datapath_lookups_missed_total{${DP}}`), a2.missed, 'lookups missed');
  chk(a1.lost, s.get(`flowpath_ovs_datapath_lookups_lost_total{${DP}}`), a2.lost, 'lookups lost');
  if (b.idle) chk(a1.flows, s.get(`flowpath_ovs_datapath_flows{${DP}}`), a1.flows, 'flows');
  for (const [name, p1] of a1.ports) {
    const p2 = a2.ports.get(name)!;
    const type = portTypes[name] ?? 'system';
    const k = portKey(name, type, type === 'tap');
    chk(p1.rxPackets, s.get(`flowpath_ovs_port_rx_packets_total{${k}}`), p2.rxPackets, `${name} rx packets`);
    chk(p1.txPackets, s.get(`flowpath_ovs_port_tx_packets_total{${k}}`), p2.txPackets, `${name} tx packets`);
    chk(p1.rxBytes, s.get(`flowpath_ovs_port_rx_bytes_total{${k}}`), p2.rxBytes, `${name} rx bytes`);
    chk(p1.txBytes, s.get(`flowpath_ovs_port_tx_bytes_total{${k}}`), p2.txBytes, `${name} tx bytes`);
    for (const [field, metric] of [
      ['rxErrors', 'rx_errors'],
      ['rxDropped', 'rx_dropped'],
      ['txErrors', 'tx_errors'],
      ['txDropped', 'tx_dropped'],
    ] as const) {
      const v = s.get(`flowpath_ovs_port_${metric}_total{${k}}`);
      if (p1[field] === '?') expect([name, field, v]).toEqual([name, field, undefined]);
      else chk(Number(p1[field]), v, Number(p2[field]), `${name} ${field}`);
    }
  }
  for (const [thread, v1] of a1.pmd) {
    const v2 = a2.pmd.get(thread)!;
    for (const [label, metric] of PMD_LABELS) {
      if (v1[label] === undefined) continue;
      chk(v1[label], s.get(`${metric}{${threadKey(thread)}}`), v2[label], `${thread} ${label}`);
    }
    const c1 = a1.cycles.get(thread)!;
    const c2 = a2.cycles.get(thread)!;
    if (c1['idle cycles'] !== undefined) {
      // Cycles run on even when idle: always a bracket, never equality.
      expectBetween(c1['idle cycles'], s.get(`flowpath_ovs_pmd_idle_cycles_total{${threadKey(thread)}}`), c2['idle cycles'], `${thread} idle cycles`);
      expectBetween(c1['processing cycles'], s.get(`flowpath_ovs_pmd_processing_cycles_total{${threadKey(thread)}}`), c2['processing cycles'], `${thread} processing cycles`);
      compared += 2;
    }
  }
  return compared;
}

function makeExporter(overrides: Record<string, string | boolean>, defs = [ovsCollector]): { exporter: Exporter; app: Express } {
  const exporter = new Exporter(Config.from(allFlags(defs), overrides), nullLogger, defs);
  exporter.start();
  return { exporter, app: createApp(exporter) };
}

live('ovs collector vs ovs-appctl: private OVS 3.1, userspace datapath, internal ports in namespaces', () => {
  let ovs: PrivateOvs;
  let nsA = '';
  let nsB = '';
  let exporter: Exporter | undefined;
  let app: Express;
  const servers: ChildProcess[] = [];
  const portTypes: Record<string, string> = { 'ovs-netdev': 'tap', br0: 'tap', br1: 'tap', i0: 'tap', i1: 'tap' };

  beforeAll(async () => {
    ovs = new PrivateOvs('u');
    await ovs.start();
    nsA = ovs.nsName('a');
    nsB = ovs.nsName('b');
    ovs.addNs(nsA);
    ovs.addNs(nsB);
    const X = ['netns', 'exec', ovs.ns];
    sh('ip', [...X, 'ip', 'link', 'add', 'w0', 'type', 'veth', 'peer', 'name', 'w1']);
    sh('ip', [...X, 'ip', 'link', 'set', 'w0', 'up']);
    sh('ip', [...X, 'ip', 'link', 'set', 'w1', 'up']);
    ovs.vsctl('add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev');
    ovs.vsctl('add-port', 'br0', 'w0');
    ovs.vsctl('add-port', 'br0', 'i0', '--', 'set', 'interface', 'i0', 'type=internal');
    ovs.vsctl('add-br', 'br1', '--', 'set', 'bridge', 'br1', 'datapath_type=netdev');
    ovs.vsctl('add-port', 'br1', 'w1');
    ovs.vsctl('add-port', 'br1', 'i1', '--', 'set', 'interface', 'i1', 'type=internal');
    for (const [dev, ns, ip] of [
      ['i0', nsA, '10.77.0.1/24'],
      ['i1', nsB, '10.77.0.2/24'],
    ]) {
      for (let i = 0; i < 50; i++) {
        try {
          sh('ip', [...X, 'ip', 'link', 'show', dev]);
          break;
        } catch {
          await sleep(50);
        }
      }
      sh('ip', [...X, 'ip', 'link', 'set', dev, 'netns', ns]);
      sh('ip', ['-n', ns, 'addr', 'add', ip, 'dev', dev]);
      sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
    sh('ip', ['netns', 'exec', nsA, 'ping', '-c', '3', '-i', '0.2', '-W', '2', '10.77.0.2']);
    ({ exporter, app } = makeExporter({ 'ovs.rundir': ovs.dir, 'ovs.refresh-interval': '200ms', 'ovs.timeout': '2s', 'path.sysfs': '/sys' }));
    await scrapeUntil(app, (s) => s.get('flowpath_ovs_up') === 1, 'flowpath_ovs_up 1');
  }, 90_000);

  afterAll(async () => {
    await exporter?.close();
    for (const p of servers) if (p.exitCode === null) p.kill('SIGKILL');
    await ovs?.cleanup();
  }, 60_000);

  it('datapath, port and main-thread PMD counters equal dpctl/show -s and pmd-stats-show read at the same moment', async () => {
    const b = await idleBracket(ovs, app);
    const n = crossCheck(b, portTypes);
    expect(n).toBeGreaterThan(30);
    expect(b.a1.hit + b.a1.missed).toBeGreaterThan(0); // the ping went through: not a comparison of zeros
    expect(b.a1.pmd.get('main')!['packets received']).toBeGreaterThan(0);
    // Internal ports moved to another namespace: OVS cannot read their counters; said so, not 0.
    expect(b.s.get(`flowpath_ovs_port_stats_readable{${portKey('i0', 'tap', true)}}`)).toBe(0);
    expect(b.s.get(`flowpath_ovs_port_rx_packets_total{${portKey('i0', 'tap', true)}}`)).toBeUndefined();
    expect(b.s.get('flowpath_ovs_internal_port_info{device="i0",bridge="br0",datapath="netdev@ovs-netdev"}')).toBe(1);
    expect(b.s.get('flowpath_ovs_internal_port_info{device="i1",bridge="br1",datapath="netdev@ovs-netdev"}')).toBe(1);
    expect(b.s.get('flowpath_ovs_info{version="3.1.0",dpdk_version=""}')).toBe(1);
    // upcall/show as ovs-appctl prints it
    const up = ovs.appctl('upcall/show');
    const lim = /\(limit (\d+)\)/.exec(up)!;
    expect(b.s.get('flowpath_ovs_upcall_flow_limit{datapath="netdev@ovs-netdev"}')).toBe(Number(lim[1]));
    expect(promtoolProblems(b.text)).toEqual([]);
  }, 60_000);

  it('counters grow with an iperf3 flow: wire ports carry at least the bytes iperf3 sent; lookups = thread passes', async () => {
    const before = await idleBracket(ovs, app);
    const srv = spawn('ip', ['netns', 'exec', nsB, 'iperf3', '-s', '-1', '-B', '10.77.0.2'], { stdio: 'ignore' });
    servers.push(srv);
    await sleep(500);
    const cli = await shAsync('ip', ['netns', 'exec', nsA, 'iperf3', '-c', '10.77.0.2', '-t', '2', '-J'], 30_000);
    expect(cli.code).toBe(0);
    const sent = JSON.parse(cli.stdout).end.sum_sent.bytes as number;
    expect(sent).toBeGreaterThan(1_000_000);
    const after = await idleBracket(ovs, app);
    crossCheck(after, portTypes);
    const d = (metric: string) => after.s.get(metric)! - before.s.get(metric)!;
    // i0 -> br0 -> w0 =veth=> w1 -> br1 -> i1: every payload byte leaves w0 and enters w1 (plus headers).
    expect(d(`flowpath_ovs_port_tx_bytes_total{${portKey('w0', 'system', false)}}`)).toBeGreaterThanOrEqual(sent);
    expect(d(`flowpath_ovs_port_rx_bytes_total{${portKey('w1', 'system', false)}}`)).toBeGreaterThanOrEqual(sent);
    const passes = d(`flowpath_ovs_pmd_packets_received_total{${threadKey('main')}}`) + d(`flowpath_ovs_pmd_recirculations_total{${threadKey('main')}}`);
    const lookups =
      d(`flowpath_ovs_datapath_lookups_hit_total{${DP}}`) + d(`flowpath_ovs_datapath_lookups_missed_total{${DP}}`) + d(`flowpath_ovs_datapath_lookups_lost_total{${DP}}`);
    expect(passes).toBeGreaterThan(sent / 1500);
    // dpctl's lookups are the per-thread hit/miss counters summed (dpif_netdev_get_stats): only the main thread here.
    expect(lookups).toBe(passes);
  }, 90_000);

  it('ovs-vswitchd killed and restarted: flowpath_ovs_up goes 0 then 1, metrics resume, same exporter', async () => {
    const s0 = (await scrapeUntil(app, (s) => s.get('flowpath_ovs_up') === 1, 'up')).s;
    const connects0 = s0.get('flowpath_ovs_unixctl_connects_total')!;
    await ovs.killVswitchd();
    const down = await scrapeUntil(app, (s) => s.get('flowpath_ovs_up') === 0, 'flowpath_ovs_up 0 after the kill');
    expect(down.s.get('flowpath_scrape_collector_success{collector="ovs"}')).toBe(1);
    expect([...down.s.keys()].some((k) => k.startsWith('flowpath_ovs_datapath_'))).toBe(false);
    expect(down.s.get('flowpath_ovs_last_success_timestamp_seconds')).toBeGreaterThan(0);
    await ovs.startVswitchd();
    const upAgain = await scrapeUntil(app, (s) => s.get('flowpath_ovs_up') === 1, 'flowpath_ovs_up 1 after the restart');
    expect(upAgain.s.get('flowpath_ovs_unixctl_connects_total')).toBe(connects0 + 1);
    expect(upAgain.s.get(`flowpath_ovs_datapath_lookups_hit_total{${DP}}`)).toBeDefined();
    // The restarted daemon's counters, read through the new socket, agree with ovs-appctl again.
    const b = await idleBracket(ovs, app);
    expect(b.s.get(`flowpath_ovs_datapath_lookups_hit_total{${DP}}`)).toBe(b.a1.hit);
    expect(b.s.get(`flowpath_ovs_datapath_lookups_missed_total{${DP}}`)).toBe(b.a1.missed);
    expect(promtoolProblems(b.text)).toEqual([]);
  }, 90_000);
});

live('ovs collector vs ovs-appctl: a PMD thread with cycles (dummy-pmd ports)', () => {
  let ovs: PrivateOvs;
  let exporter: Exporter | undefined;
  let app: Express;
  const lastCpu = os.cpus().length - 1;

  beforeAll(async () => {
    ovs = new PrivateOvs('p', { vswitchdArgs: ['--enable-dummy'], otherConfig: { 'pmd-cpu-mask': `0x${(1 << lastCpu).toString(16)}`, 'pmd-maxsleep': '500' } });
    await ovs.start();
    ovs.vsctl('add-br', 'brd', '--', 'set', 'bridge', 'brd', 'datapath_type=netdev');
    ovs.vsctl('add-port', 'brd', 'd1', '--', 'set', 'interface', 'd1', 'type=dummy-pmd');
    ovs.vsctl('add-port', 'brd', 'd2', '--', 'set', 'interface', 'd2', 'type=dummy-pmd');
    for (let i = 0; i < 30; i++) {
      ovs.appctl(
        'netdev-dummy/receive',
        'd1',
        `in_port(1),eth(src=50:54:00:00:00:01,dst=50:54:00:00:00:02),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=6,tos=0,ttl=64,frag=no),tcp(src=${1000 + (i % 3)},dst=80)`,
      );
    }
    ({ exporter, app } = makeExporter({ 'ovs.rundir': ovs.dir, 'ovs.refresh-interval': '200ms', 'ovs.timeout': '2s' }));
    await scrapeUntil(app, (s) => s.get('flowpath_ovs_up') === 1, 'flowpath_ovs_up 1');
  }, 90_000);

  afterAll(async () => {
    await exporter?.close();
    await ovs?.cleanup();
  }, 60_000);

  it('PMD packet counters equal pmd-stats-show; idle/processing cycles lie between two reads', async () => {
    const types = { 'ovs-netdev': 'tap', brd: 'tap', d1: 'dummy-pmd', d2: 'dummy-pmd' };
    const b = await idleBracket(ovs, app);
    const n = crossCheck(b, types);
    const pmdKeys = [...b.a1.pmd.keys()].filter((k) => k.startsWith('pmd:'));
    expect(pmdKeys).toHaveLength(1);
    expect(b.a1.pmd.get(pmdKeys[0])!['packets received']).toBe(30);
    expect(b.s.get(`flowpath_ovs_pmd_cycles_total{${threadKey(pmdKeys[0])}}`)).toBeGreaterThan(0);
    expect(n).toBeGreaterThan(20);
  }, 60_000);
});

describe('ovs collector with OVS absent (full exporter, supertest)', () => {
  it('reports flowpath_ovs_up 0 and leaves every other collector as it is without OVS', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-noovs-'));
    const withOvs = makeExporter({ 'ovs.rundir': empty }, [...ALL_COLLECTORS]);
    const without = makeExporter({ 'collector.ovs': false }, [...ALL_COLLECTORS]);
    try {
      const a = await scrape(withOvs.app);
      const b = await scrape(without.app);
      expect(a.s.get('flowpath_ovs_up')).toBe(0);
      expect(a.s.get('flowpath_scrape_collector_success{collector="ovs"}')).toBe(1);
      expect(b.s.get('flowpath_scrape_collector_success{collector="ovs"}')).toBeUndefined();
      const others = (s: Series) =>
        [...s].filter(([k]) => k.startsWith('flowpath_scrape_collector_success{') && !k.includes('"ovs"')).sort();
      expect(others(a.s)).toEqual(others(b.s));
      expect(others(a.s).length).toBe(ALL_COLLECTORS.filter((d) => d.defaultEnabled && d.name !== 'ovs').length);
      expect([...a.s.keys()].some((k) => k.startsWith('flowpath_build_info{'))).toBe(true);
      expect(promtoolProblems(a.text)).toEqual([]);
    } finally {
      await withOvs.exporter.close();
      await without.exporter.close();
      fs.rmSync(empty, { recursive: true, force: true });
    }
  }, 60_000);
});
