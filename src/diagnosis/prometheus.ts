// `flowpath diagnose --prometheus URL [--at TIME] [--window D]`: the path verdict of a flow rebuilt from
// the time series a Prometheus scraped from flowpath on both ends, so a past incident and the receiver's
// side are available without reaching the nodes. This is an adapter, not a second rule engine: it turns
// the raw samples of the window (one range-vector query per node and per flow side) into the same
// FlowSummary / NodeSnapshot inputs the live sampler builds, then runs the same summarizeNode(),
// diagnose() and renderVerdict(). What the series cannot give back is listed in the output.

import type { CliIO } from '../core/command';
import { Config, FlagDef, UsageError, durationFlag, stringFlag } from '../core/flags';
import { verdictJson } from './api';
import { fmtKey, renderVerdict } from './render';
import { flowId, parseFlowId } from './sampler';
import { summarizeNode, median } from './summarize';
import type { CpuSnapshot, DeviceSnapshot, FlowKey, FlowSample, FlowSummary, NodeSnapshot, OvsEvidence, PathDevices, QdiscSnapshot, SideEvidence } from './types';
import { REASONS, zeroReasons } from './types';
import { diagnose } from './verdict';
import { keyMatcher } from './api';

export const prometheusFlag = stringFlag('prometheus', '', 'Build the verdict from this Prometheus (base URL) instead of sampling live: it must scrape flowpath on both ends.', '<url>');
export const atFlag = stringFlag('at', 'now', 'With --prometheus: end of the window (RFC 3339, Unix seconds, or "now").', '<time>');
export const promWindowFlag = durationFlag('window', 300, 'With --prometheus: length of the window that ends at --at.', 1);
export const promSelectorFlag = stringFlag('prometheus.selector', 'job="flowpath"', 'With --prometheus: label matchers of the flowpath series (without braces).', '<matchers>');

export const PROMETHEUS_FLAGS = [prometheusFlag, atFlag, promWindowFlag, promSelectorFlag] as FlagDef<unknown>[];

// ---------------------------------------------------------------------------------------------------
// Prometheus HTTP API

export type Labels = Record<string, string>;
export interface RangeSeries {
  metric: Labels;
  /** [unix seconds, value] in time order. */
  values: Array<[number, number]>;
}

export interface PromApi {
  /** An instant query returning a range vector (a matrix of raw samples). */
  matrix(query: string, at: number): Promise<RangeSeries[]>;
  /** HELP text of the metrics Prometheus scraped (/api/v1/metadata), by metric name. */
  help(): Promise<Map<string, string>>;
}

export function httpPromApi(base: string, f: typeof fetch = fetch): PromApi {
  return {
    async matrix(query, at) {
      const u = new URL('api/v1/query', base.endsWith('/') ? base : base + '/');
      const body = new URLSearchParams({ query, time: String(at) });
      let r: Response;
      try {
        r = await f(u, { method: 'POST', body, signal: AbortSignal.timeout(30000) });
      } catch (e) {
        throw new Error(`${u}: ${(e as Error).message}`);
      }
      const j = (await r.json().catch(() => ({}))) as { status?: string; error?: string; data?: { resultType?: string; result?: Array<{ metric: Labels; values: Array<[number, string]> }> } };
      if (!r.ok || j.status !== 'success') throw new Error(`${u}: HTTP ${r.status}${j.error ? `: ${j.error}` : ''}`);
      if (j.data?.resultType !== 'matrix') throw new Error(`${u}: expected a matrix for ${query}`);
      return (j.data.result ?? []).map((s) => ({ metric: s.metric, values: s.values.map(([t, v]) => [t, Number(v)] as [number, number]) }));
    },
    async help() {
      const u = new URL('api/v1/metadata', base.endsWith('/') ? base : base + '/');
      const r = await f(u, { signal: AbortSignal.timeout(30000) }).catch((e: Error) => {
        throw new Error(`${u}: ${e.message}`);
      });
      const j = (await r.json().catch(() => ({}))) as { status?: string; data?: Record<string, Array<{ help?: string }>> };
      if (!r.ok || j.status !== 'success') throw new Error(`${u}: HTTP ${r.status}`);
      return new Map(Object.entries(j.data ?? {}).map(([k, v]) => [k, v[0]?.help ?? '']));
    },
  };
}

/** "now", Unix seconds or an RFC 3339 time → Unix seconds. */
export function parseAt(s: string, now = Date.now() / 1000): number {
  const v = s.trim();
  if (v === '' || v === 'now') return now;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const ms = Date.parse(v);
  if (Number.isNaN(ms) || !/^\d{4}-\d\d-\d\d/.test(v)) throw new UsageError(`--at: not "now", Unix seconds or RFC 3339: "${s}"`);
  return ms / 1000;
}

// ---------------------------------------------------------------------------------------------------
// Samples → values

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
const matchers = (l: Labels) =>
  Object.entries(l)
    .map(([k, v]) => `${k}="${esc(v)}"`)
    .join(', ');

/** Series of a range-vector answer grouped by metric name. */
class Series {
  private byName = new Map<string, RangeSeries[]>();
  constructor(rows: RangeSeries[]) {
    for (const r of rows) {
      const n = r.metric.__name__ ?? '';
      if (!this.byName.has(n)) this.byName.set(n, []);
      this.byName.get(n)!.push(r);
    }
  }
  all(name: string, where: Labels = {}): RangeSeries[] {
    return (this.byName.get(name) ?? []).filter((s) => Object.entries(where).every(([k, v]) => s.metric[k] === v));
  }
  one(name: string, where: Labels = {}): RangeSeries | undefined {
    return this.all(name, where)[0];
  }
}

function valueAt(s: RangeSeries | undefined, t: number): number | undefined {
  if (!s) return undefined;
  let v: number | undefined;
  for (const [ts, x] of s.values) {
    if (ts > t) break;
    v = x;
  }
  return v;
}
const first = (s: RangeSeries | undefined) => (s && s.values.length ? s.values[0][1] : undefined);
const last = (s: RangeSeries | undefined) => (s && s.values.length ? s.values[s.values.length - 1][1] : undefined);

/** Counter increase over the samples, resets counted as a restart from 0 (like increase() without extrapolation). */
export function increase(s: RangeSeries | undefined): number | undefined {
  if (!s || s.values.length < 2) return undefined;
  let inc = 0;
  for (let i = 1; i < s.values.length; i++) {
    const d = s.values[i][1] - s.values[i - 1][1];
    inc += d >= 0 ? d : s.values[i][1];
  }
  return inc;
}

const sumDefined = (xs: Array<number | undefined>) => (xs.some((x) => x !== undefined) ? xs.reduce<number>((a, x) => a + (x ?? 0), 0) : undefined);

// ---------------------------------------------------------------------------------------------------
// Flow side

export interface FlowRef {
  instance: string;
  key: FlowKey;
  labels: Labels;
}

const US = 1e6;

const GAUGES: Record<string, keyof FlowSample> = {
  flowpath_flow_tcp_state: 'state',
  flowpath_flow_ca_state: 'caState',
  flowpath_flow_mss_bytes: 'sndMss',
  flowpath_flow_unacked_packets: 'unacked',
  flowpath_flow_sacked_packets: 'sacked',
  flowpath_flow_lost_packets: 'lost',
  flowpath_flow_retrans_packets: 'retrans',
  flowpath_flow_cwnd_packets: 'cwnd',
  flowpath_flow_ssthresh_packets: 'ssthresh',
  flowpath_flow_pacing_rate_bytes_per_second: 'pacingRate',
  flowpath_flow_max_pacing_rate_bytes_per_second: 'maxPacingRate',
  flowpath_flow_delivery_rate_bytes_per_second: 'deliveryRate',
  flowpath_flow_acked_bytes_total: 'bytesAcked',
  flowpath_flow_received_bytes_total: 'bytesReceived',
  flowpath_flow_sent_bytes_total: 'bytesSent',
  flowpath_flow_retransmitted_bytes_total: 'bytesRetrans',
  flowpath_flow_retransmitted_packets_total: 'totalRetrans',
  flowpath_flow_dsack_dups_total: 'dsackDups',
  flowpath_flow_notsent_bytes: 'notsentBytes',
  flowpath_flow_snd_wnd_bytes: 'sndWnd',
  flowpath_flow_rcv_wnd_bytes: 'rcvWnd',
  flowpath_flow_rcv_space_bytes: 'rcvSpace',
  flowpath_flow_rcv_ssthresh_bytes: 'rcvSsthresh',
  flowpath_flow_delivered_packets_total: 'delivered',
  flowpath_flow_segments_out_total: 'segsOut',
  flowpath_flow_data_segments_out_total: 'dataSegsOut',
  flowpath_flow_send_queue_bytes: 'wqueue',
  flowpath_flow_recv_queue_bytes: 'rqueue',
};
const SECONDS_US: Record<string, keyof FlowSample> = {
  flowpath_flow_rtt_seconds: 'rtt',
  flowpath_flow_min_rtt_seconds: 'minRtt',
  flowpath_flow_busy_seconds_total: 'busyTime',
  flowpath_flow_rwnd_limited_seconds_total: 'rwndLimited',
  flowpath_flow_sndbuf_limited_seconds_total: 'sndbufLimited',
};

function sampleAt(s: Series, t: number, cc: string | undefined): FlowSample {
  const out: FlowSample = { t: t * 1000, wallMs: t * 1000, cc };
  const rec = out as unknown as Record<string, number | undefined>;
  for (const [m, f] of Object.entries(GAUGES)) rec[f] = valueAt(s.one(m), t);
  for (const [m, f] of Object.entries(SECONDS_US)) {
    const v = valueAt(s.one(m), t);
    rec[f] = v === undefined ? undefined : v * US;
  }
  const app = valueAt(s.one('flowpath_flow_delivery_rate_app_limited'), t);
  if (app !== undefined) out.appLimited = app === 1;
  const sk = (n: string) => valueAt(s.one(`flowpath_flow_skmem_${n}`), t);
  const r = sk('rmem_alloc_bytes');
  if (r !== undefined) {
    out.skmem = {
      rmemAlloc: r,
      rcvbuf: sk('rcvbuf_bytes') ?? 0,
      wmemAlloc: sk('wmem_alloc_bytes') ?? 0,
      sndbuf: sk('sndbuf_bytes') ?? 0,
      fwdAlloc: sk('fwd_alloc_bytes') ?? 0,
      wmemQueued: sk('wmem_queued_bytes') ?? 0,
      optmem: 0,
      backlog: sk('backlog_bytes'),
      drops: sk('dropped_packets_total'),
    };
  }
  return out;
}

/** The FlowSummary of one side over [from, to], from the flow's raw samples. */
export function flowSummaryFrom(rows: RangeSeries[], ref: FlowRef, from: number, to: number, notes: string[]): FlowSummary | undefined {
  const s = new Series(rows);
  const info = s.one('flowpath_flow_info');
  const times = rows.flatMap((r) => r.values.map((v) => v[0]));
  if (times.length === 0) return undefined;
  const t0 = Math.max(from, Math.min(...times));
  const t1 = Math.min(to, Math.max(...times));
  const cc = info?.metric.cc || undefined;
  const firstS = sampleAt(s, t0, cc);
  const lastS = sampleAt(s, t1, cc);
  const inc = (m: string) => increase(s.one(m));
  const acked = inc('flowpath_flow_acked_bytes_total');
  const received = inc('flowpath_flow_received_bytes_total');
  const sent = inc('flowpath_flow_sent_bytes_total');
  const retransBytes = inc('flowpath_flow_retransmitted_bytes_total');
  const seconds = Math.max(0, t1 - t0);

  // Time by reason: the diagnosis counters when the exporter sampled this flow; else only the kernel's
  // chronographs (idle, rwnd, sndbuf exact; the rest of the busy time cannot be split).
  const reasons = zeroReasons();
  const exact = zeroReasons();
  const limited = s.all('flowpath_flow_limited_seconds_total');
  const busy = inc('flowpath_flow_busy_seconds_total');
  const rwnd = inc('flowpath_flow_rwnd_limited_seconds_total');
  const sndbuf = inc('flowpath_flow_sndbuf_limited_seconds_total');
  let covered = 0;
  if (limited.length) {
    for (const l of limited) {
      const r = l.metric.reason as (typeof REASONS)[number];
      if ((REASONS as readonly string[]).includes(r)) reasons[r] += increase(l) ?? 0;
    }
    covered = REASONS.reduce((a, r) => a + reasons[r], 0);
  } else if (busy !== undefined) {
    reasons.idle = Math.max(0, seconds - busy);
    reasons.rwnd = rwnd ?? 0;
    reasons.sndbuf = sndbuf ?? 0;
    reasons.unclassified = Math.max(0, busy - reasons.rwnd - reasons.sndbuf);
    covered = seconds;
    notes.push(`${ref.instance}: the flow was not sampled by the exporter's diagnosis (--diagnosis.top / --diagnosis.watch): only the kernel chronographs split its time (idle, rwnd, sndbuf); the rest of the busy time is "unclassified"`);
  }
  if (rwnd !== undefined) exact.rwnd = Math.min(rwnd, reasons.rwnd);
  if (sndbuf !== undefined) exact.sndbuf = Math.min(sndbuf, reasons.sndbuf);
  if (busy !== undefined) exact.idle = Math.min(reasons.idle, Math.max(0, seconds - busy));

  const series = (m: string) => (s.one(m)?.values ?? []).filter(([t]) => t >= t0 && t <= t1).map(([, v]) => v);
  const mss = series('flowpath_flow_mss_bytes');
  const notsent = series('flowpath_flow_notsent_bytes');
  const waiting = notsent.filter((v, i) => v >= (mss[i] ?? mss[mss.length - 1] ?? 1448)).length;
  const minRtts = series('flowpath_flow_min_rtt_seconds');
  const summarySeconds = covered > 0 ? covered : seconds;
  const role: 'sender' | 'receiver' = (acked ?? 0) >= (received ?? 0) && ((acked ?? 0) > 0 || (lastS.bytesAcked ?? 0) >= (lastS.bytesReceived ?? 0)) ? 'sender' : 'receiver';
  return {
    key: ref.key,
    role,
    cc,
    seconds: summarySeconds,
    samples: Math.max(0, ...rows.map((r) => r.values.length)),
    reasons,
    exactReasons: exact,
    goodputBps: seconds > 0 && acked !== undefined ? acked / seconds : undefined,
    receiveBps: seconds > 0 && received !== undefined ? received / seconds : undefined,
    retransRatio: sent && retransBytes !== undefined ? retransBytes / sent : undefined,
    retransSegs: inc('flowpath_flow_retransmitted_packets_total'),
    dsackDups: inc('flowpath_flow_dsack_dups_total'),
    notsentShare: notsent.length ? waiting / notsent.length : 0,
    first: firstS,
    last: lastS,
    medianRttUs: ((m) => (m === undefined ? undefined : m * US))(median(series('flowpath_flow_rtt_seconds'))),
    minRttUs: minRtts.length ? Math.min(...minRtts) * US : undefined,
    medianCwnd: median(series('flowpath_flow_cwnd_packets')),
    medianDeliveryRate: median(series('flowpath_flow_delivery_rate_bytes_per_second').filter((x) => x > 0)),
    maxPacingRate: lastS.maxPacingRate,
  };
}

// ---------------------------------------------------------------------------------------------------
// Node side

/**
 * TcpExt counter names (as the diagnosis rules use them) → flowpath_netstat_tcpext_* metric. Every netstat
 * help text ends with the kernel's spelling, "(TcpExt TCPRcvQDrop)", and Prometheus keeps the help of
 * what it scraped: the mapping comes with the series.
 */
export function tcpExtMetricNames(help: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, h] of help) {
    const x = /\(TcpExt (\w+)\)/.exec(h);
    if (x && name.startsWith('flowpath_netstat_tcpext_')) out.set(x[1], name);
  }
  return out;
}

const CLASS_KIND: Record<string, DeviceSnapshot['kind']> = { physical: 'physical', tun: 'tun', bridge: 'bridge', loopback: 'loopback', 'ovs-internal': 'ovs-internal' };

/** The node's evidence at time t (the last sample at or before t of every series). */
export function nodeSnapshotAt(rows: RangeSeries[], t: number, names: Map<string, string>): NodeSnapshot {
  const s = new Series(rows);
  const v = (m: string, where: Labels) => valueAt(s.one(m, where), t);
  const internal = new Set(s.all('flowpath_ovs_internal_port_info').map((x) => x.metric.device));
  const devNames = new Set(s.all('flowpath_nic_info').map((x) => x.metric.device));
  const devices: DeviceSnapshot[] = [...devNames].map((name) => {
    const d = { device: name };
    const info = s.one('flowpath_nic_info', d)?.metric;
    const nic = (c: string) => v(`flowpath_nic_${c}`, d);
    const feature = (f: string) => ((x) => (x === undefined ? undefined : x === 1))(v('flowpath_nic_offload_active', { device: name, feature: f }));
    const stops = s.all('flowpath_nic_queue_tx_stop_total', d).map((x) => valueAt(x, t));
    const rps = s.all('flowpath_rps_cpus', d).map((x) => valueAt(x, t));
    const speed = nic('speed_bytes_per_second');
    return {
      name,
      kind: CLASS_KIND[info?.class ?? ''] ?? (info?.kind === 'veth' ? 'veth' : info?.kind === 'ifb' ? 'ifb' : 'other'),
      ovsInternal: internal.has(name) || info?.class === 'ovs-internal' || undefined,
      speedBps: speed === undefined ? undefined : speed * 8,
      mtu: nic('mtu_bytes'),
      operUp: ((x) => (x === undefined ? undefined : x === 1))(nic('up')),
      rxBytes: nic('rx_bytes_total'),
      txBytes: nic('tx_bytes_total'),
      rxPackets: nic('rx_packets_total'),
      txPackets: nic('tx_packets_total'),
      rxDropped: nic('rx_dropped_total'),
      txDropped: nic('tx_dropped_total'),
      rxErrors: nic('rx_errors_total'),
      txErrors: nic('tx_errors_total'),
      rxMissed: nic('rx_missed_errors_total'),
      rxFifo: nic('rx_fifo_errors_total'),
      txFifo: nic('tx_fifo_errors_total'),
      txStop: sumDefined(stops),
      rxRing: nic('rx_ring_entries'),
      rxRingMax: nic('rx_ring_max_entries'),
      txRing: nic('tx_ring_entries'),
      txRingMax: nic('tx_ring_max_entries'),
      tso: feature('tx-tcp-segmentation'),
      gso: feature('tx-generic-segmentation'),
      gro: feature('rx-gro'),
      rps: rps.length ? rps.some((x) => (x ?? 0) > 0) : undefined,
    };
  });
  const qdiscs: QdiscSnapshot[] = s.all('flowpath_qdisc_info').map((q) => {
    const l = { device: q.metric.device, kind: q.metric.kind, handle: q.metric.handle, parent: q.metric.parent };
    const g = (m: string) => v(`flowpath_qdisc_${m}`, l);
    return {
      device: l.device,
      kind: l.kind,
      handle: l.handle,
      parent: l.parent,
      root: l.parent === 'root',
      bytes: g('bytes_total'),
      packets: g('packets_total'),
      drops: g('drops_total'),
      overlimits: g('overlimits_total'),
      requeues: g('requeues_total'),
      backlogBytes: g('backlog_bytes'),
      fqThrottled: g('fq_throttled_total'),
      fqThrottledFlows: g('fq_throttled_flows'),
      fqFlowsPlimit: g('fq_flows_plimit_total'),
    };
  });
  const cpuIds = new Set(s.all('flowpath_softnet_processed_packets_total').map((x) => x.metric.cpu));
  for (const x of s.all('flowpath_cpu_seconds_total')) cpuIds.add(x.metric.cpu);
  const cpus: CpuSnapshot[] = [...cpuIds]
    .filter((c) => c !== undefined && /^\d+$/.test(c))
    .map((cpu) => {
      const modes = s.all('flowpath_cpu_seconds_total', { cpu });
      const mode = (m: string) => valueAt(modes.find((x) => x.metric.mode === m), t);
      return {
        cpu: Number(cpu),
        softnetProcessed: v('flowpath_softnet_processed_packets_total', { cpu }),
        softnetDropped: v('flowpath_softnet_dropped_packets_total', { cpu }),
        softnetTimeSqueeze: v('flowpath_softnet_time_squeeze_total', { cpu }),
        softnetBacklog: v('flowpath_softnet_backlog_packets', { cpu }),
        netRx: v('flowpath_softirqs_total', { cpu, vector: 'NET_RX' }),
        netTx: v('flowpath_softirqs_total', { cpu, vector: 'NET_TX' }),
        softirqTicks: mode('softirq'),
        totalTicks: sumDefined(modes.map((x) => valueAt(x, t))),
        idleTicks: sumDefined([mode('idle'), mode('iowait')]),
      };
    })
    .sort((a, b) => a.cpu - b.cpu);
  let ovs: OvsEvidence | undefined;
  const dps = new Map<string, RangeSeries[]>();
  for (const x of s.all('flowpath_ovs_datapath_lookups_hit_total')) dps.set(x.metric.datapath, []);
  if (dps.size || s.all('flowpath_ovs_port_rx_packets_total').length) {
    const dpv = (m: string, datapath: string) => {
      const xs = s.all(m, { datapath }).map((x) => valueAt(x, t));
      return xs.length ? Math.max(...xs.map((x) => x ?? 0)) : undefined;
    };
    const ports = new Map<string, { datapath: string; name: string; internal: boolean }>();
    for (const x of s.all('flowpath_ovs_port_rx_packets_total')) ports.set(`${x.metric.datapath}/${x.metric.port}`, { datapath: x.metric.datapath, name: x.metric.port, internal: x.metric.internal === 'true' || x.metric.internal === '1' });
    const pmd = (m: string) => sumDefined(s.all(m).map((x) => valueAt(x, t)));
    ovs = {
      datapaths: [...dps.keys()].map((name) => ({
        name,
        type: name.startsWith('netdev@') ? 'netdev' : name.startsWith('system@') ? 'system' : undefined,
        hit: dpv('flowpath_ovs_datapath_lookups_hit_total', name),
        missed: dpv('flowpath_ovs_datapath_lookups_missed_total', name),
        lost: dpv('flowpath_ovs_datapath_lookups_lost_total', name),
        flows: dpv('flowpath_ovs_datapath_flows', name),
      })),
      ports: [...ports.values()].map((p) => {
        const l = { datapath: p.datapath, port: p.name };
        return {
          ...p,
          rxPackets: v('flowpath_ovs_port_rx_packets_total', l),
          txPackets: v('flowpath_ovs_port_tx_packets_total', l),
          rxDropped: v('flowpath_ovs_port_rx_dropped_total', l),
          txDropped: v('flowpath_ovs_port_tx_dropped_total', l),
        };
      }),
      upcallSuccess: pmd('flowpath_ovs_pmd_upcalls_total'),
      upcallFailed: pmd('flowpath_ovs_pmd_lost_upcalls_total'),
    };
  }
  const tcpExt: Record<string, number> = {};
  for (const [k, m] of names) {
    const x = v(m, {});
    if (x !== undefined) tcpExt[k] = x;
  }
  const sysctl: Record<string, string> = {};
  const byName = new Map<string, Array<[number, number]>>();
  for (const x of s.all('flowpath_sysctl_value')) {
    const val = valueAt(x, t);
    if (val === undefined) continue;
    if (!byName.has(x.metric.name)) byName.set(x.metric.name, []);
    byName.get(x.metric.name)!.push([Number(x.metric.index ?? 0), val]);
  }
  for (const [k, xs] of byName) sysctl[k] = xs.sort((a, b) => a[0] - b[0]).map((x) => x[1]).join(' ');
  for (const x of s.all('flowpath_sysctl_info')) if (valueAt(x, t) !== undefined) sysctl[x.metric.name] = x.metric.value;
  const errors = s
    .all('flowpath_scrape_collector_success')
    .filter((x) => x.values.some(([, y]) => y === 0))
    .map((x) => `collector ${x.metric.collector} failed in some scrapes of the window`);
  return { t: t * 1000, wallMs: t * 1000, devices, qdiscs, cpus, ovs, tcpExt, sysctl, errors };
}

/**
 * Which devices the flow crosses, from the series: the device holding its address (flowpath_flow_info
 * {local_device}); behind an OVS internal port, the node's one physical NIC (the series do not say which
 * bridge port is the uplink; with several physical NICs it stays unknown).
 */
export function pathFrom(snap: NodeSnapshot, localDevice: string | undefined, notes: string[], instance: string): PathDevices {
  const ip = localDevice || undefined;
  const d = snap.devices.find((x) => x.name === ip);
  const viaOvs = !!(d?.ovsInternal || (snap.ovs && snap.ovs.ports.some((p) => p.internal && p.name === ip)));
  let nic = ip;
  if (viaOvs) {
    const phys = snap.devices.filter((x) => x.kind === 'physical');
    nic = phys.length === 1 ? phys[0].name : undefined;
    if (!nic) notes.push(`${instance}: the address is on OVS internal port ${ip}; ${phys.length ? `${phys.length} physical NICs` : 'no physical NIC'} in the series, so the uplink (NIC hop) is unknown`);
  }
  return { ipDevice: ip, nicDevice: nic, viaOvs };
}

// ---------------------------------------------------------------------------------------------------
// The command

export interface PromDiagnoseDeps {
  api?: PromApi;
  now?: () => number;
}

function flowLabels(selector: string, ref: { instance: string; key: FlowKey }): string {
  return `${selector}, ${matchers({
    instance: ref.instance,
    local_ip: ref.key.localIp,
    local_port: String(ref.key.localPort),
    peer_ip: ref.key.peerIp,
    peer_port: String(ref.key.peerPort),
  })}`;
}

const keyOf = (l: Labels): FlowKey => ({ localIp: l.local_ip, localPort: Number(l.local_port), peerIp: l.peer_ip, peerPort: Number(l.peer_port) });
const sameKey = (a: FlowKey, b: FlowKey) => a.localIp === b.localIp && a.localPort === b.localPort && a.peerIp === b.peerIp && a.peerPort === b.peerPort;
const reversed = (k: FlowKey): FlowKey => ({ localIp: k.peerIp, localPort: k.peerPort, peerIp: k.localIp, peerPort: k.localPort });

export async function runPrometheusDiagnose(config: Config, io: CliIO, opts: { flow: string; json: boolean; all: boolean }, deps: PromDiagnoseDeps = {}): Promise<number> {
  const base = config.get(prometheusFlag).trim();
  try {
    new URL(base);
  } catch {
    throw new UsageError(`--prometheus: not a URL: "${base}"`);
  }
  const now = deps.now ?? (() => Date.now() / 1000);
  const at = parseAt(config.get(atFlag), now());
  const window = config.get(promWindowFlag);
  const sel = config.get(promSelectorFlag).trim();
  const api = deps.api ?? httpPromApi(base);
  const w = `${Math.round(window)}s`;
  const from = at - window;
  const notes: string[] = [];

  // Every exported flow of the window, and how many bytes each sent in it.
  const infos = await api.matrix(`flowpath_flow_info{${sel}}[${w}]`, at);
  const acked = await api.matrix(`flowpath_flow_acked_bytes_total{${sel}}[${w}]`, at);
  const refs: Array<FlowRef & { sent: number }> = infos.map((i) => {
    const key = keyOf(i.metric);
    const a = acked.find((x) => x.metric.instance === i.metric.instance && sameKey(keyOf(x.metric), key));
    return { instance: i.metric.instance, key, labels: i.metric, sent: increase(a) ?? 0 };
  });
  const exact = parseFlowId(opts.flow);
  let match: (r: FlowRef) => boolean = () => true;
  if (exact) match = (r) => sameKey(r.key, exact) || sameKey(r.key, reversed(exact));
  else if (opts.flow.trim()) {
    let m: (k: FlowKey) => boolean;
    try {
      m = keyMatcher(opts.flow);
    } catch (e) {
      throw new UsageError(`--flow: ${(e as Error).message}`);
    }
    match = (r) => m(r.key) || m(reversed(r.key));
  }
  const candidates = refs.filter(match).sort((a, b) => b.sent - a.sent);
  if (candidates.length === 0) {
    io.stderr(`flowpath diagnose: no flow${opts.flow ? ` matching "${opts.flow}"` : ''} in ${base} between ${new Date(from * 1000).toISOString()} and ${new Date(at * 1000).toISOString()} (flowpath_flow_info{${sel}})\n`);
    return 1;
  }
  // The sending end is the one that got the most bytes acknowledged; the receiver has the reversed 4-tuple.
  const sender = candidates[0];
  const receiver = refs.find((r) => sameKey(r.key, reversed(sender.key)) && !(r.instance === sender.instance && sameKey(r.key, sender.key)));
  if (!receiver) notes.push(`the receiver's end (${flowId(reversed(sender.key))}) is not in the series: its hops have no data (does Prometheus scrape flowpath on ${sender.key.peerIp}?)`);

  let names = new Map<string, string>();
  try {
    names = tcpExtMetricNames(await api.help());
  } catch (e) {
    notes.push(`no metric metadata (${(e as Error).message}): the TCP receive-drop counters are not used`);
  }
  const side = async (ref: FlowRef): Promise<SideEvidence> => {
    const flowRows = await api.matrix(`{__name__=~"flowpath_flow_.+", ${flowLabels(sel, ref)}}[${w}]`, at);
    const nodeRows = await api.matrix(
      `{__name__=~"flowpath_(nic|qdisc|softnet|softirqs|cpu|rps|ovs|netstat_tcpext|sysctl|scrape_collector_success)_?.*", ${sel}, instance="${esc(ref.instance)}"}[${w}]`,
      at,
    );
    const flow = flowSummaryFrom(flowRows, ref, from, at, notes);
    const times = nodeRows.flatMap((r) => r.values.map((x) => x[0]));
    if (times.length < 2) {
      notes.push(`${ref.instance}: no node series in the window`);
      return { node: ref.instance, flow };
    }
    const t0 = Math.min(...times);
    const t1 = Math.max(...times);
    const a = nodeSnapshotAt(nodeRows, t0, names);
    const b = nodeSnapshotAt(nodeRows, t1, names);
    const path = pathFrom(b, ref.labels.local_device, notes, ref.instance);
    return { node: ref.instance, flow, nodeSummary: summarizeNode(a, b, path) };
  };
  const tx = await side(sender);
  const rx = receiver ? await side(receiver) : undefined;
  const senderIsSender = !tx.flow || tx.flow.role === 'sender';
  const input = senderIsSender ? { sender: tx, receiver: rx } : { sender: rx, receiver: tx };
  if (!tx.flow) {
    io.stderr(`flowpath diagnose: no samples of ${flowId(sender.key)} on ${sender.instance} in the window\n`);
    return 1;
  }
  notes.push(
    'from Prometheus: medians and notsent are over scrape samples, not the 20 Hz sampler; ovs-vswitchd CPU is not exported (the OVS CPU rules have no data); drops and queues are node-wide counters over the window',
  );
  const v = diagnose(input);
  if (opts.json) {
    io.stdout(
      JSON.stringify(
        {
          id: flowId(sender.key),
          prometheus: base,
          at: new Date(at * 1000).toISOString(),
          window_seconds: window,
          sender_instance: input.sender?.node ?? null,
          receiver_instance: input.receiver?.node ?? null,
          notes,
          ...verdictJson(v),
          sender: v.sender ?? null,
          receiver: v.receiver ?? null,
        },
        null,
        2,
      ) + '\n',
    );
    return 0;
  }
  io.stdout(`${fmtKey(v.flow)} from ${base}, ${w} ending ${new Date(at * 1000).toISOString()}\n\n`);
  io.stdout(
    renderVerdict(v, {
      all: opts.all,
      senderLabel: input.sender?.node ? `${input.sender.node}, from Prometheus` : 'not in Prometheus',
      receiverLabel: input.receiver?.node ? `${input.receiver.node}, from Prometheus` : 'not in Prometheus',
    }),
  );
  io.stdout(`\nNot reconstructed from the series:\n${notes.map((n) => `  - ${n}`).join('\n')}\n`);
  return 0;
}
