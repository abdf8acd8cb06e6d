// The exporter's own process_* and nodejs_* families, from prom-client's default metrics: the names and
// types every prom-client user's dashboards read (nodejs_gc_duration_seconds histogram, event-loop lag,
// heap spaces, active handles and resources, process CPU/memory/fds). The collectors' families are
// rendered by the fast Emitter (src/core/metrics.ts); the exporter appends these to the same response.
//
// prom-client's Registry renders one format per registry and, for OpenMetrics, renames its counter
// objects in place, so one registry cannot serve both formats: there is one per format, created
// together at first use so that both count the same garbage collections. They are process-wide (the
// metrics describe this process), shared by every Exporter in it.

import * as client from 'prom-client';
import type { ExpositionFormat } from './core/metrics';

export interface RuntimeFamily {
  name: string;
  kind: string;
  help: string;
  labels: readonly string[];
  unit?: string;
}

interface Registries {
  text: client.Registry;
  openmetrics: client.Registry<client.OpenMetricsContentType>;
}
let registries: Registries | undefined;

/** The `kind` values of prom-client's nodejs_gc_duration_seconds (V8's collection types). */
const GC_KINDS = ['major', 'minor', 'incremental', 'weakcb'];

function runtimeRegistries(): Registries {
  if (!registries) {
    const text = new client.Registry();
    const openmetrics = new client.Registry<client.OpenMetricsContentType>();
    openmetrics.setContentType(client.openMetricsContentType); // fixed for the registry's life
    client.collectDefaultMetrics({ register: text });
    client.collectDefaultMetrics({ register: openmetrics });
    // The GC histogram's series would appear the first time each kind of collection runs (seconds or
    // minutes after start): new series on a steady exporter. Start them all at zero instead.
    for (const r of [text, openmetrics]) {
      const gc = r.getSingleMetric('nodejs_gc_duration_seconds') as client.Histogram<'kind'> | undefined;
      for (const kind of GC_KINDS) gc?.zero({ kind });
    }
    registries = { text, openmetrics };
  }
  return registries;
}

/** The runtime families in the given format; the OpenMetrics form ends with "# EOF". */
export function runtimeMetricsText(format: ExpositionFormat): Promise<string> {
  return runtimeRegistries()[format].metrics();
}

const UNITS = ['seconds', 'bytes'];

/** What the catalogue lists: every family prom-client's default metrics register, as the text format names them. */
export function runtimeFamilies(): RuntimeFamily[] {
  return runtimeRegistries()
    .text.getMetricsAsArray()
    .map((m) => {
      // Every prom-client metric object carries these; the typings only declare them on the classes.
      const { name, help, labelNames, type: kind } = m as unknown as { name: string; help: string; labelNames?: string[]; type: string };
      const base = name.replace(/_total$/, '');
      const unit = UNITS.find((u) => base.endsWith(`_${u}`));
      return { name, kind, help, labels: labelNames ?? [], unit };
    });
}

