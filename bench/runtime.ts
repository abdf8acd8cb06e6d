// "runtime" section of `npm run bench`: what prom-client's default metrics (the exporter's own
// process_*/nodejs_* families, src/runtime-metrics.ts) add to one scrape, in both formats, measured as
// CPU time of this process (process.cpuUsage) and wall time per call, interleaved, after warm-up, with
// the event loop turning between calls as it does between scrapes. The reference is the scrape it is
// added to: the node-level collectors rendered by the Emitter, in the same process. Budget: under 1 ms
// per scrape. Also measured in the same run, to show where the time goes:
//   - prom-client's own Registry.metrics() on registries of their own (one per format), which is how the
//     exporter rendered these families before (its string building, and a second set of monitors);
//   - the event-loop lag gauges alone (prom-client's collect: Node's delay histogram's mean, stddev and
//     percentiles, which walk the histogram's buckets).
import * as client from 'prom-client';
import { Config } from '../src/core/flags';
import { nullLogger } from '../src/core/log';
import { ALL_COLLECTORS } from '../src/collectors';
import { Exporter, allFlags } from '../src/exporter';
import { runtimeMetricsText } from '../src/runtime-metrics';
import { Log, fmtMs, markdownTable, median, nowMs } from './lib';

const NODE_COLLECTORS = ['qdisc', 'softirq', 'sysctl', 'netstat', 'node'];

interface Cost {
  cpuMs: number;
  wallMs: number;
}

async function measure(fn: () => Promise<unknown>): Promise<Cost> {
  const c0 = process.cpuUsage();
  const t0 = nowMs();
  await fn();
  const c = process.cpuUsage(c0);
  return { cpuMs: (c.user + c.system) / 1000, wallMs: nowMs() - t0 };
}

const ADDED_TEXT = 'prom-client default metrics, text';
const ADDED_OM = 'prom-client default metrics, OpenMetrics';
const REF_TEXT = 'node collectors, Emitter render, text';
const REF_OM = 'node collectors, Emitter render, OpenMetrics';
const OLD_TEXT = 'before: Registry.metrics() of a registry per format, text';
const OLD_OM = 'before: Registry.metrics() of a registry per format, OpenMetrics';
const LAG = 'of which: event-loop lag gauges (prom-client collect)';

export async function benchRuntime(log: Log, reps = 400, warmup = 50): Promise<{ result: unknown; markdown: string }> {
  const overrides: Record<string, boolean> = {};
  for (const d of ALL_COLLECTORS) overrides[`collector.${d.name}`] = NODE_COLLECTORS.includes(d.name);
  const exporter = new Exporter(Config.from(allFlags(), overrides), nullLogger);
  await runtimeMetricsText('text'); // the exporter's registry first, as in the exporter
  const oldText = new client.Registry();
  const oldOm = new client.Registry<client.OpenMetricsContentType>();
  oldOm.setContentType(client.openMetricsContentType);
  client.collectDefaultMetrics({ register: oldText });
  client.collectDefaultMetrics({ register: oldOm });
  const lag = oldText.getSingleMetric('nodejs_eventloop_lag_seconds') as unknown as client.Metric;
  const methods: Record<string, () => Promise<unknown>> = {
    [ADDED_TEXT]: () => runtimeMetricsText('text'),
    [ADDED_OM]: () => runtimeMetricsText('openmetrics'),
    [REF_TEXT]: async () => (await exporter.registry.scrape()).render('text'),
    [REF_OM]: async () => (await exporter.registry.scrape()).render('openmetrics'),
    [OLD_TEXT]: () => oldText.metrics(),
    [OLD_OM]: () => oldOm.metrics(),
    [LAG]: () => lag.get(),
  };
  const names = Object.keys(methods);
  const samples: Record<string, Cost[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < warmup + reps; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length];
      // let the loop turn (timers, the event-loop delay monitor, GC callbacks) as between two scrapes
      await new Promise((r) => setImmediate(r));
      const c = await measure(methods[name]);
      if (round >= warmup) samples[name].push(c);
    }
  }
  await exporter.close();
  oldText.clear();
  oldOm.clear();
  const result: Record<string, { cpu_ms_median: number; wall_ms_median: number }> = {};
  const rows: string[][] = [];
  const refCpu = median(samples[REF_TEXT].map((s) => s.cpuMs));
  for (const n of names) {
    const cpu = median(samples[n].map((s) => s.cpuMs));
    const wall = median(samples[n].map((s) => s.wallMs));
    result[n] = { cpu_ms_median: cpu, wall_ms_median: wall };
    rows.push([n, fmtMs(cpu), fmtMs(wall), `${(cpu / refCpu).toFixed(2)}×`]);
  }
  const added = result[ADDED_TEXT].cpu_ms_median;
  const before = result[OLD_TEXT].cpu_ms_median;
  log(
    `runtime: prom-client default metrics add ${added.toFixed(3)} ms CPU per text scrape (budget 1 ms; ${(added / refCpu).toFixed(2)}× the node collectors' own scrape), ` +
      `${before.toFixed(3)} ms the way they were rendered before; event-loop lag gauges ${result[LAG].cpu_ms_median.toFixed(3)} ms; ${reps} scrapes each`,
  );
  return {
    result: {
      reps,
      added_cpu_ms_per_scrape: added,
      added_vs_node_collectors: added / refCpu,
      before_cpu_ms_per_scrape: before,
      added_vs_before: added / before,
      within_budget: added < 1,
      methods: result,
    },
    markdown: markdownTable(['per scrape', 'CPU ms (median)', 'wall ms (median)', 'CPU vs node collectors (text)'], rows),
  };
}
