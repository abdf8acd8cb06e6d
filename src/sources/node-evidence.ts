// The node-wide readings a flow diagnosis needs, taken together as one snapshot: the device list and the
// sysfs attributes, queues, ethtool configuration and per-queue statistics of the devices of interest
// (the flows' path devices and ifb wire shapers), every qdisc, softnet_stat, /proc/softirqs, /proc/stat,
// /proc/net/netstat, a few sysctls, and Open vSwitch (its datapaths through the shared OVS reader, and
// ovs-vswitchd's CPU time). Every reading goes through the same src/sources readers the collectors use:
//   devices         ./devices.ts (listDevices: the shared rtnetlink link dump)
//   sysfs           ./sysfs/netdev.ts (readDeviceAttrs, readNetdevQueues)
//   ethtool         ./netlink/ethtool.ts (EthtoolClient), ./netlink/netdev-genl.ts (NetdevGenlClient)
//   tc              ./netlink/qdisc.ts (dumpQdiscs, retried once when interrupted, as the qdisc collector)
//   /proc           ./procfs/{softnet,softirqs,stat,netstat,sysctl,cpuinfo}.ts
//   OVS             ./ovs/snapshot.ts (OvsReader), ./ovs/internal-ports.ts, ./ovs/vswitchd.ts
//   routes          ./netlink/route.ts (RouteLookup: which device reaches a peer)
// A source that fails leaves its part out and adds a line to `errors`; a snapshot never throws for one
// source.

import { NetDevice, listDevices } from './devices';
import { EthtoolClient, EthtoolFeatures, EthtoolRings } from './netlink/ethtool';
import { NetdevGenlClient, QueueStats } from './netlink/netdev-genl';
import { QdiscRecord, consistentQdiscDump, dumpQdiscs } from './netlink/qdisc';
import { RouteLookup } from './netlink/route';
import { NETLINK_ROUTE, NetlinkSocket } from './netlink/socket';
import { userHz } from './procfs/cpuinfo';
import { NetstatGroups, readNetstat } from './procfs/netstat';
import { Softirqs, readSoftirqs } from './procfs/softirqs';
import { SoftnetRow, readSoftnet } from './procfs/softnet';
import { CpuTicks, readProcStatCpus } from './procfs/stat';
import { readSysctl } from './procfs/sysctl';
import { latestOvsInternalPorts } from './ovs/internal-ports';
import type { OvsReader, OvsSnapshot } from './ovs/snapshot';
import { vswitchdCpuSeconds, vswitchdPid } from './ovs/vswitchd';
import { TaskReader, TaskSample } from './procfs/tasks';
import { SocketOwnerFinder } from './procfs/sockowners';
import type { Logger } from '../core/log';
import { NetdevAttrs, NetdevQueues, readDeviceAttrs, readNetdevQueues } from './sysfs/netdev';

/** ethtool features and rings, sysfs speed/duplex and RPS masks are configuration: re-read at most this often. */
const CONFIG_TTL_MS = 30000;

export interface NodeRecords {
  wallMs: number;
  devices?: NetDevice[];
  /** sysfs attributes of the devices of interest. */
  attrs: Map<string, NetdevAttrs>;
  queues: Map<string, NetdevQueues>;
  qdiscs?: QdiscRecord[];
  /** ethtool features and rings of the devices of interest (configuration, read now and then). */
  features: Map<string, EthtoolFeatures>;
  rings: Map<string, EthtoolRings>;
  /** netdev genl per-queue statistics of the devices of interest. */
  qstats: Map<string, QueueStats[]>;
  softnet?: SoftnetRow[];
  softirqs?: Softirqs;
  stat?: CpuTicks[];
  netstat?: NetstatGroups;
  /** The sysctls asked for that could be read, values as one space-separated string. */
  sysctl: Record<string, string>;
  /** The latest OVS snapshot in which ovs-vswitchd or the kernel datapath answered (null: none). */
  ovs: OvsSnapshot | null;
  /** utime + stime of ovs-vswitchd, seconds (read at every snapshot; its datapath counters are slower). */
  vswitchdCpuSeconds?: number;
  /** ovs-vswitchd's threads with schedstat and context switches (the userspace datapath forwards in them). */
  vswitchdTasks?: TaskSample[];
  /** The processes holding each socket inode asked for, and their threads. */
  owners?: SocketOwnerRecord[];
  /** OVS internal port device names (the ovs collector's latest read and this reader's). */
  ovsInternal: Set<string>;
  userHz: number;
  errors: string[];
}

/** The processes holding one socket and their threads; `unknown` says why none are known. */
export interface SocketOwnerRecord {
  inode: number;
  pids: number[];
  tasks: TaskSample[];
  unknown?: string;
}

/** Threads read per process (socket owners, ovs-vswitchd), and owner processes per socket. */
const MAX_THREADS = 256;
const MAX_OWNER_PIDS = 8;

/** What a flow to `peer` crosses first on this node. */
export interface EgressRecords {
  /** The route's egress device (undefined: no route, or the device is gone). */
  egress?: string;
  devices: NetDevice[];
  ovs: OvsSnapshot | null;
  ovsInternal: Set<string>;
}

export interface NodeReaderOptions {
  procfs: string;
  sysfs: string;
  /** An OvsReader (shared with the ovs collector, or its own), or null when OVS is not to be read. */
  ovs: Pick<OvsReader, 'read' | 'close' | 'client'> | null;
  /** Least time between two OVS reads (it is slower than the rest). */
  ovsIntervalMs: number;
  /** The sysctls to read ("net.core.default_qdisc", ...). */
  sysctls: readonly string[];
  /** Where warnings that are logged once go (no permission to read /proc/PID/fd, ...). */
  log?: Pick<Logger, 'warn'>;
}

export class NodeEvidenceReader {
  private rtnl: NetlinkSocket | null = null;
  private readonly route = new RouteLookup();
  private ovsSnap: OvsSnapshot | null = null;
  private ovsAt = -Infinity;
  private ovsInFlight: Promise<void> | null = null;
  /** Devices whose sysfs attributes each snapshot reads. */
  private readonly interesting = new Set<string>();
  private ethtool: EthtoolClient | null = null;
  private netdev: NetdevGenlClient | null = null;
  /** sysfs configuration per device (speed, duplex, RPS masks), re-read after CONFIG_TTL_MS. */
  private readonly sysfsConfig = new Map<string, { at: number; attrs?: NetdevAttrs; queues?: NetdevQueues }>();
  /** ethtool configuration per device, re-read after CONFIG_TTL_MS (failures too). */
  private readonly config = new Map<string, { at: number; features?: EthtoolFeatures; rings?: EthtoolRings }>();
  /** The kernel has no netdev genl queue statistics (ENOENT): never asked again. */
  private qstatsUnsupported = false;
  /**
   * Devices without queue statistics (EOPNOTSUPP: lo, veth, ifb, ...) by name and ifindex, with when that
   * was answered: asked again after CONFIG_TTL_MS, not every snapshot (a refusal costs a request and a
   * NetlinkError with its stack trace; ~0.15 ms a snapshot with three such devices, measured).
   */
  private readonly noQstats = new Map<string, number>();
  private readonly hz = userHz();
  private readonly ownerFinder: SocketOwnerFinder;
  /** Threads of the socket owners and of ovs-vswitchd, their files held open between snapshots. */
  private readonly tasks: TaskReader;
  /** The sysctls (configuration), re-read after CONFIG_TTL_MS. */
  private sysctlCache: { at: number; values: Record<string, string>; errors: string[] } | undefined;
  private readonly warned = new Set<string>();

  constructor(private readonly o: NodeReaderOptions) {
    this.ownerFinder = new SocketOwnerFinder(o.procfs);
    this.tasks = new TaskReader(o.procfs);
  }

  private warnOnce(key: string, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.o.log?.warn(msg);
  }

  /** ovs-vswitchd's threads (with voluntary context switches), or undefined when not readable. */
  private vswitchdTasks(): TaskSample[] | undefined {
    const ep = this.o.ovs?.client.endpoint;
    if (!ep) return undefined;
    try {
      const pid = vswitchdPid(ep);
      return pid ? this.tasks.read(pid, MAX_THREADS, true) : undefined;
    } catch (e) {
      this.warnOnce('vswitchd tasks', `ovs-vswitchd threads: ${(e as Error).message}`);
      return undefined;
    }
  }

  /**
   * The processes holding each socket inode and their threads, failing soft: without permission the
   * owner is "unknown" with the reason (logged once), never "no owner".
   */
  private owners(inodes: readonly number[], t: number): SocketOwnerRecord[] | undefined {
    if (inodes.length === 0) return undefined;
    const out: SocketOwnerRecord[] = [];
    // One read per process per snapshot, however many of its sockets are sampled.
    const byPid = new Map<number, TaskSample[]>();
    const tasksOf = (pid: number): TaskSample[] => {
      let ts = byPid.get(pid);
      if (!ts) byPid.set(pid, (ts = this.tasks.read(pid, MAX_THREADS)));
      return ts;
    };
    for (const [inode, o] of this.ownerFinder.find(inodes, t)) {
      if (o.unknown) {
        if (/permission/.test(o.unknown)) this.warnOnce('owners EACCES', `diagnosis: the processes of a sampled socket are unknown: ${o.unknown}`);
        out.push({ inode, pids: [], tasks: [], unknown: o.unknown });
        continue;
      }
      const tasks: TaskSample[] = [];
      let unknown: string | undefined;
      for (const pid of o.pids.slice(0, MAX_OWNER_PIDS)) {
        try {
          tasks.push(...tasksOf(pid));
        } catch (e) {
          unknown = `threads of pid ${pid}: ${(e as Error).message}`;
          this.warnOnce(`owner tasks ${(e as { code?: string }).code}`, `diagnosis: ${unknown}`);
        }
      }
      out.push({ inode, pids: o.pids, tasks, unknown: tasks.length === 0 ? (unknown ?? 'the processes holding it exited') : undefined });
    }
    return out;
  }

  /** Read this device's attributes, queues and ethtool state in every later snapshot. */
  watchDevice(name: string): void {
    this.interesting.add(name);
  }

  private internalSet(): Set<string> {
    const s = new Set<string>();
    for (const p of latestOvsInternalPorts()?.ports.keys() ?? []) s.add(p);
    for (const p of this.ovsSnap?.internalPorts ?? []) s.add(p.device);
    return s;
  }

  /** Read OVS if the last read is older than the OVS interval; joins a read in flight. */
  private readOvs(t: number, errors: string[]): Promise<void> {
    if (this.ovsInFlight) return this.ovsInFlight;
    if (!this.o.ovs || t - this.ovsAt < this.o.ovsIntervalMs) return Promise.resolve();
    const ovs = this.o.ovs;
    this.ovsAt = t;
    const p = (async () => {
      try {
        const s = await ovs.read(this.o.ovsIntervalMs);
        this.ovsSnap = s.unixctl.up || s.kernel.state ? s : null;
        if (!s.unixctl.up && s.unixctl.error) errors.push(`ovs: ${s.unixctl.error}`);
      } catch (e) {
        errors.push(`ovs: ${(e as Error).message}`);
      } finally {
        this.ovsInFlight = null;
      }
    })();
    this.ovsInFlight = p;
    return p;
  }

  private vswitchdCpu(errors: string[]): number | undefined {
    const ep = this.o.ovs?.client.endpoint;
    if (!ep) return undefined;
    try {
      return vswitchdCpuSeconds(this.o.procfs, ep, this.hz);
    } catch (e) {
      errors.push(`ovs-vswitchd stat: ${(e as Error).message}`);
      return undefined;
    }
  }

  /**
   * One snapshot; `t` is the caller's monotonic clock (ms), which paces the OVS and ethtool reads;
   * `inodes`: sockets whose owning processes and threads to read.
   */
  async read(t: number, inodes: readonly number[] = []): Promise<NodeRecords> {
    const errors: string[] = [];
    const wallMs = Date.now();
    const attempt = <T>(what: string, f: () => T): T | undefined => {
      try {
        return f();
      } catch (e) {
        errors.push(`${what}: ${(e as Error).message}`);
        return undefined;
      }
    };
    const attemptAsync = async <T>(what: string, f: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await f();
      } catch (e) {
        errors.push(`${what}: ${(e as Error).message}`);
        return undefined;
      }
    };
    const [devices, qd] = await Promise.all([
      attemptAsync('devices', () => listDevices(this.o.sysfs)),
      attemptAsync('qdisc', async () => {
        this.rtnl ??= new NetlinkSocket(NETLINK_ROUTE, { timeoutMs: 2000 });
        const rtnl = this.rtnl;
        return (await consistentQdiscDump(() => dumpQdiscs(rtnl))).qdiscs;
      }),
      this.readOvs(t, errors),
    ]);
    const names = new Set(this.interesting);
    for (const d of devices ?? []) if (d.kind === 'ifb') names.add(d.name);
    const attrs = new Map<string, NetdevAttrs>();
    const queues = new Map<string, NetdevQueues>();
    await Promise.all(
      [...names].map(async (n) => {
        const dev = devices?.find((d) => d.name === n);
        // Speed, duplex and the RPS masks are configuration: read from sysfs at most every CONFIG_TTL_MS
        // (per device and ifindex); the counters come fresh from the link dump every snapshot.
        const key = `${n}#${dev?.ifindex ?? ''}`;
        let c = this.sysfsConfig.get(key);
        if (!c || t - c.at > CONFIG_TTL_MS || !dev?.link?.stats) {
          const a = await attemptAsync(`sysfs ${n}`, () => readDeviceAttrs(this.o.sysfs, dev ?? { name: n }));
          const q = await attemptAsync(`sysfs ${n} queues`, () => readNetdevQueues(this.o.sysfs, n));
          c = { at: t, attrs: a ?? undefined, queues: q ?? undefined };
          if (dev?.link?.stats) this.sysfsConfig.set(key, c);
        } else if (c.attrs) {
          c = { ...c, attrs: { ...c.attrs, stats: dev.link.stats } };
        }
        if (c.attrs) attrs.set(n, c.attrs);
        if (c.queues) queues.set(n, c.queues);
      }),
    );
    if (this.sysfsConfig.size > 4 * names.size + 16) this.sysfsConfig.clear();
    if (this.noQstats.size > 4 * names.size + 16) this.noQstats.clear();
    // ethtool configuration (features, rings) now and then; per-queue qstats (tx-stop) every snapshot.
    // Devices or kernels without them (veth rings, tun, old kernels) simply leave them out.
    const features = new Map<string, EthtoolFeatures>();
    const rings = new Map<string, EthtoolRings>();
    const qstats = new Map<string, QueueStats[]>();
    await Promise.all(
      [...names].map(async (n) => {
        const ifindex = devices?.find((d) => d.name === n)?.ifindex;
        if (ifindex === undefined) return;
        let c = this.config.get(n);
        if (!c || t - c.at > CONFIG_TTL_MS) {
          this.ethtool ??= new EthtoolClient();
          const [f, r] = await Promise.all([
            this.ethtool.features(ifindex, n).catch(() => undefined),
            this.ethtool.rings(ifindex, n).catch(() => undefined),
          ]);
          c = { at: t, features: f, rings: r };
          this.config.set(n, c);
        }
        if (c.features) features.set(n, c.features);
        if (c.rings) rings.set(n, c.rings);
        const qkey = `${n}#${ifindex}`;
        const refused = this.noQstats.get(qkey);
        if (!this.qstatsUnsupported && (refused === undefined || t - refused > CONFIG_TTL_MS)) {
          this.netdev ??= new NetdevGenlClient();
          try {
            qstats.set(n, await this.netdev.qstats(ifindex, n));
            this.noQstats.delete(qkey);
          } catch (e) {
            const code = (e as { code?: string }).code;
            if (code === 'ENOENT') this.qstatsUnsupported = true;
            else if (code === 'EOPNOTSUPP') this.noQstats.set(qkey, t);
            else errors.push(`qstats ${n}: ${(e as Error).message}`);
          }
        }
      }),
    );
    // Sysctls are configuration: read at most every CONFIG_TTL_MS (their failures are repeated meanwhile).
    if (!this.sysctlCache || t - this.sysctlCache.at > CONFIG_TTL_MS) {
      const values: Record<string, string> = {};
      const failed: string[] = [];
      for (const name of this.o.sysctls) {
        try {
          const v = readSysctl(this.o.procfs, name);
          if (v) values[name] = 'numbers' in v ? v.numbers.join(' ') : v.text;
        } catch (e) {
          failed.push(`sysctl ${name}: ${(e as Error).message}`);
        }
      }
      this.sysctlCache = { at: t, values, errors: failed };
    }
    errors.push(...this.sysctlCache.errors);
    const sysctl = { ...this.sysctlCache.values };
    const rec: NodeRecords = {
      wallMs,
      devices,
      attrs,
      queues,
      qdiscs: qd,
      features,
      rings,
      qstats,
      softnet: attempt('softnet_stat', () => readSoftnet(this.o.procfs, this.o.sysfs)),
      softirqs: attempt('softirqs', () => readSoftirqs(this.o.procfs)),
      stat: attempt('stat', () => readProcStatCpus(this.o.procfs)),
      netstat: attempt('netstat', () => readNetstat(this.o.procfs)),
      sysctl,
      ovs: this.ovsSnap,
      vswitchdCpuSeconds: this.ovsSnap ? this.vswitchdCpu(errors) : undefined,
      vswitchdTasks: this.ovsSnap ? this.vswitchdTasks() : undefined,
      owners: attempt('socket owners', () => this.owners(inodes, t)),
      ovsInternal: this.internalSet(),
      userHz: this.hz,
      errors,
    };
    this.tasks.sweep();
    return rec;
  }

  /** The egress device towards `peerIp` (rtnetlink route lookup), with what is needed to follow it. */
  async egress(peerIp: string): Promise<EgressRecords> {
    const [oif, devices] = await Promise.all([this.route.oif(peerIp), listDevices(this.o.sysfs)]);
    if (this.o.ovs && !this.ovsSnap) await (this.ovsInFlight ?? this.readOvs(performance.now(), []));
    const egress = oif === undefined ? undefined : devices.find((d) => d.ifindex === oif)?.name;
    return { egress, devices, ovs: this.ovsSnap, ovsInternal: this.internalSet() };
  }

  close(): void {
    this.tasks.close();
    this.rtnl?.close();
    this.rtnl = null;
    this.ethtool?.close();
    this.ethtool = null;
    this.netdev?.close();
    this.netdev = null;
    this.route.close();
    this.o.ovs?.close();
  }
}
