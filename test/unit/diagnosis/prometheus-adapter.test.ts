// `flowpath diagnose --prometheus`: the adapter from Prometheus range vectors to the diagnosis inputs,
// on a fake Prometheus API holding the series of both ends of one flow.

import { runPrometheusDiagnose, increase, parseAt, PromApi, RangeSeries, tcpExtMetricNames } from '../../../src/diagnosis/prometheus';
import { parseArgs } from '../../../src/core/flags';
import { ALL_COLLECTORS } from '../../../src/collectors';
import { allFlags } from '../../../src/exporter';
import { COMMAND_FLAGS, flowFlag } from '../../../src/diagnosis/flags';
import { PROMETHEUS_FLAGS } from '../../../src/diagnosis/prometheus';

const T = 1_800_000_000; // --at
const W = 60; // window
const STEP = 5;

type Labels = Record<string, string>;
/** A series sampled every STEP s over the window, value = f(seconds since the window start). */
function series(name: string, labels: Labels, f: (s: number) => number): RangeSeries {
  const values: Array<[number, number]> = [];
  for (let s = 0; s <= W; s += STEP) values.push([T - W + s, f(s)]);
  return { metric: { __name__: name, job: 'flowpath', ...labels }, values };
}

const A = { instance: 'a:9632' };
const B = { instance: 'b:9632' };
const tx = { local_ip: '1.1.1.3', local_port: '40000', peer_ip: '1.1.1.2', peer_port: '5201', role: 'client', service_port: '5201' };
const rxKey = { local_ip: '1.1.1.2', local_port: '5201', peer_ip: '1.1.1.3', peer_port: '40000', role: 'server', service_port: '5201' };

function db(opts: { senderSampled: boolean; receiver: boolean }): RangeSeries[] {
  const rate = 12.5e6; // 100 Mbit/s
  const out: RangeSeries[] = [
    series('flowpath_flow_info', { ...A, ...tx, cc: 'cubic', local_device: 'a-int' }, () => 1),
    series('flowpath_flow_acked_bytes_total', { ...A, ...tx }, (s) => 1e9 + rate * s),
    series('flowpath_flow_sent_bytes_total', { ...A, ...tx }, (s) => 1e9 + rate * s),
    series('flowpath_flow_received_bytes_total', { ...A, ...tx }, () => 100),
    series('flowpath_flow_retransmitted_bytes_total', { ...A, ...tx }, () => 0),
    series('flowpath_flow_retransmitted_packets_total', { ...A, ...tx }, () => 0),
    series('flowpath_flow_dsack_dups_total', { ...A, ...tx }, () => 0),
    series('flowpath_flow_busy_seconds_total', { ...A, ...tx }, (s) => 100 + s),
    series('flowpath_flow_rwnd_limited_seconds_total', { ...A, ...tx }, () => 0),
    series('flowpath_flow_sndbuf_limited_seconds_total', { ...A, ...tx }, () => 0),
    series('flowpath_flow_rtt_seconds', { ...A, ...tx }, () => 0.0002),
    series('flowpath_flow_min_rtt_seconds', { ...A, ...tx }, () => 0.0001),
    series('flowpath_flow_cwnd_packets', { ...A, ...tx }, () => 40),
    series('flowpath_flow_mss_bytes', { ...A, ...tx }, () => 1448),
    series('flowpath_flow_notsent_bytes', { ...A, ...tx }, () => 2e6),
    series('flowpath_flow_pacing_rate_bytes_per_second', { ...A, ...tx }, () => rate),
    series('flowpath_flow_max_pacing_rate_bytes_per_second', { ...A, ...tx }, () => rate),
    series('flowpath_flow_delivery_rate_bytes_per_second', { ...A, ...tx }, () => rate),
    // node A
    series('flowpath_nic_info', { ...A, device: 'a-int', class: 'ovs-internal', kind: 'tun', driver: '' }, () => 1),
    series('flowpath_nic_tx_bytes_total', { ...A, device: 'a-int' }, (s) => rate * s),
    series('flowpath_nic_tx_dropped_total', { ...A, device: 'a-int' }, () => 0),
    series('flowpath_ovs_internal_port_info', { ...A, device: 'a-int', bridge: 'br-a', datapath: 'netdev@ovs-netdev' }, () => 1),
    series('flowpath_cpu_seconds_total', { ...A, cpu: '0', mode: 'softirq' }, (s) => s * 0.1),
    series('flowpath_cpu_seconds_total', { ...A, cpu: '0', mode: 'idle' }, (s) => s * 0.9),
    series('flowpath_netstat_tcpext_rcvq_drop_total', { ...A }, () => 0),
    series('flowpath_sysctl_value', { ...A, name: 'net.ipv4.tcp_wmem', index: '0' }, () => 4096),
    series('flowpath_sysctl_value', { ...A, name: 'net.ipv4.tcp_wmem', index: '1' }, () => 16384),
    series('flowpath_sysctl_value', { ...A, name: 'net.ipv4.tcp_wmem', index: '2' }, () => 4194304),
    series('flowpath_scrape_collector_success', { ...A, collector: 'flows' }, () => 1),
  ];
  if (opts.senderSampled) {
    for (const [reason, share] of [['pacing_capped', 0.97], ['cwnd', 0.02], ['idle', 0.01]] as const) {
      out.push(series('flowpath_flow_limited_seconds_total', { ...A, ...tx, reason }, (s) => 50 + s * share));
    }
  }
  if (opts.receiver) {
    out.push(
      series('flowpath_flow_info', { ...B, ...rxKey, cc: 'cubic', local_device: 'b-int' }, () => 1),
      series('flowpath_flow_acked_bytes_total', { ...B, ...rxKey }, () => 100),
      series('flowpath_flow_received_bytes_total', { ...B, ...rxKey }, (s) => 1e9 + rate * s),
      series('flowpath_flow_skmem_rmem_alloc_bytes', { ...B, ...rxKey }, () => 1000),
      series('flowpath_flow_skmem_rcvbuf_bytes', { ...B, ...rxKey }, () => 131072),
      series('flowpath_nic_info', { ...B, device: 'b-int', class: 'ovs-internal', kind: 'tun', driver: '' }, () => 1),
      series('flowpath_nic_rx_dropped_total', { ...B, device: 'b-int' }, () => 0),
      series('flowpath_netstat_tcpext_rcvq_drop_total', { ...B }, (s) => 7 + s),
      series('flowpath_softnet_processed_packets_total', { ...B, cpu: '1' }, (s) => s * 1000),
      series('flowpath_softnet_dropped_packets_total', { ...B, cpu: '1' }, () => 0),
      series('flowpath_softirqs_total', { ...B, cpu: '1', vector: 'NET_RX' }, (s) => s * 100),
      series('flowpath_cpu_seconds_total', { ...B, cpu: '1', mode: 'softirq' }, (s) => s * 0.2),
      series('flowpath_cpu_seconds_total', { ...B, cpu: '1', mode: 'idle' }, (s) => s * 0.8),
    );
  }
  return out;
}

/** Evaluates just the selectors the adapter sends: name (or name regex) + equality matchers. */
function fakeApi(rows: RangeSeries[], queries: string[] = []): PromApi {
  return {
    async help() {
      return new Map(ALL_COLLECTORS.flatMap((d) => d.metrics.map((m) => [m.name, m.help] as [string, string])));
    },
    async matrix(q, at) {
      queries.push(q);
      expect(at).toBe(T);
      const m = /^(?:([a-z_:]+))?\{(.*)\}\[(\d+)s\]$/.exec(q);
      if (!m) throw new Error(`unexpected query ${q}`);
      const want: Array<[string, string, boolean]> = [];
      if (m[1]) want.push(['__name__', m[1], false]);
      for (const x of m[2].matchAll(/([a-z_]+)(=~|=)"((?:[^"\\]|\\.)*)"/g)) want.push([x[1], x[3], x[2] === '=~']);
      return rows.filter((r) => want.every(([k, v, re]) => (re ? new RegExp(`^(?:${v})$`).test(r.metric[k] ?? '') : r.metric[k] === v)));
    },
  };
}

async function run(argv: string[], api: PromApi) {
  const args = parseArgs([...allFlags(), ...COMMAND_FLAGS, ...PROMETHEUS_FLAGS], argv);
  let stdout = '';
  let stderr = '';
  const code = await runPrometheusDiagnose(
    args.config,
    { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) },
    { flow: args.config.get(flowFlag), json: argv.includes('--json'), all: false },
    { api, now: () => T },
  );
  return { code, stdout, stderr };
}

describe('diagnose --prometheus', () => {
  it('rebuilds the verdict of a pacing-capped flow and joins the receiver by the reversed 4-tuple', async () => {
    const queries: string[] = [];
    const r = await run(['--prometheus=http://prom:9090', '--window=60s', '--json', '--flow=dport = 5201'], fakeApi(db({ senderSampled: true, receiver: true }), queries));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.id).toBe('1.1.1.3:40000-1.1.1.2:5201');
    expect(j.sender_instance).toBe('a:9632');
    expect(j.receiver_instance).toBe('b:9632');
    expect(j.top.rule).toBe('pacing-capped');
    expect(j.sender.flow.goodputBps).toBeCloseTo(12.5e6, -3);
    expect(j.sender.flow.reasons.pacing_capped / j.sender.flow.seconds).toBeCloseTo(0.97, 2);
    expect(j.sender.nodeSummary.path).toEqual({ ipDevice: 'a-int', nicDevice: undefined, viaOvs: true });
    expect(j.sender.nodeSummary.sysctl['net.ipv4.tcp_wmem']).toBe('4096 16384 4194304');
    expect(j.receiver.flow.role).toBe('receiver');
    expect(j.receiver.nodeSummary.rxCpu.cpu).toBe(1);
    expect(j.receiver.nodeSummary.tcpExt.TCPRcvQDrop).toBe(W);
    expect(j.receiver.nodeSummary.rxCpu.softirqShare).toBeCloseTo(0.2, 5);
    expect(j.notes.join('\n')).toMatch(/uplink \(NIC hop\) is unknown/);
    expect(queries.every((q) => q.includes('job="flowpath"'))).toBe(true);
  });

  it('says what it cannot reconstruct: an unsampled flow has only the chronographs, a missing receiver has no data', async () => {
    const r = await run(['--prometheus=http://prom:9090', '--window=60s'], fakeApi(db({ senderSampled: false, receiver: false })));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('1.1.1.3:40000 → 1.1.1.2:5201');
    expect(r.stdout).toMatch(/not sampled by the exporter's diagnosis/);
    expect(r.stdout).toMatch(/receiver's end \(1\.1\.1\.2:5201-1\.1\.1\.3:40000\) is not in the series/);
    expect(r.stdout).toMatch(/RECEIVER \(not in Prometheus\)/);
  });

  it('no matching flow exits 1; bad --at and URL are usage errors', async () => {
    const r = await run(['--prometheus=http://prom:9090', '--flow=dport = 9999'], fakeApi(db({ senderSampled: true, receiver: true })));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no flow matching "dport = 9999"/);
    await expect(run(['--prometheus=nope'], fakeApi([]))).rejects.toThrow(/not a URL/);
    expect(() => parseAt('yesterday')).toThrow(/--at/);
    expect(parseAt('2026-12-02T20:00:00Z')).toBe(Date.parse('2026-12-02T20:00:00Z') / 1000);
    expect(parseAt('1800000000')).toBe(1800000000);
  });

  it('counter increase counts a reset as a restart', () => {
    expect(increase({ metric: {}, values: [[0, 10], [1, 15], [2, 3], [3, 5]] })).toBe(5 + 3 + 2);
    expect(increase({ metric: {}, values: [[0, 10]] })).toBeUndefined();
  });

  it('maps TcpExt names to the netstat metrics by their help text', async () => {
    const m = tcpExtMetricNames(await fakeApi([]).help());
    expect(m.get('TCPRcvQDrop')).toBe('flowpath_netstat_tcpext_rcvq_drop_total');
    expect(m.get('TCPBacklogDrop')).toBe('flowpath_netstat_tcpext_backlog_drop_total');
  });
});
