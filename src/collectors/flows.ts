// The `flows` collector: per-flow TCP metrics from sock_diag (struct tcp_info, skmeminfo, BBR info),
// selected in the kernel by --flows.select, capped by --flows.max.
//
// Every scrape: one dump per address family with the selector compiled to INET_DIAG bytecode; each
// socket arrives as a flyweight view (nothing decoded, nothing allocated). For every flow we read the
// cookie and tcpi_bytes_acked, compare with the previous scrape's value for the same cookie, and keep
// the --flows.max flows with the most bytes acked since then (a bounded heap of copied messages) plus
// every flow matching --flows.watch. Only those are decoded into series. The per-flow series set is
// rebuilt each scrape, so a closed flow's series vanish at once (docs/style.md §5).

import { Config, FlagDef, UsageError, intFlag } from '../core/flags';
import { Emitter, MetricTable, counter, gauge } from '../core/metrics';
import { Logger, StateLogger } from '../core/log';
import { CollectorDef } from './registry';
import { ALL_STATES, CompiledSelector, SelectorError, compileSelector, orSelectors } from '../sources/flowselect';
import { AddressDevices } from '../sources/netlink/rtnl-addr';
import { DumpPlan, DumpResult, EXT_FLOWS, SockDiag, SockView, TCP_LISTEN } from '../sources/netlink/sockdiag';
import { MIN_RTT_NONE, SKMEM, TCPI, TCP_INFINITE_SSTHRESH, caStateName, tcpStateName } from '../sources/netlink/tcpinfo';

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
  100,
  'Maximum number of flows exported with per-flow series: the flows with the most bytes acked since the previous scrape (plus every --flows.watch flow).',
  0,
  100000,
);

// ---------------------------------------------------------------------------------------------------
// Metrics

const ID_LABELS = ['local_ip', 'local_port', 'peer_ip', 'peer_port'] as const;

const us = (v: number | undefined) => (v === undefined ? undefined : v / 1e6);
const ms = (v: number | undefined) => (v === undefined ? undefined : v / 1e3);
const finite = (v: number | undefined) => (v === undefined || v === Infinity ? undefined : v);
const t = TCPI;

/** One line per metric: name, type, help (naming the kernel field), value from the socket view. */
const FLOW_TABLE = new MetricTable<SockView>(ID_LABELS, [
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
  'One per exported flow, value 1: congestion control (INET_DIAG_CONG), TCP state, congestion-avoidance state (tcpi_ca_state) and the device holding the local address ("" if none).',
  [...ID_LABELS, 'cc', 'state', 'ca_state', 'local_device'],
);
export const flowsSockets = gauge(
  'flowpath_flows_sockets',
  'TCP sockets matching --flows.select or --flows.watch, by state (never capped; TIME_WAIT sockets are not dumped).',
  ['state'],
);
export const flowsSeen = gauge('flowpath_flows_seen', 'Flows (sockets with tcp_info, not listening) matching --flows.select or --flows.watch in this scrape.');
export const flowsExported = gauge('flowpath_flows_exported', 'Flows exported with per-flow series in this scrape.');
export const flowsOmitted = gauge('flowpath_flows_omitted', 'Flows seen but left out by --flows.max in this scrape.');
export const flowsInterrupted = counter(
  'flowpath_flows_dump_interrupted_total',
  'sock_diag dumps the kernel flagged NLM_F_DUMP_INTR (inconsistent); such a dump is retried once per scrape.',
);

export const FLOW_METRICS = [flowInfo, ...FLOW_TABLE.descs, flowsSockets, flowsSeen, flowsExported, flowsOmitted, flowsInterrupted];

// ---------------------------------------------------------------------------------------------------
// Selection: a bounded min-heap of (bytes acked since the last scrape, lifetime bytes acked)

interface Candidate {
  delta: number;
  acked: number;
  view: SockView;
}

const worse = (a: Candidate, b: Candidate) => a.delta < b.delta || (a.delta === b.delta && a.acked < b.acked);

/**
 * Keeps the `cap` best candidates of one dump. The candidates and their message copies are reused from
 * scrape to scrape (reset() makes them free again), and an entering socket is copied over the evicted
 * one, so selection allocates nothing in steady state (kept objects would also make V8 grow its young
 * generation). Views handed out stay valid until the next reset().
 */
export class TopFlows {
  private readonly heap: Candidate[] = [];
  private readonly spare: Candidate[] = [];
  constructor(readonly cap: number) {}

  get items(): readonly Candidate[] {
    return this.heap;
  }

  /** Forget the previous dump's candidates (their storage is reused). */
  reset(): void {
    this.spare.push(...this.heap);
    this.heap.length = 0;
  }

  private fresh(delta: number, acked: number, v: SockView): Candidate {
    const c = this.spare.pop() ?? { delta: 0, acked: 0, view: new SockView(v.layout) };
    c.delta = delta;
    c.acked = acked;
    v.copyInto(c.view);
    return c;
  }

  /** Add unconditionally (watched flows). */
  keep(delta: number, acked: number, v: SockView): Candidate {
    const c = this.fresh(delta, acked, v);
    this.heap.push(c);
    return c;
  }

  offer(delta: number, acked: number, v: SockView): void {
    const h = this.heap;
    if (this.cap <= 0) return;
    if (h.length < this.cap) {
      h.push(this.fresh(delta, acked, v));
      let i = h.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!worse(h[i], h[p])) break;
        [h[i], h[p]] = [h[p], h[i]];
        i = p;
      }
      return;
    }
    const min = h[0];
    if (!(min.delta < delta || (min.delta === delta && min.acked < acked))) return;
    min.delta = delta;
    min.acked = acked;
    v.copyInto(min.view);
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && worse(h[l], h[m])) m = l;
      if (r < h.length && worse(h[r], h[m])) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Previous sample per cookie: an open-addressing hash table on typed arrays (cookie -> bytes acked).
// A Map rebuilt every scrape with 20k entries made V8 grow its heap by ~45 MB; two of these tables,
// swapped and cleared each scrape, allocate nothing in steady state.

export class CookieTable {
  private keys: Float64Array;
  private vals: Float64Array;
  private mask: number;
  size = 0;

  constructor(capacity = 1024) {
    let cap = 16;
    while (cap < capacity * 2) cap *= 2;
    this.keys = new Float64Array(cap);
    this.vals = new Float64Array(cap);
    this.mask = cap - 1;
  }

  /** The hash of a cookie (the same in every table: compute it once per socket for prev and cur). */
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

  /** The value stored for a cookie (never 0: the kernel's cookies start at 1), or undefined. */
  get(key: number, hash = CookieTable.hash(key)): number | undefined {
    const i = this.slot(key, hash);
    return this.keys[i] === key ? this.vals[i] : undefined;
  }

  set(key: number, value: number, hash = CookieTable.hash(key)): void {
    if ((this.size + 1) * 2 > this.keys.length) this.grow();
    const i = this.slot(key, hash);
    if (this.keys[i] !== key) {
      this.keys[i] = key;
      this.size++;
    }
    this.vals[i] = value;
  }

  clear(): void {
    if (this.size > 0) this.keys.fill(0);
    this.size = 0;
  }

  private grow(): void {
    const oldK = this.keys;
    const oldV = this.vals;
    this.keys = new Float64Array(oldK.length * 2);
    this.vals = new Float64Array(oldK.length * 2);
    this.mask = this.keys.length - 1;
    this.size = 0;
    for (let i = 0; i < oldK.length; i++) if (oldK[i] !== 0) this.set(oldK[i], oldV[i]);
  }
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
}

export interface FlowsSettings {
  select: CompiledSelector | null;
  watch: CompiledSelector | null;
  max: number;
}

export function flowsSettings(config: Config): FlowsSettings {
  return { select: config.get(flowsSelectFlag).compiled, watch: config.get(flowsWatchFlag).compiled, max: config.get(flowsMaxFlag) };
}

/** One selected flow of a sample: a copy of its sock_diag message, valid until the next sample. */
export interface SampledFlow {
  view: SockView;
  watched: boolean;
  ackedSinceLastScrape: number;
}

/** One exported flow, as the collector saw it in its last scrape (for other features, e.g. the API). */
export interface ExportedFlow extends SampledFlow {
  localDevice: string;
}

export interface FlowSampleResult {
  /** Watched flows first, then the others by bytes acked since the previous sample. */
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

export class FlowsCollector {
  private readonly kernel: CompiledSelector;
  /** What is dumped: the kernel filter's plans without TIME_WAIT (see NOT_DUMPED). */
  private readonly plans: DumpPlan[];
  private readonly source: FlowSource;
  private readonly addrs: Pick<AddressDevices, 'prepare' | 'deviceOf' | 'close'>;
  private prev = new CookieTable();
  private cur = new CookieTable();
  private interrupted = 0;
  private readonly states: StateLogger;
  private readonly top: TopFlows;
  private readonly watched: TopFlows;
  private readonly stateCounts = new Float64Array(16);
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
    this.states = new StateLogger(log);
    this.top = new TopFlows(settings.max);
    this.watched = new TopFlows(0);
  }

  /**
   * One dump: count sockets per state, rank flows by bytes acked since the previous sample and keep the
   * exported ones (copies valid until the next sample). Every socket is read at four fixed offsets
   * (state, tcp_info presence, cookie, tcpi_bytes_acked); nothing is decoded beyond that.
   */
  async sample(): Promise<FlowSampleResult> {
    const { watch } = this.settings;
    const kernel = this.kernel;
    const matchAll = kernel.exact ? null : kernel.matches;
    const matchWatch = watch ? watch.matches : null;

    const { stateCounts, top, watched } = this;
    let seen = 0;
    const prev = this.prev;
    const cur = this.cur;
    const onSocket = (v: SockView) => {
      if (matchAll && !matchAll(v)) return;
      const st = v.state;
      if (st < stateCounts.length) stateCounts[st]++;
      if (!v.hasInfo || st === TCP_LISTEN) return;
      seen++;
      const acked = v.tcp(TCPI.bytesAcked) ?? 0;
      const key = v.cookieKey;
      const hash = CookieTable.hash(key);
      const before = prev.get(key, hash);
      const delta = before === undefined || before > acked ? acked : acked - before;
      cur.set(key, acked, hash);
      if (matchWatch && matchWatch(v)) watched.keep(delta, acked, v);
      else top.offer(delta, acked, v);
    };

    let res: DumpResult | null = null;
    for (let attempt = 0; attempt < 2; attempt++) {
      stateCounts.fill(0);
      seen = 0;
      top.reset();
      watched.reset();
      cur.clear();
      res = await this.source.dump(this.plans, EXT_FLOWS, onSocket);
      if (!res.interrupted) break;
      this.interrupted++;
    }
    this.states.report('sock_diag dump consistency', res?.interrupted ? new Error('dump interrupted twice (NLM_F_DUMP_INTR); exporting it anyway') : null);
    this.prev = cur;
    this.cur = prev;

    const ranked = [...top.items].sort((a, b) => b.delta - a.delta || b.acked - a.acked);
    const exported = [
      ...watched.items.map((c) => ({ view: c.view, watched: true, ackedSinceLastScrape: c.delta })),
      ...ranked.map((c) => ({ view: c.view, watched: false, ackedSinceLastScrape: c.delta })),
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

    const last: ExportedFlow[] = [];
    exported.forEach((e, i) => {
      const v = e.view;
      const localIp = localIps[i];
      const labels = [localIp, String(v.sport), v.peerIp(), String(v.dport)];
      const device = this.addrs.deviceOf(localIp, v.ifindex) ?? '';
      const ca = v.tcp(TCPI.caState);
      out.add(flowInfo, [...labels, v.cong() ?? '', tcpStateName(v.state), ca === undefined ? '' : caStateName(ca), device], 1);
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
  description: 'Per-flow TCP state (tcp_info, socket memory, BBR) from sock_diag, selected by --flows.select and capped by --flows.max.',
  defaultEnabled: true,
  metrics: FLOW_METRICS,
  flags: [flowsSelectFlag, flowsWatchFlag, flowsMaxFlag] as FlagDef<unknown>[],
  create({ config, log }) {
    const c = new FlowsCollector(flowsSettings(config), log);
    return {
      collect: (out) => c.collect(out),
      close: () => c.close(),
    };
  },
};
