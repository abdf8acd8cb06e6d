// The metric catalogue (docs/metrics.md), generated from the collectors' declared descriptors.
// Dashboards and alert rules are generated from / checked against it; a test keeps the file current.

/** One family as the catalogue lists it (a MetricDesc, or one of prom-client's runtime families). */
export interface CatalogueMetric {
  readonly name: string;
  readonly kind: string;
  readonly help: string;
  readonly labels: readonly string[];
  readonly unit?: string;
}
import type { CollectorDef } from '../collectors/registry';

export interface CatalogueSection {
  title: string;
  description: string;
  defaultEnabled?: boolean;
  metrics: readonly CatalogueMetric[];
}

export function sectionsFor(defs: readonly CollectorDef[], exporterMetrics: readonly CatalogueMetric[]): CatalogueSection[] {
  return [
    { title: 'exporter', description: 'The exporter itself: build, per-collector scrape status, and its own process and Node.js runtime (CPU, memory, file descriptors, event-loop lag, V8 heap spaces, garbage collection, active handles) from the default metrics of prom-client, under the names the dashboards of prom-client users read.', metrics: exporterMetrics },
    ...defs.map((d) => ({ title: d.name, description: d.description, defaultEnabled: d.defaultEnabled, metrics: d.metrics })),
  ];
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderCatalogue(sections: readonly CatalogueSection[]): string {
  const seen = new Map<string, string>();
  const lines: string[] = [
    '# flowpath metric catalogue',
    '',
    'Generated from the code by `npm run catalogue` (`flowpath catalogue`); `test/unit/catalogue.test.ts` fails',
    'when this file is out of date. Grafana dashboards and Prometheus rules are checked against it.',
    '',
    '| | |',
    '|---|---|',
    `| families | ${sections.reduce((n, s) => n + s.metrics.length, 0)} |`,
    `| collectors | ${sections.length - 1} |`,
    '',
  ];
  for (const s of sections) {
    lines.push(`## ${s.title}`, '');
    lines.push(s.description + (s.defaultEnabled === undefined ? '' : s.defaultEnabled ? ' Enabled by default.' : ' Disabled by default.'));
    lines.push('', '| name | type | unit | labels | help |', '|---|---|---|---|---|');
    for (const m of s.metrics) {
      const prev = seen.get(m.name);
      if (prev !== undefined && prev !== s.title) throw new Error(`metric ${m.name} declared by both ${prev} and ${s.title}`);
      seen.set(m.name, s.title);
      lines.push(`| \`${m.name}\` | ${m.kind} | ${m.unit ?? ''} | ${m.labels.map((l) => `\`${l}\``).join(', ')} | ${cell(m.help)} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

/** Machine-readable form for generators (dashboards, rules). */
export function catalogueJson(sections: readonly CatalogueSection[]): object {
  return sections.map((s) => ({
    collector: s.title,
    metrics: s.metrics.map((m) => ({ name: m.name, type: m.kind, unit: m.unit ?? null, labels: m.labels, help: m.help })),
  }));
}
