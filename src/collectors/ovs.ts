// The ovs collector: Open vSwitch datapath, port, upcall, PMD and coverage statistics.
//
// OVS is read in the background every --ovs.refresh-interval (src/sources/ovs/refresher.ts); a scrape
// only renders the latest snapshot, so a slow or hung ovs-vswitchd never delays /metrics. Without OVS the
// collector reports flowpath_ovs_up 0 and succeeds (it does not fail the scrape), logging the state change
// once.
//
// Two sources, marked by the `source` label on datapath and port families:
//   source="unixctl"  ovs-vswitchd's control socket (dpctl/show -s, ...): every datapath type.
//   source="genl"     the kernel datapath over generic netlink (only when openvswitch.ko is loaded).
// When both describe the same kernel datapath (system@<name>), only the genl series are exported for it
// (no double counting; genl is exact and needs no privilege). Port counters differ slightly in meaning:
// genl = the kernel vport's counters; unixctl = OVS's netdev counters for the port. upcall/show, PMD and
// coverage metrics only exist via unixctl.

import { intFlag } from '../core/flags';
import { Emitter, MetricTable, counter, gauge } from '../core/metrics';
import { CollectorDef } from './registry';
import type { OvsSnapshot } from '../sources/ovs/snapshot';
import { OvsRefresher } from '../sources/ovs/refresher';
import { publishInternalPorts } from '../sources/ovs/internal-ports';
import { isInternalType } from '../sources/ovs/parse-dpif';
import type { DatapathCounters, OvsPortStats } from '../sources/ovs/parse-dpctl';
import type { PmdThreadStats } from '../sources/ovs/parse-pmd';
import type { UpcallDatapath } from '../sources/ovs/parse-upcall';
import { OVS_READER_FLAGS, ovsRefreshFlag, ovsTimeoutFlag } from '../sources/ovs/flags';
import { forgetSharedOvsReader, sharedOvsReader } from '../sources/ovs/shared';

export const ovsMaxPortsFlag = intFlag('ovs.max-ports', 64, 'Most ports per datapath with per-port series (busiest first); the rest are counted in flowpath_ovs_ports_left_out.', 0);

// --- status ---------------------------------------------------------------------------------------
const up = gauge('flowpath_ovs_up', 'Whether ovs-vswitchd answered on its control socket (unixctl) in the latest background read; 0 also before the first read.');
const info = gauge('flowpath_ovs_info', 'Open vSwitch version reported by ovs-vswitchd (unixctl "version"); value 1.', ['version', 'dpdk_version']);
const snapTs = gauge('flowpath_ovs_snapshot_timestamp_seconds', 'When the OVS snapshot served by this scrape was taken (Unix time).', [], 'seconds');
const snapAge = gauge('flowpath_ovs_snapshot_age_seconds', 'Age of the OVS snapshot served by this scrape.', [], 'seconds');
const lastOk = gauge('flowpath_ovs_last_success_timestamp_seconds', 'Last time ovs-vswitchd answered over unixctl (Unix time).', [], 'seconds');
const refreshDur = gauge('flowpath_ovs_refresh_duration_seconds', 'How long the latest background read of OVS took.', [], 'seconds');
const connects = counter('flowpath_ovs_unixctl_connects_total', 'Connections opened to ovs-vswitchd\'s control socket (one more after each ovs-vswitchd restart).');
const cmdOk = gauge('flowpath_ovs_unixctl_command_success', 'Whether a unixctl command succeeded and its reply was understood in the latest read.', ['command']);
const genlUp = gauge('flowpath_ovs_genl_up', 'Whether the kernel datapath could be read over generic netlink; only present when openvswitch.ko is loaded.');

// --- datapath -------------------------------------------------------------------------------------
type DpRow = DatapathCounters & { masksCacheSize?: number };
const packetsOf = (r: DpRow) => (r.hit !== undefined && r.missed !== undefined ? r.hit + r.missed : undefined);
const dpTable = new MetricTable<DpRow>(['datapath', 'source'], [
  ['flowpath_ovs_datapath_lookups_hit_total', 'counter', 'Packets that matched a datapath flow (dpctl "lookups: hit"; kernel n_hit).', (r) => r.hit],
  ['flowpath_ovs_datapath_lookups_missed_total', 'counter', 'Packets that matched no datapath flow and went to ovs-vswitchd as an upcall (n_missed).', (r) => r.missed],
  ['flowpath_ovs_datapath_lookups_lost_total', 'counter', 'Missed packets that could not be sent to userspace and were dropped (n_lost).', (r) => r.lost],
  ['flowpath_ovs_datapath_flows', 'gauge', 'Flows in the datapath now (userspace: summed over PMD threads, a flow on two PMDs counts twice).', (r) => r.flows],
  ['flowpath_ovs_datapath_masks_hit_total', 'counter', 'Masks probed over all lookups (kernel datapath n_mask_hit).', (r) => r.maskHit],
  ['flowpath_ovs_datapath_masks', 'gauge', 'Masks (megaflow subtables) in the kernel datapath now (n_masks).', (r) => r.masks],
  [
    'flowpath_ovs_datapath_masks_hit_per_packet',
    'gauge',
    'Masks probed per packet since the datapath started, n_mask_hit / (n_hit + n_missed) as dpctl prints it; use rate() of the counters for a recent value.',
    (r) => {
      const p = packetsOf(r);
      return r.maskHit === undefined || p === undefined ? undefined : p === 0 ? 0 : r.maskHit / p;
    },
  ],
  ['flowpath_ovs_datapath_cache_hit_total', 'counter', 'Lookups answered by the per-CPU masks cache (kernel >= 5.9, n_cache_hit).', (r) => r.cacheHit],
  [
    'flowpath_ovs_datapath_cache_hit_ratio',
    'gauge',
    'Masks-cache hits per packet since the datapath started, n_cache_hit / (n_hit + n_missed) (dpctl "hit-rate" / 100).',
    (r) => {
      const p = packetsOf(r);
      return r.cacheHit === undefined || p === undefined ? undefined : p === 0 ? 0 : r.cacheHit / p;
    },
    'ratio',
  ],
  ['flowpath_ovs_datapath_masks_cache_size', 'gauge', 'Entries of the kernel datapath\'s per-CPU masks cache.', (r) => r.masksCacheSize],
]);

// --- ports ----------------------------------------------------------------------------------------
const portTable = new MetricTable<OvsPortStats>(['datapath', 'port', 'type', 'internal', 'source'], [
  ['flowpath_ovs_port_rx_packets_total', 'counter', 'Packets received on the datapath port.', (r) => r.rxPackets],
  ['flowpath_ovs_port_tx_packets_total', 'counter', 'Packets sent on the datapath port.', (r) => r.txPackets],
  ['flowpath_ovs_port_rx_bytes_total', 'counter', 'Bytes received on the datapath port.', (r) => r.rxBytes],
  ['flowpath_ovs_port_tx_bytes_total', 'counter', 'Bytes sent on the datapath port.', (r) => r.txBytes],
  ['flowpath_ovs_port_rx_errors_total', 'counter', 'Receive errors on the datapath port.', (r) => r.rxErrors],
  ['flowpath_ovs_port_tx_errors_total', 'counter', 'Transmit errors on the datapath port.', (r) => r.txErrors],
  ['flowpath_ovs_port_rx_dropped_total', 'counter', 'Received packets dropped on the datapath port.', (r) => r.rxDropped],
  ['flowpath_ovs_port_tx_dropped_total', 'counter', 'Packets dropped instead of sent on the datapath port (userspace: includes floods to a down bridge port).', (r) => r.txDropped],
  ['flowpath_ovs_port_upcall_packets_total', 'counter', 'Packets from this port sent to userspace as upcalls (kernel >= 6.2 upcall stats).', (r) => r.upcallPackets],
  ['flowpath_ovs_port_upcall_errors_total', 'counter', 'Upcalls from this port that failed (kernel >= 6.2 upcall stats).', (r) => r.upcallErrors],
]);
const portReadable = gauge(
  'flowpath_ovs_port_stats_readable',
  'Whether OVS could read this port\'s counters (0: e.g. an internal port moved to another network namespace; read it there).',
  ['datapath', 'port', 'type', 'internal', 'source'],
);
const portsCount = gauge('flowpath_ovs_ports', 'Ports in the datapath.', ['datapath', 'source']);
const portsLeftOut = gauge('flowpath_ovs_ports_left_out', 'Ports of the datapath without per-port series because of --ovs.max-ports.', ['datapath', 'source']);

// --- upcall/show ----------------------------------------------------------------------------------
const upcallTable = new MetricTable<UpcallDatapath>(['datapath'], [
  ['flowpath_ovs_upcall_flows', 'gauge', 'Datapath flows ovs-vswitchd tracks now (upcall/show "current").', (r) => r.flowsCurrent],
  ['flowpath_ovs_upcall_flows_average', 'gauge', 'Average datapath flows (upcall/show "avg").', (r) => r.flowsAverage],
  ['flowpath_ovs_upcall_flows_max', 'gauge', 'Most datapath flows seen (upcall/show "max").', (r) => r.flowsMax],
  ['flowpath_ovs_upcall_flow_limit', 'gauge', 'Current datapath flow limit; flows near it cause evictions and more upcalls (upcall/show "limit").', (r) => r.flowLimit],
  ['flowpath_ovs_upcall_offloaded_flows', 'gauge', 'Flows offloaded to hardware (upcall/show, only with offload enabled).', (r) => r.offloadedFlows],
  ['flowpath_ovs_upcall_dump_duration_seconds', 'gauge', 'Duration of the latest revalidator flow dump; long dumps make OVS lower the flow limit.', (r) => (r.dumpDurationMs === undefined ? undefined : r.dumpDurationMs / 1000)],
  ['flowpath_ovs_upcall_ufid_enabled', 'gauge', 'Whether flows are identified by UFID (upcall/show "ufid enabled").', (r) => r.ufidEnabled],
]);

// --- PMD / main thread (userspace datapath) --------------------------------------------------------
const pmdTable = new MetricTable<PmdThreadStats>(['datapath', 'thread', 'numa', 'cpu'], [
  ['flowpath_ovs_pmd_packets_received_total', 'counter', 'Packets received by this userspace-datapath thread (pmd-stats-show "packets received").', (r) => r.packetsReceived],
  ['flowpath_ovs_pmd_recirculations_total', 'counter', 'Packets recirculated (extra datapath passes).', (r) => r.recirculations],
  ['flowpath_ovs_pmd_phwol_hits_total', 'counter', 'Lookups answered by partial hardware offload.', (r) => r.phwolHits],
  ['flowpath_ovs_pmd_mfex_opt_hits_total', 'counter', 'Packets parsed by the optimized miniflow extractor.', (r) => r.mfexOptHits],
  ['flowpath_ovs_pmd_simple_match_hits_total', 'counter', 'Lookups answered by the simple-match cache.', (r) => r.simpleMatchHits],
  ['flowpath_ovs_pmd_emc_hits_total', 'counter', 'Lookups answered by the exact-match cache (EMC).', (r) => r.emcHits],
  ['flowpath_ovs_pmd_smc_hits_total', 'counter', 'Lookups answered by the signature-match cache (SMC).', (r) => r.smcHits],
  ['flowpath_ovs_pmd_megaflow_hits_total', 'counter', 'Lookups answered by the megaflow classifier (dpcls).', (r) => r.megaflowHits],
  ['flowpath_ovs_pmd_upcalls_total', 'counter', 'Misses that became a successful upcall to ovs-vswitchd ("miss with success upcall").', (r) => r.upcalls],
  ['flowpath_ovs_pmd_lost_upcalls_total', 'counter', 'Misses whose upcall failed; the packet was dropped ("miss with failed upcall").', (r) => r.lostUpcalls],
  ['flowpath_ovs_pmd_tx_packets_total', 'counter', 'Packets sent by this thread (pmd-perf-show format only).', (r) => r.txPackets],
  ['flowpath_ovs_pmd_tx_batches_total', 'counter', 'Output batches sent by this thread (pmd-perf-show format only).', (r) => r.txBatches],
  ['flowpath_ovs_pmd_idle_cycles_total', 'counter', 'TSC cycles of idle polling iterations (PMD threads).', (r) => r.idleCycles],
  ['flowpath_ovs_pmd_processing_cycles_total', 'counter', 'TSC cycles of iterations that processed packets (PMD threads).', (r) => r.processingCycles],
  ['flowpath_ovs_pmd_cycles_total', 'counter', 'TSC cycles used by the thread, idle + processing (PMD threads).', (r) => r.usedCycles],
  ['flowpath_ovs_pmd_subtable_lookups_per_megaflow_hit', 'gauge', 'Average dpcls subtables searched per megaflow hit since the stats were cleared.', (r) => r.subtableLookupsPerMegaflowHit],
  ['flowpath_ovs_pmd_packets_per_output_batch', 'gauge', 'Average packets per output batch since the stats were cleared.', (r) => r.packetsPerOutputBatch],
]);

const coverage = counter(
  'flowpath_ovs_coverage_events_total',
  'OVS coverage counter total for a curated set of slow-path and drop events (coverage/show; 0 for counters this build defines that never fired).',
  ['event'],
);
const internalInfo = gauge(
  'flowpath_ovs_internal_port_info',
  'An OVS internal port (a netdev of the host, e.g. the bridge port) and its bridge; value 1. bridge is empty when only the kernel datapath was readable.',
  ['device', 'bridge', 'datapath'],
);

export const OVS_METRICS = [
  up,
  info,
  snapTs,
  snapAge,
  lastOk,
  refreshDur,
  connects,
  cmdOk,
  genlUp,
  ...dpTable.descs,
  ...portTable.descs,
  portReadable,
  portsCount,
  portsLeftOut,
  ...upcallTable.descs,
  ...pmdTable.descs,
  coverage,
  internalInfo,
];

interface PortRow {
  name: string;
  portNo: number;
  type: string;
  internal: boolean;
  stats?: OvsPortStats;
}

function emitPorts(out: Emitter, datapath: string, source: string, ports: PortRow[], maxPorts: number): void {
  out.add(portsCount, [datapath, source], ports.length);
  const busy = (p: PortRow) => (p.stats ? (p.stats.rxPackets ?? 0) + (p.stats.txPackets ?? 0) : -1);
  const kept = [...ports].sort((a, b) => busy(b) - busy(a) || a.portNo - b.portNo).slice(0, maxPorts);
  out.add(portsLeftOut, [datapath, source], ports.length - kept.length);
  kept.sort((a, b) => a.portNo - b.portNo);
  for (const p of kept) {
    const labels = [datapath, p.name, p.type, String(p.internal), source];
    out.add(portReadable, labels, p.stats !== undefined);
    if (p.stats) portTable.emit(out, p.stats, labels);
  }
}

/** Render a snapshot. Pure apart from `now` (scrape time, ms). */
export function emitOvsSnapshot(out: Emitter, snap: OvsSnapshot | null, now: number, maxPorts: number): void {
  if (!snap) {
    out.add(up, [], 0);
    return;
  }
  const u = snap.unixctl;
  out.add(up, [], u.up);
  out.add(snapTs, [], snap.takenAt / 1000);
  out.add(snapAge, [], Math.max(0, (now - snap.takenAt) / 1000));
  if (snap.lastUnixctlSuccessAt !== undefined) out.add(lastOk, [], snap.lastUnixctlSuccessAt / 1000);
  out.add(refreshDur, [], snap.durationSeconds);
  out.add(connects, [], u.connects);
  if (snap.kernel.moduleLoaded) out.add(genlUp, [], snap.kernel.ok === true);

  // Kernel datapaths over genetlink first: they take precedence for the same datapath.
  const genlDps = new Set<string>();
  for (const dp of snap.kernel.ok ? (snap.kernel.state?.datapaths ?? []) : []) {
    const name = `system@${dp.name}`;
    genlDps.add(name);
    dpTable.emit(out, dp, [name, 'genl']);
    emitPorts(
      out,
      name,
      'genl',
      dp.vports.map((v) => ({
        name: v.name ?? `port${v.portNo ?? '?'}`,
        portNo: v.portNo ?? -1,
        type: v.type,
        internal: v.type === 'internal',
        stats: v.stats ? { ...v.stats, upcallPackets: v.upcallSuccess, upcallErrors: v.upcallFail } : undefined,
      })),
      maxPorts,
    );
  }

  if (u.up) {
    if (u.version) out.add(info, [u.version.version, u.version.dpdk ?? ''], 1);
    for (const c of u.commands) out.add(cmdOk, [c.command], c.ok);
    for (const dp of u.datapaths ?? []) {
      if (genlDps.has(dp.name)) continue;
      dpTable.emit(out, { ...dp, masksCacheSize: dp.caches['masks-cache'] }, [dp.name, 'unixctl']);
      emitPorts(
        out,
        dp.name,
        'unixctl',
        dp.ports.map((p) => ({ name: p.name, portNo: p.portNo, type: p.type, internal: isInternalType(p.type), stats: p.stats })),
        maxPorts,
      );
    }
    for (const d of u.upcall ?? []) upcallTable.emit(out, d, [d.datapath]);
    for (const t of u.pmd ?? []) {
      pmdTable.emit(out, t, [u.pmdDatapath ?? '', t.thread, t.numaId === undefined ? '' : String(t.numaId), t.coreId === undefined ? '' : String(t.coreId)]);
    }
    for (const [event, total] of u.coverage ?? []) out.add(coverage, [event], total);
  }
  for (const p of snap.internalPorts) out.add(internalInfo, [p.device, p.bridge, p.datapath], 1);
}

export const ovsCollector: CollectorDef = {
  name: 'ovs',
  description:
    'Open vSwitch: datapath lookups/flows/masks, per-port counters, upcall flow limit, userspace PMD and coverage counters (unixctl, and genetlink for the kernel datapath), read in the background.',
  defaultEnabled: true,
  metrics: OVS_METRICS,
  flags: [...OVS_READER_FLAGS, ovsMaxPortsFlag],
  create({ config, log }) {
    const timeoutMs = config.get(ovsTimeoutFlag) * 1000;
    const maxPorts = config.get(ovsMaxPortsFlag);
    const reader = sharedOvsReader(config, log);
    const refresher = new OvsRefresher(reader, config.get(ovsRefreshFlag) * 1000, publishInternalPorts);
    return {
      start: () => refresher.start(),
      async collect(out, ctx) {
        // Works without start() too (one-shot use): the first scrape starts the loop.
        refresher.start();
        const snap = refresher.latest() ?? (await refresher.waitFirst(timeoutMs, ctx.signal));
        emitOvsSnapshot(out, snap, Date.now(), maxPorts);
      },
      close: () => {
        forgetSharedOvsReader(config);
        refresher.close();
      },
    };
  },
};
