// `flowpath dashboards --config`: the dashboards generated from a user's overrides of the mixin config
// query only recording rules that `flowpath rules` generates from the same file, use its rate window and
// turn red at its alert thresholds; without overrides they are the committed grafana/dashboards/*.json.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../../src/cli';
import { UID } from '../../src/dashboards/common';
import { renderDashboards } from '../../src/dashboards/generate';
import { DEFAULT_CONFIG } from '../../src/mixin/config';
import { recordNames } from '../../src/mixin/rules';
import { DASHBOARD_DIR, Json, catalogue, checkQuery, panelsOf, queriesOf, recordsUsed, rulesDefined, substitute, VARS } from '../support/dashboards';

const run = async (argv: string[]) => {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
};

describe('flowpath dashboards --config', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-dashboards-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('without overrides the dashboards are the committed grafana/dashboards/*.json, byte for byte', async () => {
    const out = path.join(dir, 'default');
    const r = await run(['dashboards', '--out', out]);
    expect(r.code).toBe(0);
    const files = fs.readdirSync(out).sort();
    expect(files).toEqual(fs.readdirSync(DASHBOARD_DIR).filter((f) => f.endsWith('.json')).sort());
    for (const f of files) expect([f, fs.readFileSync(path.join(out, f), 'utf8')]).toEqual([f, fs.readFileSync(path.join(DASHBOARD_DIR, f), 'utf8')]);
    expect(renderDashboards(DEFAULT_CONFIG).get(`${UID.node}.json`)).toBe(fs.readFileSync(path.join(DASHBOARD_DIR, `${UID.node}.json`), 'utf8'));
  });

  it('with a changed rate window and thresholds, every rule a panel queries is one `flowpath rules` generates from the same file', async () => {
    const cfg = path.join(dir, 'overrides.yaml');
    fs.writeFileSync(cfg, 'rateWindow: 2m\nthresholds:\n  softirqCpuShare: 0.4\n  pacingLimitedShare: 0.35\n');
    const rulesDir = path.join(dir, 'prometheus');
    const dashDir = path.join(dir, 'dashboards');
    expect((await run(['rules', '--config', cfg, '--out', rulesDir])).code).toBe(0);
    const r = await run(['dashboards', `--config=${cfg}`, '--out', dashDir]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringContaining(`to ${dashDir}`) });

    const records = rulesDefined(rulesDir).records;
    const dashboards = fs.readdirSync(dashDir).map((f) => ({ file: f, json: JSON.parse(fs.readFileSync(path.join(dashDir, f), 'utf8')) as Json }));
    expect(dashboards.length).toBe(3);
    const queries = dashboards.flatMap((d) => queriesOf(d.file, d.json));
    const used = new Set(queries.flatMap((q) => recordsUsed(q.expr)));
    // The same panels read rules as with the default config, under the names of the 2m window.
    const defaults = new Set(Object.values(recordNames(DEFAULT_CONFIG)));
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((n) => !records.has(n))).toEqual([]);
    // (a rule over a window has the window in its name: all of them are renamed)
    const windowed = [...used].filter((n) => /rate\d+[smhd]$/.test(n));
    expect(windowed.length).toBeGreaterThan(15);
    expect(windowed.filter((n) => defaults.has(n) || !n.endsWith('rate2m'))).toEqual([]);
    const known = catalogue();
    const problems = queries.flatMap((q) => checkQuery(substitute(q.expr, VARS), known, records).map((p) => `${q.dashboard} ${q.where}: ${p}`));
    expect(problems).toEqual([]);
    // Raw rates drawn next to recorded ones use the rules' window too.
    const raw = queries.map((q) => q.expr).filter((e) => /\[\d+[smhd]\]/.test(e));
    expect(raw.length).toBeGreaterThan(0);
    expect(raw.filter((e) => !e.includes('[2m]') && !e.includes('[1d]'))).toEqual([]);

    // The thresholds show in the panels that show what the alert judges: colours and descriptions.
    const panel = (uid: string, title: string): Json => panelsOf(dashboards.find((d) => d.json.uid === uid)!.json).find((p: Json) => p.title === title);
    const softirq = panel(UID.node, 'Softirq CPU share per CPU');
    expect(softirq.fieldConfig.defaults.thresholds.steps).toEqual([{ value: null, color: 'green' }, { value: 0.4, color: 'red' }]);
    expect(softirq.description).toContain('40 %');
    const top = panel(UID.fleet, 'Top pacing-limited flow identities');
    const steps = top.fieldConfig.overrides.flatMap((o: Json) => o.properties).find((x: Json) => x.id === 'thresholds').value.steps;
    expect(steps.find((s: Json) => s.color === 'orange').value).toBe(0.35);
    expect(top.description).toContain('35 %');
    // Every panel's steps ascend, whatever the thresholds.
    for (const d of dashboards) {
      for (const p of panelsOf(d.json)) {
        const all = [p.fieldConfig?.defaults?.thresholds?.steps ?? [], ...(p.fieldConfig?.overrides ?? []).flatMap((o: Json) => o.properties.filter((x: Json) => x.id === 'thresholds').map((x: Json) => x.value.steps))];
        for (const s of all) {
          const values = s.map((x: Json) => x.value).filter((v: unknown) => v !== null);
          expect([d.file, p.title, values]).toEqual([d.file, p.title, [...values].sort((a, b) => a - b)]);
        }
      }
    }
  });

  it('a name prints that dashboard; a wrong name, neither name nor --out, or a bad config exit 2', async () => {
    const one = await run(['dashboards', 'flow']);
    expect(one.code).toBe(0);
    expect(one.stdout).toBe(fs.readFileSync(path.join(DASHBOARD_DIR, `${UID.flow}.json`), 'utf8'));
    const onlyDir = path.join(dir, 'only-node');
    expect((await run(['dashboards', 'node', '--out', onlyDir])).code).toBe(0);
    expect(fs.readdirSync(onlyDir)).toEqual([`${UID.node}.json`]);
    const bad = await run(['dashboards', 'nodes']);
    expect({ code: bad.code, stderr: bad.stderr }).toEqual({ code: 2, stderr: expect.stringContaining('expected one of fleet, flow, node') });
    const none = await run(['dashboards']);
    expect({ code: none.code, stderr: none.stderr }).toEqual({ code: 2, stderr: expect.stringContaining('--out') });
    const cfg = path.join(dir, 'bad.yaml');
    fs.writeFileSync(cfg, 'rateWindow: 5 minutes\n');
    const badCfg = await run(['dashboards', 'fleet', '--config', cfg]);
    expect({ code: badCfg.code, stdout: badCfg.stdout, stderr: badCfg.stderr }).toEqual({ code: 2, stdout: '', stderr: expect.stringContaining('--config') });
  });
});
