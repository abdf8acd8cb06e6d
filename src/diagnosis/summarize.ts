// Window summaries: samples of one flow → FlowSummary; two node snapshots → NodeSummary (deltas).
// Pure functions; the rules (rules.ts) only read these.

import type { FlowHistory, KeptField } from './history';
import type {
  CpuDelta,
  CpuSnapshot,
  DeviceDelta,
  FlowKey,
  FlowSummary,
  NodeSnapshot,
  NodeSummary,
  OwnerSnapshot,
  OwnerSummary,
  PathDevices,
  QdiscDelta,
  TaskSnapshot,
  ThreadDelta,
} from './types';
import { zeroReasons } from './types';

export function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function delta(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined) return undefined;
  return b - a;
}

/**
 * Summarise the samples of one socket from row `from` of its history to the newest. Row `from` is the
 * baseline: the interval that ends there lies before the window and is not counted.
 */
export function summarizeFlow(key: FlowKey, h: FlowHistory, from = 0): FlowSummary | undefined {
  const to = h.length - 1;
  const last = h.last;
  if (to < from || !last) return undefined;
  const first = h.sample(from);
  const counter = (f: KeptField) => delta(h.value(from, f), h.value(to, f));
  const seconds = Math.max(0, (h.t(to) - h.t(from)) / 1000);
  const acked = counter('bytesAcked');
  const received = counter('bytesReceived');
  const sent = counter('bytesSent');
  const retrans = counter('bytesRetrans');
  const samples = to - from + 1;
  let waiting = 0;
  const column = (f: KeptField, positive = false): number[] => {
    const xs: number[] = [];
    for (let i = from; i <= to; i++) {
      const v = h.value(i, f);
      if (v !== undefined && (!positive || v > 0)) xs.push(v);
    }
    return xs;
  };
  for (let i = from; i <= to; i++) if (h.waiting(i)) waiting++;
  const role: 'sender' | 'receiver' =
    (acked ?? 0) > 0 || (received ?? 0) > 0
      ? (acked ?? 0) >= (received ?? 0)
        ? 'sender'
        : 'receiver'
      : (last.bytesAcked ?? 0) >= (last.bytesReceived ?? 0)
        ? 'sender'
        : 'receiver';
  const minRtts = column('minRtt');
  return {
    key,
    role,
    cc: last.cc,
    seconds,
    samples,
    reasons: h.reasonsBetween(from, to, 'all'),
    exactReasons: h.reasonsBetween(from, to, 'exact'),
    goodputBps: seconds > 0 && acked !== undefined ? acked / seconds : undefined,
    receiveBps: seconds > 0 && received !== undefined ? received / seconds : undefined,
    sendBps: seconds > 0 && sent !== undefined ? sent / seconds : undefined,
    pacingRejectedSeconds: h.pacingRejectedBetween(from, to),
    retransRatio: sent !== undefined && retrans !== undefined && sent > 0 ? retrans / sent : undefined,
    retransSegs: counter('totalRetrans'),
    dsackDups: counter('dsackDups'),
    notsentShare: waiting / samples,
    first,
    last,
    medianRttUs: median(column('rtt')),
    minRttUs: minRtts.length ? Math.min(...minRtts) : undefined,
    medianCwnd: median(column('cwnd')),
    medianDeliveryRate: median(column('deliveryRate', true)),
    medianPacingRate: median(column('pacingRate', true)),
    maxPacingRate: last.maxPacingRate,
  };
}

// ---------------------------------------------------------------------------------------------------
// Node deltas

/** Counter delta tolerant of u32 wrap (softnet_stat, /proc/softirqs); undefined if either is absent. */
export function counterDelta(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined) return undefined;
  const d = b - a;
  if (d >= 0) return d;
  if (a < 2 ** 32 && b < 2 ** 32) return d + 2 ** 32;
  return undefined; // counter reset (device re-created): no honest delta
}

function cpuDelta(a: CpuSnapshot | undefined, b: CpuSnapshot): CpuDelta {
  const dTotal = counterDelta(a?.totalTicks, b.totalTicks);
  const dSoft = counterDelta(a?.softirqTicks, b.softirqTicks);
  const dIdle = counterDelta(a?.idleTicks, b.idleTicks);
  const dIrq = counterDelta(a?.irqTicks, b.irqTicks);
  const dSteal = counterDelta(a?.stealTicks, b.stealTicks);
  return {
    cpu: b.cpu,
    softirqShare: dTotal && dSoft !== undefined ? dSoft / dTotal : undefined,
    irqShare: dTotal && dIrq !== undefined ? dIrq / dTotal : undefined,
    stealShare: dTotal && dSteal !== undefined ? dSteal / dTotal : undefined,
    busyShare: dTotal && dIdle !== undefined ? 1 - dIdle / dTotal : undefined,
    softnetProcessed: counterDelta(a?.softnetProcessed, b.softnetProcessed),
    softnetDropped: counterDelta(a?.softnetDropped, b.softnetDropped),
    timeSqueeze: counterDelta(a?.softnetTimeSqueeze, b.softnetTimeSqueeze),
    netRx: counterDelta(a?.netRx, b.netRx),
  };
}

/**
 * Per-thread shares of a window from two reads of the same threads (matched by tid; a thread missing
 * from either read is left out). Busiest (highest demand) first.
 */
export function threadDeltas(from: readonly TaskSnapshot[], to: readonly TaskSnapshot[], seconds: number, userHz = 100): ThreadDelta[] {
  if (!(seconds > 0)) return [];
  const before = new Map(from.map((t) => [t.tid, t]));
  const out: ThreadDelta[] = [];
  for (const b of to) {
    const a = before.get(b.tid);
    if (!a || a.pid !== b.pid) continue;
    const dRun = a.runNs !== undefined && b.runNs !== undefined ? (b.runNs - a.runNs) / 1e9 : (b.cpuTicks - a.cpuTicks) / userHz;
    const dWait = a.waitNs !== undefined && b.waitNs !== undefined ? (b.waitNs - a.waitNs) / 1e9 : undefined;
    if (dRun < 0 || (dWait !== undefined && dWait < 0)) continue; // not the same thread
    // schedstat adds a run-queue wait when it ends, so one read can hold a wait that began before the
    // window: clamp the shares to the window.
    const runShare = Math.min(1, dRun / seconds);
    const waitShare = dWait === undefined ? undefined : Math.min(1 - runShare, dWait / seconds);
    const dVol = a.voluntarySwitches !== undefined && b.voluntarySwitches !== undefined ? b.voluntarySwitches - a.voluntarySwitches : undefined;
    out.push({
      pid: b.pid,
      tid: b.tid,
      comm: b.comm,
      runShare,
      waitShare,
      demand: runShare + (waitShare ?? 0),
      sleepsPerSecond: dVol !== undefined && dVol >= 0 ? dVol / seconds : undefined,
      processor: b.processor,
    });
  }
  return out.sort((x, y) => y.demand - x.demand || y.runShare - x.runShare);
}

/**
 * Socket owners over a window: for each owner of `to`, the earliest snapshot in `earlier` (oldest first)
 * that already knew it is the baseline (an owner is found only after its flow's first sample).
 */
export function summarizeOwners(earlier: readonly NodeSnapshot[], to: NodeSnapshot, userHz = 100): OwnerSummary[] {
  return (to.owners ?? []).map((o: OwnerSnapshot) => {
    const base = earlier.find((s) => s !== to && s.owners?.some((x) => x.inode === o.inode && x.tasks.length > 0));
    const a = base?.owners?.find((x) => x.inode === o.inode);
    const seconds = base ? (to.t - base.t) / 1000 : 0;
    return { inode: o.inode, pids: o.pids, threads: a ? threadDeltas(a.tasks, o.tasks, seconds, userHz) : [], unknown: o.unknown };
  });
}

export function summarizeNode(from: NodeSnapshot, to: NodeSnapshot, path: PathDevices, between: readonly NodeSnapshot[] = [from]): NodeSummary {
  const seconds = Math.max(0, (to.t - from.t) / 1000);
  const rate = (d: number | undefined) => (d !== undefined && seconds > 0 ? d / seconds : undefined);
  const devices: DeviceDelta[] = to.devices.map((b) => {
    const a = from.devices.find((d) => d.name === b.name);
    return {
      name: b.name,
      snapshot: b,
      txBps: rate(counterDelta(a?.txBytes, b.txBytes)),
      rxBps: rate(counterDelta(a?.rxBytes, b.rxBytes)),
      txDropped: counterDelta(a?.txDropped, b.txDropped),
      rxDropped: counterDelta(a?.rxDropped, b.rxDropped),
      rxMissed: counterDelta(a?.rxMissed, b.rxMissed),
      txErrors: counterDelta(a?.txErrors, b.txErrors),
      rxErrors: counterDelta(a?.rxErrors, b.rxErrors),
      txStop: counterDelta(a?.txStop, b.txStop),
    };
  });
  const qdiscs: QdiscDelta[] = to.qdiscs
    .filter((q) => q.root)
    .map((b) => {
      const a = from.qdiscs.find((q) => q.device === b.device && q.root && q.kind === b.kind);
      return {
        snapshot: b,
        drops: counterDelta(a?.drops, b.drops),
        overlimits: counterDelta(a?.overlimits, b.overlimits),
        requeues: counterDelta(a?.requeues, b.requeues),
        fqThrottled: counterDelta(a?.fqThrottled, b.fqThrottled),
        sentBps: rate(counterDelta(a?.bytes, b.bytes)),
      };
    });
  const cpus = to.cpus.map((b) => cpuDelta(from.cpus.find((c) => c.cpu === b.cpu), b));
  let rxCpu: CpuDelta | undefined;
  for (const c of cpus) {
    const w = c.netRx ?? c.softnetProcessed;
    if (w === undefined) continue;
    const best = rxCpu ? (rxCpu.netRx ?? rxCpu.softnetProcessed ?? 0) : -1;
    if (w > best) rxCpu = c;
  }
  const busy = cpus.map((c) => c.busyShare).filter((x): x is number => x !== undefined);
  const cpuBusy = busy.length ? busy.reduce((a, b) => a + b, 0) / busy.length : undefined;
  let ovs: NodeSummary['ovs'];
  if (to.ovs) {
    const fo = from.ovs;
    ovs = {
      datapaths: to.ovs.datapaths.map((d) => {
        const a = fo?.datapaths.find((x) => x.name === d.name);
        return {
          name: d.name,
          type: d.type,
          hit: counterDelta(a?.hit, d.hit),
          missed: counterDelta(a?.missed, d.missed),
          lost: counterDelta(a?.lost, d.lost),
        };
      }),
      portDrops: to.ovs.ports.map((p) => {
        const a = fo?.ports.find((x) => x.name === p.name && x.datapath === p.datapath);
        return {
          name: p.name,
          internal: p.internal,
          rxDropped: counterDelta(a?.rxDropped, p.rxDropped),
          txDropped: counterDelta(a?.txDropped, p.txDropped),
        };
      }),
      upcallFailed: counterDelta(fo?.upcallFailed, to.ovs.upcallFailed),
      vswitchdCpuShare:
        seconds > 0 && fo?.vswitchdCpuSeconds !== undefined && to.ovs.vswitchdCpuSeconds !== undefined
          ? Math.max(0, to.ovs.vswitchdCpuSeconds - fo.vswitchdCpuSeconds) / seconds
          : undefined,
      vswitchdThread: fo?.vswitchdTasks && to.ovs.vswitchdTasks ? threadDeltas(fo.vswitchdTasks, to.ovs.vswitchdTasks, seconds, to.userHz)[0] : undefined,
    };
  }
  const tcpExt: Record<string, number> = {};
  for (const [k, v] of Object.entries(to.tcpExt ?? {})) {
    const d = counterDelta(from.tcpExt?.[k], v);
    if (d !== undefined) tcpExt[k] = d;
  }
  return {
    seconds,
    path,
    devices,
    qdiscs,
    cpus,
    rxCpu,
    cpuBusy,
    ovs,
    owners: to.owners ? summarizeOwners(between, to, to.userHz) : undefined,
    tcpExt,
    sysctl: { ...(to.sysctl ?? {}) },
    errors: [...new Set([...from.errors, ...to.errors])],
  };
}
