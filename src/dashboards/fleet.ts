// Fleet: which nodes and flow identities are limited by what now, which alerts fire, the most
// pacing-limited flow identities, and what got worse than a day earlier.

import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as dash from '@grafana/grafana-foundation-sdk/dashboard';
import {
  mixinView, ALERT_PREFIX, UID, alertAnnotation, badAbove, barGauge, baseDashboard, datasourceVariable, linkTo, queryVariable,
  pct, rec, statPanel, tablePanel, timeSeries,
} from './common';
import type { MixinConfig } from '../mixin/config';

/** A flow's identity across runs (the ephemeral port changes; these do not). */
export const IDENTITY = 'instance, peer_ip, service_port, role';
const N = 'instance=~"$node"';
const RI = '$__rate_interval';

const toFlow = linkTo('Flow path of this flow identity', UID.flow, {
  node: '${__data.fields.instance}',
  peer: '${__data.fields.peer_ip}',
  service_port: '${__data.fields.service_port}',
  role: '${__data.fields.role}',
});
const toNode = linkTo('Node path of this node', UID.node, { node: '${__data.fields.instance}' });

const limited = (sel: string, win: string) => `rate(flowpath_flow_limited_seconds_total{${sel}}[${win}])`;
/** The recorded pacing-limited share of each flow identity (the number the pacing alerts judge). */
export function fleetDashboard(cfg: MixinConfig): dashboard.DashboardBuilder {
  const { RULES, RULE_WINDOW, T } = mixinView(cfg);
  const pacingShare = rec(RULES.identityPacingShare, N);
  const bucketAcked = rec(RULES.bucketAcked, N);
  return baseDashboard(
    UID.fleet,
    'flowpath / Fleet',
    'Which nodes and flow identities (node, peer, service port, role) are limited by what now, the flowpath alerts that fire, the most pacing-limited identities and regressions against a day earlier.',
  )
    .withVariable(datasourceVariable())
    .withVariable(queryVariable('node', 'Node', 'label_values(flowpath_build_info, instance)', { multi: true, all: true }))
    .annotation(alertAnnotation(`instance=~"$node"`))
    .withRow(new dash.RowBuilder('Now'))
    .withPanel(
      statPanel({
        title: 'Flows sampled',
        description: 'Flows the diagnosis samplers poll now (watched plus the busiest per node). 0 on a busy fleet means --diagnosis.top 0 or the diagnosis collector is off, so no limit attribution exists.',
        unit: 'short',
        queries: [{ expr: `sum(flowpath_diagnosis_sampled_flows{${N}})`, instant: true }],
        thresholds: [[null, 'orange'], [1, 'green']],
        width: 6,
      }),
    )
    .withPanel(
      statPanel({
        title: 'Flows with a limiting hop',
        description: 'Sampled flows whose verdict names a hop that holds them (flowpath_flow_verdict_info). Anything above 0 is a flow not reaching what the path could carry; the table below says where.',
        unit: 'short',
        queries: [{ expr: `count(flowpath_flow_verdict_info{${N}}) or vector(0)`, instant: true }],
        thresholds: badAbove(1, 5),
        width: 6,
      }),
    )
    .withPanel(
      statPanel({
        title: 'flowpath alerts firing',
        description: `Alerts of the flowpath rules (${ALERT_PREFIX}*) firing now. Above 0: see the alerts table and the runbook of each.`,
        unit: 'short',
        queries: [{ expr: `count(ALERTS{alertstate="firing", alertname=~"${ALERT_PREFIX}.*"}) or vector(0)`, instant: true }],
        thresholds: badAbove(1, 1),
        width: 6,
      }),
    )
    .withPanel(
      statPanel({
        title: 'Failing collectors',
        description: 'Collectors that failed in the last scrape, over the selected nodes. Above 0: the metrics of that collector are missing and panels fed by it are blank; the exporter log says why (EPERM, OVS socket, timeout).',
        unit: 'short',
        queries: [{ expr: `count(flowpath_scrape_collector_success{${N}} == 0) or vector(0)`, instant: true }],
        thresholds: badAbove(1, 1),
        width: 6,
      }),
    )
    .withPanel(
      barGauge({
        title: 'What limits each node now',
        description: `Per node, the share of its sampled flows' time over the last ${RULE_WINDOW} held by each limit (pacing, pacing_capped, cwnd, rwnd, sndbuf, tsq; app and idle, where the application offered nothing, are left out). A long bar names the node and the reason: from ${pct(T.pacingLimitedShare)} pacing or rwnd, that limit, not the network, sets the node's throughput (the flow alerts fire at that share per flow identity).`,
        unit: 'percentunit',
        queries: [{ expr: rec(RULES.nodeLimitedShare, `${N}, reason!~"app|idle"`), legend: '{{instance}} {{reason}}' }],
        thresholds: badAbove(0.2, T.pacingLimitedShare),
        min: 0,
        max: 1,
        width: 24,
        height: 6,
      }),
    )
    .withPanel(
      timeSeries({
        title: 'What holds the sampled flows (stacked)',
        description: 'rate() of flowpath_flow_limited_seconds_total summed by reason: how many sampled flows each reason holds on average (the stack is the number of sampled flows). pacing, pacing_capped, cwnd, rwnd, sndbuf and tsq are limits; app and idle mean the application did not offer more data. A growing pacing or rwnd band is the fleet-wide signature of the seed problem.',
        unit: 'short',
        queries: [{ expr: `sum by (reason) (${limited(`${N}, reason!="idle"`, RI)})`, legend: '{{reason}}' }],
        stack: 'normal',
        width: 12,
      }),
    )
    .withPanel(
      timeSeries({
        title: 'Limited share of busy time, every flow, by node and service port',
        description: 'For all selected flows, not only sampled ones: the kernel chronographs rwnd-limited and sndbuf-limited as a share of busy time, per node and service port bucket. Above ~20 % the receiver window or the sender buffer caps throughput: raise tcp_rmem / tcp_wmem maxima or the application buffer sizes.',
        unit: 'percentunit',
        queries: [
          { expr: rec(RULES.bucketRwndShare, N), legend: 'rwnd {{instance}} {{role}} :{{service_port}}' },
          { expr: rec(RULES.bucketSndbufShare, N), legend: 'sndbuf {{instance}} {{role}} :{{service_port}}' },
        ],
        thresholds: badAbove(0.2, 0.5),
        min: 0,
        max: 1,
        width: 12,
      }),
    )
    .withPanel(
      tablePanel({
        title: 'Flow identities with a limiting hop now',
        description: 'One row per sampled flow whose verdict names a limiting hop: the node, the flow identity, the hop, the limit and the rule that decided it (docs/diagnosis.md). Click a row to open its Flow path. Every row is a flow held below what the path could carry.',
        unit: 'short',
        queries: [{ expr: `max by (${IDENTITY}, hop, limit, rule) (flowpath_flow_verdict_info{${N}})` }],
        hide: ['Value'],
        links: [toFlow, toNode],
        width: 12,
      }),
    )
    .withPanel(
      tablePanel({
        title: 'Top pacing-limited flow identities',
        description: `Share of wall time each flow identity spent held by pacing (pacing + pacing_capped) over the last ${RULE_WINDOW}, highest first. From ${pct(T.pacingLimitedShare)} (orange; the pacing-limited alert's threshold): the pacing rate, not the network, sets the throughput; pacing_capped means SO_MAX_PACING_RATE or an fq maxrate, pacing means the congestion control paced below what the link carries. Click a row for its Flow path.`,
        unit: 'percentunit',
        queries: [{ expr: `topk(10, ${pacingShare})` }],
        columns: [{ name: 'Value', unit: 'percentunit', thresholds: badAbove(T.pacingLimitedShare, 0.8), gauge: true, max: 1 }],
        rename: { Value: 'pacing-limited share' },
        sortBy: { field: 'pacing-limited share', desc: true },
        links: [toFlow],
        width: 12,
      }),
    )
    .withPanel(
      timeSeries({
        title: 'Goodput by node and service port',
        description: 'Bytes acknowledged per second over every selected flow, per node, role and service port bucket (flowpath_flows_acked_bytes_total). A drop with unchanged offered load is a regression; compare with the day-earlier table below.',
        unit: 'Bps',
        queries: [{ expr: bucketAcked, legend: '{{instance}} {{role}} :{{service_port}}' }],
        width: 12,
      }),
    )
    .withPanel(
      timeSeries({
        title: 'Retransmitted and spurious (DSACK) segments by node',
        description: 'Retransmitted segments per second over every selected flow, and those the peer reported as duplicates (DSACK, i.e. spurious). Retransmits that are mostly spurious point at reordering or a too-short RTO, not loss; real loss with rising retransmits points at drops on the path (NIC, qdisc, softnet, OVS: see Node path).',
        unit: 'pps',
        queries: [
          { expr: `sum by (instance) (${rec(RULES.bucketRetransmits, N)})`, legend: 'retransmitted {{instance}}' },
          { expr: `sum by (instance) (rate(flowpath_flows_dsack_dups_total{${N}}[${RULE_WINDOW}]))`, legend: 'spurious {{instance}}' },
        ],
        width: 12,
      }),
    )
    .withRow(new dash.RowBuilder('Regressions against a day earlier'))
    .withPanel(
      tablePanel({
        title: 'Pacing-limited share: now vs a day earlier',
        description: `Change of the pacing-limited share of each flow identity over the last ${RULE_WINDOW} against the same ${RULE_WINDOW} a day earlier (percentage points; the comparison the pacing regression alert makes). From +${pct(T.pacingRegressionIncrease).replace(' %', '')} points (red; the regression alert's threshold): something made the flow pace more (a new SO_MAX_PACING_RATE, an fq maxrate, a congestion-control or kernel change). Needs a day of history.`,
        unit: 'percentunit',
        queries: [{ expr: `${pacingShare} - ${pacingShare} offset 1d` }],
        columns: [{ name: 'Value', unit: 'percentunit', thresholds: badAbove(T.pacingRegressionIncrease / 2, T.pacingRegressionIncrease) }],
        rename: { Value: 'change' },
        sortBy: { field: 'change', desc: true },
        links: [toFlow],
        width: 12,
      }),
    )
    .withPanel(
      tablePanel({
        title: 'Goodput now vs a day earlier',
        description: `Goodput of each node, role and service port bucket over the last ${RULE_WINDOW} divided by the same ${RULE_WINDOW} a day earlier. Below 0.8 (red below 0.5): the same service moves less data than yesterday; open the node or flow to see which hop changed. Needs a day of history.`,
        unit: 'percentunit',
        queries: [{ expr: `${bucketAcked} / ${bucketAcked} offset 1d` }],
        columns: [{ name: 'Value', unit: 'percentunit', thresholds: [[null, 'red'], [0.5, 'orange'], [0.8, 'green']] }],
        rename: { Value: 'now / day earlier' },
        sortBy: { field: 'now / day earlier', desc: false },
        links: [toNode],
        width: 12,
      }),
    )
    .withRow(new dash.RowBuilder('Alerts'))
    .withPanel(
      tablePanel({
        title: 'flowpath alerts firing',
        description: 'Every firing alert of the flowpath rules with its labels. Each has a runbook (annotation runbook_url in Prometheus/Alertmanager). Empty is good.',
        unit: 'short',
        queries: [{ expr: `ALERTS{alertstate="firing", alertname=~"${ALERT_PREFIX}.*"}` }],
        hide: ['Value', 'alertstate'],
        width: 24,
      }),
    );
}
