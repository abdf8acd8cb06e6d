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
  /** Where both exporters ran: "this namespace" or the private multi-queue namespace. */
  where: string;
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
const PAIRS: Array<{ label: string; flowpath: string[]; nodeExporter: string[]; multiQueue?: boolean }> = [
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
  // A real 25G NIC has tens of queues, and flowpath reads per-queue files (BQL, TX timeouts, RPS, XPS)
  // that node_exporter does not: the same comparison in a private namespace holding a veth pair with
  // MQ_QUEUES TX and RX queues per end (root only; skipped otherwise).
  {
    label: 'the same + nic+irq, 16 TX/RX queues per device',
    flowpath: ['qdisc', 'softirq', 'sysctl', 'netstat', 'node', 'nic', 'irq'],
    nodeExporter: ['softnet', 'cpu', 'stat', 'netstat', 'sysctl', 'qdisc', 'uname', 'netdev', 'netclass', 'ethtool', 'interrupts'],
    multiQueue: true,
  },
];
const MQ_QUEUES = 16;

/**
 * Where the exporters of a pair run. The multi-queue place is a private namespace with a veth pair of
 * MQ_QUEUES queues per end, reached from here over a second veth pair (10.231.79.1 ↔ .2); `ip netns
 * exec` keeps the pid (it execs the exporter), so /proc/<pid> CPU accounting is unchanged.
 */
interface Place {
  name: string;
  host: string;
  wrap: string[];
  /** Sysctls that exist there (some are global and absent from a child namespace's /proc/sys/net). */
  sysctlExists(name: string): boolean;
  close(): void;
}

function ipCmd(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
}

function multiQueuePlace(): Place | string {
  if (process.getuid?.() !== 0) return 'needs root (network namespace)';
  if (spawnSync('ip', ['-V']).status !== 0) return 'ip (iproute2) not installed';
  const ns = `fpbench${process.pid}`;
  const hostIf = `fpbh${process.pid % 100000}`;
  const close = () => {
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    spawnSync('ip', ['link', 'del', hostIf], { stdio: 'ignore' });
  };
  try {
    ipCmd('netns', 'add', ns);
    ipCmd('-n', ns, 'link', 'set', 'lo', 'up');
    const q = String(MQ_QUEUES);
    ipCmd('-n', ns, 'link', 'add', 'mq0', 'numtxqueues', q, 'numrxqueues', q, 'type', 'veth', 'peer', 'name', 'mq1', 'numtxqueues', q, 'numrxqueues', q);
    ipCmd('-n', ns, 'link', 'set', 'mq0', 'up');
    ipCmd('-n', ns, 'link', 'set', 'mq1', 'up');
    ipCmd('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'access', 'netns', ns);
    ipCmd('addr', 'add', '10.231.79.1/30', 'dev', hostIf);
    ipCmd('-n', ns, 'addr', 'add', '10.231.79.2/30', 'dev', 'access');
    ipCmd('link', 'set', hostIf, 'up');
    ipCmd('-n', ns, 'link', 'set', 'access', 'up');
  } catch (e) {
    close();
    return (e as Error).message;
  }
  return {
    name: `namespace ${ns}: lo, access, mq0/mq1 (${MQ_QUEUES} queues each)`,
    host: '10.231.79.2',
    wrap: ['ip', 'netns', 'exec', ns],
    sysctlExists: (n) => spawnSync('ip', ['netns', 'exec', ns, 'test', '-e', `/proc/sys/${n.replace(/\./g, '/')}`]).status === 0,
    close,
  };
}

const HERE: Place = { name: 'this namespace', host: '127.0.0.1', wrap: [], sysctlExists: () => true, close: () => undefined };

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
function get(host: string, port: number, p = '/metrics'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: p, agent: false, timeout: 10000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`HTTP ${res.statusCode} from :${port}${p}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout on :${port}`)));
    req.on('error', reject);
  });
}

async function waitUp(host: string, port: number, child: ChildProcess, what: string): Promise<void> {
  const end = Date.now() + 20000;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    try {
      await get(host, port);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${what} did not answer on ${host}:${port}`);
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
  host: string;
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
  const body = await get(t.host, t.port);
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
    const key = `${fpCollectors.join(',')}${p.multiQueue ? '/mq' : ''}`;
    if (seen.has(key)) continue; // nic/irq not registered yet: the second pair would repeat the first
    seen.add(key);
    const place = p.multiQueue ? multiQueuePlace() : HERE;
    if (typeof place === 'string') {
      log(`node [${p.label}]: skipped (${place})`);
      continue;
    }
    let r: PairResult;
    try {
      r = await runPair(p.label, place, fpCollectors, p.nodeExporter, cli, neBin, opts);
    } finally {
      place.close();
    }
    log(`node [${r.label}]: ${opts.scrapes ?? 200} scrapes each, alternating, in ${r.where}; node_exporter ${neVersion}`);
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

async function runPair(label: string, place: Place, fpCollectors: string[], neCollectors: string[], cli: string, neBin: string, opts: NodeBenchOptions): Promise<PairResult> {
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
      const v = place.sysctlExists(n) ? readSysctl('/proc', n) : undefined;
      if (v) neArgs.push('numbers' in v ? `--collector.sysctl.include=${n}` : `--collector.sysctl.include-info=${n}`);
    }
  }

  const fpPort = await freePort();
  const nePort = await freePort();
  if (fpPort === nePort || !(await portIsFree(fpPort)) || !(await portIsFree(nePort))) throw new Error('could not find two free 127.0.0.1 ports');

  const children: ChildProcess[] = [];
  try {
    const run = (cmd: string, args: string[]) =>
      place.wrap.length ? spawn(place.wrap[0], [...place.wrap.slice(1), cmd, ...args], { stdio: ['ignore', 'ignore', 'inherit'] }) : spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    const { host } = place;
    const fp = run(process.execPath, [cli, `--web.listen-address=${host}:${fpPort}`, '--log.level=warn', ...fpArgs]);
    children.push(fp);
    const ne = run(neBin, [`--web.listen-address=${host}:${nePort}`, '--log.level=error', ...neArgs]);
    children.push(ne);
    await waitUp(host, fpPort, fp, 'flowpath');
    await waitUp(host, nePort, ne, 'node_exporter');

    const targets: Target[] = [
      { name: 'flowpath', host, collectors: fpCollectors.join(','), port: fpPort, child: fp, wall: [], cpu: [], samples: 0, bytes: 0 },
      { name: 'node_exporter', host, collectors: neCollectors.join(','), port: nePort, child: ne, wall: [], cpu: [], samples: 0, bytes: 0 },
    ];
    for (let i = 0; i < warmup; i++) for (const t of targets) await scrapeOnce(t, false);
    for (let i = 0; i < scrapes; i++) {
      // alternate the order so neither always runs right after the other
      const order = i % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) await scrapeOnce(t, true);
    }
    const [f, n] = targets.map(stats);
    return { label, where: place.name, flowpath: f, nodeExporter: n, cpuRatio: f.cpuMs.median / n.cpuMs.median, wallRatio: f.wallMs.median / n.wallMs.median };
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
