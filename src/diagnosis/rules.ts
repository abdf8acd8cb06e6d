// The path verdict: one readable table of rules (RULES below). Each rule looks at one hop of the path
// socket → TCP → qdisc / internal port → OVS → NIC TX → link → NIC RX → OVS → internal port → TCP →
// socket and returns a finding (ok / suspect / limiting, the values it used, and the next check a person
// should make), or nothing when it has no data. docs/diagnosis.md documents every rule; each has a test
// in test/unit/diagnosis/rules.test.ts.

import type {
  DeviceDelta,
  DiagnosisInput,
  EvidenceValue,
  Finding,
  FlowSummary,
  Hop,
  Limit,
  NodeSummary,
  OwnerSummary,
  QdiscDelta,
  Reason,
  Status,
  ThreadDelta,
} from './types';
import { mssOf, skbBytes } from './classify';

// ---------------------------------------------------------------------------------------------------
// Thresholds (documented in docs/diagnosis.md, "Thresholds")

export const T = {
  /** A reason holding the flow this share of the time makes its hop limiting. */
  limitingShare: 0.5,
  /** ... and this share makes it suspect. */
  suspectShare: 0.2,
  /** sndbuf: limiting from this share (the exact chrono under-reports small buffers). */
  sndbufLimitingShare: 0.3,
  /** cwnd-limited share above which the rules look for the bottleneck behind the cwnd. */
  cwndShare: 0.3,
  /** RTT counts as inflated (a queue is building) when median srtt ≥ factor × min_rtt ... */
  rttInflation: 2,
  /** ... and at least this much above it (µs). */
  rttInflationMinUs: 1000,
  /** Non-spurious retransmitted bytes / sent bytes at or above this is a lossy path. */
  lossRatio: 0.002,
  /** With a queue building, drops at its tail are rarer: this ratio and ... */
  queueLossRatio: 0.0001,
  /** ... this many lost segments in the window count as the queue overflowing. */
  queueLossSegs: 5,
  /** Share of retransmits that DSACKs showed to be spurious above which reordering is suspected. */
  spuriousShare: 0.5,
  /** CPU share (0..1) counted as saturated: RX softirq CPU, ovs-vswitchd. */
  cpuSaturated: 0.9,
  /** ovs-vswitchd at this share of a core counts as saturated when the whole node is CPU-bound. */
  vswitchdStarvedShare: 0.5,
  /** Delivery at this share of the link speed means the link is full. */
  linkFull: 0.9,
  /** time_squeeze per second on the RX CPU that, with ≥ 50% softirq, counts as saturated. */
  squeezesPerSecond: 10,
  /** OVS upcalls (misses) per second above which the datapath's slow path is suspect. */
  upcallsPerSecond: 100,
  /** A thread that wanted a CPU (ran + waited runnable) this share of the window is CPU-bound. */
  threadCpuBound: 0.9,
  /** A CPU-bound thread that waited runnable for a CPU this share of the window is also called starved. */
  threadStarved: 0.2,
  /**
   * A forwarding thread (ovs-vswitchd) that blocked at least this often per second found its queues
   * empty that often: it has spare capacity, whatever its CPU share (a polling loop looks busy).
   */
  forwarderSleepsPerSecond: 100,
  /** Pacing is only a plausible limit while the send rate is at least this share of the pacing rate. */
  pacingRateMatch: 0.5,
} as const;

// ---------------------------------------------------------------------------------------------------
// Derived facts shared by the rules

export interface RuleContext {
  tx?: FlowSummary;
  rx?: FlowSummary;
  txNode?: NodeSummary;
  rxNode?: NodeSummary;
}

export function contextOf(input: DiagnosisInput): RuleContext {
  return {
    tx: input.sender?.flow,
    rx: input.receiver?.flow,
    txNode: input.sender?.nodeSummary,
    rxNode: input.receiver?.nodeSummary,
  };
}

export function share(f: FlowSummary | undefined, ...rs: Reason[]): number {
  if (!f || f.seconds <= 0) return 0;
  let s = 0;
  for (const r of rs) s += f.reasons[r];
  return s / f.seconds;
}

/** Segments lost for real: retransmits minus those DSACKs showed to be spurious. */
export function lossSegs(f: FlowSummary | undefined): number {
  if (!f || f.retransSegs === undefined) return 0;
  return Math.max(0, f.retransSegs - (f.dsackDups ?? 0));
}

export function lossRatio(f: FlowSummary | undefined): number {
  if (!f || f.retransRatio === undefined || !f.retransSegs) return 0;
  return f.retransRatio * (lossSegs(f) / f.retransSegs);
}

export function lossy(f: FlowSummary | undefined): boolean {
  return lossRatio(f) >= T.lossRatio && lossSegs(f) >= 2;
}

/** Loss at the tail of a building queue (RTT inflated): lower rates count than for a lossy link. */
export function queueLoss(f: FlowSummary | undefined): boolean {
  return rttInflated(f) && lossSegs(f) >= T.queueLossSegs && lossRatio(f) >= T.queueLossRatio;
}

export function rttInflated(f: FlowSummary | undefined): boolean {
  if (!f || f.medianRttUs === undefined || f.minRttUs === undefined) return false;
  return f.medianRttUs >= T.rttInflation * f.minRttUs && f.medianRttUs - f.minRttUs >= T.rttInflationMinUs;
}

/**
 * Share of time the sender's rate was set by the path: cwnd-limited, or (BBR) pacing at its estimate of
 * the bottleneck bandwidth, which is BBR's way of being held by the path.
 */
export function pathShare(f: FlowSummary | undefined): number {
  if (!f) return 0;
  return share(f, 'cwnd') + (f.cc === 'bbr' ? share(f, 'pacing') : 0);
}

/** Send rate over the window / a pacing rate (undefined when either is unknown). */
export function sendToPacing(f: FlowSummary, rate: number | undefined): number | undefined {
  if (f.sendBps === undefined || rate === undefined || rate <= 0) return undefined;
  return f.sendBps / rate;
}

/** The sender is held by the path (the question is then: which hop sets the cwnd / the BBR rate). */
export function cwndBound(c: RuleContext): boolean {
  return pathShare(c.tx) >= T.cwndShare;
}

/**
 * The send buffer is smaller than the path's bandwidth-delay product (median delivery rate × median
 * srtt) and the writer was seen blocked on it: then the idle and "nothing unsent" time is the buffer's
 * doing (the queue drains while the writer waits for space), not the application's.
 */
export function sndbufSmall(f: FlowSummary | undefined): boolean {
  if (!f?.last.skmem || f.medianDeliveryRate === undefined || f.medianRttUs === undefined) return false;
  const bdp = (f.medianDeliveryRate * f.medianRttUs) / 1e6;
  return share(f, 'sndbuf') >= T.suspectShare / 2 && f.last.skmem.sndbuf < bdp;
}

function dev(n: NodeSummary | undefined, name: string | undefined): DeviceDelta | undefined {
  if (!n || !name) return undefined;
  return n.devices.find((d) => d.name === name);
}

function rootQdiscs(n: NodeSummary | undefined, names: Array<string | undefined>): QdiscDelta[] {
  if (!n) return [];
  const want = new Set(names.filter((x): x is string => !!x));
  return n.qdiscs.filter((q) => want.has(q.snapshot.device));
}

/** Qdiscs on the path's own devices (not wire shapers such as an ingress ifb). */
function pathQdiscs(n: NodeSummary | undefined): QdiscDelta[] {
  if (!n) return [];
  return rootQdiscs(n, [n.path.ipDevice, n.path.nicDevice]).filter((q) => q.snapshot.kind !== 'noqueue');
}

/** Qdiscs on wire-shaping devices (an ifb the NIC's ingress is redirected to): part of the link hop. */
function wireQdiscs(n: NodeSummary | undefined): QdiscDelta[] {
  if (!n) return [];
  return rootQdiscs(n, n.path.extraDevices ?? []).filter((q) => q.snapshot.kind !== 'noqueue');
}

const sum = (xs: Array<number | undefined>) => xs.reduce<number>((a, x) => a + (x ?? 0), 0);

function qdiscQueued(qs: QdiscDelta[]): boolean {
  return qs.some((q) => (q.snapshot.backlogBytes ?? 0) > 0 || (q.overlimits ?? 0) > 0 || (q.fqThrottled ?? 0) > 0);
}

/** Drops counted at the sender's internal port (tap / OVS internal) TX: the host queue overflowed. */
function internalTxDrops(n: NodeSummary | undefined): number | undefined {
  if (!n?.path.viaOvs) return undefined;
  return dev(n, n.path.ipDevice)?.txDropped;
}

/** Physical NIC drops: device counters if visible, else the OVS port counters of the uplink. */
function nicDrops(n: NodeSummary | undefined, dir: 'tx' | 'rx'): number | undefined {
  if (!n) return undefined;
  const d = dev(n, n.path.nicDevice);
  if (d) {
    return dir === 'tx' ? (d.txDropped ?? 0) + (d.txErrors ?? 0) : (d.rxDropped ?? 0) + (d.rxMissed ?? 0) + (d.rxErrors ?? 0);
  }
  const p = n.ovs?.portDrops.find((x) => x.name === n.path.nicDevice);
  if (p) return dir === 'tx' ? p.txDropped : p.rxDropped;
  return undefined;
}

function ovsLost(n: NodeSummary | undefined): number | undefined {
  if (!n?.ovs || n.ovs.datapaths.length === 0) return undefined;
  return sum(n.ovs.datapaths.map((d) => d.lost));
}

function userspaceOvs(n: NodeSummary | undefined): boolean {
  return !!n?.ovs && n.ovs.datapaths.some((d) => d.type === 'netdev');
}

/**
 * ovs-vswitchd's forwarding thread shows spare capacity: it blocked (found nothing to do) at least
 * forwarderSleepsPerSecond times a second, or wanted a CPU less than half the window. undefined when its
 * threads were not read.
 */
export function vswitchdSpare(n: NodeSummary | undefined): boolean | undefined {
  const th = n?.ovs?.vswitchdThread;
  if (!th) return undefined;
  if (th.demand < 0.5) return true;
  if (th.sleepsPerSecond === undefined) return undefined;
  return th.sleepsPerSecond >= T.forwarderSleepsPerSecond;
}

/**
 * The userspace datapath forwards in ovs-vswitchd's threads. Its CPU time alone is weak evidence (a
 * polling loop uses a core at any rate), so saturated means: its busiest thread wanted a CPU ≥ 90% of
 * the window (ran or waited runnable) and almost never blocked (< forwarderSleepsPerSecond). Without
 * the thread counters: the process used ≥ 90% of a core.
 */
function ovsSaturated(n: NodeSummary | undefined): boolean {
  if (!userspaceOvs(n)) return false;
  const th = n?.ovs?.vswitchdThread;
  if (th && th.sleepsPerSecond !== undefined) return th.demand >= T.threadCpuBound && th.sleepsPerSecond < T.forwarderSleepsPerSecond;
  return (n?.ovs?.vswitchdCpuShare ?? 0) >= T.cpuSaturated;
}

/** vswitchd gets at least half a core while every CPU of the node is busy: starved, maybe the limit. */
function ovsStarved(n: NodeSummary | undefined): boolean {
  return userspaceOvs(n) && vswitchdSpare(n) !== true && (n?.ovs?.vswitchdCpuShare ?? 0) >= T.vswitchdStarvedShare && (n?.cpuBusy ?? 0) >= T.cpuSaturated;
}

// ---------------------------------------------------------------------------------------------------
// The processes of the flow (socket owners) and their CPU

/** The processes holding the flow's socket on node `n` (by the socket inode of the flow's samples). */
export function ownerOf(f: FlowSummary | undefined, n: NodeSummary | undefined): OwnerSummary | undefined {
  const inode = f?.last.inode;
  if (inode === undefined || !n?.owners) return undefined;
  return n.owners.find((o) => o.inode === inode);
}

/** The busiest thread of the socket's processes: the writer on the sender, the reader on the receiver. */
export function busiestThread(f: FlowSummary | undefined, n: NodeSummary | undefined): ThreadDelta | undefined {
  return ownerOf(f, n)?.threads[0];
}

/**
 * The thread wanted a CPU (ran or waited runnable) ≥ threadCpuBound of the window. A thread that waited
 * for a CPU a lot but also slept by itself (demand below that) had nothing to do at those times: its
 * waits delayed it, but it was not what held the flow (e.g. a rate-limited writer on a loaded node).
 */
export function threadCpuBound(th: ThreadDelta | undefined): boolean {
  return !!th && th.demand >= T.threadCpuBound;
}

function threadCpuText(th: ThreadDelta, n: NodeSummary | undefined): string {
  const c = th.processor !== undefined ? n?.cpus.find((x) => x.cpu === th.processor) : undefined;
  const others = c
    ? [
        c.softirqShare !== undefined ? `softirq ${fmtPct(c.softirqShare)}` : '',
        c.irqShare ? `irq ${fmtPct(c.irqShare)}` : '',
        c.stealShare ? `steal ${fmtPct(c.stealShare)}` : '',
      ].filter((x) => x)
    : [];
  return (
    `ran ${fmtPct(th.runShare)} of a core${th.processor !== undefined ? ` on CPU ${th.processor}` : ''}` +
    (th.waitShare !== undefined && th.waitShare >= 0.005 ? ` and waited for a CPU ${fmtPct(th.waitShare)}` : '') +
    (others.length ? ` (that CPU also ran ${others.join(', ')})` : '') +
    (n?.cpuBusy !== undefined ? `; node CPUs ${fmtPct(n.cpuBusy)} busy` : '')
  );
}

/** Evidence of one thread, prefixed (writer_ / reader_). */
function threadEvidence(prefix: string, o: OwnerSummary | undefined, th: ThreadDelta | undefined, n: NodeSummary | undefined): Record<string, EvidenceValue> {
  if (!o) return {};
  if (!th) return { [`${prefix}_cpu_pct`]: 'unknown', [`${prefix}_unknown_why`]: o.unknown ?? 'its threads were read only once in the window' };
  const c = th.processor !== undefined ? n?.cpus.find((x) => x.cpu === th.processor) : undefined;
  return {
    [`${prefix}_thread`]: `${th.comm} (pid ${th.pid} tid ${th.tid})`,
    [`${prefix}_cpu_pct`]: pct(th.runShare),
    [`${prefix}_wait_pct`]: th.waitShare === undefined ? null : pct(th.waitShare),
    [`${prefix}_cpu`]: orNull(th.processor),
    [`${prefix}_cpu_softirq_pct`]: c?.softirqShare === undefined ? null : pct(c.softirqShare),
    [`${prefix}_cpu_irq_pct`]: c?.irqShare === undefined ? null : pct(c.irqShare),
    [`${prefix}_cpu_steal_pct`]: c?.stealShare === undefined ? null : pct(c.stealShare),
    node_cpu_busy_pct: n?.cpuBusy === undefined ? null : pct(n.cpuBusy),
  };
}

/** The RX CPU spends ≥ 90% in softirq, or ≥ 50% while net_rx_action() keeps running out of budget. */
function rxSoftirqSaturated(n: NodeSummary | undefined): boolean {
  const c = n?.rxCpu;
  if (!c || !n) return false;
  const squeezes = n.seconds > 0 ? (c.timeSqueeze ?? 0) / n.seconds : 0;
  return (c.softirqShare ?? 0) >= T.cpuSaturated || ((c.softirqShare ?? 0) >= 0.5 && squeezes >= T.squeezesPerSecond);
}

const RX_TCP_DROPS = ['TCPRcvQDrop', 'TCPBacklogDrop', 'TCPOFODrop', 'TCPZeroWindowDrop'];

/** Where, on this host or the peer, drops were counted during the window (hop → packets). */
export function localDrops(c: RuleContext): Partial<Record<Hop, number>> {
  const out: Partial<Record<Hop, number>> = {};
  const put = (h: Hop, v: number | undefined) => {
    if (v !== undefined && v > 0) out[h] = (out[h] ?? 0) + v;
  };
  put('qdisc-tx', sum(pathQdiscs(c.txNode).map((q) => q.drops)));
  put('qdisc-tx', internalTxDrops(c.txNode));
  put('ovs-tx', ovsLost(c.txNode));
  put('nic-tx', nicDrops(c.txNode, 'tx'));
  put('nic-rx', nicDrops(c.rxNode, 'rx'));
  put('nic-rx', c.rxNode?.rxCpu?.softnetDropped);
  put('ovs-rx', ovsLost(c.rxNode));
  if (c.rxNode?.path.viaOvs) put('internal-rx', dev(c.rxNode, c.rxNode.path.ipDevice)?.rxDropped);
  put('tcp-rx', c.rxNode ? sum(RX_TCP_DROPS.map((k) => c.rxNode?.tcpExt[k])) : undefined);
  return out;
}

/** Non-spurious loss that the drop counters of this host and the peer do not account for. */
export function lossBeyondHost(c: RuleContext): boolean {
  const loss = lossy(c.tx) || queueLoss(c.tx);
  if (!loss || !c.tx) return false;
  const dropTotal = Object.values(localDrops(c)).reduce<number>((a, b) => a + (b ?? 0), 0);
  // Host drop counters count packets as the device saw them: before segmentation (a tap or an OVS port
  // with offloads) one dropped skb is up to one TSO skb of segments (classify.ts skbBytes()).
  const segsPerDrop = Math.max(1, Math.floor(skbBytes(c.tx.last) / mssOf(c.tx.last)));
  return dropTotal * segsPerDrop < 0.5 * lossSegs(c.tx);
}

/** Hops on this host or the peer that show a standing queue or a saturated CPU. */
export function localQueues(c: RuleContext): Hop[] {
  const hops: Hop[] = [];
  if (qdiscQueued(pathQdiscs(c.txNode))) hops.push('qdisc-tx');
  if (ovsSaturated(c.txNode)) hops.push('ovs-tx');
  if ((dev(c.txNode, c.txNode?.path.nicDevice)?.txStop ?? 0) > 0) hops.push('nic-tx');
  if (rxSoftirqSaturated(c.rxNode)) hops.push('nic-rx');
  if (ovsSaturated(c.rxNode)) hops.push('ovs-rx');
  return hops;
}

// ---------------------------------------------------------------------------------------------------
// Formatting helpers for evidence

const pct = (x: number) => Math.round(x * 1000) / 10;
const bits = (bytesPerSecond: number | undefined) => (bytesPerSecond === undefined ? null : Math.round(bytesPerSecond * 8));
const ms = (us: number | undefined) => (us === undefined ? null : Math.round(us / 10) / 100);
const orNull = (x: number | undefined) => (x === undefined ? null : x);

export function fmtRate(bytesPerSecond: number | undefined): string {
  if (bytesPerSecond === undefined) return '?';
  const b = bytesPerSecond * 8;
  if (b >= 1e9) return `${(b / 1e9).toFixed(2)} Gbit/s`;
  if (b >= 1e6) return `${(b / 1e6).toFixed(1)} Mbit/s`;
  if (b >= 1e3) return `${(b / 1e3).toFixed(1)} kbit/s`;
  return `${b.toFixed(0)} bit/s`;
}

export function fmtBytes(n: number | undefined): string {
  if (n === undefined) return '?';
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

const fmtPct = (x: number) => `${pct(x)}%`;

function byShare(x: number, limiting: number, suspect: number): Status {
  return x >= limiting ? 'limiting' : x >= suspect ? 'suspect' : 'ok';
}

function flowEvidence(f: FlowSummary, extra: Record<string, EvidenceValue> = {}): Record<string, EvidenceValue> {
  return {
    window_seconds: Math.round(f.seconds * 100) / 100,
    goodput_bps: bits(f.goodputBps),
    ...extra,
  };
}

// ---------------------------------------------------------------------------------------------------
// The table

export interface Rule {
  id: string;
  hop: Hop;
  title: string;
  /** 'exact' (kernel counters/chronographs), 'sampled' (instantaneous state), or 'mixed'. */
  basis: 'exact' | 'sampled' | 'mixed';
  /** One line: the fields that decide it. */
  decides: string;
  evaluate(c: RuleContext): Omit<Finding, 'rule' | 'hop'> | undefined;
}

export const RULES: readonly Rule[] = [
  // ------------------------------------------------------------------ sender socket
  {
    id: 'app-limited',
    hop: 'socket-tx',
    title: 'The application does not write fast enough',
    basis: 'mixed',
    decides: 'share of time idle (wall − Δbusy, exact) + app (busy, notsent < MSS, skmem w < tb; sampled)',
    evaluate({ tx, txNode }) {
      if (!tx || tx.role !== 'sender') return undefined;
      const x = share(tx, 'idle', 'app');
      let status = byShare(x, T.limitingShare, T.suspectShare);
      // A writer waiting on a send buffer smaller than the BDP looks idle too: see sndbuf-limited.
      if (status === 'limiting' && sndbufSmall(tx)) status = 'suspect';
      // A writer that was CPU-bound did not leave the socket empty by choice: see sender-cpu.
      const owner = ownerOf(tx, txNode);
      const writer = owner?.threads[0];
      const busy = threadCpuBound(writer);
      if (status === 'limiting' && busy) status = 'suspect';
      const why = !writer
        ? owner
          ? `; the writer's CPU is unknown (${owner.unknown ?? 'read once'})`
          : ''
        : busy
          ? `; the writer was busy, not idle by choice: it ${threadCpuText(writer, txNode)} (see sender-cpu)`
          : `; the writer was idle by choice: it ${threadCpuText(writer, txNode)}`;
      return {
        status,
        limit: status === 'ok' ? undefined : 'app',
        score: x,
        summary:
          status === 'ok'
            ? `the application kept data queued (${fmtPct(1 - x)} of the time)`
            : `the application left the socket empty ${fmtPct(x)} of the time (idle ${fmtPct(share(tx, 'idle'))}, nothing unsent ${fmtPct(share(tx, 'app'))})${why}`,
        evidence: flowEvidence(tx, {
          empty_pct: pct(x),
          idle_pct: pct(share(tx, 'idle')),
          app_pct: pct(share(tx, 'app')),
          writer_cpu_bound: writer ? busy : null,
          ...threadEvidence('writer', owner, writer, txNode),
          notsent_samples_pct: pct(tx.notsentShare),
          app_limited_flag: tx.last.appLimited ?? null,
          wmem_queued_bytes: orNull(tx.last.skmem?.wmemQueued),
          sndbuf_bytes: orNull(tx.last.skmem?.sndbuf),
        }),
        next: 'Look at the writer: its CPU (top -H -p PID), write size and rate limits (e.g. iperf3 -b), TCP_NOTSENT_LOWAT; on the sender, ss -tim shows app_limited and notsent.',
      };
    },
  },
  {
    id: 'sndbuf-limited',
    hop: 'socket-tx',
    title: 'The send buffer is too small for the path',
    basis: 'mixed',
    decides: 'Δsndbuf_limited (exact) + samples with notsent < MSS and skmem w ≥ tb (sampled)',
    evaluate({ tx, txNode }) {
      if (!tx || tx.role !== 'sender') return undefined;
      const small = sndbufSmall(tx);
      // With a buffer below the BDP, the time the writer was idle or had nothing unsent is the buffer's.
      const x = small ? share(tx, 'sndbuf', 'app', 'idle') : share(tx, 'sndbuf');
      const status = byShare(x, T.sndbufLimitingShare, T.suspectShare / 2);
      const bdp =
        tx.medianDeliveryRate !== undefined && tx.medianRttUs !== undefined ? Math.round((tx.medianDeliveryRate * tx.medianRttUs) / 1e6) : undefined;
      const wmem = txNode?.sysctl['net.ipv4.tcp_wmem'];
      return {
        status,
        limit: status === 'ok' ? undefined : 'sndbuf',
        score: x,
        summary:
          status === 'ok'
            ? `the send buffer did not block the writer (${fmtPct(x)})`
            : `the writer was blocked on a full send buffer ${fmtPct(x)} of the time (sndbuf ${fmtBytes(tx.last.skmem?.sndbuf)})`,
        evidence: flowEvidence(tx, {
          sndbuf_pct: pct(share(tx, 'sndbuf')),
          sndbuf_below_bdp: small,
          attributed_pct: pct(x),
          sndbuf_limited_chrono_pct: pct(tx.seconds > 0 ? tx.exactReasons.sndbuf / tx.seconds : 0),
          wmem_queued_bytes: orNull(tx.last.skmem?.wmemQueued),
          sndbuf_bytes: orNull(tx.last.skmem?.sndbuf),
          bdp_bytes: orNull(bdp),
          tcp_wmem: wmem ?? null,
        }),
        next: `Compare sndbuf (${fmtBytes(tx.last.skmem?.sndbuf)}) with the BDP (${fmtBytes(bdp)}): raise net.ipv4.tcp_wmem max${wmem ? ` (now "${wmem}")` : ''} or the application's SO_SNDBUF (setting it disables autotuning).`,
      };
    },
  },
  {
    id: 'sender-cpu',
    hop: 'socket-tx',
    title: "The writer is CPU-bound (or starved of CPU) on the sender",
    basis: 'exact',
    decides:
      'busiest thread of the processes holding the socket (socket inode → /proc/PID/fd): schedstat run + wait ≥ 90% of the window; its CPU softirq/irq/steal; share(idle + app + unclassified): time the sender side held the flow',
    evaluate({ tx, txNode }) {
      if (!tx || tx.role !== 'sender') return undefined;
      const owner = ownerOf(tx, txNode);
      if (!owner) return undefined;
      const writer = owner.threads[0];
      const held = share(tx, 'idle', 'app', 'unclassified');
      if (!writer) {
        return {
          status: 'ok',
          score: 0,
          summary: `the writer's CPU is unknown: ${owner.unknown ?? 'its threads were read only once in the window'}`,
          evidence: flowEvidence(tx, { sender_held_pct: pct(held), ...threadEvidence('writer', owner, writer, txNode) }),
          next: 'Run flowpath as root (or with CAP_SYS_PTRACE) to see the processes that hold the socket.',
        };
      }
      const bound = threadCpuBound(writer);
      let status: Status = 'ok';
      if (bound && held >= T.limitingShare && !sndbufSmall(tx)) status = 'limiting';
      else if (bound && held >= T.suspectShare) status = 'suspect';
      const starved = (writer.waitShare ?? 0) >= T.threadStarved;
      return {
        status,
        limit: status === 'ok' ? undefined : 'cpu',
        score: status === 'limiting' ? held : 0.2,
        summary:
          status === 'ok'
            ? `the writer ${writer.comm} ${threadCpuText(writer, txNode)}: ${bound ? `CPU-bound, but the sender side held the flow only ${fmtPct(held)} of the time` : 'not CPU-bound'}`
            : `the writer ${writer.comm} is CPU-bound${starved ? ' and starved of CPU' : ''}: it ${threadCpuText(writer, txNode)}; the sender side held the flow ${fmtPct(held)} of the time (idle ${fmtPct(share(tx, 'idle'))}, nothing unsent ${fmtPct(share(tx, 'app'))}, unclassified ${fmtPct(share(tx, 'unclassified'))})`,
        evidence: flowEvidence(tx, {
          sender_held_pct: pct(held),
          idle_pct: pct(share(tx, 'idle')),
          app_pct: pct(share(tx, 'app')),
          unclassified_pct: pct(share(tx, 'unclassified')),
          writer_cpu_bound: bound,
          ...threadEvidence('writer', owner, writer, txNode),
        }),
        next: 'The sending thread needs more CPU: top -H -p PID; its CPU also serves softirq/irq (IRQ affinity, RPS/XPS: move them to other CPUs), steal means the hypervisor takes the CPU; larger writes, zero-copy (MSG_ZEROCOPY), or spreading the work over threads.',
      };
    },
  },
  // ------------------------------------------------------------------ sender TCP
  {
    id: 'pacing-capped',
    hop: 'tcp-tx',
    title: 'Pacing is capped by SO_MAX_PACING_RATE',
    basis: 'sampled',
    decides: 'samples with data waiting, cwnd/rwnd room, and pacing_rate ≥ 98% of max_pacing_rate',
    evaluate({ tx }) {
      if (!tx || tx.role !== 'sender') return undefined;
      if (tx.maxPacingRate === undefined && tx.reasons.pacing_capped === 0) {
        return {
          status: 'ok',
          score: 0,
          summary: 'no max_pacing_rate is set',
          evidence: flowEvidence(tx, { max_pacing_rate_bps: null }),
          next: '',
        };
      }
      const x = share(tx, 'pacing_capped');
      const ratio = sendToPacing(tx, tx.maxPacingRate);
      // The cap can hold the flow only while it sends at the cap (classify.ts pacingBound()).
      const status = ratio !== undefined && ratio < T.pacingRateMatch ? 'ok' : byShare(x, T.limitingShare, T.suspectShare);
      return {
        status,
        limit: status === 'ok' ? undefined : 'pacing_capped',
        score: x,
        summary:
          ratio !== undefined && ratio < T.pacingRateMatch
            ? `max_pacing_rate ${fmtRate(tx.maxPacingRate)} is ${(1 / ratio).toFixed(1)}× the send rate ${fmtRate(tx.sendBps)}: the cap did not hold the flow`
            : `pacing held at max_pacing_rate ${fmtRate(tx.maxPacingRate)} ${fmtPct(x)} of the time (send rate ${fmtRate(tx.sendBps)})`,
        evidence: flowEvidence(tx, {
          pacing_capped_pct: pct(x),
          send_rate_bps: bits(tx.sendBps),
          pacing_rejected_pct: pct(tx.seconds > 0 ? (tx.pacingRejectedSeconds ?? 0) / tx.seconds : 0),
          max_pacing_rate_bps: bits(tx.maxPacingRate),
          pacing_rate_bps: bits(tx.last.pacingRate),
          delivery_rate_bps: bits(tx.medianDeliveryRate),
          cc: tx.cc ?? null,
        }),
        next: 'Find who sets SO_MAX_PACING_RATE (the application, e.g. iperf3 --fq-rate; or a tc fq maxrate / flow_max_rate) and raise or remove it.',
      };
    },
  },
  {
    id: 'pacing',
    hop: 'tcp-tx',
    title: 'The congestion control paces below what the path could carry',
    basis: 'sampled',
    decides: 'samples with data waiting, cwnd/rwnd room, skmem t below TSQ, pacing enforced (bbr or fq), not capped',
    evaluate({ tx }) {
      if (!tx || tx.role !== 'sender') return undefined;
      const x = share(tx, 'pacing');
      const bbr = tx.last.bbr;
      const ratio = sendToPacing(tx, tx.medianPacingRate);
      const far = ratio !== undefined && ratio < T.pacingRateMatch;
      // Pacing by itself is how BBR (or fq) sends; it is the limit only when nothing downstream is, and
      // only while the flow sends near its pacing rate.
      const status: Status = x >= T.limitingShare && !far ? 'suspect' : 'ok';
      return {
        status,
        limit: status === 'ok' ? undefined : 'pacing',
        score: x * 0.5,
        summary: far
          ? `the pacing rate ${fmtRate(tx.medianPacingRate)} is ${(1 / (ratio as number)).toFixed(1)}× the send rate ${fmtRate(tx.sendBps)}: pacing did not hold the flow (paced ${fmtPct(x)} of the time; ${fmtPct((tx.pacingRejectedSeconds ?? 0) / (tx.seconds || 1))} with room to send went to unclassified)`
          : status === 'ok'
            ? `paced ${fmtPct(x)} of the time`
            : `${tx.cc ?? 'the CC'} paced the flow ${fmtPct(x)} of the time at ${fmtRate(tx.medianPacingRate)} (send rate ${fmtRate(tx.sendBps)}${bbr ? `, bw estimate ${fmtRate(bbr.bw)}` : ''})`,
        evidence: flowEvidence(tx, {
          pacing_pct: pct(x),
          cc: tx.cc ?? null,
          send_rate_bps: bits(tx.sendBps),
          pacing_rejected_pct: pct(tx.seconds > 0 ? (tx.pacingRejectedSeconds ?? 0) / tx.seconds : 0),
          pacing_rate_bps: bits(tx.medianPacingRate),
          bbr_bw_bps: bits(bbr?.bw),
          bbr_pacing_gain: bbr ? bbr.pacingGain : null,
          delivery_rate_bps: bits(tx.medianDeliveryRate),
        }),
        next: "BBR paces at its bandwidth estimate, which follows the delivery rate: the limit is where delivery is set. Check the downstream hops' findings, retransmits, and the receiver (--peer).",
      };
    },
  },
  {
    id: 'cwnd-growth',
    hop: 'tcp-tx',
    title: 'Congestion window limited, no loss and no queue',
    basis: 'sampled',
    decides: 'cwnd share ≥ 30% with neither a lossy path nor an inflated RTT',
    evaluate(c) {
      const { tx } = c;
      if (!tx || tx.role !== 'sender') return undefined;
      const x = share(tx, 'cwnd');
      const explained = lossy(tx) || rttInflated(tx);
      const status: Status = x >= T.cwndShare && !explained ? 'suspect' : 'ok';
      return {
        status,
        limit: status === 'ok' ? undefined : 'cwnd',
        score: x * 0.5,
        summary:
          status === 'ok'
            ? `cwnd-limited ${fmtPct(x)} of the time${explained ? ' (explained by loss or a queue, see the link and host hops)' : ''}`
            : `cwnd-limited ${fmtPct(x)} of the time without loss or queueing (cwnd ${tx.medianCwnd ?? '?'})`,
        evidence: flowEvidence(tx, {
          cwnd_pct: pct(x),
          cwnd: orNull(tx.medianCwnd),
          ssthresh: orNull(tx.last.ssthresh),
          ca_state: orNull(tx.last.caState),
          srtt_ms: ms(tx.medianRttUs),
          min_rtt_ms: ms(tx.minRttUs),
        }),
        next: 'cwnd is not growing although nothing is lost: check tcp_slow_start_after_idle, the CC (ss -ti shows it), and whether the flow is short-lived.',
      };
    },
  },
  {
    id: 'spurious-retransmits',
    hop: 'tcp-tx',
    title: 'Retransmits are mostly spurious (reordering)',
    basis: 'exact',
    decides: 'Δdsack_dups / Δtotal_retrans over the window',
    evaluate({ tx }) {
      if (!tx || tx.role !== 'sender' || tx.retransSegs === undefined) return undefined;
      const r = tx.retransSegs;
      const d = tx.dsackDups ?? 0;
      const sp = r > 0 ? Math.min(1, d / r) : 0;
      const status: Status = r >= 10 && sp >= T.spuriousShare ? 'suspect' : 'ok';
      return {
        status,
        limit: status === 'ok' ? undefined : 'reordering',
        score: sp * 0.3,
        summary: r === 0 ? 'no retransmits' : `${r} retransmits, ${d} of them reported spurious by DSACK (${fmtPct(sp)})`,
        evidence: flowEvidence(tx, {
          retrans_segs: r,
          dsack_dups: d,
          spurious_pct: pct(sp),
        }),
        next: 'Spurious retransmits come from reordering (several RX CPUs / RPS, multipath) or delay spikes: check RPS/RSS spreading of the flow and TcpExt TCPDSACKRecvSegs.',
      };
    },
  },
  // ------------------------------------------------------------------ sender host queue
  {
    id: 'tsq',
    hop: 'qdisc-tx',
    title: 'TCP small queues: bytes wait in the qdisc/NIC below TCP',
    basis: 'sampled',
    decides: 'samples with data waiting and skmem t ≥ 75% of the TSQ limit; limiting when a path qdisc queues or the NIC stops its queue',
    evaluate({ tx, txNode }) {
      if (!tx || tx.role !== 'sender') return undefined;
      const x = share(tx, 'tsq');
      const qs = pathQdiscs(txNode);
      const queued = qdiscQueued(qs);
      const stops = dev(txNode, txNode?.path.nicDevice)?.txStop ?? 0;
      const corroborated = queued || stops > 0;
      let status: Status = byShare(x, T.cwndShare, T.suspectShare);
      if (status === 'limiting' && !corroborated) status = 'suspect';
      return {
        status,
        limit: status === 'ok' ? undefined : 'tsq',
        score: x,
        summary:
          status === 'ok'
            ? `the small-queue limit held the flow ${fmtPct(x)} of the time`
            : `TSQ throttled the flow ${fmtPct(x)} of the time: up to ${fmtBytes(tx.last.skmem?.wmemAlloc)} waited below TCP${corroborated ? (queued ? ' in a queueing qdisc' : ' behind a stopped NIC queue') : ' (no queueing qdisc or NIC stop seen: slow TX completion?)'}`,
        evidence: flowEvidence(tx, {
          tsq_pct: pct(x),
          wmem_alloc_bytes: orNull(tx.last.skmem?.wmemAlloc),
          qdisc: qs.map((q) => `${q.snapshot.device}:${q.snapshot.kind}`).join(',') || null,
          qdisc_backlog_bytes: qs.length ? sum(qs.map((q) => q.snapshot.backlogBytes)) : null,
          qdisc_overlimits: qs.length ? sum(qs.map((q) => q.overlimits)) : null,
          nic_tx_stops: txNode?.path.nicDevice ? stops : null,
        }),
        next: 'tc -s qdisc show dev <egress> (backlog, overlimits: a shaper?), ethtool -S / qstats tx-stop (ring full), TX completion latency (virtio, IRQ coalescing); TcpExt TCPSpuriousRtxHostQueues.',
      };
    },
  },
  {
    id: 'qdisc',
    hop: 'qdisc-tx',
    title: 'The egress qdisc drops or shapes',
    basis: 'exact',
    decides: 'Δdrops, Δoverlimits, backlog of the root qdisc on the IP device and the NIC; fq throttling counts as shaping unless pacing held the flow ≥ 30% of the time',
    evaluate(c) {
      const { tx, txNode } = c;
      const qs = pathQdiscs(txNode);
      if (!txNode || qs.length === 0) return undefined;
      const drops = sum(qs.map((q) => q.drops));
      const over = sum(qs.map((q) => q.overlimits));
      const backlog = sum(qs.map((q) => q.snapshot.backlogBytes));
      const fqThrottled = sum(qs.map((q) => q.fqThrottled));
      // fq throttling the flow's own paced skbs (its pacing rate or max_pacing_rate held it, the pacing
      // rules say so) is not a shaper: only overlimits, or fq throttling of a flow that pacing did not hold.
      const pacedShare = share(tx, 'pacing', 'pacing_capped');
      const paced = pacedShare >= T.cwndShare;
      const shaping = over > 0 || (backlog > 0 && fqThrottled > 0 && !paced);
      const held = share(tx, 'cwnd', 'tsq');
      let status: Status = 'ok';
      let limit: Limit | undefined;
      if (drops > 0 && lossy(tx) && cwndBound(c)) {
        status = 'limiting';
        limit = 'drops';
      } else if (shaping && held >= T.cwndShare) {
        status = 'limiting';
        limit = 'queue';
      } else if (drops > 0 || shaping) status = 'suspect';
      return {
        status,
        limit: limit ?? (status === 'suspect' ? (drops > 0 ? 'drops' : 'queue') : undefined),
        score: status === 'limiting' ? held : drops > 0 ? 0.2 : 0.1,
        summary:
          status === 'ok'
            ? `${qs.map((q) => `${q.snapshot.device} ${q.snapshot.kind}`).join(', ')}: no drops, no shaping`
            : `${qs.map((q) => `${q.snapshot.device} ${q.snapshot.kind}`).join(', ')}: ${drops} drops, ${over} overlimits, backlog ${fmtBytes(backlog)}`,
        evidence: {
          qdiscs: qs.map((q) => `${q.snapshot.device}:${q.snapshot.kind}`).join(','),
          drops,
          overlimits: over,
          requeues: sum(qs.map((q) => q.requeues)),
          backlog_bytes: backlog,
          fq_throttled: fqThrottled,
          paced_pct: pct(pacedShare),
          flow_loss_segs: tx ? lossSegs(tx) : null,
          cwnd_tsq_pct: pct(held),
        },
        next: 'tc -s qdisc show dev <egress>: a shaper (tbf/htb rate) or a too-short queue (limit); for fq check maxrate and flow_limit.',
      };
    },
  },
  {
    id: 'internal-port-tx',
    hop: 'qdisc-tx',
    title: 'The internal port (tap) queue overflows: OVS does not drain it',
    basis: 'exact',
    decides: 'Δtx_dropped of the OVS internal port that holds the IP',
    evaluate(c) {
      const { tx, txNode } = c;
      const drops = internalTxDrops(txNode);
      if (drops === undefined) return undefined;
      let status: Status = 'ok';
      if (drops > 0) status = cwndBound(c) && lossSegs(tx) > 0 ? 'limiting' : 'suspect';
      return {
        status,
        limit: status === 'ok' ? undefined : 'drops',
        score: status === 'limiting' ? pathShare(tx) * (0.5 + 0.5 * Math.min(1, drops / Math.max(1, lossSegs(tx)))) : 0.2,
        summary: `${txNode?.path.ipDevice}: ${drops} TX drops in the window`,
        evidence: {
          device: txNode?.path.ipDevice ?? null,
          tx_dropped: drops,
          flow_loss_segs: tx ? lossSegs(tx) : null,
          path_bound_pct: pct(pathShare(tx)),
          srtt_ms: ms(tx?.medianRttUs),
          min_rtt_ms: ms(tx?.minRttUs),
        },
        next: 'The tap/internal port queue is full: the datapath thread reading it (ovs-vswitchd main/PMD thread, or the kernel datapath CPU) cannot keep up. Check its CPU (top -H -p $(pidof ovs-vswitchd)) and ovs-appctl dpif-netdev/pmd-stats-show.',
      };
    },
  },
  // ------------------------------------------------------------------ OVS
  ...(['tx', 'rx'] as const).flatMap((side): Rule[] => [
    {
      id: `ovs-${side}-cpu`,
      hop: side === 'tx' ? 'ovs-tx' : 'ovs-rx',
      title: `ovs-vswitchd (userspace datapath) is CPU-bound on the ${side === 'tx' ? 'sender' : 'receiver'}`,
      basis: 'exact',
      decides: 'userspace (netdev) datapath; its busiest thread wanted a CPU (schedstat run + wait) ≥ 90% of the window and blocked < 100 times/s (without thread counters: Δ(utime+stime) ≥ 90% of a core); limiting for a path-bound flow without loss beyond the host; ≥ 50% of a core on a node whose CPUs are ≥ 90% busy, without spare capacity: suspect',
      evaluate(c) {
        const n = side === 'tx' ? c.txNode : c.rxNode;
        const share_ = n?.ovs?.vswitchdCpuShare;
        if (!n?.ovs || share_ === undefined) return undefined;
        const userspace = n.ovs.datapaths.some((d) => d.type === 'netdev');
        const th = n.ovs.vswitchdThread;
        const spare = vswitchdSpare(n) === true;
        const sat = ovsSaturated(n);
        const starved = !sat && ovsStarved(n);
        // Saturated vswitchd limits a path-bound flow, unless loss beyond the host shows the bottleneck is
        // elsewhere (a vswitchd retrying sends to a full queue downstream is busy too).
        const status: Status = sat ? ((cwndBound(c) || !c.tx) && !lossBeyondHost(c) ? 'limiting' : 'suspect') : starved ? 'suspect' : 'ok';
        return {
          status,
          limit: status === 'ok' ? undefined : 'cpu',
          // CPU share is tick-sampled and a polling vswitchd can look busy at low rates: ranks below
          // exact evidence (loss the host does not account for, drop counters).
          score: status === 'limiting' ? 0.3 + 0.4 * pathShare(c.tx) : 0.2,
          summary: `ovs-vswitchd used ${fmtPct(share_)} of a CPU${userspace ? ' (userspace datapath forwards in its threads)' : ''}${th ? `; its busiest thread wanted a CPU ${fmtPct(th.demand)} of the time${th.sleepsPerSecond !== undefined ? ` and blocked ${Math.round(th.sleepsPerSecond)} times/s${spare ? ' (spare capacity)' : ''}` : ''}` : ''}${n.cpuBusy !== undefined ? `, node CPUs ${fmtPct(n.cpuBusy)} busy` : ''}`,
          evidence: {
            vswitchd_cpu_pct: pct(share_),
            vswitchd_thread: th ? `${th.comm} (tid ${th.tid})` : null,
            vswitchd_thread_demand_pct: th ? pct(th.demand) : null,
            vswitchd_thread_sleeps_per_second: th?.sleepsPerSecond === undefined ? null : Math.round(th.sleepsPerSecond),
            node_cpu_busy_pct: n.cpuBusy === undefined ? null : pct(n.cpuBusy),
            userspace_datapath: userspace,
            path_bound_pct: pct(pathShare(c.tx)),
          },
          next: 'ovs-appctl dpif-netdev/pmd-stats-show (cycles per packet), pmd-rxq-show; give the datapath more PMD threads/cores or use the kernel datapath.',
        };
      },
    },
    {
      id: `ovs-${side}-lost`,
      hop: side === 'tx' ? 'ovs-tx' : 'ovs-rx',
      title: `OVS datapath lost packets or missed its flow cache (${side === 'tx' ? 'sender' : 'receiver'})`,
      basis: 'exact',
      decides: 'Δlost and Δmissed (upcalls) of the datapath, Δupcall failures',
      evaluate(c) {
        const n = side === 'tx' ? c.txNode : c.rxNode;
        if (!n?.ovs || n.ovs.datapaths.length === 0) return undefined;
        const lost = sum(n.ovs.datapaths.map((d) => d.lost)) + (n.ovs.upcallFailed ?? 0);
        const missed = sum(n.ovs.datapaths.map((d) => d.missed));
        const perSec = n.seconds > 0 ? missed / n.seconds : 0;
        let status: Status = 'ok';
        if (lost > 0) status = cwndBound(c) && lossy(c.tx) ? 'limiting' : 'suspect';
        else if (perSec >= T.upcallsPerSecond) status = 'suspect';
        return {
          status,
          limit: status === 'ok' ? undefined : lost > 0 ? 'drops' : 'cpu',
          score: status === 'limiting' ? pathShare(c.tx) * 0.9 : 0.15,
          summary: `datapath lost ${lost}, missed ${missed} (${perSec.toFixed(1)}/s upcalls)`,
          evidence: { lost, missed, upcalls_per_second: Math.round(perSec * 10) / 10, datapaths: n.ovs.datapaths.map((d) => d.name).join(',') },
          next: 'ovs-appctl dpctl/show -s (lost), upcall/show (flow limit), coverage/show | grep upcall; a flow-table churn or flow limit sends packets to userspace.',
        };
      },
    },
  ]),
  // ------------------------------------------------------------------ NIC TX
  {
    id: 'nic-tx',
    hop: 'nic-tx',
    title: 'The NIC drops on transmit or stops its queue',
    basis: 'exact',
    decides: 'Δtx_dropped + Δtx_errors (device or OVS port), Δqstats tx-stop; TSO and ring size as context',
    evaluate(c) {
      const { txNode, tx } = c;
      const name = txNode?.path.nicDevice;
      const drops = nicDrops(txNode, 'tx');
      const d = dev(txNode, name);
      if (!txNode || !name || (drops === undefined && !d)) return undefined;
      const stops = d?.txStop ?? 0;
      const physical = d?.snapshot.kind === 'physical';
      const tsoOff = physical && d?.snapshot.tso === false;
      let status: Status = 'ok';
      if ((drops ?? 0) > 0 && cwndBound(c) && lossy(tx)) status = 'limiting';
      else if ((drops ?? 0) > 0 || stops > 0 || tsoOff) status = 'suspect';
      return {
        status,
        limit: status === 'limiting' ? 'drops' : status === 'suspect' ? (tsoOff && !drops && !stops ? 'config' : 'drops') : undefined,
        score: status === 'limiting' ? pathShare(tx) * 0.9 : 0.15,
        summary: `${name}: ${drops ?? '?'} TX drops/errors, ${stops} queue stops${tsoOff ? ', TSO off' : ''}`,
        evidence: {
          device: name,
          tx_dropped: orNull(drops),
          tx_stops: stops,
          tso: d?.snapshot.tso ?? null,
          tx_ring: orNull(d?.snapshot.txRing),
          tx_ring_max: orNull(d?.snapshot.txRingMax),
          tx_bps: bits(d?.txBps),
        },
        next: 'ethtool -S <nic> | grep -i -e drop -e stop; ethtool -g <nic> (ring size vs max); ethtool -k <nic> | grep segmentation; IRQ/CPU of the TX queue.',
      };
    },
  },
  // ------------------------------------------------------------------ link
  {
    id: 'link-rate',
    hop: 'link',
    title: 'The flow fills the link',
    basis: 'exact',
    decides: 'goodput over the window vs the speed of the physical NIC (sysfs speed)',
    evaluate({ tx, txNode }) {
      const d = dev(txNode, txNode?.path.nicDevice);
      // Only a physical port has a real speed (veth and tap report a nominal 10 Gbit/s).
      const speed = d?.snapshot.kind === 'physical' ? d.snapshot.speedBps : undefined;
      if (!tx || tx.role !== 'sender' || !speed || tx.goodputBps === undefined) return undefined;
      const util = (tx.goodputBps * 8) / speed;
      // A goodput above the advertised speed (veth, tap) means the speed is not a real limit.
      const status: Status = util >= T.linkFull && util <= 1.05 ? 'limiting' : 'ok';
      return {
        status,
        limit: status === 'ok' ? undefined : 'link_rate',
        score: status === 'limiting' ? Math.min(1, util) : 0,
        summary: `goodput ${fmtRate(tx.goodputBps)} = ${fmtPct(util)} of ${d?.name} speed ${(speed / 1e9).toFixed(1)} Gbit/s`,
        evidence: { device: d?.name ?? null, speed_bps: speed, goodput_bps: bits(tx.goodputBps), utilisation_pct: pct(util) },
        next: 'The link is full: nothing to fix on the hosts. Check that the negotiated speed is what you expect (ethtool <nic>).',
      };
    },
  },
  {
    id: 'link-bottleneck',
    hop: 'link',
    title: 'A bottleneck or loss beyond this host',
    basis: 'mixed',
    decides: 'path-bound share ≥ 30% with non-spurious loss that host drop counters do not account for, or an inflated RTT (queue) that no host component (queueing qdisc, NIC stop, saturated RX CPU, userspace OVS tap) can hold',
    evaluate(c) {
      const { tx } = c;
      if (!tx || tx.role !== 'sender') return undefined;
      const x = pathShare(tx);
      const queue = rttInflated(tx);
      const loss = lossy(tx) || queueLoss(tx);
      const drops = localDrops(c);
      const queues = localQueues(c);
      const dropHops = Object.keys(drops) as Hop[];
      const dropTotal = Object.values(drops).reduce((a, b) => a + (b ?? 0), 0);
      // Loss that host drop counters do not account for happened beyond this host.
      const lossBeyond = lossBeyondHost(c);
      // A queue without loss could sit in a host component: a queueing qdisc, a stopped NIC queue, a
      // saturated RX CPU, or the tap of a userspace OVS datapath (its queue is invisible).
      // A userspace datapath whose forwarding thread shows spare capacity holds no standing queue.
      const ovsMayQueue = userspaceOvs(c.txNode) && vswitchdSpare(c.txNode) !== true;
      const hostMayQueue = queues.length > 0 || dropHops.length > 0 || ovsMayQueue || ovsStarved(c.txNode);
      let status: Status = 'ok';
      if (x >= T.cwndShare && lossBeyond) status = 'limiting';
      else if (x >= T.cwndShare && queue && !hostMayQueue) status = 'limiting';
      else if (x >= T.cwndShare && (queue || loss)) status = 'suspect';
      else if (loss) status = 'suspect';
      const hostExplains = status === 'suspect' && hostMayQueue;
      const wire = wireQdiscs(c.rxNode).concat(wireQdiscs(c.txNode));
      return {
        status,
        limit: status === 'ok' ? undefined : queue ? 'queue' : 'loss',
        score: status === 'limiting' ? 0.6 + 0.4 * x : x * 0.4,
        summary:
          status === 'ok'
            ? `no sign of a bottleneck beyond the host (path-bound ${fmtPct(x)}, srtt ${ms(tx.medianRttUs)} ms vs min ${ms(tx.minRttUs)} ms, loss ${fmtPct(lossRatio(tx))})`
            : `path-bound ${fmtPct(x)} of the time with ${queue ? `a queue (srtt ${ms(tx.medianRttUs)} ms vs min ${ms(tx.minRttUs)} ms)` : ''}${queue && loss ? ' and ' : ''}${loss ? `loss (${lossSegs(tx)} segments, ${fmtPct(lossRatio(tx))} of bytes)` : ''}${hostExplains ? `; the queue may be on this host (${[...new Set([...queues, ...dropHops])].join(', ') || 'userspace OVS datapath'})` : lossBeyond ? '; host drop counters do not account for the loss' : '; no host counter explains it'}`,
        evidence: flowEvidence(tx, {
          path_bound_pct: pct(x),
          cwnd: orNull(tx.medianCwnd),
          ssthresh: orNull(tx.last.ssthresh),
          srtt_ms: ms(tx.medianRttUs),
          min_rtt_ms: ms(tx.minRttUs),
          retrans_segs: orNull(tx.retransSegs),
          dsack_dups: orNull(tx.dsackDups),
          loss_pct: pct(lossRatio(tx)),
          delivery_rate_bps: bits(tx.medianDeliveryRate),
          host_drop_hops: dropHops.join(',') || null,
          host_drops: dropTotal,
          userspace_ovs: userspaceOvs(c.txNode),
          vswitchd_spare: vswitchdSpare(c.txNode) ?? null,
          host_queue_hops: queues.join(',') || null,
          wire_shaper: wire.map((q) => `${q.snapshot.device}:${q.snapshot.kind}`).join(',') || null,
          wire_shaper_drops: wire.length ? sum(wire.map((q) => q.drops)) : null,
        }),
        next: queue
          ? 'A queue builds between the hosts: a slower link or a shaper/policer on the way (switch port, tc on the wire). Compare delivery_rate with each link speed; check switch port counters.'
          : 'Packets are lost between the hosts: check the switch/NIC error counters on both ends, the peer (--peer) for RX drops, and any policer on the path.',
      };
    },
  },
  // ------------------------------------------------------------------ receiver
  {
    id: 'rx-cpu',
    hop: 'nic-rx',
    title: 'The receiver RX CPU is saturated by softirq',
    basis: 'mixed',
    decides: 'receiver: softirq share of the busiest NET_RX CPU (/proc/stat, tick-sampled) ≥ 90%, or ≥ 50% with ≥ 10 time_squeeze/s',
    evaluate(c) {
      const n = c.rxNode;
      const cpu = n?.rxCpu;
      if (!n || !cpu) return undefined;
      const sat = rxSoftirqSaturated(n);
      const held = c.tx ? cwndBound(c) : true;
      const status: Status = sat ? (held ? 'limiting' : 'suspect') : 'ok';
      const nic = dev(n, n.path.nicDevice);
      return {
        status,
        limit: status === 'ok' ? undefined : 'cpu',
        score: status === 'limiting' ? Math.max(pathShare(c.tx), cpu.softirqShare ?? 0) : 0.2,
        summary: `RX CPU ${cpu.cpu}: softirq ${cpu.softirqShare === undefined ? '?' : fmtPct(cpu.softirqShare)}, ${cpu.timeSqueeze ?? '?'} squeezes, ${cpu.softnetDropped ?? '?'} backlog drops${nic?.snapshot.rps === false ? ', RPS off' : ''}`,
        evidence: {
          cpu: cpu.cpu,
          softirq_pct: cpu.softirqShare === undefined ? null : pct(cpu.softirqShare),
          time_squeeze: orNull(cpu.timeSqueeze),
          softnet_dropped: orNull(cpu.softnetDropped),
          net_rx: orNull(cpu.netRx),
          rps: nic?.snapshot.rps ?? null,
          gro: nic?.snapshot.gro ?? null,
        },
        next: 'One CPU does all RX work for the flow: check the RX queue IRQ affinity (/proc/irq/N/effective_affinity_list), RPS (rps_cpus), GRO (ethtool -k), netdev_budget / netdev_budget_usecs, and ksoftirqd CPU.',
      };
    },
  },
  {
    id: 'rx-drops',
    hop: 'nic-rx',
    title: 'The receiver drops at the NIC or the backlog',
    basis: 'exact',
    decides: 'receiver: Δrx_dropped + Δrx_missed + Δrx_errors of the NIC, Δsoftnet dropped of the RX CPU',
    evaluate(c) {
      const n = c.rxNode;
      if (!n) return undefined;
      const nic = nicDrops(n, 'rx');
      const backlog = n.rxCpu?.softnetDropped;
      if (nic === undefined && backlog === undefined) return undefined;
      const total = (nic ?? 0) + (backlog ?? 0);
      let status: Status = 'ok';
      if (total > 0) status = c.tx && cwndBound(c) && lossy(c.tx) ? 'limiting' : 'suspect';
      return {
        status,
        limit: status === 'ok' ? undefined : 'drops',
        score: status === 'limiting' ? pathShare(c.tx) * 0.9 : 0.2,
        summary: `${n.path.nicDevice ?? 'NIC'}: ${nic ?? '?'} RX drops/missed, ${backlog ?? '?'} backlog drops`,
        evidence: { device: n.path.nicDevice ?? null, nic_rx_drops: orNull(nic), softnet_dropped: orNull(backlog) },
        next: 'ethtool -S <nic> (rx_missed/no_buffer: ring too small or CPU too slow), ethtool -g (RX ring vs max), net.core.netdev_max_backlog.',
      };
    },
  },
  {
    id: 'rx-internal-port',
    hop: 'internal-rx',
    title: 'The receiver internal port drops',
    basis: 'exact',
    decides: 'receiver: Δrx_dropped of the OVS internal port that holds the IP',
    evaluate(c) {
      const n = c.rxNode;
      if (!n?.path.viaOvs) return undefined;
      const d = dev(n, n.path.ipDevice);
      if (!d || d.rxDropped === undefined) return undefined;
      const status: Status = d.rxDropped > 0 ? (c.tx && cwndBound(c) && lossy(c.tx) ? 'limiting' : 'suspect') : 'ok';
      return {
        status,
        limit: status === 'ok' ? undefined : 'drops',
        score: status === 'limiting' ? pathShare(c.tx) * 0.8 : 0.15,
        summary: `${d.name}: ${d.rxDropped} RX drops`,
        evidence: { device: d.name, rx_dropped: d.rxDropped, rx_bps: bits(d.rxBps) },
        next: 'ip -s link show <port>; softnet backlog of the CPU that runs the datapath (netdev_max_backlog).',
      };
    },
  },
  {
    id: 'rx-tcp-drops',
    hop: 'tcp-rx',
    title: 'The receiver TCP drops (memory, backlog, out-of-order queue)',
    basis: 'exact',
    decides: 'receiver: ΔTcpExt TCPRcvQDrop + TCPBacklogDrop + TCPOFODrop + TCPZeroWindowDrop',
    evaluate(c) {
      const n = c.rxNode;
      if (!n || Object.keys(n.tcpExt).length === 0) return undefined;
      const parts = Object.fromEntries(RX_TCP_DROPS.map((k) => [k, n.tcpExt[k] ?? 0]));
      const total = sum(Object.values(parts));
      const status: Status = total > 0 ? (c.tx && cwndBound(c) && lossy(c.tx) ? 'limiting' : 'suspect') : 'ok';
      return {
        status,
        limit: status === 'ok' ? undefined : 'drops',
        score: status === 'limiting' ? pathShare(c.tx) * 0.8 : 0.15,
        summary: total === 0 ? 'no receive-side TCP drops' : `${total} receive-side TCP drops (${Object.entries(parts).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ')})`,
        evidence: parts,
        next: 'nstat -az TcpExt | grep -e RcvQDrop -e BacklogDrop -e OFODrop: receive memory (tcp_rmem, tcp_mem) or a reader that holds the socket lock too long.',
      };
    },
  },
  {
    id: 'receiver-cpu',
    hop: 'socket-rx',
    title: 'The reader is CPU-bound (or starved of CPU) on the receiver',
    basis: 'exact',
    decides:
      "receiver (--peer): busiest thread of the processes holding the socket: schedstat run + wait ≥ 90%; limiting when the sender is held by the receive window ≥ 50%, the receive queue is at least half full (skmem r ≥ rb/2: data waits for the reader) and the receive buffer is not below the BDP (then the buffer is the cause: rwnd-limited)",
    evaluate({ tx, rx, rxNode }) {
      if (!rx) return undefined;
      const owner = ownerOf(rx, rxNode);
      if (!owner) return undefined;
      const reader = owner.threads[0];
      if (!reader) {
        return {
          status: 'ok',
          score: 0,
          summary: `the reader's CPU is unknown: ${owner.unknown ?? 'its threads were read only once in the window'}`,
          evidence: threadEvidence('reader', owner, reader, rxNode),
          next: 'Run the peer flowpath as root (or with CAP_SYS_PTRACE) to see the processes that hold the socket.',
        };
      }
      const bound = threadCpuBound(reader);
      const rw = share(tx, 'rwnd');
      const bdp = tx?.medianDeliveryRate !== undefined && tx.medianRttUs !== undefined ? (tx.medianDeliveryRate * tx.medianRttUs) / 1e6 : undefined;
      const smallBuffer = bdp !== undefined && rx.last.skmem !== undefined && rx.last.skmem.rcvbuf < bdp;
      // A slow reader leaves the data in the receive queue (r near rb); a full window with an empty queue
      // is the buffer's size, however busy the reader (rwnd-limited says so).
      const behind = rx.last.skmem !== undefined && rx.last.skmem.rcvbuf > 0 && rx.last.skmem.rmemAlloc >= 0.5 * rx.last.skmem.rcvbuf;
      let status: Status = 'ok';
      if (bound && rw >= T.limitingShare && behind && !smallBuffer) status = 'limiting';
      else if (bound) status = 'suspect';
      return {
        status,
        limit: status === 'ok' ? undefined : 'cpu',
        score: status === 'limiting' ? rw : 0.2,
        summary: `the reader ${reader.comm} ${bound ? 'is CPU-bound: it ' : ''}${threadCpuText(reader, rxNode)}${tx ? `; the receive window held the sender ${fmtPct(rw)} of the time` : ''}`,
        evidence: {
          rwnd_pct: tx ? pct(rw) : null,
          reader_cpu_bound: bound,
          receiver_rmem_alloc_bytes: orNull(rx.last.skmem?.rmemAlloc),
          receiver_rcvbuf_bytes: orNull(rx.last.skmem?.rcvbuf),
          bdp_bytes: bdp === undefined ? null : Math.round(bdp),
          ...threadEvidence('reader', owner, reader, rxNode),
        },
        next: 'The receiving thread needs more CPU: top -H -p PID on the receiver; move RX softirq/IRQs off its CPU (IRQ affinity, RPS), larger reads, GRO.',
      };
    },
  },
  {
    id: 'rwnd-limited',
    hop: 'socket-rx',
    title: "The receiver's window limits the flow",
    basis: 'mixed',
    decides: 'sender: Δrwnd_limited (exact) + samples where snd_wnd − bytes out < MSS (sampled); receiver skmem/rcv_wnd as context',
    evaluate({ tx, rx, rxNode }) {
      if (!tx || tx.role !== 'sender') return undefined;
      const x = share(tx, 'rwnd');
      const reader = busiestThread(rx, rxNode);
      const status = byShare(x, T.limitingShare, T.suspectShare);
      const rmem = rxNode?.sysctl['net.ipv4.tcp_rmem'];
      const r = rx?.last;
      const readerSlow = r?.skmem ? r.skmem.rmemAlloc >= 0.5 * r.skmem.rcvbuf : undefined;
      return {
        status,
        limit: status === 'ok' ? undefined : 'rwnd',
        score: x,
        summary:
          status === 'ok'
            ? `the receive window held the flow ${fmtPct(x)} of the time`
            : `the receiver's window held the flow ${fmtPct(x)} of the time (snd_wnd ${fmtBytes(tx.last.sndWnd)})${readerSlow === true ? '; the receiver app is not reading fast enough (r near rb)' : readerSlow === false ? '; the receive buffer is small (r well below rb)' : ''}${reader && threadCpuBound(reader) ? `; the reader is CPU-bound (see receiver-cpu)` : ''}`,
        evidence: flowEvidence(tx, {
          rwnd_pct: pct(x),
          rwnd_limited_chrono_pct: pct(tx.seconds > 0 ? tx.exactReasons.rwnd / tx.seconds : 0),
          snd_wnd_bytes: orNull(tx.last.sndWnd),
          receiver_rcv_wnd_bytes: orNull(r?.rcvWnd),
          receiver_rmem_alloc_bytes: orNull(r?.skmem?.rmemAlloc),
          receiver_rcvbuf_bytes: orNull(r?.skmem?.rcvbuf),
          receiver_rcv_space: orNull(r?.rcvSpace),
          receiver_tcp_rmem: rmem ?? null,
          reader_cpu_bound: busiestThread(rx, rxNode) ? threadCpuBound(busiestThread(rx, rxNode)) : null,
        }),
        next: `On the receiver: ss -tim (rb, rcv_space); raise net.ipv4.tcp_rmem max${rmem ? ` (now "${rmem}")` : ''} or the app's SO_RCVBUF; if r stays near rb, the reader is too slow (its CPU).`,
      };
    },
  },
];

// ---------------------------------------------------------------------------------------------------

export function runRules(input: DiagnosisInput, rules: readonly Rule[] = RULES): Finding[] {
  const c = contextOf(input);
  const out: Finding[] = [];
  for (const r of rules) {
    const f = r.evaluate(c);
    if (f) out.push({ rule: r.id, hop: r.hop, ...f });
  }
  return out;
}

const STATUS_RANK: Record<Status, number> = { limiting: 2, suspect: 1, ok: 0 };

/** Rank: limiting before suspect before ok; then by score; then table order (stable sort). */
export function rankFindings(fs: readonly Finding[]): Finding[] {
  return [...fs].sort((a, b) => STATUS_RANK[b.status] - STATUS_RANK[a.status] || b.score - a.score);
}
