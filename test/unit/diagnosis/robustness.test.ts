// Hostile /api/diagnosis parameters change nothing, pins are bounded, and no rejected promise in the
// sampler's loops is ever unhandled: each is counted (flowpath_diagnosis_errors_total{stage}) and logged.

import request from 'supertest';
import express from 'express';
import { MAX_PIN_SECONDS, mountDiagnosisApi } from '../../../src/diagnosis/api';
import { DEFAULT_SAMPLER_OPTIONS, Sampler, SamplerOptions, parseFlowId } from '../../../src/diagnosis/sampler';
import { DiagnosisCollector, FlowIdentities } from '../../../src/collectors/diagnosis';
import { Emitter } from '../../../src/core/metrics';
import { createLogger, nullLogger } from '../../../src/core/log';
import { FakeClock, FakeFlows, FakeNode, fakeListeners, tickN } from './fakes';
import { SIG } from './synth';

async function sampled(opts: Partial<SamplerOptions> = {}) {
  const clock = new FakeClock();
  const flows = new FakeFlows();
  const s = new Sampler({ ...DEFAULT_SAMPLER_OPTIONS, top: 1, discoverIntervalMs: 1000, ...opts }, flows, new FakeNode(), nullLogger, clock);
  flows.flows.set(40000, { bytes: 5e6, watched: false, cookie: '11', sig: SIG.pace_cubic, rate: 12.5e6 });
  await s.discover();
  await s.snapshotNode();
  await tickN(s, clock, 40);
  const app = express();
  mountDiagnosisApi(app, { sampler: () => s, node: 'node-a' });
  return { s, app, clock, flows };
}

/** What the sampler samples and why: must not change on a rejected request. */
const stateOf = (s: Sampler) => s.flows().map((f) => `${f.id} ${[...f.reasons].join(',')} ${f.pinnedUntil}`);

describe('GET /api/diagnosis with hostile parameters', () => {
  it('flow=foo:1-bar:2&pin=1e9 → 400 and nothing changes; the sampler keeps sampling', async () => {
    const { s, app, clock } = await sampled();
    const before = stateOf(s);
    const r = await request(app).get('/api/diagnosis?flow=foo:1-bar:2&pin=1e9');
    expect(r.status).toBe(400);
    expect(stateOf(s)).toEqual(before);
    const r2 = await request(app).get('/api/diagnosis?flow=foo:1-bar:2');
    expect(r2.status).toBe(400);
    expect(stateOf(s)).toEqual(before);
    const lookups = s.stats.lookups;
    await tickN(s, clock, 20);
    expect(s.stats.lookups).toBe(lookups + 20);
    expect(s.stats.errors.lookup).toBe(0);
  });

  it.each([
    ['flow', '999.1.1.1:1-10.0.0.2:5201'],
    ['flow', '10.0.0.1:70000-10.0.0.2:5201'],
    ['flow', '[zz::1]:1-[::1]:2'],
    ['window', '999999h'],
    ['window', '121s'], // longer than --diagnosis.history (120 s)
    ['window', '0'],
    ['window', '-5'],
    ['window', 'soon'],
    ['pin', '1e9'],
    ['pin', String(MAX_PIN_SECONDS + 1)],
    ['pin', '-1'],
    ['pin', 'Infinity'],
    ['pin', 'NaN'],
    ['pin', '5m'],
  ])('%s=%s → 400, nothing changes', async (param, value) => {
    const { s, app } = await sampled();
    const before = stateOf(s);
    const q: Record<string, string> = { flow: '10.0.0.1:40001-10.0.0.2:5201', [param]: value };
    const r = await request(app).get('/api/diagnosis').query(q);
    expect([r.status, r.body.error === undefined]).toEqual([400, false]);
    expect(stateOf(s)).toEqual(before);
  });

  it('pins are bounded in number (half of --diagnosis.max-flows) and duration', async () => {
    const { s, app, clock } = await sampled({ maxFlows: 4 });
    const id = (p: number) => `10.0.0.1:${p}-10.0.0.2:5201`;
    await request(app).get('/api/diagnosis').query({ flow: id(50001), pin: String(MAX_PIN_SECONDS) }).expect(200);
    await request(app).get('/api/diagnosis').query({ flow: id(50002) }).expect(200);
    const before = stateOf(s);
    const r = await request(app).get('/api/diagnosis').query({ flow: id(50003) });
    expect(r.status).toBe(429);
    expect(r.body.error).toMatch(/2 flows are pinned already \(at most 2\)/);
    expect(stateOf(s)).toEqual(before);
    // re-pinning a pinned flow is fine; the pin ends after its duration
    await request(app).get('/api/diagnosis').query({ flow: id(50002), pin: '10' }).expect(200);
    const pinned = s.find(parseFlowId(id(50001))!)!;
    expect(pinned.pinnedUntil - clock.now()).toBeLessThanOrEqual(MAX_PIN_SECONDS * 1000);
  });

  it('a pinned socket that does not exist stops nothing: the other flows are still sampled', async () => {
    const { s, app, clock } = await sampled();
    const busy = s.flows()[0];
    const hist = busy.history.length;
    await request(app).get('/api/diagnosis').query({ flow: '10.9.9.9:1-10.9.9.8:2', pin: '600' }).expect(200);
    await tickN(s, clock, 10);
    expect(busy.history.length).toBe(hist + 10);
    expect(s.find(parseFlowId('10.9.9.9:1-10.9.9.8:2')!)!.goneAt).toBeDefined();
    expect(s.stats.errors.lookup).toBe(0);
  });
});

describe('parseFlowId', () => {
  it.each(['foo:1-bar:2', '1.2.3:1-1.2.3.4:2', '::1:1-::1:2', '[1.2.3.4]:1-[::1]:2', '10.0.0.1:1-10.0.0.2:99999'])('rejects %s', (id) =>
    expect(parseFlowId(id)).toBeUndefined(),
  );
  it.each([
    ['10.0.0.1:1-10.0.0.2:2', { localIp: '10.0.0.1', localPort: 1, peerIp: '10.0.0.2', peerPort: 2 }],
    ['[fd00::1]:443-[fd00::2]:50000', { localIp: 'fd00::1', localPort: 443, peerIp: 'fd00::2', peerPort: 50000 }],
  ])('parses %s', (id, key) => expect(parseFlowId(id)).toEqual(key));
});

describe('sampler loops: a rejected round is counted and logged, never fatal', () => {
  let unhandled: unknown[];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  beforeEach(() => {
    unhandled = [];
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
  });

  it.each([
    ['tick', 'tick'],
    ['discover', 'discover'],
    ['snapshotNode', 'node'],
  ] as const)('%s rejecting → flowpath_diagnosis_errors_total{stage="%s"}, the loop goes on', async (method, stage) => {
    const clock = new FakeClock();
    const flows = new FakeFlows();
    const logs: string[] = [];
    const s = new Sampler({ ...DEFAULT_SAMPLER_OPTIONS, top: 0, rateHz: 20, discoverIntervalMs: 1000, nodeIntervalMs: 500 }, flows, new FakeNode(), createLogger('info', (l) => logs.push(l)), clock);
    let calls = 0;
    // A failure outside the stage's own error handling (e.g. a bug in classification): the round rejects.
    (s as unknown as Record<string, () => Promise<void>>)[method] = async () => {
      calls++;
      throw new Error(`${method} exploded`);
    };
    s.start();
    await clock.advance(3000);
    await s.stop();
    await new Promise((r) => setImmediate(r));
    expect(calls).toBeGreaterThan(2); // the loop was rescheduled after each failure
    expect(s.stats.errors[stage]).toBe(calls);
    expect(s.lastError[stage]).toBe(`${method} exploded`);
    expect(logs.filter((l) => l.includes(`${method} exploded`) && l.includes(`stage=${stage}`))).toHaveLength(calls);
    expect(unhandled).toEqual([]);
    const out = new Emitter();
    await new DiagnosisCollector(s, 10, 20, new FlowIdentities(fakeListeners(), '/nonexistent-procfs')).collect(out);
    expect(out.render()).toContain(`flowpath_diagnosis_errors_total{stage="${stage}"} ${calls}\n`);
  });

  it('a round that throws synchronously is handled the same way', async () => {
    const clock = new FakeClock();
    const s = new Sampler({ ...DEFAULT_SAMPLER_OPTIONS, top: 0, discoverIntervalMs: 0 }, new FakeFlows(), null, nullLogger, clock);
    (s as unknown as { tick: () => Promise<void> }).tick = () => {
      throw new Error('sync');
    };
    s.start();
    await clock.advance(200);
    await s.stop();
    expect(s.stats.errors.tick).toBeGreaterThan(1);
    expect(unhandled).toEqual([]);
  });
});
