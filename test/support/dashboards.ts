// Helpers to check the generated Grafana dashboards: every query they hold (panel targets, variable
// queries, annotations), Grafana's variables substituted, the metric names and label matchers each
// query uses (parsed with @prometheus-io/lezer-promql), recording rules defined under prometheus/, and a
// type check of the JSON against the dashboard and panel types of @grafana/grafana-foundation-sdk.
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';
import { parser } from '@prometheus-io/lezer-promql';
import { sectionsFor } from '../../src/core/catalogue';
import { ALL_COLLECTORS } from '../../src/collectors';
import { EXPORTER_METRICS } from '../../src/exporter';
import { DASHBOARDS } from '../../src/dashboards';

export const REPO = path.resolve(__dirname, '..', '..');
export const DASHBOARD_DIR = path.join(REPO, 'grafana', 'dashboards');
export const RULES_DIR = path.join(REPO, 'prometheus');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface CommittedDashboard {
  file: string;
  text: string;
  json: Json;
}

export function committedDashboards(): CommittedDashboard[] {
  return DASHBOARDS.map((d) => {
    const file = path.join(DASHBOARD_DIR, d.file);
    const text = fs.readFileSync(file, 'utf8');
    return { file: d.file, text, json: JSON.parse(text) };
  });
}

export interface DashQuery {
  dashboard: string;
  /** Human-readable place: 'panel "Title" A', 'variable peer', 'annotation flowpath alerts'. */
  where: string;
  panelTitle?: string;
  refId?: string;
  expr: string;
  instant: boolean;
  kind: 'panel' | 'variable' | 'annotation';
}

/** All panels, rows' children included, without the rows themselves. */
export function panelsOf(d: Json): Json[] {
  const out: Json[] = [];
  for (const p of d.panels ?? []) {
    if (p.type === 'row') out.push(...(p.panels ?? []));
    else out.push(p);
  }
  return out;
}

/** `label_values(SELECTOR, label)` -> the selector (a PromQL vector selector) and the label. */
export function parseLabelValues(q: string): { selector: string; label: string } {
  const m = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(q.trim());
  if (!m) throw new Error(`not a label_values() query: ${q}`);
  return { selector: m[1], label: m[2] };
}

export function queriesOf(name: string, d: Json): DashQuery[] {
  const out: DashQuery[] = [];
  for (const p of panelsOf(d)) {
    for (const t of p.targets ?? []) {
      out.push({ dashboard: name, where: `panel "${p.title}" ${t.refId}`, panelTitle: p.title, refId: t.refId, expr: t.expr, instant: t.instant === true, kind: 'panel' });
    }
  }
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query.query;
    out.push({ dashboard: name, where: `variable ${v.name}`, expr: parseLabelValues(q).selector, instant: true, kind: 'variable' });
  }
  for (const a of d.annotations?.list ?? []) {
    if (a.expr) out.push({ dashboard: name, where: `annotation ${a.name}`, expr: a.expr, instant: false, kind: 'annotation' });
  }
  return out;
}

/** Values that make every query concrete, as the e2e test substitutes them. */
export const VARS: Readonly<Record<string, string>> = {
  datasource: 'prometheus', node: '127.0.0.1:9632', peer: '1.1.1.2', service_port: '5201', role: 'client', local_ip: '1.1.1.3',
  peer_instance: '1.1.1.2:9632', device: '.*',
};

/**
 * Grafana's variables replaced: `$__rate_interval`, `$__interval`, `$__range` and `$name` / `${name}`
 * (longest names first, so $node does not eat $node_ip).
 */
export function substitute(expr: string, vars: Readonly<Record<string, string>>): string {
  const all: Record<string, string> = { __rate_interval: '1m', __interval: '15s', __range: '1h', ...vars };
  let s = expr;
  for (const k of Object.keys(all).sort((a, b) => b.length - a.length)) {
    s = s.split('${' + k + '}').join(all[k]).split('$' + k).join(all[k]);
  }
  return s;
}

export interface SelectorUse {
  metric: string;
  labels: string[];
}

/** Syntax errors (lezer error nodes) and the vector selectors of a PromQL expression. */
export function analyse(expr: string): { errors: string[]; selectors: SelectorUse[] } {
  const tree = parser.parse(expr);
  const errors: string[] = [];
  const selectors: SelectorUse[] = [];
  tree.iterate({
    enter: (n) => {
      if (n.type.isError) errors.push(`syntax error at ${n.from}: "${expr.slice(Math.max(0, n.from - 20), n.to + 20)}"`);
      if (n.name === 'VectorSelector') {
        const node = n.node;
        const id = node.getChild('Identifier');
        const labels: string[] = [];
        const matchers = node.getChild('LabelMatchers');
        let metric = id ? expr.slice(id.from, id.to) : '';
        if (matchers) {
          for (let c = matchers.firstChild; c; c = c.nextSibling) {
            const ln = c.getChild('LabelName');
            if (!ln) continue;
            const label = expr.slice(ln.from, ln.to);
            if (label === '__name__') {
              const v = c.getChild('StringLiteral');
              if (v) metric = expr.slice(v.from + 1, v.to - 1);
            } else labels.push(label);
          }
        }
        selectors.push({ metric, labels });
      }
    },
  });
  return { errors, selectors };
}

/** Metric families and their labels, from the collectors' declarations (docs/metrics.md). */
export function catalogue(): Map<string, Set<string>> {
  const m = new Map<string, Set<string>>();
  for (const s of sectionsFor(ALL_COLLECTORS, EXPORTER_METRICS)) for (const f of s.metrics) m.set(f.name, new Set(f.labels));
  return m;
}

/** Names of recording rules (`record:`) and alerts (`alert:`) in prometheus/**.y(a)ml, when present. */
export function rulesDefined(dir = RULES_DIR): { records: Set<string>; alerts: Set<string>; files: string[] } {
  const records = new Set<string>();
  const alerts = new Set<string>();
  const files: string[] = [];
  const walk = (d: string): void => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(e.name)) {
        // Rule files only (top-level `groups:`): prometheus/ also holds example configs and promtool tests.
        const text = fs.readFileSync(p, 'utf8');
        if (!/^groups:/m.test(text)) continue;
        files.push(p);
        for (const line of text.split('\n')) {
          const r = /^\s*(?:-\s+)?record:\s*['"]?([a-zA-Z_:][a-zA-Z0-9_:]*)['"]?\s*$/.exec(line);
          if (r) records.add(r[1]);
          const a = /^\s*(?:-\s+)?alert:\s*['"]?([a-zA-Z_][a-zA-Z0-9_]*)['"]?\s*$/.exec(line);
          if (a) alerts.add(a[1]);
        }
      }
    }
  };
  walk(dir);
  return { records, alerts, files };
}

/** Series Prometheus itself creates (alerting state, scrape health). */
export const PROMETHEUS_BUILTINS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['ALERTS', new Set(['alertname', 'alertstate', 'severity', 'instance', 'job'])],
  ['ALERTS_FOR_STATE', new Set(['alertname', 'severity', 'instance', 'job'])],
  ['up', new Set(['instance', 'job'])],
]);

/** Problems with one query: syntax, unknown metrics, label matchers on labels the metric does not have. */
export function checkQuery(expr: string, known: Map<string, Set<string>>, records: Set<string>): string[] {
  const { errors, selectors } = analyse(expr);
  const problems = [...errors];
  if (selectors.length === 0) problems.push('selects no metric');
  for (const s of selectors) {
    if (!s.metric) {
      problems.push('a selector without a metric name');
      continue;
    }
    if (records.has(s.metric)) continue; // recording rules: their labels are the rule's business
    const labels = known.get(s.metric) ?? PROMETHEUS_BUILTINS.get(s.metric);
    if (!labels) {
      problems.push(`unknown metric ${s.metric} (neither in the catalogue nor a recording rule under prometheus/)`);
      continue;
    }
    for (const l of s.labels) {
      if (l !== 'instance' && l !== 'job' && !labels.has(l)) problems.push(`${s.metric} has no label "${l}"`);
    }
  }
  return problems;
}

// -------------------------------------------------------------------------------------------------
// Type check against the SDK

const PANEL_TYPES: Readonly<Record<string, { module: string; fieldConfig: boolean }>> = {
  timeseries: { module: 'timeseries', fieldConfig: true },
  table: { module: 'table', fieldConfig: true },
  stat: { module: 'stat', fieldConfig: false },
  bargauge: { module: 'bargauge', fieldConfig: false },
};

/**
 * Type-check dashboards (as JSON text) against the SDK's `dashboard.Dashboard` and, per panel, the
 * panel plugin's `Options` (and `FieldConfig` for fieldConfig.defaults.custom), with the TypeScript
 * compiler: each JSON is inlined as an object literal assigned to the type, so wrong field types, unknown
 * enum values and unknown properties are errors. String enums of the SDK are compared by value.
 * Returns the compiler's messages (empty = valid).
 */
export function typeCheckDashboards(dashboards: ReadonlyArray<{ name: string; json: Json }>): string[] {
  const lines: string[] = [
    "import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';",
    "import type * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';",
    ...Object.values(PANEL_TYPES).map((p) => `import type * as ${p.module} from '@grafana/grafana-foundation-sdk/${p.module}';`),
    // JSON carries enum values, not enum members: map every string enum to the union of its values.
    'type J<T> = 0 extends 1 & T ? any : T extends string ? `${T}` : T extends number | boolean | null | undefined ? T :',
    '  T extends ReadonlyArray<infer U> ? J<U>[] : { [K in keyof T]: J<T[K]> };',
  ];
  const where: string[] = [];
  const problems: string[] = [];
  dashboards.forEach((d, i) => {
    // Panel targets are typed as the marker interface cog.Dataquery: check them as prometheus.Dataquery.
    const bare = JSON.parse(JSON.stringify(d.json));
    for (const p of panelsOf(bare)) p.targets = [];
    where[lines.length] = `${d.name}`;
    lines.push(`export const d${i}: J<dashboard.Dashboard> = ${JSON.stringify(bare)};`);
    panelsOf(d.json).forEach((p: Json, j: number) => {
      (p.targets ?? []).forEach((t: Json, k: number) => {
        where[lines.length] = `${d.name} panel "${p.title}" target ${t.refId}`;
        lines.push(`export const t${i}_${j}_${k}: J<Omit<prometheus.Dataquery, '_implementsDataqueryVariant'>> = ${JSON.stringify(t)};`);
      });
      const t = PANEL_TYPES[p.type];
      if (!t) {
        problems.push(`${d.name}: panel "${p.title}" has type ${p.type}, which this check does not know`);
        return;
      }
      where[lines.length] = `${d.name} panel "${p.title}" options`;
      lines.push(`export const o${i}_${j}: J<${t.module}.Options> = ${JSON.stringify(p.options ?? {})};`);
      if (t.fieldConfig) {
        where[lines.length] = `${d.name} panel "${p.title}" fieldConfig.defaults.custom`;
        lines.push(`export const f${i}_${j}: J<${t.module}.FieldConfig> = ${JSON.stringify(p.fieldConfig?.defaults?.custom ?? {})};`);
      }
    });
  });
  const source = lines.join('\n');
  const configPath = path.join(REPO, 'tsconfig.json');
  const parsed = ts.getParsedCommandLineOfConfigFile(configPath, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
  if (!parsed) throw new Error('cannot read tsconfig.json');
  const options: ts.CompilerOptions = { ...parsed.options, noEmit: true, types: [], sourceMap: false };
  const virtual = path.join(REPO, 'test', '__dashboards_typecheck__.ts');
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (f, lang, ...rest) => (path.resolve(f) === virtual ? ts.createSourceFile(f, source, lang) : getSourceFile(f, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (f) => path.resolve(f) === virtual || fileExists(f);
  const program = ts.createProgram([virtual], options, host);
  const sf = program.getSourceFile(virtual);
  for (const diag of [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)]) {
    const msg = ts.flattenDiagnosticMessageText(diag.messageText, '\n');
    if (diag.file && diag.start !== undefined) {
      const { line, character } = diag.file.getLineAndCharacterOfPosition(diag.start);
      const text = lines[line] ?? '';
      problems.push(`${where[line] ?? `line ${line + 1}`}: ${msg}\n  at: ${text.slice(Math.max(0, character - 60), character + 80)}`);
    } else problems.push(msg);
  }
  return problems;
}

// -------------------------------------------------------------------------------------------------
// Recording rules the dashboards should reuse

/** Recording-rule names a query reads (names with a colon, by the Prometheus naming convention). */
export function recordsUsed(expr: string): string[] {
  return analyse(expr).selectors.map((s) => s.metric).filter((m) => m.includes(':'));
}

export interface SimpleRule {
  record: string;
  metric: string;
  /** The labels the rule keeps (its `by`), besides the group labels. */
  keeps: Set<string>;
}

/**
 * Recording rules that are one aggregated rate of one counter over the default selector only
 * (`sum|max by (LABELS) (rate(METRIC{SELECTOR}[WINDOW]))`): any query aggregating a rate of that counter
 * by a subset of LABELS, with matchers only on those labels, recomputes the rule and should read it.
 */
export function simpleRateRules(rules: ReadonlyArray<{ record: string; expr: string }>, selector: string, window: string, groupLabels: readonly string[]): SimpleRule[] {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^(?:sum|max) by \\(([^)]*)\\) \\(rate\\((flowpath_[a-z0-9_]+)\\{${esc(selector)}\\}\\[${esc(window)}\\]\\)\\)$`);
  const out: SimpleRule[] = [];
  for (const r of rules) {
    const m = re.exec(r.expr.trim());
    if (!m) continue;
    const keeps = new Set(m[1].split(',').map((x) => x.trim()).filter((x) => !groupLabels.includes(x)));
    out.push({ record: r.record, metric: m[2], keeps });
  }
  return out;
}

/** The simple rules a query recomputes from raw counters instead of reading them. */
export function recomputedRules(expr: string, rules: readonly SimpleRule[]): string[] {
  const out: string[] = [];
  const re = /\b(?:sum|max)\s*(?:by\s*\(([^)]*)\)\s*)?\(\s*rate\(\s*(flowpath_[a-z0-9_]+)\s*(?:\{([^}]*)\})?\s*\[[^\]]+\]\s*\)\s*\)/g;
  for (const m of expr.matchAll(re)) {
    const byLabels = (m[1] ?? '').split(',').map((x) => x.trim()).filter(Boolean);
    const matched = (m[3] ?? '').split(',').map((x) => x.trim().split(/\s*(?:=~|!~|!=|=)\s*/)[0]).filter(Boolean);
    for (const r of rules) {
      if (r.metric !== m[2]) continue;
      const servable = (l: string) => l === 'job' || l === 'instance' || r.keeps.has(l);
      if (byLabels.every(servable) && matched.every(servable)) out.push(`${r.record} (recomputed as "${m[0]}")`);
    }
  }
  return out;
}
