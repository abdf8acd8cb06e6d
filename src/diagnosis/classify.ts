// What held a flow: classify each sampling interval into the reasons of types.ts (docs/diagnosis.md).
//
// The kernel measures three things exactly (docs/kernel-sources.md §3.4): time with nothing queued or
// unacked (wall − busy_time = idle), rwnd_limited and sndbuf_limited. Those parts of an interval are
// taken from the chronographs. The rest of the busy time ("other") has no chrono: it is attributed to
// the state of the sample that closes the interval, decided in the order tcp_write_xmit() checks
// (docs/kernel-sources.md §4): nothing to send (app / sndbuf by skmem), receive window, congestion
// window, TSQ, pacing.

import type { ClassifyContext, FlowSample, Reason, ReasonSeconds, SampledState } from './types';
import { REASONS, zeroReasons } from './types';

/** Fallback MSS when the sample has none (Ethernet, IPv4, timestamps). */
export const DEFAULT_MSS = 1448;
/** cwnd counts as full when the free room is at most this share of cwnd (at least 1 segment). */
export const CWND_FULL_SHARE = 0.05;
/** Pacing counts as capped when pacing_rate is within this ratio of max_pacing_rate. */
export const PACING_CAP_RATIO = 0.98;
/** sk_pacing_shift default (~1 ms of data at the pacing rate). */
export const PACING_SHIFT = 10;
/** skmem t at or above this share of the TSQ limit counts as "at the limit". */
export const TSQ_SHARE = 0.75;
/** Default net.ipv4.tcp_limit_output_bytes on 6.18. */
export const DEFAULT_LIMIT_OUTPUT_BYTES = 4 * 1024 * 1024;
/** Overhead of an skb besides its payload (sk_buff + skb_shared_info, rounded), for truesize. */
export const SKB_OVERHEAD = 1024;
/** net.ipv4.tcp_min_tso_segs default. */
export const MIN_TSO_SEGS = 2;
/** GSO size limit of one TCP skb (gso_max_size default). */
export const GSO_MAX = 65536;

export function mssOf(s: FlowSample): number {
  return s.sndMss && s.sndMss > 0 ? s.sndMss : DEFAULT_MSS;
}

/** Segments in flight, as tcp_packets_in_flight(): unacked − (sacked + lost) + retrans. */
export function inFlight(s: FlowSample): number | undefined {
  if (s.unacked === undefined) return undefined;
  return s.unacked - ((s.sacked ?? 0) + (s.lost ?? 0)) + (s.retrans ?? 0);
}

/** Bytes sent and not yet acked. */
export function bytesOut(s: FlowSample): number | undefined {
  if (s.wqueue !== undefined && s.notsentBytes !== undefined) return Math.max(0, s.wqueue - s.notsentBytes);
  if (s.unacked !== undefined) return s.unacked * mssOf(s);
  return undefined;
}

/**
 * Segments of cwnd room below which the flow waits for the cwnd: tcp_write_xmit() sends an skb of up to
 * min(tso_segs, cwnd/2) segments (tcp_cwnd_test()), and tcp_tso_should_defer() holds a smaller one back
 * for more room; tso_segs follows tcp_tso_autosize() (~1 ms at the pacing rate, 2..64 KiB). At least
 * CWND_FULL_SHARE of cwnd, at least one segment.
 */
export function cwndSlack(s: FlowSample): number {
  const cwnd = s.cwnd ?? 0;
  const mss = mssOf(s);
  const tsoSegs = Math.min(Math.floor(GSO_MAX / mss), Math.max(MIN_TSO_SEGS, Math.floor((s.pacingRate ?? 0) / 2 ** PACING_SHIFT / mss)));
  return Math.max(1, Math.floor(cwnd * CWND_FULL_SHARE), Math.min(tsoSegs, Math.floor(cwnd / 2)));
}

/** Whether the kernel enforces the pacing rate for this socket (docs/kernel-sources.md §3.3). */
export function pacingEnforced(s: FlowSample, ctx: ClassifyContext = {}): boolean {
  return s.cc === 'bbr' || s.maxPacingRate !== undefined || ctx.fqOnEgress === true;
}

export function pacingCapped(s: FlowSample): boolean {
  return (
    s.maxPacingRate !== undefined &&
    s.pacingRate !== undefined &&
    s.maxPacingRate > 0 &&
    s.pacingRate >= PACING_CAP_RATIO * s.maxPacingRate
  );
}

/**
 * Estimate of the TSQ limit of tcp_small_queue_check(): max(2 × truesize of the next skb,
 * pacing_rate >> sk_pacing_shift), capped at tcp_limit_output_bytes for unpaced sockets. The skb size
 * follows tcp_tso_autosize(): about 1 ms of data at the pacing rate, at least 2 MSS, at most 64 KiB.
 */
export function tsqLimit(s: FlowSample, ctx: ClassifyContext = {}): number {
  const mss = mssOf(s);
  const perMs = (s.pacingRate ?? 0) / 2 ** PACING_SHIFT;
  const skbBytes = Math.min(GSO_MAX, Math.max(2 * mss, perMs));
  let limit = Math.max(2 * (skbBytes + SKB_OVERHEAD), perMs);
  if (!pacingEnforced(s, ctx)) limit = Math.min(limit, ctx.tcpLimitOutputBytes ?? DEFAULT_LIMIT_OUTPUT_BYTES);
  return limit;
}

/**
 * skb memory below TCP (skmem t) reached the small-queue limit. The limit is usually two skbs; TX
 * completions free one at a time, so a throttled socket is sampled between 1.5 and 2+ skbs.
 */
export function atTsqLimit(s: FlowSample, ctx: ClassifyContext = {}): boolean {
  if (!s.skmem) return false;
  return s.skmem.wmemAlloc >= TSQ_SHARE * tsqLimit(s, ctx);
}

/**
 * The state of one sample: what would hold the flow at that instant. Decided in the order of
 * tcp_write_xmit() and the app's write path; see docs/diagnosis.md for each branch.
 */
export function sampledState(s: FlowSample, ctx: ClassifyContext = {}): SampledState {
  const mss = mssOf(s);
  const notsent = s.notsentBytes;
  const waiting = notsent !== undefined ? notsent >= mss : (s.unacked ?? 0) > 0 && s.appLimited === false;
  if (!waiting) {
    // Everything the app gave has been sent. If the write + retransmit queue fills the send buffer,
    // the app is blocked on sndbuf (w ≥ tb; the kernel's sndbuf chrono misses small buffers, see
    // lab/README.md); otherwise the app did not write more.
    if (s.skmem && s.skmem.sndbuf > 0 && s.skmem.wmemQueued >= s.skmem.sndbuf) return 'sndbuf';
    return 'app';
  }
  const out = bytesOut(s);
  if (s.sndWnd !== undefined && out !== undefined && s.sndWnd - out < mss) return 'rwnd';
  const fl = inFlight(s);
  if (fl !== undefined && s.cwnd !== undefined && s.cwnd > 0 && s.cwnd - fl < cwndSlack(s)) return 'cwnd';
  if (atTsqLimit(s, ctx)) return 'tsq';
  if (pacingEnforced(s, ctx)) return pacingCapped(s) ? 'pacing_capped' : 'pacing';
  return 'unclassified';
}

/** True when the sample shows nothing queued and nothing unacked (the socket is idle). */
export function sampleIdle(s: FlowSample): boolean {
  return (s.notsentBytes ?? 0) === 0 && (s.unacked ?? 0) === 0 && (s.wqueue ?? 0) === 0;
}

export interface Carry {
  busy: number;
  rwnd: number;
  sndbuf: number;
}

export interface IntervalResult {
  seconds: number;
  reasons: ReasonSeconds;
  /** The part of `reasons` taken from the kernel's chronographs. */
  exact: ReasonSeconds;
  state: SampledState;
  carry: Carry;
  /** True when the chronographs were used (kernel ≥ 4.10). */
  chrono: boolean;
}

const US = 1e-6;

function chronoDelta(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined) return undefined;
  return Math.max(0, (b - a) * US);
}

/**
 * Classify the interval between two samples of the same socket. Chronographs advance in jiffies while
 * the sampler runs on its own clock, so a delta can exceed the interval by a jiffy; the excess is
 * carried into the next interval instead of being dropped, so that over many intervals the exact parts
 * sum to exactly the kernel's totals and every interval still sums to its wall time.
 */
export function classifyInterval(
  prev: FlowSample,
  cur: FlowSample,
  carry: Carry = { busy: 0, rwnd: 0, sndbuf: 0 },
  ctx: ClassifyContext = {},
): IntervalResult {
  const dt = Math.max(0, (cur.t - prev.t) / 1000);
  const reasons = zeroReasons();
  const exact = zeroReasons();
  const state = sampledState(cur, ctx);
  const dBusy = chronoDelta(prev.busyTime, cur.busyTime);
  if (dBusy === undefined || dt === 0) {
    // No chronographs (kernel < 4.10): the whole interval is sampled.
    const r: Reason = sampleIdle(cur) ? 'idle' : state;
    reasons[r] = dt;
    return { seconds: dt, reasons, exact, state, carry: { busy: 0, rwnd: 0, sndbuf: 0 }, chrono: false };
  }
  const maxCarry = Math.max(dt, 0.05);
  const busyAvail = dBusy + carry.busy;
  const busy = Math.min(dt, busyAvail);
  const rwndAvail = (chronoDelta(prev.rwndLimited, cur.rwndLimited) ?? 0) + carry.rwnd;
  const rwnd = Math.min(busy, rwndAvail);
  const sndAvail = (chronoDelta(prev.sndbufLimited, cur.sndbufLimited) ?? 0) + carry.sndbuf;
  const sndbuf = Math.min(busy - rwnd, sndAvail);
  const idle = dt - busy;
  const other = busy - rwnd - sndbuf;
  reasons.idle = idle;
  reasons.rwnd = rwnd;
  reasons.sndbuf = sndbuf;
  exact.idle = idle;
  exact.rwnd = rwnd;
  exact.sndbuf = sndbuf;
  reasons[state] += other;
  return {
    seconds: dt,
    reasons,
    exact,
    state,
    carry: {
      busy: Math.min(maxCarry, busyAvail - busy),
      rwnd: Math.min(maxCarry, rwndAvail - rwnd),
      sndbuf: Math.min(maxCarry, sndAvail - sndbuf),
    },
    chrono: true,
  };
}

export function addReasons(into: ReasonSeconds, r: ReasonSeconds): void {
  for (const k of REASONS) into[k] += r[k];
}

export function totalSeconds(r: ReasonSeconds): number {
  let s = 0;
  for (const k of REASONS) s += r[k];
  return s;
}

/**
 * Per-socket accumulator: feed it the samples of one socket in order; it keeps the cumulative seconds
 * per reason since the first sample (the counter flowpath_flow_limited_seconds_total exports).
 */
export class FlowClassifier {
  readonly total: ReasonSeconds = zeroReasons();
  readonly totalExact: ReasonSeconds = zeroReasons();
  private prev: FlowSample | undefined;
  private carry: Carry = { busy: 0, rwnd: 0, sndbuf: 0 };

  constructor(private readonly ctx: () => ClassifyContext = () => ({})) {}

  get last(): FlowSample | undefined {
    return this.prev;
  }

  add(s: FlowSample): IntervalResult | undefined {
    const prev = this.prev;
    this.prev = s;
    if (!prev) return undefined;
    if (s.t <= prev.t) return undefined;
    // A chronograph going backwards means another socket (cookie reuse is impossible; a 4-tuple reuse is
    // not): restart from this sample.
    if (prev.busyTime !== undefined && s.busyTime !== undefined && s.busyTime < prev.busyTime) {
      this.carry = { busy: 0, rwnd: 0, sndbuf: 0 };
      return undefined;
    }
    const r = classifyInterval(prev, s, this.carry, this.ctx());
    this.carry = r.carry;
    addReasons(this.total, r.reasons);
    addReasons(this.totalExact, r.exact);
    return r;
  }
}
