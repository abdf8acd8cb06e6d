// "node" section of `npm run bench`: the cost of one scrape of flowpath's node-level collectors (qdisc,
// softirq, sysctl, netstat, node; then again with nic and irq when present) against Debian's
// prometheus-node-exporter (1.5.0) running the equivalent collectors, both on free 127.0.0.1 ports in
// the same run, scraped alternately so both see the same machine noise.
//
// Per scrape we measure the client-side latency of GET /metrics (wall) and the CPU the exporter process
// spent (sum of /proc/<pid>/task/*/schedstat run time, ns resolution, all threads). The headline ratio
// is flowpath / node_exporter on median CPU per scrape (goal <= 1.0); wall is reported too.
//
// node_exporter 1.5.0 equivalents: softnet (softnet_stat), cpu (/proc/stat per CPU), stat + stat.softirq
// (node-wide /proc/stat incl. softirq counts; 1.5.0 has no per-CPU softirqs collector), netstat (fields
// widened to the groups we export), sysctl (our default sysctl list), qdisc, uname (node identity), and
// for nic/irq: netdev, netclass, ethtool, interrupts. flowpath's ksoftirqd time has no equivalent.

import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import { ALL_COLLECTORS } from '../src/collectors';
import { DEFAULT_SYSCTLS } from '../src/collectors/sysctl';
import { readSysctl } from '../src/sources/procfs/sysctl';

export interface NodeBenchOptions {
  /** Measured scrapes per exporter (after warm-up). */
  scrapes?: number;
  warmup?: number;
  /** node_exporter binary. */
  nodeExporter?: string;
  log?: (line: string) => void;
}

export interface ExporterStats {
  name: string;
  collectors: string;
  samples: number;
  bytes: number;
  wallMs: { median: number; p90: number };
  cpuMs: { median: number; p90: number; mean: number };
}

export interface PairResult {
  label: string;
  flowpath: ExporterStats;
  nodeExporter: ExporterStats;
  /** flowpath / node_exporter, median CPU per scrape. */
  cpuRatio: number;
  /** flowpath / node_exporter, median wall time per scrape. */
  wallRatio: number;
}

export interface NodeBenchResult {
  skipped?: string;
  pairs: PairResult[];
}

/** Comparisons run, each flowpath collector set against its node_exporter equivalent. */
const PAIRS: Array<{ label: string; flowpath: string[]; nodeExporter: string[] }> = [
  {
    label: 'qdisc+softirq+sysctl+netstat+node',
    flowpath: ['qdisc', 'softirq', 'sysctl', 'netstat', 'node'],
    nodeExporter: ['softnet', 'cpu', 'stat', 'netstat', 'sysctl', 'qdisc', 'uname'],
  },
  {
    label: 'the same + nic+irq',
    flowpath: ['qdisc', 'softirq', 'sysctl', 'netstat', 'node', 'nic', 'irq'],
    nodeExporter: ['softnet', 'cpu', 'stat', 'netstat', 'sysctl', 'qdisc', 'uname', 'netdev', 'netclass', 'ethtool', 'interrupts'],
  },
];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** True if nothing accepts connections on 127.0.0.1:port. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(false);
    });
    c.once('error', () => resolve(true));
  });
}

// A fresh connection per scrape (agent: false), as Prometheus effectively sees it between scrape
// intervals, for both exporters alike.
function get(port: number, p = '/metrics'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false, timeout: 10000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`HTTP ${res.statusCode} from :${port}${p}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout on :${port}`)));
    req.on('error', reject);
  });
}

async function waitUp(port: number, child: ChildProcess, what: string): Promise<void> {
  const end = Date.now() + 20000;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    try {
      await get(port);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${what} did not answer on 127.0.0.1:${port}`);
}

/** CPU time of every thread of a process, in ns (schedstat field 1). */
function cpuNs(pid: number): number {
  let total = 0;
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'latin1').split(' ')[0]);
    } catch {
      /* thread exited */
    }
  }
  return total;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

interface Target {
  name: string;
  collectors: string;
  port: number;
  child: ChildProcess;
  wall: number[];
  cpu: number[];
  samples: number;
  bytes: number;
}

async function scrapeOnce(t: Target, record: boolean): Promise<void> {
  const c0 = cpuNs(t.child.pid!);
  const w0 = process.hrtime.bigint();
  const body = await get(t.port);
  const w1 = process.hrtime.bigint();
  // Let the exporter finish any post-response work (GC, socket bookkeeping) before reading its CPU.
  await new Promise((r) => setImmediate(r));
  const c1 = cpuNs(t.child.pid!);
  if (!record) return;
  t.wall.push(Number(w1 - w0) / 1e6);
  t.cpu.push((c1 - c0) / 1e6);
  t.samples = body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
  t.bytes = body.length;
}

function stats(t: Target): ExporterStats {
  return {
    name: t.name,
    collectors: t.collectors,
    samples: t.samples,
    bytes: t.bytes,
    wallMs: { median: quantile(t.wall, 0.5), p90: quantile(t.wall, 0.9) },
    cpuMs: { median: quantile(t.cpu, 0.5), p90: quantile(t.cpu, 0.9), mean: t.cpu.reduce((a, b) => a + b, 0) / t.cpu.length },
  };
}

export async function benchNode(opts: NodeBenchOptions = {}): Promise<NodeBenchResult> {
  const log = opts.log ?? ((l: string) => process.stdout.write(l + '\n'));
  const neBin = opts.nodeExporter ?? 'prometheus-node-exporter';
  const cli = path.join(__dirname, '../src/cli.js');
  if (!fs.existsSync(cli)) return { skipped: `${cli} missing (run npm run build)`, pairs: [] };
  const ver = spawnSync(neBin, ['--version'], { encoding: 'utf8' });
  if (ver.error || ver.status !== 0) return { skipped: `${neBin} not installed`, pairs: [] };
  const neVersion = ver.stdout.split('\n')[0].replace(/^node_exporter, /, '');
  const known = new Set(ALL_COLLECTORS.map((d) => d.name));
  const pairs: PairResult[] = [];
  const seen = new Set<string>();
  for (const p of PAIRS) {
    const fpCollectors = p.flowpath.filter((n) => known.has(n));
    const key = fpCollectors.join(',');
    if (seen.has(key)) continue; // nic/irq not registered yet: the second pair would repeat the first
    seen.add(key);
    const r = await runPair(p.label, fpCollectors, p.nodeExporter, cli, neBin, opts);
    log(`node [${r.label}]: ${opts.scrapes ?? 200} scrapes each, alternating; node_exporter ${neVersion}`);
    for (const s of [r.flowpath, r.nodeExporter]) {
      log(
        `  ${s.name.padEnd(14)} cpu/scrape median ${s.cpuMs.median.toFixed(2)} ms p90 ${s.cpuMs.p90.toFixed(2)} ms | wall median ${s.wallMs.median.toFixed(2)} ms p90 ${s.wallMs.p90.toFixed(2)} ms | ${s.samples} samples ${s.bytes} B | ${s.collectors}`,
      );
    }
    log(`  ratio flowpath/node_exporter: cpu ${r.cpuRatio.toFixed(2)}x, wall ${r.wallRatio.toFixed(2)}x (goal <= 1.0x)`);
    pairs.push(r);
  }
  return { pairs };
}

async function runPair(label: string, fpCollectors: string[], neCollectors: string[], cli: string, neBin: string, opts: NodeBenchOptions): Promise<PairResult> {
  const scrapes = opts.scrapes ?? 200;
  const warmup = opts.warmup ?? 20;
  const fpArgs = ALL_COLLECTORS.map((d) => (fpCollectors.includes(d.name) ? `--collector.${d.name}` : `--no-collector.${d.name}`));
  // node_exporter reports every device; make flowpath's per-device collectors do the same.
  if (fpCollectors.includes('nic') || fpCollectors.includes('qdisc')) fpArgs.push('--collector.nic.device-include=.*');
  // node_exporter: the same sysctls (numeric via include, strings via include-info) and the netstat
  // groups we export.
  const neArgs = ['--collector.disable-defaults', ...neCollectors.map((c) => `--collector.${c}`)];
  if (neCollectors.includes('stat')) neArgs.push('--collector.stat.softirq');
  if (neCollectors.includes('netstat')) neArgs.push('--collector.netstat.fields=^(Tcp|TcpExt|Ip|IpExt)_.*$');
  if (neCollectors.includes('sysctl')) {
    for (const n of DEFAULT_SYSCTLS) {
      const v = readSysctl('/proc', n);
      if (v) neArgs.push('numbers' in v ? `--collector.sysctl.include=${n}` : `--collector.sysctl.include-info=${n}`);
    }
  }

  const fpPort = await freePort();
  const nePort = await freePort();
  if (fpPort === nePort || !(await portIsFree(fpPort)) || !(await portIsFree(nePort))) throw new Error('could not find two free 127.0.0.1 ports');

  const children: ChildProcess[] = [];
  try {
    const fp = spawn(process.execPath, [cli, `--web.listen-address=127.0.0.1:${fpPort}`, '--log.level=warn', ...fpArgs], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(fp);
    const ne = spawn(neBin, [`--web.listen-address=127.0.0.1:${nePort}`, '--log.level=error', ...neArgs], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(ne);
    await waitUp(fpPort, fp, 'flowpath');
    await waitUp(nePort, ne, 'node_exporter');

    const targets: Target[] = [
      { name: 'flowpath', collectors: fpCollectors.join(','), port: fpPort, child: fp, wall: [], cpu: [], samples: 0, bytes: 0 },
      { name: 'node_exporter', collectors: neCollectors.join(','), port: nePort, child: ne, wall: [], cpu: [], samples: 0, bytes: 0 },
    ];
    for (let i = 0; i < warmup; i++) for (const t of targets) await scrapeOnce(t, false);
    for (let i = 0; i < scrapes; i++) {
      // alternate the order so neither always runs right after the other
      const order = i % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) await scrapeOnce(t, true);
    }
    const [f, n] = targets.map(stats);
    return { label, flowpath: f, nodeExporter: n, cpuRatio: f.cpuMs.median / n.cpuMs.median, wallRatio: f.wallMs.median / n.wallMs.median };
  } finally {
    for (const c of children) {
      if (c.exitCode === null) c.kill('SIGTERM');
    }
    await Promise.all(children.map((c) => (c.exitCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r())))));
  }
}

if (require.main === module) {
  benchNode().then(
    (r) => {
      if (r.skipped) process.stdout.write(`node: skipped (${r.skipped})\n`);
    },
    (e) => {
      process.stderr.write(`node bench failed: ${(e as Error).stack ?? e}\n`);
      process.exitCode = 1;
    },
  );
}
