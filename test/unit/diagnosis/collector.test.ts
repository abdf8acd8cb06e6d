// The diagnosis collector: its exposition (checked with promtool), the per-flow reasons summing to wall
// time, the verdict series, the sampler's cost counters; and the registry hook the API uses.

import { Emitter } from '../../../src/core/metrics';
import { Config } from '../../../src/core/flags';
import { allFlags } from '../../../src/exporter';
import { Registry } from '../../../src/collectors/registry';
import { ALL_COLLECTORS } from '../../../src/collectors';
import { DIAGNOSIS_METRICS, DiagnosisCollector, FlowIdentities, diagnosisCollector, samplerFromRegistry } from '../../../src/collectors/diagnosis';
import { DEFAULT_SAMPLER_OPTIONS, Sampler } from '../../../src/diagnosis/sampler';
import { REASONS } from '../../../src/diagnosis/types';
import { nullLogger } from '../../../src/core/log';
import { promtoolAvailable, promtoolCheckMetrics } from '../../support/promtool';
import { FakeClock, FakeFlows, FakeNode, fakeListeners, tickN } from './fakes';
import { SIG } from './synth';

async function collectorWithFlow(listening = fakeListeners()) {
  const clock = new FakeClock();
  const flows = new FakeFlows();
  flows.flows.set(40000, { bytes: 0, watched: true, cookie: '1', sig: SIG.bneck, rate: 25e6 });
  const s = new Sampler({ ...DEFAULT_SAMPLER_OPTIONS, top: 0 }, flows, new FakeNode(), nullLogger, clock);
  await s.discover();
  await s.snapshotNode();
  await tickN(s, clock, 41);
  await s.snapshotNode();
  // start() would run the real loops: this collector is only collected.
  const c = new DiagnosisCollector(s, 10, 20, new FlowIdentities(listening, '/nonexistent-procfs'));
  (c as unknown as { started: boolean }).started = true;
  return c;
}

describe('diagnosis collector', () => {
  it('exports limited seconds per reason (summing to wall time), the verdict and the sampler cost', async () => {
    const c = await collectorWithFlow();
    const out = new Emitter();
    await c.collect(out);
    const text = out.render();
    const re = /^flowpath_flow_limited_seconds_total\{local_ip="10\.0\.0\.1",local_port="40000",peer_ip="10\.0\.0\.2",peer_port="5201",role="client",service_port="5201",reason="([a-z_]+)"\} (\S+)$/gm;
    const got = new Map<string, number>();
    for (const m of text.matchAll(re)) got.set(m[1], Number(m[2]));
    expect([...got.keys()].sort()).toEqual([...REASONS].sort());
    expect([...got.values()].reduce((a, b) => a + b, 0)).toBeCloseTo(2.0, 6);
    expect(text).toMatch(/^flowpath_flow_verdict_info\{local_ip="10\.0\.0\.1",local_port="40000",peer_ip="10\.0\.0\.2",peer_port="5201",role="client",service_port="5201",hop="link",limit="queue",rule="link-bottleneck"\} 1$/m);
    expect(text).toMatch(/^flowpath_diagnosis_ticks_total 41$/m);
    expect(text).toMatch(/^flowpath_diagnosis_lookups_total 41$/m);
    expect(text).toMatch(/^flowpath_diagnosis_sampled_flows 1$/m);
    expect(text).toMatch(/^flowpath_diagnosis_sample_rate_hertz 20$/m);
    for (const f of out.familyNames()) expect(DIAGNOSIS_METRICS.map((m) => m.name)).toContain(f);
    if (promtoolAvailable()) {
      const r = promtoolCheckMetrics(text);
      expect(r.output).toBe('');
      expect(r.status).toBe(0);
    }
  });

  it('labels a flow with its identity, decided once: a listener on the local port makes it a server', async () => {
    const l = fakeListeners(40000);
    const c = await collectorWithFlow(l);
    for (let i = 0; i < 3; i++) {
      const out = new Emitter();
      await c.collect(out);
      expect(out.render()).toMatch(/^flowpath_flow_verdict_info\{[^}]*local_port="40000"[^}]*role="server",service_port="40000",/m);
    }
    expect(l.dumps).toBe(1);
  });

  it('is registered, and the API finds its sampler through the registry', () => {
    expect(ALL_COLLECTORS).toContain(diagnosisCollector);
    const config = Config.from(allFlags(), { 'diagnosis.watch': 'dport = 5201' });
    const reg = new Registry([diagnosisCollector], { config, log: nullLogger }, 5);
    const s = samplerFromRegistry(reg);
    expect(s).toBeInstanceOf(Sampler);
    expect(s?.opts.rateHz).toBe(20);
    const off = new Registry([diagnosisCollector], { config: Config.from(allFlags(), { 'collector.diagnosis': false }), log: nullLogger }, 5);
    expect(samplerFromRegistry(off)).toBeUndefined();
    void reg.close();
  });

  it('rejects a bad --diagnosis.watch selector at flag parsing', () => {
    expect(() => Config.from(allFlags(), { 'diagnosis.watch': 'dport =' })).toThrow(/--diagnosis.watch: .*port number/);
  });
});
