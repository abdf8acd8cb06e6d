// "runtime" section of `npm run bench`: what prom-client's default metrics (the exporter's own
// process_*/nodejs_* families, src/runtime-metrics.ts) add to one scrape, in both formats, measured as
// CPU time of this process (process.cpuUsage) and wall time per call, interleaved, after warm-up. The
// reference is the scrape it is added to: the node-level collectors rendered by the Emitter, in the
// same process. Budget: under 1 ms per scrape.
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

export async function benchRuntime(log: Log, reps = 400, warmup = 50): Promise<{ result: unknown; markdown: string }> {
  const overrides: Record<string, boolean> = {};
  for (const d of ALL_COLLECTORS) overrides[`collector.${d.name}`] = NODE_COLLECTORS.includes(d.name);
  const exporter = new Exporter(Config.from(allFlags(), overrides), nullLogger);
  const methods: Record<string, () => Promise<unknown>> = {
    'prom-client default metrics, text': () => runtimeMetricsText('text'),
    'prom-client default metrics, OpenMetrics': () => runtimeMetricsText('openmetrics'),
    'node collectors, Emitter render, text': async () => (await exporter.registry.scrape()).render('text'),
    'node collectors, Emitter render, OpenMetrics': async () => (await exporter.registry.scrape()).render('openmetrics'),
  };
  const names = Object.keys(methods);
  const samples: Record<string, Cost[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < warmup + reps; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length];
      const c = await measure(methods[name]);
      if (round >= warmup) samples[name].push(c);
    }
  }
  await exporter.close();
  const result: Record<string, { cpu_ms_median: number; wall_ms_median: number }> = {};
  const rows: string[][] = [];
  for (const n of names) {
    const cpu = median(samples[n].map((s) => s.cpuMs));
    const wall = median(samples[n].map((s) => s.wallMs));
    result[n] = { cpu_ms_median: cpu, wall_ms_median: wall };
    rows.push([n, fmtMs(cpu), fmtMs(wall)]);
  }
  const added = result['prom-client default metrics, text'].cpu_ms_median;
  log(`runtime: prom-client default metrics add ${added.toFixed(3)} ms CPU per scrape (budget 1 ms), ${reps} scrapes each`);
  return {
    result: { reps, added_cpu_ms_per_scrape: added, within_budget: added < 1, methods: result },
    markdown: markdownTable(['per scrape', 'CPU ms (median)', 'wall ms (median)'], rows),
  };
}
