import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Config } from '../../src/core/flags';
import { createLogger, nullLogger, type Logger } from '../../src/core/log';
import { Emitter } from '../../src/core/metrics';
import { allFlags } from '../../src/exporter';
import type { Collector } from '../../src/collectors/registry';
import { emitOvsSnapshot, ovsCollector } from '../../src/collectors/ovs';
import { ovsTestHooks, sharedOvsReader } from '../../src/sources/ovs/shared';
import { OvsReader } from '../../src/sources/ovs/snapshot';
import { latestOvsInternalPorts, ovsInternalPort, resetInternalPorts } from '../../src/sources/ovs/internal-ports';
import { FakeVswitchd, OVS31, type Answer } from '../support/fake-vswitchd';
import { FakeGenl, loadHex } from '../support/ovs-genl';
import { promtoolCheckMetrics } from '../support/promtool';

const fx = (name: string) => fs.readFileSync(path.join(__dirname, '../fixtures/ovs', name), 'utf8');


const tmp: string[] = [];
const fakes: FakeVswitchd[] = [];
const cols: Collector[] = [];
afterEach(async () => {
  for (const c of cols.splice(0)) await c.close?.();
  for (const f of fakes.splice(0)) await f.cleanup();
  for (const d of tmp.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  ovsTestHooks.genlSocket = undefined;
  resetInternalPorts();
});

function sysfs(loaded: boolean): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-sysfs-'));
  tmp.push(d);
  if (loaded) fs.mkdirSync(path.join(d, 'module', 'openvswitch'), { recursive: true });
  return d;
}

function make(overrides: Record<string, string>, log: Logger = nullLogger): Collector {
  const config = Config.from(allFlags([ovsCollector]), { 'ovs.refresh-interval': '100ms', 'ovs.timeout': '500ms', ...overrides });
  const c = ovsCollector.create({ config, log });
  cols.push(c);
  return c;
}

async function scrape(c: Collector): Promise<string> {
  const out = new Emitter();
  await c.collect(out, { signal: new AbortController().signal, now: Date.now() });
  return out.render();
}

/** Scrape until `pred` holds (the refresh runs in the background every 100 ms); fails after ~10 s. */
async function scrapeUntil(c: Collector, pred: (text: string) => boolean): Promise<string> {
  let text = '';
  for (let i = 0; i < 200; i++) {
    text = await scrape(c);
    if (pred(text)) return text;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`condition not reached; last scrape:\n${text}`);
}

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function fake(answers: Record<string, Answer> = OVS31, extra: Partial<ConstructorParameters<typeof FakeVswitchd>[0]> = {}): Promise<FakeVswitchd> {
  const f = new FakeVswitchd({ answers, ...extra });
  fakes.push(f);
  await f.start();
  return f;
}

describe('ovs collector against a fake ovs-vswitchd (OVS 3.1 replies)', () => {
  it('renders datapath, port, upcall, PMD, coverage and internal-port metrics from the replies', async () => {
    const f = await fake();
    const c = make({ 'ovs.rundir': f.rundir, 'path.sysfs': sysfs(false) });
    const text = await scrapeUntil(c, (t) => t.includes('flowpath_ovs_up 1'));
    const dp = 'datapath="netdev@ovs-netdev",source="unixctl"';
    expect(value(text, `flowpath_ovs_datapath_lookups_hit_total{${dp}}`)).toBe(8204594);
    expect(value(text, `flowpath_ovs_datapath_lookups_missed_total{${dp}}`)).toBe(50);
    expect(value(text, `flowpath_ovs_datapath_lookups_lost_total{${dp}}`)).toBe(0);
    expect(value(text, `flowpath_ovs_datapath_flows{${dp}}`)).toBe(4);
    // No masks/cache on the userspace datapath: absent, not 0.
    expect(text).not.toContain('flowpath_ovs_datapath_masks');
    expect(text).not.toContain('flowpath_ovs_datapath_cache_hit');
    expect(text).toContain('# TYPE flowpath_ovs_datapath_lookups_hit_total counter');
    expect(text).toContain('# TYPE flowpath_ovs_datapath_flows gauge');

    const w0 = 'datapath="netdev@ovs-netdev",port="w0",type="system",internal="false",source="unixctl"';
    expect(value(text, `flowpath_ovs_port_rx_packets_total{${w0}}`)).toBe(4064686);
    expect(value(text, `flowpath_ovs_port_tx_bytes_total{${w0}}`)).toBe(467748852);
    expect(value(text, `flowpath_ovs_port_stats_readable{${w0}}`)).toBe(1);
    const i0 = 'datapath="netdev@ovs-netdev",port="i0",type="tap",internal="true",source="unixctl"';
    expect(value(text, `flowpath_ovs_port_stats_readable{${i0}}`)).toBe(0);
    expect(value(text, `flowpath_ovs_port_rx_packets_total{${i0}}`)).toBeUndefined();
    const br1 = 'datapath="netdev@ovs-netdev",port="br1",type="tap",internal="true",source="unixctl"';
    expect(value(text, `flowpath_ovs_port_tx_dropped_total{${br1}}`)).toBe(7895998); // the port glued after i0's error
    const vx = 'datapath="netdev@ovs-netdev",port="vxlan_sys_4789",type="vxlan",internal="false",source="unixctl"';
    expect(value(text, `flowpath_ovs_port_rx_errors_total{${vx}}`)).toBeUndefined(); // "?" in dpctl
    expect(value(text, `flowpath_ovs_ports{${dp}}`)).toBe(8);
    expect(value(text, `flowpath_ovs_ports_left_out{${dp}}`)).toBe(0);

    expect(value(text, 'flowpath_ovs_upcall_flows{datapath="netdev@ovs-netdev"}')).toBe(4);
    expect(value(text, 'flowpath_ovs_upcall_flow_limit{datapath="netdev@ovs-netdev"}')).toBe(28000);
    expect(value(text, 'flowpath_ovs_upcall_dump_duration_seconds{datapath="netdev@ovs-netdev"}')).toBe(0.001);

    const main = 'datapath="netdev@ovs-netdev",thread="main",numa="",cpu=""';
    const pmdText = fx('pmd-stats-show.main-thread-3.1.txt');
    const emc = Number(/emc hits: (\d+)/.exec(pmdText)![1]);
    expect(value(text, `flowpath_ovs_pmd_emc_hits_total{${main}}`)).toBe(emc);
    expect(value(text, `flowpath_ovs_pmd_idle_cycles_total{${main}}`)).toBeUndefined();

    // Curated coverage: fired ones from coverage/show, defined-but-never-fired as 0, undefined ones absent.
    const cov = fx('coverage-show-3.1.txt');
    const xlate = Number(/^xlate_actions\s.*total: (\d+)$/m.exec(cov)![1]);
    expect(value(text, 'flowpath_ovs_coverage_events_total{event="xlate_actions"}')).toBe(xlate);
    expect(value(text, 'flowpath_ovs_coverage_events_total{event="upcall_flow_limit_hit"}')).toBe(0);
    expect(text).not.toContain('event="datapath_drop_upcall_error"');

    expect(value(text, 'flowpath_ovs_internal_port_info{device="i0",bridge="br0",datapath="netdev@ovs-netdev"}')).toBe(1);
    expect(value(text, 'flowpath_ovs_internal_port_info{device="br1",bridge="br1",datapath="netdev@ovs-netdev"}')).toBe(1);
    expect(text).not.toContain('device="w0"');
    expect(value(text, 'flowpath_ovs_info{version="3.1.0",dpdk_version=""}')).toBe(1);
    expect(value(text, 'flowpath_ovs_unixctl_command_success{command="dpctl/show -s"}')).toBe(1);
    expect(value(text, 'flowpath_ovs_unixctl_connects_total')).toBe(1);
    expect(value(text, 'flowpath_ovs_snapshot_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(text).not.toContain('flowpath_ovs_genl_up'); // no openvswitch.ko in the fake sysfs

    const check = promtoolCheckMetrics(text);
    expect(check.output).toBe('');
    expect(check.status).toBe(0);
  });

  it('asks coverage/read-counter once per connection for counters coverage/show does not list', async () => {
    const f = await fake();
    const c = make({ 'ovs.rundir': f.rundir, 'path.sysfs': sysfs(false) });
    await scrapeUntil(c, () => f.callsOf('coverage/show').length >= 3);
    const asked = f.callsOf('coverage/read-counter').map((x) => x[1]);
    expect(new Set(asked).size).toBe(asked.length);
    expect(asked).toContain('upcall_flow_limit_hit');
    expect(asked).not.toContain('xlate_actions'); // listed by coverage/show
    expect(f.callsOf('version')).toHaveLength(1); // once per connection
  });

  it('keeps the version command\'s outcome in every read of a connection (asked once, series stable)', async () => {
    const f = await fake();
    const c = make({ 'ovs.rundir': f.rundir, 'path.sysfs': sysfs(false) });
    await scrapeUntil(c, () => f.callsOf('coverage/show').length >= 3);
    const text = await scrape(c);
    expect(f.callsOf('version')).toHaveLength(1);
    expect(value(text, 'flowpath_ovs_unixctl_command_success{command="version"}')).toBe(1);
    expect(value(text, 'flowpath_ovs_info{version="3.1.0",dpdk_version=""}')).toBe(1);
    // a version reply that does not parse: 0, and it stays 0 on the same connection
    const g = await fake({ ...OVS31, version: 'not a version line\n' });
    const d = make({ 'ovs.rundir': g.rundir, 'path.sysfs': sysfs(false) });
    await scrapeUntil(d, () => g.callsOf('coverage/show').length >= 3);
    const t2 = await scrape(d);
    expect(g.callsOf('version')).toHaveLength(1);
    expect(value(t2, 'flowpath_ovs_unixctl_command_success{command="version"}')).toBe(0);
  });

  it('reassembles replies sent in 7-byte chunks and reads the newer error shape', async () => {
    const f = await fake({ ...OVS31, 'dpif-netdev/pmd-stats-show': { error: 'please specify an existing datapath\n' } }, { chunkBytes: 7, errorStyle: 'new' });
    const c = make({ 'ovs.rundir': f.rundir, 'path.sysfs': sysfs(false) });
    const text = await scrapeUntil(c, (t) => t.includes('flowpath_ovs_up 1'));
    expect(value(text, 'flowpath_ovs_datapath_lookups_hit_total{datapath="netdev@ovs-netdev",source="unixctl"}')).toBe(8204594);
    expect(value(text, 'flowpath_ovs_unixctl_command_success{command="dpif-netdev/pmd-stats-show"}')).toBe(0);
    expect(text).not.toContain('flowpath_ovs_pmd_');
  });

  it('caps per-port series at --ovs.max-ports, busiest first, and counts the rest', async () => {
    const f = await fake();
    const c = make({ 'ovs.rundir': f.rundir, 'path.sysfs': sysfs(false), 'ovs.max-ports': '2' });
    const text = await scrapeUntil(c, (t) => t.includes('flowpath_ovs_up 1'));
    const ports = [...text.matchAll(/^flowpath_ovs_port_stats_readable\{[^}]*port="([^"]+)"/gm)].map((m) => m[1]);
    expect(ports).toEqual(['w0', 'w1']);
    expect(value(text, 'flowpath_ovs_ports_left_out{datapath="netdev@ovs-netdev",source="unixctl"}')).toBe(6);
    expect(value(text, 'flowpath_ovs_ports{datapath="netdev@ovs-netdev",source="unixctl"}')).toBe(8);
  });

  it('publishes the internal-port set for other code', async () => {
    const f = await fake();
    const c = make({ 'ovs.rundir': f.rundir, 'path.sysfs': sysfs(false) });
    expect(latestOvsInternalPorts()).toBeUndefined();
    await scrapeUntil(c, (t) => t.includes('flowpath_ovs_up 1'));
    const set = latestOvsInternalPorts()!;
    expect(set.vswitchdUp).toBe(true);
    expect([...set.ports.keys()].sort()).toEqual(['br0', 'br1', 'i0', 'i1']);
    expect(ovsInternalPort('i1')).toEqual({ device: 'i1', bridge: 'br1', datapath: 'netdev@ovs-netdev', local: false, type: 'tap', source: 'unixctl' });
    expect(ovsInternalPort('br0')!.local).toBe(true);
    expect(ovsInternalPort('w0')).toBeUndefined();
  });
});

describe('ovs collector when OVS is absent, restarts or hangs', () => {
  it('reports up 0 without failing when there is no ovs-vswitchd, and logs that once', async () => {
    const lines: string[] = [];
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-noovs-'));
    tmp.push(empty);
    const c = make({ 'ovs.rundir': empty, 'path.sysfs': sysfs(false) }, createLogger('debug', (l) => lines.push(l)));
    let text = '';
    for (let i = 0; i < 5; i++) {
      text = await scrape(c);
      await new Promise((r) => setTimeout(r, 120));
    }
    expect(value(text, 'flowpath_ovs_up')).toBe(0);
    expect(text).not.toContain('flowpath_ovs_datapath_');
    expect(text).not.toContain('flowpath_ovs_info');
    expect(value(text, 'flowpath_ovs_snapshot_timestamp_seconds')).toBeGreaterThan(0);
    const warn = lines.filter((l) => l.includes('level=warn'));
    expect(warn).toHaveLength(1);
    expect(warn[0]).toContain(`${empty}/ovs-vswitchd.pid: ENOENT`);
    expect(promtoolCheckMetrics(text).status).toBe(0);
  });

  it('goes to up 0 when ovs-vswitchd dies and back to 1 after it restarts with a new pid', async () => {
    const f = await fake();
    const c = make({ 'ovs.rundir': f.rundir, 'path.sysfs': sysfs(false) });
    await scrapeUntil(c, (t) => t.includes('flowpath_ovs_up 1'));
    await f.stop();
    const down = await scrapeUntil(c, (t) => t.includes('flowpath_ovs_up 0'));
    expect(down).not.toContain('flowpath_ovs_datapath_lookups_hit_total');
    expect(value(down, 'flowpath_ovs_last_success_timestamp_seconds')).toBeGreaterThan(0);
    f.pid++;
    await f.start();
    const upAgain = await scrapeUntil(c, (t) => t.includes('flowpath_ovs_up 1'));
    expect(value(upAgain, 'flowpath_ovs_unixctl_connects_total')).toBe(2);
    expect(value(upAgain, 'flowpath_ovs_datapath_lookups_hit_total{datapath="netdev@ovs-netdev",source="unixctl"}')).toBe(8204594);
  });

  it('never lets a hung ovs-vswitchd delay a scrape: the snapshot ages and up drops after the timeout', async () => {
    const f = await fake();
    const c = make({ 'ovs.rundir': f.rundir, 'path.sysfs': sysfs(false), 'ovs.timeout': '300ms' });
    await scrapeUntil(c, (t) => t.includes('flowpath_ovs_up 1'));
    f.hang = true;
    // While the background read waits on the hung daemon, scrapes still return (the old snapshot).
    const during = await scrape(c);
    expect(during).toContain('flowpath_ovs_snapshot_age_seconds');
    const down = await scrapeUntil(c, (t) => t.includes('flowpath_ovs_up 0'));
    expect(down).not.toContain('flowpath_ovs_datapath_');
    f.hang = false;
    const back = await scrapeUntil(c, (t) => t.includes('flowpath_ovs_up 1'));
    // The connection with the unanswered request was dropped and a new one made.
    expect(value(back, 'flowpath_ovs_unixctl_connects_total')).toBeGreaterThanOrEqual(2);
  });

  it('finds the socket through $OVS_RUNDIR (pid file -> .ctl) and through an explicit --ovs.unixctl path', async () => {
    const f = await fake();
    const saved = process.env.OVS_RUNDIR;
    process.env.OVS_RUNDIR = f.rundir;
    try {
      const viaEnv = make({ 'path.sysfs': sysfs(false) });
      await scrapeUntil(viaEnv, (t) => t.includes('flowpath_ovs_up 1'));
    } finally {
      if (saved === undefined) delete process.env.OVS_RUNDIR;
      else process.env.OVS_RUNDIR = saved;
    }
    const viaPath = make({ 'ovs.unixctl': f.socketPath, 'ovs.rundir': '/nonexistent', 'path.sysfs': sysfs(false) });
    await scrapeUntil(viaPath, (t) => t.includes('flowpath_ovs_up 1'));
    // --ovs.rundir, when given, is the only place searched.
    const wrong = make({ 'ovs.rundir': '/nonexistent', 'path.sysfs': sysfs(false) });
    expect(await scrape(wrong)).toContain('flowpath_ovs_up 0');
  });
});

describe('ovs collector with a kernel datapath over genetlink', () => {
  const systemDpctl = fx('dpctl-show-s.system-constructed.txt');
  const answers: Record<string, Answer> = {
    ...OVS31,
    'dpctl/show': systemDpctl,
    'dpif/show': 'system@ovs-system: hit:1289452 missed:3127\n  br-int:\n    br-int 65534/1: (internal)\n    eth1 1/2: (system)\n',
    'upcall/show': fx('upcall-show.system-constructed.txt'),
  };

  it('exports the kernel datapath once, from genl, and keeps unixctl-only families', async () => {
    ovsTestHooks.genlSocket = () => new FakeGenl({ ctrl: loadHex('ctrl-families.hex'), dp: loadHex('dp-dump.hex'), vports: { 5: loadHex('vport-dump.hex') } });
    const f = await fake(answers);
    const c = make({ 'ovs.rundir': f.rundir, 'path.sysfs': sysfs(true) });
    const text = await scrapeUntil(c, (t) => t.includes('flowpath_ovs_up 1') && t.includes('flowpath_ovs_genl_up 1'));
    const g = 'datapath="system@ovs-system",source="genl"';
    expect(value(text, `flowpath_ovs_datapath_lookups_hit_total{${g}}`)).toBe(1289452);
    expect(value(text, `flowpath_ovs_datapath_masks_hit_total{${g}}`)).toBe(3987364);
    expect(value(text, `flowpath_ovs_datapath_masks{${g}}`)).toBe(9);
    expect(value(text, `flowpath_ovs_datapath_masks_hit_per_packet{${g}}`)).toBeCloseTo(3987364 / (1289452 + 3127), 12);
    expect(value(text, `flowpath_ovs_datapath_cache_hit_total{${g}}`)).toBe(1201190);
    expect(value(text, `flowpath_ovs_datapath_cache_hit_ratio{${g}}`)).toBeCloseTo(0.9293, 4); // dpctl: hit-rate:92.93%
    expect(value(text, `flowpath_ovs_datapath_masks_cache_size{${g}}`)).toBe(256);
    expect(text).not.toContain('source="unixctl"'); // the same datapath via unixctl is not exported twice
    const eth1 = 'datapath="system@ovs-system",port="eth1",type="system",internal="false",source="genl"';
    expect(value(text, `flowpath_ovs_port_upcall_packets_total{${eth1}}`)).toBe(3074);
    expect(value(text, `flowpath_ovs_port_upcall_errors_total{${eth1}}`)).toBe(12);
    expect(value(text, `flowpath_ovs_port_tx_dropped_total{${eth1}}`)).toBe(7);
    expect(value(text, 'flowpath_ovs_upcall_flow_limit{datapath="system@ovs-system"}')).toBe(200000);
    expect(value(text, 'flowpath_ovs_internal_port_info{device="br-int",bridge="br-int",datapath="system@ovs-system"}')).toBe(1);
    expect(text).not.toContain('flowpath_ovs_pmd_'); // no userspace datapath: pmd-stats-show not even asked
    expect(f.callsOf('dpif-netdev/pmd-stats-show')).toHaveLength(0);
    expect(promtoolCheckMetrics(text).status).toBe(0);
  });

  it('falls back to unixctl for the datapath when genl fails, and to genl (bridge unknown) when vswitchd is down', async () => {
    ovsTestHooks.genlSocket = () => new FakeGenl({ ctrl: loadHex('ctrl-families.hex'), dp: loadHex('dp-dump.hex'), vports: {} });
    const f = await fake(answers);
    const c = make({ 'ovs.rundir': f.rundir, 'path.sysfs': sysfs(true) });
    const text = await scrapeUntil(c, (t) => t.includes('flowpath_ovs_up 1') && t.includes('flowpath_ovs_genl_up 0'));
    expect(value(text, 'flowpath_ovs_datapath_lookups_hit_total{datapath="system@ovs-system",source="unixctl"}')).toBe(1289452);
    expect(value(text, 'flowpath_ovs_datapath_cache_hit_total{datapath="system@ovs-system",source="unixctl"}')).toBe(1201190);
    expect(value(text, 'flowpath_ovs_datapath_masks_cache_size{datapath="system@ovs-system",source="unixctl"}')).toBe(256);

    ovsTestHooks.genlSocket = undefined;
    const snapText = new Emitter();
    emitOvsSnapshot(
      snapText,
      {
        takenAt: 1000,
        durationSeconds: 0.01,
        unixctl: { up: false, error: 'gone', connects: 1, commands: [], unparsed: [] },
        kernel: { moduleLoaded: true, ok: true, state: { interrupted: false, datapaths: [] } },
        internalPorts: [{ device: 'br-int', bridge: '', datapath: 'system@ovs-system', local: false, type: 'internal', source: 'genl' }],
      },
      3500,
      64,
    );
    const t2 = snapText.render();
    expect(value(t2, 'flowpath_ovs_up')).toBe(0);
    expect(value(t2, 'flowpath_ovs_genl_up')).toBe(1);
    expect(value(t2, 'flowpath_ovs_snapshot_age_seconds')).toBe(2.5);
    expect(value(t2, 'flowpath_ovs_internal_port_info{device="br-int",bridge="",datapath="system@ovs-system"}')).toBe(1);
  });
});

describe('OvsReader shared between the collector and the diagnosis sampler', () => {
  it('joins concurrent reads and serves a snapshot younger than maxAgeMs without asking vswitchd again', async () => {
    const f = await fake();
    const reader = new OvsReader({ discover: { rundir: f.rundir }, timeoutMs: 2000, sysfs: sysfs(false), log: nullLogger });
    try {
      const [a, b] = await Promise.all([reader.read(), reader.read()]);
      expect(a).toBe(b);
      expect(a.unixctl.up).toBe(true);
      const dumps = f.callsOf('dpctl/show').length;
      expect(dumps).toBe(1);
      const c = await reader.read(60_000);
      expect(c).toBe(a);
      expect(f.callsOf('dpctl/show').length).toBe(dumps);
      const d = await reader.read();
      expect(d).not.toBe(a);
      expect(f.callsOf('dpctl/show').length).toBe(dumps + 1);
    } finally {
      reader.close();
    }
  });

  it('sharedOvsReader returns one reader per exporter config', () => {
    const config = Config.from(allFlags(), {});
    expect(sharedOvsReader(config, nullLogger)).toBe(sharedOvsReader(config, nullLogger));
    expect(sharedOvsReader(Config.from(allFlags(), {}), nullLogger)).not.toBe(sharedOvsReader(config, nullLogger));
  });
});
