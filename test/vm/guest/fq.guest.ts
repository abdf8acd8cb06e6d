// Inside the test guest: the qdisc collector's fq statistics and options, field by field against
// `tc -s -d qdisc show`, on a single-queue veth (fq as root) and on a 4-queue veth (mq with an fq child
// per queue). Traffic: a UDP flood above fq's maxrate (throttling and flows_plimit drops), UDP datagrams
// with SO_TXTIME departure times beyond the horizon (horizon drops, then caps), a 4-stream TCP flow
// through mq. Counters are compared once the traffic has stopped (fq changes nothing while idle).
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Config } from '../../../src/core/flags';
import { Emitter } from '../../../src/core/metrics';
import { nullLogger } from '../../../src/core/log';
import { allFlags } from '../../../src/exporter';
import { qdiscCollector } from '../../../src/collectors/qdisc';
import { Series, one, parseExposition, pick, record, sh, shAsync, sleep, TIMEOUT, progress } from './support';

const NS = 'fqpeer';
const LOCAL = { fq0: '203.0.113.9', mq0: '203.0.113.13' } as const;
const PEER = { fq0: '203.0.113.10', mq0: '203.0.113.14' } as const;

async function collect(): Promise<Series> {
  const config = Config.from(allFlags([qdiscCollector]), { 'collector.nic.device-include': '^(fq0|mq0)$' });
  const c = qdiscCollector.create({ config, log: nullLogger });
  const out = new Emitter();
  try {
    await c.collect(out, { signal: new AbortController().signal, now: Date.now() });
  } finally {
    await c.close?.();
  }
  return parseExposition(out.render());
}

interface TcFq {
  handle: string;
  parent: string;
  sentBytes: number;
  sentPkts: number;
  dropped: number;
  overlimits: number;
  requeues: number;
  backlogBytes: number;
  backlogPkts: number;
  opts: Record<string, string>;
  x: Record<string, number>;
  raw: string;
}

/** `tc -s -d qdisc show dev DEV`: the fq qdiscs, parsed with this test's own regexes. */
function tcFq(dev: string): TcFq[] {
  const text = sh('tc', ['-s', '-d', 'qdisc', 'show', 'dev', dev]);
  const out: TcFq[] = [];
  for (const block of text.split(/\n(?=qdisc )/)) {
    const h = /^qdisc fq (\S+) (root|parent (\S+)) ([^\n]*)\n Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+) requeues (\d+)\)\s*\n backlog (\d+)b (\d+)p/.exec(block);
    if (!h) continue;
    const opts: Record<string, string> = {};
    for (const m of h[4].matchAll(/(limit|flow_limit|buckets|quantum|initial_quantum|low_rate_threshold|maxrate|horizon) (\S+)/g)) opts[m[1]] = m[2];
    opts.horizon_mode = /horizon_cap/.test(h[4]) ? 'cap' : 'drop';
    opts.pacing = /nopacing/.test(h[4]) ? 'off' : 'on';
    const x: Record<string, number> = {};
    const f = /flows (\d+) \(inactive (\d+) throttled (\d+)\)/.exec(block);
    if (!f) throw new Error(`no fq xstats in:\n${block}`);
    x.flows = +f[1];
    x.inactive = +f[2];
    x.throttledFlows = +f[3];
    // Everything after the "flows N (inactive N throttled N)" line: gc, highprio, throttled, then the rare
    // counters, which tc prints only when they are not 0 (and may wrap onto further lines).
    const line = block.slice(block.indexOf('\n', f.index) + 1).replace(/\s+/g, ' ');
    if (!/^ ?gc \d+/.test(line)) throw new Error(`no fq gc line in:\n${block}`);
    for (const k of ['gc', 'highprio', 'throttled', 'ce_mark', 'flows_plimit', 'pkts_too_long', 'alloc_errors', 'horizon_drops', 'horizon_caps']) {
      const m = new RegExp(` ${k} (\\d+)`).exec(line);
      x[k] = m ? +m[1] : 0; // tc prints the rare counters only when they are not 0
    }
    out.push({ handle: h[1], parent: h[3] ?? 'root', sentBytes: +h[5], sentPkts: +h[6], dropped: +h[7], overlimits: +h[8], requeues: +h[9], backlogBytes: +h[10], backlogPkts: +h[11], opts, x, raw: block });
  }
  return out;
}

/** "10Mbit" / "550Kbit" (tc's bit rates, 1000-based) -> bytes per second. */
function rateBytes(s: string): number {
  const m = /^([\d.]+)([KMG]?)bit$/.exec(s);
  if (!m) throw new Error(`rate ${s}`);
  return (Number(m[1]) * { '': 1, K: 1e3, M: 1e6, G: 1e9 }[m[2] as '' | 'K' | 'M' | 'G']) / 8;
}

/** "3028b" / "15Kb" (tc sizes, 1024-based) -> bytes. */
function sizeBytes(s: string): number {
  const m = /^(\d+)(K|M)?b$/.exec(s);
  if (!m) throw new Error(`size ${s}`);
  return Number(m[1]) * (m[2] === 'K' ? 1024 : m[2] === 'M' ? 1024 * 1024 : 1);
}

/** Every field tc prints for one fq qdisc equals the collector's series. */
function compareFq(s: Series, dev: string, q: TcFq): number {
  const l = pick(s, 'flowpath_qdisc_info', { device: dev, kind: 'fq' }).find((x) => x.labels.handle.replace(/:$/, '') === q.handle.replace(/:$/, '') && (q.parent === 'root' ? x.labels.parent === 'root' : x.labels.parent === q.parent));
  assert.ok(l, `fq ${q.handle} parent ${q.parent} on ${dev} in flowpath_qdisc_info: ${pick(s, 'flowpath_qdisc_info', { device: dev }).map((x) => x.key).join(', ')}`);
  const L = { device: dev, kind: 'fq', handle: l.labels.handle, parent: l.labels.parent };
  const pairs: Array<[string, number, number]> = [
    ['bytes', q.sentBytes, one(s, 'flowpath_qdisc_bytes_total', L)],
    ['packets', q.sentPkts, one(s, 'flowpath_qdisc_packets_total', L)],
    ['drops', q.dropped, one(s, 'flowpath_qdisc_drops_total', L)],
    ['overlimits', q.overlimits, one(s, 'flowpath_qdisc_overlimits_total', L)],
    ['requeues', q.requeues, one(s, 'flowpath_qdisc_requeues_total', L)],
    ['backlog bytes', q.backlogBytes, one(s, 'flowpath_qdisc_backlog_bytes', L)],
    ['qlen', q.backlogPkts, one(s, 'flowpath_qdisc_qlen_packets', L)],
    ['flows', q.x.flows, one(s, 'flowpath_qdisc_fq_flows', L)],
    ['inactive flows', q.x.inactive, one(s, 'flowpath_qdisc_fq_inactive_flows', L)],
    ['throttled flows', q.x.throttledFlows, one(s, 'flowpath_qdisc_fq_throttled_flows', L)],
    ['gc', q.x.gc, one(s, 'flowpath_qdisc_fq_gc_flows_total', L)],
    ['throttled', q.x.throttled, one(s, 'flowpath_qdisc_fq_throttled_total', L)],
    ['ce_mark', q.x.ce_mark, one(s, 'flowpath_qdisc_fq_ce_mark_total', L)],
    ['flows_plimit', q.x.flows_plimit, one(s, 'flowpath_qdisc_fq_flows_plimit_total', L)],
    ['pkts_too_long', q.x.pkts_too_long, one(s, 'flowpath_qdisc_fq_pkts_too_long_total', L)],
    ['alloc_errors', q.x.alloc_errors, one(s, 'flowpath_qdisc_fq_allocation_errors_total', L)],
    ['horizon_drops', q.x.horizon_drops, one(s, 'flowpath_qdisc_fq_horizon_drops_total', L)],
    ['horizon_caps', q.x.horizon_caps, one(s, 'flowpath_qdisc_fq_horizon_caps_total', L)],
    ['limit', Number(q.opts.limit.replace(/p$/, '')), one(s, 'flowpath_qdisc_fq_plimit_packets', L)],
    ['flow_limit', Number(q.opts.flow_limit.replace(/p$/, '')), one(s, 'flowpath_qdisc_fq_flow_plimit_packets', L)],
    ['quantum', sizeBytes(q.opts.quantum), one(s, 'flowpath_qdisc_fq_quantum_bytes', L)],
    ['initial_quantum', sizeBytes(q.opts.initial_quantum), one(s, 'flowpath_qdisc_fq_initial_quantum_bytes', L)],
    ['low_rate_threshold', rateBytes(q.opts.low_rate_threshold), one(s, 'flowpath_qdisc_fq_low_rate_threshold_bytes_per_second', L)],
    ['maxrate', q.opts.maxrate === undefined ? Infinity : rateBytes(q.opts.maxrate), one(s, 'flowpath_qdisc_fq_flow_max_rate_bytes_per_second', L)],
    ['horizon', Number(q.opts.horizon.replace(/s$/, '')), one(s, 'flowpath_qdisc_fq_horizon_seconds', L)],
    ['horizon_drop', q.opts.horizon_mode === 'drop' ? 1 : 0, one(s, 'flowpath_qdisc_fq_horizon_drop', L)],
    ['rate_enable', q.opts.pacing === 'on' ? 1 : 0, one(s, 'flowpath_qdisc_fq_rate_enable', L)],
  ];
  for (const [what, tc, exp] of pairs) assert.equal(exp, tc, `${dev} ${q.handle} ${what}: exporter ${exp}, tc ${tc}; tc -s -d:\n${q.raw}`);
  return pairs.length;
}

/** UDP datagrams to PEER:9 whose SO_TXTIME departure time is `aheadS` seconds in the future. */
function txtimeFlood(dst: string, aheadS: number, count: number): void {
  const py = `
import socket, struct, time
SO_TXTIME = 61
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, SO_TXTIME, struct.pack('iI', time.CLOCK_MONOTONIC, 0))
for i in range(${count}):
    t = time.clock_gettime_ns(time.CLOCK_MONOTONIC) + int(${aheadS} * 1e9)
    s.sendmsg([b'x' * 100], [(socket.SOL_SOCKET, SO_TXTIME, struct.pack('Q', t))], 0, ('${dst}', 9))
`;
  sh('python3', ['-c', py]);
}

describe('fq in the guest: the qdisc collector vs tc -s -d qdisc', () => {
  before(() => {
    sh('modprobe', ['sch_fq']);
    sh('sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    sh('ip', ['netns', 'add', NS]);
    sh('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
    sh('ip', ['link', 'add', 'fq0', 'type', 'veth', 'peer', 'name', 'fq0p', 'netns', NS]);
    sh('ip', ['link', 'add', 'mq0', 'numtxqueues', '4', 'numrxqueues', '4', 'type', 'veth', 'peer', 'name', 'mq0p', 'numtxqueues', '4', 'numrxqueues', '4', 'netns', NS]);
    for (const d of ['fq0', 'mq0'] as const) {
      sh('ip', ['addr', 'add', `${LOCAL[d]}/30`, 'dev', d]);
      sh('ip', ['link', 'set', d, 'up']);
      sh('ip', ['-n', NS, 'addr', 'add', `${PEER[d]}/30`, 'dev', `${d}p`]);
      sh('ip', ['-n', NS, 'link', 'set', `${d}p`, 'up']);
    }
    sh('tc', ['qdisc', 'replace', 'dev', 'fq0', 'root', 'handle', '10:', 'fq', 'limit', '200', 'flow_limit', '20', 'maxrate', '20mbit', 'horizon', '2s', 'horizon_drop']);
    sh('tc', ['qdisc', 'replace', 'dev', 'mq0', 'root', 'handle', '1:', 'mq']);
    for (let q = 1; q <= 4; q++) sh('tc', ['qdisc', 'replace', 'dev', 'mq0', 'parent', `1:${q}`, 'fq', 'flow_limit', '50']);
  }, TIMEOUT.before);

  beforeEach((t) => progress(`test: ${t.name}`));

  after(() => {
    try {
      sh('ip', ['netns', 'del', NS]);
    } catch {
      /* gone */
    }
  }, TIMEOUT.after);

  it('fq root: throttling and flows_plimit drops from a UDP flood above maxrate, horizon drops and caps from SO_TXTIME', TIMEOUT.test, async () => {
    const srv = sh('ip', ['netns', 'exec', NS, 'iperf3', '-s', '-1', '-D', '-B', PEER.fq0, '-p', '5301']);
    void srv;
    await sleep(1000);
    const u = await shAsync('iperf3', ['-c', PEER.fq0, '-B', LOCAL.fq0, '-p', '5301', '-u', '-b', '200M', '-l', '1200', '-t', '2', '-J'], 120000);
    assert.equal(u.code, 0, u.stdout + u.stderr);
    txtimeFlood(PEER.fq0, 10, 20); // beyond the 2 s horizon: dropped
    sh('tc', ['qdisc', 'change', 'dev', 'fq0', 'root', 'handle', '10:', 'fq', 'horizon', '2s', 'horizon_cap']);
    txtimeFlood(PEER.fq0, 10, 15); // capped to the horizon, sent 2 s later
    await sleep(3000); // the capped datagrams leave, the queue drains
    const [q] = tcFq('fq0');
    assert.ok(q, 'tc shows the fq');
    const n = compareFq(await collect(), 'fq0', q);
    // The traffic really exercised what is compared.
    assert.ok(q.x.throttled > 0, `throttled ${q.x.throttled}`);
    assert.ok(q.x.flows_plimit > 0, `flows_plimit ${q.x.flows_plimit}`);
    assert.equal(q.x.horizon_drops, 20);
    assert.equal(q.x.horizon_caps, 15);
    assert.equal(q.opts.horizon_mode, 'cap');
    record('fq.jsonl', { case: 'fq root', fields: n, ...q.x, dropped: q.dropped });
  });

  it('mq with an fq child per TX queue: every child and the mq root', TIMEOUT.test, async () => {
    sh('ip', ['netns', 'exec', NS, 'iperf3', '-s', '-1', '-D', '-B', PEER.mq0, '-p', '5302']);
    await sleep(1000);
    const t = await shAsync('iperf3', ['-c', PEER.mq0, '-B', LOCAL.mq0, '-p', '5302', '-P', '8', '-t', '2', '-J'], 120000);
    assert.equal(t.code, 0, t.stdout + t.stderr);
    await sleep(500);
    const qs = tcFq('mq0');
    assert.equal(qs.length, 4);
    const s = await collect();
    let n = 0;
    for (const q of qs) n += compareFq(s, 'mq0', q);
    const used = qs.filter((q) => q.sentPkts > 100).length;
    assert.ok(used >= 2, `8 streams used ${used} of 4 TX queues`);
    // mq reports the sum of its children.
    const mq = pick(s, 'flowpath_qdisc_bytes_total', { device: 'mq0', kind: 'mq' });
    assert.equal(mq.length, 1);
    assert.equal(mq[0].value, qs.reduce((a, q) => a + q.sentBytes, 0));
    record('fq.jsonl', { case: 'mq+fq', fields: n, queues_used: used, sent: qs.map((q) => q.sentPkts) });
  });
});
