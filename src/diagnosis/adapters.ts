// Conversion of the sources' records to the diagnosis types, and the FlowSource / NodeSource the sampler
// runs on. This file reads nothing itself: the reading is src/sources/flow-reader.ts (sock_diag, the same
// SockDiag class and selectors as the flows collector) and src/sources/node-evidence.ts (/proc, /sys, tc,
// ethtool, routes and OVS through the readers the collectors use). The pure converters
// (flowSampleFromRecord, buildNodeSnapshot, ovsEvidenceOf, pathDevicesFor) are unit tested on fixtures;
// the two classes only join a reader to a converter.

import { FlowReader, FlowReaderOptions } from '../sources/flow-reader';
import { NodeEvidenceReader, NodeReaderOptions } from '../sources/node-evidence';
import type { SockRecord, SockView } from '../sources/netlink/sockdiag';
import { MIN_RTT_NONE, SKMEM, TCPI, TCP_INFINITE_SSTHRESH } from '../sources/netlink/tcpinfo';
import type { TcpInfoField } from '../sources/netlink/tcpinfo';
import { QdiscRecord, TC_H_ROOT } from '../sources/netlink/qdisc';
import type { NetDevice } from '../sources/devices';
import type { NetdevAttrs, NetdevQueues } from '../sources/sysfs/netdev';
import type { SoftnetRow } from '../sources/procfs/softnet';
import type { Softirqs } from '../sources/procfs/softirqs';
import type { CpuTicks } from '../sources/procfs/stat';
import type { NetstatGroups } from '../sources/procfs/netstat';
import type { OvsSnapshot as OvsSourceSnapshot } from '../sources/ovs/snapshot';
import { isInternalType } from '../sources/ovs/parse-dpif';
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
import { discoveryRate } from './sampler';
import type { DiscoverWant, DiscoveredFlow, FlowSource, NodeSource, RatedFlow } from './sampler';
import { TopFlows } from '../sources/flow-top';
import type { EthtoolFeatures, EthtoolRings } from '../sources/netlink/ethtool';
import type { QueueStats } from '../sources/netlink/netdev-genl';

// ---------------------------------------------------------------------------------------------------
// sock_diag → FlowSample

const finite = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? undefined : x);

/** A tcp_info-like record (SockRecord.tcpInfo or a SockView read) to a FlowSample. */
interface TcpInfoReader {
  (field: TcpInfoField): number | undefined;
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
  const ssthresh = get(TCPI.sndSsthresh);
  const minRtt = get(TCPI.minRtt);
  const appLimited = get(TCPI.deliveryRateAppLimited);
  return {
    t: extra.t,
    wallMs: extra.wallMs,
    state: extra.state ?? get(TCPI.state),
    caState: get(TCPI.caState),
    cc: extra.cc,
    appLimited: appLimited === undefined ? undefined : appLimited === 1,
    sndMss: get(TCPI.sndMss),
    unacked: get(TCPI.unacked),
    sacked: get(TCPI.sacked),
    lost: get(TCPI.lost),
    retrans: get(TCPI.retrans),
    cwnd: get(TCPI.sndCwnd),
    ssthresh: ssthresh === undefined || ssthresh >= TCP_INFINITE_SSTHRESH ? undefined : ssthresh,
    rtt: get(TCPI.rtt),
    minRtt: minRtt === undefined || minRtt === MIN_RTT_NONE ? undefined : minRtt,
    pacingRate: finite(get(TCPI.pacingRate)),
    maxPacingRate: finite(get(TCPI.maxPacingRate)),
    deliveryRate: get(TCPI.deliveryRate),
    busyTime: get(TCPI.busyTime),
    rwndLimited: get(TCPI.rwndLimited),
    sndbufLimited: get(TCPI.sndbufLimited),
    bytesAcked: get(TCPI.bytesAcked),
    bytesReceived: get(TCPI.bytesReceived),
    bytesSent: get(TCPI.bytesSent),
    bytesRetrans: get(TCPI.bytesRetrans),
    totalRetrans: get(TCPI.totalRetrans),
    dsackDups: get(TCPI.dsackDups),
    notsentBytes: get(TCPI.notsentBytes),
    sndWnd: get(TCPI.sndWnd),
    rcvWnd: get(TCPI.rcvWnd),
    rcvSpace: get(TCPI.rcvSpace),
    rcvSsthresh: get(TCPI.rcvSsthresh),
    delivered: get(TCPI.delivered),
    segsOut: get(TCPI.segsOut),
    dataSegsOut: get(TCPI.dataSegsOut),
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
  return sampleFrom((f) => v.tcp(f), {
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
  return sampleFrom((f) => ti[f.name], {
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

/** The reader's options: --diagnosis.watch selector source ("" = top flows only), candidates, kernel release. */
export type SockDiagFlowSourceOptions = FlowReaderOptions;

export class SockDiagFlowSource implements FlowSource {
  private readonly reader: FlowReader;

  constructor(opts: SockDiagFlowSourceOptions) {
    this.reader = new FlowReader(opts);
  }

  openedConnections(): number | undefined {
    return this.reader.openedConnections();
  }

  /** Bytes moved (acked + received) per socket cookie at the previous discovery, and the next map. */
  private prevBytes = new Map<number, number>();
  private nextBytes = new Map<number, number>();
  private top: TopFlows | undefined;

  /** Without `want`: every candidate, unrated (the diagnose command's flow choice). */
  discover(): Promise<DiscoveredFlow[]>;
  /** With `want`: the sampler's discovery, every flow rated against this source's previous discovery. */
  discover(want: DiscoverWant): Promise<RatedFlow[]>;
  async discover(want?: DiscoverWant): Promise<DiscoveredFlow[]> {
    const record = (v: SockView, watched: boolean): DiscoveredFlow => ({
      key: flowKeyOfView(v),
      bytesAcked: v.tcp(TCPI.bytesAcked) ?? 0,
      bytesReceived: v.tcp(TCPI.bytesReceived) ?? 0,
      watched,
    });
    if (!want) {
      const all: DiscoveredFlow[] = [];
      await this.reader.discover((v, watched) => void all.push(record(v, watched)));
      return all;
    }
    const out: RatedFlow[] = [];
    const rated = (v: SockView, watched: boolean, bytesPerSecond: number): RatedFlow => ({ ...record(v, watched), bytesPerSecond });
    // Only the watched flows, those to keep and the busiest others become records; every other socket
    // costs one entry in a number → number map (its bytes, for the next discovery's rate).
    if (!this.top || this.top.cap !== want.busiest) this.top = new TopFlows(want.busiest);
    const top = this.top;
    top.reset();
    const keep = new Set<number>();
    for (const c of want.keep) if (/^\d+$/.test(c)) keep.add(Number(c));
    const prev = this.prevBytes;
    const next = this.nextBytes;
    next.clear();
    await this.reader.discover((v, watched) => {
      const total = (v.tcp(TCPI.bytesAcked) ?? 0) + (v.tcp(TCPI.bytesReceived) ?? 0);
      const cookie = v.cookieKey;
      const rate = discoveryRate(total, prev.get(cookie), want.seconds);
      next.set(cookie, total);
      if (watched || keep.has(cookie)) out.push(rated(v, watched, rate));
      else top.offer(rate, total, v);
    });
    this.prevBytes = next;
    this.nextBytes = prev;
    for (const c of top.items) out.push(rated(c.view, false, c.delta));
    return out;
  }

  lookup(keys: readonly FlowKey[], t: number, wallMs: number): Array<FlowSample | null> | Promise<Array<FlowSample | null>> {
    const out = new Array<FlowSample | null>(keys.length).fill(null);
    // Each answer is converted where it arrives (no copy of the message, no view per flow), and the
    // samples are returned within this call when the lookup finished in it (FlowReader.lookupEachNow).
    const pending = this.reader.lookupEachNow(keys, (i, v) => {
      out[i] = flowSampleFromView(v, t, wallMs);
    });
    return pending ? pending.then(() => out) : out;
  }

  close(): void {
    this.reader.close();
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
  /** Processes holding the sampled sockets, and their threads. */
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
  let datapath: string | undefined;
  if (viaOvs && ovs?.unixctl.dpif) {
    for (const b of ovs.unixctl.dpif) {
      for (const br of b.bridges) {
        if (!br.ports.some((p) => p.name === egress)) continue;
        datapath = b.datapath;
        // The physical port ("system"), else any other non-internal port (a tunnel), never a patch port.
        const uplink =
          br.ports.find((p) => p.type === 'system' || p.type === '') ?? br.ports.find((p) => !isInternalType(p.type) && p.type !== 'patch');
        if (uplink) nic = uplink.name;
      }
    }
  }
  if (viaOvs && datapath === undefined) {
    // ovs-vswitchd not readable: the kernel datapath holding the port (genetlink knows no bridges, so the
    // uplink is only known when the datapath has a single "system" port).
    const dp = ovs?.kernel.state?.datapaths.find((d) => d.vports.some((v) => v.name === egress));
    if (dp) {
      datapath = `system@${dp.name}`;
      const sys = dp.vports.filter((v) => v.type === 'system' && v.name);
      if (sys.length === 1) nic = sys[0].name!;
    }
  }
  return { ipDevice: egress, nicDevice: nic, viaOvs, ...(datapath ? { datapath } : {}), extraDevices: extra };
}

// ---------------------------------------------------------------------------------------------------
// The live node source

export const DIAGNOSIS_SYSCTLS = [
  'net.ipv4.tcp_wmem',
  'net.ipv4.tcp_rmem',
  'net.ipv4.tcp_limit_output_bytes',
  'net.ipv4.tcp_congestion_control',
  'net.core.default_qdisc',
  'net.core.netdev_max_backlog',
  'net.core.netdev_budget',
];

export type LiveNodeSourceOptions = Omit<NodeReaderOptions, 'sysctls'>;

export class LiveNodeSource implements NodeSource {
  private readonly reader: NodeEvidenceReader;

  constructor(o: LiveNodeSourceOptions) {
    this.reader = new NodeEvidenceReader({ ...o, sysctls: DIAGNOSIS_SYSCTLS });
  }

  async snapshot(t: number, inodes: readonly number[] = []): Promise<NodeSnapshot> {
    const r = await this.reader.read(t, inodes);
    return buildNodeSnapshot({
      ...r,
      t,
      ovs: r.ovs ? ovsEvidenceOf(r.ovs, r.vswitchdCpuSeconds, r.vswitchdTasks) : undefined,
    });
  }

  async pathFor(key: FlowKey): Promise<PathDevices> {
    const e = await this.reader.egress(key.peerIp);
    const p = pathDevicesFor(e.egress, e.ovs, e.ovsInternal, e.devices);
    for (const n of [p.ipDevice, p.nicDevice, ...(p.extraDevices ?? [])]) if (n && e.devices.some((d) => d.name === n)) this.reader.watchDevice(n);
    return p;
  }

  close(): void {
    this.reader.close();
  }
}
