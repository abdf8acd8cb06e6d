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
//
// The event-loop lag family is registered here rather than by prom-client's module, under the same names,
// HELP and meaning (one delay monitor at 10 ms resolution, statistics of the window since the previous
// scrape), with one family left out: nodejs_eventloop_lag_stddev_seconds. Node computes that standard
// deviation by stepping through every bucket of the delay histogram up to its largest value (about 13,000
// buckets for the ~10 ms values the monitor records), which measured 0.3-1 ms per scrape, more than all
// other runtime families together; the spread is in the p50/p90/p99 and min/max gauges.

import { monitorEventLoopDelay } from 'perf_hooks';
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

/** prom-client's default metric module left out (registerEventLoopLag stands in for it). */
const OWN_EVENT_LOOP_LAG = 'eventLoopLag';
/** The family of prom-client's event-loop module that is not exported (see the head of this file). */
export const LEFT_OUT_FAMILIES = ['nodejs_eventloop_lag_stddev_seconds'];
/** The delay monitor's sampling interval: prom-client's default (its values include it, ~10 ms at rest). */
const EVENT_LOOP_RESOLUTION_MS = 10;

/** A default metric module of prom-client: registers its families into the registry given. */
type DefaultMetric = (registry: client.Registry, config: object) => void;

/**
 * prom-client's event-loop families but the standard deviation. nodejs_eventloop_lag_seconds is the delay
 * of a setImmediate scheduled at the previous scrape, as in prom-client. The histogram statistics cover
 * the window since the last scrape that found samples in it: a scrape less than one monitor interval
 * after another (two Prometheus servers at once) finds none and repeats the last window's values rather
 * than reporting an empty window; before the first such window the statistics are NaN.
 */
function registerEventLoopLag(r: client.Registry): void {
  const h = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
  h.enable();
  // registered first: its collect sets the whole family, and a scrape reads the families in registration order
  const lag: client.Gauge = new client.Gauge({
    name: 'nodejs_eventloop_lag_seconds',
    help: 'Lag of event loop in seconds.',
    registers: [r],
    collect() {
      const start = process.hrtime.bigint();
      setImmediate(() => lag.set(Number(process.hrtime.bigint() - start) / 1e9));
      if (h.count === 0) return;
      min.set(h.min / 1e9);
      max.set(h.max / 1e9);
      mean.set(h.mean / 1e9);
      p50.set(h.percentile(50) / 1e9);
      p90.set(h.percentile(90) / 1e9);
      p99.set(h.percentile(99) / 1e9);
      h.reset();
    },
  });
  const gauge = (suffix: string, help: string) => {
    const g = new client.Gauge({ name: `nodejs_eventloop_lag_${suffix}seconds`, help, registers: [r] });
    g.set(NaN); // no window with samples yet (a scrape within 10 ms of the start)
    return g;
  };
  const min = gauge('min_', 'The minimum recorded event loop delay.');
  const max = gauge('max_', 'The maximum recorded event loop delay.');
  const mean = gauge('mean_', 'The mean of the recorded event loop delays.');
  const p50 = gauge('p50_', 'The 50th percentile of the recorded event loop delays.');
  const p90 = gauge('p90_', 'The 90th percentile of the recorded event loop delays.');
  const p99 = gauge('p99_', 'The 99th percentile of the recorded event loop delays.');
  lag.set(NaN); // set by the setImmediate of the first scrape
}

function runtimeRegistry(): client.Registry {
  if (!registry) {
    const r = new client.Registry();
    for (const name of client.collectDefaultMetrics.metricsList) {
      if (name === OWN_EVENT_LOOP_LAG) {
        registerEventLoopLag(r);
        continue;
      }
      // prom-client's own modules, as collectDefaultMetrics calls them (version pinned in package.json)
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require(`prom-client/lib/metrics/${name}`) as DefaultMetric)(r, {});
    }
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
 * HELP, TYPE (and in OpenMetrics UNIT) lines of a family, which never change: built once per family name
 * and format (names are unique in the process-wide registry).
 */
const headers = new Map<string, string>();
function header(m: Values, om: boolean, counter: boolean): string {
  const key = `${om ? 'o' : 't'}${m.name}`;
  let h = headers.get(key);
  if (h === undefined) {
    const family = om && counter ? m.name.replace(/_total$/, '') : m.name;
    h = `# HELP ${family} ${om ? escapeHelpOpenMetrics(m.help) : escapeHelp(m.help)}\n# TYPE ${family} ${m.type}\n`;
    const unit = om ? unitOf(family) : undefined;
    if (unit !== undefined && family.endsWith(`_${unit}`)) h += `# UNIT ${family} ${unit}\n`;
    headers.set(key, h);
  }
  return h;
}

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
    text += header(m, om, counter);
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

/** What the catalogue lists: every runtime family registered (prom-client's default set but LEFT_OUT_FAMILIES), as the text format names them. */
export function runtimeFamilies(): RuntimeFamily[] {
  return runtimeRegistry()
    .getMetricsAsArray()
    .map((m) => {
      // Every prom-client metric object carries these; the typings only declare them on the classes.
      const { name, help, labelNames, type: kind } = m as unknown as { name: string; help: string; labelNames?: string[]; type: string };
      return { name, kind, help, labels: labelNames ?? [], unit: unitOf(name) };
    });
}
