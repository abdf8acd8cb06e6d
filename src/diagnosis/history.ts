// A sampled flow's history: one row of numbers per sample in a Float64Array ring, not an object per sample.
//
// The sampler keeps --diagnosis.history (120 s) of samples per flow: 2,400 at 20 Hz. Kept as objects (a
// FlowSample and its IntervalResult, ~1 KB with their nested objects), ten flows held ~24,000 objects that
// all survived into V8's old generation and died there two minutes later: a live heap of tens of MB that
// the major collector had to mark again and again. A row here is 32 numbers (256 bytes) outside the V8 heap.
//
// A row keeps what a window summary (summarize.ts) reads: the counters whose deltas it takes, the values
// whose medians it takes, whether data was waiting, and the classifier's running totals after the sample.
// The reasons of a window are the difference of those totals between its last and first rows (the same
// sum as adding up the intervals in between). The newest sample is kept whole: the rules read its
// socket memory, BBR state and windows.

import { mssOf } from './classify';
import type { FlowSample, ReasonSeconds } from './types';
import { REASONS, zeroReasons } from './types';

/** The classifier's running totals after a sample (FlowClassifier has them). */
export interface RunningTotals {
  readonly total: Readonly<ReasonSeconds>;
  readonly totalExact: Readonly<ReasonSeconds>;
  readonly pacingRejected: number;
}

/** The sample fields a row keeps (undefined is stored as NaN). */
export const KEPT_FIELDS = [
  't',
  'bytesAcked',
  'bytesReceived',
  'bytesSent',
  'bytesRetrans',
  'totalRetrans',
  'dsackDups',
  'rtt',
  'minRtt',
  'cwnd',
  'deliveryRate',
  'pacingRate',
] as const;
export type KeptField = (typeof KEPT_FIELDS)[number];

const COL = Object.fromEntries(KEPT_FIELDS.map((f, i) => [f, i])) as Record<KeptField, number>;
const C_WAITING = KEPT_FIELDS.length;
const C_TOTAL = C_WAITING + 1;
const C_EXACT = C_TOTAL + REASONS.length;
const C_REJECTED = C_EXACT + REASONS.length;
const COLS = C_REJECTED + 1;

export class FlowHistory {
  private rows: Float64Array;
  private cap: number;
  /** Ring position of the oldest row. */
  private head = 0;
  private n = 0;
  private newest: FlowSample | undefined;

  /**
   * Rows older than `keepMs` before the newest are dropped. `expectedRows` (the sample rate × keepMs) is
   * the size the ring grows to in one step once it outgrows its first 64 rows, instead of doubling past it.
   */
  constructor(
    private readonly keepMs: number,
    private readonly expectedRows = 0,
  ) {
    this.cap = 64;
    this.rows = new Float64Array(this.cap * COLS);
  }

  get length(): number {
    return this.n;
  }

  /** The newest sample, whole. */
  get last(): FlowSample | undefined {
    return this.newest;
  }

  push(s: FlowSample, totals: RunningTotals): void {
    while (this.n > 0 && s.t - this.rows[this.head * COLS + COL.t] > this.keepMs) {
      this.head = (this.head + 1) % this.cap;
      this.n--;
    }
    if (this.n === this.cap) this.grow();
    const o = ((this.head + this.n) % this.cap) * COLS;
    const r = this.rows;
    for (let c = 0; c < KEPT_FIELDS.length; c++) r[o + c] = s[KEPT_FIELDS[c]] ?? NaN;
    r[o + C_WAITING] = (s.notsentBytes ?? 0) >= mssOf(s) ? 1 : 0;
    for (let k = 0; k < REASONS.length; k++) {
      r[o + C_TOTAL + k] = totals.total[REASONS[k]];
      r[o + C_EXACT + k] = totals.totalExact[REASONS[k]];
    }
    r[o + C_REJECTED] = totals.pacingRejected;
    this.n++;
    this.newest = s;
  }

  /** Row `i` (0 = oldest) of a kept field; undefined where the sample had none. */
  value(i: number, field: KeptField): number | undefined {
    const v = this.rows[this.at(i) + COL[field]];
    return Number.isNaN(v) ? undefined : v;
  }

  /** Sampler time of row `i`. */
  t(i: number): number {
    return this.rows[this.at(i) + COL.t];
  }

  /** Whether at least one MSS of data waited in the socket (notsent) at row `i`. */
  waiting(i: number): boolean {
    return this.rows[this.at(i) + C_WAITING] === 1;
  }

  /** Row `i` as a sample of the kept fields only. */
  sample(i: number): FlowSample {
    const s: FlowSample = { t: this.t(i) };
    for (const f of KEPT_FIELDS) {
      const v = this.value(i, f);
      if (f !== 't' && v !== undefined) s[f] = v;
    }
    return s;
  }

  /**
   * Seconds per reason classified in the intervals after row `from` up to row `to` ('exact': the parts
   * taken from the kernel's chronographs). Running totals only grow, so each difference is ≥ 0.
   */
  reasonsBetween(from: number, to: number, part: 'all' | 'exact'): ReasonSeconds {
    const base = part === 'all' ? C_TOTAL : C_EXACT;
    const a = this.at(from) + base;
    const b = this.at(to) + base;
    const out = zeroReasons();
    for (let k = 0; k < REASONS.length; k++) out[REASONS[k]] = this.rows[b + k] - this.rows[a + k];
    return out;
  }

  /** Seconds moved from pacing to unclassified by the rate check in the intervals after row `from` up to row `to`. */
  pacingRejectedBetween(from: number, to: number): number {
    return this.rows[this.at(to) + C_REJECTED] - this.rows[this.at(from) + C_REJECTED];
  }

  /**
   * The first row of a window that starts at sampler time `fromT`: the row before the first one at or
   * after `fromT` (that row is the baseline of the window's first interval); 0 when none is older.
   */
  windowStart(fromT: number): number {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.t(mid) >= fromT) hi = mid;
      else lo = mid + 1;
    }
    return Math.max(0, lo - 1);
  }

  private at(i: number): number {
    if (!(i >= 0 && i < this.n)) throw new RangeError(`history row ${i} of ${this.n}`);
    return ((this.head + i) % this.cap) * COLS;
  }

  private grow(): void {
    const cap = this.cap < this.expectedRows ? Math.max(this.expectedRows, this.cap + 1) : this.cap * 2;
    const rows = new Float64Array(cap * COLS);
    for (let i = 0; i < this.n; i++) rows.set(this.rows.subarray(this.at(i), this.at(i) + COLS), i * COLS);
    this.rows = rows;
    this.cap = cap;
    this.head = 0;
  }
}
