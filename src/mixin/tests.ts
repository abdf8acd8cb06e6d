// promtool unit tests of every alert, generated from the same config as the rules so that changed
// thresholds keep their tests honest (prometheus/tests/*.yml, run by `promtool test rules`). Each alert
// is tested on synthetic series: a case exactly at the threshold fires (with its labels and rendered
// annotations), a near miss beside it stays silent, and the alert resolves once the condition ends.
//
// Timeline of a test (1 m samples): the condition holds from 0 to 50 m, the alert is expected firing at
// 45 m (every default `for:` is ≤ 30 m) and gone at 80 m (the rate window has long left the condition).

import type { AlertName, MixinConfig } from './config';
import { alertDefs } from './alerts';
import { recordNames } from './rules';
import { renderTemplate } from './template';

interface Series {
  series: string;
  values: string;
}
interface ExpAlert {
  exp_labels: Record<string, string>;
  exp_annotations: Record<string, string>;
}
interface AlertTest {
  eval_time: string;
  alertname: string;
  exp_alerts: ExpAlert[];
}
interface ExprTest {
  expr: string;
  eval_time: string;
  exp_samples: Array<{ labels: string; value: number }>;
}
interface TestGroup {
  name?: string;
  interval: string;
  input_series: Series[];
  alert_rule_test: AlertTest[];
  promql_expr_test?: ExprTest[];
}
export interface TestFile {
  rule_files: string[];
  evaluation_interval: string;
  tests: TestGroup[];
}

const ON = 50; // minutes with the condition true
const TOTAL = 90; // minutes of samples
const FIRE_AT = '45m';
const GONE_AT = '80m';

/** Equality matchers of the selector become labels of the synthetic series. */
function selectorLabels(c: MixinConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of c.selector.split(',')) {
    const m = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*"([^"]*)"\s*$/.exec(part);
    if (!m || m[2] !== '=') throw new Error(`unit tests need a selector of equality matchers (name="value"), got ${JSON.stringify(c.selector)}`);
    out[m[1]] = m[3];
  }
  return out;
}

const num = (x: number) => String(Math.round(x * 1e9) / 1e9);

/**
 * A value at the threshold: rates come out of extrapolated counter deltas, so a ratio of two can land one
 * floating-point step below the exact value; 1e-9 relative above it is still "at the threshold".
 */
const at = (x: number) => x * (1 + 1e-9);

function seriesName(metric: string, labels: Record<string, string>): string {
  return `${metric}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(', ')}}`;
}

/** A counter that grows by `perSecond` while the condition holds, then stays flat. */
function counter(perSecond: number, on = ON): string {
  const step = perSecond * 60;
  return `0+${num(step)}x${on} ${num(step * on)}x${TOTAL - on}`;
}

/** A gauge at `during` while the condition holds, then `after`. */
function gauge(during: number, after: number, on = ON): string {
  return `${num(during)}x${on} ${num(after)}x${TOTAL - on}`;
}

/** A gauge constant over the whole test. */
function constant(v: number): string {
  return `${num(v)}x${TOTAL}`;
}

class Case {
  series: Series[] = [];
  expected: Array<{ labels: Record<string, string>; value: number }> = [];
  exprs: ExprTest[] = [];
  constructor(private readonly base: Record<string, string>) {}
  add(metric: string, labels: Record<string, string>, values: string): this {
    this.series.push({ series: seriesName(metric, { ...this.base, ...labels }), values });
    return this;
  }
  expect(labels: Record<string, string>, value: number): this {
    this.expected.push({ labels, value });
    return this;
  }
  /** A recording rule's value at FIRE_AT, rounded to 0.001 (exact float equality is not the point). */
  expectRecorded(record: string, labels: Record<string, string>, value: number): this {
    this.exprs.push({
      expr: `round(${seriesName(record, labels)}, 0.001)`,
      eval_time: FIRE_AT,
      exp_samples: [{ labels: seriesName('', labels), value: Math.round(value * 1000) / 1000 }],
    });
    return this;
  }
}

export function unitTests(c: MixinConfig): Map<string, TestFile> {
  const sel = selectorLabels(c);
  const t = c.thresholds;
  const defs = new Map(alertDefs(c).map((d) => [d.name, d]));
  const n = recordNames(c);
  const instance = 'node-a:9632';
  const base = { ...sel, instance };

  // ------------------------------------------------------------------ flow helpers
  const ident = (peer: string, port = '5201') => ({ peer_ip: peer, service_port: port, role: 'client' });
  const tuple = (peer: string, localPort: number, port = '5201') => ({
    local_ip: '10.0.0.1',
    local_port: String(localPort),
    peer_ip: peer,
    peer_port: port,
    role: 'client',
    service_port: port,
  });
  /** The diagnosis counters of one flow whose reasons take the given shares of wall time. */
  const limited = (k: Case, flow: Record<string, string>, shares: Record<string, number>) => {
    const rest = 1 - Object.values(shares).reduce((a, b) => a + b, 0);
    for (const [reason, sh] of Object.entries({ ...shares, idle: (shares.idle ?? 0) + rest })) k.add('flowpath_flow_limited_seconds_total', { ...flow, reason }, counter(sh));
  };

  const cases: Array<[AlertName, Case, string?]> = [];

  // Pacing-limited: at the threshold (no link speed known), a near miss, and one at the threshold whose
  // goodput fills its link (IP on an OVS internal port: the node's physical NIC gives the speed).
  {
    const k = new Case(base);
    const hit = tuple('10.0.0.2', 40001);
    limited(k, hit, { pacing_capped: at(t.pacingLimitedShare * 0.6), pacing: at(t.pacingLimitedShare * 0.4) });
    limited(k, tuple('10.0.0.3', 40002), { pacing: t.pacingLimitedShare * 0.9 });
    const full = tuple('10.0.0.4', 40003);
    limited(k, full, { pacing: at(t.pacingLimitedShare) });
    const speed = 3.125e9;
    k.add('flowpath_flow_info', { ...full, cc: 'bbr', local_device: 'br-int' }, constant(1));
    k.add('flowpath_flow_acked_bytes_total', full, counter(speed * (t.linkFullShare + 0.02)));
    k.add('flowpath_nic_info', { device: 'br-int', class: 'ovs-internal', kind: 'openvswitch', driver: '' }, constant(1));
    k.add('flowpath_nic_info', { device: 'eth0', class: 'physical', kind: '', driver: 'mlx5_core' }, constant(1));
    k.add('flowpath_nic_speed_bytes_per_second', { device: 'eth0' }, constant(speed));
    k.expect({ ...base, ...ident('10.0.0.2') }, t.pacingLimitedShare);
    // The link speed of a flow on an OVS internal port falls back to the node's physical NIC.
    k.expectRecorded(n.identityLinkUtilisation, { ...base, ...ident('10.0.0.4'), local_device: 'br-int' }, t.linkFullShare + 0.02);
    cases.push(['FlowpathFlowPacingLimited', k]);
  }
  for (const [name, reason, share] of [
    ['FlowpathFlowRwndLimited', 'rwnd', t.rwndLimitedShare],
    ['FlowpathFlowSndbufLimited', 'sndbuf', t.sndbufLimitedShare],
  ] as const) {
    const k = new Case(base);
    limited(k, tuple('10.0.0.2', 40001), { [reason]: at(share) });
    limited(k, tuple('10.0.0.3', 40002), { [reason]: share * 0.9 });
    k.expect({ ...base, ...ident('10.0.0.2'), reason }, share);
    cases.push([name, k]);
  }
  {
    // cwnd-limited with loss: the loss ratio at the threshold; near miss: 90 % of it; a flow as lossy but
    // held by the cwnd less than the threshold stays silent too.
    const k = new Case(base);
    const segs = 1000; // data segments per second
    const flows: Array<[string, number, number]> = [
      ['10.0.0.2', at(t.lossRatio), at(t.cwndLimitedShare)],
      ['10.0.0.3', t.lossRatio * 0.9, at(t.cwndLimitedShare)],
      ['10.0.0.4', at(t.lossRatio), t.cwndLimitedShare * 0.9],
    ];
    flows.forEach(([peer, loss, cwnd], i) => {
      const f = tuple(peer, 40001 + i);
      limited(k, f, { cwnd });
      k.add('flowpath_flow_data_segments_out_total', f, counter(segs));
      k.add('flowpath_flow_retransmitted_packets_total', f, counter(segs * loss * 1.25));
      k.add('flowpath_flow_dsack_dups_total', f, counter(segs * loss * 0.25));
    });
    k.expect({ ...base, ...ident('10.0.0.2') }, t.lossRatio);
    cases.push(['FlowpathFlowCwndLimitedWithLoss', k]);
  }
  {
    const k = new Case(base);
    const rtx = t.spuriousRetransmitsMinPerSecond * 2;
    const segs = (rtx / t.spuriousRetransmitsMinRatio) * (1 - 1e-9); // data segments per second: retransmits at the minimum ratio
    const flows: Array<[string, number, number, number]> = [
      ['10.0.0.2', rtx, at(t.spuriousRetransmitShare), segs],
      ['10.0.0.3', rtx, t.spuriousRetransmitShare * 0.9, segs],
      // All spurious, but fewer retransmits per second than the minimum.
      ['10.0.0.4', t.spuriousRetransmitsMinPerSecond * 0.9, 1, segs],
      // All spurious, enough per second, but a small share of the data segments (tail loss probes).
      ['10.0.0.5', rtx, 1, segs / 0.9],
    ];
    flows.forEach(([peer, r, share, data], i) => {
      const f = tuple(peer, 40001 + i);
      k.add('flowpath_flow_retransmitted_packets_total', f, counter(r));
      k.add('flowpath_flow_dsack_dups_total', f, counter(r * share));
      k.add('flowpath_flow_data_segments_out_total', f, counter(data));
    });
    k.expect({ ...base, ...ident('10.0.0.2') }, t.spuriousRetransmitShare);
    cases.push(['FlowpathFlowSpuriousRetransmits', k]);
  }
  {
    // notsent backlog on a flow whose device is the physical NIC, at half the link speed.
    const k = new Case(base);
    const speed = 1.25e9;
    const sendQ = Math.max(t.notsentMinBytes / t.notsentShareOfSendQueue, t.notsentMinBytes * 2);
    const flows: Array<[string, number]> = [
      ['10.0.0.2', at(t.notsentShareOfSendQueue)],
      ['10.0.0.3', t.notsentShareOfSendQueue * 0.9],
    ];
    flows.forEach(([peer, share], i) => {
      const f = tuple(peer, 40001 + i);
      k.add('flowpath_flow_info', { ...f, cc: 'cubic', local_device: 'eth0' }, constant(1));
      k.add('flowpath_flow_acked_bytes_total', f, counter(speed * 0.25));
      k.add('flowpath_flow_send_queue_bytes', f, gauge(sendQ, 0));
      k.add('flowpath_flow_notsent_bytes', f, gauge(sendQ * share, 0));
    });
    k.add('flowpath_nic_info', { device: 'eth0', class: 'physical', kind: '', driver: 'ice' }, constant(1));
    k.add('flowpath_nic_speed_bytes_per_second', { device: 'eth0' }, constant(speed));
    k.expect({ ...base, ...ident('10.0.0.2') }, t.notsentShareOfSendQueue);
    k.expectRecorded(n.identityLinkUtilisation, { ...base, ...ident('10.0.0.3'), local_device: 'eth0' }, 0.25);
    cases.push(['FlowpathFlowNotsentBacklog', k]);
  }

  // ------------------------------------------------------------------ NIC, qdisc
  {
    const k = new Case(base);
    const pps = 1000;
    for (const [dev, ratio] of [
      ['eth0', at(t.nicRxOverflowRatio)],
      ['eth1', t.nicRxOverflowRatio * 0.9],
    ] as const) {
      k.add('flowpath_nic_rx_packets_total', { device: dev }, counter(pps * (1 - ratio)));
      k.add('flowpath_nic_rx_missed_errors_total', { device: dev }, counter(pps * ratio * 0.5));
      k.add('flowpath_nic_rx_fifo_errors_total', { device: dev }, counter(pps * ratio * 0.25));
      k.add('flowpath_nic_rx_over_errors_total', { device: dev }, counter(pps * ratio * 0.25));
    }
    k.expect({ ...base, device: 'eth0' }, t.nicRxOverflowRatio);
    cases.push(['FlowpathNicRxOverflow', k]);
  }
  {
    const k = new Case(base);
    const v = t.nicTxStopsPerSecond;
    k.add('flowpath_nic_queue_tx_stop_total', { device: 'eth0', queue: '0' }, counter(at(v * 0.5)));
    k.add('flowpath_nic_queue_tx_stop_total', { device: 'eth0', queue: '1' }, counter(at(v * 0.5)));
    k.add('flowpath_nic_queue_tx_stop_total', { device: 'eth1', queue: '0' }, counter(v * 0.9));
    // A driver without queue statistics: requeues of its root qdisc count instead.
    k.add('flowpath_qdisc_requeues_total', { device: 'eth2', kind: 'mq', handle: '0:', parent: 'root' }, counter(at(v)));
    k.add('flowpath_qdisc_requeues_total', { device: 'eth3', kind: 'mq', handle: '0:', parent: 'root' }, counter(v * 0.9));
    k.expect({ ...base, device: 'eth0' }, v);
    k.expect({ ...base, device: 'eth2' }, v);
    cases.push(['FlowpathNicTxQueueStopped', k]);
  }
  {
    const k = new Case(base);
    const min = c.offloadMinSpeedBytesPerSecond;
    const feature = c.offloadFeatures.split('|')[0];
    k.add('flowpath_nic_speed_bytes_per_second', { device: 'eth0' }, constant(min));
    k.add('flowpath_nic_offload_active', { device: 'eth0', feature }, gauge(0, 1));
    // The same feature off on a link just below the minimum speed, and on at the minimum speed.
    k.add('flowpath_nic_speed_bytes_per_second', { device: 'eth1' }, constant(min * 0.9));
    k.add('flowpath_nic_offload_active', { device: 'eth1', feature }, constant(0));
    k.add('flowpath_nic_speed_bytes_per_second', { device: 'eth2' }, constant(min));
    k.add('flowpath_nic_offload_active', { device: 'eth2', feature }, constant(1));
    k.expect({ ...base, device: 'eth0', feature }, 0);
    cases.push(['FlowpathNicOffloadDisabled', k]);
  }
  {
    // eth0 renegotiates from 25 to 10 Gbit/s at 30 m and back at 50 m; eth1 stays at 25 Gbit/s.
    const k = new Case(base);
    k.add('flowpath_nic_speed_bytes_per_second', { device: 'eth0' }, `3125000000x30 1250000000x20 3125000000x${TOTAL - ON}`);
    k.add('flowpath_nic_speed_bytes_per_second', { device: 'eth1' }, constant(3.125e9));
    k.expect({ ...base, device: 'eth0' }, 1e10);
    cases.push(['FlowpathNicLinkSpeedBelowExpected', k]);
  }
  {
    const k = new Case(base);
    const v = t.qdiscDropsPerSecond;
    k.add('flowpath_qdisc_drops_total', { device: 'eth0', kind: 'fq', handle: '8001:', parent: 'root' }, counter(at(v)));
    k.add('flowpath_qdisc_drops_total', { device: 'eth1', kind: 'mq', handle: '0:', parent: 'root' }, counter(v * 0.9));
    // A child of eth1's mq: already inside the root's count, must not be added again.
    k.add('flowpath_qdisc_drops_total', { device: 'eth1', kind: 'fq', handle: '8002:', parent: '0:1' }, counter(v * 0.9));
    k.expect({ ...base, device: 'eth0' }, v);
    cases.push(['FlowpathQdiscDrops', k]);
  }

  // ------------------------------------------------------------------ CPU
  for (const [name, metric, v] of [
    ['FlowpathSoftnetBacklogDrops', 'flowpath_softnet_dropped_packets_total', t.softnetDropsPerSecond],
    ['FlowpathSoftnetTimeSqueeze', 'flowpath_softnet_time_squeeze_total', t.timeSqueezesPerSecond],
  ] as const) {
    const k = new Case(base);
    k.add(metric, { cpu: '1' }, counter(at(v)));
    k.add(metric, { cpu: '2' }, counter(v * 0.9));
    k.expect({ ...base, cpu: '1' }, v);
    cases.push([name, k]);
  }
  {
    // CPU 1 at the threshold serving RX queue 0 of eth0 without RPS: fires. CPU 2 just below it (queue
    // 1, no RPS) and CPU 3 saturated but with RPS on its queue 2: silent.
    const k = new Case(base);
    const sh = t.softirqCpuShare;
    for (const [cpu, share, queue, rps] of [
      ['1', at(sh), '0', 0],
      ['2', sh * 0.9, '1', 0],
      ['3', Math.min(1, sh * 1.05), '2', 4],
    ] as const) {
      k.add('flowpath_cpu_seconds_total', { cpu, mode: 'softirq' }, counter(share));
      k.add('flowpath_cpu_seconds_total', { cpu, mode: 'idle' }, counter(1 - share));
      k.add('flowpath_irq_rx_queue_cpu_info', { device: 'eth0', queue, irq: String(40 + Number(queue)), cpu }, constant(1));
      k.add('flowpath_rps_cpus', { device: 'eth0', queue }, constant(rps));
    }
    k.expect({ ...base, cpu: '1', device: 'eth0', queue: '0' }, sh);
    cases.push(['FlowpathSoftirqCpuSaturatedWithoutRps', k]);
  }

  // ------------------------------------------------------------------ OVS
  {
    const k = new Case(base);
    const lost = Math.max(t.ovsLostPerSecond * 1.5, 1 / 60);
    k.add('flowpath_ovs_datapath_lookups_lost_total', { datapath: 'system@ovs-system', source: 'genl' }, counter(lost));
    // The same datapath read over unixctl too: the counters are not added twice.
    k.add('flowpath_ovs_datapath_lookups_lost_total', { datapath: 'system@ovs-system', source: 'unixctl' }, counter(lost));
    k.add('flowpath_ovs_datapath_lookups_lost_total', { datapath: 'netdev@ovs-netdev', source: 'unixctl' }, counter(t.ovsLostPerSecond));
    k.expect({ ...base, datapath: 'system@ovs-system' }, lost);
    cases.push(['FlowpathOvsDatapathLost', k]);
  }
  {
    const k = new Case(base);
    const misses = t.ovsMissesMinPerSecond;
    for (const [dp, missed, ratio] of [
      ['system@ovs-system', at(misses), at(t.ovsMissRatio)],
      ['netdev@ovs-netdev', misses, t.ovsMissRatio * 0.9],
      ['system@other', misses * 0.9, Math.min(1, t.ovsMissRatio * 2)],
    ] as const) {
      k.add('flowpath_ovs_datapath_lookups_missed_total', { datapath: dp, source: 'genl' }, counter(missed));
      k.add('flowpath_ovs_datapath_lookups_hit_total', { datapath: dp, source: 'genl' }, counter((missed * (1 - ratio)) / ratio));
    }
    k.expect({ ...base, datapath: 'system@ovs-system' }, t.ovsMissRatio);
    cases.push(['FlowpathOvsMissRate', k]);
  }
  {
    const k = new Case(base);
    const limit = 200000;
    k.add('flowpath_ovs_upcall_flow_limit', { datapath: 'system@ovs-system' }, constant(limit));
    k.add('flowpath_ovs_upcall_flows', { datapath: 'system@ovs-system' }, gauge(limit * t.ovsFlowLimitShare, 1000));
    k.add('flowpath_ovs_upcall_flow_limit', { datapath: 'netdev@ovs-netdev' }, constant(limit));
    k.add('flowpath_ovs_upcall_flows', { datapath: 'netdev@ovs-netdev' }, constant(limit * t.ovsFlowLimitShare * 0.9));
    k.expect({ ...base, datapath: 'system@ovs-system' }, t.ovsFlowLimitShare);
    cases.push(['FlowpathOvsUpcallFlowLimit', k]);
  }

  // ------------------------------------------------------------------ exporter
  {
    // ovs fails in every scrape while the condition holds; nic fails once every 7 minutes (some rate
    // windows see no failure, so the alert never stays pending long enough).
    const k = new Case(base);
    k.add('flowpath_scrape_collector_success', { collector: 'ovs' }, gauge(0, 1));
    k.add('flowpath_scrape_collector_success', { collector: 'nic' }, Array.from({ length: TOTAL + 1 }, (_, i) => (i % 7 === 6 ? '0' : '1')).join(' '));
    k.expect({ ...base, collector: 'ovs' }, 0);
    cases.push(['FlowpathCollectorFailing', k]);
  }
  {
    // node-a is down while the condition holds; node-b is down for less than the alert's `for:` at 45 m.
    const k = new Case(sel);
    k.add('up', { instance }, gauge(0, 1));
    k.add('up', { instance: 'node-b:9632' }, `1x41 0x3 1x${TOTAL - 45}`);
    k.expect({ ...sel, instance }, 0);
    cases.push(['FlowpathExporterDown', k]);
  }

  const files = new Map<string, TestFile>();
  const fileOf = (name: AlertName) => {
    const scope = defs.get(name)?.scope;
    if (scope === 'flow') return 'flows';
    if (scope === 'exporter') return 'exporter';
    if (/Ovs/.test(name)) return 'ovs';
    if (/Soft/.test(name)) return 'cpu';
    return 'nic';
  };
  for (const [name, k] of cases) {
    const d = defs.get(name);
    if (!d) throw new Error(`no alert ${name}`);
    const a = c.alerts[name];
    const exp = (labels: Record<string, string>, value: number): ExpAlert => ({
      exp_labels: { ...labels, severity: a.severity, scope: d.scope },
      exp_annotations: {
        summary: d.summary,
        description: renderTemplate(d.description, labels, value),
        runbook_url: `${c.runbookUrlBase}${name}.md`,
      },
    });
    const f = fileOf(name);
    if (!files.has(f)) files.set(f, { rule_files: ['../rules.yml', '../alerts.yml'], evaluation_interval: '1m', tests: [] });
    files.get(f)!.tests.push({
      name,
      interval: '1m',
      input_series: k.series,
      alert_rule_test: [
        { eval_time: FIRE_AT, alertname: name, exp_alerts: k.expected.map((e) => exp(e.labels, e.value)) },
        { eval_time: GONE_AT, alertname: name, exp_alerts: [] },
      ],
      ...(k.exprs.length ? { promql_expr_test: k.exprs } : {}),
    });
  }
  files.set('regression', regressionTests(c, base));
  // Every alert must have a test.
  const tested = new Set(cases.map(([n]) => n as string).concat('FlowpathFlowPacingLimitedRegression'));
  for (const d of defs.values()) if (!tested.has(d.name)) throw new Error(`alert ${d.name} has no unit test`);
  return files;
}

/**
 * The regression alert over a week of 5-minute samples of the recorded pacing-limited share: it fires
 * for a flow identity whose share rose clearly above both baselines, and ignores one that was always
 * pacing-limited, one without a baseline, a near miss, and one whose week-ago baseline was as high.
 */
function regressionTests(c: MixinConfig, base: Record<string, string>): TestFile {
  const t = c.thresholds;
  const name: AlertName = 'FlowpathFlowPacingLimitedRegression';
  const d = alertDefs(c).find((x) => x.name === name)!;
  const a = c.alerts[name];
  const rec = recordNames(c).identityPacingShare;
  const offsets = t.pacingRegressionOffsets.map(durationMinutes);
  const longest = Math.max(...offsets);
  const step = 5;
  const evalStep = 15;
  const fireAt = longest + 120; // minutes
  const riseAt = fireAt - 60;
  const goneAt = fireAt + 60;
  const total = goneAt + 30;
  const high = Math.min(1, t.pacingLimitedShare + 0.1);
  const low = Math.max(0, high - t.pacingRegressionIncrease - 0.1);
  const near = high - t.pacingRegressionIncrease * 0.9;
  /** Values every `step` minutes from a function of the minute; undefined = no sample. */
  const values = (f: (m: number) => number | undefined) => {
    const out: string[] = [];
    for (let m = 0; m <= total; m += step) {
      const v = f(m);
      out.push(v === undefined ? '_' : num(v));
    }
    return out.join(' ');
  };
  const rise = (before: number) => (m: number) => (m >= riseAt && m < goneAt ? high : before);
  const id = (peer: string) => ({ ...base, peer_ip: peer, service_port: '5201', role: 'client' });
  const input: Series[] = [
    { series: seriesName(rec, id('10.0.0.2')), values: values(rise(low)) },
    // Always pacing-limited: no rise.
    { series: seriesName(rec, id('10.0.0.3')), values: values(() => high) },
    // New flow identity: no baseline.
    { series: seriesName(rec, id('10.0.0.4')), values: values((m) => (m >= riseAt - 60 ? high : undefined)) },
    // Near miss: the rise is 90 % of the required increase.
    { series: seriesName(rec, id('10.0.0.5')), values: values(rise(near)) },
    // High at the same time a week (the longest offset) earlier: the higher baseline counts.
    { series: seriesName(rec, id('10.0.0.6')), values: values((m) => (Math.abs(m - (fireAt - longest)) <= 90 ? high : rise(low)(m))) },
  ];
  const labels = id('10.0.0.2');
  const value = high - low;
  return {
    rule_files: ['../rules.yml', '../alerts.yml'],
    evaluation_interval: `${evalStep}m`,
    tests: [
      {
        name,
        interval: `${step}m`,
        input_series: input,
        alert_rule_test: [
          {
            eval_time: `${fireAt}m`,
            alertname: name,
            exp_alerts: [
              {
                exp_labels: { ...labels, severity: a.severity, scope: d.scope },
                exp_annotations: { summary: d.summary, description: renderTemplate(d.description, labels, value), runbook_url: `${c.runbookUrlBase}${name}.md` },
              },
            ],
          },
          { eval_time: `${goneAt + 15}m`, alertname: name, exp_alerts: [] },
        ],
      },
    ],
  };
}

export function durationMinutes(d: string): number {
  const unit: Record<string, number> = { ms: 1 / 60000, s: 1 / 60, m: 1, h: 60, d: 1440, w: 10080, y: 525600 };
  let total = 0;
  for (const m of d.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)) total += Number(m[1]) * unit[m[2]];
  return total;
}
