import fc from 'fast-check';
import { FlowClassifier, IntervalResult } from '../../../src/diagnosis/classify';
import { FlowHistory } from '../../../src/diagnosis/history';
import { median, summarizeFlow } from '../../../src/diagnosis/summarize';
import { REASONS, zeroReasons } from '../../../src/diagnosis/types';
import type { FlowSample } from '../../../src/diagnosis/types';
import { KEY, MBIT, SIG, synthSamples } from './synth';

const totals = (x = 0) => ({ total: { ...zeroReasons(), idle: x }, totalExact: zeroReasons(), pacingRejected: 0 });

describe('FlowHistory', () => {
  it('keeps the rows of the last keepMs in order through wrap-arounds and growth', () => {
    const h = new FlowHistory(1000, 70);
    for (let t = 0; t <= 5000; t += 100) h.push({ t, cwnd: t / 100 }, totals(t));
    for (let t = 5100; t <= 20000; t += 10) h.push({ t, cwnd: t / 100 }, totals(t)); // 101 rows: grows
    expect(h.length).toBe(101);
    for (let i = 0; i < h.length; i++) expect(h.t(i)).toBe(19000 + 10 * i);
    for (let t = 20100; t <= 25000; t += 100) h.push({ t, cwnd: t / 100 }, totals(t)); // back to 11 rows, wrapping
    // 24000..25000: rows older than 1000 ms before the newest are gone
    expect(h.length).toBe(11);
    expect(h.t(0)).toBe(24000);
    expect(h.t(10)).toBe(25000);
    for (let i = 0; i < h.length; i++) expect(h.value(i, 'cwnd')).toBe(240 + i);
    expect(h.last).toEqual({ t: 25000, cwnd: 250 });
    expect(() => h.t(11)).toThrow(RangeError);
  });

  it('a field the sample lacks reads back as undefined, zero as zero', () => {
    const h = new FlowHistory(Infinity);
    h.push({ t: 1, rtt: 0 }, totals());
    expect(h.value(0, 'rtt')).toBe(0);
    expect(h.value(0, 'cwnd')).toBeUndefined();
    expect(h.sample(0)).toStrictEqual({ t: 1, rtt: 0 });
  });

  it('windowStart(): the row before the first one at or after the time, 0 when none is older', () => {
    const h = new FlowHistory(Infinity);
    for (const t of [10, 20, 30, 40]) h.push({ t }, totals());
    const naive = (fromT: number) => {
      let i = [10, 20, 30, 40].findIndex((t) => t >= fromT);
      if (i < 0) i = 4;
      return Math.max(0, i - 1);
    };
    for (const fromT of [0, 10, 15, 20, 39, 40, 41, 100]) expect(h.windowStart(fromT)).toBe(naive(fromT));
  });

  it('a window summary equals the same window summed from its intervals and samples', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 60 }), fc.double({ min: 0.05, max: 1, noNaN: true }), fc.double({ min: 0, max: 0.5, noNaN: true }), (from, busy, rwnd) => {
        const samples: FlowSample[] = synthSamples(SIG.rwnd, { seconds: 4, busy, rwnd: Math.min(rwnd, busy), goodputBps: 200 * MBIT, vary: (i) => (i % 7 === 0 ? { notsentBytes: 0, rtt: undefined } : {}) });
        const cls = new FlowClassifier();
        const h = new FlowHistory(Infinity);
        const intervals: Array<IntervalResult | undefined> = [];
        for (const s of samples) {
          intervals.push(cls.add(s));
          h.push(s, cls);
        }
        const sum = zeroReasons();
        for (const iv of intervals.slice(from + 1)) if (iv) for (const r of REASONS) sum[r] += iv.reasons[r];
        const got = summarizeFlow(KEY, h, from)!;
        for (const r of REASONS) expect(got.reasons[r]).toBeCloseTo(sum[r], 9);
        const window = samples.slice(from);
        expect(got.samples).toBe(window.length);
        expect(got.first.bytesAcked).toBe(window[0].bytesAcked);
        expect(got.last).toBe(samples[samples.length - 1]);
        expect(got.medianRttUs).toBe(median(window.map((s) => s.rtt).filter((x): x is number => x !== undefined)));
        expect(got.notsentShare).toBeCloseTo(window.filter((s) => (s.notsentBytes ?? 0) >= (s.sndMss ?? 1448)).length / window.length, 12);
      }),
      { numRuns: 50 },
    );
  });
});
