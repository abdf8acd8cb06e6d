// GET /api/flows and GET /api/diagnosis over a sampler with fake sources (supertest on the real app).

import request from 'supertest';
import express from 'express';
import { mountDiagnosisApi, keyMatcher } from '../../../src/diagnosis/api';
import { DEFAULT_SAMPLER_OPTIONS, Sampler } from '../../../src/diagnosis/sampler';
import { nullLogger } from '../../../src/core/log';
import { FakeClock, FakeFlows, FakeNode, key, tickN } from './fakes';
import { SIG } from './synth';

async function sampled() {
  const clock = new FakeClock();
  const flows = new FakeFlows();
  const s = new Sampler({ ...DEFAULT_SAMPLER_OPTIONS, top: 1, discoverIntervalMs: 1000 }, flows, new FakeNode(), nullLogger, clock);
  flows.flows.set(40000, { bytes: 5e6, watched: false, cookie: '11', sig: SIG.pace_cubic, rate: 12.5e6 });
  flows.flows.set(40001, { bytes: 10, watched: false, cookie: '12', sig: SIG.app, rate: 1 });
  await s.discover();
  await s.snapshotNode();
  await tickN(s, clock, 60);
  await s.snapshotNode();
  const app = express();
  mountDiagnosisApi(app, { sampler: () => s, node: 'node-a' });
  return { s, app, clock };
}

describe('GET /api/flows', () => {
  it('lists discovered and sampled flows with their limited seconds', async () => {
    const { app } = await sampled();
    const r = await request(app).get('/api/flows').expect(200);
    expect(r.body.node).toBe('node-a');
    expect(r.body.sample_rate_hz).toBe(20);
    const top = r.body.flows.find((f: { local_port: number }) => f.local_port === 40000);
    expect(top).toMatchObject({ id: '10.0.0.1:40000-10.0.0.2:5201', cookie: '11', sampled: true, sampled_because: ['top'] });
    expect(top.limited_share.pacing_capped).toBeGreaterThan(0.8);
    const other = r.body.flows.find((f: { local_port: number }) => f.local_port === 40001);
    expect(other.sampled).toBe(false); // top 1 only
    expect(r.body.sampler.ticks).toBe(60);
  });
});

describe('GET /api/diagnosis', () => {
  it('without a flow: the verdict of every sampled flow', async () => {
    const { app } = await sampled();
    const r = await request(app).get('/api/diagnosis?window=2s').expect(200);
    expect(r.body.window_seconds).toBe(2);
    expect(r.body.flows).toHaveLength(1);
    expect(r.body.flows[0].top).toMatchObject({ hop: 'tcp-tx', limit: 'pacing_capped', rule: 'pacing-capped' });
    expect(r.body.flows[0].hops).toHaveLength(11);
  });

  it('by flow id: verdict and this node\'s evidence', async () => {
    const { app } = await sampled();
    const r = await request(app).get('/api/diagnosis').query({ flow: '10.0.0.1:40000-10.0.0.2:5201', window: '2' }).expect(200);
    expect(r.body.id).toBe('10.0.0.1:40000-10.0.0.2:5201');
    expect(r.body.top.limit).toBe('pacing_capped');
    expect(r.body.evidence.node).toBe('node-a');
    expect(r.body.evidence.flow.role).toBe('sender');
    expect(r.body.evidence.nodeSummary.path).toEqual({ ipDevice: 'eth0', nicDevice: 'eth0' });
    expect(r.body.pinned).toBe(true); // a sampled flow asked for by id is kept sampled
  });

  it('by selector; an unknown id is pinned for ?pin seconds; errors are 4xx', async () => {
    const { app, s } = await sampled();
    const bySel = await request(app).get('/api/diagnosis').query({ flow: 'sport = 40000' }).expect(200);
    expect(bySel.body.id).toBe('10.0.0.1:40000-10.0.0.2:5201');
    const pin = await request(app).get('/api/diagnosis').query({ flow: '10.0.0.1:40001-10.0.0.2:5201', pin: '30' }).expect(200);
    expect(pin.body.pinned).toBe(true);
    expect(pin.body.evidence.flow).toBeUndefined(); // no samples yet
    expect(s.find(key(40001))?.reasons.has('pinned')).toBe(true);
    await request(app).get('/api/diagnosis').query({ flow: 'dport = 9999' }).expect(404);
    const bad = await request(app).get('/api/diagnosis').query({ flow: 'dport ==' }).expect(400);
    expect(bad.body.error).toMatch(/port number/);
    await request(app).get('/api/diagnosis').query({ window: 'soon' }).expect(400);
    await request(app).get('/api/diagnosis').query({ flow: 'dport = 5201', pin: '-1' }).expect(400);
  });

  it('503 when the diagnosis collector is disabled', async () => {
    const app = express();
    mountDiagnosisApi(app, { sampler: () => undefined });
    await request(app).get('/api/flows').expect(503);
    await request(app).get('/api/diagnosis').expect(503);
  });

  it('selectors evaluate on flow keys like the kernel filter', () => {
    const k = { localIp: '1.1.1.3', localPort: 40000, peerIp: '1.1.1.2', peerPort: 5201 };
    expect(keyMatcher('dport = 5201 and dst 1.1.1.0/24')(k)).toBe(true);
    expect(keyMatcher('src 10.0.0.0/8')(k)).toBe(false);
    expect(keyMatcher('state established')(k)).toBe(true);
    expect(keyMatcher('dst ::1')(k)).toBe(false);
  });
});
