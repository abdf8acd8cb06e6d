// `npm run bench` → `node dist/bench/run.js [section ...|all]`. Each section measures one thing and returns
// a JSON result (merged into bench/results/latest.json) and usually a markdown table. Adding a section is
// one entry in SECTIONS.
import { BenchSection, Log, writeResults } from './lib';
import { benchFlows } from './flows';
import { benchNode } from './node';
import { runDiagnosisBench } from './diagnosis';
import { benchRuntime } from './runtime';

const SECTIONS: BenchSection[] = [
  {
    name: 'flows',
    description: 'sock_diag dump+decode vs ss -tinH vs the raw dump, and /metrics, at 1k, 10k and 50k loopback connections; series per scrape; exporter RSS per size',
    run: (log) => benchFlows(log),
  },
  {
    name: 'node',
    description: 'node-level collectors vs prometheus-node-exporter, CPU per scrape',
    run: async (log) => ({ result: await benchNode({ log }) }),
  },
  {
    name: 'runtime',
    description: "what prom-client's default metrics (process_*/nodejs_*) add to a scrape, text and OpenMetrics (budget 1 ms)",
    run: (log) => benchRuntime(log),
  },
  {
    name: 'diagnosis',
    description: "diagnosis sampler cost after a warm-up, exporter V8 flags: idle exporter (no flows, target ≤ 0.2% of a core) and 10 watched flows at 20 Hz (target ≤ 2%), above a baseline measured over the same windows",
    run: async (log) => ({ result: await runDiagnosisBench({ log }) }),
  },
];

async function main(argv: string[]): Promise<number> {
  const wanted = argv.length === 0 || argv.includes('all') ? SECTIONS.map((s) => s.name) : argv;
  const unknown = wanted.filter((w) => !SECTIONS.some((s) => s.name === w));
  if (unknown.length) {
    process.stderr.write(`unknown bench section(s): ${unknown.join(', ')}; known: ${SECTIONS.map((s) => s.name).join(', ')}, all\n`);
    return 2;
  }
  const log: Log = (l) => process.stdout.write(l + '\n');
  const results: Record<string, unknown> = {};
  let failed = false;
  for (const s of SECTIONS.filter((x) => wanted.includes(x.name))) {
    log(`\n## ${s.name}: ${s.description}\n`);
    try {
      const r = await s.run(log);
      results[s.name] = r.result;
      if (r.markdown) log('\n' + r.markdown);
    } catch (e) {
      failed = true;
      results[s.name] = { error: (e as Error).message };
      log(`section ${s.name} failed: ${(e as Error).stack ?? e}`);
    }
  }
  log(`\nresults written to ${writeResults(results)}`);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
