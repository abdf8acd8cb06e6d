// The exporter's own process_* and nodejs_* families, from prom-client's default metrics: the names and
// types every prom-client user's dashboards read (nodejs_gc_duration_seconds histogram, event-loop lag,
// heap spaces, active handles and resources, process CPU/memory/fds). The collectors' families are
// rendered by the fast Emitter (src/core/metrics.ts); the exporter appends these to the same response.
//
// One prom-client Registry holds the default metrics (one event-loop delay monitor, one GC observer);
// its values are rendered here in either format. prom-client's own Registry.metrics() renders one format
// per registry (for OpenMetrics it renames its counter objects in place), which took a second registry
// with a second set of monitors, and its string building cost more than the rendering below
// (`npm run bench runtime`; README, Benchmark). The registry is process-wide (the metrics describe this
// process), shared by every Exporter in it.

import * as client from 'prom-client';
import { ExpositionFormat, escapeHelp, escapeHelpOpenMetrics, escapeLabel, formatValue } from './core/metrics';

export interface RuntimeFamily {
  name: string;
  kind: string;
  help: string;
  labels: readonly string[];
  unit?: string;
}

let registry: client.Registry | undefined;

/** The `kind` values of prom-client's nodejs_gc_duration_seconds (V8's collection types). */
const GC_KINDS = ['major', 'minor', 'incremental', 'weakcb'];

function runtimeRegistry(): client.Registry {
  if (!registry) {
    const r = new client.Registry();
    client.collectDefaultMetrics({ register: r });
    // The GC histogram's series would appear the first time each kind of collection runs (seconds or
    // minutes after start): new series on a steady exporter. Start them all at zero instead.
    const gc = r.getSingleMetric('nodejs_gc_duration_seconds') as client.Histogram<'kind'> | undefined;
    for (const kind of GC_KINDS) gc?.zero({ kind });
    registry = r;
  }
  return registry;
}

const UNITS = ['seconds', 'bytes'];
const unitOf = (name: string) => UNITS.find((u) => name.replace(/_total$/, '').endsWith(`_${u}`));

/** One family as prom-client's metric objects report it (`get()`). */
type Values = Awaited<ReturnType<client.Metric['get']>>;

/**
 * The runtime families in the given format, as Registry.metrics() would write them (same names, HELP,
 * TYPE, label order and values; no blank lines between families). In OpenMetrics a counter family is
 * named without _total (its samples keep it), HELP escapes double quotes, "# UNIT" is given when the
 * family name ends in seconds or bytes, and the text ends with "# EOF".
 */
export function renderRuntime(families: readonly Values[], format: ExpositionFormat): string {
  const om = format === 'openmetrics';
  let text = '';
  for (const m of families) {
    const counter = String(m.type) === 'counter';
    const family = om && counter ? m.name.replace(/_total$/, '') : m.name;
    text += `# HELP ${family} ${om ? escapeHelpOpenMetrics(m.help) : escapeHelp(m.help)}\n# TYPE ${family} ${m.type}\n`;
    const unit = om ? unitOf(family) : undefined;
    if (unit !== undefined && family.endsWith(`_${unit}`)) text += `# UNIT ${family} ${unit}\n`;
    for (const v of m.values) {
      const base = (v as { metricName?: string }).metricName ?? m.name;
      let labels = '';
      for (const k in v.labels) {
        const lv = v.labels[k];
        labels += `${labels === '' ? '{' : ','}${k}="${typeof lv === 'string' ? escapeLabel(lv) : String(lv)}"`;
      }
      if (labels !== '') labels += '}';
      text += `${om && counter ? `${base.replace(/_total$/, '')}_total` : base}${labels} ${formatValue(v.value)}\n`;
    }
  }
  return om ? text + '# EOF\n' : text;
}

/** The runtime families in the given format; the OpenMetrics form ends with "# EOF". */
export async function runtimeMetricsText(format: ExpositionFormat): Promise<string> {
  const metrics = runtimeRegistry().getMetricsAsArray() as unknown as client.Metric[];
  return renderRuntime(await Promise.all(metrics.map((m) => m.get())), format);
}

/** What the catalogue lists: every family prom-client's default metrics register, as the text format names them. */
export function runtimeFamilies(): RuntimeFamily[] {
  return runtimeRegistry()
    .getMetricsAsArray()
    .map((m) => {
      // Every prom-client metric object carries these; the typings only declare them on the classes.
      const { name, help, labelNames, type: kind } = m as unknown as { name: string; help: string; labelNames?: string[]; type: string };
      return { name, kind, help, labels: labelNames ?? [], unit: unitOf(name) };
    });
}
