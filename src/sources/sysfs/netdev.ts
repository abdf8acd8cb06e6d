// Network device attributes from /sys/class/net/DEV (net/core/net-sysfs.c), docs/kernel-sources.md §8.5.
//
// Pure parsers first (text → values), then the readers at the edge. Absent attributes are undefined, never
// 0: a file that does not exist (older kernel, no such feature), or that the kernel refuses to read in the
// device's current state (speed/duplex/carrier answer EINVAL while the link is down, xps_cpus ENOENT on a
// single-queue device), is "not known". A file whose content does not parse is an error naming the file.

import { closeSync, promises as fs, openSync, read as fsRead, readdirSync, realpathSync } from 'fs';
import { readWhole } from '../procfs/read';
import { under } from '../../core/paths';
import { IFF_UP, LINK_STATS64_FIELDS, LinkRecord, LinkStatName } from '../netlink/rtnl-link';

// ---------------------------------------------------------------------------------------------------
// Pure parsers

export class SysfsFormatError extends Error {
  override readonly name = 'SysfsFormatError';
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
  }
}

/** A decimal integer attribute ("1500\n", "-1\n"). */
export function parseIntAttr(text: string, file: string): number {
  const t = text.trim();
  if (!/^-?\d+$/.test(t)) throw new SysfsFormatError(file, `expected an integer, got ${JSON.stringify(t.slice(0, 40))}`);
  const n = Number(t);
  if (!Number.isSafeInteger(n)) throw new SysfsFormatError(file, `integer ${t} is beyond 2^53`);
  return n;
}

/** `speed` in Mb/s; -1 (SPEED_UNKNOWN printed as int) and 0 mean unknown. */
export function parseSpeed(text: string, file: string): number | undefined {
  const n = parseIntAttr(text, file);
  return n <= 0 || n === 0xffffffff ? undefined : n;
}

export type Duplex = 'full' | 'half';
/** `duplex`: "full", "half" or "unknown". */
export function parseDuplex(text: string, file: string): Duplex | undefined {
  const t = text.trim();
  if (t === 'full' || t === 'half') return t;
  if (t === 'unknown') return undefined;
  throw new SysfsFormatError(file, `unexpected duplex ${JSON.stringify(t)}`);
}

/** RFC 2863 operstates as net-sysfs prints them (operstates[] in net/core/net-sysfs.c). */
export const OPERSTATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'] as const;
export type Operstate = (typeof OPERSTATES)[number];
export function parseOperstate(text: string, file: string): Operstate {
  const t = text.trim();
  if ((OPERSTATES as readonly string[]).includes(t)) return t as Operstate;
  throw new SysfsFormatError(file, `unexpected operstate ${JSON.stringify(t)}`);
}

/**
 * A CPU bitmap as the kernel prints it with %*pb: comma-separated 32-bit hex words, most significant word
 * first ("00000000,0000000f"). Returns the CPU numbers that are set, ascending.
 */
export function parseCpuMask(text: string, file: string): number[] {
  const t = text.trim();
  if (!/^[0-9a-fA-F]+(,[0-9a-fA-F]+)*$/.test(t)) throw new SysfsFormatError(file, `not a hex CPU mask: ${JSON.stringify(t.slice(0, 40))}`);
  const words = t.split(',').reverse();
  const cpus: number[] = [];
  for (let w = 0; w < words.length; w++) {
    // Words are 32 bits, but a single-word mask may be shorter or (rarely, no commas) longer: walk nibbles.
    const hex = words[w];
    for (let i = 0; i < hex.length; i++) {
      const nib = parseInt(hex[hex.length - 1 - i], 16);
      for (let b = 0; b < 4; b++) if (nib & (1 << b)) cpus.push(w * 32 + i * 4 + b);
    }
  }
  return cpus.sort((a, b) => a - b);
}

/** A CPU list as printed with %*pbl ("0-3,8,10-11"; empty for none). */
export function parseCpuList(text: string, file: string): number[] {
  const t = text.trim();
  if (t === '') return [];
  const out: number[] = [];
  for (const part of t.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new SysfsFormatError(file, `not a CPU list: ${JSON.stringify(t.slice(0, 60))}`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    // Bounded in total, not per range ("0-65535,0-65535,..." in one page would be millions of CPUs), and
    // in value (past 2^53, c + 1 === c and the loop would never end).
    if (b < a || b >= 65536 || out.length + (b - a) >= 65536) throw new SysfsFormatError(file, `bad CPU range ${part}`);
    for (let c = a; c <= b; c++) out.push(c);
  }
  return out;
}

/** Render CPUs as a compact list ("0-3,8"), the inverse of parseCpuList. */
export function formatCpuList(cpus: readonly number[]): string {
  const s = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    parts.push(j === i ? String(s[i]) : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

// ---------------------------------------------------------------------------------------------------
// Records

/**
 * The files of /sys/class/net/DEV/statistics (NETSTAT_ENTRY in net-sysfs.c): the fields of struct
 * rtnl_link_stats64 up to rx_nohandler (rx_otherhost_dropped has no file).
 */
export const NETDEV_STAT_FILES = LINK_STATS64_FIELDS.slice(0, LINK_STATS64_FIELDS.indexOf('rx_nohandler') + 1) as Exclude<(typeof LINK_STATS64_FIELDS)[number], 'rx_otherhost_dropped'>[];
export type NetdevStatName = (typeof NETDEV_STAT_FILES)[number];

export interface NetdevAttrs {
  name: string;
  operstate?: Operstate;
  /** 1 carrier up, 0 down; undefined when the device is administratively down (EINVAL). */
  carrier?: number;
  speedMbps?: number;
  duplex?: Duplex;
  mtu?: number;
  txQueueLen?: number;
  carrierChanges?: number;
  carrierUpCount?: number;
  carrierDownCount?: number;
  /** struct rtnl_link_stats64 counters; rx_otherhost_dropped only from rtnetlink (no sysfs file). */
  stats: Partial<Record<LinkStatName, number>>;
}

export interface RxQueueAttrs {
  queue: number;
  /** CPUs in rps_cpus; [] = RPS off. undefined if the file is missing (CONFIG_RPS off). */
  rpsCpus?: number[];
  rpsFlowCnt?: number;
}

export interface TxQueueAttrs {
  queue: number;
  xpsCpus?: number[];
  xpsRxqs?: number[];
  txTimeout?: number;
  bqlLimit?: number;
  bqlInflight?: number;
}

export interface NetdevQueues {
  rx: RxQueueAttrs[];
  tx: TxQueueAttrs[];
}

// ---------------------------------------------------------------------------------------------------
// I/O edge

/** errno codes that mean "this attribute has no value now" rather than a failure. */
const ABSENT_CODES = new Set(['ENOENT', 'EINVAL', 'EOPNOTSUPP', 'ENODEV', 'ENODATA', 'ENOTDIR']);

function absentOrThrow(file: string, e: unknown): undefined {
  const err = e as NodeJS.ErrnoException;
  // ENOTSUPP (524) has no libuv name.
  if ((err.code && ABSENT_CODES.has(err.code)) || err.errno === -524) return undefined;
  throw new Error(`reading ${file}: ${err.message}`);
}

/**
 * Read one small sysfs/procfs file on the libuv thread pool; undefined when it is absent or has no value
 * in this state. For attributes whose show() may wait for the RTNL lock (speed, duplex, carrier, mtu,
 * operstate, xps_cpus: net-sysfs retries them with restart_syscall() while RTNL is held), so a busy RTNL
 * ties up a pool thread, never the event loop.
 *
 * Only read(2) calls show(), so only the read goes to the pool: open(2) (kernfs: allocates the open
 * file, takes no networking lock) and close(2) run on the calling thread. One thread-pool round trip per
 * file instead of the five of fs.promises.readFile (open, fstat, read, read to EOF, close) and no
 * FileHandle object. A read that returns less than the buffer is the end of the file (seq_file and
 * sysctl handlers fill the buffer unless the content ends); a full buffer is followed by another read.
 */
export function readAttr(file: string): Promise<string | undefined> {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    return new Promise((resolve) => resolve(absentOrThrow(file, e)));
  }
  return new Promise((resolve, reject) => {
    let buf = Buffer.allocUnsafe(4096);
    let n = 0;
    const finish = (err: NodeJS.ErrnoException | null): void => {
      try {
        closeSync(fd);
      } catch {
        /* nothing to do about a failed close of a read-only pseudo-file */
      }
      if (!err) {
        resolve(buf.toString('latin1', 0, n));
        return;
      }
      try {
        resolve(absentOrThrow(file, err));
      } catch (e) {
        reject(e);
      }
    };
    const step = (): void => {
      fsRead(fd, buf, n, buf.length - n, null, (err, k) => {
        if (err) return finish(err);
        n += k;
        if (k > 0 && n === buf.length) {
          const bigger = Buffer.allocUnsafe(buf.length * 2);
          buf.copy(bigger, 0, 0, n);
          buf = bigger;
          return step();
        }
        finish(null);
      });
    };
    step();
  });
}

/**
 * Synchronous read for files whose show() takes no sleeping lock: statistics/* (dev_get_stats under RCU;
 * ndo_get_stats64 must not sleep), tx_queue_len, carrier_changes/carrier_up_count/carrier_down_count,
 * rps_cpus/rps_flow_cnt, tx_timeout, byte_queue_limits/*, uevent,
 * /proc/irq/N/*_affinity_list, /sys/kernel/irq/N/*. About 20 µs per file against ~65 µs through
 * fs.promises (open, fstat, read and close each hop through the thread pool), which is most of a scrape
 * on a many-queue NIC.
 */
export function readAttrSync(file: string): string | undefined {
  try {
    return readWhole(file);
  } catch (e) {
    return absentOrThrow(file, e);
  }
}

function intAttrSync(file: string): number | undefined {
  const t = readAttrSync(file);
  return t === undefined ? undefined : parseIntAttr(t, file);
}

export function netdevDir(sysfsRoot: string, dev: string): string {
  return under(sysfsRoot, 'class', 'net', dev);
}

/**
 * Attributes and statistics of one device from an rtnetlink link record (./netlink/rtnl-link.ts) plus
 * the two attributes rtnetlink does not carry, speed and duplex (sysfs, through the thread pool: their
 * show() waits for RTNL). Same record and the same "absent, not 0" rules as the sysfs reader: carrier is
 * absent while the device is administratively down (sysfs answers EINVAL then), an operstate outside
 * RFC 2863's seven is absent.
 */
export async function netdevAttrsFromLink(sysfsRoot: string, link: LinkRecord): Promise<NetdevAttrs> {
  const dir = netdevDir(sysfsRoot, link.name);
  const [speed, duplex] = await Promise.all([readAttr(under(dir, 'speed')), readAttr(under(dir, 'duplex'))]);
  const stats = link.stats ?? {};
  return {
    name: link.name,
    operstate: link.operstate === undefined ? undefined : OPERSTATES[link.operstate],
    carrier: (link.flags & IFF_UP) === 0 ? undefined : link.carrier,
    speedMbps: speed === undefined ? undefined : parseSpeed(speed, under(dir, 'speed')),
    duplex: duplex === undefined ? undefined : parseDuplex(duplex, under(dir, 'duplex')),
    mtu: link.mtu,
    txQueueLen: link.txQueueLen,
    carrierChanges: link.carrierChanges,
    carrierUpCount: link.carrierUpCount,
    carrierDownCount: link.carrierDownCount,
    stats,
  };
}

/**
 * A device's attributes the cheapest way available: from its link record when the listing came over
 * rtnetlink with statistics, else from sysfs (a --path.sysfs tree that is not this namespace's /sys,
 * fixtures). null when the device is gone.
 */
export function readDeviceAttrs(sysfsRoot: string, dev: { name: string; link?: LinkRecord }): Promise<NetdevAttrs | null> {
  return dev.link?.stats ? netdevAttrsFromLink(sysfsRoot, dev.link) : readNetdevAttrs(sysfsRoot, dev.name);
}

/**
 * Attributes and statistics of one device, all from sysfs (for a sysfs tree that is not this
 * namespace's, or fixtures; the live exporter uses netdevAttrsFromLink). Returns null when the device
 * directory is gone (the device disappeared after selection). Throws SysfsFormatError on content that
 * does not parse.
 */
export async function readNetdevAttrs(sysfsRoot: string, dev: string): Promise<NetdevAttrs | null> {
  const dir = netdevDir(sysfsRoot, dev);
  const f = (n: string) => under(dir, n);
  // operstate, carrier, speed, duplex and mtu may wait for RTNL (see readAttr): thread pool. tx_queue_len
  // (netdev_show: READ_ONCE / dev_base_lock read side) and the carrier_* counters (atomic_read) take no
  // sleeping lock: synchronous, like statistics/*.
  const [operstate, carrier, speed, duplex, mtu] = await Promise.all([
    readAttr(f('operstate')),
    readAttr(f('carrier')),
    readAttr(f('speed')),
    readAttr(f('duplex')),
    readAttr(f('mtu')),
  ]);
  const txql = readAttrSync(f('tx_queue_len'));
  const cc = readAttrSync(f('carrier_changes'));
  const cup = readAttrSync(f('carrier_up_count'));
  const cdown = readAttrSync(f('carrier_down_count'));
  if (operstate === undefined && mtu === undefined) {
    // Either the device vanished, or this is not a net device directory at all.
    try {
      await fs.access(dir);
    } catch {
      return null;
    }
    throw new SysfsFormatError(dir, 'has neither operstate nor mtu');
  }
  const statsDir = under(dir, 'statistics');
  const values = NETDEV_STAT_FILES.map((s) => intAttrSync(under(statsDir, s)));
  const stats: Partial<Record<NetdevStatName, number>> = {};
  NETDEV_STAT_FILES.forEach((s, i) => {
    if (values[i] !== undefined) stats[s] = values[i];
  });
  return {
    name: dev,
    operstate: operstate === undefined ? undefined : parseOperstate(operstate, f('operstate')),
    carrier: carrier === undefined ? undefined : parseIntAttr(carrier, f('carrier')),
    speedMbps: speed === undefined ? undefined : parseSpeed(speed, f('speed')),
    duplex: duplex === undefined ? undefined : parseDuplex(duplex, f('duplex')),
    mtu: mtu === undefined ? undefined : parseIntAttr(mtu, f('mtu')),
    txQueueLen: txql === undefined ? undefined : parseIntAttr(txql, f('tx_queue_len')),
    carrierChanges: cc === undefined ? undefined : parseIntAttr(cc, f('carrier_changes')),
    carrierUpCount: cup === undefined ? undefined : parseIntAttr(cup, f('carrier_up_count')),
    carrierDownCount: cdown === undefined ? undefined : parseIntAttr(cdown, f('carrier_down_count')),
    stats,
  };
}

/** Parse a queue directory name ("rx-3" → {dir: 'rx', queue: 3}). */
export function parseQueueDirName(name: string): { dir: 'rx' | 'tx'; queue: number } | undefined {
  const m = /^(rx|tx)-(\d+)$/.exec(name);
  return m ? { dir: m[1] as 'rx' | 'tx', queue: Number(m[2]) } : undefined;
}

export interface QueueReadOptions {
  /** rps_cpus, rps_flow_cnt of RX queues (default true). */
  rps?: boolean;
  /** xps_cpus, xps_rxqs of TX queues (default true). */
  xps?: boolean;
  /** tx_timeout and BQL (byte_queue_limits/limit, inflight) of TX queues (default false). */
  txDetails?: boolean;
}

/** RPS/XPS settings (and optionally BQL) of every queue of a device; null when the device is gone. */
export async function readNetdevQueues(sysfsRoot: string, dev: string, opts: QueueReadOptions = {}): Promise<NetdevQueues | null> {
  const qdir = under(netdevDir(sysfsRoot, dev), 'queues');
  const wantRps = opts.rps ?? true;
  const wantXps = opts.xps ?? true;
  let names: string[];
  try {
    // kernfs readdir takes no networking lock: synchronous (one thread-pool hop less per device).
    names = readdirSync(qdir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new Error(`listing ${qdir}: ${(e as Error).message}`);
  }
  const rx: RxQueueAttrs[] = [];
  const tx: Promise<TxQueueAttrs>[] = [];
  const opt = <T>(file: string, parse: (t: string, f: string) => T, text: string | undefined): T | undefined => (text === undefined ? undefined : parse(text, file));
  // BQL is all or nothing per device (netdev_uses_bql() in net-sysfs.c: no byte_queue_limits/ on LLTX
  // or queue-less devices such as veth), so once the first TX queue has none the rest are not asked.
  let bql = true;
  const dirs = names.map((n) => [n, parseQueueDirName(n)] as const).sort((a, b) => (a[1]?.queue ?? 0) - (b[1]?.queue ?? 0));
  for (const [n, q] of dirs) {
    if (!q) continue;
    const d = under(qdir, n);
    if (q.dir === 'rx') {
      const rpsF = under(d, 'rps_cpus');
      const flowF = under(d, 'rps_flow_cnt');
      rx.push({
        queue: q.queue,
        rpsCpus: wantRps ? opt(rpsF, parseCpuMask, readAttrSync(rpsF)) : undefined,
        rpsFlowCnt: wantRps ? opt(flowF, parseIntAttr, readAttrSync(flowF)) : undefined,
      });
    } else {
      const tmoF = under(d, 'tx_timeout');
      const limF = under(d, 'byte_queue_limits', 'limit');
      const inflF = under(d, 'byte_queue_limits', 'inflight');
      let details = {};
      if (opts.txDetails) {
        const bqlLimit: number | undefined = bql ? opt(limF, parseIntAttr, readAttrSync(limF)) : undefined;
        const bqlInflight: number | undefined = bql ? opt(inflF, parseIntAttr, readAttrSync(inflF)) : undefined;
        bql = bqlLimit !== undefined || bqlInflight !== undefined;
        details = { txTimeout: opt(tmoF, parseIntAttr, readAttrSync(tmoF)), bqlLimit, bqlInflight };
      }
      tx.push(
        (async () => {
          // xps_cpus may wait for RTNL: asynchronous.
          const [xps, xrq] = wantXps ? await Promise.all([readAttr(under(d, 'xps_cpus')), readAttr(under(d, 'xps_rxqs'))]) : [undefined, undefined];
          return {
            queue: q.queue,
            xpsCpus: opt(under(d, 'xps_cpus'), parseCpuMask, xps),
            xpsRxqs: opt(under(d, 'xps_rxqs'), parseCpuMask, xrq),
            ...details,
          };
        })(),
      );
    }
  }
  const byQueue = <T extends { queue: number }>(a: T, b: T) => a.queue - b.queue;
  return { rx: rx.sort(byQueue), tx: (await Promise.all(tx)).sort(byQueue) };
}

/** Global RFS table size, /proc/sys/net/core/rps_sock_flow_entries. */
export async function readRpsSockFlowEntries(procfsRoot: string): Promise<number | undefined> {
  const f = under(procfsRoot, 'sys', 'net', 'core', 'rps_sock_flow_entries');
  const t = await readAttr(f);
  return t === undefined ? undefined : parseIntAttr(t, f);
}

const PCI_BDF_RE = /^[0-9a-f]{4,}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

/**
 * The bus device that owns a network device's interrupts and its MSI/MSI-X vectors (msi_irqs/, one entry
 * per vector), docs/kernel-sources.md §8.4. Starts at the realpath of DEV/device; if that is not itself a
 * PCI function (virtio: virtioN), walks up to the nearest PCI function and stops there, so the MSI vectors
 * of an upstream bridge or root port are never attributed to the NIC. undefined for devices without a bus
 * device (virtual devices); msiIrqs is empty for legacy INTx or platform devices.
 */
export async function readDeviceIrqs(sysfsRoot: string, dev: string): Promise<{ busDevice: string; msiIrqs: number[] } | undefined> {
  const link = under(netdevDir(sysfsRoot, dev), 'device');
  // realpath of a sysfs link and readdir of msi_irqs/ are kernfs lookups (no networking lock):
  // synchronous, which saves thread-pool hops on every scrape.
  let real: string;
  try {
    real = realpathSync.native(link);
  } catch {
    return undefined;
  }
  const listIrqs = (d: string): number[] | undefined => {
    try {
      const ents = readdirSync(under(d, 'msi_irqs'));
      return ents.filter((e) => /^\d+$/.test(e)).map(Number).sort((a, b) => a - b);
    } catch {
      return undefined;
    }
  };
  const own = listIrqs(real);
  if (own) return { busDevice: real, msiIrqs: own };
  for (let d = real, depth = 0; depth < 4 && d.lastIndexOf('/') > 0; depth++) {
    if (PCI_BDF_RE.test(d.slice(d.lastIndexOf('/') + 1))) {
      return { busDevice: d, msiIrqs: listIrqs(d) ?? [] };
    }
    d = d.slice(0, d.lastIndexOf('/'));
  }
  return { busDevice: real, msiIrqs: [] };
}
