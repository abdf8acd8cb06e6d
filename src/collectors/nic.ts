// nic: the NIC side of "why can't this single TCP flow reach line rate?" (docs/kernel-sources.md §0, send step 6 and
// receive step 1): link speed and state, every netdev counter, ring sizes, channels, interrupt
// coalescing, offloads (TSO/GSO/GRO/LRO/...) and GSO/TSO size caps, pause frames (peer backpressure), the standard IEEE/RMON stats, per-queue
// statistics and the driver's own drop/stall counters.
//
// Sources and failure policy, per device:
//   rtnetlink link dump (RTM_GETLINK)   always: state, MTU, queue length, carrier counts, GSO/TSO/GRO
//                                        caps and every rtnl_link_stats64 counter; one dump per scrape
//                                        shared with the qdisc and irq collectors (src/sources/devices.ts).
//                                        A malformed reply fails the whole collector.
//   sysfs /sys/class/net/DEV            always: speed, duplex, per-TX-queue timeouts and BQL (and, when
//                                        --path.sysfs is not this namespace's /sys, everything the dump
//                                        would give); a file that does not parse fails the whole collector
//   ethtool genl RINGS/CHANNELS/COALESCE/FEATURES/PAUSE/STATS, netdev genl QSTATS, `ethtool -S`
//                                        optional per device: EOPNOTSUPP is remembered (the device is not
//                                        asked again; no series), ENODEV = the device just vanished; any
//                                        other error (EPERM, timeout, malformed reply) drops only that
//                                        part for that device, logs once, and sets
//                                        flowpath_nic_source_success{device,source} to 0. Never a guessed
//                                        number.
// Rings, channels, coalescing and features are configuration: the live client reuses a successful reply for
// --collector.nic.config-ttl (10 s), like `ethtool -S` for --collector.nic.driver-stats-ttl.

import { durationFlag, boolFlag, regexFlag, stringFlag } from '../core/flags';
import { Emitter, MetricTable, counter, gauge } from '../core/metrics';
import { Logger, StateLogger } from '../core/log';
import { sysfsFlag } from '../core/paths';
import { DEVICE_FLAGS, NetDevice, deviceExcludeFlag, deviceIncludeFlag, selectDevices } from '../sources/devices';
import { DriverStatsResult, EthtoolStatsCli, splitQueue } from '../sources/ethtool-cli';
import { EthtoolChannels, EthtoolClient, EthtoolCoalesce, EthtoolFeatures, EthtoolPause, EthtoolRings, EthtoolStatGroup, StringSet } from '../sources/netlink/ethtool';
import { NetdevGenlClient, QSTATS_COUNTERS, QueueStats } from '../sources/netlink/netdev-genl';
import { NetlinkError } from '../sources/netlink/socket';
import { LINK_STATS64_FIELDS, LinkLookup, LinkRecord } from '../sources/netlink/rtnl-link';
import { NetdevAttrs, NetdevQueues, TxQueueAttrs, readDeviceAttrs, readNetdevQueues } from '../sources/sysfs/netdev';
import { Collector, CollectorContext, CollectorDef } from './registry';

// ---------------------------------------------------------------------------------------------------
// Flags

export const nicFeaturesFlag = regexFlag(
  'collector.nic.features',
  'tx-scatter-gather|tx-checksum-ipv4|tx-checksum-ipv6|tx-checksum-ip-generic|rx-checksum|tx-tcp-segmentation|tx-tcp6-segmentation|' +
    'tx-generic-segmentation|tx-udp-segmentation|rx-gro|rx-lro|rx-gro-hw|rx-gro-list|rx-udp-gro-forwarding|rx-hashing|rx-ntuple-filter',
  'Regexp of offload feature names (kernel names as in `ethtool -k` sub-lines, e.g. tx-tcp-segmentation = TSO, ' +
    'tx-generic-segmentation = GSO, rx-gro = GRO, rx-lro = LRO) exported per device.',
);
export const nicQueueStatsFlag = regexFlag(
  'collector.nic.queue-stats',
  'rx-packets|rx-bytes|tx-packets|tx-bytes|rx-alloc-fail|rx-hw-drops|rx-hw-drop-overruns|rx-hw-drop-ratelimits|' +
    'tx-hw-drops|tx-hw-drop-errors|tx-hw-drop-ratelimits|tx-stop|tx-wake',
  'Regexp of per-queue counters (netdev genl qstats names, e.g. rx-packets, tx-stop, rx-csum-bad, tx-hw-gso-packets) exported with a queue label; empty = none.',
);
export const nicDriverStatsFlag = boolFlag(
  'collector.nic.driver-stats',
  true,
  'Export driver-private counters (`ethtool -S`) whose names match --collector.nic.driver-stats-include. Runs the ethtool binary (one process at a time, cached).',
);
export const nicDriverStatsIncludeFlag = regexFlag(
  'collector.nic.driver-stats-include',
  '.*(drop|discard|miss|err|timeout|stop|wake|busy|restart|pause|xoff|no_buf|nobuf|out_of_buffer|no_dma|fifo|over|fail|exceeded).*',
  'Regexp of `ethtool -S` counter names to export (the raw names, before the queue number is moved into the queue label). The default keeps the ones that explain drops and stalls (incl. mlx5 rx_out_of_buffer, ixgbe rx_no_dma_resources, ENA *_allowance_exceeded, xoff pause counters).',
);
export const nicEthtoolPathFlag = stringFlag('collector.nic.ethtool-path', 'ethtool', 'ethtool binary used for driver-private counters (`ethtool -S`).', '<path>');
export const nicDriverStatsTtlFlag = durationFlag(
  'collector.nic.driver-stats-ttl',
  10,
  'How long `ethtool -S` results are reused before ethtool is run again for a device.',
);
export const nicConfigTtlFlag = durationFlag(
  'collector.nic.config-ttl',
  10,
  'How long a device\'s ethtool configuration (rings, channels, interrupt coalescing, offload features over netlink) is reused before it is asked again; failures are not kept. Pause, standard and per-queue statistics are read every scrape. 0 = every scrape.',
);
export const nicDriverStatsTimeoutFlag = durationFlag('collector.nic.driver-stats-timeout', 2, 'Timeout of one `ethtool -S` run.', 0.05);

// ---------------------------------------------------------------------------------------------------
// Metric tables

const D = ['device'];

const info = gauge('flowpath_nic_info', 'Selected network device; value 1. class: how it was selected (physical, bond, team, vlan, ovs-internal, ...); kind: rtnetlink link kind; driver: bus driver of physical devices.', [
  'device',
  'class',
  'kind',
  'driver',
]);
const operstate = gauge('flowpath_nic_operstate_info', 'RFC 2863 operational state from /sys/class/net/DEV/operstate; value 1.', ['device', 'operstate']);

const attrs = new MetricTable<NetdevAttrs>(D, [
  ['flowpath_nic_up', 'gauge', 'operstate is "up" (1) or not (0).', (a) => (a.operstate === undefined ? undefined : a.operstate === 'up')],
  ['flowpath_nic_carrier', 'gauge', 'Physical link carrier (sysfs carrier): 1 up, 0 down; absent while the device is administratively down.', (a) => a.carrier],
  ['flowpath_nic_speed_bytes_per_second', 'gauge', 'Link speed (sysfs speed, Mb/s × 125000); absent when the driver reports none (-1, virtual NICs) or the link is down.', (a) => (a.speedMbps === undefined ? undefined : a.speedMbps * 125000)],
  ['flowpath_nic_duplex_full', 'gauge', 'Duplex: 1 full, 0 half; absent when unknown.', (a) => (a.duplex === undefined ? undefined : a.duplex === 'full')],
  ['flowpath_nic_mtu_bytes', 'gauge', 'MTU (sysfs mtu).', (a) => a.mtu],
  ['flowpath_nic_tx_queue_len_packets', 'gauge', 'tx_queue_len: default packet limit of the qdisc attached to the device.', (a) => a.txQueueLen],
  ['flowpath_nic_carrier_changes_total', 'counter', 'Carrier up/down transitions (sysfs carrier_changes).', (a) => a.carrierChanges],
  ['flowpath_nic_carrier_up_changes_total', 'counter', 'Carrier down→up transitions (sysfs carrier_up_count).', (a) => a.carrierUpCount],
  ['flowpath_nic_carrier_down_changes_total', 'counter', 'Carrier up→down transitions (sysfs carrier_down_count).', (a) => a.carrierDownCount],
  ...LINK_STATS64_FIELDS.map(
    (s) =>
      [
        `flowpath_nic_${s}_total`,
        'counter',
        s === 'rx_otherhost_dropped'
          ? 'Kernel netdev counter rx_otherhost_dropped (struct rtnl_link_stats64, rtnetlink IFLA_STATS64; kernel 5.19+, no sysfs file): packets dropped because they were addressed to another host.'
          : `Kernel netdev counter ${s} (struct rtnl_link_stats64: rtnetlink IFLA_STATS64, the same as sysfs statistics/${s}).`,
        (a: NetdevAttrs) => a.stats[s],
        s.endsWith('_bytes') ? 'bytes' : s.endsWith('_packets') ? 'packets' : undefined,
      ] as [string, 'counter', string, (a: NetdevAttrs) => number | undefined, string | undefined],
  ),
]);

// Segmentation size caps (rtnetlink only): a stack device whose GSO cap is below the NIC's TSO cap (an
// OVS internal port, a tunnel) makes TCP build smaller super-packets, which costs CPU per byte.
const segCaps = new MetricTable<LinkRecord>(D, [
  ['flowpath_nic_gso_max_size_bytes', 'gauge', 'Largest GSO packet the stack builds for this device (IFLA_GSO_MAX_SIZE, ip -d link gso_max_size).', (l) => l.gsoMaxSize],
  ['flowpath_nic_gso_max_segments', 'gauge', 'Most segments in one GSO packet for this device (IFLA_GSO_MAX_SEGS).', (l) => l.gsoMaxSegs],
  ['flowpath_nic_tso_max_size_bytes', 'gauge', 'Largest TSO packet the device accepts (IFLA_TSO_MAX_SIZE, kernel 5.19+).', (l) => l.tsoMaxSize],
  ['flowpath_nic_tso_max_segments', 'gauge', 'Most segments the device accepts in one TSO packet (IFLA_TSO_MAX_SEGS, kernel 5.19+).', (l) => l.tsoMaxSegs],
  ['flowpath_nic_gro_max_size_bytes', 'gauge', 'Largest packet GRO builds on this device (IFLA_GRO_MAX_SIZE, kernel 5.19+).', (l) => l.groMaxSize],
]);

const txQueue = new MetricTable<TxQueueAttrs>(['device', 'queue'], [
  ['flowpath_nic_tx_queue_timeouts_total', 'counter', 'TX watchdog timeouts on this queue (queues/tx-N/tx_timeout).', (q) => q.txTimeout],
  ['flowpath_nic_tx_queue_bql_limit_bytes', 'gauge', 'Byte queue limit of this TX queue now (byte_queue_limits/limit).', (q) => q.bqlLimit],
  ['flowpath_nic_tx_queue_bql_inflight_bytes', 'gauge', 'Bytes handed to the NIC and not yet completed (byte_queue_limits/inflight); near the limit = the TX ring is the bottleneck.', (q) => q.bqlInflight],
]);

const rings = new MetricTable<EthtoolRings>(D, [
  ['flowpath_nic_rx_ring_entries', 'gauge', 'RX ring size now (ethtool -g "Current hardware settings" RX).', (r) => r.rx],
  ['flowpath_nic_rx_ring_max_entries', 'gauge', 'Largest RX ring the driver allows (ethtool -g "Pre-set maximums" RX).', (r) => r.rxMax],
  ['flowpath_nic_tx_ring_entries', 'gauge', 'TX ring size now (ethtool -g TX).', (r) => r.tx],
  ['flowpath_nic_tx_ring_max_entries', 'gauge', 'Largest TX ring the driver allows.', (r) => r.txMax],
  ['flowpath_nic_rx_buf_len_bytes', 'gauge', 'RX buffer length (ethtool -g RX Buf Len), where the driver reports it.', (r) => r.rxBufLen],
]);

// Interrupt coalescing: how long / how many packets the NIC waits before interrupting. On the receive
// side of a single flow this trades interrupt rate (softirq CPU) against latency and ACK timing.
const coalesce = new MetricTable<EthtoolCoalesce>(D, [
  ['flowpath_nic_rx_coalesce_seconds', 'gauge', 'Time the NIC waits after a received packet before raising the RX interrupt (ethtool -c rx-usecs).', (c) => (c.rxUsecs === undefined ? undefined : c.rxUsecs / 1e6)],
  ['flowpath_nic_rx_coalesce_frames', 'gauge', 'Packets received before the RX interrupt is raised (ethtool -c rx-frames).', (c) => c.rxFrames],
  ['flowpath_nic_tx_coalesce_seconds', 'gauge', 'Time the NIC waits after a transmit completion before raising the TX interrupt (ethtool -c tx-usecs).', (c) => (c.txUsecs === undefined ? undefined : c.txUsecs / 1e6)],
  ['flowpath_nic_tx_coalesce_frames', 'gauge', 'Transmit completions before the TX interrupt is raised (ethtool -c tx-frames).', (c) => c.txFrames],
  ['flowpath_nic_rx_coalesce_adaptive', 'gauge', 'Adaptive RX coalescing (the driver tunes rx-usecs/rx-frames to the packet rate) on (1) or off (0).', (c) => c.adaptiveRx],
  ['flowpath_nic_tx_coalesce_adaptive', 'gauge', 'Adaptive TX coalescing on (1) or off (0).', (c) => c.adaptiveTx],
]);

const channelsNow = gauge('flowpath_nic_channels', 'Channels (queues) in use by type: rx, tx, other, combined (ethtool -l current).', ['device', 'type']);
const channelsMax = gauge('flowpath_nic_channels_max', 'Most channels of each type the driver allows (ethtool -l maximums).', ['device', 'type']);

const featActive = gauge('flowpath_nic_offload_active', 'Offload feature is on now (1) or off (0), by kernel feature name (ethtool -k).', ['device', 'feature']);
const featWanted = gauge('flowpath_nic_offload_requested', 'Offload feature is requested (wanted) on; differs from active when a dependency keeps it off ("[requested on]" in ethtool -k).', ['device', 'feature']);
const featFixed = gauge('flowpath_nic_offload_fixed', 'Offload feature cannot be changed on this device (1, "[fixed]" in ethtool -k) or can (0).', ['device', 'feature']);

const pause = new MetricTable<EthtoolPause>(D, [
  ['flowpath_nic_pause_autoneg', 'gauge', 'Pause (802.3x flow control) autonegotiation on (ethtool -a).', (p) => p.autoneg],
  ['flowpath_nic_pause_rx_enabled', 'gauge', 'The NIC honours received pause frames (stops sending when the peer asks).', (p) => p.rx],
  ['flowpath_nic_pause_tx_enabled', 'gauge', 'The NIC sends pause frames when its RX side is full.', (p) => p.tx],
  ['flowpath_nic_pause_rx_frames_total', 'counter', 'Pause frames received: the peer/switch asked us to stop sending (TX stall not caused here).', (p) => p.rxFrames],
  ['flowpath_nic_pause_tx_frames_total', 'counter', 'Pause frames sent: our RX side could not keep up.', (p) => p.txFrames],
]);

const stdStat = counter('flowpath_nic_std_stat_total', 'Standard IEEE 802.3 / RMON / PHY counters the driver reports (ethtool -S --groups; netlink STATS_GET). group: eth-phy, eth-mac, eth-ctrl, rmon, phydev; stat: the kernel name (e.g. FrameCheckSequenceErrors).', [
  'device',
  'group',
  'stat',
]);
const rmonHist = counter('flowpath_nic_rmon_frames_by_size_total', 'RMON frame size histogram (etherStatsPkts<low>to<high>Octets); size is "low-high" in bytes.', ['device', 'direction', 'size']);

const queueStatDescs = new Map(
  QSTATS_COUNTERS.map(([, name]) => {
    const id = name.replace(/-/g, '_');
    const unit = id.endsWith('_bytes') ? 'bytes' : id.endsWith('_packets') ? 'packets' : undefined;
    return [name, counter(`flowpath_nic_queue_${id}_total`, `Per-queue counter "${name}" from the netdev genl family (QSTATS_GET, scope queue); queue = queue index.`, ['device', 'queue'], unit)] as const;
  }),
);

const driverStat = counter(
  'flowpath_nic_driver_stat_total',
  'Driver-private counter from `ethtool -S`, filtered by --collector.nic.driver-stats-include. A queue/channel number in the name is moved to the queue label (rx_queue_3_drops → stat="rx_queue_drops", queue="3"); queue="" for device-wide counters.',
  ['device', 'queue', 'stat'],
);

export const NIC_SOURCES = ['rings', 'channels', 'coalesce', 'features', 'pause', 'stats', 'qstats', 'driver_stats'] as const;
export type NicSource = (typeof NIC_SOURCES)[number];
const sourceOk = gauge(
  'flowpath_nic_source_success',
  'Whether an optional per-device source answered in this scrape (1) or failed (0: EPERM, timeout, malformed reply; see the log). Absent when the device does not support it (EOPNOTSUPP).',
  ['device', 'source'],
);

export const NIC_METRICS = [
  info,
  operstate,
  ...attrs.descs,
  ...segCaps.descs,
  ...txQueue.descs,
  ...rings.descs,
  ...coalesce.descs,
  channelsNow,
  channelsMax,
  featActive,
  featWanted,
  featFixed,
  ...pause.descs,
  stdStat,
  rmonHist,
  ...queueStatDescs.values(),
  driverStat,
  sourceOk,
];

// ---------------------------------------------------------------------------------------------------
// Emitters (pure: record → samples)

export function emitChannels(out: Emitter, dev: string, c: EthtoolChannels): void {
  out.add(channelsNow, [dev, 'rx'], c.rx);
  out.add(channelsNow, [dev, 'tx'], c.tx);
  out.add(channelsNow, [dev, 'other'], c.other);
  out.add(channelsNow, [dev, 'combined'], c.combined);
  out.add(channelsMax, [dev, 'rx'], c.rxMax);
  out.add(channelsMax, [dev, 'tx'], c.txMax);
  out.add(channelsMax, [dev, 'other'], c.otherMax);
  out.add(channelsMax, [dev, 'combined'], c.combinedMax);
}

export function emitFeatures(out: Emitter, dev: string, f: EthtoolFeatures, include: RegExp | null): void {
  for (const [name, s] of [...f].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    if (include && !include.test(name)) continue;
    out.add(featActive, [dev, name], s.active);
    out.add(featWanted, [dev, name], s.wanted);
    out.add(featFixed, [dev, name], s.fixed);
  }
}

export function emitStdStats(out: Emitter, dev: string, groups: ReadonlyArray<EthtoolStatGroup & { group: string; names: StringSet }>): void {
  for (const g of groups) {
    for (const [idx, v] of [...g.stats].sort((a, b) => a[0] - b[0])) {
      out.add(stdStat, [dev, g.group, g.names.get(idx) ?? `stat${idx}`], v);
    }
    for (const [dir, hist] of [['rx', g.histRx], ['tx', g.histTx]] as const) {
      for (const b of hist) out.add(rmonHist, [dev, dir, `${b.low}-${b.high}`], b.value);
    }
  }
}

export function emitQueueStats(out: Emitter, dev: string, qs: readonly QueueStats[], include: RegExp | null): void {
  if (!include) return;
  const sorted = [...qs].sort((a, b) => (a.queueType === b.queueType ? (a.queueId ?? -1) - (b.queueId ?? -1) : a.queueType === 'rx' ? -1 : 1));
  for (const q of sorted) {
    if (q.queueId === undefined) continue; // device totals: the sysfs counters cover them
    for (const [name, v] of q.counters) {
      if (!include.test(name)) continue;
      const desc = queueStatDescs.get(name);
      if (desc) out.add(desc, [dev, String(q.queueId)], v);
    }
  }
}

export function emitDriverStats(out: Emitter, dev: string, stats: ReadonlyArray<{ name: string; value: number }>, include: RegExp | null): void {
  if (!include) return;
  const seen = new Set<string>();
  for (const s of stats) {
    if (!include.test(s.name)) continue;
    const { stat, queue } = splitQueue(s.name);
    const key = `${queue}\0${stat}`;
    // Two raw names that normalise to the same (queue, stat) would be a duplicate series: keep the first
    // and drop the rest rather than emit an invalid exposition.
    if (seen.has(key)) continue;
    seen.add(key);
    out.add(driverStat, [dev, queue, stat], s.value);
  }
}

// ---------------------------------------------------------------------------------------------------
// Collector

/** The optional per-device sources; injectable so tests can replay fixtures and simulate errors. */
export interface NicDeps {
  ethtool: Pick<EthtoolClient, 'rings' | 'channels' | 'coalesce' | 'features' | 'pause' | 'stats'> & { close?(): void };
  netdev: Pick<NetdevGenlClient, 'qstats'> & { close?(): void };
  driverStats: Pick<EthtoolStatsCli, 'get' | 'retain'>;
  /** Where devices and their link records come from (default: see SelectOptions.links). */
  links?: LinkLookup | null;
}

function errCode(e: unknown): string | undefined {
  return e instanceof NetlinkError ? e.code : undefined;
}

export function createNicCollector(ctx: CollectorContext, deps?: Partial<NicDeps>): Collector {
  const { config, log } = ctx;
  const sysfs = config.get(sysfsFlag);
  const include = config.get(deviceIncludeFlag);
  const exclude = config.get(deviceExcludeFlag);
  const features = config.get(nicFeaturesFlag);
  const queueStats = config.get(nicQueueStatsFlag);
  const driverOn = config.get(nicDriverStatsFlag);
  const driverInclude = config.get(nicDriverStatsIncludeFlag);

  let ethtool = deps?.ethtool;
  let netdev = deps?.netdev;
  const driverStats =
    deps?.driverStats ??
    new EthtoolStatsCli({
      binary: config.get(nicEthtoolPathFlag),
      ttlMs: config.get(nicDriverStatsTtlFlag) * 1000,
      timeoutMs: config.get(nicDriverStatsTimeoutFlag) * 1000,
    });
  const states = new StateLogger(log);
  /** `${ifindex}/${source}` of device sources that answered EOPNOTSUPP. */
  const unsupported = new Set<string>();
  /** Whole families missing (ENOENT on lookup: kernel without ethtool netlink / netdev qstats). */
  const familyMissing = new Set<string>();

  const configTtlMs = config.get(nicConfigTtlFlag) * 1000;
  const getEthtool = () => (ethtool ??= new EthtoolClient(undefined, { configTtlMs }));
  const getNetdev = () => (netdev ??= new NetdevGenlClient());

  async function optional<T>(out: Emitter, d: NetDevice, source: NicSource, family: string | null, run: () => Promise<T>, use: (v: T) => void, lg: Logger): Promise<void> {
    const key = `${d.ifindex}/${source}`;
    if (unsupported.has(key) || (family && familyMissing.has(family))) return;
    let v: T;
    try {
      v = await run();
    } catch (e) {
      const code = errCode(e);
      if (code === 'EOPNOTSUPP') {
        unsupported.add(key);
        lg.debug('not supported by the device; not asked again', { device: d.name, source });
        return;
      }
      if (code === 'ENODEV') return; // vanished since selection
      if (family && code === 'ENOENT' && /family lookup/.test((e as Error).message)) {
        familyMissing.add(family);
        lg.info(`generic netlink family "${family}" not present in this kernel; ${source} not collected`);
        return;
      }
      states.report(`${d.name}/${source}`, e, { device: d.name, source });
      out.add(sourceOk, [d.name, source], 0);
      return;
    }
    states.report(`${d.name}/${source}`, null, { device: d.name, source });
    use(v);
    out.add(sourceOk, [d.name, source], 1);
  }

  async function collectDevice(out: Emitter, d: NetDevice): Promise<void> {
    const [a, queues] = await Promise.all([
      // counters and state from the scrape's link dump (sysfs statistics/ files without one)
      readDeviceAttrs(sysfs, d),
      readNetdevQueues(sysfs, d.name, { rps: false, xps: false, txDetails: true }),
    ]);
    if (!a) return; // device vanished
    out.add(info, [d.name, d.class, d.kind ?? '', d.driver ?? ''], 1);
    if (a.operstate !== undefined) out.add(operstate, [d.name, a.operstate], 1);
    attrs.emit(out, a, [d.name]);
    if (d.link?.stats) segCaps.emit(out, d.link, [d.name]);
    for (const q of (queues as NetdevQueues | null)?.tx ?? []) txQueue.emit(out, q, [d.name, String(q.queue)]);

    // Each optional part renders into its own emitter, merged in a fixed order after all have finished,
    // so the exposition does not depend on which reply came first.
    const parts = NIC_SOURCES.map(() => new Emitter());
    const p = (s: NicSource) => parts[NIC_SOURCES.indexOf(s)];
    await Promise.all([
      optional(p('rings'), d, 'rings', 'ethtool', () => getEthtool().rings(d.ifindex, d.name), (r) => rings.emit(p('rings'), r, [d.name]), log),
      optional(p('channels'), d, 'channels', 'ethtool', () => getEthtool().channels(d.ifindex, d.name), (c) => emitChannels(p('channels'), d.name, c), log),
      optional(p('coalesce'), d, 'coalesce', 'ethtool', () => getEthtool().coalesce(d.ifindex, d.name), (c) => coalesce.emit(p('coalesce'), c, [d.name]), log),
      features
        ? optional(p('features'), d, 'features', 'ethtool', () => getEthtool().features(d.ifindex, d.name), (f) => emitFeatures(p('features'), d.name, f, features), log)
        : undefined,
      optional(p('pause'), d, 'pause', 'ethtool', () => getEthtool().pause(d.ifindex, d.name), (x) => pause.emit(p('pause'), x, [d.name]), log),
      optional(p('stats'), d, 'stats', 'ethtool', () => getEthtool().stats(d.ifindex, d.name), (g) => emitStdStats(p('stats'), d.name, g), log),
      queueStats
        ? optional(p('qstats'), d, 'qstats', 'netdev', () => getNetdev().qstats(d.ifindex, d.name), (q) => emitQueueStats(p('qstats'), d.name, q, queueStats), log)
        : undefined,
      driverOn && driverInclude ? collectDriverStats(p('driver_stats'), d) : undefined,
    ]);
    for (const part of parts) out.absorb(part);
  }

  async function collectDriverStats(out: Emitter, d: NetDevice): Promise<void> {
    const key = `${d.ifindex}/driver_stats`;
    if (unsupported.has(key)) return;
    let r: DriverStatsResult;
    try {
      r = await driverStats.get(d.name);
    } catch (e) {
      states.report(`${d.name}/driver_stats`, e, { device: d.name, source: 'driver_stats' });
      out.add(sourceOk, [d.name, 'driver_stats'], 0);
      return;
    }
    if (r.kind === 'unsupported') {
      unsupported.add(key);
      log.debug('ethtool -S not supported by the device; not asked again', { device: d.name, reason: r.reason });
      return;
    }
    if (r.kind === 'gone') return;
    states.report(`${d.name}/driver_stats`, null, { device: d.name, source: 'driver_stats' });
    emitDriverStats(out, d.name, r.stats, driverInclude);
    out.add(sourceOk, [d.name, 'driver_stats'], 1);
  }

  return {
    async collect(out) {
      const devices = await selectDevices(sysfs, include, exclude, deps?.links === undefined ? { log } : { links: deps.links, log });
      // Forget what we learnt about devices that are gone (an ifindex is not reused while it exists).
      const live = new Set(devices.map((d) => String(d.ifindex)));
      for (const k of [...unsupported]) if (!live.has(k.slice(0, k.indexOf('/')))) unsupported.delete(k);
      driverStats.retain(new Set(devices.map((d) => d.name)));
      const outs = devices.map(() => new Emitter());
      await Promise.all(devices.map((d, i) => collectDevice(outs[i], d)));
      for (const o of outs) out.absorb(o);
    },
    close() {
      ethtool?.close?.();
      netdev?.close?.();
    },
  };
}

export const nicCollector: CollectorDef = {
  name: 'nic',
  description:
    'Per network device (selected by --collector.nic.device-include/-exclude): state and counters (rtnetlink, sysfs), ethtool rings, channels, interrupt coalescing, offloads, pause and standard stats over netlink, per-queue stats (netdev genl) and drop/stall driver counters (ethtool -S).',
  defaultEnabled: true,
  metrics: NIC_METRICS,
  flags: [
    ...DEVICE_FLAGS,
    nicFeaturesFlag,
    nicQueueStatsFlag,
    nicDriverStatsFlag,
    nicDriverStatsIncludeFlag,
    nicEthtoolPathFlag,
    nicDriverStatsTtlFlag,
    nicDriverStatsTimeoutFlag,
    nicConfigTtlFlag,
  ],
  create: (ctx) => createNicCollector(ctx),
};
