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
/**
 * An interval's pacing time is accepted while the bytes sent over it reach this share of what the pacing
 * rate allows (pacing_rate × pacing-held time). The pacing rate is read at the two ends of the interval
 * only; BBR cycles its pacing gain between 0.75 and 1.25 within a round trip, so a rate read at the 1.25
 * phase overstates the average by up to 1/0.8.
 */
export const PACING_NEAR = 0.8;
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
  const perMs = (s.pacingRate ?? 0) / 2 ** PACING_SHIFT;
  let limit = Math.max(2 * (skbBytes(s) + SKB_OVERHEAD), perMs);
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
  // At the small-queue limit with pacing_rate at max_pacing_rate: fq (also as a child of mq) holds the
  // paced skbs until their departure time and TSQ is how that cap reaches the socket, so the cap held
  // the flow. classifyInterval() checks that against the bytes sent (pacingBound()) and gives the time
  // the cap cannot explain back to tsq.
  if (atTsqLimit(s, ctx)) return pacingCapped(s) ? 'pacing_capped' : 'tsq';
  if (pacingEnforced(s, ctx)) return pacingCapped(s) ? 'pacing_capped' : 'pacing';
  return 'unclassified';
}

/** True when the sample shows nothing queued and nothing unacked (the socket is idle). */
export function sampleIdle(s: FlowSample): boolean {
  return (s.notsentBytes ?? 0) === 0 && (s.unacked ?? 0) === 0 && (s.wqueue ?? 0) === 0;
}

/**
 * Bytes one transmission (one TSO/GSO skb) carries at this pacing rate: tcp_tso_autosize() sizes it to
 * about 1 ms of data (pacing_rate >> sk_pacing_shift), 2 MSS .. 64 KiB.
 */
export function skbBytes(s: FlowSample): number {
  return Math.min(GSO_MAX, Math.max(2 * mssOf(s), (s.pacingRate ?? 0) / 2 ** PACING_SHIFT));
}

/**
 * The most time of an interval that pacing can have held a flow, in seconds (Infinity when the sample
 * lacks what the bound needs: bytes_sent or the pacing rate).
 *
 * How the kernel paces: after every skb, tcp_update_skb_after_send() moves the socket's departure clock
 * tcp_wstamp_ns forward by len / pacing_rate (internal pacing: tcp_pacing_check() arms an hrtimer while
 * tcp_wstamp_ns is in the future), and sch_fq moves the flow's time_next_packet forward the same way. A
 * departure clock that fell behind is not credited (it is moved up to "now"), so pacing can only delay
 * the next skb by the time the bytes already sent have "bought" at the pacing rate. Over an interval,
 * pacing therefore holds the flow for at most Δbytes_sent / pacing_rate, plus the wait for one skb that
 * was due across the interval start. The rate is the lower of the two samples' pacing rates (a longer
 * bound), divided by PACING_NEAR for BBR's gain cycling between the samples.
 */
export function pacingBound(prev: FlowSample, cur: FlowSample): number {
  const rates = [prev.pacingRate, cur.pacingRate].filter((r): r is number => r !== undefined && r > 0);
  if (prev.bytesSent === undefined || cur.bytesSent === undefined || rates.length === 0) return Infinity;
  const rate = Math.min(...rates);
  const sent = Math.max(0, cur.bytesSent - prev.bytesSent);
  return (sent + skbBytes(cur)) / (PACING_NEAR * rate);
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
  /**
   * Seconds the sampled state called pacing / pacing_capped but the bytes sent over the interval could
   * not have been held by the pacing rate (pacingBound()): counted as unclassified instead (as tsq when
   * the sample was at the small-queue limit, which then held the flow; those are not counted here).
   */
  pacingRejected: number;
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
  // What pacing time the bytes sent cannot explain becomes: tsq when the sample was at the small-queue
  // limit (sampledState() gave it to a capped pacing rate), unclassified otherwise.
  const fallback: Reason = state === 'pacing_capped' && atTsqLimit(cur, ctx) ? 'tsq' : 'unclassified';
  const dBusy = chronoDelta(prev.busyTime, cur.busyTime);
  if (dBusy === undefined || dt === 0) {
    // No chronographs (kernel < 4.10): the whole interval is sampled.
    const r: Reason = sampleIdle(cur) ? 'idle' : state;
    const rejected = assignSampled(reasons, r, dt, prev, cur, fallback);
    return { seconds: dt, reasons, exact, state, carry: { busy: 0, rwnd: 0, sndbuf: 0 }, chrono: false, pacingRejected: rejected };
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
  const rejected = assignSampled(reasons, state, other, prev, cur, fallback);
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
    pacingRejected: rejected,
  };
}

/**
 * Put `seconds` of sampled time on `state`; pacing states keep only what pacingBound() allows and the
 * rest goes to `fallback`: unclassified (the sender had room and pacing did not hold it: it did not run,
 * or the state changed between samples), or tsq for a sample at the small-queue limit. Returns the
 * seconds moved to unclassified.
 */
function assignSampled(reasons: ReasonSeconds, state: Reason, seconds: number, prev: FlowSample, cur: FlowSample, fallback: Reason): number {
  if (state !== 'pacing' && state !== 'pacing_capped') {
    reasons[state] += seconds;
    return 0;
  }
  const held = Math.min(seconds, pacingBound(prev, cur));
  reasons[state] += held;
  reasons[fallback] += seconds - held;
  return fallback === 'unclassified' ? seconds - held : 0;
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
  /** Seconds moved from pacing to unclassified by the rate check (IntervalResult.pacingRejected). */
  pacingRejected = 0;
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
    this.pacingRejected += r.pacingRejected;
    return r;
  }
}
