import {
  FlowClassifier,
  classifyInterval,
  inFlight,
  sampledState,
  totalSeconds,
  tsqLimit,
} from '../../../src/diagnosis/classify';
import { REASONS } from '../../../src/diagnosis/types';
import type { FlowSample } from '../../../src/diagnosis/types';
import { MBIT, SIG, skmem, synthSamples } from './synth';

const at = (t: number, p: Partial<FlowSample>): FlowSample => ({ t, sndMss: 1448, ...p });

describe('sampledState on the lab signatures (lab/README.md, "What the lab shows")', () => {
  const cases: Array<[string, string]> = [
    ['base', 'cwnd'], // unacked 1007 / cwnd 1015
    // OVS, BBR at 1.1 Gbit/s: 44 segments of room, less than one 64 KiB TSO skb (45): the cwnd holds it
    ['base_bbr', 'cwnd'],
    ['base_bbr_veth', 'pacing'], // BBR with room in cwnd: pacing at its estimate
    ['pace_cubic', 'pacing_capped'], // 100M/100M
    ['pace_bbr', 'pacing_capped'],
    ['app', 'app'], // notsent 0, w ≪ tb
    ['rwnd', 'rwnd'], // snd_wnd 4096
    ['sndbuf', 'sndbuf'], // notsent 0, w 21104 ≥ tb 8192, app_limited set (!)
    ['bneck', 'cwnd'], // 78/78
    ['bneck_bbr', 'cwnd'], // in_flight 178-69-2+2 = 109 > cwnd 98
    ['loss', 'cwnd'], // 10/10
    ['local_tbf', 'tsq'], // a tbf on the sender's own device: skmem t at the small-queue limit
    // test guest, fq + --fq-rate 50M: t at the small-queue limit because fq holds the paced skbs
    ['guest_fq_pace', 'pacing_capped'],
  ];
  it.each(cases)('%s -> %s', (name, want) => {
    expect(sampledState(at(0, SIG[name]))).toBe(want);
  });

  it('cwnd counts as full when the room is less than one TSO skb (bneck on veth, measured)', () => {
    // ss: cwnd 90 unacked 70, pacing 280 Mbit/s -> a TSO skb is ~23 segments; 20 free segments wait.
    expect(sampledState(at(0, { ...SIG.bneck, cwnd: 90, unacked: 70, pacingRate: 280e6 / 8 }))).toBe('cwnd');
    // the same flow with half its cwnd free sends
    expect(sampledState(at(0, { ...SIG.bneck, cwnd: 90, unacked: 40, pacingRate: 280e6 / 8 }))).toBe('unclassified');
  });

  it('computes in_flight as tcp_packets_in_flight()', () => {
    expect(inFlight(at(0, { unacked: 178, sacked: 69, lost: 2, retrans: 2 }))).toBe(109);
  });

  it('a CUBIC flow with room everywhere and nothing below TCP is unclassified (nothing paces it)', () => {
    expect(sampledState(at(0, { ...SIG.local_tbf, skmem: skmem({ wmemAlloc: 0 }) }))).toBe('unclassified');
  });

  it('at the small-queue limit with pacing_rate at max_pacing_rate the cap holds the flow (fq keeps the paced skbs)', () => {
    // Measured in the test guest: fq on the uplink, SO_MAX_PACING_RATE 50 Mbit/s, skmem t 132880.
    expect(sampledState(at(0, SIG.guest_fq_pace), { fqOnEgress: true })).toBe('pacing_capped');
    // mq with fq children is not seen as fq on the egress: the cap decides alone
    expect(sampledState(at(0, SIG.guest_fq_pace))).toBe('pacing_capped');
    // the same socket without a cap (cubic on fq at its own rate) stays tsq
    expect(sampledState(at(0, { ...SIG.guest_fq_pace, maxPacingRate: undefined }), { fqOnEgress: true })).toBe('tsq');
  });

  it('fq on the egress makes pacing apply to CUBIC too', () => {
    expect(sampledState(at(0, { ...SIG.local_tbf, skmem: skmem({ wmemAlloc: 0 }) }), { fqOnEgress: true })).toBe('pacing');
  });

  it('a full sndbuf with unsent data is not sndbuf-limited (the kernel does not count it either)', () => {
    expect(sampledState(at(0, { ...SIG.bneck, skmem: skmem({ wmemQueued: 9e6, sndbuf: 4e6 }) }))).toBe('cwnd');
  });

  it('TSQ limit: 2 skbs of ~1 ms at the pacing rate, capped by tcp_limit_output_bytes when unpaced', () => {
    const s = at(0, { cc: 'cubic', pacingRate: 30e6 });
    expect(tsqLimit(s)).toBeCloseTo(2 * (30e6 / 1024 + 1024), 0);
    expect(tsqLimit(s, { tcpLimitOutputBytes: 10000 })).toBe(10000);
    // Paced (bbr): no cap, and a very fast flow is limited by ~1 ms of data.
    expect(tsqLimit(at(0, { cc: 'bbr', pacingRate: 1e9 }), { tcpLimitOutputBytes: 10000 })).toBeCloseTo(1e9 / 1024, 0);
  });
});

describe('classifyInterval', () => {
  it('takes idle, rwnd and sndbuf from the chronographs and the rest from the closing sample', () => {
    const a = at(0, { ...SIG.rwnd, busyTime: 0, rwndLimited: 0, sndbufLimited: 0 });
    const b = at(100, { ...SIG.bneck, busyTime: 80_000, rwndLimited: 20_000, sndbufLimited: 8_000 });
    const r = classifyInterval(a, b);
    expect(r.seconds).toBeCloseTo(0.1);
    expect(r.reasons.idle).toBeCloseTo(0.02);
    expect(r.reasons.rwnd).toBeCloseTo(0.02);
    expect(r.reasons.sndbuf).toBeCloseTo(0.008);
    expect(r.reasons.cwnd).toBeCloseTo(0.052); // busy − rwnd − sndbuf, state of b
    expect(r.exact.idle + r.exact.rwnd + r.exact.sndbuf).toBeCloseTo(0.048);
    expect(r.exact.cwnd).toBe(0);
    expect(totalSeconds(r.reasons)).toBeCloseTo(0.1);
  });

  it('carries a chrono step larger than the interval into the next one', () => {
    const a = at(0, { ...SIG.bneck, busyTime: 0 });
    const b = at(50, { ...SIG.bneck, busyTime: 52_000 }); // jiffy step: 52 ms in a 50 ms interval
    const c = at(100, { ...SIG.bneck, busyTime: 96_000 });
    const r1 = classifyInterval(a, b);
    expect(r1.reasons.idle).toBe(0);
    expect(r1.carry.busy).toBeCloseTo(0.002);
    const r2 = classifyInterval(b, c, r1.carry);
    expect(r2.reasons.idle).toBeCloseTo(0.004); // 100 ms wall − 96 ms busy in total
    expect(totalSeconds(r1.reasons) + totalSeconds(r2.reasons)).toBeCloseTo(0.1);
  });

  it('without chronographs (kernel < 4.10) the whole interval is sampled, idle when nothing is queued', () => {
    const a = at(0, { ...SIG.app });
    const b = at(50, { ...SIG.app, unacked: 0, notsentBytes: 0, wqueue: 0 });
    const r = classifyInterval(a, b);
    expect(r.chrono).toBe(false);
    expect(r.reasons.idle).toBeCloseTo(0.05);
  });
});

describe('FlowClassifier', () => {
  it('the reasons sum to wall time and the exact parts equal the kernel totals', () => {
    const entries = synthSamples(SIG.rwnd, { seconds: 4, busy: 0.9, rwnd: 0.6, sndbuf: 0.05 });
    const cls = new FlowClassifier();
    for (const e of entries) cls.add(e);
    const first = entries[0];
    const last = entries[entries.length - 1];
    const wall = (last.t - first.t) / 1000;
    expect(totalSeconds(cls.total)).toBeCloseTo(wall, 6);
    expect(cls.totalExact.rwnd).toBeCloseTo((last.rwndLimited! - first.rwndLimited!) / 1e6, 6);
    expect(cls.totalExact.sndbuf).toBeCloseTo((last.sndbufLimited! - first.sndbufLimited!) / 1e6, 6);
    expect(cls.total.idle).toBeCloseTo(wall - (last.busyTime! - first.busyTime!) / 1e6, 6);
    for (const r of REASONS) expect(cls.total[r]).toBeGreaterThanOrEqual(0);
  });

  it('restarts when the chronographs go backwards (another socket on the same 4-tuple)', () => {
    const cls = new FlowClassifier();
    cls.add(at(0, { ...SIG.bneck, busyTime: 5_000_000 }));
    cls.add(at(50, { ...SIG.bneck, busyTime: 5_048_000 }));
    expect(cls.add(at(100, { ...SIG.bneck, busyTime: 1_000 }))).toBeUndefined();
    const r = cls.add(at(150, { ...SIG.bneck, busyTime: 49_000 }));
    expect(r?.reasons.cwnd).toBeCloseTo(0.048);
  });

  it('test guest, fq + SO_MAX_PACING_RATE: at the cap the TSQ-held time is the cap\'s; far below it, it stays tsq', () => {
    const run = (goodputBps: number) => {
      const cls = new FlowClassifier(() => ({ fqOnEgress: true }));
      for (const e of synthSamples(SIG.guest_fq_pace, { goodputBps })) cls.add(e);
      return { cls, wall: totalSeconds(cls.total) };
    };
    // measured: 49.1 Mbit/s against the 50 Mbit/s cap
    const capped = run(49.1 * MBIT);
    expect(capped.cls.total.pacing_capped / capped.wall).toBeGreaterThan(0.95);
    expect(capped.cls.total.tsq).toBe(0);
    // 10 Mbit/s against a 50 Mbit/s cap with t at the limit: something below TCP is slower than the cap
    const slow = run(10 * MBIT);
    expect(slow.cls.total.tsq / slow.wall).toBeGreaterThan(0.7);
    expect(slow.cls.total.pacing_capped / slow.wall).toBeLessThan(0.3);
    expect(slow.cls.total.unclassified).toBe(0);
    expect(slow.cls.pacingRejected).toBe(0);
  });

  it('app-limited lab case: busy grows ~250 ms/s, the rest is idle', () => {
    const entries = synthSamples(SIG.app, { busy: 0.25, goodputBps: 100 * MBIT });
    const cls = new FlowClassifier();
    for (const e of entries) cls.add(e);
    expect(cls.total.idle / totalSeconds(cls.total)).toBeCloseTo(0.75, 1);
    expect(cls.total.app / totalSeconds(cls.total)).toBeCloseTo(0.25, 1);
  });
});
