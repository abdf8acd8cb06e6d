// The `flows` collector: per-flow TCP metrics from sock_diag (struct tcp_info, skmeminfo, BBR info),
// selected in the kernel by --flows.select, capped by --flows.max.
//
// Every scrape: a small dump of LISTEN sockets (which local ports are services), then one dump per
// address family with the selector compiled to INET_DIAG bytecode; each socket arrives as a flyweight
// view (nothing decoded, nothing allocated). For every flow we read its cookie and seven tcp_info
// counters, keep them per cookie in a typed-array table, and
//   - add their deltas since the previous scrape to per-service counters (role, service_port), so every
//     selected flow is accounted for, exported or not (a bounded set of buckets, see ServiceBuckets);
//   - rank it by bytes moved (acked + received) since the previous scrape. Per-flow series go to every
//     --flows.watch flow and to --flows.max flows chosen with hysteresis: a flow exported last scrape
//     keeps its place while it moves at least half as much as the N-th busiest flow, so flows near the
//     boundary do not swap in and out (each swap would end ~60 series and start ~60 new ones).
// Only the exported flows are decoded into series. Their label set is fixed for the flow's life: the
// 4-tuple plus role and service port (src/sources/flow-identity.ts); TCP state and CA state are values.
// The per-flow series set is rebuilt each scrape, so a closed flow's series vanish at the next scrape.

import { Config, FlagDef, UsageError, intFlag } from '../core/flags';
import { Emitter, MetricTable, counter, gauge } from '../core/metrics';
import { Logger, StateLogger } from '../core/log';
import { procfsFlag } from '../core/paths';
import { chooseWithHysteresis } from '../core/ranking';
import { CollectorDef } from './registry';
import { ALL_STATES, CompiledSelector, SelectorError, compileSelector, orSelectors } from '../sources/flowselect';
import { DEFAULT_PORT_RANGE, ListeningPorts, PackedIdentity, PortRange, dumpListening, identify, identityLabels, readPortRange } from '../sources/flow-identity';
import { AddressDevices } from '../sources/netlink/rtnl-addr';
import { DumpPlan, DumpResult, EXT_FLOWS, SockDiag, SockView, TCP_LISTEN } from '../sources/netlink/sockdiag';
import { Candidate, TopFlows, byRank } from '../sources/flow-top';
import { MIN_RTT_NONE, SKMEM, TCPI, TCP_INFINITE_SSTHRESH, tcpStateName } from '../sources/netlink/tcpinfo';

// ---------------------------------------------------------------------------------------------------
// Flags

export interface SelectorValue {
  source: string;
  /** null = matches nothing (an empty --flows.watch). */
  compiled: CompiledSelector | null;
}

function selectorFlag(name: string, def: string, emptyMeansNone: boolean, help: string): FlagDef<SelectorValue> {
  const compile = (s: string): SelectorValue => {
    if (s.trim() === '' && emptyMeansNone) return { source: '', compiled: null };
    try {
      return { source: s, compiled: compileSelector(s) };
    } catch (e) {
      if (e instanceof SelectorError) throw new UsageError(`--${name}: ${e.message}`);
      throw e;
    }
  };
  return {
    name,
    help,
    default: compile(def),
    boolean: false,
    placeholder: '<selector>',
    parse: compile,
    show: (v) => JSON.stringify(v.source),
  };
}

const GRAMMAR_HELP =
  'Selector grammar: conditions sport|dport|port <op> N (op: = != < <= > >=), src|dst|addr [=|!=] IP[/prefix], ' +
  'state [=|!=] NAME (established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, time-wait, close, close-wait, last-ack, ' +
  'listen, closing, new-syn-recv, connected, synchronized), loopback, all, none; combined with and, or, not, ( ). ' +
  'src/sport = local end, dst/dport = peer. Example: "dport = 5201 and dst 10.0.0.0/8".';

export const flowsSelectFlag = selectorFlag(
  'flows.select',
  'not loopback',
  false,
  `Which TCP sockets to look at; compiled into a kernel-side sock_diag filter. An empty selector selects every socket; ` +
    `the default leaves out loopback flows (local address 127.0.0.0/8 or ::1). TIME_WAIT sockets carry no tcp_info and are never dumped by this collector. ${GRAMMAR_HELP}`,
);
export const flowsWatchFlag = selectorFlag(
  'flows.watch',
  '',
  true,
  'Flows that are always exported, whatever --flows.max says and whether or not --flows.select selects them ' +
    '(same grammar as --flows.select; empty = none).',
);
export const flowsMaxFlag = intFlag(
  'flows.max',
  10,
  'Maximum number of flows exported with per-flow series (~60 series each), besides every --flows.watch flow: the flows that moved the most bytes (acked + received) since the previous scrape, with hysteresis (an exported flow keeps its place while it moves at least half as much as the N-th busiest).',
  0,
  100000,
);
export const flowsServicePortsFlag = intFlag(
  'flows.service-ports',
  10,
  'Per-service counters over every selected flow (flowpath_flows_*_total{role,service_port}) get a bucket of their own for this many (role, service port) pairs, the busiest first; the rest are summed into service_port="other". A bucket with no flow for 10 minutes is released.',
  0,
  1000,
);

// ---------------------------------------------------------------------------------------------------
// Metrics

/** Identifying labels of every per-flow series: the 4-tuple plus the flow's identity, fixed for its life. */
export const FLOW_LABELS = ['local_ip', 'local_port', 'peer_ip', 'peer_port', 'role', 'service_port'] as const;

const us = (v: number | undefined) => (v === undefined ? undefined : v / 1e6);
const ms = (v: number | undefined) => (v === undefined ? undefined : v / 1e3);
const finite = (v: number | undefined) => (v === undefined || v === Infinity ? undefined : v);
const t = TCPI;

/** One line per metric: name, type, help (naming the kernel field), value from the socket view. */
const FLOW_TABLE = new MetricTable<SockView>(FLOW_LABELS, [
  // State (values, not labels: they change during a flow's life)
  ['flowpath_flow_tcp_state', 'gauge', 'TCP state number (include/net/tcp_states.h: 1 established, 2 syn-sent, 3 syn-recv, 4 fin-wait-1, 5 fin-wait-2, 7 close, 8 close-wait, 9 last-ack, 11 closing).', (v) => v.state],
  ['flowpath_flow_ca_state', 'gauge', 'Congestion-avoidance state (tcpi_ca_state: 0 open, 1 disorder, 2 cwr, 3 recovery, 4 loss).', (v) => v.tcp(t.caState)],
  // Round-trip times (tcp_info, microseconds in the kernel)
  ['flowpath_flow_rtt_seconds', 'gauge', 'Smoothed round-trip time (tcpi_rtt).', (v) => us(v.tcp(t.rtt))],
  ['flowpath_flow_rttvar_seconds', 'gauge', 'Round-trip time mean deviation (tcpi_rttvar).', (v) => us(v.tcp(t.rttvar))],
  ['flowpath_flow_min_rtt_seconds', 'gauge', 'Windowed minimum round-trip time (tcpi_min_rtt); absent until the first sample.', (v) => { const x = v.tcp(t.minRtt); return x === MIN_RTT_NONE ? undefined : us(x); }],
  ['flowpath_flow_rcv_rtt_seconds', 'gauge', 'Receiver-side round-trip time estimate (tcpi_rcv_rtt); 0 until measured.', (v) => us(v.tcp(t.rcvRtt))],
  ['flowpath_flow_rto_seconds', 'gauge', 'Retransmission timeout (tcpi_rto).', (v) => us(v.tcp(t.rto))],
  // Congestion window and the segments in flight (tcp_info, segments)
  ['flowpath_flow_cwnd_packets', 'gauge', 'Congestion window in segments (tcpi_snd_cwnd).', (v) => v.tcp(t.sndCwnd)],
  ['flowpath_flow_ssthresh_packets', 'gauge', 'Slow-start threshold in segments (tcpi_snd_ssthresh); absent while infinite.', (v) => { const x = v.tcp(t.sndSsthresh); return x === TCP_INFINITE_SSTHRESH ? undefined : x; }],
  ['flowpath_flow_unacked_packets', 'gauge', 'Segments sent and not yet cumulatively acknowledged (tcpi_unacked).', (v) => v.tcp(t.unacked)],
  ['flowpath_flow_sacked_packets', 'gauge', 'Segments selectively acknowledged (tcpi_sacked).', (v) => v.tcp(t.sacked)],
  ['flowpath_flow_lost_packets', 'gauge', 'Segments currently marked lost (tcpi_lost).', (v) => v.tcp(t.lost)],
  ['flowpath_flow_retrans_packets', 'gauge', 'Retransmitted segments not yet acknowledged (tcpi_retrans).', (v) => v.tcp(t.retrans)],
  ['flowpath_flow_reordering_packets', 'gauge', 'Reordering degree the sender assumes, in segments (tcpi_reordering).', (v) => v.tcp(t.reordering)],
  // Segment sizes and queues (bytes)
  ['flowpath_flow_mss_bytes', 'gauge', 'Sender maximum segment size (tcpi_snd_mss).', (v) => v.tcp(t.sndMss)],
  ['flowpath_flow_rcv_mss_bytes', 'gauge', 'Estimate of the peer maximum segment size (tcpi_rcv_mss).', (v) => v.tcp(t.rcvMss)],
  ['flowpath_flow_pmtu_bytes', 'gauge', 'Path MTU (tcpi_pmtu).', (v) => v.tcp(t.pmtu)],
  ['flowpath_flow_notsent_bytes', 'gauge', 'Bytes written by the application and not yet sent (tcpi_notsent_bytes).', (v) => v.tcp(t.notsentBytes)],
  ['flowpath_flow_send_queue_bytes', 'gauge', 'Bytes not yet acknowledged, sent or not (idiag_wqueue, ss Send-Q).', (v) => (v.hasInfo ? v.wqueue : undefined)],
  ['flowpath_flow_recv_queue_bytes', 'gauge', 'Bytes received and not yet read by the application (idiag_rqueue, ss Recv-Q).', (v) => (v.hasInfo ? v.rqueue : undefined)],
  // Rates (bytes per second)
  ['flowpath_flow_pacing_rate_bytes_per_second', 'gauge', 'Pacing rate the stack computes (tcpi_pacing_rate); enforced only by BBR, SO_MAX_PACING_RATE or the fq qdisc; absent when unlimited.', (v) => finite(v.tcp(t.pacingRate))],
  ['flowpath_flow_max_pacing_rate_bytes_per_second', 'gauge', 'SO_MAX_PACING_RATE cap (tcpi_max_pacing_rate); absent when unlimited.', (v) => finite(v.tcp(t.maxPacingRate))],
  ['flowpath_flow_delivery_rate_bytes_per_second', 'gauge', 'Most recent kept delivery-rate sample (tcpi_delivery_rate).', (v) => finite(v.tcp(t.deliveryRate))],
  ['flowpath_flow_delivery_rate_app_limited', 'gauge', '1 if the kept delivery-rate sample was application-limited (tcpi_delivery_rate_app_limited).', (v) => v.tcp(t.deliveryRateAppLimited)],
  // Windows (bytes)
  ['flowpath_flow_snd_wnd_bytes', 'gauge', "Peer's advertised receive window after scaling (tcpi_snd_wnd).", (v) => v.tcp(t.sndWnd)],
  ['flowpath_flow_rcv_wnd_bytes', 'gauge', 'Receive window we advertise, after scaling (tcpi_rcv_wnd, 6.2+).', (v) => v.tcp(t.rcvWnd)],
  ['flowpath_flow_rcv_space_bytes', 'gauge', 'Receive-buffer autotuning estimate (tcpi_rcv_space).', (v) => v.tcp(t.rcvSpace)],
  ['flowpath_flow_rcv_ssthresh_bytes', 'gauge', 'Current receive-window clamp (tcpi_rcv_ssthresh).', (v) => v.tcp(t.rcvSsthresh)],
  // Lifetime counters (tcp_info)
  ['flowpath_flow_sent_bytes_total', 'counter', 'Bytes sent, retransmissions included (tcpi_bytes_sent).', (v) => v.tcp(t.bytesSent)],
  ['flowpath_flow_acked_bytes_total', 'counter', 'Bytes cumulatively acknowledged by the peer (tcpi_bytes_acked).', (v) => v.tcp(t.bytesAcked)],
  ['flowpath_flow_received_bytes_total', 'counter', 'Bytes received in order (tcpi_bytes_received).', (v) => v.tcp(t.bytesReceived)],
  ['flowpath_flow_retransmitted_bytes_total', 'counter', 'Bytes retransmitted (tcpi_bytes_retrans).', (v) => v.tcp(t.bytesRetrans)],
  ['flowpath_flow_retransmitted_packets_total', 'counter', 'Segments retransmitted over the connection lifetime (tcpi_total_retrans).', (v) => v.tcp(t.totalRetrans)],
  ['flowpath_flow_segments_out_total', 'counter', 'Segments sent, retransmissions and pure ACKs included (tcpi_segs_out).', (v) => v.tcp(t.segsOut)],
  ['flowpath_flow_segments_in_total', 'counter', 'Segments received (tcpi_segs_in).', (v) => v.tcp(t.segsIn)],
  ['flowpath_flow_data_segments_out_total', 'counter', 'Data-bearing segments sent (tcpi_data_segs_out).', (v) => v.tcp(t.dataSegsOut)],
  ['flowpath_flow_data_segments_in_total', 'counter', 'Data-bearing segments received (tcpi_data_segs_in).', (v) => v.tcp(t.dataSegsIn)],
  ['flowpath_flow_delivered_packets_total', 'counter', 'Segments delivered, i.e. acked or SACKed (tcpi_delivered).', (v) => v.tcp(t.delivered)],
  ['flowpath_flow_delivered_ce_packets_total', 'counter', 'Delivered segments that carried a CE mark (tcpi_delivered_ce).', (v) => v.tcp(t.deliveredCe)],
  ['flowpath_flow_dsack_dups_total', 'counter', 'Segments the peer reported as duplicates via DSACK, i.e. spurious retransmits (tcpi_dsack_dups).', (v) => v.tcp(t.dsackDups)],
  ['flowpath_flow_reord_seen_total', 'counter', 'Reordering events seen (tcpi_reord_seen).', (v) => v.tcp(t.reordSeen)],
  ['flowpath_flow_rcv_ooopack_total', 'counter', 'Out-of-order packets received (tcpi_rcv_ooopack).', (v) => v.tcp(t.rcvOoopack)],
  ['flowpath_flow_rto_timeouts_total', 'counter', 'Retransmission timeouts (tcpi_total_rto, 6.7+).', (v) => v.tcp(t.totalRto)],
  ['flowpath_flow_rto_recoveries_total', 'counter', 'RTO recovery episodes (tcpi_total_rto_recoveries, 6.7+).', (v) => v.tcp(t.totalRtoRecoveries)],
  ['flowpath_flow_rto_recovery_seconds_total', 'counter', 'Time spent in RTO recovery (tcpi_total_rto_time, 6.7+).', (v) => ms(v.tcp(t.totalRtoTime))],
  // Chronographs (microseconds in the kernel, jiffy granularity; busy includes the two limited times)
  ['flowpath_flow_busy_seconds_total', 'counter', 'Time with data queued or unacknowledged, rwnd- and sndbuf-limited time included (tcpi_busy_time).', (v) => us(v.tcp(t.busyTime))],
  ['flowpath_flow_rwnd_limited_seconds_total', 'counter', "Time the sender was limited by the peer's receive window (tcpi_rwnd_limited).", (v) => us(v.tcp(t.rwndLimited))],
  ['flowpath_flow_sndbuf_limited_seconds_total', 'counter', 'Time the sender was limited by its send buffer (tcpi_sndbuf_limited).', (v) => us(v.tcp(t.sndbufLimited))],
  // Socket memory (INET_DIAG_SKMEMINFO, bytes)
  ['flowpath_flow_skmem_rmem_alloc_bytes', 'gauge', 'Receive queue memory in use (SK_MEMINFO_RMEM_ALLOC, ss skmem r).', (v) => v.skmem(SKMEM.rmemAlloc)],
  ['flowpath_flow_skmem_rcvbuf_bytes', 'gauge', 'Receive buffer limit (SK_MEMINFO_RCVBUF, ss skmem rb).', (v) => v.skmem(SKMEM.rcvbuf)],
  ['flowpath_flow_skmem_wmem_alloc_bytes', 'gauge', 'Memory of packets below TCP (qdisc, driver) not yet freed; what TSQ limits (SK_MEMINFO_WMEM_ALLOC, ss skmem t).', (v) => v.skmem(SKMEM.wmemAlloc)],
  ['flowpath_flow_skmem_sndbuf_bytes', 'gauge', 'Send buffer limit (SK_MEMINFO_SNDBUF, ss skmem tb).', (v) => v.skmem(SKMEM.sndbuf)],
  ['flowpath_flow_skmem_wmem_queued_bytes', 'gauge', 'Write and retransmit queue memory (SK_MEMINFO_WMEM_QUEUED, ss skmem w).', (v) => v.skmem(SKMEM.wmemQueued)],
  ['flowpath_flow_skmem_fwd_alloc_bytes', 'gauge', 'Forward-allocated memory (SK_MEMINFO_FWD_ALLOC, ss skmem f).', (v) => v.skmem(SKMEM.fwdAlloc)],
  ['flowpath_flow_skmem_backlog_bytes', 'gauge', 'Socket backlog queued while the socket was owned by user context (SK_MEMINFO_BACKLOG, ss skmem bl).', (v) => v.skmem(SKMEM.backlog)],
  ['flowpath_flow_skmem_dropped_packets_total', 'counter', 'Packets dropped by the socket (SK_MEMINFO_DROPS, sk_drops, ss skmem d).', (v) => v.skmem(SKMEM.drops)],
  // BBR (INET_DIAG_BBRINFO, struct tcp_bbr_info)
  ['flowpath_flow_bbr_bandwidth_bytes_per_second', 'gauge', "BBR's max-filtered bandwidth estimate (bbr_bw_hi/bbr_bw_lo).", (v) => v.bbrBw()],
  ['flowpath_flow_bbr_min_rtt_seconds', 'gauge', "BBR's windowed minimum RTT (bbr_min_rtt).", (v) => us(v.bbrMinRtt())],
  ['flowpath_flow_bbr_pacing_gain_ratio', 'gauge', 'BBR pacing gain (bbr_pacing_gain / 256).', (v) => v.bbrPacingGain()],
  ['flowpath_flow_bbr_cwnd_gain_ratio', 'gauge', 'BBR congestion-window gain (bbr_cwnd_gain / 256).', (v) => v.bbrCwndGain()],
]);

export const flowInfo = gauge(
  'flowpath_flow_info',
  'One per exported flow, value 1: its identity (role client|server, service_port), congestion control (INET_DIAG_CONG) and the device holding the local address ("" if none).',
  [...FLOW_LABELS, 'cc', 'local_device'],
);
export const flowsSockets = gauge(
  'flowpath_flows_sockets',
  'TCP sockets matching --flows.select or --flows.watch, by state (never capped; TIME_WAIT sockets are not dumped).',
  ['state'],
);
export const flowsSeen = gauge('flowpath_flows_seen', 'Flows (sockets with tcp_info, not listening) matching --flows.select or --flows.watch in this scrape.');
export const flowsExported = gauge('flowpath_flows_exported', 'Flows exported with per-flow series in this scrape.');
export const flowsOmitted = gauge('flowpath_flows_omitted', 'Flows seen but left out by --flows.max in this scrape.');

/** Per-service counters: what every selected flow did since the previous scrape, summed per bucket. */
const SERVICE_LABELS = ['role', 'service_port'] as const;
const SVC_HELP = ' Summed over every selected flow of the (role, service_port) bucket, exported or not, as deltas between scrapes (a closed flow keeps what it added up to its last scrape; the first scrape is the baseline). service_port="other" sums the pairs beyond --flows.service-ports.';
// Column order in the per-cookie table and in the per-service sums.
const C_ACKED = 0, C_RECEIVED = 1, C_BUSY = 2, C_RWND = 3, C_SNDBUF = 4, C_RETRANS = 5, C_DSACK = 6, N_COUNTERS = 7;
export const SERVICE_TABLE = new MetricTable<ServiceBucket>(SERVICE_LABELS, [
  ['flowpath_flows_open', 'gauge', 'Flows (tcp_info, not listening) of the bucket in this scrape.', (b) => b.open],
  ['flowpath_flows_acked_bytes_total', 'counter', 'Bytes acknowledged by the peers (tcpi_bytes_acked).' + SVC_HELP, (b) => b.sums[C_ACKED]],
  ['flowpath_flows_received_bytes_total', 'counter', 'Bytes received in order (tcpi_bytes_received).' + SVC_HELP, (b) => b.sums[C_RECEIVED]],
  ['flowpath_flows_busy_seconds_total', 'counter', 'Time with data queued or unacknowledged (tcpi_busy_time), summed over flows: a share of flow-seconds, not of wall time.' + SVC_HELP, (b) => b.sums[C_BUSY] / 1e6],
  ['flowpath_flows_rwnd_limited_seconds_total', 'counter', "Time limited by the peer's receive window (tcpi_rwnd_limited)." + SVC_HELP, (b) => b.sums[C_RWND] / 1e6],
  ['flowpath_flows_sndbuf_limited_seconds_total', 'counter', 'Time limited by the send buffer (tcpi_sndbuf_limited).' + SVC_HELP, (b) => b.sums[C_SNDBUF] / 1e6],
  ['flowpath_flows_retransmitted_packets_total', 'counter', 'Segments retransmitted (tcpi_total_retrans).' + SVC_HELP, (b) => b.sums[C_RETRANS]],
  ['flowpath_flows_dsack_dups_total', 'counter', 'Segments the peers reported as duplicates via DSACK (tcpi_dsack_dups).' + SVC_HELP, (b) => b.sums[C_DSACK]],
]);
export const flowsInterrupted = counter(
  'flowpath_flows_dump_interrupted_total',
  'sock_diag dumps the kernel flagged NLM_F_DUMP_INTR (inconsistent); such a dump is retried once per scrape.',
);

export const FLOW_METRICS = [flowInfo, ...FLOW_TABLE.descs, flowsSockets, flowsSeen, flowsExported, flowsOmitted, flowsInterrupted, ...SERVICE_TABLE.descs];

// Selection: TopFlows (src/sources/flow-top.ts) keeps the busiest flows of a dump; chooseExported
// applies the hysteresis.

/**
 * The --flows.max flows to export: last scrape's exported flows (`incumbents`) and the best `max` of the
 * others (`newcomers`), with hysteresis (src/core/ranking.ts). Returned busiest first.
 */
export function chooseExported(incumbents: readonly Candidate[], newcomers: readonly Candidate[], max: number): Candidate[] {
  const inc = new Set(incumbents);
  return chooseWithHysteresis([...incumbents, ...newcomers].sort(byRank), (c) => c.delta, (c) => inc.has(c), max);
}

// ---------------------------------------------------------------------------------------------------
// Per-cookie rows: an open-addressing hash table on typed arrays (cookie -> `width` numbers and the
// generation that last touched the row). A Map rebuilt every scrape with 20k entries made V8 grow its heap
// by ~45 MB; this table is updated in place and swept of rows a scrape did not touch, so it allocates
// nothing in steady state and holds one row per flow (it is the exporter's largest allocation).

/**
 * Rows per slot at most. Linear probing stays short at 3/4 (~2.5 probes for a hit, ~8.5 for a miss, and
 * misses are only new flows).
 */
const MAX_LOAD = 0.75;

export class CookieTable {
  private keys: Float64Array;
  /** The generation that last touched each row (0 = never). */
  gens: Uint32Array;
  /** Row i occupies vals[i * width, (i + 1) * width). */
  vals: Float64Array;
  private mask: number;
  size = 0;

  constructor(
    readonly width = 1,
    capacity = 1024,
  ) {
    let cap = 16;
    while (cap * MAX_LOAD < capacity) cap *= 2;
    this.keys = new Float64Array(cap);
    this.gens = new Uint32Array(cap);
    this.vals = new Float64Array(cap * width);
    this.mask = cap - 1;
  }

  /** The hash of a cookie. */
  static hash(key: number): number {
    // Cookies are small sequential integers (a global counter): Fibonacci hashing spreads them.
    const lo = key % 4294967296;
    const hi = (key - lo) / 4294967296;
    return Math.imul((lo ^ Math.imul(hi, 0x85ebca6b)) >>> 0, 0x9e3779b1) >>> 0;
  }

  private slot(key: number, hash: number): number {
    let h = hash;
    for (;;) {
      const i = h & this.mask;
      const k = this.keys[i];
      if (k === key || k === 0) return i;
      h = (h + 1) >>> 0;
    }
  }

  /** The row of a cookie (kernel cookies start at 1, so 0 marks an empty slot), or -1. */
  find(key: number, hash = CookieTable.hash(key)): number {
    const i = this.slot(key, hash);
    return this.keys[i] === key ? i : -1;
  }

  /** The row of a cookie, added (zeroed, generation 0) if missing. Rows move when the table grows: read vals after. */
  insert(key: number, hash = CookieTable.hash(key)): number {
    if (this.size + 1 > this.keys.length * MAX_LOAD) this.grow();
    const i = this.slot(key, hash);
    if (this.keys[i] !== key) {
      this.keys[i] = key;
      this.gens[i] = 0;
      this.vals.fill(0, i * this.width, (i + 1) * this.width);
      this.size++;
    }
    return i;
  }

  /** Column 0 of a cookie's row, or undefined. */
  get(key: number, hash = CookieTable.hash(key)): number | undefined {
    const i = this.find(key, hash);
    return i < 0 ? undefined : this.vals[i * this.width];
  }

  set(key: number, value: number, hash = CookieTable.hash(key)): void {
    const i = this.insert(key, hash); // before reading this.vals: insert() may grow the table
    this.vals[i * this.width] = value;
  }

  clear(): void {
    if (this.size > 0) this.keys.fill(0);
    this.size = 0;
  }

  /** Remove every row whose generation is not `gen` (backward-shift deletion keeps probe chains whole). */
  sweep(gen: number): void {
    for (let i = 0; i < this.keys.length; i++) {
      while (this.keys[i] !== 0 && this.gens[i] !== gen) this.removeAt(i);
    }
  }

  private removeAt(i: number): void {
    const { keys, gens, vals, mask, width } = this;
    let hole = i;
    keys[hole] = 0;
    this.size--;
    for (let k = (hole + 1) & mask; keys[k] !== 0; k = (k + 1) & mask) {
      const home = CookieTable.hash(keys[k]) & mask;
      // The entry at k may fill the hole unless its home lies cyclically in (hole, k].
      const stays = hole <= k ? hole < home && home <= k : hole < home || home <= k;
      if (stays) continue;
      keys[hole] = keys[k];
      gens[hole] = gens[k];
      vals.copyWithin(hole * width, k * width, (k + 1) * width);
      keys[k] = 0;
      hole = k;
    }
  }

  private grow(): void {
    const oldK = this.keys;
    const oldG = this.gens;
    const oldV = this.vals;
    const w = this.width;
    this.keys = new Float64Array(oldK.length * 2);
    this.gens = new Uint32Array(oldK.length * 2);
    this.vals = new Float64Array(oldK.length * 2 * w);
    this.mask = this.keys.length - 1;
    this.size = 0;
    for (let i = 0; i < oldK.length; i++) {
      if (oldK[i] === 0) continue;
      const j = this.insert(oldK[i]);
      this.gens[j] = oldG[i];
      this.vals.set(oldV.subarray(i * w, (i + 1) * w), j * w);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Per-service buckets: the counters of every selected flow summed per (role, service port)

export interface ServiceBucket {
  labels: [role: string, servicePort: string];
  /** Running sums (N_COUNTERS columns, kernel units: bytes, segments, µs). */
  sums: Float64Array;
  /** Flows of the bucket in the last scrape. */
  open: number;
  /** When the bucket last had a flow (ms, monotonic). */
  lastActive: number;
}

/** A bucket with no flow for this long gives its place to another service. */
export const SERVICE_IDLE_MS = 10 * 60 * 1000;

/**
 * The buckets: up to `slots` (role, service port) pairs of their own, the busiest first, kept while they
 * have flows (and SERVICE_IDLE_MS after), so a bucket's counters do not come and go with its rank; every
 * other pair is summed into the "other" bucket of its role. Per scrape, each pair's deltas are gathered
 * in `scrape` (one reused row per pair) and then added to its bucket by settle().
 */
export class ServiceBuckets {
  private readonly own = new Map<PackedIdentity, ServiceBucket>();
  private readonly other = new Map<string, ServiceBucket>();
  /** This scrape's per-pair rows: N_COUNTERS deltas then the flow count. */
  private readonly scrape = new Map<PackedIdentity, Float64Array>();
  private readonly pool: Float64Array[] = [];

  constructor(readonly slots: number) {}

  /** Start a scrape (or a retried dump): forget the per-pair rows. */
  begin(): void {
    for (const row of this.scrape.values()) this.pool.push(row);
    this.scrape.clear();
  }

  /** The per-pair row of this scrape (columns 0..N_COUNTERS-1 deltas, N_COUNTERS the flow count). */
  row(id: PackedIdentity): Float64Array {
    let r = this.scrape.get(id);
    if (!r) {
      r = this.pool.pop()?.fill(0) ?? new Float64Array(N_COUNTERS + 1);
      this.scrape.set(id, r);
    }
    return r;
  }

  /** Add this scrape's rows to the buckets; `now` is a monotonic clock in ms. */
  settle(now: number): void {
    for (const b of this.own.values()) b.open = 0;
    for (const b of this.other.values()) b.open = 0;
    const fresh: PackedIdentity[] = [];
    for (const [id, r] of this.scrape) {
      const b = this.own.get(id);
      if (b) add(b, r, now);
      else fresh.push(id);
    }
    for (const [id, b] of this.own) if (b.open === 0 && now - b.lastActive > SERVICE_IDLE_MS) this.own.delete(id);
    const moved = (id: PackedIdentity) => {
      const r = this.scrape.get(id)!;
      return r[C_ACKED] + r[C_RECEIVED];
    };
    fresh.sort((a, b) => moved(b) - moved(a) || this.scrape.get(b)![N_COUNTERS] - this.scrape.get(a)![N_COUNTERS] || a - b);
    for (const id of fresh) {
      const r = this.scrape.get(id)!;
      let b: ServiceBucket | undefined;
      if (this.own.size < this.slots) {
        b = newBucket(identityLabels(id));
        this.own.set(id, b);
      } else {
        const role = identityLabels(id)[0];
        b = this.other.get(role);
        if (!b) this.other.set(role, (b = newBucket([role, 'other'])));
      }
      add(b, r, now);
    }
  }

  buckets(): ServiceBucket[] {
    return [...this.own.values(), ...this.other.values()];
  }
}

function newBucket(labels: [string, string]): ServiceBucket {
  return { labels, sums: new Float64Array(N_COUNTERS), open: 0, lastActive: 0 };
}

function add(b: ServiceBucket, r: Float64Array, now: number): void {
  for (let j = 0; j < N_COUNTERS; j++) b.sums[j] += r[j];
  b.open += r[N_COUNTERS];
  if (r[N_COUNTERS] > 0) b.lastActive = now;
}

// ---------------------------------------------------------------------------------------------------
// The collector

/** What the collector needs from sock_diag (the real SockDiag, or a fixture replay in tests). */
export interface FlowSource {
  dump(plans: readonly DumpPlan[], ext: number, onSocket: (v: SockView) => void): Promise<DumpResult>;
  close(): void;
}

export interface FlowsDeps {
  source?: FlowSource;
  addrs?: Pick<AddressDevices, 'prepare' | 'deviceOf' | 'close'>;
  /** Monotonic clock in ms (tests). */
  now?: () => number;
}

export interface FlowsSettings {
  select: CompiledSelector | null;
  watch: CompiledSelector | null;
  max: number;
  servicePorts: number;
  procfs: string;
}

export function flowsSettings(config: Config): FlowsSettings {
  return {
    select: config.get(flowsSelectFlag).compiled,
    watch: config.get(flowsWatchFlag).compiled,
    max: config.get(flowsMaxFlag),
    servicePorts: config.get(flowsServicePortsFlag),
    procfs: config.get(procfsFlag),
  };
}

/** One selected flow of a sample: a copy of its sock_diag message, valid until the next sample. */
export interface SampledFlow {
  view: SockView;
  watched: boolean;
  /** Bytes acked + received since the previous scrape (everything so far for a flow seen first). */
  movedSinceLastScrape: number;
  identity: PackedIdentity;
}

/** One exported flow, as the collector saw it in its last scrape (for other features, e.g. the API). */
export interface ExportedFlow extends SampledFlow {
  localDevice: string;
}

export interface FlowSampleResult {
  /** Watched flows first, then the others by bytes moved since the previous sample. */
  exported: SampledFlow[];
  /** Sockets per TCP state (index = state). */
  stateCounts: Float64Array;
  /** Flows (tcp_info, not listening) seen. */
  seen: number;
}

/**
 * TIME_WAIT mini-sockets carry no tcp_info (they are never flows) and can number tens of thousands on a
 * busy node; the kernel skips them cheaply when they are not asked for. (Request sockets still come
 * with SYN_RECV: the kernel adds NEW_SYN_RECV whenever SYN_RECV is asked for; they are counted as
 * syn-recv and, without tcp_info, never exported.)
 */
export const NOT_DUMPED = (1 << 6) | (1 << 12);

/** Columns of the per-cookie table: the counters, the packed identity, bytes moved in this scrape. */
const COL_ID = N_COUNTERS;
const COL_MOVED = N_COUNTERS + 1;
const ROW_WIDTH = N_COUNTERS + 2;
const COUNTER_FIELDS = [TCPI.bytesAcked, TCPI.bytesReceived, TCPI.busyTime, TCPI.rwndLimited, TCPI.sndbufLimited, TCPI.totalRetrans, TCPI.dsackDups];

export class FlowsCollector {
  private readonly kernel: CompiledSelector;
  /** What is dumped: the kernel filter's plans without TIME_WAIT (see NOT_DUMPED). */
  private readonly plans: DumpPlan[];
  private readonly source: FlowSource;
  private readonly addrs: Pick<AddressDevices, 'prepare' | 'deviceOf' | 'close'>;
  private readonly now: () => number;
  /** Per cookie: the counters as last read, the identity, bytes moved in this scrape. */
  private readonly table = new CookieTable(ROW_WIDTH);
  private gen = 0;
  /** Cookies of the flows exported (not watched) by the previous scrape. */
  private incumbent = new CookieTable();
  /** The first scrape only sets the baseline of the per-service counters. */
  private baseline = true;
  private interrupted = 0;
  private readonly states: StateLogger;
  private readonly top: TopFlows;
  private readonly kept: TopFlows;
  private readonly watched: TopFlows;
  private readonly stateCounts = new Float64Array(16);
  private readonly listening = new ListeningPorts();
  private range: PortRange = DEFAULT_PORT_RANGE;
  readonly services: ServiceBuckets;
  /** The flows exported by the last scrape; their views are valid until the next scrape starts. */
  last: ExportedFlow[] = [];

  constructor(
    private readonly settings: FlowsSettings,
    private readonly log: Logger,
    deps: FlowsDeps = {},
  ) {
    const sel = settings.select ?? compileSelector('');
    this.kernel = settings.watch ? compileSelector(`(${sel.source}) or (${settings.watch.source})`, orSelectors(sel.ast, settings.watch.ast)) : sel;
    this.plans = this.kernel.plans.map((p) => ({ ...p, states: p.states & ~NOT_DUMPED })).filter((p) => p.states !== 0);
    this.source = deps.source ?? new SockDiag();
    this.addrs = deps.addrs ?? new AddressDevices();
    this.now = deps.now ?? (() => performance.now());
    this.states = new StateLogger(log);
    this.top = new TopFlows(settings.max);
    this.kept = new TopFlows(0);
    this.watched = new TopFlows(0);
    this.services = new ServiceBuckets(settings.servicePorts);
  }

  /** Which local ports have a listener, and the ephemeral port range: what identify() needs. */
  private async refreshIdentity(): Promise<void> {
    try {
      this.range = readPortRange(this.settings.procfs);
      this.states.report('ip_local_port_range', null);
    } catch (e) {
      this.states.report('ip_local_port_range', new Error(`${(e as Error).message}; assuming ${DEFAULT_PORT_RANGE.lo}-${DEFAULT_PORT_RANGE.hi}`));
    }
    await dumpListening(this.source, this.listening);
  }

  /**
   * One dump: count sockets per state, add every flow's counter deltas to its service bucket, rank flows
   * by bytes moved since the previous sample and keep the exported ones (copies valid until the next
   * sample). Every socket is read at a few fixed offsets; nothing is decoded beyond that.
   */
  async sample(): Promise<FlowSampleResult> {
    await this.refreshIdentity();
    const { watch } = this.settings;
    const kernel = this.kernel;
    const matchAll = kernel.exact ? null : kernel.matches;
    const matchWatch = watch ? watch.matches : null;

    const { stateCounts, top, kept, watched, services, incumbent, listening, range, table } = this;
    let seen = 0;
    const gen = (this.gen = (this.gen % 0xfffffffe) + 1);
    const baseline = this.baseline;
    // Each socket's row is updated in place. A retried dump (NLM_F_DUMP_INTR) meets rows the first attempt
    // already updated: their deltas then run from that attempt, so the per-service sums still add up to
    // "since the previous scrape" and the ranking uses bytes moved over both.
    const onSocket = (v: SockView) => {
      if (matchAll && !matchAll(v)) return;
      const st = v.state;
      if (st < stateCounts.length) stateCounts[st]++;
      if (!v.hasInfo || st === TCP_LISTEN) return;
      seen++;
      const key = v.cookieKey;
      const hash = CookieTable.hash(key);
      let r = table.find(key, hash);
      const fresh = r < 0;
      if (fresh) r = table.insert(key, hash);
      const o = r * ROW_WIDTH;
      const vals = table.vals;
      if (fresh) vals[o + COL_ID] = identify(v.sport, v.dport, listening, range);
      const row = services.row(vals[o + COL_ID]);
      if (table.gens[r] !== gen) {
        table.gens[r] = gen;
        vals[o + COL_MOVED] = 0;
        row[N_COUNTERS]++;
      }
      for (let j = 0; j < N_COUNTERS; j++) {
        const x = v.tcp(COUNTER_FIELDS[j]) ?? 0;
        // A counter of one socket never goes back; a smaller value would be a reused cookie: count it whole.
        const d = fresh ? x : x >= vals[o + j] ? x - vals[o + j] : x;
        if (!(fresh && baseline)) row[j] += d;
        if (j === C_ACKED || j === C_RECEIVED) vals[o + COL_MOVED] += d;
        vals[o + j] = x;
      }
      const moved = vals[o + COL_MOVED];
      const total = vals[o + C_ACKED] + vals[o + C_RECEIVED];
      if (matchWatch && matchWatch(v)) watched.keep(moved, total, v);
      else if (incumbent.find(key, hash) >= 0) kept.keep(moved, total, v);
      else top.offer(moved, total, v);
    };

    let res: DumpResult | null = null;
    services.begin();
    for (let attempt = 0; attempt < 2; attempt++) {
      stateCounts.fill(0);
      seen = 0;
      top.reset();
      kept.reset();
      watched.reset();
      res = await this.source.dump(this.plans, EXT_FLOWS, onSocket);
      if (!res.interrupted) break;
      this.interrupted++;
    }
    this.states.report('sock_diag dump consistency', res?.interrupted ? new Error('dump interrupted twice (NLM_F_DUMP_INTR); exporting it anyway') : null);
    table.sweep(gen);
    services.settle(this.now());
    this.baseline = false;

    const idOf = (c: Candidate) => table.vals[table.find(c.view.cookieKey) * ROW_WIDTH + COL_ID];
    const chosen = chooseExported(kept.items, top.items, this.settings.max);
    incumbent.clear();
    for (const c of chosen) incumbent.set(c.view.cookieKey, 1);
    const exported = [
      ...watched.items.map((c) => ({ view: c.view, watched: true, movedSinceLastScrape: c.delta, identity: idOf(c) })),
      ...chosen.map((c) => ({ view: c.view, watched: false, movedSinceLastScrape: c.delta, identity: idOf(c) })),
    ];
    return { exported, stateCounts, seen };
  }

  async collect(out: Emitter): Promise<void> {
    const { exported, stateCounts, seen } = await this.sample();
    const localIps = exported.map((e) => e.view.localIp());
    try {
      await this.addrs.prepare(localIps);
    } catch (e) {
      // The device label is an annotation: without rtnetlink the flows are still exported.
      this.states.report('address table', e);
    }

    for (const s of ALL_STATES) if (!(NOT_DUMPED & (1 << s))) out.add(flowsSockets, [tcpStateName(s)], stateCounts[s]);
    out.add(flowsSeen, [], seen);
    out.add(flowsExported, [], exported.length);
    out.add(flowsOmitted, [], seen - exported.length);
    out.add(flowsInterrupted, [], this.interrupted);
    for (const b of this.services.buckets()) SERVICE_TABLE.emit(out, b, b.labels);

    const last: ExportedFlow[] = [];
    exported.forEach((e, i) => {
      const v = e.view;
      const localIp = localIps[i];
      const labels = [localIp, String(v.sport), v.peerIp(), String(v.dport), ...identityLabels(e.identity)];
      const device = this.addrs.deviceOf(localIp, v.ifindex) ?? '';
      out.add(flowInfo, [...labels, v.cong() ?? '', device], 1);
      FLOW_TABLE.emit(out, v, labels);
      last.push({ ...e, localDevice: device });
    });
    this.last = last;
  }

  close(): void {
    this.source.close();
    this.addrs.close();
  }
}

export const flowsCollector: CollectorDef = {
  name: 'flows',
  description:
    'Per-flow TCP state (tcp_info, socket memory, BBR) from sock_diag for --flows.watch flows and the --flows.max busiest, and per-service counters over every flow selected by --flows.select.',
  defaultEnabled: true,
  metrics: FLOW_METRICS,
  flags: [flowsSelectFlag, flowsWatchFlag, flowsMaxFlag, flowsServicePortsFlag] as FlagDef<unknown>[],
  create({ config, log }) {
    const c = new FlowsCollector(flowsSettings(config), log);
    return {
      collect: (out) => c.collect(out),
      close: () => c.close(),
    };
  },
};
