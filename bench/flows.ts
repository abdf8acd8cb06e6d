// "flows" section of `npm run bench`: the cost of reading every TCP socket, at 1k, 10k and 50k idle loopback
// connections (2k / 20k / 100k sockets, held by dist/bench/holder.js in pairs of child processes), in one run:
//
//   ss        `ss -tinH` as a process whose output is read through a pipe (what any tool using ss does):
//             the reference
//   ss-null   the same with the output sent to /dev/null (ss alone; informational)
//   decode    (timed in a child process that does nothing else, dist/bench/dumper.js)
//             our sock_diag dump of every socket (both families, every state but TIME_WAIT, which
//             ss -t skips too; INFO + BBR + CONG + SKMEMINFO + SHUTDOWN)
//             with every field of every socket decoded: the inet_diag_msg header, all of struct tcp_info
//             (typed-array loop into a reused Float64Array), skmeminfo, BBR info, the CC name
//   select    the flows collector's per-scrape path before rendering: every socket read at 4 offsets
//             (state, tcp_info present, cookie, bytes acked), the 100 with most bytes acked since the
//             previous sample kept and decoded completely (lazy decoding)
//   floor     the same dump, messages counted but not decoded (what the kernel + netlink transport cost)
//   metrics   GET /metrics of an exporter child running the flows collector with every socket selected
//             (--flows.select=all) and the default cap (--flows.max=10); its series are counted
//   metrics-all  the same with every default collector enabled (informational: other collectors' cost;
//             measured in its own phase because the diagnosis collector samples in the background)
//
// Each method runs `reps` times interleaved after a warm-up; medians and ratios are reported, and the
// targets are checked at the largest size: decode <= 0.35x ss and <= 1.5x floor; metrics <= 0.35x ss;
// exporter RSS after 100 scrapes <= 150 MB (a fresh exporter child, VmRSS from /proc/<pid>/status). Per
// socket: /metrics time and the RSS each added socket costs between sizes (both should stay flat).

import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ALL_COLLECTORS } from '../src/collectors';
import { Log, fmtMs, fmtRatio, freePort, httpGet, interleave, markdownTable, median, quantile, rssMb, spawnReady, spawnWorker, waitForHttp } from './lib';

export interface FlowsBenchOptions {
  sizes?: number[];
  reps?: number;
  warmup?: number;
  rssScrapes?: number;
}

interface MethodStats {
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  samples: number;
}

export interface FlowsBenchSize {
  connections: number;
  sockets: number;
  metricsBytes: number;
  methods: Record<string, MethodStats>;
  ratios: Record<string, number>;
  /** RSS of the every-collector exporter after its timed scrapes (informational; the diagnosis sampler included). */
  rssAllCollectorsMb: number;
  /** Series in one /metrics body: the flows collector alone, and every default collector. */
  series: { flows: number; all: number };
  rss?: { scrapes: number; rssMb: number; hwmMb: number };
  /** The same with plain `node dist/src/cli.js`, without bin/flowpath's V8 flags (for comparison). */
  rssPlainNode?: { scrapes: number; rssMb: number; hwmMb: number };
  /** /metrics time per socket (µs) and RSS per socket added since the previous size (bytes). */
  perSocket: { metricsUs: number; rssBytes?: number };
}

export interface FlowsBenchResult {
  kernel: string;
  cpus: number;
  reps: number;
  sizes: FlowsBenchSize[];
  targets: Array<{ what: string; value: number; limit: number; ok: boolean }>;
}

const BENCH_DIR = __dirname; // dist/bench
const CLI = path.join(__dirname, '../src/cli.js');
const LAUNCHER = path.join(__dirname, '../../bin/flowpath');

/** `ss -tinH`, its output read through a pipe (toNull: sent to /dev/null). Resolves with the bytes read. */
function runSs(toNull: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const out = toNull ? fs.openSync('/dev/null', 'w') : 'pipe';
    const p = spawn('ss', ['-tinH'], { stdio: ['ignore', out, 'ignore'] });
    let bytes = 0;
    p.stdout?.on('data', (c: Buffer) => (bytes += c.length));
    p.on('error', reject);
    p.on('close', (code) => {
      if (typeof out === 'number') fs.closeSync(out);
      if (code === 0) resolve(bytes);
      else reject(new Error(`ss exited with ${code}`));
    });
  });
}

/** Connections per holder pair: each end is one descriptor, and the per-process limit may be 20000. */
const PER_PAIR = 15000;

/**
 * Hold n loopback connections: ceil(n / PER_PAIR) pairs of holder processes, each pair on a server port
 * of its own (so no pair needs more than PER_PAIR ephemeral ports or descriptors per process).
 */
async function holdConnections(n: number) {
  const holder = path.join(BENCH_DIR, 'holder.js');
  const sh = (args: string) => ['-c', `ulimit -n "$(ulimit -Hn)"; exec "${process.execPath}" "${holder}" ${args}`];
  const stops: Array<() => Promise<void>> = [];
  try {
    for (let left = n; left > 0; left -= PER_PAIR) {
      const k = Math.min(PER_PAIR, left);
      const server = await spawnReady<{ port: number }>('bash', sh('server'));
      stops.push(server.stop);
      const client = await spawnReady<{ open: number }>('bash', sh(`client ${server.info.port} ${k}`), 300_000);
      stops.push(client.stop);
      if (client.info.open !== k) throw new Error(`holder opened ${client.info.open} of ${k} connections`);
    }
  } catch (e) {
    for (const stop of stops.reverse()) await stop();
    throw e;
  }
  return {
    stop: async () => {
      for (const stop of stops.reverse()) await stop();
    },
  };
}

/** Start the exporter as it is shipped (bin/flowpath, which execs node with its V8 flags), or plain node. */
async function startExporter(extra: string[], plainNode = false) {
  const port = await freePort();
  const args = [`--web.listen-address=127.0.0.1:${port}`, '--flows.select=all', '--log.level=error', ...extra];
  const child = plainNode
    ? spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(LAUNCHER, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/healthz`);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}: ${err}`);
  }
  return {
    url,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null) return r();
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}

const onlyFlows = () => ALL_COLLECTORS.filter((d) => d.name !== 'flows').map((d) => `--no-collector.${d.name}`);

const stats = (xs: number[]): MethodStats => ({ medianMs: median(xs), p10Ms: quantile(xs, 0.1), p90Ms: quantile(xs, 0.9), samples: xs.length });

export async function benchFlows(log: Log, opts: FlowsBenchOptions = {}): Promise<{ result: FlowsBenchResult; markdown: string }> {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} missing: run npm run build`);
  const sizes = opts.sizes ?? [1000, 10000, 50000];
  const reps = opts.reps ?? 15;
  const warmup = opts.warmup ?? 3;
  const rssScrapes = opts.rssScrapes ?? 100;
  const dumper = await spawnWorker(process.execPath, [path.join(BENCH_DIR, 'dumper.js')]);
  const inWorker = async (cmd: string) => {
    const r = await dumper.ask(cmd);
    lastCount = r.sockets as number;
    return r.ms as number;
  };
  let lastCount = 0;

  const results: FlowsBenchSize[] = [];
  try {
    for (const n of sizes) {
      log(`flows: opening ${n} loopback connections ...`);
      const held = await holdConnections(n);
      const exp = await startExporter(onlyFlows());
      try {
        await inWorker('floor');
        const sockets = lastCount;
        let metricsBytes = 0;
        log(`flows: ${sockets} sockets in the netns; measuring ${reps} interleaved rounds after ${warmup} warm-up rounds`);
        const times = await interleave(
          {
            ss: async () => void (await runSs(false)),
            'ss-null': async () => void (await runSs(true)),
            decode: () => inWorker('decode'),
            select: () => inWorker('select'),
            floor: () => inWorker('floor'),
            metrics: async () => {
              const r = await httpGet(`${exp.url}/metrics`);
              if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
              metricsBytes = r.bytes;
            },
          },
          reps,
          warmup,
        );
        // Every default collector (informational), measured on its own afterwards: the diagnosis
        // collector samples in the background and would disturb the measurements above.
        const expAll = await startExporter([]);
        let allRss = NaN;
        try {
          Object.assign(
            times,
            await interleave(
              {
                'metrics-all': async () => {
                  const r = await httpGet(`${expAll.url}/metrics`);
                  if (r.status !== 200) throw new Error(`/metrics (all collectors) answered ${r.status}`);
                },
              },
              reps,
              warmup,
            ),
          );
          allRss = rssMb(expAll.pid).rss;
        } finally {
          await expAll.stop();
        }
        const countSeries = async (url: string) =>
          (await httpGet(`${url}/metrics`, 30_000, true)).body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
        const series = { flows: await countSeries(exp.url), all: 0 };
        const expCount = await startExporter([]);
        try {
          await httpGet(`${expCount.url}/metrics`); // baseline scrape
          series.all = await countSeries(expCount.url);
        } finally {
          await expCount.stop();
        }
        const methods = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, stats(v)]));
        const m = (k: string) => methods[k].medianMs;
        const size: FlowsBenchSize = {
          connections: n,
          sockets,
          metricsBytes,
          series,
          rssAllCollectorsMb: allRss,
          perSocket: { metricsUs: (methods.metrics.medianMs * 1000) / sockets },
          methods,
          ratios: {
            'decode/ss': m('decode') / m('ss'),
            'decode/ss-null': m('decode') / m('ss-null'),
            'decode/floor': m('decode') / m('floor'),
            'select/ss': m('select') / m('ss'),
            'select/floor': m('select') / m('floor'),
            'metrics/ss': m('metrics') / m('ss'),
            'metrics/ss-null': m('metrics') / m('ss-null'),
            'metrics-all/ss': m('metrics-all') / m('ss'),
          },
        };
        {
          // RSS of a fresh exporter after `rssScrapes` back-to-back scrapes, at every size: as bin/flowpath
          // runs it, and (informational, largest size) as plain `node cli.js`.
          const rssAfter = async (plainNode: boolean) => {
            const fresh = await startExporter(onlyFlows(), plainNode);
            try {
              for (let i = 0; i < rssScrapes; i++) await httpGet(`${fresh.url}/metrics`);
              const r = rssMb(fresh.pid);
              return { scrapes: rssScrapes, rssMb: r.rss, hwmMb: r.hwm };
            } finally {
              await fresh.stop();
            }
          };
          size.rss = await rssAfter(false);
          const prev = results[results.length - 1];
          if (prev?.rss) size.perSocket.rssBytes = ((size.rss.rssMb - prev.rss.rssMb) * 1048576) / (sockets - prev.sockets);
          if (n === Math.max(...sizes)) size.rssPlainNode = await rssAfter(true);
        }
        results.push(size);
        log(
          `flows: ${n} connections: ss ${fmtMs(m('ss'))} ms, decode ${fmtMs(m('decode'))} ms, floor ${fmtMs(m('floor'))} ms, ` +
            `metrics ${fmtMs(m('metrics'))} ms (${size.perSocket.metricsUs.toFixed(2)} µs/socket), metrics-all ${fmtMs(m('metrics-all'))} ms, ` +
            `series ${series.flows} (flows) / ${series.all} (all collectors), all-collectors RSS ${allRss.toFixed(1)} MB` +
            (size.rss ? `, RSS after ${rssScrapes} scrapes ${size.rss.rssMb.toFixed(1)} MB` : '') +
            (size.perSocket.rssBytes !== undefined ? ` (+${size.perSocket.rssBytes.toFixed(0)} B/socket since the previous size)` : '') +
            (size.rssPlainNode ? ` (${size.rssPlainNode.rssMb.toFixed(1)} MB as plain node)` : ''),
        );
      } finally {
        await exp.stop();
        await held.stop();
      }
    }
  } finally {
    await dumper.stop();
  }

  const big = results[results.length - 1];
  const targets = [
    { what: `decode (every field of every socket) / ss at ${big.connections}`, value: big.ratios['decode/ss'], limit: 0.35 },
    { what: `decode (every field of every socket) / floor at ${big.connections}`, value: big.ratios['decode/floor'], limit: 1.5 },
    { what: `select (lazy: what the collector decodes) / ss at ${big.connections}`, value: big.ratios['select/ss'], limit: 0.35 },
    { what: `select (lazy: what the collector decodes) / floor at ${big.connections}`, value: big.ratios['select/floor'], limit: 1.5 },
    { what: `/metrics / ss at ${big.connections}`, value: big.ratios['metrics/ss'], limit: 0.35 },
    ...(big.rss ? [{ what: `exporter RSS after ${big.rss.scrapes} scrapes at ${big.connections} (MB)`, value: big.rss.rssMb, limit: 150 }] : []),
  ].map((t) => ({ ...t, ok: t.value <= t.limit }));

  const rows = results.map((r) => {
    const m = (k: string) => fmtMs(r.methods[k].medianMs);
    return [
      `${r.connections} (${r.sockets} sockets)`,
      m('ss'),
      m('ss-null'),
      m('decode'),
      m('select'),
      m('floor'),
      m('metrics'),
      m('metrics-all'),
      fmtRatio(r.ratios['decode/ss']),
      fmtRatio(r.ratios['decode/floor']),
      fmtRatio(r.ratios['select/ss']),
      fmtRatio(r.ratios['select/floor']),
      fmtRatio(r.ratios['metrics/ss']),
      r.rss ? `${r.rss.rssMb.toFixed(0)} MB${r.rssPlainNode ? ` (${r.rssPlainNode.rssMb.toFixed(0)} MB as plain node)` : ''}` : '–',
      r.perSocket.metricsUs.toFixed(2),
      r.perSocket.rssBytes === undefined ? '–' : r.perSocket.rssBytes.toFixed(0),
      `${r.series.flows} / ${r.series.all}`,
    ];
  });
  const markdown =
    markdownTable(
      ['connections', 'ss -tinH ms', 'ss -tinH >/dev/null ms', 'decode ms', 'select ms', 'floor ms', '/metrics ms', '/metrics all collectors ms', 'decode/ss (≤0.35)', 'decode/floor (≤1.5)', 'select/ss', 'select/floor', '/metrics/ss (≤0.35)', `RSS after ${rssScrapes} scrapes (≤150 MB)`, '/metrics µs per socket', 'RSS bytes per added socket', 'series: flows / all collectors'],
      rows,
    ) +
    '\n\n' +
    targets.map((t) => `- ${t.ok ? 'PASS' : 'FAIL'} ${t.what}: ${t.value.toFixed(2)} (limit ${t.limit})`).join('\n');
  const result: FlowsBenchResult = { kernel: fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), cpus: (await import('os')).cpus().length, reps, sizes: results, targets };
  return { result, markdown };
}
