// Flow path: one flow identity (node, peer, service port, role). A row of cells, one per hop of
// socket → TCP → qdisc/internal port → OVS → NIC → link → NIC → OVS → internal port → TCP → socket, with
// the status the verdict metrics give it; below, this node's view and the peer's view of the same flow
// side by side (the peer's series are found on whichever instance has the reversed identity).

import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as dash from '@grafana/grafana-foundation-sdk/dashboard';
import * as common from '@grafana/grafana-foundation-sdk/common';
import { HOPS, HOP_TITLES, type Hop } from '../diagnosis/types';
import {
  type MixinView, mixinView, UID, alertAnnotation, baseDashboard, datasourceVariable, linkTo, queryVariable, rec, statPanel,
  tablePanel, timeSeries, valueText,
} from './common';
import type { MixinConfig } from '../mixin/config';

/** This node's view of the flow identity. */
export const THIS = 'instance="$node", peer_ip="$peer", service_port="$service_port", role="$role"';
/** The peer's view: the same identity with local and peer swapped, on any instance. */
export const PEER = 'local_ip="$peer", peer_ip="$local_ip", service_port="$service_port", role!="$role"';
/**
 * The peer's flow identity, for the recording rules kept by identity (they drop local_ip, so the peer's
 * instance, found by the hidden `peer_instance` variable, takes its place).
 */
export const PEER_IDENTITY = 'instance="$peer_instance", peer_ip="$local_ip", service_port="$service_port", role!="$role"';

/** What it means when the verdict names this hop (shown as the cell's description). */
const HOP_MEANING: Record<Hop, string> = {
  'socket-tx': 'The sending application: it did not write fast enough (app) or its send buffer was full (sndbuf). Raise the write size / tcp_wmem max, or fix the writer.',
  'tcp-tx': 'The sender\'s TCP: pacing below the path rate (pacing_capped = SO_MAX_PACING_RATE or fq maxrate), or the congestion window. Check the pacing rate against the delivery rate below.',
  'qdisc-tx': 'The egress qdisc or the OVS internal port queue: TCP small queues throttled the flow, or the qdisc dropped or shaped. See Node path: qdisc drops and backlog.',
  'ovs-tx': 'Open vSwitch on the sender: the userspace datapath thread saturated, or packets were lost in upcalls. See Node path: OVS.',
  'nic-tx': 'The sender NIC: TX drops, errors or queue stops (ring full), or TSO off. See Node path: NIC drops and rings.',
  link: 'The link or what lies beyond the host: goodput at the link speed, or loss / queueing outside both hosts.',
  'nic-rx': 'The receiver NIC and its RX CPU: RX drops, softirq saturation or time squeezes on the CPU handling the queue. See the receiver\'s Node path.',
  'ovs-rx': 'Open vSwitch on the receiver: datapath thread saturated or upcalls lost.',
  'internal-rx': 'The receiver\'s OVS internal port dropped packets on their way to the stack.',
  'tcp-rx': 'The receiver\'s TCP dropped segments (receive queue, backlog, out-of-order memory, zero window).',
  'socket-rx': 'The receiving application or its buffer: the advertised window (rwnd) held the sender. Raise tcp_rmem max or read faster.',
};

const verdict = (sel: string, hop: Hop) => `flowpath_flow_verdict_info{${sel}, hop="${hop}"}`;
const sampled = (sel: string) => `flowpath_flow_limited_seconds_total{${sel}}`;

/** 1 (label limit) when either side's verdict names the hop, 0 (limit="ok") when the flow is sampled, else empty. */
export function hopQuery(hop: Hop): string {
  return (
    `max by (limit) (${verdict(THIS, hop)} or ${verdict(PEER, hop)})` +
    ` or on() label_replace(0 * max(${sampled(THIS)} or ${sampled(PEER)}), "limit", "ok", "", "")`
  );
}

function hopCell(hop: Hop): ReturnType<typeof statPanel> {
  return statPanel({
    title: HOP_TITLES[hop],
    description: `Hop ${hop}. Red with the limit's name when the verdict of this node or of the peer (flowpath_flow_verdict_info over --diagnosis.window) names this hop; green "ok" when the flow is sampled and this hop is not the limiting one; "not sampled" when no exporter samples the flow (add it to --diagnosis.watch). Limiting here means: ${HOP_MEANING[hop]}`,
    unit: 'none',
    queries: [{ expr: hopQuery(hop), legend: '{{limit}}', instant: true }],
    thresholds: [[null, 'green'], [1, 'red']],
    mappings: [valueText({ '0': ['ok', 'green'], '1': ['LIMITING', 'red'] })],
    noValue: 'not sampled',
    textMode: common.BigValueTextMode.Name,
    width: 2,
    height: 4,
  });
}

/** One side of the flow: `sel` selects its connections, `identity` its flow identity (for the rules kept by identity). */
type Side = { name: string; sel: string; identity: string };
const SIDES: readonly Side[] = [
  { name: 'this node ($node)', sel: THIS, identity: THIS },
  { name: 'peer ($peer)', sel: PEER, identity: PEER_IDENTITY },
];

function sidePanels(s: Side, { RULES, RULE_WINDOW }: MixinView): Array<ReturnType<typeof timeSeries>> {
  const w = 12;
  return [
    timeSeries({
      title: `Goodput, pacing, delivery rate and link speed: ${s.name}`,
      description: `Goodput (bytes acknowledged per second over ${RULE_WINDOW}; on the receiving side: bytes received) against the pacing rate TCP computes, the SO_MAX_PACING_RATE cap, the latest delivery-rate sample and the link speed (of the device holding the flow's address when it is a real link, else the node's fastest link, as the rules record it). Goodput well under the link speed while it sits on the pacing cap = pacing-capped; on the pacing rate with a delivery rate above it = pacing-limited; delivery rate at the link speed = the link is full.`,
      unit: 'Bps',
      queries: [
        { expr: `sum(${rec(RULES.flowAcked, s.sel)})`, legend: 'goodput (acked)' },
        { expr: `sum(rate(flowpath_flow_received_bytes_total{${s.sel}}[${RULE_WINDOW}]))`, legend: 'received' },
        { expr: `max by (local_port) (flowpath_flow_pacing_rate_bytes_per_second{${s.sel}})`, legend: 'pacing rate :{{local_port}}' },
        { expr: `max by (local_port) (flowpath_flow_max_pacing_rate_bytes_per_second{${s.sel}})`, legend: 'pacing cap :{{local_port}}' },
        { expr: `max by (local_port) (flowpath_flow_delivery_rate_bytes_per_second{${s.sel}})`, legend: 'delivery rate :{{local_port}}' },
        { expr: `max(${rec(RULES.flowLinkSpeed, s.sel)})`, legend: 'link speed' },
      ],
      width: w,
    }),
    timeSeries({
      title: `Unsent and unacknowledged bytes: ${s.name}`,
      description: 'notsent: written by the application, not yet sent; send queue: not yet acknowledged (sent or not); receive queue: received, not yet read. A large notsent with a small in-flight means TCP (pacing, cwnd, rwnd) holds the data back; a growing receive queue on the receiver means its application reads too slowly (the window will close).',
      unit: 'bytes',
      queries: [
        { expr: `max by (local_port) (flowpath_flow_notsent_bytes{${s.sel}})`, legend: 'notsent :{{local_port}}' },
        { expr: `max by (local_port) (flowpath_flow_send_queue_bytes{${s.sel}})`, legend: 'send queue :{{local_port}}' },
        { expr: `max by (local_port) (flowpath_flow_recv_queue_bytes{${s.sel}})`, legend: 'receive queue :{{local_port}}' },
      ],
      width: w,
    }),
    timeSeries({
      title: `Congestion window vs in flight: ${s.name}`,
      description: 'cwnd and the packets in flight (unacked − sacked − lost + retransmitted, as the kernel counts packets_out). In flight pinned at cwnd = cwnd-limited (normal while probing; with loss = the path drops); in flight well below cwnd = something else (pacing, rwnd, the application) limits.',
      unit: 'short',
      queries: [
        { expr: `max by (local_port) (flowpath_flow_cwnd_packets{${s.sel}})`, legend: 'cwnd :{{local_port}}' },
        {
          expr: `max by (local_port) (flowpath_flow_unacked_packets{${s.sel}} - flowpath_flow_sacked_packets{${s.sel}} - flowpath_flow_lost_packets{${s.sel}} + flowpath_flow_retrans_packets{${s.sel}})`,
          legend: 'in flight :{{local_port}}',
        },
      ],
      width: w,
    }),
    timeSeries({
      title: `What holds the flow (share of time, stacked to 100 %): ${s.name}`,
      description: `Share of wall time the diagnosis sampler attributed to each reason over ${RULE_WINDOW} (flowpath_flow_limited_seconds_total, docs/diagnosis.md; the share the flow alerts judge). Large pacing_capped, pacing, rwnd, sndbuf, tsq or cwnd bands are limits; app and idle mean the sender had nothing to send. Only sampled flows have this.`,
      unit: 'percentunit',
      queries: [{ expr: `sum by (reason) (${rec(RULES.identityLimitedShare, s.identity)})`, legend: '{{reason}}' }],
      stack: 'percent',
      width: w,
    }),
    timeSeries({
      title: `Smoothed RTT vs min RTT: ${s.name}`,
      description: 'srtt against the windowed minimum RTT. srtt many times min_rtt = a queue builds somewhere on the path (host qdisc, NIC ring, switch buffer: bufferbloat); srtt near min_rtt while throughput is low = the limit is not a queue.',
      unit: 's',
      queries: [
        { expr: `max by (local_port) (flowpath_flow_rtt_seconds{${s.sel}})`, legend: 'srtt :{{local_port}}' },
        { expr: `max by (local_port) (flowpath_flow_min_rtt_seconds{${s.sel}})`, legend: 'min rtt :{{local_port}}' },
      ],
      width: w,
    }),
    timeSeries({
      title: `Retransmits vs spurious retransmits (DSACK): ${s.name}`,
      description: 'Retransmitted segments per second and those the peer reported as duplicates (DSACK). Retransmits that DSACKs mostly cancel are spurious (reordering, RTO too short) and needlessly cut cwnd; real retransmits mean loss: look for drops along the hops above.',
      unit: 'pps',
      queries: [
        { expr: `sum(${rec(RULES.identityRetransmits, s.identity)})`, legend: 'retransmitted' },
        { expr: `sum(rate(flowpath_flow_dsack_dups_total{${s.sel}}[${RULE_WINDOW}]))`, legend: 'spurious (DSACK)' },
      ],
      thresholds: [[null, 'green'], [100, 'orange']],
      showThresholds: false,
      width: w,
    }),
    timeSeries({
      title: `BBR bandwidth estimate and gains: ${s.name}`,
      description: 'BBR\'s max-filtered bandwidth estimate (left axis) and its pacing and cwnd gains (right axis). A bandwidth estimate stuck well below the link speed with pacing gain ~1 = BBR believes the path is slower (loss, policer, receive side); gains cycling through 1.25/0.75 is normal probing. Empty for flows not using BBR.',
      unit: 'Bps',
      queries: [
        { expr: `max by (local_port) (flowpath_flow_bbr_bandwidth_bytes_per_second{${s.sel}})`, legend: 'bw estimate :{{local_port}}' },
        { expr: `max by (local_port) (flowpath_flow_bbr_pacing_gain_ratio{${s.sel}})`, legend: 'pacing gain :{{local_port}}' },
        { expr: `max by (local_port) (flowpath_flow_bbr_cwnd_gain_ratio{${s.sel}})`, legend: 'cwnd gain :{{local_port}}' },
      ],
      rightAxis: { match: '.*gain.*', unit: 'none' },
      width: w,
    }),
    timeSeries({
      title: `Windows and receive buffer: ${s.name}`,
      description: 'The window the peer advertises to this side (snd_wnd), the window this side advertises (rcv_wnd), receive-buffer autotuning (rcv_space) and the receive memory in use against its limit (skmem r / rb). On the sender, snd_wnd below the bandwidth-delay product = rwnd-limited; on the receiver, r near rb = the application reads too slowly, r far below rb with a small window = tcp_rmem too small.',
      unit: 'bytes',
      queries: [
        { expr: `max by (local_port) (flowpath_flow_snd_wnd_bytes{${s.sel}})`, legend: 'peer window (snd_wnd) :{{local_port}}' },
        { expr: `max by (local_port) (flowpath_flow_rcv_wnd_bytes{${s.sel}})`, legend: 'our window (rcv_wnd) :{{local_port}}' },
        { expr: `max by (local_port) (flowpath_flow_rcv_space_bytes{${s.sel}})`, legend: 'rcv_space :{{local_port}}' },
        { expr: `max by (local_port) (flowpath_flow_skmem_rmem_alloc_bytes{${s.sel}})`, legend: 'receive memory :{{local_port}}' },
        { expr: `max by (local_port) (flowpath_flow_skmem_rcvbuf_bytes{${s.sel}})`, legend: 'receive buffer :{{local_port}}' },
      ],
      width: w,
    }),
  ];
}

export function flowDashboard(cfg: MixinConfig): dashboard.DashboardBuilder {
  const view = mixinView(cfg);
  const { RULES, RULE_WINDOW } = view;
  const ident = 'instance="$node", peer_ip="$peer", service_port="$service_port"';
  const d = baseDashboard(
    UID.flow,
    'flowpath / Flow path',
    'One flow identity (node, peer, service port, role): which hop holds it, and this node\'s and the peer\'s view of the same flow side by side.',
  )
    .withVariable(datasourceVariable())
    .withVariable(queryVariable('node', 'Node', 'label_values(flowpath_flow_info, instance)', { description: 'The exporter instance that sees the flow.' }))
    .withVariable(queryVariable('peer', 'Peer', 'label_values(flowpath_flow_info{instance="$node"}, peer_ip)', { description: 'The other end of the flow.' }))
    .withVariable(queryVariable('service_port', 'Service port', 'label_values(flowpath_flow_info{instance="$node", peer_ip="$peer"}, service_port)', { description: 'The server\'s port (stable across runs; the client\'s ephemeral port is not).' }))
    .withVariable(queryVariable('role', 'Role', `label_values(flowpath_flow_info{${ident}}, role)`, { description: 'client or server, as seen from this node.' }))
    .withVariable(queryVariable('local_ip', 'Local IP', `label_values(flowpath_flow_info{${ident}, role="$role"}, local_ip)`, { hide: true }))
    .withVariable(queryVariable('peer_instance', 'Peer instance', `label_values(flowpath_flow_info{${PEER}}, instance)`, { hide: true, description: 'The exporter that sees the other end of the flow (local and peer address swapped).' }))
    .annotation(alertAnnotation(`instance=~"$node"`))
    .withRow(new dash.RowBuilder('Path: sender → receiver'));
  for (const hop of HOPS) d.withPanel(hopCell(hop));
  d.withPanel(
    statPanel({
      title: 'Goodput',
      description: `Bytes acknowledged per second over the last ${RULE_WINDOW}, over this flow identity (every connection of it on this node). Compare with the link speed in the panels below: well under it with a red hop = that hop holds the flow.`,
      unit: 'Bps',
      queries: [{ expr: `sum(${rec(RULES.identityAcked, THIS)})`, instant: true }],
      colorMode: common.BigValueColorMode.None,
      width: 2,
      height: 4,
    }),
  );
  d.withPanel(
    tablePanel({
      title: 'Verdicts of both sides',
      description: 'The limiting finding each exporter reports for this flow (flowpath_flow_verdict_info): the instance that said it, the connection, the hop, the limit and the rule (docs/diagnosis.md). Two rows that disagree usually mean one side lacks the other\'s evidence; trust the side whose hop it is.',
      unit: 'short',
      queries: [{ expr: `max by (instance, local_ip, local_port, peer_ip, peer_port, hop, limit, rule) (flowpath_flow_verdict_info{${THIS}} or flowpath_flow_verdict_info{${PEER}})` }],
      hide: ['Value'],
      height: 5,
      links: [linkTo('Node path of this instance', UID.node, { node: '${__data.fields.instance}' })],
    }),
  );
  d.withRow(new dash.RowBuilder('This node and the peer, side by side'));
  const [mine, theirs] = SIDES.map((s) => sidePanels(s, view));
  for (let i = 0; i < mine.length; i++) d.withPanel(mine[i]).withPanel(theirs[i]);
  return d;
}
