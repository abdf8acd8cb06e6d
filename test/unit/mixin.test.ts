// prometheus/ is generated from src/mixin: the committed files must be what the generator makes, every
// expression must pass promtool and name only catalogue metrics (with their labels) or recording rules
// of the mixin, every alert must carry its labels/annotations and have a runbook, and the promtool unit
// tests (one per alert: fires at the threshold, silent at a near miss, resolves) must pass.

import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parser } from '@prometheus-io/lezer-promql';
import { parse } from 'yaml';
import { ALL_COLLECTORS } from '../../src/collectors';
import { sectionsFor } from '../../src/core/catalogue';
import { EXPORTER_METRICS } from '../../src/exporter';
import { main } from '../../src/cli';
import { ALERT_NAMES, DEFAULT_CONFIG, mergeConfig } from '../../src/mixin/config';
import { alertGroups } from '../../src/mixin/alerts';
import { recordingGroups } from '../../src/mixin/rules';
import { renderFiles } from '../../src/mixin/render';
import { goG4, humanize, humanizePercentage } from '../../src/mixin/template';

const REPO = path.join(__dirname, '../..');
const PROM = path.join(REPO, 'prometheus');

function promtool(args: string[], cwd = REPO): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8' });
  if (r.error) throw new Error(`promtool is required (Debian package prometheus; scripts/install-test-deps installs it): ${r.error.message}`);
  return { status: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

function listFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...listFiles(dir, r));
    else out.push(r);
  }
  return out.sort();
}

describe('prometheus/ is what src/mixin generates', () => {
  const files = renderFiles(DEFAULT_CONFIG);
  it('has no stale, missing or extra file', () => {
    expect(listFiles(PROM)).toEqual([...files.keys()].sort());
  });
  it.each([...files.keys()])('%s is current (regenerate: npm run prometheus)', (rel) => {
    expect(fs.readFileSync(path.join(PROM, rel), 'utf8')).toBe(files.get(rel));
  });
});

describe('promtool', () => {
  it('check rules accepts both rule files', () => {
    const r = promtool(['check', 'rules', 'prometheus/rules.yml', 'prometheus/alerts.yml']);
    expect(r.out).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });
  it('check config accepts the static example and its rule files', () => {
    const r = promtool(['check', 'config', 'prometheus.yml'], PROM);
    expect(r.out).toContain('SUCCESS: 2 rule files found');
    expect(r.status).toBe(0);
  });
  it('the Kubernetes example keeps the DaemonSet pods: namespace flowpath, app.kubernetes.io/name=flowpath, port "metrics"', () => {
    // Debian's promtool is built without Kubernetes service discovery, so check its shape here.
    const doc = parse(fs.readFileSync(path.join(PROM, 'prometheus-kubernetes.yml'), 'utf8'));
    const job = doc.scrape_configs[0];
    expect(job.job_name).toBe('flowpath');
    expect(job.kubernetes_sd_configs).toEqual([{ role: 'pod', namespaces: { names: ['flowpath'] } }]);
    expect(job.relabel_configs).toEqual(
      expect.arrayContaining([
        { source_labels: ['__meta_kubernetes_pod_label_app_kubernetes_io_name'], regex: 'flowpath', action: 'keep' },
        { source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: 'metrics', action: 'keep' },
        { source_labels: ['__meta_kubernetes_pod_node_name'], target_label: 'instance' },
      ]),
    );
    expect(doc.rule_files).toEqual(['rules.yml', 'alerts.yml']);
  });
  it.each(listFiles(path.join(PROM, 'tests')))('test rules tests/%s passes', (f) => {
    const r = promtool(['test', 'rules', path.join('tests', f)], PROM);
    expect({ status: r.status, out: r.out }).toEqual({ status: 0, out: expect.stringContaining('SUCCESS') });
  }, 120000);
});

// ------------------------------------------------------------------------------------------------

interface Selector {
  name: string;
  matchers: string[];
}

function selectors(expr: string): Selector[] {
  const tree = parser.parse(expr);
  const out: Selector[] = [];
  const errors: string[] = [];
  const c = tree.cursor();
  do {
    if (c.type.isError) errors.push(`at ${c.from}: ${JSON.stringify(expr.slice(Math.max(0, c.from - 20), c.to + 20))}`);
    if (c.name === 'VectorSelector') {
      const node = c.node;
      const id = node.getChild('Identifier');
      const matchers: string[] = [];
      const ms = node.getChild('LabelMatchers');
      if (ms) {
        const mc = ms.cursor();
        do if (mc.name === 'LabelName') matchers.push(expr.slice(mc.from, mc.to));
        while (mc.next() && mc.from < ms.to);
      }
      out.push({ name: id ? expr.slice(id.from, id.to) : '', matchers });
    }
  } while (c.next());
  if (errors.length) throw new Error(`PromQL does not parse: ${errors.join('; ')}\n${expr}`);
  return out;
}

describe('every expression names only known metrics and labels', () => {
  const catalogue = new Map<string, readonly string[]>();
  for (const s of sectionsFor(ALL_COLLECTORS, EXPORTER_METRICS)) for (const m of s.metrics) catalogue.set(m.name, m.labels);
  // Prometheus's own: the scrape health of each target.
  catalogue.set('up', []);
  const recording = recordingGroups(DEFAULT_CONFIG).flatMap((g) => g.rules);
  const recorded = new Set(recording.map((r) => r.record));
  const targetLabels = new Set(['job', 'instance', ...DEFAULT_CONFIG.groupLabels]);
  const exprs = [
    ...recording.map((r) => ({ name: r.record, expr: r.expr })),
    ...alertGroups(DEFAULT_CONFIG).flatMap((g) => g.rules.map((r) => ({ name: r.alert, expr: r.expr }))),
  ];

  it.each(exprs)('$name', ({ expr }) => {
    const sels = selectors(expr);
    expect(sels.length).toBeGreaterThan(0);
    for (const s of sels) {
      const known = catalogue.has(s.name) || recorded.has(s.name);
      expect({ metric: s.name, known }).toEqual({ metric: s.name, known: true });
      const labels = catalogue.get(s.name);
      if (!labels) continue;
      for (const l of s.matchers) {
        const ok = targetLabels.has(l) || labels.includes(l);
        expect({ metric: s.name, label: l, ok }).toEqual({ metric: s.name, label: l, ok: true });
      }
    }
  });

  it('a renamed metric is caught', () => {
    const sels = selectors('rate(flowpath_nic_rx_droped_total{job="flowpath"}[5m])');
    expect(catalogue.has(sels[0].name)).toBe(false);
    expect(() => selectors('rate(foo{[5m])')).toThrow(/does not parse/);
  });

  it('recording rules are named level:metric:operations and defined once', () => {
    for (const r of recording) expect(r.record).toMatch(/^[a-z_]+:flowpath_[a-z0-9_]+:[a-z0-9_]+$/);
    expect(recorded.size).toBe(recording.length);
  });
});

describe('alerts', () => {
  const rules = alertGroups(DEFAULT_CONFIG).flatMap((g) => g.rules);
  it('are exactly the configured ones', () => {
    expect(rules.map((r) => r.alert)).toEqual([...ALERT_NAMES]);
  });
  it.each(rules.map((r) => [r.alert, r] as const))('%s has severity, scope, summary, description, runbook', (name, r) => {
    expect(['info', 'warning', 'critical']).toContain(r.labels.severity);
    expect(['flow', 'node', 'exporter']).toContain(r.labels.scope);
    expect(r.annotations.summary).not.toContain('{{');
    expect(r.annotations.description).toMatch(/\{\{ \$value \| humanize(Percentage)? \}\}|\{\{ \$labels\./);
    expect(r.annotations.runbook_url).toBe(`docs/runbooks/${name}.md`);
    const runbook = fs.readFileSync(path.join(REPO, 'docs/runbooks', `${name}.md`), 'utf8');
    expect(runbook).toMatch(new RegExp(`^# ${name}\\b`));
    for (const h of ['## Meaning', '## Confirm by hand', '## What usually fixes it']) expect(runbook).toContain(h);
  });
  it('flow alerts keep the flow identity, node alerts the node', () => {
    // Routing per flow identity needs these labels on the alert; they come from the recording rules.
    for (const r of rules.filter((x) => x.labels.scope === 'flow')) {
      expect(r.expr).toMatch(/^\(?\s*instance_peer_ip_service_port_role:/);
    }
  });
  it('every runbook belongs to an alert', () => {
    const names = new Set<string>(ALERT_NAMES);
    for (const f of fs.readdirSync(path.join(REPO, 'docs/runbooks'))) {
      if (f === 'README.md') continue;
      expect(names.has(f.replace(/\.md$/, ''))).toBe(true);
    }
  });
});

describe('config overrides', () => {
  it('change thresholds, for: and severities without touching the rest', () => {
    const c = mergeConfig(DEFAULT_CONFIG, { thresholds: { rwndLimitedShare: 0.7 }, alerts: { FlowpathFlowRwndLimited: { for: '1m' } } });
    const r = alertGroups(c).flatMap((g) => g.rules).find((x) => x.alert === 'FlowpathFlowRwndLimited');
    expect(r?.expr).toContain('>= 0.7');
    expect(r?.for).toBe('1m');
    expect(r?.labels.severity).toBe('warning');
    expect(DEFAULT_CONFIG.thresholds.rwndLimitedShare).toBe(0.5);
  });
  it('reject unknown keys, wrong types and bad durations', () => {
    expect(() => mergeConfig(DEFAULT_CONFIG, { thresholds: { rwndLimitedShar: 1 } })).toThrow(/unknown key/);
    expect(() => mergeConfig(DEFAULT_CONFIG, { rateWindow: 5 })).toThrow(/expected a string/);
    expect(() => mergeConfig(DEFAULT_CONFIG, { rateWindow: '5 minutes' })).toThrow(/duration/);
    expect(() => mergeConfig(DEFAULT_CONFIG, { selector: '{job="x"}' })).toThrow(/selector/);
  });

  const run = async (argv: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = await main(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
    return { code, stdout, stderr };
  };

  const inTmpDir = async (f: (dir: string) => Promise<void>) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-rules-'));
    try {
      await f(dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  it('flowpath rules --config overrides.yaml prints rules promtool accepts', () =>
    inTmpDir(async (dir) => {
      const cfg = path.join(dir, 'overrides.yaml');
      fs.writeFileSync(cfg, 'selector: job="fp", cluster="eu1"\ngroupLabels: [job, cluster]\nrateWindow: 2m\nthresholds:\n  pacingLimitedShare: 0.8\nexpectedLinkSpeeds:\n  - {device: "ens.*", bitsPerSecond: 25000000000}\n');
      const r = await run(['rules', '--config', cfg]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('flowpath_flow_pacing_limited:ratio_rate2m >= 0.8');
      expect(r.stdout).toContain('{job="fp", cluster="eu1", device=~"ens.*"} * 8 < 25000000000');
      expect(r.stdout).toContain('by (job, cluster, instance, peer_ip, service_port, role)');
      const doc = parse(r.stdout) as { groups: Array<{ rules: unknown[] }> };
      expect(doc.groups.length).toBe(8);
      fs.writeFileSync(path.join(dir, 'all.yml'), r.stdout);
      const check = promtool(['check', 'rules', path.join(dir, 'all.yml')]);
      expect({ status: check.status, out: check.out }).toEqual({ status: 0, out: expect.stringContaining('SUCCESS') });

      const alertsOnly = await run(['rules', 'alerts', `--config=${cfg}`]);
      expect(alertsOnly.stdout).toContain('alert: FlowpathExporterDown');
      expect(alertsOnly.stdout).not.toContain('record:');
    }));

  it('a bad overrides file exits 2 with the reason', () =>
    inTmpDir(async (dir) => {
      const cfg = path.join(dir, 'o.json');
      fs.writeFileSync(cfg, '{"thresholds": {"nope": 1}}');
      const r = await run(['rules', '--config', cfg]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/o\.json\.thresholds\.nope: unknown key/);
      expect((await run(['rules', '--config', path.join(dir, 'missing.yaml')])).code).toBe(2);
      expect((await run(['rules', 'bogus'])).code).toBe(2);
    }));
});

describe('annotation rendering matches Prometheus (Go %.4g)', () => {
  it.each([
    [0.5, '0.5'],
    [50, '50'],
    [12346, '1.235e+04'],
    [0.000012345, '1.234e-05'],
    [39.999999999999996, '40'],
    [1 / 60, '0.01667'],
  ])('goG4(%p) = %s', (v, s) => expect(goG4(v)).toBe(s));
  it('humanize and humanizePercentage', () => {
    expect(humanize(1e10)).toBe('10G');
    expect(humanize(1 / 60)).toBe('16.67m');
    expect(humanize(1234567)).toBe('1.235M');
    expect(humanizePercentage(0.002)).toBe('0.2%');
    expect(humanizePercentage(0.9)).toBe('90%');
  });
});
