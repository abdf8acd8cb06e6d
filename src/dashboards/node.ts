// Node path: everything on one node between the socket and the wire that can hold a flow: per-CPU
// softirq and softnet (one hot CPU stands out), NIC rings / channels / offloads / coalescing, NIC and
// qdisc drops, queue → IRQ → CPU with RPS/XPS, and Open vSwitch (hit / missed / lost, masks per packet,
// upcalls, flow limit).

import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as dash from '@grafana/grafana-foundation-sdk/dashboard';
import {
  mixinView, UID, alertAnnotation, anyIsBad, badAbove, barGauge, baseDashboard, datasourceVariable, queryVariable,
  pct, rec, tablePanel, timeSeries,
} from './common';
import type { MixinConfig } from '../mixin/config';

const N = 'instance="$node"';
const D = `${N}, device=~"$device"`;
const RI = '$__rate_interval';
const rate = (m: string, sel: string) => `rate(${m}{${sel}}[${RI}])`;

/** Per-CPU rate of one softirq vector. */
const vector = (v: string) => `sum by (cpu) (${rate('flowpath_softirqs_total', `${N}, vector="${v}"`)})`;

export function nodeDashboard(cfg: MixinConfig): dashboard.DashboardBuilder {
  const { RULES, RULE_WINDOW, T } = mixinView(cfg);
  return baseDashboard(
    UID.node,
    'flowpath / Node path',
    'One node, from the socket to the wire: per-CPU softirq and softnet, NIC rings, channels, offloads, coalescing and drops, qdiscs, queue → IRQ → CPU with RPS/XPS, and Open vSwitch.',
  )
    .withVariable(datasourceVariable())
    .withVariable(queryVariable('node', 'Node', 'label_values(flowpath_build_info, instance)'))
    .withVariable(queryVariable('device', 'Device', 'label_values(flowpath_nic_info{instance="$node"}, device)', { multi: true, all: true }))
    .annotation(alertAnnotation(`instance=~"$node"`))
    .withRow(new dash.RowBuilder('CPUs: softirq and softnet'))
    .withPanel(
      barGauge({
        title: 'Softirq CPU share per CPU',
        description: `Share of each CPU spent in softirq over the last ${RULE_WINDOW} (tick-sampled /proc/stat). One CPU at ${pct(T.softirqCpuShare)} or more (red; the softirq saturation alert's threshold) while the others idle = all packets of the flow are handled on one CPU (one RX queue, no RPS): the receive side caps the flow. Spread with more queues, RSS/RPS or IRQ affinity.`,
        unit: 'percentunit',
        queries: [{ expr: rec(RULES.cpuSoftirqShare, N), legend: 'cpu {{cpu}}' }],
        thresholds: badAbove(0.5, T.softirqCpuShare),
        min: 0,
        max: 1,
      }),
    )
    .withPanel(
      barGauge({
        title: 'ksoftirqd CPU per CPU',
        description: 'CPU time of the ksoftirqd/N thread: softirq work the kernel deferred because it ran too long in interrupt context. Above ~20 % of a CPU: that CPU is saturated with packet work and latency to the flow grows.',
        unit: 'percentunit',
        queries: [{ expr: `sum by (cpu) (${rate('flowpath_ksoftirqd_cpu_seconds_total', N)})`, legend: 'cpu {{cpu}}' }],
        thresholds: badAbove(0.2, 0.5),
        min: 0,
        max: 1,
      }),
    )
    .withPanel(
      timeSeries({
        title: 'NET_RX softirqs per CPU',
        description: 'NET_RX softirq runs per second per CPU (/proc/softirqs). The CPU with the receiving flow\'s RX queue leads; if one CPU carries all of it and its softirq share above is high, receive processing is the bottleneck.',
        unit: 'short',
        queries: [{ expr: vector('NET_RX'), legend: 'cpu {{cpu}}' }],
      }),
    )
    .withPanel(
      timeSeries({
        title: 'NET_TX softirqs per CPU',
        description: 'NET_TX softirq runs per second per CPU: TX completions and qdisc runs deferred to softirq. A high rate on the sender\'s CPU together with qdisc requeues points at a stopped TX queue.',
        unit: 'short',
        queries: [{ expr: vector('NET_TX'), legend: 'cpu {{cpu}}' }],
      }),
    )
    .withPanel(
      timeSeries({
        title: 'Softnet drops per CPU',
        description: 'Packets dropped because the CPU\'s backlog (netdev_max_backlog) was full or flow-limited. Any drop is a packet lost inside the host, seen by TCP as loss: raise net.core.netdev_max_backlog or spread the load.',
        unit: 'pps',
        queries: [
          { expr: rec(RULES.cpuSoftnetDrops, N), legend: 'dropped cpu {{cpu}}' },
          { expr: `sum by (cpu) (rate(flowpath_softnet_flow_limit_count_total{${N}}[${RULE_WINDOW}]))`, legend: 'flow limit cpu {{cpu}}' },
        ],
        thresholds: anyIsBad,
        width: 8,
      }),
    )
    .withPanel(
      timeSeries({
        title: 'Time squeezes per CPU',
        description: `Times per second (over ${RULE_WINDOW}) net_rx_action stopped with work left (netdev_budget or netdev_budget_usecs used up). Steadily at ${T.timeSqueezesPerSecond}/s or more on one CPU (red; the time squeeze alert's threshold) = that CPU cannot keep up with its RX queue; raise netdev_budget or spread the queues.`,
        unit: 'short',
        queries: [{ expr: rec(RULES.cpuTimeSqueeze, N), legend: 'cpu {{cpu}}' }],
        thresholds: badAbove(1, T.timeSqueezesPerSecond),
        width: 8,
      }),
    )
    .withPanel(
      timeSeries({
        title: 'Softnet backlog per CPU',
        description: 'Packets waiting in each CPU\'s backlog now. Near netdev_max_backlog (default 1000) drops follow; a persistent backlog on one CPU = that CPU is the receive bottleneck.',
        unit: 'short',
        queries: [{ expr: `max by (cpu) (flowpath_softnet_backlog_packets{${N}})`, legend: 'cpu {{cpu}}' }],
        thresholds: badAbove(300, 900),
        width: 8,
      }),
    )
    .withRow(new dash.RowBuilder('NICs and qdiscs'))
    .withPanel(
      tablePanel({
        title: 'NIC rings, channels, offloads and coalescing',
        description: 'Per device: link speed, MTU, RX/TX ring size against the driver maximum, combined channels, the TSO / GSO / GRO / LRO offloads (0 = off, red: without TSO/GRO a fast link costs a CPU per packet and rarely reaches line rate), RX interrupt coalescing and whether it is adaptive. A ring well below its maximum on a NIC with RX drops can be raised (ethtool -G).',
        unit: 'none',
        queries: [
          { expr: `max by (device) (flowpath_nic_speed_bytes_per_second{${D}})` },
          { expr: `max by (device) (flowpath_nic_mtu_bytes{${D}})` },
          { expr: `max by (device) (flowpath_nic_rx_ring_entries{${D}})` },
          { expr: `max by (device) (flowpath_nic_rx_ring_max_entries{${D}})` },
          { expr: `max by (device) (flowpath_nic_tx_ring_entries{${D}})` },
          { expr: `max by (device) (flowpath_nic_channels{${D}, type="combined"})` },
          { expr: `max by (device) (flowpath_nic_offload_active{${D}, feature="tx-tcp-segmentation"})` },
          { expr: `max by (device) (flowpath_nic_offload_active{${D}, feature="tx-generic-segmentation"})` },
          { expr: `max by (device) (flowpath_nic_offload_active{${D}, feature="rx-gro"})` },
          { expr: `max by (device) (flowpath_nic_offload_active{${D}, feature="rx-lro"})` },
          { expr: `max by (device) (flowpath_nic_rx_coalesce_seconds{${D}})` },
          { expr: `max by (device) (flowpath_nic_rx_coalesce_adaptive{${D}})` },
        ],
        rename: {
          'Value #A': 'speed', 'Value #B': 'MTU', 'Value #C': 'RX ring', 'Value #D': 'RX ring max', 'Value #E': 'TX ring',
          'Value #F': 'combined channels', 'Value #G': 'TSO', 'Value #H': 'GSO', 'Value #I': 'GRO', 'Value #J': 'LRO',
          'Value #K': 'RX coalesce', 'Value #L': 'adaptive RX',
        },
        columns: [
          { name: 'speed', unit: 'Bps' },
          { name: 'MTU', unit: 'bytes' },
          { name: 'TSO', thresholds: [[null, 'red'], [1, 'green']] },
          { name: 'GSO', thresholds: [[null, 'red'], [1, 'green']] },
          { name: 'GRO', thresholds: [[null, 'red'], [1, 'green']] },
          { name: 'RX coalesce', unit: 's' },
        ],
        height: 7,
      }),
    )
    .withPanel(
      timeSeries({
        title: 'NIC drops and errors',
        description: `Per device and second over the last ${RULE_WINDOW}: packets dropped on receive, RX overflows (no free RX descriptor or FIFO/ring overrun: rx_missed + rx_fifo + rx_over, what the RX overflow alert judges), dropped on transmit, and errors. Any of them while a flow retransmits = loss inside this host; RX overflows with a ring below its maximum: raise the ring (ethtool -G) or spread the RX queues; TX drops on an OVS internal port: OVS does not drain it.`,
        unit: 'pps',
        queries: [
          { expr: rec(RULES.deviceRxDropped, D), legend: 'rx dropped {{device}}' },
          { expr: rec(RULES.deviceRxOverflow, D), legend: 'rx overflow {{device}}' },
          { expr: rec(RULES.deviceTxDropped, D), legend: 'tx dropped {{device}}' },
          { expr: `${rec(RULES.deviceRxErrors, D)} + ${rec(RULES.deviceTxErrors, D)}`, legend: 'errors {{device}}' },
        ],
        thresholds: anyIsBad,
      }),
    )
    .withPanel(
      timeSeries({
        title: 'TX queue stops (ring full)',
        description: 'Times per second the driver stopped a TX queue because its ring was full (netdev queue stats tx-stop), and the bytes in flight in the NIC against the byte queue limit. Frequent stops = the TX ring or the NIC is the bottleneck; TCP small queues then hold the sender (tsq).',
        unit: 'short',
        queries: [
          { expr: `sum by (device, queue) (${rate('flowpath_nic_queue_tx_stop_total', D)})`, legend: 'stops {{device}} q{{queue}}' },
          { expr: `max by (device, queue) (flowpath_nic_tx_queue_bql_inflight_bytes{${D}} / flowpath_nic_tx_queue_bql_limit_bytes{${D}})`, legend: 'BQL in flight / limit {{device}} q{{queue}}' },
        ],
      }),
    )
    .withPanel(
      timeSeries({
        title: 'Qdisc drops, requeues and overlimits',
        description: 'Per qdisc and second: packets dropped (queue full: the flow sees loss), requeued (the driver\'s TX queue was stopped) and overlimits (a shaper held them). Drops on the flow\'s egress device while it retransmits = the qdisc is the hop that drops.',
        unit: 'pps',
        queries: [
          { expr: `sum by (device, kind, handle) (${rate('flowpath_qdisc_drops_total', D)})`, legend: 'drops {{device}} {{kind}} {{handle}}' },
          { expr: `sum by (device, kind, handle) (${rate('flowpath_qdisc_requeues_total', D)})`, legend: 'requeues {{device}} {{kind}} {{handle}}' },
          { expr: `sum by (device, kind, handle) (${rate('flowpath_qdisc_overlimits_total', D)})`, legend: 'overlimits {{device}} {{kind}} {{handle}}' },
        ],
        thresholds: anyIsBad,
      }),
    )
    .withPanel(
      timeSeries({
        title: 'Qdisc backlog and fq pacing',
        description: 'Bytes queued in each qdisc now (a standing backlog adds latency and, when full, drops), and how often fq throttled a flow until its departure time (pacing enforced by the qdisc). fq throttling that tracks a flow\'s throughput = the flow is paced by fq (maxrate or the TCP pacing rate).',
        unit: 'bytes',
        queries: [
          { expr: `max by (device, kind, handle) (flowpath_qdisc_backlog_bytes{${D}})`, legend: 'backlog {{device}} {{kind}} {{handle}}' },
          { expr: `sum by (device, handle) (${rate('flowpath_qdisc_fq_throttled_total', D)})`, legend: 'fq throttled/s {{device}} {{handle}}' },
        ],
        rightAxis: { match: 'fq throttled.*', unit: 'short' },
      }),
    )
    .withPanel(
      tablePanel({
        title: 'RX queue → IRQ → CPU, and RPS',
        description: 'Each RX queue, the IRQ that serves it and the CPU that IRQ (and so its NAPI softirq) runs on, with the queue\'s RPS CPU list and RFS flow table size. Several busy queues on one CPU, or one queue and RPS off (empty cpus) on a node whose softirq share is high on that CPU = receive processing is not spread.',
        unit: 'none',
        queries: [
          { expr: `max by (device, queue, irq, cpu) (flowpath_irq_rx_queue_cpu_info{${D}})` },
          { expr: `max by (device, queue, cpus) (flowpath_rps_info{${D}})` },
          { expr: `max by (device, queue) (flowpath_rps_flow_entries{${D}})` },
        ],
        hide: ['Value #A', 'Value #B'],
        rename: { cpu: 'IRQ CPU', cpus: 'RPS CPUs', 'Value #C': 'RFS flow entries' },
        width: 12,
      }),
    )
    .withPanel(
      tablePanel({
        title: 'TX queue → XPS',
        description: 'XPS maps of each TX queue: which CPUs (cpus) and RX queues (rxqs) send on it. Empty maps on a multi-queue NIC let the stack pick queues by hash, so the flow\'s TX completions may land on a busy CPU.',
        unit: 'none',
        queries: [{ expr: `max by (device, queue, cpus, rxqs) (flowpath_xps_info{${D}})` }],
        hide: ['Value'],
        width: 12,
      }),
    )
    .withRow(new dash.RowBuilder('Open vSwitch'))
    .withPanel(
      timeSeries({
        title: 'OVS datapath lookups: hit, missed, lost',
        description: `Packets per second over the last ${RULE_WINDOW} that matched a datapath flow (hit), went to ovs-vswitchd as an upcall (missed) or were dropped because the upcall failed (lost). Lost above 0 = packets dropped inside OVS; a high missed rate = the megaflow cache does not hold the traffic (flow limit, revalidation) and every miss costs the slow path.`,
        unit: 'pps',
        queries: [
          { expr: rec(RULES.datapathHits, N), legend: 'hit {{datapath}}' },
          { expr: rec(RULES.datapathMisses, N), legend: 'missed {{datapath}}' },
          { expr: rec(RULES.datapathLost, N), legend: 'lost {{datapath}}' },
        ],
      }),
    )
    .withPanel(
      timeSeries({
        title: 'OVS masks per packet',
        description: `Masks (megaflow subtables) the kernel datapath probed per packet over the last ${RULE_WINDOW}. Each mask is one hash lookup; above ~10 the per-packet cost grows and the sender's OVS hop can saturate a CPU (too many distinct wildcard patterns).`,
        unit: 'short',
        queries: [{ expr: rec(RULES.datapathMasksPerPacket, N), legend: '{{datapath}}' }],
        thresholds: badAbove(5, 10),
        width: 8,
      }),
    )
    .withPanel(
      timeSeries({
        title: 'OVS upcalls',
        description: 'Upcalls per second to ovs-vswitchd: successful and failed ones of the userspace datapath threads, and per-port upcalls of the kernel datapath. Failed upcalls are dropped packets; a high upcall rate with a flow near the flow limit = OVS evicts and re-installs flows.',
        unit: 'pps',
        queries: [
          { expr: `sum by (datapath) (${rate('flowpath_ovs_pmd_upcalls_total', N)})`, legend: 'upcalls {{datapath}}' },
          { expr: `sum by (datapath) (${rate('flowpath_ovs_pmd_lost_upcalls_total', N)})`, legend: 'failed upcalls {{datapath}}' },
          { expr: `sum by (datapath) (${rate('flowpath_ovs_port_upcall_packets_total', N)})`, legend: 'kernel port upcalls {{datapath}}' },
        ],
        width: 8,
      }),
    )
    .withPanel(
      timeSeries({
        title: 'OVS datapath flows vs flow limit',
        description: 'Datapath flows ovs-vswitchd tracks against its current flow limit. Flows near the limit = eviction and more upcalls; OVS lowers the limit itself when revalidator dumps take long.',
        unit: 'short',
        queries: [
          { expr: `max by (datapath) (flowpath_ovs_upcall_flows{${N}})`, legend: 'flows {{datapath}}' },
          { expr: `max by (datapath) (flowpath_ovs_upcall_flow_limit{${N}})`, legend: 'flow limit {{datapath}}' },
        ],
        width: 8,
      }),
    )
    .withPanel(
      timeSeries({
        title: 'OVS port drops',
        description: 'Packets per second dropped on each OVS datapath port, received or sent. TX drops on an internal port = the host stack did not drain it; drops on the uplink = the NIC side. Any drop on the flow\'s ports is loss inside the host.',
        unit: 'pps',
        queries: [
          { expr: `sum by (datapath, port) (${rate('flowpath_ovs_port_rx_dropped_total', N)})`, legend: 'rx {{datapath}}/{{port}}' },
          { expr: `sum by (datapath, port) (${rate('flowpath_ovs_port_tx_dropped_total', N)})`, legend: 'tx {{datapath}}/{{port}}' },
        ],
        thresholds: anyIsBad,
        width: 24,
      }),
    );
}
