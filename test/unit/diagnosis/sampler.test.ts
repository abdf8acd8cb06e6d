// The sampler with fake sources and a fake clock: which flows it samples, what it does with closed and
// reused sockets, the windows it answers for, and its loop timing.

import { DEFAULT_SAMPLER_OPTIONS, Ring, Sampler, SamplerOptions, flowId, joinEvidence, parseFlowId } from '../../../src/diagnosis/sampler';
import { totalSeconds } from '../../../src/diagnosis/classify';
import { REASONS } from '../../../src/diagnosis/types';
import { nullLogger } from '../../../src/core/log';
import { SIG } from './synth';
import { FakeClock, FakeFlows, FakeNode, key, tickN } from './fakes';

function setup(o: Partial<SamplerOptions> = {}) {
  const clock = new FakeClock();
  const flows = new FakeFlows();
  const node = new FakeNode();
  const s = new Sampler({ ...DEFAULT_SAMPLER_OPTIONS, discoverIntervalMs: 1000, ...o }, flows, node, nullLogger, clock);
  return { clock, flows, node, s };
}

describe('flow ids', () => {
  it('round-trip, IPv6 in brackets', () => {
    const k = { localIp: '::1', localPort: 1, peerIp: 'fe80::2', peerPort: 80 };
    expect(flowId(k)).toBe('[::1]:1-[fe80::2]:80');
    expect(parseFlowId(flowId(k))).toEqual(k);
    expect(parseFlowId('1.1.1.3:40000-1.1.1.2:5201')).toEqual({ localIp: '1.1.1.3', localPort: 40000, peerIp: '1.1.1.2', peerPort: 5201 });
    expect(parseFlowId('dport = 5201')).toBeUndefined();
    expect(parseFlowId('1.1.1.3:70000-1.1.1.2:5201')).toBeUndefined();
  });
});

describe('which flows are sampled', () => {
  it('watched flows plus the top N by throughput, at most max-flows', async () => {
    const { s, flows, clock } = setup({ top: 2, maxFlows: 3 });
    flows.flows.set(1, { bytes: 0, watched: true, cookie: '1', sig: SIG.bneck, rate: 1e6 });
    for (const [p, b] of [[2, 5e6], [3, 9e6], [4, 1e6]] as const) flows.flows.set(p, { bytes: b, watched: false, cookie: '1', sig: SIG.bneck, rate: 1e6 });
    await s.discover();
    // First discovery ranks new flows by their bytes so far: 3 and 2 are the top two.
    expect(s.flows().map((f) => f.key.localPort).sort()).toEqual([1, 2, 3]);
    expect([...s.find(key(1))!.reasons]).toEqual(['watch']);
    // Flow 4 becomes the busiest; max-flows (3) keeps it out until a slot frees.
    flows.flows.get(4)!.bytes += 50e6;
    clock.t += 1000;
    await s.discover();
    expect(s.find(key(4))).toBeUndefined();
    // After the hold time the old top flows leave, and 4 gets in.
    clock.t += DEFAULT_SAMPLER_OPTIONS.topHoldMs + 1000;
    flows.flows.get(4)!.bytes += 50e6;
    await s.discover();
    flows.flows.get(4)!.bytes += 50e6;
    await s.discover();
    expect(s.find(key(4))).toBeDefined();
  });

  it('keeps its top N among flows of about the same rate (hysteresis), and lets a clearly busier flow in', async () => {
    const { s, flows, clock } = setup({ top: 2, maxFlows: 16 });
    const rates = [100, 98, 96, 94, 92, 90];
    rates.forEach((r, i) => flows.flows.set(10 + i, { bytes: 0, watched: false, cookie: '1', sig: SIG.bneck, rate: 1e6 }));
    const step = async (perFlow: number[]) => {
      perFlow.forEach((b, i) => (flows.flows.get(10 + i)!.bytes += b * 1e6));
      clock.t += 1000;
      await s.discover();
      return s.flows().map((f) => f.key.localPort).sort();
    };
    await step(rates);
    const first = await step(rates);
    expect(first).toEqual([10, 11]);
    // Ranks 2 and 3 swap back and forth: the sampled set does not move.
    for (let i = 0; i < 6; i++) expect(await step(i % 2 ? rates : [100, 94, 96, 98, 92, 90])).toEqual(first);
    // Flow 15 moves 3x the 2nd busiest: flow 11 (less than half of it) gives up its place at once;
    // it stays sampled for the hold time, then leaves.
    const busier = [100, 40, 96, 94, 92, 300];
    expect(await step(busier)).toEqual([10, 11, 15]);
    clock.t += DEFAULT_SAMPLER_OPTIONS.topHoldMs;
    expect(await step(busier)).toEqual([10, 15]);
  });

  it('a closed socket stops being sampled and is forgotten after the grace period', async () => {
    const { s, flows, clock } = setup({ top: 0, goneGraceMs: 5000 });
    flows.flows.set(7, { bytes: 0, watched: true, cookie: '9', sig: SIG.bneck, rate: 1e7 });
    await s.discover();
    await s.tick();
    clock.t += 50;
    await s.tick();
    flows.flows.delete(7);
    clock.t += 50;
    await s.tick();
    expect(s.find(key(7))?.goneAt).toBe(100);
    const before = flows.lookups;
    await s.tick();
    expect(flows.lookups).toBe(before); // not looked up any more
    clock.t += 6000;
    await s.discover();
    expect(s.find(key(7))).toBeUndefined();
  });

  it('the same 4-tuple with a new cookie is a new flow (counters restart)', async () => {
    const { s, flows, clock } = setup({ top: 0 });
    flows.flows.set(7, { bytes: 0, watched: true, cookie: '1', sig: SIG.bneck, rate: 1e7 });
    await s.discover();
    await tickN(s, clock, 5);
    expect(totalSeconds(s.find(key(7))!.classifier.total)).toBeCloseTo(0.2);
    flows.flows.set(7, { bytes: 0, watched: true, cookie: '2', sig: SIG.bneck, rate: 1e7 });
    await s.discover(); // sees cookie 2 on the tuple: the old one is gone
    await s.tick();
    await s.discover(); // and now the new socket replaces it
    const f = s.find(key(7))!;
    expect(f.key.cookie).toBe('2');
    expect(totalSeconds(f.classifier.total)).toBe(0);
  });

  it('a pin samples a flow discovery would not pick, for the given time', async () => {
    const { s, flows, clock } = setup({ top: 0 });
    flows.flows.set(9, { bytes: 0, watched: false, cookie: '3', sig: SIG.pace_cubic, rate: 1e6 });
    expect(s.pin(key(9, '3'), 10)).toBe(true);
    await s.tick();
    expect(s.find(key(9))?.history.length).toBe(1);
    clock.t += 11000;
    await s.discover();
    expect(s.find(key(9))).toBeUndefined();
  });
});

describe('sampling and answers', () => {
  it('every interval is classified and the reasons sum to wall time', async () => {
    const { s, flows, clock } = setup({ top: 0 });
    flows.flows.set(5, { bytes: 0, watched: true, cookie: '1', sig: SIG.bneck, rate: 25e6 });
    await s.discover();
    await s.snapshotNode();
    await tickN(s, clock, 41);
    await s.snapshotNode();
    const f = s.find(key(5))!;
    expect(totalSeconds(f.classifier.total)).toBeCloseTo(2.0, 6);
    expect(f.classifier.total.idle).toBeCloseTo(0.2, 1); // busy 90%
    expect(f.classifier.total.cwnd).toBeCloseTo(1.8, 1);
    const ev = s.evidence(key(5), 1);
    expect(ev.flow?.seconds).toBeCloseTo(1.0, 1);
    expect(ev.flow?.role).toBe('sender');
    expect(ev.flow?.goodputBps).toBeCloseTo(25e6, -4);
    expect(ev.nodeSummary?.devices[0].txDropped).toBe(0);
    expect(ev.nodeSummary?.devices[0].txBps).toBeGreaterThan(0);
    expect(ev.nodeSummary?.path).toEqual({ ipDevice: 'eth0', nicDevice: 'eth0' });
    const v = s.diagnose(key(5), 2);
    expect(v.top?.hop).toBe('link');
    for (const r of REASONS) expect(f.classifier.total[r]).toBeGreaterThanOrEqual(0);
  });

  it('joins a peer: the side that sent the bytes is the sender', () => {
    const sender = { node: 'a', flow: { role: 'sender' } } as never;
    const receiver = { node: 'b', flow: { role: 'receiver' } } as never;
    expect(joinEvidence(sender, receiver)).toEqual({ sender, receiver });
    expect(joinEvidence(receiver, sender)).toEqual({ sender, receiver });
    expect(joinEvidence({ node: 'b' }, sender)).toEqual({ sender, receiver: { node: 'b' } });
  });

  it('a lookup that answers within its call is kept before tick() returns, with no promise', async () => {
    const { s, flows, clock } = setup({ top: 0 });
    flows.flows.set(5, { bytes: 0, watched: true, cookie: '1', sig: SIG.bneck, rate: 25e6 });
    await s.discover();
    const asynchronous = flows.lookup;
    let calls = 0;
    flows.lookup = (keys, t) => {
      calls++;
      return [flows.sample(keys[0], t)];
    };
    for (let i = 0; i < 3; i++) {
      clock.t += 50;
      expect(s.tick()).toBeUndefined();
      expect(s.find(key(5))!.history.length).toBe(i + 1);
    }
    expect(calls).toBe(3);
    expect(s.stats).toMatchObject({ ticks: 3, lookups: 3 });
    // A source that answers later still works, and a lookup that throws in its call is counted.
    flows.lookup = asynchronous;
    clock.t += 50;
    const later = s.tick();
    expect(later).toBeInstanceOf(Promise);
    await later;
    expect(s.find(key(5))!.history.length).toBe(4);
    flows.lookup = () => {
      throw new Error('EBADF');
    };
    expect(s.tick()).toBeUndefined();
    expect(s.stats.errors.lookup).toBe(1);
    expect(s.lastError.lookup).toBe('EBADF');
    expect(s.stats.ticks).toBe(5);
  });

  it('a lookup failure is counted, not thrown', async () => {
    const { s, flows } = setup({ top: 0 });
    flows.flows.set(5, { bytes: 0, watched: true, cookie: '1', sig: SIG.bneck, rate: 1 });
    await s.discover();
    flows.lookup = async () => {
      throw new Error('netlink timeout');
    };
    await s.tick();
    expect(s.stats.errors.lookup).toBe(1);
    expect(s.lastError.lookup).toBe('netlink timeout');
  });
});

describe('loops', () => {
  it('ticks at the sample rate, discovers and snapshots at their intervals, stops cleanly', async () => {
    const { s, flows, node, clock } = setup({ top: 0, rateHz: 20, discoverIntervalMs: 1000, nodeIntervalMs: 500 });
    flows.flows.set(5, { bytes: 0, watched: true, cookie: '1', sig: SIG.bneck, rate: 1 });
    s.start();
    await clock.advance(2000);
    await s.stop();
    expect(s.stats.ticks).toBeGreaterThanOrEqual(40);
    expect(s.stats.ticks).toBeLessThanOrEqual(41);
    expect(s.stats.discoveries).toBe(3); // t = 0, 1000, 2000
    expect(node.snaps).toBe(5);
    expect(s.stats.overruns).toBe(0);
    const ticks = s.stats.ticks;
    await clock.advance(1000);
    expect(s.stats.ticks).toBe(ticks);
  });

  it('a timer that fires up to a millisecond early runs its round, without a second wake-up for the rest', async () => {
    const { s, flows, clock } = setup({ top: 0, rateHz: 20, discoverIntervalMs: 1000, nodeIntervalMs: 1000 });
    flows.flows.set(5, { bytes: 0, watched: true, cookie: '1', sig: SIG.bneck, rate: 1 });
    clock.early = 0.7;
    s.start();
    await clock.advance(2000);
    await s.stop();
    expect(s.stats.ticks).toBeGreaterThanOrEqual(40);
    expect(s.stats.ticks).toBeLessThanOrEqual(41);
    expect(s.stats.overruns).toBe(0);
    // one timer per round (node and discovery rounds share the sampling round's wake-up; a few more when
    // the flow is found), not a second one per round for the early millisecond
    expect(clock.timersSet).toBeLessThanOrEqual(s.stats.ticks + 5);
  });

  it('with no flow to sample only discovery runs; a flow that appears wakes the sampling and node loops', async () => {
    const { s, flows, node, clock } = setup({ top: 3, rateHz: 20, discoverIntervalMs: 1000, nodeIntervalMs: 500 });
    s.start();
    await clock.advance(3000);
    expect(s.stats.discoveries).toBe(4);
    expect(s.stats.ticks).toBe(0); // parked: no wake-up at 20 Hz on an idle node
    expect(node.snaps).toBe(0);
    flows.flows.set(7, { bytes: 0, watched: true, cookie: '1', sig: SIG.bneck, rate: 1 });
    await clock.advance(2000); // found by the discovery at t = 4000
    await s.stop();
    expect(s.stats.ticks).toBeGreaterThanOrEqual(19);
    expect(s.stats.ticks).toBeLessThanOrEqual(21);
    expect(node.snaps).toBeGreaterThanOrEqual(2);
  });

  it('skips a discovery dump while no connection opened since a dump that had nothing to rank', async () => {
    const { s, flows } = setup({ top: 3 });
    let opens = 10;
    flows.openedConnections = () => opens;
    await s.discover();
    await s.discover();
    expect(s.stats.discoveries).toBe(1); // idle node: nothing found, nothing opened since
    expect(s.stats.discoveriesSkipped).toBe(1);
    flows.flows.set(8, { bytes: 1000, watched: false, cookie: '1', sig: SIG.bneck, rate: 1 });
    opens++;
    await s.discover();
    expect(s.flows().map((f) => f.key.localPort)).toEqual([8]); // found as a top flow
    await s.discover();
    expect(s.stats.discoveries).toBe(3); // a candidate to rank: every discovery dumps
    // only watched flows and top = 0: nothing to rank, the watched set cannot change without a new connection
    const w = setup({ top: 0 });
    w.flows.openedConnections = () => opens;
    w.flows.flows.set(9, { bytes: 1000, watched: true, cookie: '1', sig: SIG.bneck, rate: 1 });
    await w.s.discover();
    await w.s.discover();
    expect(w.s.stats.discoveries).toBe(1);
    expect(w.s.flows().map((f) => f.key.localPort)).toEqual([9]);
    // without the count every discovery dumps
    const n = setup({ top: 0 });
    await n.s.discover();
    await n.s.discover();
    expect(n.s.stats.discoveries).toBe(2);
  });

  it('a round that takes longer than the interval counts overruns instead of piling up', async () => {
    const { s, flows, clock } = setup({ top: 0, rateHz: 20 });
    flows.flows.set(5, { bytes: 0, watched: true, cookie: '1', sig: SIG.bneck, rate: 1 });
    await s.discover();
    const orig = flows.lookup;
    flows.lookup = async (k, t, w) => {
      clock.t += 120; // the kernel took 120 ms to answer
      return orig(k, t, w);
    };
    s.start();
    await clock.advance(1000);
    await s.stop();
    expect(s.stats.overruns).toBeGreaterThan(0);
    expect(s.stats.ticks).toBeLessThan(15);
  });
});

describe('Ring', () => {
  it('keeps what `keep` accepts relative to the newest entry, across compactions', () => {
    const r = new Ring<number>((x, newest) => newest - x <= 100);
    for (let i = 0; i <= 1000; i++) {
      r.push(i);
      const all = r.all();
      expect(all[0]).toBe(Math.max(0, i - 100));
      expect(all[all.length - 1]).toBe(i);
      expect(r.length).toBe(all.length);
      expect(r.last).toBe(i);
    }
    expect(r.all()).toEqual(Array.from({ length: 101 }, (_, k) => 900 + k));
  });
});

describe('Ring (a flow\'s time-bounded history)', () => {
  it('keeps the newest entries in order and releases every dropped one at once (not only at compaction)', () => {
    const r = new Ring<{ t: number }>((x, newest) => newest.t - x.t <= 100);
    for (let t = 0; t <= 1000; t++) {
      r.push({ t });
      // the history: exactly the entries of the last 100 time units
      if (t % 97 === 0) expect(r.all().map((e) => e.t)).toEqual(Array.from({ length: Math.min(t, 100) + 1 }, (_, i) => t - Math.min(t, 100) + i));
      // no slot before the start still refers to a dropped entry (a heap that rises until the next compaction)
      const inside = r as unknown as { items: unknown[]; head: number };
      expect(inside.items.slice(0, inside.head).filter((x) => x !== undefined)).toEqual([]);
    }
    expect(r.length).toBe(101);
    expect(r.last).toEqual({ t: 1000 });
  });
});
