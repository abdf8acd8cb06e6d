// Window summaries: samples of one flow → FlowSummary; two node snapshots → NodeSummary (deltas).
// Pure functions; the rules (rules.ts) only read these.

import { addReasons, mssOf } from './classify';
import type { IntervalResult } from './classify';
import type {
  CpuDelta,
  CpuSnapshot,
  DeviceDelta,
  FlowKey,
  FlowSample,
  FlowSummary,
  NodeSnapshot,
  NodeSummary,
  PathDevices,
  QdiscDelta,
} from './types';
import { zeroReasons } from './types';

export interface HistoryEntry {
  sample: FlowSample;
  /** Classification of the interval that ends at this sample (absent for the first sample). */
  interval?: IntervalResult;
}

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

function defined<T>(xs: Array<T | undefined>): T[] {
  return xs.filter((x): x is T => x !== undefined);
}

/**
 * Summarise the samples of one socket. `entries` are in time order; the first is the baseline (its
 * interval, if any, lies before the window and is not counted).
 */
export function summarizeFlow(key: FlowKey, entries: readonly HistoryEntry[]): FlowSummary | undefined {
  if (entries.length === 0) return undefined;
  const first = entries[0].sample;
  const last = entries[entries.length - 1].sample;
  const reasons = zeroReasons();
  const exactReasons = zeroReasons();
  for (let i = 1; i < entries.length; i++) {
    const iv = entries[i].interval;
    if (!iv) continue;
    addReasons(reasons, iv.reasons);
    addReasons(exactReasons, iv.exact);
  }
  const seconds = Math.max(0, (last.t - first.t) / 1000);
  const acked = delta(first.bytesAcked, last.bytesAcked);
  const received = delta(first.bytesReceived, last.bytesReceived);
  const sent = delta(first.bytesSent, last.bytesSent);
  const retrans = delta(first.bytesRetrans, last.bytesRetrans);
  const samples = entries.map((e) => e.sample);
  const waiting = samples.filter((s) => (s.notsentBytes ?? 0) >= mssOf(s)).length;
  const role: 'sender' | 'receiver' =
    (acked ?? 0) > 0 || (received ?? 0) > 0
      ? (acked ?? 0) >= (received ?? 0)
        ? 'sender'
        : 'receiver'
      : (last.bytesAcked ?? 0) >= (last.bytesReceived ?? 0)
        ? 'sender'
        : 'receiver';
  const minRtts = defined(samples.map((s) => s.minRtt));
  return {
    key,
    role,
    cc: last.cc,
    seconds,
    samples: entries.length,
    reasons,
    exactReasons,
    goodputBps: seconds > 0 && acked !== undefined ? acked / seconds : undefined,
    receiveBps: seconds > 0 && received !== undefined ? received / seconds : undefined,
    retransRatio: sent !== undefined && retrans !== undefined && sent > 0 ? retrans / sent : undefined,
    retransSegs: delta(first.totalRetrans, last.totalRetrans),
    dsackDups: delta(first.dsackDups, last.dsackDups),
    notsentShare: samples.length ? waiting / samples.length : 0,
    first,
    last,
    medianRttUs: median(defined(samples.map((s) => s.rtt))),
    minRttUs: minRtts.length ? Math.min(...minRtts) : undefined,
    medianCwnd: median(defined(samples.map((s) => s.cwnd))),
    medianDeliveryRate: median(defined(samples.map((s) => s.deliveryRate)).filter((x) => x > 0)),
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
  return {
    cpu: b.cpu,
    softirqShare: dTotal && dSoft !== undefined ? dSoft / dTotal : undefined,
    busyShare: dTotal && dIdle !== undefined ? 1 - dIdle / dTotal : undefined,
    softnetProcessed: counterDelta(a?.softnetProcessed, b.softnetProcessed),
    softnetDropped: counterDelta(a?.softnetDropped, b.softnetDropped),
    timeSqueeze: counterDelta(a?.softnetTimeSqueeze, b.softnetTimeSqueeze),
    netRx: counterDelta(a?.netRx, b.netRx),
  };
}

export function summarizeNode(from: NodeSnapshot, to: NodeSnapshot, path: PathDevices): NodeSummary {
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
    tcpExt,
    sysctl: { ...(to.sysctl ?? {}) },
    errors: [...new Set([...from.errors, ...to.errors])],
  };
}
