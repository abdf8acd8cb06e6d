// One test per rule of the table (a case that must fire and one that must not), a guard that every rule
// in RULES has its test, and the verdict on synthetic versions of each lab condition.

import { RULES, RuleContext, lossy, rankFindings, rttInflated } from '../../../src/diagnosis/rules';
import { diagnose } from '../../../src/diagnosis/verdict';
import type { CpuDelta, DeviceDelta, Finding, FlowSummary, NodeSummary, OwnerSummary, QdiscDelta, Status, ThreadDelta } from '../../../src/diagnosis/types';
import { MBIT, SIG, node, skmem, synthFlow } from './synth';

function evalRule(id: string, c: RuleContext): Omit<Finding, 'rule' | 'hop'> | undefined {
  const r = RULES.find((x) => x.id === id);
  if (!r) throw new Error(`no rule ${id}`);
  return r.evaluate(c);
}

const devd = (name: string, p: Partial<DeviceDelta> = {}, snap: Partial<DeviceDelta['snapshot']> = {}): DeviceDelta => ({
  name,
  snapshot: { name, ...snap },
  txDropped: 0,
  rxDropped: 0,
  rxMissed: 0,
  txErrors: 0,
  rxErrors: 0,
  txStop: 0,
  ...p,
});
const qd = (device: string, kind: string, p: Partial<QdiscDelta> = {}, snap: Partial<QdiscDelta['snapshot']> = {}): QdiscDelta => ({
  snapshot: { device, kind, root: true, backlogBytes: 0, ...snap },
  drops: 0,
  overlimits: 0,
  requeues: 0,
  ...p,
});
const cpu = (n: number, p: Partial<CpuDelta> = {}): CpuDelta => ({ cpu: n, softirqShare: 0.1, timeSqueeze: 0, softnetDropped: 0, netRx: 1000, ...p });
/** A thread over the window: run and wait shares (schedstat), on CPU 1. */
const thread = (run: number, wait: number, p: Partial<ThreadDelta> = {}): ThreadDelta => ({ pid: 900, tid: 901, comm: 'iperf3', runShare: run, waitShare: wait, demand: run + wait, processor: 1, ...p });
const INODE = 4242;
/** A node whose socket INODE is held by a process with these threads (CPU 1 at 40% softirq). */
const ownerNode = (threads: ThreadDelta[], p: Partial<NodeSummary> = {}, o: Partial<OwnerSummary> = {}): NodeSummary =>
  node({ owners: [{ inode: INODE, pids: [900], threads, ...o }], cpus: [cpu(0), cpu(1, { softirqShare: 0.4, irqShare: 0.01, stealShare: 0 })], cpuBusy: 0.97, ...p });
const ovsDp = (p: Partial<NonNullable<NodeSummary['ovs']>> = {}): NodeSummary['ovs'] => ({ datapaths: [{ name: 'ovs-netdev', type: 'netdev' }], portDrops: [], ...p });

// Flows (4 s, 20 Hz), from the lab signatures.
const F = {
  base: synthFlow(SIG.base, { goodputBps: 935 * MBIT, retransPerSec: 7 }),
  baseBbr: synthFlow(SIG.base_bbr_veth, { goodputBps: 11000 * MBIT }),
  paceCubic: synthFlow(SIG.pace_cubic, { goodputBps: 100 * MBIT }),
  app: synthFlow(SIG.app, { busy: 0.25, goodputBps: 100 * MBIT }),
  rwnd: synthFlow(SIG.rwnd, { rwnd: 0.94, goodputBps: 111 * MBIT }),
  sndbuf: synthFlow(SIG.sndbuf, { busy: 0.97, goodputBps: 673 * MBIT }),
  bneck: synthFlow(SIG.bneck, { goodputBps: 191 * MBIT, retransPerSec: 10 }),
  bneckBbr: synthFlow(SIG.bneck_bbr, { goodputBps: 193 * MBIT, retransPerSec: 150 }),
  loss: synthFlow(SIG.loss, { goodputBps: 255 * MBIT, retransPerSec: 400 }),
  localTbf: synthFlow(SIG.local_tbf, { goodputBps: 200 * MBIT }),
  // cwnd-limited, no loss, no queue (rtt at its minimum)
  smallCwnd: synthFlow({ ...SIG.loss, rtt: 310, minRtt: 300 }, { goodputBps: 255 * MBIT }),
  // veth + BBR: many retransmits, ~90% spurious
  spurious: synthFlow(SIG.base_bbr, { goodputBps: 18000 * MBIT, retransPerSec: 15000, dsackPerSec: 13500 }),
  // iperf3 on veth, CPU-bound: everything it writes is sent at once (nothing unsent, busy)
  cpuBound: synthFlow({ ...SIG.app, inode: INODE, appLimited: true }, { busy: 0.97, goodputBps: 12000 * MBIT }),
  appOwned: synthFlow({ ...SIG.app, inode: INODE }, { busy: 0.25, goodputBps: 100 * MBIT }),
  // The veth report: BBR with room to send, pacing_rate 215 Gbit/s, goodput ~11 Gbit/s
  bbrFastPacing: synthFlow({ ...SIG.base_bbr_veth, inode: INODE, pacingRate: 215e9 / 8, bbr: { bw: 173e9 / 8, minRtt: 20, pacingGain: 1.25, cwndGain: 2 } }, { goodputBps: 10750 * MBIT }),
  // SO_MAX_PACING_RATE 2 Gbit/s, pacing at it, the flow sends 100 Mbit/s
  capFar: synthFlow({ ...SIG.pace_cubic, pacingRate: 2e9 / 8, maxPacingRate: 2e9 / 8 }, { goodputBps: 100 * MBIT }),
  rwndOwned: synthFlow({ ...SIG.rwnd, inode: INODE }, { rwnd: 0.94, goodputBps: 111 * MBIT }),
  // The test guest (synth.ts SIG.guest_*), rates and retransmits over the measured 5 s windows
  guestFqPace: synthFlow(SIG.guest_fq_pace, { goodputBps: 49.1 * MBIT }),
  guestLossRtt20: synthFlow(SIG.guest_loss_rtt20, { seconds: 5, goodputBps: 8.9 * MBIT, retransPerSec: 7.6 }),
  guestLossLan: synthFlow(SIG.guest_loss_lan, { seconds: 5, goodputBps: 182.6 * MBIT, retransPerSec: 165 }),
  guestReorder: synthFlow(SIG.guest_reorder, { seconds: 5, goodputBps: 10.7 * MBIT, retransPerSec: 13.8, dsackPerSec: 13.8 }),
};
/** Node A in the test guest: the address on br-int (kernel OVS internal port), uplink eth1 with fq. */
const guestNode = (fq: Partial<QdiscDelta> = {}) =>
  node({
    path: { ipDevice: 'br-int', nicDevice: 'eth1', viaOvs: true },
    devices: [devd('br-int'), devd('eth1')],
    qdiscs: [qd('br-int', 'noqueue'), qd('eth1', 'fq', { fqThrottled: 1409, ...fq }, { backlogBytes: 136294 })],
    ovs: { datapaths: [{ name: 'ovs-system', type: 'system' }], portDrops: [] },
  });
const guestNodeNoFq = () => node({ path: { ipDevice: 'br-int', nicDevice: 'eth1', viaOvs: true }, devices: [devd('br-int'), devd('eth1')], qdiscs: [qd('br-int', 'noqueue'), qd('eth1', 'noqueue')], ovs: { datapaths: [{ name: 'ovs-system', type: 'system' }], portDrops: [] } });
// The receiver's view (its own inode; the peer's exporter sampled it).
const RX = {
  bigBuffer: synthFlow({ cc: 'cubic', inode: INODE, skmem: skmem({ rmemAlloc: 6e6, rcvbuf: 6291456 }) }, { goodputBps: 0 }),
  smallBuffer: synthFlow({ cc: 'cubic', inode: INODE, skmem: skmem({ rmemAlloc: 4000, rcvbuf: 8192 }) }, { goodputBps: 0 }),
};

const ovsNode = (p: Partial<NodeSummary> = {}) =>
  node({ path: { ipDevice: 'a-int', nicDevice: 'wire-a', viaOvs: true }, devices: [devd('a-int')], ...p });

type Case = { name: string; c: RuleContext; status: Status; limit?: string };
const CASES: Record<string, Case[]> = {
  'app-limited': [
    { name: 'iperf3 -b 100M: idle 75%, nothing unsent 25%', c: { tx: F.app }, status: 'limiting', limit: 'app' },
    { name: 'bulk sender', c: { tx: F.bneck }, status: 'ok' },
  ],
  'sender-cpu': [
    {
      name: 'writer 98% of a core on CPU 1 (softirq 40% there), nothing unsent: limiting',
      c: { tx: F.cpuBound, txNode: ownerNode([thread(0.98, 0.01)]) },
      status: 'limiting',
      limit: 'cpu',
    },
    { name: 'writer starved: ran 50%, waited runnable 45%', c: { tx: F.cpuBound, txNode: ownerNode([thread(0.5, 0.45)]) }, status: 'limiting', limit: 'cpu' },
    { name: 'iperf3 -b 100M on a loaded node: ran 5%, waited for a CPU 25%, slept the rest: idle by choice', c: { tx: F.appOwned, txNode: ownerNode([thread(0.05, 0.25)]) }, status: 'ok' },
    { name: 'iperf3 -b 100M: the writer sleeps (4% of a core)', c: { tx: F.appOwned, txNode: ownerNode([thread(0.04, 0)]) }, status: 'ok' },
    { name: 'writer CPU-bound but the flow is held by the path (cwnd): suspect at most', c: { tx: { ...F.bneck, last: { ...F.bneck.last, inode: INODE } }, txNode: ownerNode([thread(0.99, 0)]) }, status: 'ok' },
    { name: 'no permission to read /proc/PID/fd: unknown, never limiting', c: { tx: F.cpuBound, txNode: ownerNode([], {}, { pids: [], unknown: 'no permission to read /proc/PID/fd of 3 processes (EACCES)' }) }, status: 'ok' },
  ],
  'sndbuf-limited': [
    { name: 'sndbuf 8 KB: w ≥ tb, notsent 0 (chrono silent)', c: { tx: F.sndbuf }, status: 'limiting', limit: 'sndbuf' },
    { name: 'sndbuf chrono 72% (256 KB case)', c: { tx: synthFlow(SIG.bneck, { sndbuf: 0.72 }) }, status: 'limiting', limit: 'sndbuf' },
    { name: 'app-limited with a big buffer', c: { tx: F.app }, status: 'ok' },
  ],
  'pacing-capped': [
    { name: '--fq-rate 100M', c: { tx: F.paceCubic }, status: 'limiting', limit: 'pacing_capped' },
    { name: 'no max_pacing_rate', c: { tx: F.base }, status: 'ok' },
    { name: 'max_pacing_rate 20× the send rate: the cap did not hold the flow', c: { tx: F.capFar }, status: 'ok' },
    { name: 'test guest: fq enforces --fq-rate 50M, skmem t at the small-queue limit, 49.1 Mbit/s', c: { tx: F.guestFqPace, txNode: guestNode() }, status: 'limiting', limit: 'pacing_capped' },
  ],
  pacing: [
    { name: 'BBR pacing at its estimate', c: { tx: F.baseBbr }, status: 'suspect', limit: 'pacing' },
    { name: 'pacing rate 20× the send rate: pacing did not hold the flow', c: { tx: F.bbrFastPacing }, status: 'ok' },
    { name: 'cubic, cwnd-limited', c: { tx: F.bneck }, status: 'ok' },
  ],
  'cwnd-growth': [
    { name: 'cwnd-limited without loss or queue', c: { tx: F.smallCwnd }, status: 'suspect', limit: 'cwnd' },
    { name: 'cwnd-limited with a queue (explained elsewhere)', c: { tx: F.bneck }, status: 'ok' },
  ],
  'spurious-retransmits': [
    { name: '90% of retransmits DSACKed', c: { tx: F.spurious }, status: 'suspect', limit: 'reordering' },
    { name: 'real loss', c: { tx: F.loss }, status: 'ok' },
    { name: 'test guest: netem reorder, every retransmit DSACKed', c: { tx: F.guestReorder }, status: 'suspect', limit: 'reordering' },
    { name: 'test guest: 1% random loss, 2 DSACKs in 960 retransmits', c: { tx: synthFlow(SIG.guest_loss_lan, { seconds: 5, goodputBps: 182.6 * MBIT, retransPerSec: 165, dsackPerSec: 0.4 }) }, status: 'ok' },
  ],
  tsq: [
    {
      name: 'local tbf: t at the TSQ limit, qdisc backlog',
      c: { tx: F.localTbf, txNode: node({ qdiscs: [qd('eth0', 'tbf', { overlimits: 5000 }, { backlogBytes: 1.7e6 })] }) },
      status: 'limiting',
      limit: 'tsq',
    },
    { name: 'at the TSQ limit but nothing queues: only suspect', c: { tx: F.localTbf, txNode: node() }, status: 'suspect', limit: 'tsq' },
    { name: 'no skmem t', c: { tx: F.bneck, txNode: node() }, status: 'ok' },
    { name: 'test guest: at the small-queue limit because fq paces the flow at its max_pacing_rate', c: { tx: F.guestFqPace, txNode: guestNode() }, status: 'ok' },
  ],
  qdisc: [
    {
      name: 'tbf overlimits while the flow waits below TCP',
      c: { tx: F.localTbf, txNode: node({ qdiscs: [qd('eth0', 'tbf', { overlimits: 5000 }, { backlogBytes: 1.7e6 })] }) },
      status: 'limiting',
      limit: 'queue',
    },
    {
      name: 'qdisc drops while the flow loses segments',
      c: { tx: F.loss, txNode: node({ qdiscs: [qd('eth0', 'tbf', { drops: 1500 })] }) },
      status: 'limiting',
      limit: 'drops',
    },
    { name: 'pfifo_fast, nothing', c: { tx: F.bneck, txNode: node({ qdiscs: [qd('eth0', 'pfifo_fast')] }) }, status: 'ok' },
    { name: 'test guest: fq throttles the flow\'s own paced skbs (max_pacing_rate): no shaper', c: { tx: F.guestFqPace, txNode: guestNode() }, status: 'ok' },
    {
      name: 'fq throttling and a backlog while the flow waits below TCP unpaced: fq shapes (maxrate)',
      c: { tx: F.localTbf, txNode: guestNode() },
      status: 'limiting',
      limit: 'queue',
    },
  ],
  'internal-port-tx': [
    {
      name: 'OVS base: a-int tx drops = the retransmits',
      c: { tx: F.base, txNode: ovsNode({ devices: [devd('a-int', { txDropped: 28 })] }) },
      status: 'limiting',
      limit: 'drops',
    },
    { name: 'no drops', c: { tx: F.base, txNode: ovsNode() }, status: 'ok' },
  ],
  'ovs-tx-cpu': [
    {
      name: 'vswitchd 100% with the userspace datapath',
      c: { tx: F.base, txNode: ovsNode({ ovs: { datapaths: [{ name: 'ovs-netdev', type: 'netdev' }], portDrops: [], vswitchdCpuShare: 0.99 } }) },
      status: 'limiting',
      limit: 'cpu',
    },
    {
      name: 'vswitchd 95% but the flow loses packets the host does not count (a bottleneck downstream): suspect',
      c: { tx: F.bneckBbr, txNode: ovsNode({ ovs: { datapaths: [{ name: 'ovs-netdev', type: 'netdev', lost: 0 }], portDrops: [], vswitchdCpuShare: 0.95 } }) },
      status: 'suspect',
      limit: 'cpu',
    },
    {
      name: 'vswitchd 60% on a node whose CPUs are all busy: starved, suspect',
      c: { tx: F.base, txNode: ovsNode({ cpuBusy: 0.97, ovs: { datapaths: [{ name: 'ovs-netdev', type: 'netdev' }], portDrops: [], vswitchdCpuShare: 0.6 } }) },
      status: 'suspect',
      limit: 'cpu',
    },
    {
      name: 'userspace datapath, busiest thread wanted a CPU 100% and blocked 10 times/s: saturated',
      c: { tx: F.base, txNode: ovsNode({ ovs: ovsDp({ vswitchdCpuShare: 0.6, vswitchdThread: thread(0.6, 0.4, { comm: 'ovs-vswitchd', sleepsPerSecond: 10 }) }) }) },
      status: 'limiting',
      limit: 'cpu',
    },
    {
      name: 'vswitchd at 95% of a core but its thread blocked 450 times/s (polls, spare capacity): not saturated',
      c: { tx: F.bneck, txNode: ovsNode({ ovs: ovsDp({ vswitchdCpuShare: 0.95, vswitchdThread: thread(0.95, 0.05, { comm: 'ovs-vswitchd', sleepsPerSecond: 450 }) }) }) },
      status: 'ok',
    },
    { name: 'vswitchd 20%', c: { tx: F.bneck, txNode: ovsNode({ ovs: { datapaths: [{ name: 'ovs-netdev', type: 'netdev' }], portDrops: [], vswitchdCpuShare: 0.2 } }) }, status: 'ok' },
  ],
  'ovs-rx-cpu': [
    {
      name: 'receiver vswitchd saturated, no loss beyond the hosts',
      c: { tx: F.base, rxNode: ovsNode({ ovs: { datapaths: [{ name: 'ovs-netdev', type: 'netdev' }], portDrops: [], vswitchdCpuShare: 0.97 } }) },
      status: 'limiting',
      limit: 'cpu',
    },
    { name: 'kernel datapath: vswitchd CPU does not forward', c: { tx: F.bneck, rxNode: ovsNode({ ovs: { datapaths: [{ name: 'system@ovs-system', type: 'system' }], portDrops: [], vswitchdCpuShare: 0.97 } }) }, status: 'ok' },
  ],
  'ovs-tx-lost': [
    {
      name: 'datapath lost packets of a lossy flow',
      c: { tx: F.loss, txNode: ovsNode({ ovs: { datapaths: [{ name: 'ovs-netdev', type: 'netdev', lost: 900, missed: 3 }], portDrops: [] } }) },
      status: 'limiting',
      limit: 'drops',
    },
    { name: 'upcall storm: suspect', c: { tx: F.base, txNode: ovsNode({ ovs: { datapaths: [{ name: 'ovs-netdev', missed: 4000, lost: 0 }], portDrops: [] } }) }, status: 'suspect', limit: 'cpu' },
    { name: 'all hits', c: { tx: F.base, txNode: ovsNode({ ovs: { datapaths: [{ name: 'ovs-netdev', missed: 2, lost: 0 }], portDrops: [] } }) }, status: 'ok' },
  ],
  'ovs-rx-lost': [
    { name: 'receiver datapath lost', c: { tx: F.base, rxNode: ovsNode({ ovs: { datapaths: [{ name: 'ovs-netdev', lost: 10 }], portDrops: [] } }) }, status: 'suspect', limit: 'drops' },
    { name: 'receiver datapath fine', c: { tx: F.base, rxNode: ovsNode({ ovs: { datapaths: [{ name: 'ovs-netdev', lost: 0, missed: 0 }], portDrops: [] } }) }, status: 'ok' },
  ],
  'nic-tx': [
    {
      name: 'NIC tx drops with a lossy flow',
      c: { tx: F.loss, txNode: node({ path: { ipDevice: 'eth0', nicDevice: 'eth0' }, devices: [devd('eth0', { txDropped: 500 }, { kind: 'physical', tso: true })] }) },
      status: 'limiting',
      limit: 'drops',
    },
    { name: 'TSO off on a physical NIC', c: { tx: F.base, txNode: node({ devices: [devd('eth0', {}, { kind: 'physical', tso: false })] }) }, status: 'suspect', limit: 'config' },
    { name: 'queue stops', c: { tx: F.base, txNode: node({ devices: [devd('eth0', { txStop: 40 }, { kind: 'physical', tso: true })] }) }, status: 'suspect', limit: 'drops' },
    { name: 'clean NIC', c: { tx: F.base, txNode: node({ devices: [devd('eth0', {}, { kind: 'physical', tso: true })] }) }, status: 'ok' },
  ],
  'link-rate': [
    { name: '9.5 Gbit/s on a 10G NIC', c: { tx: synthFlow(SIG.base, { goodputBps: 9500 * MBIT }), txNode: node({ devices: [devd('eth0', {}, { kind: 'physical', speedBps: 10e9 })] }) }, status: 'limiting', limit: 'link_rate' },
    { name: 'a physical 10G NIC carrying 3 Gbit/s', c: { tx: synthFlow(SIG.base, { goodputBps: 3000 * MBIT }), txNode: node({ devices: [devd('eth0', {}, { kind: 'physical', speedBps: 10e9 })] }) }, status: 'ok' },
  ],
  'link-bottleneck': [
    { name: 'bneck cubic: cwnd-limited, srtt 3 ms vs 0.13', c: { tx: F.bneck, txNode: node() }, status: 'limiting', limit: 'queue' },
    { name: 'loss: cwnd collapsed, rtt at minimum, 400 retransmits/s', c: { tx: F.loss, txNode: node() }, status: 'limiting', limit: 'loss' },
    {
      name: 'queue explained by a saturated OVS on the sender: only suspect',
      c: { tx: F.base, txNode: ovsNode({ ovs: { datapaths: [{ name: 'ovs-netdev', type: 'netdev' }], portDrops: [], vswitchdCpuShare: 0.99 } }) },
      status: 'suspect',
      limit: 'queue',
    },
    { name: 'pacing-capped flow', c: { tx: F.paceCubic, txNode: node() }, status: 'ok' },
    { name: 'test guest: 1% random loss, 20 ms RTT: srtt 24 vs min 20 ms, 0.8% lost, no host drops', c: { tx: F.guestLossRtt20, txNode: guestNodeNoFq() }, status: 'limiting', limit: 'loss' },
    {
      name: 'test guest: 1% random loss at min_rtt 0.12 ms: cwnd ~50 against a BDP of 2-3 segments, srtt 2.9 ms: a queue',
      c: { tx: F.guestLossLan, txNode: guestNodeNoFq() },
      status: 'limiting',
      limit: 'queue',
    },
    {
      name: 'OVS bneck: vswitchd near a core, but its thread blocks 450 times/s: the queue is beyond the host',
      c: { tx: F.bneck, txNode: ovsNode({ ovs: ovsDp({ vswitchdCpuShare: 0.95, vswitchdThread: thread(0.9, 0.08, { comm: 'ovs-vswitchd', sleepsPerSecond: 450 }) }) }) },
      status: 'limiting',
      limit: 'queue',
    },
  ],
  'rx-cpu': [
    { name: 'RX CPU 98% softirq, squeezing', c: { tx: F.bneck, rxNode: node({ rxCpu: cpu(1, { softirqShare: 0.98, timeSqueeze: 300 }) }) }, status: 'limiting', limit: 'cpu' },
    { name: 'RX CPU 18%', c: { tx: F.bneck, rxNode: node({ rxCpu: cpu(1, { softirqShare: 0.18 }) }) }, status: 'ok' },
  ],
  'rx-drops': [
    { name: 'receiver NIC drops while the sender loses', c: { tx: F.loss, rxNode: node({ devices: [devd('eth0', { rxDropped: 900 })], rxCpu: cpu(0) }) }, status: 'limiting', limit: 'drops' },
    { name: 'backlog drops but no loss at the sender: suspect', c: { tx: F.bneck, rxNode: node({ devices: [devd('eth0')], rxCpu: cpu(0, { softnetDropped: 21 }) }) }, status: 'suspect', limit: 'drops' },
    { name: 'clean', c: { tx: F.bneck, rxNode: node({ devices: [devd('eth0')], rxCpu: cpu(0) }) }, status: 'ok' },
  ],
  'rx-internal-port': [
    { name: 'b-int rx drops, lossy flow', c: { tx: F.loss, rxNode: ovsNode({ path: { ipDevice: 'b-int', nicDevice: 'wire-b', viaOvs: true }, devices: [devd('b-int', { rxDropped: 200 })] }) }, status: 'limiting', limit: 'drops' },
    { name: 'b-int clean', c: { tx: F.loss, rxNode: ovsNode({ path: { ipDevice: 'b-int', nicDevice: 'wire-b', viaOvs: true }, devices: [devd('b-int')] }) }, status: 'ok' },
  ],
  'rx-tcp-drops': [
    { name: 'TCPRcvQDrop rising, lossy flow', c: { tx: F.loss, rxNode: node({ tcpExt: { TCPRcvQDrop: 120, TCPBacklogDrop: 0 } }) }, status: 'limiting', limit: 'drops' },
    { name: 'no receive drops', c: { tx: F.loss, rxNode: node({ tcpExt: { TCPRcvQDrop: 0, TCPOFOQueue: 50 } }) }, status: 'ok' },
  ],
  'receiver-cpu': [
    {
      name: 'reader CPU-bound, its buffer full (r near rb), the sender held by the window',
      c: { tx: F.rwndOwned, rx: RX.bigBuffer, rxNode: ownerNode([thread(0.97, 0.02, { comm: 'reader' })]) },
      status: 'limiting',
      limit: 'cpu',
    },
    {
      name: 'reader CPU-bound but the receive buffer is below the BDP: the buffer is the cause (suspect)',
      c: { tx: { ...F.rwndOwned, medianRttUs: 2000 }, rx: RX.smallBuffer, rxNode: ownerNode([thread(0.97, 0.02)]) },
      status: 'suspect',
      limit: 'cpu',
    },
    {
      name: 'reader CPU-bound but its receive queue is empty: the window is the buffer size (suspect)',
      c: { tx: F.rwndOwned, rx: synthFlow({ cc: 'cubic', inode: INODE, skmem: skmem({ rmemAlloc: 0, rcvbuf: 6291456 }) }, { goodputBps: 0 }), rxNode: ownerNode([thread(0.97, 0.02)]) },
      status: 'suspect',
      limit: 'cpu',
    },
    { name: 'reader sleeps', c: { tx: F.rwndOwned, rx: RX.bigBuffer, rxNode: ownerNode([thread(0.1, 0)]) }, status: 'ok' },
  ],
  'rwnd-limited': [
    { name: 'tcp_rmem max 8 KB at the receiver: rwnd_limited 94%', c: { tx: F.rwnd }, status: 'limiting', limit: 'rwnd' },
    { name: 'veth: rwnd chrono only 45%, samples show the window closed', c: { tx: synthFlow(SIG.rwnd, { rwnd: 0.45 }) }, status: 'limiting', limit: 'rwnd' },
    { name: 'bulk flow with a big window', c: { tx: F.bneck }, status: 'ok' },
  ],
};

describe('every rule of the table has a test', () => {
  it('CASES covers RULES exactly', () => {
    expect(Object.keys(CASES).sort()).toEqual(RULES.map((r) => r.id).sort());
  });
  it('rule ids are unique and every rule documents what decides it', () => {
    expect(new Set(RULES.map((r) => r.id)).size).toBe(RULES.length);
    for (const r of RULES) expect(r.decides.length).toBeGreaterThan(10);
  });
});

describe.each(Object.entries(CASES))('rule %s', (id, cases) => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_n, k) => {
    const f = evalRule(id, k.c);
    expect(f).toBeDefined();
    expect(f?.status).toBe(k.status);
    if (k.limit) expect(f?.limit).toBe(k.limit);
    if (k.status !== 'ok') expect(f?.next.length).toBeGreaterThan(10);
    expect(f?.score).toBeGreaterThanOrEqual(0);
  });
  it('says nothing without its data', () => {
    expect(evalRule(id, { txNode: node(), rxNode: node() })?.status ?? 'none').not.toBe('limiting');
    expect(evalRule(id, {})).toBeUndefined();
  });
});

describe('derived facts', () => {
  it('rtt inflation and loss on the lab signatures', () => {
    expect(rttInflated(F.bneck)).toBe(true);
    expect(rttInflated(F.loss)).toBe(false);
    expect(lossy(F.loss)).toBe(true);
    expect(lossy(F.bneck)).toBe(false);
    expect(lossy(F.spurious)).toBe(false); // 90% spurious: not loss
  });
  it('ranks limiting before suspect before ok, then by score', () => {
    const mk = (rule: string, status: Status, score: number): Finding => ({ rule, hop: 'link', status, score, summary: '', evidence: {}, next: '' });
    const r = rankFindings([mk('a', 'ok', 1), mk('b', 'suspect', 0.9), mk('c', 'limiting', 0.2), mk('d', 'limiting', 0.7)]);
    expect(r.map((f) => f.rule)).toEqual(['d', 'c', 'b', 'a']);
  });
});

// Synthetic versions of the lab matrix: the top finding must name the right limit and hop.
describe('verdict on synthetic lab conditions', () => {
  const ovs = ovsNode();
  const veth = node({ path: { ipDevice: 'eth0', nicDevice: 'eth0' }, devices: [devd('eth0', {}, { kind: 'veth', speedBps: 10e9 })], qdiscs: [qd('eth0', 'noqueue')] });
  const cases: Array<[string, string, string, FlowSummary, NodeSummary]> = [
    ['pacing-capped cubic', 'tcp-tx', 'pacing_capped', F.paceCubic, ovs],
    ['app-limited', 'socket-tx', 'app', F.app, veth],
    ['rwnd-limited', 'socket-rx', 'rwnd', F.rwnd, ovs],
    ['sndbuf-limited', 'socket-tx', 'sndbuf', F.sndbuf, veth],
    ['bottleneck cubic', 'link', 'queue', F.bneck, ovs],
    ['bottleneck bbr', 'link', 'queue', F.bneckBbr, veth],
    ['loss cubic', 'link', 'loss', F.loss, veth],
  ];
  it.each(cases)('%s -> %s / %s', (_n, hop, limit, flow, n) => {
    const v = diagnose({ sender: { flow, nodeSummary: n } });
    expect(v.top?.hop).toBe(hop);
    expect(v.top?.limit).toBe(limit);
  });

  it('an unconstrained BBR flow gets no limiting finding', () => {
    const v = diagnose({ sender: { flow: F.baseBbr, nodeSummary: veth } });
    expect(v.top).toBeUndefined();
    expect(v.findings.filter((f) => f.status === 'limiting')).toEqual([]);
  });

  it('OVS base cubic: the internal port (OVS not draining it) is named, not the link', () => {
    const n = ovsNode({ devices: [devd('a-int', { txDropped: 28 })] });
    const v = diagnose({ sender: { flow: F.base, nodeSummary: n } });
    expect(v.top?.hop).toBe('qdisc-tx');
    expect(v.findings.find((f) => f.rule === 'link-bottleneck')?.status).toBe('suspect');
  });

  it('hops: OVS hops are n/a on a plain path, receiver hops need the peer', () => {
    const v = diagnose({ sender: { flow: F.bneck, nodeSummary: veth } });
    expect(v.hops.find((h) => h.hop === 'ovs-tx')?.status).toBe('n/a');
    expect(v.hops.find((h) => h.hop === 'nic-rx')?.status).toBe('no data');
    expect(v.hops.find((h) => h.hop === 'link')?.status).toBe('limiting');
    expect(v.hops).toHaveLength(11);
  });
});

// The netem / fq conditions of the test guest (test/vm/guest/diagnosis.guest.ts), from node A's samples.
describe('verdict on the test guest conditions', () => {
  it('fq-pacing: tcp-tx / pacing_capped (not qdisc-tx / tsq: TSQ is how fq holds the socket to its cap)', () => {
    const v = diagnose({ sender: { flow: F.guestFqPace, nodeSummary: guestNode() } });
    expect([v.top?.hop, v.top?.limit]).toEqual(['tcp-tx', 'pacing_capped']);
    expect(v.findings.filter((f) => f.status !== 'ok').map((f) => f.rule)).toEqual(['pacing-capped']);
  });
  it('loss with a 20 ms round trip: link / loss', () => {
    const v = diagnose({ sender: { flow: F.guestLossRtt20, nodeSummary: guestNodeNoFq() } });
    expect([v.top?.hop, v.top?.limit]).toEqual(['link', 'loss']);
  });
  it('reorder: spurious retransmits are suspect and the link is not called lossy', () => {
    const v = diagnose({ sender: { flow: F.guestReorder, nodeSummary: guestNodeNoFq() } });
    expect(v.findings.find((f) => f.rule === 'spurious-retransmits')?.status).toBe('suspect');
    expect(v.top?.limit).not.toBe('loss');
  });
});

describe('corner cases measured on the lab', () => {
  it('veth "10G" carrying 10.3 Gbit/s: the nominal speed of a virtual device is no limit', () => {
    const f = evalRule('link-rate', { tx: synthFlow(SIG.base, { goodputBps: 10300 * MBIT }), txNode: node({ devices: [devd('eth0', {}, { kind: 'veth', speedBps: 10e9 })] }) });
    expect(f).toBeUndefined();
  });
  it('veth, sndbuf 8 KB: the writer waits on the buffer, so idle and app time are the buffer\'s (idle 35%, app 27%, sndbuf 38%)', () => {
    const sig = { ...SIG.sndbuf, rtt: 20, minRtt: 5, deliveryRate: 12000 * MBIT };
    const flow = synthFlow(sig, { busy: 0.65, sndbuf: 0.2, goodputBps: 9800 * MBIT, vary: (i) => (i % 3 === 0 ? { skmem: skmem({ wmemQueued: 0, sndbuf: 8192 }) } : {}) });
    expect(evalRule('sndbuf-limited', { tx: flow })?.status).toBe('limiting');
    expect(evalRule('app-limited', { tx: flow })?.status).toBe('suspect');
    expect(diagnose({ sender: { flow } }).top?.rule).toBe('sndbuf-limited');
  });
  it('a truly app-limited flow with a big buffer stays app-limited', () => {
    expect(evalRule('app-limited', { tx: F.app })?.status).toBe('limiting');
    expect(evalRule('sndbuf-limited', { tx: F.app })?.status).toBe('ok');
  });
});
