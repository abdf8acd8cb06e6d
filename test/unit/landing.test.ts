// The landing page: the sampled flows with their hop row (the hops, statuses and top finding of
// /api/diagnosis), the collectors table, and the script that redraws the flows with the same function.
import request from 'supertest';
import express from 'express';
import * as vm from 'vm';
import { Config } from '../../src/core/flags';
import { nullLogger } from '../../src/core/log';
import { Exporter, allFlags } from '../../src/exporter';
import { mountDiagnosisApi } from '../../src/diagnosis/api';
import { DEFAULT_SAMPLER_OPTIONS, Sampler } from '../../src/diagnosis/sampler';
import { HOPS } from '../../src/diagnosis/types';
import { mountLandingPage, renderFlows } from '../../src/web/landing';
import { fakeDefs } from '../support/fake-collectors';
import { FakeClock, FakeFlows, FakeNode, tickN } from './diagnosis/fakes';
import { SIG } from './diagnosis/synth';

async function app(withSampler = true) {
  const clock = new FakeClock();
  const flows = new FakeFlows();
  const s = new Sampler({ ...DEFAULT_SAMPLER_OPTIONS, top: 2, discoverIntervalMs: 1000 }, flows, new FakeNode(), nullLogger, clock);
  flows.flows.set(40000, { bytes: 5e6, watched: false, cookie: '11', sig: SIG.pace_cubic, rate: 12.5e6 });
  flows.flows.set(40001, { bytes: 4e6, watched: false, cookie: '12', sig: SIG.app, rate: 1e6 });
  await s.discover();
  await s.snapshotNode();
  await tickN(s, clock, 60);
  await s.snapshotNode();
  const defs = fakeDefs({ okCalls: 0 });
  const exporter = new Exporter(Config.from(allFlags(defs), {}), nullLogger, defs);
  const a = express();
  mountDiagnosisApi(a, { sampler: () => (withSampler ? s : undefined), node: 'node-a', defaultWindowSeconds: 2 });
  mountLandingPage(a, exporter, { sampler: () => (withSampler ? s : undefined), node: 'node-a' });
  return a;
}

/** The hop cells of one flow section: [hop, status] in page order. */
function hopsOf(html: string, flowId: string): Array<[string, string]> {
  const start = html.indexOf(`data-flow="${flowId}"`);
  expect(start).toBeGreaterThan(0);
  const section = html.slice(start, html.indexOf('</section>', start));
  return [...section.matchAll(/data-hop="([^"]+)" data-status="([^"]+)"/g)].map((m) => [m[1], m[2]]);
}

describe('landing page', () => {
  it('shows each sampled flow with the hops and statuses of /api/diagnosis and its top finding', async () => {
    const a = await app();
    const page = await request(a).get('/').expect(200);
    expect(page.headers['content-type']).toMatch(/html/);
    const api = (await request(a).get('/api/diagnosis').expect(200)).body;
    expect(api.flows.length).toBe(2);
    for (const f of api.flows) {
      expect(hopsOf(page.text, f.id)).toEqual(f.hops.map((h: { hop: string; status: string }) => [h.hop, h.status]));
    }
    const paced = api.flows.find((f: { id: string }) => f.id === '10.0.0.1:40000-10.0.0.2:5201');
    expect(paced.top.hop).toBe('tcp-tx');
    expect(hopsOf(page.text, paced.id).find(([h]) => h === 'tcp-tx')![1]).toBe('limiting');
    expect(page.text).toContain('data-top-hop="tcp-tx">Limited at <b>sender TCP</b> (pacing_capped)');
    expect(page.text).toContain('10.0.0.1:40000 → 10.0.0.2:5201');
    expect(hopsOf(page.text, paced.id).map(([h]) => h)).toEqual([...HOPS]);
    // the collectors table is still there
    expect(page.text).toContain('<td>fakeoff</td><td>disabled</td>');
    // no external assets
    expect(page.text).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\//);
  });

  it('ships the same renderer to the browser: evaluated from the page, it draws the API answer as the server did', async () => {
    const a = await app();
    const page = await request(a).get('/').expect(200);
    const script = /<script>([\s\S]*)<\/script>/.exec(page.text)![1];
    const src = /var renderFlows = (function renderFlows[\s\S]*?);\n  var box/.exec(script)![1];
    const browserRender = vm.runInNewContext(`(${src})`) as typeof renderFlows;
    const api = (await request(a).get('/api/diagnosis?window=10').expect(200)).body;
    expect(browserRender(api)).toBe(renderFlows(api));
    expect(page.text).toContain(`<div id="flows">${renderFlows(api)}</div>`);
  });

  it('escapes what it prints and explains an empty or disabled sampler', async () => {
    const html = renderFlows({
      flows: [{ id: '<x>', hops: [{ hop: 'link', title: '<b>link</b>', status: 'ok', findings: [], note: '"q"' }], findings: [], top: null }],
    });
    expect(html).not.toContain('<b>link</b>');
    expect(html).toContain('&lt;b&gt;link&lt;/b&gt;');
    expect(renderFlows({ flows: [] })).toMatch(/No flow is being sampled/);
    const page = await request(await app(false)).get('/').expect(200);
    expect(page.text).toMatch(/diagnosis collector is disabled/);
  });
});
