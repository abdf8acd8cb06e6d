// Alerting rules. Each carries `severity`, a static `summary`, a templated `description` with the values
// and their units, and `runbook_url` (docs/runbooks/<alert>.md). Flow alerts keep the flow identity
// (instance, peer_ip, service_port, role) and node alerts the node (instance) plus the component
// (device, cpu, datapath, collector); the static label `scope` ("flow" | "node" | "exporter") lets an
// Alertmanager route choose its group_by per kind.

import type { AlertName, MixinConfig } from './config';
import { AlertingRule, RuleGroup, by, labelSets, on, recordNames } from './rules';

export type AlertScope = 'flow' | 'node' | 'exporter';

export interface AlertDef {
  name: AlertName;
  scope: AlertScope;
  expr: string;
  summary: string;
  description: string;
}

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;
const fmtBytes = (n: number) => (n >= 1 << 20 ? `${n / (1 << 20)} MiB` : n >= 1 << 10 ? `${n / (1 << 10)} KiB` : `${n} bytes`);
const gbit = (bytesPerSecond: number) => `${(bytesPerSecond * 8) / 1e9} Gbit/s`;

/** "{{ $labels.role }} flow {{ $labels.instance }} → {{ $labels.peer_ip }}:{{ $labels.service_port }}" etc. */
const FLOW = 'The {{ $labels.role }} side of the flows between {{ $labels.instance }} and {{ $labels.peer_ip }} on service port {{ $labels.service_port }}';

export function alertDefs(c: MixinConfig): AlertDef[] {
  const s = c.selector;
  const w = c.rateWindow;
  const t = c.thresholds;
  const L = labelSets(c);
  const n = recordNames(c);
  const id = on(L.identity);
  const notFull = `unless ${id}\n  ${n.identityLinkUtilisation} >= ${t.linkFullShare}`;
  const pacing = `(\n  ${n.identityPacingShare} >= ${t.pacingLimitedShare}\n  ${notFull}\n)`;
  const baselines = t.pacingRegressionOffsets
    .map((o) => `  label_replace(${n.identityPacingShare} offset ${o}, "baseline", "${o}", "", "")`)
    .join('\n  or\n');
  const speedSelector = `flowpath_nic_speed_bytes_per_second{${s}}`;
  const expected = c.expectedLinkSpeeds.map((e) => `(flowpath_nic_speed_bytes_per_second{${s}, device=~"${e.device}"} * 8 < ${e.bitsPerSecond})`);

  return [
    {
      name: 'FlowpathFlowPacingLimited',
      scope: 'flow',
      expr: pacing,
      summary: `A flow is pacing-limited at least ${pct(t.pacingLimitedShare)} of the time while below ${pct(t.linkFullShare)} of its link speed.`,
      description: `${FLOW} waited for the pacing timer {{ $value | humanizePercentage }} of the time over the last ${w}, and its goodput is below ${pct(t.linkFullShare)} of the link speed (or the speed is unknown).`,
    },
    {
      name: 'FlowpathFlowPacingLimitedRegression',
      scope: 'flow',
      expr: `${pacing}\n- ${id}\nmax ${by(L.identity)} (\n${baselines}\n)\n>= ${t.pacingRegressionIncrease}`,
      summary: `A flow is pacing-limited clearly more often than ${t.pacingRegressionOffsets.join(' / ')} earlier.`,
      description: `${FLOW} is pacing-limited at least ${pct(t.pacingLimitedShare)} of the time, {{ $value | humanizePercentage }} of the time more than at the same time ${t.pacingRegressionOffsets.join(' and ')} earlier (the higher baseline counts), while below ${pct(t.linkFullShare)} of its link speed.`,
    },
    {
      name: 'FlowpathFlowRwndLimited',
      scope: 'flow',
      expr: `${n.identityLimitedShare}{reason="rwnd"} >= ${t.rwndLimitedShare}`,
      summary: `A flow is held by the receiver's window at least ${pct(t.rwndLimitedShare)} of the time.`,
      description: `${FLOW} was limited by the peer's advertised receive window {{ $value | humanizePercentage }} of the time over the last ${w}.`,
    },
    {
      name: 'FlowpathFlowSndbufLimited',
      scope: 'flow',
      expr: `${n.identityLimitedShare}{reason="sndbuf"} >= ${t.sndbufLimitedShare}`,
      summary: `A flow is held by its send buffer at least ${pct(t.sndbufLimitedShare)} of the time.`,
      description: `${FLOW} was limited by its send buffer (the writer blocked on a full buffer) {{ $value | humanizePercentage }} of the time over the last ${w}.`,
    },
    {
      name: 'FlowpathFlowCwndLimitedWithLoss',
      scope: 'flow',
      expr: `${n.identityLoss} >= ${t.lossRatio}\nand ${id}\n${n.identityLimitedShare}{reason="cwnd"} >= ${t.cwndLimitedShare}`,
      summary: `A flow is held by its congestion window at least ${pct(t.cwndLimitedShare)} of the time and loses packets.`,
      description: `${FLOW} is congestion-window limited at least ${pct(t.cwndLimitedShare)} of the time and lost {{ $value | humanizePercentage }} of its data segments over the last ${w} (retransmits not shown spurious by DSACK).`,
    },
    {
      name: 'FlowpathFlowSpuriousRetransmits',
      scope: 'flow',
      expr: `${n.identitySpurious} >= ${t.spuriousRetransmitShare}\nand ${id}\n${n.identityRetransmits} >= ${t.spuriousRetransmitsMinPerSecond}\nand ${id}\n${n.identityRetransmitRatio} >= ${t.spuriousRetransmitsMinRatio}`,
      summary: 'Most retransmits of a flow are spurious (reordering or delay spikes, not loss).',
      description: `${FLOW} retransmits at least ${t.spuriousRetransmitsMinPerSecond}/s and ${pct(t.spuriousRetransmitsMinRatio)} of its data segments, and the peer reported {{ $value | humanizePercentage }} of the retransmitted segments as duplicates (DSACK) over the last ${w}.`,
    },
    {
      name: 'FlowpathFlowNotsentBacklog',
      scope: 'flow',
      expr: `${n.identityNotsentShare} >= ${t.notsentShareOfSendQueue}\nand ${id}\n${n.identityNotsent} >= ${t.notsentMinBytes}\nand ${id}\n${n.identityLinkUtilisation} < ${t.linkFullShare}`,
      summary: `Data waits unsent in a flow's socket while its link has room.`,
      description: `${FLOW} keeps {{ $value | humanizePercentage }} of its send queue unsent (at least ${fmtBytes(t.notsentMinBytes)} on average over the last ${w}) while its goodput is below ${pct(t.linkFullShare)} of the link speed: the stack, not the application, holds the data.`,
    },
    {
      name: 'FlowpathNicRxOverflow',
      scope: 'node',
      expr: `${n.deviceRxOverflowRatio} >= ${t.nicRxOverflowRatio}`,
      summary: 'A NIC drops received packets because its RX ring or FIFO overflows.',
      description: 'Device {{ $labels.device }} on {{ $labels.instance }} missed or overflowed {{ $value | humanizePercentage }} of received packets over the last ' + w + ' (rx_missed, rx_fifo, rx_over errors).',
    },
    {
      name: 'FlowpathNicTxQueueStopped',
      scope: 'node',
      expr: `${n.deviceTxStops} >= ${t.nicTxStopsPerSecond}\nor\n${n.deviceQdiscRequeues} >= ${t.nicTxStopsPerSecond}`,
      summary: 'A NIC keeps stopping its TX queues (TX ring full).',
      description: 'Device {{ $labels.device }} on {{ $labels.instance }} stopped a TX queue {{ $value | humanize }} times per second over the last ' + w + ' (netdev tx-stop, or qdisc requeues where the driver has no queue statistics).',
    },
    {
      name: 'FlowpathNicOffloadDisabled',
      scope: 'node',
      expr: `flowpath_nic_offload_active{${s}, feature=~"${c.offloadFeatures}"} == 0\nand ${on(L.device)}\n${speedSelector} >= ${c.offloadMinSpeedBytesPerSecond}`,
      summary: `A segmentation or receive offload is off on a link of ${gbit(c.offloadMinSpeedBytesPerSecond)} or more.`,
      description: 'Offload {{ $labels.feature }} is off on {{ $labels.device }} of {{ $labels.instance }}, a link of at least ' + gbit(c.offloadMinSpeedBytesPerSecond) + ': every packet costs the CPU a full pass through the stack.',
    },
    {
      name: 'FlowpathNicLinkSpeedBelowExpected',
      scope: 'node',
      expr: [`(\n  ${speedSelector} * 8\n  < max_over_time(${speedSelector}[${c.linkSpeedLookback}]) * 8\n)`, ...expected].join('\nor\n'),
      summary: 'A link negotiated a lower speed than expected.',
      description: `Device {{ $labels.device }} on {{ $labels.instance }} runs at {{ $value | humanize }}bit/s, below the speed it had in the last ${c.linkSpeedLookback}${c.expectedLinkSpeeds.length ? ' or below its configured speed' : ''}.`,
    },
    {
      name: 'FlowpathQdiscDrops',
      scope: 'node',
      expr: `${n.deviceQdiscDrops} >= ${t.qdiscDropsPerSecond}`,
      summary: 'A root qdisc drops packets.',
      description: 'The root qdisc of {{ $labels.device }} on {{ $labels.instance }} dropped {{ $value | humanize }} packets per second over the last ' + w + '.',
    },
    {
      name: 'FlowpathSoftnetBacklogDrops',
      scope: 'node',
      expr: `${n.cpuSoftnetDrops} >= ${t.softnetDropsPerSecond}`,
      summary: 'A CPU drops received packets because its softnet backlog is full.',
      description: 'CPU {{ $labels.cpu }} of {{ $labels.instance }} dropped {{ $value | humanize }} packets per second from its input backlog (netdev_max_backlog or flow limit) over the last ' + w + '.',
    },
    {
      name: 'FlowpathSoftnetTimeSqueeze',
      scope: 'node',
      expr: `${n.cpuTimeSqueeze} >= ${t.timeSqueezesPerSecond}`,
      summary: 'A CPU keeps running out of its NET_RX softirq budget.',
      description: 'CPU {{ $labels.cpu }} of {{ $labels.instance }} ran out of netdev_budget / netdev_budget_usecs with packets left {{ $value | humanize }} times per second over the last ' + w + '.',
    },
    {
      name: 'FlowpathSoftirqCpuSaturatedWithoutRps',
      scope: 'node',
      expr: [
        `max ${by([...L.device, 'queue', 'cpu'])} (`,
        `  flowpath_irq_rx_queue_cpu_info{${s}}`,
        `  and ${on([...L.device, 'queue'])}`,
        `  flowpath_rps_cpus{${s}} == 0`,
        `)`,
        `* ${on(L.cpu)} group_left ()`,
        `(${n.cpuSoftirqShare} >= ${t.softirqCpuShare})`,
      ].join('\n'),
      summary: `One CPU spends at least ${pct(t.softirqCpuShare)} of its time in softirq for an RX queue without RPS.`,
      description: 'CPU {{ $labels.cpu }} of {{ $labels.instance }} spent {{ $value | humanizePercentage }} of its time in softirq over the last ' + w + '; it serves RX queue {{ $labels.queue }} of {{ $labels.device }} and RPS is off there, so no other CPU can take the work.',
    },
    {
      name: 'FlowpathOvsDatapathLost',
      scope: 'node',
      expr: `${n.datapathLost} > ${t.ovsLostPerSecond}`,
      summary: 'The OVS datapath drops packets it could not send to ovs-vswitchd.',
      description: 'Datapath {{ $labels.datapath }} on {{ $labels.instance }} lost {{ $value | humanize }} packets per second over the last ' + w + ' (upcall queue full).',
    },
    {
      name: 'FlowpathOvsMissRate',
      scope: 'node',
      expr: `${n.datapathMissRatio} >= ${t.ovsMissRatio}\nand ${on(L.datapath)}\n${n.datapathMisses} >= ${t.ovsMissesMinPerSecond}`,
      summary: 'Many packets miss the OVS datapath flow cache and go to ovs-vswitchd.',
      description: `Datapath {{ $labels.datapath }} on {{ $labels.instance }} missed its flow cache for {{ $value | humanizePercentage }} of the packets (at least ${t.ovsMissesMinPerSecond} upcalls per second) over the last ${w}.`,
    },
    {
      name: 'FlowpathOvsUpcallFlowLimit',
      scope: 'node',
      expr: `${n.datapathFlowLimitShare} >= ${t.ovsFlowLimitShare}`,
      summary: 'The OVS datapath holds nearly as many flows as its flow limit.',
      description: 'Datapath {{ $labels.datapath }} on {{ $labels.instance }} holds {{ $value | humanizePercentage }} of its flow limit: new flows evict others and go through ovs-vswitchd.',
    },
    {
      name: 'FlowpathCollectorFailing',
      scope: 'exporter',
      expr: `min_over_time(flowpath_scrape_collector_success{${s}}[${w}]) == 0`,
      summary: 'A flowpath collector keeps failing.',
      description: 'Collector {{ $labels.collector }} of {{ $labels.instance }} failed at least once in every ' + w + ': its metrics are missing or stale. The exporter log says why.',
    },
    {
      name: 'FlowpathExporterDown',
      scope: 'exporter',
      expr: `up{${s}} == 0`,
      summary: 'Prometheus cannot scrape flowpath.',
      description: 'The flowpath exporter {{ $labels.instance }} has not answered a scrape: no flow or node data from it.',
    },
  ];
}

export function alertGroups(c: MixinConfig): RuleGroup<AlertingRule>[] {
  const defs = alertDefs(c);
  const rule = (d: AlertDef): AlertingRule => {
    const a = c.alerts[d.name];
    return {
      alert: d.name,
      expr: d.expr,
      ...(a.for !== '0s' ? { for: a.for } : {}),
      labels: { severity: a.severity, scope: d.scope },
      annotations: { summary: d.summary, description: d.description, runbook_url: `${c.runbookUrlBase}${d.name}.md` },
    };
  };
  const group = (name: string, pick: (d: AlertDef) => boolean): RuleGroup<AlertingRule> => ({
    name,
    ...(c.interval ? { interval: c.interval } : {}),
    rules: defs.filter(pick).map(rule),
  });
  return [
    group('flowpath-flows', (d) => d.scope === 'flow'),
    group('flowpath-nic', (d) => d.scope === 'node' && /^FlowpathNic|^FlowpathQdisc/.test(d.name)),
    group('flowpath-cpu', (d) => d.scope === 'node' && /^FlowpathSoft/.test(d.name)),
    group('flowpath-ovs', (d) => d.scope === 'node' && /^FlowpathOvs/.test(d.name)),
    group('flowpath-exporter', (d) => d.scope === 'exporter'),
  ];
}
