// The qdisc decoder and collector against iproute2's tc (6.1):
//  1. the built fixtures (fq, fq_codel, legacy tc_stats: kinds this kernel lacks) decoded by
//     `tc -s -d monitor file`, tc's own decoder, field by field;
//  2. a private two-namespace topology (mq + children, htb + classes + leaves, tbf + child,
//     pfifo_fast + ingress, bridge/veth noqueue): the collector, run inside the namespace, against
//     `tc -s -j qdisc show` there, and counters that move when traffic runs.
// Part 2 needs root (skipped otherwise); the namespaces are deleted even when an assertion fails.

import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { forEachMessage } from '../../src/sources/netlink/attrs';
import { QdiscRecord, decodeQdisc, formatHandle, formatParent } from '../../src/sources/netlink/qdisc';
import { Topology, canCreateNetns, inNs, traffic, up } from '../support/qdisc-topology';
import { promtoolAvailable, promtoolCheckMetrics } from '../support/promtool';

const FIXTURES = path.join(__dirname, '../fixtures/qdisc');
const REPO = path.join(__dirname, '../..');
const tcAvailable = spawnSync('tc', ['-V']).status === 0;

// ---- tc text output -----------------------------------------------------------------------------

interface TcBlock {
  kind: string;
  handle: string;
  parent: string;
  header: Map<string, string>;
  flags: Set<string>;
  /** key -> value per stats line, keyed by the line's first word ("Sent", "backlog", "flows", "gc", ...). */
  lines: Map<string, Map<string, string>>;
}

const HEADER_FLAGS = new Set(['nopacing', 'pacing', 'horizon_drop', 'horizon_cap', 'ecn']);

function parseTcText(text: string): TcBlock[] {
  const blocks: TcBlock[] = [];
  let cur: TcBlock | null = null;
  for (const raw of text.split('\n')) {
    if (raw.startsWith('qdisc ')) {
      const t = raw.trim().split(/\s+/);
      // qdisc <kind> <handle> dev <dev> root|parent <p> [refcnt N] <options...>
      let i = 6;
      let parent = 'root';
      if (t[5] === 'parent') {
        parent = t[6];
        i = 7;
      }
      if (t[i] === 'refcnt') i += 2;
      const header = new Map<string, string>();
      const flags = new Set<string>();
      for (; i < t.length; i++) {
        if (HEADER_FLAGS.has(t[i])) flags.add(t[i]);
        else header.set(t[i], t[++i]);
      }
      cur = { kind: t[1], handle: t[2], parent, header, flags, lines: new Map() };
      blocks.push(cur);
      continue;
    }
    if (!cur || raw.trim() === '') continue;
    const t = raw.replace(/[(),]/g, ' ').trim().split(/\s+/);
    const m = new Map<string, string>();
    for (let i = 0; i + 1 < t.length; i += 2) m.set(t[i], t[i + 1]);
    // "Sent 123 bytes 4 pkt (dropped 0, overlimits 0 requeues 0)": values precede their names here
    if (t[0] === 'Sent') {
      m.clear();
      m.set('bytes', t[1]).set('packets', t[3]);
      for (let i = 5; i + 1 < t.length; i += 2) m.set(t[i], t[i + 1]);
    }
    if (t[0] === 'rate') {
      // legacy stats line: "rate 8Kbit 10pps backlog 18000b 12p"
      const b = t.indexOf('backlog');
      m.clear();
      m.set('backlog', t[b + 1]).set('qlen', t[b + 2]);
      cur.lines.set('backlog', m);
      continue;
    }
    if (t[0] === 'backlog') {
      m.clear();
      m.set('backlog', t[1]).set('qlen', t[2]).set('requeues', t[4]);
    }
    cur.lines.set(t[0], m);
  }
  return blocks;
}

/** "10000p" -> 10000, "3028b" -> 3028, "32Mb" -> 33554432, "100Mbit" -> bytes/s, "40ms" -> µs. */
function tcNumber(s: string): number {
  let m = /^(\d+(?:\.\d+)?)(Kbit|Mbit|Gbit|bit)$/.exec(s);
  if (m) return (Number(m[1]) * { bit: 1, Kbit: 1e3, Mbit: 1e6, Gbit: 1e9 }[m[2] as 'bit']) / 8;
  m = /^(\d+(?:\.\d+)?)(us|ms|s)$/.exec(s);
  if (m) return Number(m[1]) * { us: 1, ms: 1e3, s: 1e6 }[m[2] as 'us'];
  m = /^(\d+)(Kb|Mb|Gb)$/.exec(s);
  if (m) return Number(m[1]) * { Kb: 1024, Mb: 1024 ** 2, Gb: 1024 ** 3 }[m[2] as 'Kb'];
  m = /^(\d+)[pb]?$/.exec(s);
  if (m) return Number(m[1]);
  throw new Error(`cannot read tc value "${s}"`);
}

function decodeFile(file: string): QdiscRecord[] {
  const out: QdiscRecord[] = [];
  forEachMessage(fs.readFileSync(file), (m) => out.push(decodeQdisc(m.buf, m.start, m.end)));
  return out;
}

const num = (m: Map<string, string> | undefined, k: string) => {
  const v = m?.get(k);
  return v === undefined ? undefined : tcNumber(v);
};

// ---- 1. fixtures through tc's decoder ------------------------------------------------------------

(tcAvailable ? describe : describe.skip)('built fixtures: our decoder vs `tc -s -d monitor file`', () => {
  it.each(['fq-mq-6.7.bin', 'fq-sizes.bin', 'fq_codel.bin', 'legacy-tc-stats.bin'])('%s', (name) => {
    const file = path.join(FIXTURES, name);
    const r = spawnSync('tc', ['-s', '-d', 'monitor', 'file', file], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const tc = parseTcText(r.stdout);
    const ours = decodeFile(file);
    expect(ours).toHaveLength(tc.length);
    ours.forEach((q, i) => {
      const t = tc[i];
      expect([q.kind, formatHandle(q.handle), formatParent(q.parent)]).toEqual([t.kind, t.handle, t.parent]);
      const sent = t.lines.get('Sent');
      const backlog = t.lines.get('backlog');
      expect([q.bytes, q.packets, q.drops, q.overlimits]).toEqual([num(sent, 'bytes'), num(sent, 'packets'), num(sent, 'dropped'), num(sent, 'overlimits')]);
      expect(q.requeues).toEqual(num(sent, 'requeues'));
      expect([q.backlog, q.qlen]).toEqual([num(backlog, 'backlog'), num(backlog, 'qlen')]);

      if (q.fq) {
        const flows = t.lines.get('flows');
        const gc = t.lines.get('gc');
        const ptl = t.lines.get('pkts_too_long');
        expect([q.fq.flows, q.fq.inactiveFlows, q.fq.throttledFlows]).toEqual([num(flows, 'flows'), num(flows, 'inactive'), num(flows, 'throttled')]);
        expect([q.fq.gcFlows, q.fq.throttled, q.fq.flowsPlimit]).toEqual([num(gc, 'gc'), num(gc, 'throttled'), num(gc, 'flows_plimit')]);
        expect(q.fq.ceMark).toEqual(num(gc, 'ce_mark'));
        expect([q.fq.pktsTooLong, q.fq.allocationErrors]).toEqual([num(ptl, 'pkts_too_long'), num(ptl, 'alloc_errors')]);
        expect(q.fq.horizonDrops).toEqual(num(ptl, 'horizon_drops'));
        expect(q.fq.horizonCaps).toEqual(num(ptl, 'horizon_caps'));
        // tc rounds times for display ("12.3us", "1.5ms")
        expect(q.fq.unthrottleLatencyNs / 1000).toBeCloseTo(num(gc, 'latency')!, 0);
        const npd = num(flows, 'next_packet_delay');
        if (q.fq.timeNextDelayedFlowNs > 0) expect(q.fq.timeNextDelayedFlowNs / 1000).toBeCloseTo(npd!, 0);
        else expect(npd).toBeUndefined();
      }
      if (q.fqOptions) {
        const o = q.fqOptions;
        const h = t.header;
        expect(o.plimit).toEqual(num(h, 'limit'));
        expect(o.flowPlimit).toEqual(num(h, 'flow_limit'));
        expect(o.quantum).toEqual(num(h, 'quantum'));
        expect(o.initialQuantum).toEqual(num(h, 'initial_quantum'));
        expect(o.lowRateThreshold).toEqual(num(h, 'low_rate_threshold'));
        expect(o.flowRefillDelayUs).toEqual(num(h, 'refill_delay'));
        expect(o.horizonUs).toEqual(num(h, 'horizon'));
        expect(o.timerSlackNs === undefined ? undefined : o.timerSlackNs / 1000).toEqual(num(h, 'timer_slack'));
        expect(o.bucketsLog === undefined ? undefined : 2 ** o.bucketsLog).toEqual(num(h, 'buckets'));
        // maxrate is printed only when set; ~0U means unlimited
        expect(o.flowMaxRate === undefined || o.flowMaxRate === 0xffffffff ? undefined : o.flowMaxRate).toEqual(num(h, 'maxrate'));
        expect(o.rateEnable === 0).toBe(t.flags.has('nopacing'));
        if (o.horizonDrop !== undefined) expect(t.flags.has(o.horizonDrop ? 'horizon_drop' : 'horizon_cap')).toBe(true);
      }
      if (q.fqCodel) {
        const a = t.lines.get('maxpacket');
        const b = t.lines.get('new_flows_len');
        const s = q.fqCodel;
        expect([s.maxpacket, s.dropOverlimit, s.newFlowCount, s.ecnMark]).toEqual([num(a, 'maxpacket'), num(a, 'drop_overlimit'), num(a, 'new_flow_count'), num(a, 'ecn_mark')]);
        expect([s.ceMark, s.memoryUsage, s.dropOvermemory]).toEqual([num(a, 'ce_mark'), num(a, 'memory_used'), num(a, 'drop_overmemory')]);
        expect([s.newFlowsLen, s.oldFlowsLen]).toEqual([num(b, 'new_flows_len'), num(b, 'old_flows_len')]);
      } else if (q.kind === 'fq_codel') {
        expect(t.lines.has('maxpacket')).toBe(false); // class-type xstats: tc prints deficit/count instead
      }
      if (q.fqCodelOptions) {
        const o = q.fqCodelOptions;
        const h = t.header;
        expect([o.limit, o.flows, o.quantum, o.targetUs, o.intervalUs, o.memoryLimit, o.dropBatchSize]).toEqual(
          ['limit', 'flows', 'quantum', 'target', 'interval', 'memory_limit', 'drop_batch'].map((k) => num(h, k)),
        );
        expect(o.ecn === 1).toBe(t.flags.has('ecn'));
      }
    });
  });
});

// ---- 2. live namespace topology ------------------------------------------------------------------

interface TcJson {
  kind: string;
  handle: string;
  dev: string;
  root?: boolean;
  parent?: string;
  bytes: number;
  packets: number;
  drops: number;
  overlimits: number;
  requeues: number;
  backlog: number;
  qlen: number;
}

type Series = Map<string, number>; // `${family}{labels}` -> value

function collectInNs(ns: string): Series {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', ns, process.execPath, '-r', path.join(REPO, 'test/support/ts-register.js'), path.join(REPO, 'test/support/collect-once.ts'), 'qdisc', '--collector.nic.device-include=.*'],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`collector in ${ns} failed (${r.status}): ${r.stdout}${r.stderr}`);
  if (promtoolAvailable()) expect(promtoolCheckMetrics(r.stdout)).toEqual({ status: 0, output: '' });
  const s: Series = new Map();
  for (const line of r.stdout.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    s.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return s;
}

const key = (fam: string, t: { dev: string; kind: string; handle: string; parent: string }) =>
  `${fam}{device="${t.dev}",kind="${t.kind}",handle="${t.handle}",parent="${t.parent}"}`;

const COUNTERS: Array<[string, keyof TcJson]> = [
  ['flowpath_qdisc_bytes_total', 'bytes'],
  ['flowpath_qdisc_packets_total', 'packets'],
  ['flowpath_qdisc_drops_total', 'drops'],
  ['flowpath_qdisc_overlimits_total', 'overlimits'],
  ['flowpath_qdisc_requeues_total', 'requeues'],
  ['flowpath_qdisc_backlog_bytes', 'backlog'],
  ['flowpath_qdisc_qlen_packets', 'qlen'],
];

(canCreateNetns() ? describe : describe.skip)('live: qdisc collector vs `tc -s -j qdisc show` in a private namespace', () => {
  let topo: Topology | undefined;
  beforeAll(() => {
    topo = up(`${process.pid}`);
  });
  afterAll(() => {
    topo?.down();
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    expect(left).not.toContain(`fpq-${process.pid}-`);
  });

  it('reports every qdisc tc shows, children included, with the same counters', () => {
    const t = topo!;
    traffic(t, 20);
    // Compare only when our view is stable across the tc read (no stray packet in between).
    let attempt = 0;
    for (;;) {
      const before = collectInNs(t.nsA);
      const tc = JSON.parse(inNs(t.nsA, 'tc', ['-s', '-j', 'qdisc', 'show'])) as TcJson[];
      const after = collectInNs(t.nsA);
      const stable = [...before].every(([k, v]) => after.get(k) === v) && before.size === after.size;
      if (!stable && ++attempt < 5) continue;
      expect(stable).toBe(true);
      const infos = [...after.keys()].filter((k) => k.startsWith('flowpath_qdisc_info{'));
      expect(infos).toHaveLength(tc.length);
      for (const q of tc) {
        const id = { dev: q.dev, kind: q.kind, handle: q.handle, parent: q.root ? 'root' : q.parent! };
        expect(after.get(key('flowpath_qdisc_info', id))).toBe(1);
        for (const [fam, field] of COUNTERS) expect([key(fam, id), after.get(key(fam, id))]).toEqual([key(fam, id), q[field]]);
      }
      // the shapes the topology promises
      const kinds = tc.map((q) => `${q.dev}:${q.kind}:${q.root ? 'root' : q.parent}`);
      expect(kinds).toEqual(expect.arrayContaining(['v0:mq:root', 'v0:pfifo_fast:1:1', 'v0:pfifo_fast:1:4', 'v1:htb:root', 'v1:pfifo:1:10', 'v1:bfifo:1:20', 'v2:tbf:root', 'v2:pfifo:1:1', 'v3:pfifo_fast:root', 'v3:ingress:ffff:fff1', 'br0:noqueue:root', 'v4:noqueue:root', 'lo:noqueue:root']));
      break;
    }
  });

  it('counters move when traffic runs, where tc says they should', () => {
    const t = topo!;
    const before = collectInNs(t.nsA);
    traffic(t, 30, 1400);
    const after = collectInNs(t.nsA);
    const delta = (fam: string, id: { dev: string; kind: string; handle: string; parent: string }) => after.get(key(fam, id))! - before.get(key(fam, id))!;
    const mq = { dev: 'v0', kind: 'mq', handle: '1:', parent: 'root' };
    const htb = { dev: 'v1', kind: 'htb', handle: '1:', parent: 'root' };
    const leaf = { dev: 'v1', kind: 'pfifo', handle: '10:', parent: '1:10' };
    const tbf = { dev: 'v2', kind: 'tbf', handle: '1:', parent: 'root' };
    const br = { dev: 'br0', kind: 'noqueue', handle: '0:', parent: 'root' };
    expect(delta('flowpath_qdisc_packets_total', mq)).toBeGreaterThanOrEqual(30);
    expect(delta('flowpath_qdisc_bytes_total', mq)).toBeGreaterThanOrEqual(30 * 1400);
    // the mq root is the sum of its children
    const children = [...after.keys()].filter((k) => k.startsWith('flowpath_qdisc_bytes_total{device="v0",kind="pfifo_fast"'));
    expect(children).toHaveLength(4);
    expect(children.reduce((s, k) => s + after.get(k)!, 0)).toBe(after.get(key('flowpath_qdisc_bytes_total', mq)));
    // htb default class leaf carries the traffic; 1 Mbit makes htb and tbf throttle
    expect(delta('flowpath_qdisc_packets_total', leaf)).toBeGreaterThanOrEqual(30);
    expect(delta('flowpath_qdisc_packets_total', htb)).toBe(delta('flowpath_qdisc_packets_total', leaf));
    expect(delta('flowpath_qdisc_overlimits_total', htb)).toBeGreaterThan(0);
    expect(delta('flowpath_qdisc_overlimits_total', tbf)).toBeGreaterThan(0);
    // noqueue: traffic went through br0, its counters stay 0
    expect(after.get(key('flowpath_qdisc_bytes_total', br))).toBe(0);
  });
});
