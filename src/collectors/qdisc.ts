// qdisc: every qdisc of the selected devices, children included (fq under mq, leaves under htb), from an
// rtnetlink RTM_GETQDISC dump (docs/kernel-sources.md §6). node_exporter reports root qdiscs only and no
// fq xstats; fq `throttled` is the one signal that pacing is engaged.
//
// Every family carries device, kind, handle and parent ("root" or "maj:min" as tc prints it; ingress
// and clsact hang off "ffff:fff1"), so a root mq (whose counters are the sum of its children) and its
// children are told apart by `parent`: sum over parent!="root" or take parent="root", never both. Devices with `noqueue` (loopback,
// veth, bridges, OVS internal ports) are reported with kind="noqueue" and counters that stay 0: packets
// never wait there.

import * as fs from 'fs';
import * as path from 'path';
import { Emitter, MetricTable } from '../core/metrics';
import { sysfsFlag } from '../core/paths';
import { Config } from '../core/flags';
import type { Logger } from '../core/log';
import { DEVICE_FLAGS, deviceExcludeFlag, deviceIncludeFlag, selectDevices } from '../sources/devices';
import { NETLINK_ROUTE, NetlinkSocket } from '../sources/netlink/socket';
import {
  FqCodelOptions,
  FqCodelStats,
  FqOptions,
  FqStats,
  QdiscDump,
  QdiscRecord,
  consistentQdiscDump,
  dumpQdiscs,
  formatHandle,
  formatParent,
} from '../sources/netlink/qdisc';
import { CollectorDef } from './registry';

const LABELS = ['device', 'kind', 'handle', 'parent'] as const;

const us = (v: number | undefined) => (v === undefined ? undefined : v / 1e6);
const ns = (v: number | undefined) => (v === undefined ? undefined : v / 1e9);
const U32_MAX = 0xffffffff;

const base = new MetricTable<QdiscRecord>(LABELS, [
  ['flowpath_qdisc_info', 'gauge', 'One series per qdisc (value 1); kind="noqueue" marks a device whose packets never queue in a qdisc.', () => 1],
  ['flowpath_qdisc_bytes_total', 'counter', 'Bytes sent by the qdisc (gnet_stats_basic.bytes, tc "Sent N bytes"). A root mq reports the sum of its children.', (r) => r.bytes],
  ['flowpath_qdisc_packets_total', 'counter', 'Packets sent by the qdisc (TCA_STATS_PKT64 when present, else the u32 gnet_stats_basic.packets).', (r) => r.packets],
  ['flowpath_qdisc_drops_total', 'counter', 'Packets dropped by the qdisc (gnet_stats_queue.drops, u32).', (r) => r.drops],
  ['flowpath_qdisc_requeues_total', 'counter', 'Packets handed back by the driver because the TX queue was stopped (gnet_stats_queue.requeues, u32).', (r) => r.requeues],
  ['flowpath_qdisc_overlimits_total', 'counter', 'Qdisc-specific overlimit events, e.g. shaper throttling in tbf/htb (gnet_stats_queue.overlimits, u32). fq reports pacing in flowpath_qdisc_fq_throttled_total instead.', (r) => r.overlimits],
  ['flowpath_qdisc_qlen_packets', 'gauge', 'Packets queued in the qdisc now (gnet_stats_queue.qlen).', (r) => r.qlen],
  ['flowpath_qdisc_backlog_bytes', 'gauge', 'Bytes queued in the qdisc now (gnet_stats_queue.backlog).', (r) => r.backlog],
  ['flowpath_qdisc_hw_offload', 'gauge', '1 if the qdisc is offloaded to the NIC (TCA_HW_OFFLOAD).', (r) => r.hwOffload],
]);

const fqStats = new MetricTable<FqStats>(LABELS, [
  ['flowpath_qdisc_fq_throttled_total', 'counter', 'Times fq throttled a flow until its pacing departure time (tc_fq_qd_stats.throttled); rising = pacing engaged.', (s) => s.throttled],
  ['flowpath_qdisc_fq_throttled_flows', 'gauge', 'Flows waiting for their departure time now (throttled_flows).', (s) => s.throttledFlows],
  ['flowpath_qdisc_fq_flows', 'gauge', 'Flows known to fq now (flows).', (s) => s.flows],
  ['flowpath_qdisc_fq_inactive_flows', 'gauge', 'Flows with no packet queued now (inactive_flows).', (s) => s.inactiveFlows],
  ['flowpath_qdisc_fq_gc_flows_total', 'counter', 'Flows garbage-collected (gc_flows).', (s) => s.gcFlows],
  ['flowpath_qdisc_fq_flows_plimit_total', 'counter', 'Packets dropped because their flow hit flow_limit (flows_plimit).', (s) => s.flowsPlimit],
  ['flowpath_qdisc_fq_pkts_too_long_total', 'counter', 'Packets larger than the quantum (pkts_too_long).', (s) => s.pktsTooLong],
  ['flowpath_qdisc_fq_allocation_errors_total', 'counter', 'Flow allocation failures (allocation_errors).', (s) => s.allocationErrors],
  ['flowpath_qdisc_fq_next_packet_delay_seconds', 'gauge', 'Time until the next throttled flow is due (time_next_delayed_flow); present only while it is positive, as tc prints it.', (s) => (s.timeNextDelayedFlowNs > 0 ? s.timeNextDelayedFlowNs / 1e9 : undefined)],
  ['flowpath_qdisc_fq_unthrottle_latency_seconds', 'gauge', 'EWMA of how late the timer released throttled flows (unthrottle_latency_ns; 0 before Linux 4.9).', (s) => s.unthrottleLatencyNs / 1e9],
  ['flowpath_qdisc_fq_ce_mark_total', 'counter', 'Packets CE-marked above ce_threshold (ce_mark, Linux 4.2+).', (s) => s.ceMark],
  ['flowpath_qdisc_fq_horizon_drops_total', 'counter', 'Packets dropped because their departure time was beyond the horizon (horizon_drops, 5.8+).', (s) => s.horizonDrops],
  ['flowpath_qdisc_fq_horizon_caps_total', 'counter', 'Packets whose departure time was capped to the horizon (horizon_caps, 5.8+).', (s) => s.horizonCaps],
  ['flowpath_qdisc_fq_fastpath_packets_total', 'counter', 'Packets that bypassed the flow scheduler (fastpath_packets, 6.7+).', (s) => s.fastpathPackets],
]);

interface Band {
  drops: number;
  packets: number;
}
const fqBands = new MetricTable<Band>([...LABELS, 'band'], [
  ['flowpath_qdisc_fq_band_drops_total', 'counter', 'Packets dropped per priority band (band_drops, 6.7+).', (b) => b.drops],
  ['flowpath_qdisc_fq_band_packets', 'gauge', 'Packets queued per priority band now (band_pkt_count, 6.7+).', (b) => b.packets],
]);

const fqOptions = new MetricTable<FqOptions>(LABELS, [
  ['flowpath_qdisc_fq_flow_max_rate_bytes_per_second', 'gauge', 'Per-flow rate cap of fq (TCA_FQ_FLOW_MAX_RATE, maxrate); +Inf when unlimited.', (o) => (o.flowMaxRate === undefined ? undefined : o.flowMaxRate === U32_MAX ? Infinity : o.flowMaxRate)],
  ['flowpath_qdisc_fq_rate_enable', 'gauge', '1 if fq paces flows (TCA_FQ_RATE_ENABLE; 0 = "nopacing").', (o) => o.rateEnable],
  ['flowpath_qdisc_fq_plimit_packets', 'gauge', 'fq queue limit (TCA_FQ_PLIMIT, limit).', (o) => o.plimit],
  ['flowpath_qdisc_fq_flow_plimit_packets', 'gauge', 'Per-flow queue limit (TCA_FQ_FLOW_PLIMIT, flow_limit).', (o) => o.flowPlimit],
  ['flowpath_qdisc_fq_quantum_bytes', 'gauge', 'Credit per round (TCA_FQ_QUANTUM).', (o) => o.quantum],
  ['flowpath_qdisc_fq_initial_quantum_bytes', 'gauge', 'Credit of a new flow (TCA_FQ_INITIAL_QUANTUM).', (o) => o.initialQuantum],
  ['flowpath_qdisc_fq_low_rate_threshold_bytes_per_second', 'gauge', 'Flows paced below this rate are scheduled one packet per round (TCA_FQ_LOW_RATE_THRESHOLD).', (o) => o.lowRateThreshold],
  ['flowpath_qdisc_fq_horizon_seconds', 'gauge', 'Maximum departure time into the future (TCA_FQ_HORIZON).', (o) => us(o.horizonUs)],
  ['flowpath_qdisc_fq_horizon_drop', 'gauge', '1 if packets beyond the horizon are dropped, 0 if capped (TCA_FQ_HORIZON_DROP).', (o) => o.horizonDrop],
  ['flowpath_qdisc_fq_timer_slack_seconds', 'gauge', 'Timer slack when releasing throttled flows (TCA_FQ_TIMER_SLACK).', (o) => ns(o.timerSlackNs)],
]);

const fqCodelStats = new MetricTable<FqCodelStats>(LABELS, [
  ['flowpath_qdisc_fq_codel_drop_overlimit_total', 'counter', 'Packets dropped because the queue limit was reached (drop_overlimit).', (s) => s.dropOverlimit],
  ['flowpath_qdisc_fq_codel_drop_overmemory_total', 'counter', 'Packets dropped because memory_limit was reached (drop_overmemory, 4.7+).', (s) => s.dropOvermemory],
  ['flowpath_qdisc_fq_codel_ecn_mark_total', 'counter', 'Packets ECN-marked instead of dropped by CoDel (ecn_mark).', (s) => s.ecnMark],
  ['flowpath_qdisc_fq_codel_ce_mark_total', 'counter', 'Packets CE-marked above ce_threshold (ce_mark, 4.2+).', (s) => s.ceMark],
  ['flowpath_qdisc_fq_codel_new_flow_count_total', 'counter', 'Flows that entered the new-flows list (new_flow_count).', (s) => s.newFlowCount],
  ['flowpath_qdisc_fq_codel_new_flows', 'gauge', 'Flows on the new-flows list now (new_flows_len).', (s) => s.newFlowsLen],
  ['flowpath_qdisc_fq_codel_old_flows', 'gauge', 'Flows on the old-flows list now (old_flows_len).', (s) => s.oldFlowsLen],
  ['flowpath_qdisc_fq_codel_maxpacket_bytes', 'gauge', 'Largest packet seen (maxpacket).', (s) => s.maxpacket],
  ['flowpath_qdisc_fq_codel_memory_usage_bytes', 'gauge', 'Memory used by queued packets now (memory_usage, 4.7+).', (s) => s.memoryUsage],
]);

const fqCodelOptions = new MetricTable<FqCodelOptions>(LABELS, [
  ['flowpath_qdisc_fq_codel_limit_packets', 'gauge', 'Queue limit (TCA_FQ_CODEL_LIMIT).', (o) => o.limit],
  ['flowpath_qdisc_fq_codel_memory_limit_bytes', 'gauge', 'Memory limit (TCA_FQ_CODEL_MEMORY_LIMIT).', (o) => o.memoryLimit],
  ['flowpath_qdisc_fq_codel_flows', 'gauge', 'Number of flow buckets (TCA_FQ_CODEL_FLOWS).', (o) => o.flows],
  ['flowpath_qdisc_fq_codel_quantum_bytes', 'gauge', 'Credit per round (TCA_FQ_CODEL_QUANTUM).', (o) => o.quantum],
  ['flowpath_qdisc_fq_codel_target_seconds', 'gauge', 'CoDel target delay (TCA_FQ_CODEL_TARGET).', (o) => us(o.targetUs)],
  ['flowpath_qdisc_fq_codel_interval_seconds', 'gauge', 'CoDel interval (TCA_FQ_CODEL_INTERVAL).', (o) => us(o.intervalUs)],
  ['flowpath_qdisc_fq_codel_ecn', 'gauge', '1 if CoDel marks ECN-capable packets instead of dropping (TCA_FQ_CODEL_ECN).', (o) => o.ecn],
]);

/** Render one dump: only qdiscs of devices in `names` (ifindex -> device name). Pure. */
export function emitQdiscs(out: Emitter, qdiscs: readonly QdiscRecord[], names: ReadonlyMap<number, string>): void {
  for (const q of qdiscs) {
    const dev = names.get(q.ifindex);
    if (dev === undefined) continue;
    const lv = [dev, q.kind, formatHandle(q.handle), formatParent(q.parent)];
    base.emit(out, q, lv);
    if (q.fq) {
      fqStats.emit(out, q.fq, lv);
      const { bandDrops, bandPktCount } = q.fq;
      if (bandDrops && bandPktCount) {
        for (let b = 0; b < 3; b++) fqBands.emit(out, { drops: bandDrops[b], packets: bandPktCount[b] }, [...lv, String(b)]);
      }
    }
    if (q.fqOptions) fqOptions.emit(out, q.fqOptions, lv);
    if (q.fqCodel) fqCodelStats.emit(out, q.fqCodel, lv);
    if (q.fqCodelOptions) fqCodelOptions.emit(out, q.fqCodelOptions, lv);
  }
}

/** Where the collector gets its data; the defaults ask the live kernel, tests inject fixtures. */
export interface QdiscSources {
  /** ifindex -> name of the devices to report; `ifindexes` are those the dump saw. */
  devices(config: Config, ifindexes: readonly number[]): Promise<ReadonlyMap<number, string>>;
  /** One RTM_GETQDISC dump. */
  dump(): Promise<QdiscDump>;
  close?(): void;
}

/**
 * ifindex -> name of the selected devices, reusing the last selection (sysfs reads per device, ~1 ms)
 * while neither the device names in SYSFS/class/net (a rename or a new device changes them; one
 * readdir) nor the ifindexes in the dump (a device re-created under the same name gets a new one) have
 * changed. The include/exclude regexes are fixed for the process and a device's class cannot change, so
 * the cached answer stays right.
 */
export function cachedDeviceNames(
  select: typeof selectDevices = selectDevices,
  log?: Logger,
): (config: Config, ifindexes: readonly number[]) => Promise<ReadonlyMap<number, string>> {
  let cached: { key: string; names: Map<number, string> } | null = null;
  return async (config, ifindexes) => {
    const sysfs = config.get(sysfsFlag);
    let listing: string[] = [];
    try {
      listing = fs.readdirSync(path.join(sysfs, 'class', 'net')).sort();
    } catch {
      cached = null; // select() reports the error
    }
    const key = `${listing.join('/')}|${[...ifindexes].sort((a, b) => a - b).join(',')}`;
    if (cached?.key === key) return cached.names;
    const devs = await select(sysfs, config.get(deviceIncludeFlag), config.get(deviceExcludeFlag), log ? { log } : {});
    const names = new Map(devs.map((d) => [d.ifindex, d.name]));
    cached = listing.length > 0 ? { key, names } : null;
    return names;
  };
}

function liveSources(log?: Logger): QdiscSources {
  let sock: NetlinkSocket | null = null;
  return {
    devices: cachedDeviceNames(selectDevices, log),
    dump() {
      sock ??= new NetlinkSocket(NETLINK_ROUTE);
      return dumpQdiscs(sock);
    },
    close() {
      sock?.close();
      sock = null;
    },
  };
}

export const QDISC_METRICS = [...base.descs, ...fqStats.descs, ...fqBands.descs, ...fqOptions.descs, ...fqCodelStats.descs, ...fqCodelOptions.descs];

export function makeQdiscCollector(sources: (log?: Logger) => QdiscSources = liveSources): CollectorDef {
  return {
    name: 'qdisc',
    description:
      'Every qdisc of the selected devices including children (fq under mq): counters, queue length, fq/fq_codel extended stats and fq options, from rtnetlink RTM_GETQDISC.',
    defaultEnabled: true,
    metrics: QDISC_METRICS,
    flags: [...DEVICE_FLAGS],
    create({ config, log }) {
      const src = sources(log);
      return {
        async collect(out: Emitter) {
          const dump = await consistentQdiscDump(() => src.dump());
          const names = await src.devices(config, [...new Set(dump.qdiscs.map((q) => q.ifindex))]);
          emitQdiscs(out, dump.qdiscs, names);
        },
        close() {
          src.close?.();
        },
      };
    },
  };
}

export const qdiscCollector = makeQdiscCollector();
