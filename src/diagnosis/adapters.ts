// Adapters from the other sources' records to the diagnosis types, and the live FlowSource / NodeSource
// the sampler runs on. Only public APIs of the sources are used:
//   sock_diag            src/sources/netlink/sockdiag.ts (SockDiag.dump / lookupPrepared, SockView)
//   flow selectors       src/sources/flowselect.ts (compileSelector)
//   /proc                src/sources/procfs/{softnet,softirqs,stat,netstat,sysctl,ksoftirqd}.ts
//   /sys                 src/sources/sysfs/netdev.ts, src/sources/devices.ts (listDevices)
//   tc                   src/sources/netlink/qdisc.ts (dumpQdiscs)
//   OVS                  src/sources/ovs/snapshot.ts (OvsReader), src/sources/ovs/internal-ports.ts
// The pure converters (flowSampleFromRecord, buildNodeSnapshot, ovsEvidenceOf, pathDevicesFor) are unit
// tested on fixtures; the classes are the I/O edge.

import * as path from 'path';
import { CompiledSelector, compileSelector } from '../sources/flowselect';
import { EXT_FLOWS, EXT_INFO, SockDiag, SockRecord, SockView, buildExactRequest, sockKeyOf } from '../sources/netlink/sockdiag';
import { MIN_RTT_NONE, SKMEM, TCPI, TCP_INFINITE_SSTHRESH } from '../sources/netlink/tcpinfo';
import { NETLINK_ROUTE, NetlinkSocket } from '../sources/netlink/socket';
import { QdiscRecord, TC_H_ROOT, dumpQdiscs } from '../sources/netlink/qdisc';
import { NetDevice, listDevices } from '../sources/devices';
import { NetdevAttrs, NetdevQueues, readDeviceAttrs, readNetdevQueues } from '../sources/sysfs/netdev';
import { SoftnetRow, readSoftnet } from '../sources/procfs/softnet';
import { Softirqs, readSoftirqs } from '../sources/procfs/softirqs';
import { CpuTicks, readProcStatCpus } from '../sources/procfs/stat';
import { NetstatGroups, readNetstat } from '../sources/procfs/netstat';
import { readSysctl } from '../sources/procfs/sysctl';
import { parsePidStat } from '../sources/procfs/ksoftirqd';
import { readProcTextOptional } from '../sources/procfs/read';
import { userHz } from '../sources/procfs/cpuinfo';
import { readTasks } from '../sources/procfs/tasks';
import { SocketOwnerFinder } from '../sources/procfs/sockowners';
import type { Logger } from '../core/log';
import type { OvsReader, OvsSnapshot as OvsSourceSnapshot } from '../sources/ovs/snapshot';
import { latestOvsInternalPorts } from '../sources/ovs/internal-ports';
import { isInternalType } from '../sources/ovs/parse-dpif';
import { VSWITCHD, parsePidFile } from '../sources/ovs/discover';
import type {
  CpuSnapshot,
  DeviceSnapshot,
  FlowKey,
  FlowSample,
  NodeSnapshot,
  OvsEvidence,
  OwnerSnapshot,
  PathDevices,
  QdiscSnapshot,
  SkMem,
  TaskSnapshot,
} from './types';
import type { DiscoveredFlow, FlowSource, NodeSource } from './sampler';
import { RouteLookup } from './route';
import { EthtoolClient, EthtoolFeatures, EthtoolRings } from '../sources/netlink/ethtool';
import { NetdevGenlClient, QueueStats } from '../sources/netlink/netdev-genl';

// ---------------------------------------------------------------------------------------------------
// sock_diag → FlowSample

const finite = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? undefined : x);

/** A tcp_info-like record (SockRecord.tcpInfo or a SockView read) to a FlowSample. */
interface TcpInfoReader {
  (name: keyof typeof TCPI): number | undefined;
}

function sampleFrom(get: TcpInfoReader, extra: {
  t: number;
  wallMs?: number;
  cc?: string;
  wqueue?: number;
  rqueue?: number;
  timer?: number;
  inode?: number;
  skmem?: SkMem;
  bbr?: FlowSample['bbr'];
  state?: number;
}): FlowSample {
  const ssthresh = get('sndSsthresh');
  const minRtt = get('minRtt');
  const appLimited = get('deliveryRateAppLimited');
  return {
    t: extra.t,
    wallMs: extra.wallMs,
    state: extra.state ?? get('state'),
    caState: get('caState'),
    cc: extra.cc,
    appLimited: appLimited === undefined ? undefined : appLimited === 1,
    sndMss: get('sndMss'),
    unacked: get('unacked'),
    sacked: get('sacked'),
    lost: get('lost'),
    retrans: get('retrans'),
    cwnd: get('sndCwnd'),
    ssthresh: ssthresh === undefined || ssthresh >= TCP_INFINITE_SSTHRESH ? undefined : ssthresh,
    rtt: get('rtt'),
    minRtt: minRtt === undefined || minRtt === MIN_RTT_NONE ? undefined : minRtt,
    pacingRate: finite(get('pacingRate')),
    maxPacingRate: finite(get('maxPacingRate')),
    deliveryRate: get('deliveryRate'),
    busyTime: get('busyTime'),
    rwndLimited: get('rwndLimited'),
    sndbufLimited: get('sndbufLimited'),
    bytesAcked: get('bytesAcked'),
    bytesReceived: get('bytesReceived'),
    bytesSent: get('bytesSent'),
    bytesRetrans: get('bytesRetrans'),
    totalRetrans: get('totalRetrans'),
    dsackDups: get('dsackDups'),
    notsentBytes: get('notsentBytes'),
    sndWnd: get('sndWnd'),
    rcvWnd: get('rcvWnd'),
    rcvSpace: get('rcvSpace'),
    rcvSsthresh: get('rcvSsthresh'),
    delivered: get('delivered'),
    segsOut: get('segsOut'),
    dataSegsOut: get('dataSegsOut'),
    wqueue: extra.wqueue,
    rqueue: extra.rqueue,
    timer: extra.timer,
    inode: extra.inode,
    skmem: extra.skmem,
    bbr: extra.bbr,
  };
}

function skmemOf(get: (i: number) => number | undefined): SkMem | undefined {
  const r = get(SKMEM.rmemAlloc);
  if (r === undefined) return undefined;
  return {
    rmemAlloc: r,
    rcvbuf: get(SKMEM.rcvbuf) ?? 0,
    wmemAlloc: get(SKMEM.wmemAlloc) ?? 0,
    sndbuf: get(SKMEM.sndbuf) ?? 0,
    fwdAlloc: get(SKMEM.fwdAlloc) ?? 0,
    wmemQueued: get(SKMEM.wmemQueued) ?? 0,
    optmem: get(SKMEM.optmem) ?? 0,
    backlog: get(SKMEM.backlog),
    drops: get(SKMEM.drops),
  };
}

/** From a live SockView (reads fields at fixed offsets; no decode of the whole struct). */
export function flowSampleFromView(v: SockView, t: number, wallMs?: number): FlowSample {
  return sampleFrom((n) => v.tcp(TCPI[n]), {
    t,
    wallMs,
    state: v.state,
    cc: v.cong(),
    wqueue: v.wqueue,
    rqueue: v.rqueue,
    timer: v.timer,
    inode: v.inode || undefined,
    skmem: skmemOf((i) => v.skmem(i)),
    bbr: v.hasBbr ? { bw: v.bbrBw() as number, minRtt: v.bbrMinRtt() as number, pacingGain: v.bbrPacingGain() as number, cwndGain: v.bbrCwndGain() as number } : undefined,
  });
}

/** From a fully decoded SockRecord (fixtures, the flows API). */
export function flowSampleFromRecord(r: SockRecord, t: number, wallMs?: number): FlowSample {
  const ti = r.tcpInfo ?? {};
  const sk = r.skmem;
  return sampleFrom((n) => ti[n], {
    t,
    wallMs,
    state: r.state,
    cc: r.cc,
    wqueue: r.wqueue,
    rqueue: r.rqueue,
    timer: r.timer,
    inode: r.inode || undefined,
    skmem: sk ? skmemOf((i) => sk[(Object.keys(SKMEM) as Array<keyof typeof SKMEM>).find((k) => SKMEM[k] === i) as keyof typeof SKMEM]) : undefined,
    bbr: r.bbr,
  });
}

export function flowKeyOfView(v: SockView): FlowKey {
  return { localIp: v.localIp(), localPort: v.sport, peerIp: v.peerIp(), peerPort: v.dport, cookie: v.cookie() };
}

// ---------------------------------------------------------------------------------------------------
// The live flow source

export interface SockDiagFlowSourceOptions {
  /** --diagnosis.watch selector source; "" = watch nothing explicitly (top flows only). */
  watch: string;
  /** Selector of the candidates for "top" (default: established TCP). */
  candidates?: string;
  kernelRelease?: string;
}

export class SockDiagFlowSource implements FlowSource {
  private readonly sd: SockDiag;
  private readonly candidates: CompiledSelector;
  private readonly watch: CompiledSelector | null;
  private readonly bodies = new Map<string, Buffer>();

  constructor(opts: SockDiagFlowSourceOptions) {
    this.sd = new SockDiag({ kernelRelease: opts.kernelRelease });
    const cand = opts.candidates ?? 'state established';
    this.watch = opts.watch.trim() === '' ? null : compileSelector(opts.watch);
    // Dump what either selector may match; the JS predicates decide exactly.
    this.candidates = compileSelector(this.watch ? `(${cand}) or (${opts.watch})` : cand);
  }

  async discover(): Promise<DiscoveredFlow[]> {
    const out: DiscoveredFlow[] = [];
    await this.sd.dump(this.candidates.plans, EXT_INFO, (v) => {
      if (!this.candidates.exact && !this.candidates.matches(v)) return;
      if (v.state !== 1) return; // only established flows carry data worth sampling
      out.push({
        key: flowKeyOfView(v),
        bytesAcked: v.tcp(TCPI.bytesAcked) ?? 0,
        bytesReceived: v.tcp(TCPI.bytesReceived) ?? 0,
        watched: this.watch !== null && this.watch.matches(v),
      });
    });
    return out;
  }

  async lookup(keys: readonly FlowKey[], t: number, wallMs: number): Promise<Array<FlowSample | null>> {
    const bodies = keys.map((k) => {
      const id = `${k.localIp}|${k.localPort}|${k.peerIp}|${k.peerPort}|${k.cookie ?? ''}`;
      let b = this.bodies.get(id);
      if (!b) {
        b = buildExactRequest(sockKeyOf(k), EXT_FLOWS);
        this.bodies.set(id, b);
      }
      return b;
    });
    if (this.bodies.size > 4 * keys.length + 64) {
      // Forget request bodies of flows no longer sampled.
      const keep = new Set(keys.map((k) => `${k.localIp}|${k.localPort}|${k.peerIp}|${k.peerPort}|${k.cookie ?? ''}`));
      for (const id of [...this.bodies.keys()]) if (!keep.has(id)) this.bodies.delete(id);
    }
    const views = await this.sd.lookupPrepared(bodies);
    return views.map((v) => (v ? flowSampleFromView(v, t, wallMs) : null));
  }

  close(): void {
    this.sd.close();
  }
}

// ---------------------------------------------------------------------------------------------------
// Node records → NodeSnapshot (pure)

export interface NodeParts {
  t: number;
  wallMs?: number;
  devices?: NetDevice[];
  /** sysfs attributes of the devices worth reading (path devices, wire shapers). */
  attrs?: Map<string, NetdevAttrs>;
  queues?: Map<string, NetdevQueues>;
  qdiscs?: QdiscRecord[];
  /** ethtool features and rings of the path devices (configuration, read now and then). */
  features?: Map<string, EthtoolFeatures>;
  rings?: Map<string, EthtoolRings>;
  /** netdev genl per-queue statistics of the path devices. */
  qstats?: Map<string, QueueStats[]>;
  softnet?: SoftnetRow[];
  softirqs?: Softirqs;
  stat?: CpuTicks[];
  netstat?: NetstatGroups;
  sysctl?: Record<string, string>;
  ovs?: OvsEvidence;
  ovsInternal?: ReadonlySet<string>;
  userHz?: number;
  owners?: OwnerSnapshot[];
  errors?: string[];
}

const DEVICE_KIND: Record<string, DeviceSnapshot['kind']> = {
  physical: 'physical',
  tun: 'tun',
  bridge: 'bridge',
  loopback: 'loopback',
  'ovs-internal': 'ovs-internal',
};

export function buildNodeSnapshot(p: NodeParts): NodeSnapshot {
  const byIndex = new Map((p.devices ?? []).map((d) => [d.ifindex, d]));
  const devices: DeviceSnapshot[] = [];
  for (const [name, a] of p.attrs ?? []) {
    const d = (p.devices ?? []).find((x) => x.name === name);
    const s = a.stats;
    const q = p.queues?.get(name);
    const kind: DeviceSnapshot['kind'] = d ? (DEVICE_KIND[d.class] ?? (d.kind === 'veth' ? 'veth' : d.kind === 'ifb' ? 'ifb' : 'other')) : undefined;
    const feat = p.features?.get(name);
    const ring = p.rings?.get(name);
    const qs = p.qstats?.get(name);
    const txq = qs?.filter((x) => x.queueType === 'tx');
    const sumTx = (c: string) => (txq && txq.some((x) => x.counters.has(c)) ? txq.reduce((a, x) => a + (x.counters.get(c) ?? 0), 0) : undefined);
    devices.push({
      name,
      kind,
      ovsInternal: p.ovsInternal?.has(name) || d?.class === 'ovs-internal' || undefined,
      speedBps: a.speedMbps !== undefined && a.speedMbps > 0 ? a.speedMbps * 1e6 : undefined,
      mtu: a.mtu,
      operUp: a.operstate === undefined ? undefined : a.operstate === 'up' || a.operstate === 'unknown',
      rxBytes: s.rx_bytes,
      txBytes: s.tx_bytes,
      rxPackets: s.rx_packets,
      txPackets: s.tx_packets,
      rxDropped: s.rx_dropped,
      txDropped: s.tx_dropped,
      rxErrors: s.rx_errors,
      txErrors: s.tx_errors,
      rxMissed: s.rx_missed_errors,
      rxFifo: s.rx_fifo_errors,
      txFifo: s.tx_fifo_errors,
      txStop: sumTx('tx-stop'),
      txWake: sumTx('tx-wake'),
      rxRing: ring?.rx,
      rxRingMax: ring?.rxMax,
      txRing: ring?.tx,
      txRingMax: ring?.txMax,
      tso: feat?.get('tx-tcp-segmentation')?.active,
      gso: feat?.get('tx-generic-segmentation')?.active,
      gro: feat?.get('rx-gro')?.active,
      rxQueues: q?.rx.length,
      txQueues: q?.tx.length,
      rps: q ? q.rx.some((r) => (r.rpsCpus?.length ?? 0) > 0) : undefined,
    });
  }
  const qdiscs: QdiscSnapshot[] = (p.qdiscs ?? []).map((q) => ({
    device: byIndex.get(q.ifindex)?.name ?? `ifindex${q.ifindex}`,
    kind: q.kind,
    handle: q.handle.toString(16),
    parent: q.parent.toString(16),
    root: q.parent === TC_H_ROOT,
    bytes: q.bytes,
    packets: q.packets,
    drops: q.drops,
    overlimits: q.overlimits,
    requeues: q.requeues,
    backlogBytes: q.backlog,
    backlogPackets: q.qlen,
    fqThrottled: q.fq?.throttled,
    fqThrottledFlows: q.fq?.throttledFlows,
    fqFlowsPlimit: q.fq?.flowsPlimit,
  }));
  const cpus = new Map<number, CpuSnapshot>();
  const cpu = (n: number) => {
    let c = cpus.get(n);
    if (!c) cpus.set(n, (c = { cpu: n }));
    return c;
  };
  for (const r of p.softnet ?? []) {
    const c = cpu(r.cpu);
    c.softnetProcessed = r.processed;
    c.softnetDropped = r.dropped;
    c.softnetTimeSqueeze = r.timeSqueeze;
    c.softnetBacklog = r.backlogLen;
  }
  if (p.softirqs) {
    const rx = p.softirqs.vectors.find((v) => v.name === 'NET_RX');
    const tx = p.softirqs.vectors.find((v) => v.name === 'NET_TX');
    p.softirqs.cpus.forEach((n, i) => {
      // /proc/softirqs lists possible CPUs; only keep those other sources know or that did work.
      if (rx && (cpus.has(n) || rx.counts[i] > 0)) cpu(n).netRx = rx.counts[i];
      if (tx && cpus.has(n)) cpu(n).netTx = tx.counts[i];
    });
  }
  for (const r of p.stat ?? []) {
    const c = cpu(r.cpu);
    const tk = r.ticks;
    // user nice system idle iowait irq softirq steal (guest is already inside user/nice)
    c.totalTicks = tk.slice(0, 8).reduce((a, b) => a + b, 0);
    c.softirqTicks = tk[6];
    c.idleTicks = (tk[3] ?? 0) + (tk[4] ?? 0);
    c.irqTicks = tk[5];
    c.stealTicks = tk[7];
  }
  const tcpExt: Record<string, number> = {};
  for (const [k, v] of p.netstat?.get('TcpExt') ?? []) tcpExt[k] = v;
  return {
    t: p.t,
    wallMs: p.wallMs,
    devices,
    qdiscs,
    cpus: [...cpus.values()].sort((a, b) => a.cpu - b.cpu),
    ovs: p.ovs,
    tcpExt: p.netstat ? tcpExt : undefined,
    sysctl: p.sysctl,
    userHz: p.userHz,
    owners: p.owners,
    errors: p.errors ?? [],
  };
}

/** The OVS collector's snapshot → the numbers the rules read. */
export function ovsEvidenceOf(s: OvsSourceSnapshot, vswitchdCpuSeconds?: number, vswitchdTasks?: TaskSnapshot[]): OvsEvidence | undefined {
  const u = s.unixctl;
  if (!u.up && !s.kernel.state) return undefined;
  const datapaths = (u.datapaths ?? []).map((d) => ({ name: d.name, type: d.type, hit: d.hit, missed: d.missed, lost: d.lost, flows: d.flows }));
  const ports = (u.datapaths ?? []).flatMap((d) =>
    d.ports.map((p) => ({
      datapath: d.name,
      name: p.name,
      internal: isInternalType(p.type),
      rxPackets: p.stats?.rxPackets,
      txPackets: p.stats?.txPackets,
      rxDropped: p.stats?.rxDropped,
      txDropped: p.stats?.txDropped,
    })),
  );
  const lost = (u.pmd ?? []).reduce<number | undefined>((a, t) => (t.lostUpcalls === undefined ? a : (a ?? 0) + t.lostUpcalls), undefined);
  const ok = (u.pmd ?? []).reduce<number | undefined>((a, t) => (t.upcalls === undefined ? a : (a ?? 0) + t.upcalls), undefined);
  return { datapaths, ports, upcallSuccess: ok, upcallFailed: lost, vswitchdCpuSeconds, vswitchdTasks };
}

/**
 * The devices a flow crosses on this node: the route's egress device; when it is an OVS internal port,
 * the uplink is the bridge's other non-internal port (the "NIC"); ifb devices count as wire shapers.
 */
export function pathDevicesFor(egress: string | undefined, ovs: OvsSourceSnapshot | null, internal: ReadonlySet<string>, devices: readonly NetDevice[]): PathDevices {
  const extra = devices.filter((d) => d.kind === 'ifb').map((d) => d.name);
  if (!egress) return { extraDevices: extra };
  const viaOvs = internal.has(egress) || devices.find((d) => d.name === egress)?.class === 'ovs-internal';
  let nic = egress;
  if (viaOvs && ovs?.unixctl.dpif) {
    for (const b of ovs.unixctl.dpif) {
      for (const br of b.bridges) {
        if (!br.ports.some((p) => p.name === egress)) continue;
        // The physical port ("system"), else any other non-internal port (a tunnel), never a patch port.
        const uplink =
          br.ports.find((p) => p.type === 'system' || p.type === '') ?? br.ports.find((p) => !isInternalType(p.type) && p.type !== 'patch');
        if (uplink) nic = uplink.name;
      }
    }
  }
  return { ipDevice: egress, nicDevice: nic, viaOvs, extraDevices: extra };
}

// ---------------------------------------------------------------------------------------------------
// The live node source

/** Threads read per process (socket owners, ovs-vswitchd), and owner processes per socket. */
const MAX_THREADS = 256;
const MAX_OWNER_PIDS = 8;

/** ethtool features and rings are configuration: re-read at most this often. */
const CONFIG_TTL_MS = 30000;

export const DIAGNOSIS_SYSCTLS = [
  'net.ipv4.tcp_wmem',
  'net.ipv4.tcp_rmem',
  'net.ipv4.tcp_limit_output_bytes',
  'net.ipv4.tcp_congestion_control',
  'net.core.default_qdisc',
  'net.core.netdev_max_backlog',
  'net.core.netdev_budget',
];

export interface LiveNodeSourceOptions {
  procfs: string;
  sysfs: string;
  /** Where the warnings that are logged once go (no permission to read /proc/PID/fd, ...). */
  log?: Pick<Logger, 'warn'>;
  /** An OvsReader (the OVS collector's source class), or null when OVS is not to be read. */
  ovs: Pick<OvsReader, 'read' | 'close' | 'client'> | null;
  /** Least time between two OVS reads (it is slower than the rest). */
  ovsIntervalMs: number;
}

export class LiveNodeSource implements NodeSource {
  private rtnl: NetlinkSocket | null = null;
  private readonly route = new RouteLookup();
  private ovsSnap: OvsSourceSnapshot | null = null;
  private ovsAt = -Infinity;
  /** Devices whose sysfs attributes each snapshot reads. */
  private readonly interesting = new Set<string>();
  private ethtool: EthtoolClient | null = null;
  private netdev: NetdevGenlClient | null = null;
  /** ethtool configuration per device, re-read after CONFIG_TTL_MS. */
  private readonly config = new Map<string, { at: number; features?: EthtoolFeatures; rings?: EthtoolRings }>();
  private qstatsUnsupported = false;
  private readonly hz = userHz();
  private readonly ownerFinder: SocketOwnerFinder;

  constructor(private readonly o: LiveNodeSourceOptions) {
    this.ownerFinder = new SocketOwnerFinder(o.procfs);
  }

  private internalSet(): Set<string> {
    const s = new Set<string>();
    for (const p of latestOvsInternalPorts()?.ports.keys() ?? []) s.add(p);
    for (const p of this.ovsSnap?.internalPorts ?? []) s.add(p.device);
    return s;
  }

  private ovsInFlight: Promise<void> | null = null;

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

  /** The pid of ovs-vswitchd (from the unixctl endpoint, or its pid file next to the control socket). */
  private vswitchdPid(): number | undefined {
    const ep = this.o.ovs?.client.endpoint;
    if (!ep) return undefined;
    if (ep.pid) return ep.pid;
    const text = readProcTextOptional(path.join(path.dirname(ep.path), `${VSWITCHD}.pid`));
    return text ? parsePidFile(text, `${VSWITCHD}.pid`) : undefined;
  }

  /**
   * CPU seconds of ovs-vswitchd so far and its threads' counters, read at every snapshot (its datapath
   * counters are read less often).
   */
  private vswitchdCpu(errors: string[]): { seconds?: number; tasks?: TaskSnapshot[] } {
    const pid = this.vswitchdPid();
    if (!pid) return {};
    try {
      const text = readProcTextOptional(path.join(this.o.procfs, String(pid), 'stat'));
      if (!text) return {};
      const ps = parsePidStat(text);
      let tasks: TaskSnapshot[] | undefined;
      try {
        tasks = readTasks(this.o.procfs, pid, MAX_THREADS, true);
      } catch (e) {
        this.warnOnce('vswitchd tasks', `ovs-vswitchd threads: ${(e as Error).message}`);
      }
      return { seconds: (ps.utime + ps.stime) / this.hz, tasks };
    } catch (e) {
      errors.push(`ovs-vswitchd stat: ${(e as Error).message}`);
      return {};
    }
  }

  private readonly warned = new Set<string>();
  private warnOnce(key: string, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.o.log?.warn(msg);
  }

  /** The processes holding each socket inode, and their threads (failing soft: "unknown" + a reason). */
  private owners(inodes: readonly number[], t: number): OwnerSnapshot[] | undefined {
    if (inodes.length === 0) return undefined;
    const found = this.ownerFinder.find(inodes, t);
    const out: OwnerSnapshot[] = [];
    for (const [inode, o] of found) {
      if (o.unknown) {
        if (/permission/.test(o.unknown)) this.warnOnce('owners EACCES', `diagnosis: the processes of a sampled socket are unknown: ${o.unknown}`);
        out.push({ inode, pids: [], tasks: [], unknown: o.unknown });
        continue;
      }
      const tasks: TaskSnapshot[] = [];
      let unknown: string | undefined;
      for (const pid of o.pids.slice(0, MAX_OWNER_PIDS)) {
        try {
          tasks.push(...readTasks(this.o.procfs, pid, MAX_THREADS));
        } catch (e) {
          unknown = `threads of pid ${pid}: ${(e as Error).message}`;
          this.warnOnce(`owner tasks ${(e as { code?: string }).code}`, `diagnosis: ${unknown}`);
        }
      }
      out.push({ inode, pids: o.pids, tasks, unknown: tasks.length === 0 ? (unknown ?? 'the owning processes exited') : undefined });
    }
    return out;
  }

  async snapshot(t: number, inodes: readonly number[] = []): Promise<NodeSnapshot> {
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
        return (await dumpQdiscs(this.rtnl)).qdiscs;
      }),
      this.readOvs(t, errors),
    ]);
    const names = new Set(this.interesting);
    for (const d of devices ?? []) if (d.kind === 'ifb') names.add(d.name);
    const attrs = new Map<string, NetdevAttrs>();
    const queues = new Map<string, NetdevQueues>();
    await Promise.all(
      [...names].map(async (n) => {
        const a = await attemptAsync(`sysfs ${n}`, () => readDeviceAttrs(this.o.sysfs, devices?.find((d) => d.name === n) ?? { name: n }));
        if (a) attrs.set(n, a);
        const q = await attemptAsync(`sysfs ${n} queues`, () => readNetdevQueues(this.o.sysfs, n));
        if (q) queues.set(n, q);
      }),
    );
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
        if (!this.qstatsUnsupported) {
          this.netdev ??= new NetdevGenlClient();
          try {
            qstats.set(n, await this.netdev.qstats(ifindex, n));
          } catch (e) {
            const code = (e as { code?: string }).code;
            if (code === 'EOPNOTSUPP' || code === 'ENOENT') this.qstatsUnsupported = code === 'ENOENT';
            else errors.push(`qstats ${n}: ${(e as Error).message}`);
          }
        }
      }),
    );
    const sysctl: Record<string, string> = {};
    for (const name of DIAGNOSIS_SYSCTLS) {
      const v = attempt(`sysctl ${name}`, () => readSysctl(this.o.procfs, name));
      if (v) sysctl[name] = 'numbers' in v ? v.numbers.join(' ') : v.text;
    }
    let ovsEv: OvsEvidence | undefined;
    if (this.ovsSnap) {
      const cpu = this.vswitchdCpu(errors);
      ovsEv = ovsEvidenceOf(this.ovsSnap, cpu.seconds, cpu.tasks);
    }
    return buildNodeSnapshot({
      t,
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
      ovs: ovsEv,
      ovsInternal: this.internalSet(),
      userHz: this.hz,
      owners: attempt('socket owners', () => this.owners(inodes, t)),
      errors,
    });
  }

  async pathFor(key: FlowKey): Promise<PathDevices> {
    const [oif, devices] = await Promise.all([this.route.oif(key.peerIp), listDevices(this.o.sysfs)]);
    if (this.o.ovs && !this.ovsSnap) await (this.ovsInFlight ?? this.readOvs(performance.now(), []));
    const egress = oif === undefined ? undefined : devices.find((d) => d.ifindex === oif)?.name;
    const p = pathDevicesFor(egress, this.ovsSnap, this.internalSet(), devices);
    for (const n of [p.ipDevice, p.nicDevice, ...(p.extraDevices ?? [])]) if (n && devices.some((d) => d.name === n)) this.interesting.add(n);
    return p;
  }

  close(): void {
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
