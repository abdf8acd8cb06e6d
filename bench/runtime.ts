// "runtime" section of `npm run bench`: what prom-client's default metrics (the exporter's own
// process_*/nodejs_* families, src/runtime-metrics.ts) add to one scrape, in both formats, measured as
// CPU time of this process (process.cpuUsage) and wall time per call, interleaved, after warm-up, with
// the event loop turning between calls as it does between scrapes. The reference is the scrape it is
// added to: the node-level collectors rendered by the Emitter, in the same process. The added cost is the
// scrape as the exporter serves it (collectors and runtime families together) minus the collectors' own
// scrape; budget: under 1 ms. Also measured in the same run, to show where the time goes:
//   - the runtime families rendered alone (a scrape of nothing else pays their cold start in full);
//   - prom-client's own collectDefaultMetrics and Registry.metrics() on a registry of its own, alone
//     (its string building, and the event-loop standard deviation);
//   - prom-client's own event-loop lag module alone (its collect: Node's delay histogram's mean, stddev
//     and percentiles), which the exporter replaces by its own without the standard deviation.
// Calls are 12 ms apart, so the 10 ms event-loop delay monitor has samples in every window, as it has
// between two real scrapes (a window without samples is cheaper: nothing to walk).
import * as client from 'prom-client';
import { Config } from '../src/core/flags';
import { nullLogger } from '../src/core/log';
import { ALL_COLLECTORS } from '../src/collectors';
import { Exporter, allFlags } from '../src/exporter';
import { runtimeMetricsText } from '../src/runtime-metrics';
import { Log, fmtMs, markdownTable, median, nowMs } from './lib';

/** Time between two calls: more than one tick of the 10 ms event-loop delay monitor. */
const GAP_MS = 12;
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

const FULL_TEXT = 'scrape as served: node collectors + runtime families, text';
const FULL_OM = 'scrape as served: node collectors + runtime families, OpenMetrics';
const REF_TEXT = 'node collectors alone, Emitter render, text';
const REF_OM = 'node collectors alone, Emitter render, OpenMetrics';
const ALONE_TEXT = 'runtime families alone, text';
const OLD_TEXT = "before: prom-client's collectDefaultMetrics + Registry.metrics(), alone, text";
const LAG = "prom-client's own event-loop lag module (with stddev), alone";

export async function benchRuntime(log: Log, reps = 200, warmup = 30): Promise<{ result: unknown; markdown: string }> {
  const overrides: Record<string, boolean> = {};
  for (const d of ALL_COLLECTORS) overrides[`collector.${d.name}`] = NODE_COLLECTORS.includes(d.name);
  const exporter = new Exporter(Config.from(allFlags(), overrides), nullLogger);
  await runtimeMetricsText('text'); // the exporter's registry first, as in the exporter
  const old = new client.Registry();
  client.collectDefaultMetrics({ register: old });
  const lag = old.getSingleMetric('nodejs_eventloop_lag_seconds') as unknown as client.Metric;
  const methods: Record<string, () => Promise<unknown>> = {
    [FULL_TEXT]: () => exporter.metricsText({ format: 'text' }),
    [FULL_OM]: () => exporter.metricsText({ format: 'openmetrics' }),
    [REF_TEXT]: async () => (await exporter.registry.scrape()).render('text'),
    [REF_OM]: async () => (await exporter.registry.scrape()).render('openmetrics'),
    [ALONE_TEXT]: () => runtimeMetricsText('text'),
    [OLD_TEXT]: () => old.metrics(),
    [LAG]: () => lag.get(),
  };
  const names = Object.keys(methods);
  const samples: Record<string, Cost[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < warmup + reps; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length];
      // let the loop turn (timers, the event-loop delay monitor, GC callbacks) as between two scrapes
      await new Promise((r) => setTimeout(r, GAP_MS));
      const c = await measure(methods[name]);
      if (round >= warmup) samples[name].push(c);
    }
  }
  await exporter.close();
  old.clear();
  const result: Record<string, { cpu_ms_median: number; wall_ms_median: number }> = {};
  const rows: string[][] = [];
  const refCpu = median(samples[REF_TEXT].map((s) => s.cpuMs));
  for (const n of names) {
    const cpu = median(samples[n].map((s) => s.cpuMs));
    const wall = median(samples[n].map((s) => s.wallMs));
    result[n] = { cpu_ms_median: cpu, wall_ms_median: wall };
    rows.push([n, fmtMs(cpu), fmtMs(wall), `${(cpu / refCpu).toFixed(2)}×`]);
  }
  // what the runtime families add to a scrape: the scrape as served minus the collectors' own, same run
  const added = result[FULL_TEXT].cpu_ms_median - refCpu;
  const addedOm = result[FULL_OM].cpu_ms_median - result[REF_OM].cpu_ms_median;
  const alone = result[ALONE_TEXT].cpu_ms_median;
  const before = result[OLD_TEXT].cpu_ms_median;
  log(
    `runtime: the process_*/nodejs_* families add ${added.toFixed(3)} ms CPU to a text scrape, ${addedOm.toFixed(3)} ms to an OpenMetrics one ` +
      `(budget 1 ms: ${added < 1 && addedOm < 1 ? 'met' : 'NOT met'}; ${(added / refCpu).toFixed(2)}× the node collectors' own scrape); ` +
      `${alone.toFixed(3)} ms rendered alone, against ${before.toFixed(3)} ms for prom-client's collectDefaultMetrics + Registry.metrics() alone; ` +
      `prom-client's own event-loop lag module ${result[LAG].cpu_ms_median.toFixed(3)} ms of that; ${reps} scrapes each, ${GAP_MS} ms apart`,
  );
  return {
    result: {
      reps,
      gap_ms: GAP_MS,
      added_cpu_ms_per_scrape: added,
      added_cpu_ms_per_openmetrics_scrape: addedOm,
      added_vs_node_collectors: added / refCpu,
      alone_cpu_ms_per_scrape: alone,
      before_cpu_ms_per_scrape: before,
      alone_vs_before: alone / before,
      within_budget: added < 1 && addedOm < 1,
      methods: result,
    },
    markdown: markdownTable(['per scrape', 'CPU ms (median)', 'wall ms (median)', 'CPU vs node collectors (text)'], rows),
  };
}
