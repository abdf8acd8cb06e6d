// Recording rules: the ratios and rates that alerts and dashboards reuse, named level:metric:operations
// (https://prometheus.io/docs/practices/rules/). The level lists the labels the result keeps besides
// the group labels (job by default): `instance_peer_ip_service_port_role` is the flow identity of the
// fleet (it survives the ephemeral port changing between runs), `flow` is one connection (4-tuple).

import type { MixinConfig } from './config';

export interface RecordingRule {
  record: string;
  expr: string;
  labels?: Record<string, string>;
}

export interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface RuleGroup<R> {
  name: string;
  interval?: string;
  rules: R[];
}

/** Label lists used by the rules; every aggregation keeps the group labels. */
export function labelSets(c: MixinConfig) {
  const g = [...c.groupLabels, 'instance'];
  return {
    node: g,
    identity: [...g, 'peer_ip', 'service_port', 'role'],
    flow: [...g, 'local_ip', 'local_port', 'peer_ip', 'peer_port'],
    flowFull: [...g, 'local_ip', 'local_port', 'peer_ip', 'peer_port', 'role', 'service_port'],
    bucket: [...g, 'service_port', 'role'],
    cpu: [...g, 'cpu'],
    device: [...g, 'device'],
    datapath: [...g, 'datapath'],
  };
}

export const by = (ls: readonly string[]) => `by (${ls.join(', ')})`;
export const on = (ls: readonly string[]) => `on (${ls.join(', ')})`;

/** The names of the recording rules (their suffix follows the rate window). */
export function recordNames(c: MixinConfig) {
  const w = c.rateWindow;
  const id = 'instance_peer_ip_service_port_role';
  return {
    identityLimitedShare: `${id}:flowpath_flow_limited:ratio_rate${w}`,
    identityPacingShare: `${id}:flowpath_flow_pacing_limited:ratio_rate${w}`,
    nodeLimitedShare: `instance:flowpath_flow_limited:ratio_rate${w}`,
    flowAcked: `flow:flowpath_flow_acked_bytes:rate${w}`,
    flowLinkSpeed: 'flow:flowpath_flow_link_speed_bytes_per_second:max',
    identityAcked: `${id}:flowpath_flow_acked_bytes:rate${w}`,
    identityLinkUtilisation: `${id}:flowpath_flow_link_utilisation:ratio_rate${w}`,
    identityRetransmits: `${id}:flowpath_flow_retransmitted_packets:rate${w}`,
    identityRetransmitRatio: `${id}:flowpath_flow_retransmitted_packets:ratio_rate${w}`,
    identityLoss: `${id}:flowpath_flow_lost_segments:ratio_rate${w}`,
    identitySpurious: `${id}:flowpath_flow_spurious_retransmits:ratio_rate${w}`,
    identityNotsent: `${id}:flowpath_flow_notsent_bytes:avg${w}`,
    identityNotsentShare: `${id}:flowpath_flow_notsent:ratio_avg${w}`,
    bucketRwndShare: `instance_service_port_role:flowpath_flows_rwnd_limited:ratio_rate${w}`,
    bucketSndbufShare: `instance_service_port_role:flowpath_flows_sndbuf_limited:ratio_rate${w}`,
    bucketAcked: `instance_service_port_role:flowpath_flows_acked_bytes:rate${w}`,
    bucketRetransmits: `instance_service_port_role:flowpath_flows_retransmitted_packets:rate${w}`,
    nodeRwndShare: `instance:flowpath_flows_rwnd_limited:ratio_rate${w}`,
    nodeSndbufShare: `instance:flowpath_flows_sndbuf_limited:ratio_rate${w}`,
    cpuSoftirqShare: `instance_cpu:flowpath_cpu_softirq:ratio_rate${w}`,
    cpuSoftnetDrops: `instance_cpu:flowpath_softnet_dropped_packets:rate${w}`,
    cpuTimeSqueeze: `instance_cpu:flowpath_softnet_time_squeeze:rate${w}`,
    nodeSoftnetDrops: `instance:flowpath_softnet_dropped_packets:rate${w}`,
    nodeTimeSqueeze: `instance:flowpath_softnet_time_squeeze:rate${w}`,
    deviceRxPackets: `instance_device:flowpath_nic_rx_packets:rate${w}`,
    deviceRxDropped: `instance_device:flowpath_nic_rx_dropped:rate${w}`,
    deviceTxDropped: `instance_device:flowpath_nic_tx_dropped:rate${w}`,
    deviceRxErrors: `instance_device:flowpath_nic_rx_errors:rate${w}`,
    deviceTxErrors: `instance_device:flowpath_nic_tx_errors:rate${w}`,
    deviceRxOverflow: `instance_device:flowpath_nic_rx_overflow:rate${w}`,
    deviceRxOverflowRatio: `instance_device:flowpath_nic_rx_overflow:ratio_rate${w}`,
    deviceTxStops: `instance_device:flowpath_nic_queue_tx_stop:rate${w}`,
    deviceQdiscDrops: `instance_device:flowpath_qdisc_drops:rate${w}`,
    deviceQdiscOverlimits: `instance_device:flowpath_qdisc_overlimits:rate${w}`,
    deviceQdiscRequeues: `instance_device:flowpath_qdisc_requeues:rate${w}`,
    datapathHits: `instance_datapath:flowpath_ovs_datapath_lookups_hit:rate${w}`,
    datapathMisses: `instance_datapath:flowpath_ovs_datapath_lookups_missed:rate${w}`,
    datapathLost: `instance_datapath:flowpath_ovs_datapath_lookups_lost:rate${w}`,
    datapathMissRatio: `instance_datapath:flowpath_ovs_datapath_lookups_missed:ratio_rate${w}`,
    datapathMasksPerPacket: `instance_datapath:flowpath_ovs_datapath_masks_hit:ratio_rate${w}`,
    datapathFlowLimitShare: 'instance_datapath:flowpath_ovs_upcall_flows:ratio_limit',
  };
}

export type RecordNames = ReturnType<typeof recordNames>;

export function recordingGroups(c: MixinConfig): RuleGroup<RecordingRule>[] {
  const s = c.selector;
  const w = c.rateWindow;
  const L = labelSets(c);
  const n = recordNames(c);
  const withInterval = <R>(g: RuleGroup<R>): RuleGroup<R> => (c.interval ? { ...g, interval: c.interval } : g);
  const rate = (metric: string, extra = '') => `rate(${metric}{${s}${extra}}[${w}])`;
  const sumRate = (labels: readonly string[], metric: string, extra = '') => `sum ${by(labels)} (${rate(metric, extra)})`;
  const ratio = (num: string, den: string) => `${num}\n/\n${den}`;

  const flows: RecordingRule[] = [
    {
      // Share of wall time held by each reason, over the sampled flows of one flow identity. The reasons
      // of a flow sum to wall time, so dividing by the sum over reasons gives a share in 0..1 even when
      // several connections of the identity are sampled at once.
      record: n.identityLimitedShare,
      expr: ratio(
        sumRate([...L.identity, 'reason'], 'flowpath_flow_limited_seconds_total'),
        `ignoring (reason) group_left ()\n${sumRate(L.identity, 'flowpath_flow_limited_seconds_total')}`,
      ),
    },
    {
      // Pacing-limited share (the pacing timer held the next packet, with or without SO_MAX_PACING_RATE):
      // the seed case's "pacing-limited 85-90 % of the time". Recorded on its own for the day/week baselines.
      record: n.identityPacingShare,
      expr: `sum without (reason) (${n.identityLimitedShare}{reason=~"pacing|pacing_capped"})`,
    },
    {
      record: n.nodeLimitedShare,
      expr: ratio(
        sumRate([...L.node, 'reason'], 'flowpath_flow_limited_seconds_total'),
        `ignoring (reason) group_left ()\n${sumRate(L.node, 'flowpath_flow_limited_seconds_total')}`,
      ),
    },
    {
      // Goodput of each exported flow, with the device that holds its local address.
      record: n.flowAcked,
      expr: `${rate('flowpath_flow_acked_bytes_total')}\n* ${on(L.flow)} group_left (local_device)\nmax ${by([...L.flow, 'local_device'])} (flowpath_flow_info{${s}})`,
    },
    {
      // The link speed of a flow: the speed of the device holding its address when that is a real link
      // (physical, bond, team, vlan); otherwise (an OVS internal port, a bridge) the fastest such link
      // of the node, which is the uplink on the usual one-uplink host.
      record: n.flowLinkSpeed,
      expr: [
        `max ${by([...L.flowFull, 'local_device'])} (`,
        `  flowpath_flow_info{${s}}`,
        `  * ${on([...L.node, 'local_device'])} group_left ()`,
        `  label_replace(`,
        `    flowpath_nic_speed_bytes_per_second{${s}}`,
        `    * ${on(L.device)} group_left () flowpath_nic_info{${s}, class=~"${c.linkSpeedClasses}"},`,
        `    "local_device", "$1", "device", "(.*)"`,
        `  )`,
        `)`,
        `or`,
        `max ${by([...L.flowFull, 'local_device'])} (`,
        `  flowpath_flow_info{${s}}`,
        `  * ${on(L.node)} group_left ()`,
        `  max ${by(L.node)} (`,
        `    flowpath_nic_speed_bytes_per_second{${s}}`,
        `    * ${on(L.device)} group_left () flowpath_nic_info{${s}, class=~"${c.linkSpeedClasses}"}`,
        `  )`,
        `)`,
      ].join('\n'),
    },
    {
      record: n.identityAcked,
      expr: `sum ${by([...L.identity, 'local_device'])} (${n.flowAcked})`,
    },
    {
      // Goodput of the identity / the link speed of its device (absent when the speed is unknown).
      record: n.identityLinkUtilisation,
      expr: ratio(`${n.identityAcked}`, `${on([...L.identity, 'local_device'])}\nmax ${by([...L.identity, 'local_device'])} (${n.flowLinkSpeed})`),
    },
    {
      record: n.identityRetransmits,
      expr: sumRate(L.identity, 'flowpath_flow_retransmitted_packets_total'),
    },
    {
      // Retransmitted segments per data segment sent, spurious ones included.
      record: n.identityRetransmitRatio,
      expr: ratio(sumRate(L.identity, 'flowpath_flow_retransmitted_packets_total'), sumRate(L.identity, 'flowpath_flow_data_segments_out_total')),
    },
    {
      // Segments lost for real (retransmits minus those DSACKs showed to be spurious) per data segment.
      record: n.identityLoss,
      expr: ratio(
        `clamp_min(\n  ${sumRate(L.identity, 'flowpath_flow_retransmitted_packets_total')}\n  -\n  ${sumRate(L.identity, 'flowpath_flow_dsack_dups_total')},\n  0\n)`,
        sumRate(L.identity, 'flowpath_flow_data_segments_out_total'),
      ),
    },
    {
      record: n.identitySpurious,
      expr: ratio(sumRate(L.identity, 'flowpath_flow_dsack_dups_total'), sumRate(L.identity, 'flowpath_flow_retransmitted_packets_total')),
    },
    {
      record: n.identityNotsent,
      expr: `sum ${by(L.identity)} (avg_over_time(flowpath_flow_notsent_bytes{${s}}[${w}]))`,
    },
    {
      // Unsent bytes / bytes not yet acknowledged (sent or not), the seed case's "notsent 97 % of send_q".
      record: n.identityNotsentShare,
      expr: ratio(n.identityNotsent, `sum ${by(L.identity)} (avg_over_time(flowpath_flow_send_queue_bytes{${s}}[${w}]))`),
    },
    // Every flow of the node (not only the exported or sampled ones), by (role, service_port) bucket.
    {
      record: n.bucketRwndShare,
      expr: ratio(sumRate(L.bucket, 'flowpath_flows_rwnd_limited_seconds_total'), sumRate(L.bucket, 'flowpath_flows_busy_seconds_total')),
    },
    {
      record: n.bucketSndbufShare,
      expr: ratio(sumRate(L.bucket, 'flowpath_flows_sndbuf_limited_seconds_total'), sumRate(L.bucket, 'flowpath_flows_busy_seconds_total')),
    },
    { record: n.bucketAcked, expr: sumRate(L.bucket, 'flowpath_flows_acked_bytes_total') },
    { record: n.bucketRetransmits, expr: sumRate(L.bucket, 'flowpath_flows_retransmitted_packets_total') },
    {
      record: n.nodeRwndShare,
      expr: ratio(sumRate(L.node, 'flowpath_flows_rwnd_limited_seconds_total'), sumRate(L.node, 'flowpath_flows_busy_seconds_total')),
    },
    {
      record: n.nodeSndbufShare,
      expr: ratio(sumRate(L.node, 'flowpath_flows_sndbuf_limited_seconds_total'), sumRate(L.node, 'flowpath_flows_busy_seconds_total')),
    },
  ];

  const node: RecordingRule[] = [
    {
      record: n.cpuSoftirqShare,
      expr: ratio(sumRate(L.cpu, 'flowpath_cpu_seconds_total', ', mode="softirq"'), sumRate(L.cpu, 'flowpath_cpu_seconds_total')),
    },
    { record: n.cpuSoftnetDrops, expr: sumRate(L.cpu, 'flowpath_softnet_dropped_packets_total') },
    { record: n.cpuTimeSqueeze, expr: sumRate(L.cpu, 'flowpath_softnet_time_squeeze_total') },
    { record: n.nodeSoftnetDrops, expr: `sum ${by(L.node)} (${n.cpuSoftnetDrops})` },
    { record: n.nodeTimeSqueeze, expr: `sum ${by(L.node)} (${n.cpuTimeSqueeze})` },
    { record: n.deviceRxPackets, expr: sumRate(L.device, 'flowpath_nic_rx_packets_total') },
    { record: n.deviceRxDropped, expr: sumRate(L.device, 'flowpath_nic_rx_dropped_total') },
    { record: n.deviceTxDropped, expr: sumRate(L.device, 'flowpath_nic_tx_dropped_total') },
    { record: n.deviceRxErrors, expr: sumRate(L.device, 'flowpath_nic_rx_errors_total') },
    { record: n.deviceTxErrors, expr: sumRate(L.device, 'flowpath_nic_tx_errors_total') },
    {
      // The NIC had no RX descriptor (missed), or its FIFO / ring overflowed: rings too small or the
      // RX CPU too slow.
      record: n.deviceRxOverflow,
      expr: ['flowpath_nic_rx_missed_errors_total', 'flowpath_nic_rx_fifo_errors_total', 'flowpath_nic_rx_over_errors_total']
        .map((m) => sumRate(L.device, m))
        .join('\n+\n'),
    },
    {
      record: n.deviceRxOverflowRatio,
      expr: ratio(n.deviceRxOverflow, `(${n.deviceRxPackets} + ${n.deviceRxOverflow})`),
    },
    { record: n.deviceTxStops, expr: sumRate(L.device, 'flowpath_nic_queue_tx_stop_total') },
    // Root qdiscs only: a root mq or htb already counts its children.
    { record: n.deviceQdiscDrops, expr: sumRate(L.device, 'flowpath_qdisc_drops_total', ', parent="root"') },
    { record: n.deviceQdiscOverlimits, expr: sumRate(L.device, 'flowpath_qdisc_overlimits_total', ', parent="root"') },
    { record: n.deviceQdiscRequeues, expr: sumRate(L.device, 'flowpath_qdisc_requeues_total', ', parent="root"') },
  ];

  // A datapath may be read over two sources (unixctl and genetlink): the same counters twice, so max.
  const maxRate = (metric: string) => `max ${by(L.datapath)} (${rate(metric)})`;
  const ovs: RecordingRule[] = [
    { record: n.datapathHits, expr: maxRate('flowpath_ovs_datapath_lookups_hit_total') },
    { record: n.datapathMisses, expr: maxRate('flowpath_ovs_datapath_lookups_missed_total') },
    { record: n.datapathLost, expr: maxRate('flowpath_ovs_datapath_lookups_lost_total') },
    { record: n.datapathMissRatio, expr: ratio(n.datapathMisses, `(${n.datapathHits} + ${n.datapathMisses})`) },
    {
      // Masks (megaflow subtables) probed per packet: each is one hash lookup; many masks = slow path.
      record: n.datapathMasksPerPacket,
      expr: ratio(maxRate('flowpath_ovs_datapath_masks_hit_total'), `(${n.datapathHits} + ${n.datapathMisses})`),
    },
    {
      record: n.datapathFlowLimitShare,
      expr: ratio(`max ${by(L.datapath)} (flowpath_ovs_upcall_flows{${s}})`, `max ${by(L.datapath)} (flowpath_ovs_upcall_flow_limit{${s}})`),
    },
  ];

  return [
    withInterval({ name: 'flowpath-flows.rules', rules: flows }),
    withInterval({ name: 'flowpath-node.rules', rules: node }),
    withInterval({ name: 'flowpath-ovs.rules', rules: ovs }),
  ];
}
