// Driver-private NIC counters (`ethtool -S DEV`), docs/kernel-sources.md §5.5.
//
// The values are only available through the SIOCETHTOOL ioctl (ETHTOOL_GSTATS); netlink carries the names
// (string set ETH_SS_STATS) but not the values, and the npm netlink package has no ioctl. flowpath runs the
// ethtool binary instead of shipping a native addon:
//   - one `ethtool -S` costs ~5 ms of fork/exec here, against a scrape interval of 15-60 s;
//   - at most one ethtool process runs at a time (concurrency 1), each with a timeout (a driver that
//     sleeps in its stats callback cannot pile up processes), and results are cached for a TTL so several
//     Prometheus servers scraping the same node do not multiply the cost;
//   - a device that answers "no stats available" / EOPNOTSUPP is remembered and not asked again.
// The parser and the queue-label normalisation below are pure and would serve a native reader unchanged.

import { execFile } from 'child_process';

export interface EthtoolStatLine {
  name: string;
  value: number;
}

export class EthtoolOutputError extends Error {
  override readonly name = 'EthtoolOutputError';
}

/**
 * Parse `ethtool -S` output: a "NIC statistics:" line, then "     name: value" lines. Names may contain
 * spaces and colons (bnxt prints "[0]: rx_ucast_packets"), so the value is what follows the last ": ".
 */
export function parseEthtoolStats(text: string, dev = '?'): EthtoolStatLine[] {
  const lines = text.split('\n');
  let i = 0;
  while (i < lines.length && lines[i].trim() === '') i++;
  if (i >= lines.length || lines[i].trim() !== 'NIC statistics:') {
    throw new EthtoolOutputError(`ethtool -S ${dev}: line ${i + 1}: expected "NIC statistics:", got ${JSON.stringify((lines[i] ?? '').slice(0, 60))}`);
  }
  const out: EthtoolStatLine[] = [];
  for (i++; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    const m = /^\s+(.+): (\d+)\s*$/.exec(line);
    if (!m) throw new EthtoolOutputError(`ethtool -S ${dev}: line ${i + 1}: not "name: value": ${JSON.stringify(line.slice(0, 80))}`);
    out.push({ name: m[1].trim(), value: Number(m[2]) });
  }
  return out;
}

// Queue numbers inside driver stat names, most specific first. Each pattern yields (queue, stat name
// without the number). A number that is not a queue (mlx5 rx_prio3_bytes: a priority) is left alone:
// only the listed queue/channel tokens count.
const QUEUE_PATTERNS: ReadonlyArray<[RegExp, (m: RegExpExecArray) => { queue: string; stat: string }]> = [
  // bnxt: "[3]: rx_ucast_packets"
  [/^\[(\d+)\]:\s*(.+)$/, (m) => ({ queue: m[1], stat: m[2] })],
  // i40e/iavf/sfc: "tx-3.tx_packets", "rx-3.rx_bytes"
  [/^(?:rx|tx)-(\d+)\.(.+)$/, (m) => ({ queue: m[1], stat: m[2] })],
  // ixgbe/ice/veth/netdevsim: "rx_queue_3_drops", "tx_queue_3_restart"; ena: "queue_3_tx_cnt"
  [/^(.*?)(queue)_(\d+)_(.+)$/, (m) => ({ queue: m[3], stat: `${m[1]}${m[2]}_${m[4]}` })],
  // mlx4/mlx5/virtio/hns3: "rx3_drops", "tx3_stopped", "ch3_events", "txq3_pktnum_rcd", "rxq3_..."
  [/^(rx|tx|ch|rxq|txq|sq|rq|xdp)(\d+)_(.+)$/, (m) => ({ queue: m[2], stat: `${m[1]}_${m[3]}` })],
  // gve: "rx_posted_desc[3]"
  [/^(.+)\[(\d+)\]$/, (m) => ({ queue: m[2], stat: m[1] })],
];

/** Split a driver stat name into (stat, queue); queue is "" for device-wide stats. */
export function splitQueue(name: string): { stat: string; queue: string } {
  for (const [re, f] of QUEUE_PATTERNS) {
    const m = re.exec(name);
    if (m) return f(m);
  }
  return { stat: name, queue: '' };
}

export type DriverStatsResult =
  | { kind: 'ok'; stats: EthtoolStatLine[]; at: number }
  | { kind: 'unsupported'; reason: string }
  | { kind: 'gone' };

export interface EthtoolCliOptions {
  binary: string;
  timeoutMs: number;
  ttlMs: number;
  now?: () => number;
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  error?: NodeJS.ErrnoException & { killed?: boolean };
}

/** Classify a finished `ethtool -S` run (pure). */
export function classifyEthtoolRun(dev: string, r: RunResult, at: number): DriverStatsResult {
  if (r.error && r.error.code === 'ENOENT' && r.code === null) throw new Error(`ethtool -S ${dev}: cannot run ethtool: ${r.error.message}`);
  if (r.error?.killed) throw new Error(`ethtool -S ${dev}: timed out`);
  if (r.code === 0 && !r.error) return { kind: 'ok', stats: parseEthtoolStats(r.stdout, dev), at };
  const err = r.stderr.trim();
  if (/no stats available|Operation not supported/i.test(err)) return { kind: 'unsupported', reason: err };
  if (/No such device/i.test(err)) return { kind: 'gone' };
  throw new Error(`ethtool -S ${dev}: exit ${r.code ?? r.error?.code ?? '?'}: ${err.slice(0, 200) || '(no message)'}`);
}

export class EthtoolStatsCli {
  private readonly cache = new Map<string, DriverStatsResult & { kind: 'ok' }>();
  private readonly inflight = new Map<string, Promise<DriverStatsResult>>();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;
  /** How many ethtool processes were started (for tests and the bench). */
  spawned = 0;

  constructor(private readonly opts: EthtoolCliOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Driver stats of a device: from the cache when younger than the TTL, else by running ethtool. */
  get(dev: string): Promise<DriverStatsResult> {
    const c = this.cache.get(dev);
    if (c && this.now() - c.at < this.opts.ttlMs) return Promise.resolve(c);
    const running = this.inflight.get(dev);
    if (running) return running;
    const p = this.serial(() => this.run(dev)).finally(() => this.inflight.delete(dev));
    this.inflight.set(dev, p);
    return p;
  }

  /** Forget devices not in `keep` (devices that disappeared). */
  retain(keep: ReadonlySet<string>): void {
    for (const k of [...this.cache.keys()]) if (!keep.has(k)) this.cache.delete(k);
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const p = this.chain.then(f, f);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async run(dev: string): Promise<DriverStatsResult> {
    this.spawned++;
    const r = await new Promise<RunResult>((resolve) => {
      execFile(
        this.opts.binary,
        ['-S', dev],
        { timeout: this.opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 << 20, env: { ...process.env, LC_ALL: 'C' } },
        (error, stdout, stderr) => {
          const e = error as (NodeJS.ErrnoException & { killed?: boolean; code?: unknown }) | null;
          const code = e ? (typeof e.code === 'number' ? e.code : null) : 0;
          resolve({ code, stdout: String(stdout), stderr: String(stderr), error: e ?? undefined });
        },
      );
    });
    const res = classifyEthtoolRun(dev, r, this.now());
    if (res.kind === 'ok') this.cache.set(dev, res);
    else this.cache.delete(dev);
    return res;
  }
}
