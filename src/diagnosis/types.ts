// Input and output types of the diagnosis (issue 5). The diagnosis does not depend on the shape of the
// other sources' records: adapters (src/diagnosis/adapters.ts) turn sock_diag, /proc, /sys, tc and OVS
// records into these, and everything else in src/diagnosis is pure functions over them.
//
// Units are the kernel's: rates in bytes/s, chronographs and RTTs in microseconds, windows and memory in
// bytes, cwnd/unacked in segments. A field the kernel did not send is `undefined`, never 0.

// ---------------------------------------------------------------------------------------------------
// Flows

export interface FlowKey {
  localIp: string;
  localPort: number;
  peerIp: string;
  peerPort: number;
  /** Socket cookie (INET_DIAG id.idiag_cookie) as a decimal string; pins the lookup to one socket. */
  cookie?: string;
}

/** `INET_DIAG_SKMEMINFO` (`sk_get_meminfo()`, docs/kernel-sources.md §3.5), bytes. */
export interface SkMem {
  rmemAlloc: number; // r
  rcvbuf: number; // rb
  wmemAlloc: number; // t: skbs below TCP (qdisc/driver), what TSQ limits
  sndbuf: number; // tb
  fwdAlloc: number; // f
  wmemQueued: number; // w: write + retransmit queue, compared with sndbuf when the app writes
  optmem: number; // o
  backlog?: number; // bl
  drops?: number; // d
}

/** `struct tcp_bbr_info` (docs/kernel-sources.md §3.6). */
export interface BbrSample {
  /** bytes/s, BBR's max-filtered bandwidth estimate. */
  bw: number;
  /** µs */
  minRtt: number;
  /** gains as ratios (kernel value / 256). */
  pacingGain: number;
  cwndGain: number;
}

/**
 * One read of one TCP socket (`struct tcp_info` + skmeminfo + cc), taken at `t`. Field names are the
 * kernel's (`tcpi_<name>` in camelCase).
 */
export interface FlowSample {
  /** Sampler clock, milliseconds (monotonic). */
  t: number;
  /** Wall clock, ms since the epoch (for the API). */
  wallMs?: number;
  state?: number;
  caState?: number;
  cc?: string;
  /** tcpi_delivery_rate_app_limited: the kept rate sample was app-limited (sticky, docs/kernel-sources.md §3.3). */
  appLimited?: boolean;
  sndMss?: number;
  unacked?: number;
  sacked?: number;
  lost?: number;
  retrans?: number;
  cwnd?: number;
  /** undefined when not set (0x7FFFFFFF). */
  ssthresh?: number;
  /** µs */
  rtt?: number;
  /** µs; undefined when none yet (0xFFFFFFFF). */
  minRtt?: number;
  /** bytes/s; undefined = unlimited (2^64-1) or absent. */
  pacingRate?: number;
  /** bytes/s; undefined = not set (2^64-1) or absent. */
  maxPacingRate?: number;
  /** bytes/s */
  deliveryRate?: number;
  /** µs, kernel chronographs (docs/kernel-sources.md §3.4). busyTime includes rwndLimited and sndbufLimited. */
  busyTime?: number;
  rwndLimited?: number;
  sndbufLimited?: number;
  bytesAcked?: number;
  bytesReceived?: number;
  bytesSent?: number;
  bytesRetrans?: number;
  totalRetrans?: number;
  dsackDups?: number;
  notsentBytes?: number;
  /** bytes, peer's advertised window. */
  sndWnd?: number;
  /** bytes, our advertised window (6.2+). */
  rcvWnd?: number;
  rcvSpace?: number;
  rcvSsthresh?: number;
  delivered?: number;
  segsOut?: number;
  dataSegsOut?: number;
  /** idiag_wqueue: bytes in the write queue not yet acked (sent + unsent). */
  wqueue?: number;
  /** idiag_rqueue: bytes received not yet read. */
  rqueue?: number;
  /** idiag_inode: the socket's inode (finds the processes that hold it, /proc/PID/fd). */
  inode?: number;
  /** idiag_timer (1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 persist (zero window)). */
  timer?: number;
  skmem?: SkMem;
  bbr?: BbrSample;
}

// ---------------------------------------------------------------------------------------------------
// Classification of time (the "limited seconds")

/**
 * What held the flow during an interval. The reasons of one flow sum to wall time.
 * See docs/diagnosis.md for the definition of each.
 */
export const REASONS = [
  'idle',
  'app',
  'sndbuf',
  'rwnd',
  'cwnd',
  'pacing',
  'pacing_capped',
  'tsq',
  'unclassified',
] as const;
export type Reason = (typeof REASONS)[number];

export type ReasonSeconds = Record<Reason, number>;

export function zeroReasons(): ReasonSeconds {
  return { idle: 0, app: 0, sndbuf: 0, rwnd: 0, cwnd: 0, pacing: 0, pacing_capped: 0, tsq: 0, unclassified: 0 };
}

/** The instantaneous state of one sample (what would stop tcp_write_xmit() right now). */
export type SampledState = Exclude<Reason, 'idle'>;

/** Facts about the node that change the thresholds of the sampled classification. */
export interface ClassifyContext {
  /** net.ipv4.tcp_limit_output_bytes (TSQ cap for unpaced sockets). Default 4 MiB (6.18). */
  tcpLimitOutputBytes?: number;
  /** The egress qdisc is fq (EDT pacing applies to every flow). */
  fqOnEgress?: boolean;
}

// ---------------------------------------------------------------------------------------------------
// Node evidence (one snapshot; the diagnosis uses deltas between two)

export interface DeviceSnapshot {
  name: string;
  /** 'physical' = has a bus device; the rest from the link kind. */
  kind?: 'physical' | 'veth' | 'tun' | 'ifb' | 'bridge' | 'loopback' | 'ovs-internal' | 'other';
  /** Set when the device is an OVS internal port (from the OVS collector). */
  ovsInternal?: boolean;
  /** Link speed in bits/s (sysfs speed, Mb/s × 1e6); undefined when unknown (-1). */
  speedBps?: number;
  mtu?: number;
  operUp?: boolean;
  rxBytes?: number;
  txBytes?: number;
  rxPackets?: number;
  txPackets?: number;
  rxDropped?: number;
  txDropped?: number;
  rxErrors?: number;
  txErrors?: number;
  rxMissed?: number;
  rxFifo?: number;
  txFifo?: number;
  /** netdev qstats tx-stop / tx-wake: queue stopped by the driver (ring full). */
  txStop?: number;
  txWake?: number;
  /** ethtool rings. */
  rxRing?: number;
  rxRingMax?: number;
  txRing?: number;
  txRingMax?: number;
  tso?: boolean;
  gso?: boolean;
  gro?: boolean;
  rxQueues?: number;
  txQueues?: number;
  /** True if any rx queue has a non-zero rps_cpus mask. */
  rps?: boolean;
}

export interface QdiscSnapshot {
  device: string;
  kind: string;
  handle?: string;
  parent?: string;
  root: boolean;
  bytes?: number;
  packets?: number;
  drops?: number;
  overlimits?: number;
  requeues?: number;
  backlogBytes?: number;
  backlogPackets?: number;
  /** fq: tc_fq_qd_stats.throttled (counter) and throttled_flows (gauge). */
  fqThrottled?: number;
  fqThrottledFlows?: number;
  fqFlowsPlimit?: number;
}

export interface CpuSnapshot {
  cpu: number;
  softnetProcessed?: number;
  softnetDropped?: number;
  softnetTimeSqueeze?: number;
  softnetBacklog?: number;
  /** /proc/softirqs NET_RX / NET_TX handler runs. */
  netRx?: number;
  netTx?: number;
  /** /proc/stat ticks (USER_HZ): softirq column, and the sum of the first eight columns. */
  softirqTicks?: number;
  totalTicks?: number;
  idleTicks?: number;
  irqTicks?: number;
  stealTicks?: number;
}

/** One thread's CPU counters (/proc/PID/task/TID/stat, schedstat, status). */
export interface TaskSnapshot {
  pid: number;
  tid: number;
  comm: string;
  state?: string;
  /** utime + stime, USER_HZ ticks. */
  cpuTicks: number;
  /** schedstat: ns on a CPU, ns runnable waiting on a run queue. */
  runNs?: number;
  waitNs?: number;
  /** The CPU it last ran on. */
  processor?: number;
  /** Times it blocked (voluntary context switches). */
  voluntarySwitches?: number;
}

/** The processes holding a socket (by inode) and their threads. */
export interface OwnerSnapshot {
  inode: number;
  pids: number[];
  tasks: TaskSnapshot[];
  /** Why nothing is known (permission, not found): the evidence is "unknown", not "idle". */
  unknown?: string;
}

export interface OvsDatapathSnapshot {
  name: string;
  type?: string; // 'system' | 'netdev'
  hit?: number;
  missed?: number;
  lost?: number;
  flows?: number;
}

export interface OvsPortSnapshot {
  datapath: string;
  name: string;
  internal: boolean;
  rxPackets?: number;
  txPackets?: number;
  rxDropped?: number;
  txDropped?: number;
}

export interface OvsEvidence {
  datapaths: OvsDatapathSnapshot[];
  ports: OvsPortSnapshot[];
  /** userspace datapath: upcalls (miss with success / failed upcall). */
  upcallSuccess?: number;
  upcallFailed?: number;
  /** CPU seconds used by ovs-vswitchd so far (utime + stime), to derive its CPU share. */
  vswitchdCpuSeconds?: number;
  /** ovs-vswitchd's threads (the userspace datapath forwards in them). */
  vswitchdTasks?: TaskSnapshot[];
}

/** Everything the diagnosis needs from one node at one instant. */
export interface NodeSnapshot {
  /** Sampler clock, ms (monotonic). */
  t: number;
  wallMs?: number;
  devices: DeviceSnapshot[];
  qdiscs: QdiscSnapshot[];
  cpus: CpuSnapshot[];
  ovs?: OvsEvidence;
  /** /proc/net/netstat TcpExt counters by name. */
  tcpExt?: Record<string, number>;
  /** Sysctls by dotted name (net.ipv4.tcp_wmem = "4096 16384 4194304"). */
  sysctl?: Record<string, string>;
  /** USER_HZ of the /proc/stat ticks (100). */
  userHz?: number;
  /** Processes holding the sampled flows' sockets (by socket inode) and their threads. */
  owners?: OwnerSnapshot[];
  /** Sources that could not be read in this snapshot ("qdisc: EPERM ..."). */
  errors: string[];
}

/** Which of the node's devices a flow crosses (derived by the adapters from addresses and OVS). */
export interface PathDevices {
  /** The device that holds the flow's local address (the IP interface). */
  ipDevice?: string;
  /** The physical port: ipDevice itself, or the bridge's uplink when ipDevice is an OVS internal port. */
  nicDevice?: string;
  /** True when ipDevice is an OVS internal port. */
  viaOvs?: boolean;
  /** The OVS datapath of ipDevice's bridge ("system@ovs-system": kernel, "netdev@ovs-netdev": userspace). */
  datapath?: string;
  /** Devices that shape the wire and are visible here (e.g. an ifb on ingress). */
  extraDevices?: string[];
}

// ---------------------------------------------------------------------------------------------------
// Window summaries: what the rules read

/** Per-flow summary over a window of samples. */
export interface FlowSummary {
  key: FlowKey;
  /** 'sender' when this side sent most of the bytes, else 'receiver'. */
  role: 'sender' | 'receiver';
  cc?: string;
  seconds: number;
  samples: number;
  reasons: ReasonSeconds;
  /** Part of `reasons` that came from the kernel's chronographs (exact). */
  exactReasons: ReasonSeconds;
  /** bytes/s over the window. */
  goodputBps?: number;
  receiveBps?: number;
  /** Δbytes_sent / window (retransmits included): what left TCP, the rate pacing is checked against. */
  sendBps?: number;
  /** Seconds the sampled state said pacing but the send rate shows pacing did not hold (→ unclassified). */
  pacingRejectedSeconds?: number;
  /** Retransmitted bytes / sent bytes over the window. */
  retransRatio?: number;
  retransSegs?: number;
  dsackDups?: number;
  /** Samples where notsent ≥ one MSS, as a fraction. */
  notsentShare: number;
  /** The newest sample, whole. */
  last: FlowSample;
  /** The window's first sample (its baseline): only the fields the history keeps (history.ts KEPT_FIELDS). */
  first: FlowSample;
  /** Medians over the window (robust against the single odd sample). */
  medianRttUs?: number;
  minRttUs?: number;
  medianCwnd?: number;
  medianDeliveryRate?: number;
  medianPacingRate?: number;
  maxPacingRate?: number;
}

export interface DeviceDelta {
  name: string;
  snapshot: DeviceSnapshot;
  txBps?: number;
  rxBps?: number;
  txDropped?: number;
  rxDropped?: number;
  rxMissed?: number;
  txErrors?: number;
  rxErrors?: number;
  txStop?: number;
}

export interface QdiscDelta {
  snapshot: QdiscSnapshot;
  drops?: number;
  overlimits?: number;
  requeues?: number;
  fqThrottled?: number;
  sentBps?: number;
}

export interface CpuDelta {
  cpu: number;
  softirqShare?: number;
  irqShare?: number;
  stealShare?: number;
  busyShare?: number;
  softnetProcessed?: number;
  softnetDropped?: number;
  timeSqueeze?: number;
  netRx?: number;
}

/** One thread over a window: shares of the window (0..1). */
export interface ThreadDelta {
  pid: number;
  tid: number;
  comm: string;
  /** On a CPU (schedstat run time; utime + stime ticks without schedstat). */
  runShare: number;
  /** Runnable but waiting for a CPU (schedstat; undefined without it). */
  waitShare?: number;
  /** run + wait: how much of the window the thread wanted a CPU. 1 − demand = asleep by itself. */
  demand: number;
  /** Times per second it blocked (voluntary context switches), when read. */
  sleepsPerSecond?: number;
  /** The CPU it ran on last. */
  processor?: number;
}

/** The processes holding a flow's socket over a window. */
export interface OwnerSummary {
  inode: number;
  pids: number[];
  /** Their threads, busiest (highest demand) first. */
  threads: ThreadDelta[];
  unknown?: string;
}

export interface NodeSummary {
  seconds: number;
  path: PathDevices;
  devices: DeviceDelta[];
  /** Root qdiscs of the path devices (and the extra devices). */
  qdiscs: QdiscDelta[];
  cpus: CpuDelta[];
  /** The CPU doing the most RX softirq work in the window (the flow's RX CPU on a receiver). */
  rxCpu?: CpuDelta;
  /** Average busy share of all CPUs (1 − idle − iowait), 0..1. */
  cpuBusy?: number;
  ovs?: {
    datapaths: Array<{ name: string; type?: string; hit?: number; missed?: number; lost?: number }>;
    portDrops: Array<{ name: string; internal: boolean; rxDropped?: number; txDropped?: number }>;
    upcallFailed?: number;
    vswitchdCpuShare?: number;
    /** ovs-vswitchd's busiest thread (the forwarding one on the userspace datapath). */
    vswitchdThread?: ThreadDelta;
  };
  /** Socket owners of the flows sampled on this node. */
  owners?: OwnerSummary[];
  tcpExt: Record<string, number>;
  sysctl: Record<string, string>;
  errors: string[];
}

/** One node's view of the flow: what /api/diagnosis returns as `evidence` and --peer consumes. */
export interface SideEvidence {
  node?: string;
  flow?: FlowSummary;
  nodeSummary?: NodeSummary;
}

export interface DiagnosisInput {
  sender?: SideEvidence;
  receiver?: SideEvidence;
}

// ---------------------------------------------------------------------------------------------------
// Findings

export const HOPS = [
  'socket-tx',
  'tcp-tx',
  'qdisc-tx',
  'ovs-tx',
  'nic-tx',
  'link',
  'nic-rx',
  'ovs-rx',
  'internal-rx',
  'tcp-rx',
  'socket-rx',
] as const;
export type Hop = (typeof HOPS)[number];

export const HOP_TITLES: Record<Hop, string> = {
  'socket-tx': 'sender socket',
  'tcp-tx': 'sender TCP',
  'qdisc-tx': 'qdisc / internal port',
  'ovs-tx': 'OVS (sender)',
  'nic-tx': 'NIC TX',
  link: 'link',
  'nic-rx': 'NIC RX / RX CPU',
  'ovs-rx': 'OVS (receiver)',
  'internal-rx': 'internal port (receiver)',
  'tcp-rx': 'receiver TCP',
  'socket-rx': 'receiver socket',
};

export type Status = 'ok' | 'suspect' | 'limiting';

/** What limits the flow, in the words of the verdict. */
export type Limit =
  | 'app'
  | 'sndbuf'
  | 'rwnd'
  | 'cwnd'
  | 'pacing'
  | 'pacing_capped'
  | 'tsq'
  | 'loss'
  | 'queue'
  | 'drops'
  | 'cpu'
  | 'link_rate'
  | 'reordering'
  | 'config';

export type EvidenceValue = number | string | boolean | null;

export interface Finding {
  rule: string;
  hop: Hop;
  status: Status;
  limit?: Limit;
  /** 0..1: the share of time or the strength of the evidence; ranks findings of the same status. */
  score: number;
  summary: string;
  evidence: Record<string, EvidenceValue>;
  next: string;
}

export interface HopStatus {
  hop: Hop;
  title: string;
  status: Status | 'n/a' | 'no data';
  /** The rule ids that decided this hop. */
  findings: string[];
  note?: string;
  /** What this hop is on the flow's path, when the evidence says: a device ("br-int (OVS internal port)",
   * "eth1") or an OVS datapath ("system@ovs-system"). */
  where?: string;
}

export interface Verdict {
  flow?: FlowKey;
  /** The top limiting finding, or undefined when nothing limits. */
  top?: Finding;
  findings: Finding[];
  hops: HopStatus[];
  sender?: SideEvidence;
  receiver?: SideEvidence;
}
