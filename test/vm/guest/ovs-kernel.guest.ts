// Inside the test guest (test/vm/guest.test.ts runs it): the seed's real datapath. Two node namespaces,
// each with its own ovs-vswitchd on the KERNEL datapath (openvswitch.ko), the node address on the
// bridge's internal port br-int, and a veth wire between the bridges' uplinks (eth1).
// * the ovs collector's genetlink path against `ovs-dpctl show -s` (genetlink, no daemon) and
//   `ovs-appctl dpctl/show -s` (through ovs-vswitchd) during an iperf3 flow (bracketed) and idle (equal);
// * br-int classified as an OVS internal port by default (nic, qdisc collectors);
// * the flows collector labels the flow with local_device="br-int";
// * `flowpath diagnose --peer` names the internal ports and the kernel datapath on the hops.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BRIDGE, Exporter, SeedTopology, Series, UPLINK, nsSh, one, parseExposition, pick, record, sleep, TIMEOUT, progress } from './support';

interface DpctlPort {
  name: string;
  type: string;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
  rxBytes: number;
  txBytes: number;
}
interface DpctlView {
  name: string;
  hit: number;
  missed: number;
  lost: number;
  flows: number;
  maskHit: number;
  masks: number;
  cacheHit: number;
  cacheSize: number;
  ports: Map<string, DpctlPort>;
}

/** `dpctl/show -s` text of the kernel datapath, parsed with this test's own regexes. */
function parseDpctl(text: string): DpctlView {
  const m =
    /^(system@\S+):\n\s+lookups: hit:(\d+) missed:(\d+) lost:(\d+)\n\s+flows: (\d+)\n\s+masks: hit:(\d+) total:(\d+) hit\/pkt:[\d.]+\n\s+cache: hit:(\d+) hit-rate:[\d.]+%\n\s+caches:\n\s+masks-cache: size:(\d+)/m.exec(
      text,
    );
  if (!m) throw new Error(`unexpected dpctl show output:\n${text}`);
  const ports = new Map<string, DpctlPort>();
  const re =
    /port \d+: (\S+)(?: \((\w+)\))?\n\s+RX packets:(\d+) errors:(\d+) dropped:(\d+)[^\n]*\n\s+TX packets:(\d+) errors:(\d+) dropped:(\d+)[^\n]*\n[^\n]*\n\s+RX bytes:(\d+)[^\n]*?TX bytes:(\d+)/g;
  for (const p of text.matchAll(re)) {
    ports.set(p[1], {
      name: p[1],
      type: p[2] ?? 'system',
      rxPackets: +p[3],
      rxErrors: +p[4],
      rxDropped: +p[5],
      txPackets: +p[6],
      txErrors: +p[7],
      txDropped: +p[8],
      rxBytes: +p[9],
      txBytes: +p[10],
    });
  }
  return { name: m[1], hit: +m[2], missed: +m[3], lost: +m[4], flows: +m[5], maskHit: +m[6], masks: +m[7], cacheHit: +m[8], cacheSize: +m[9], ports };
}

const PORT_FIELDS: Array<[keyof DpctlPort, string]> = [
  ['rxPackets', 'rx_packets'],
  ['txPackets', 'tx_packets'],
  ['rxBytes', 'rx_bytes'],
  ['txBytes', 'tx_bytes'],
  ['rxErrors', 'rx_errors'],
  ['txErrors', 'tx_errors'],
  ['rxDropped', 'rx_dropped'],
  ['txDropped', 'tx_dropped'],
];

/** Every counter of the exporter's genl series lies in [lo, hi] (equal when lo and hi are the same read). */
function compare(lo: DpctlView, s: Series, hi: DpctlView, exact: boolean): number {
  const dp = { datapath: lo.name, source: 'genl' };
  let n = 0;
  const chk = (what: string, a: number, v: number, b: number) => {
    if (exact) assert.equal(v, a, `${what}: exporter ${v}, dpctl ${a}`);
    else assert.ok(a <= v && v <= b, `${what}: exporter ${v} not within dpctl [${a}, ${b}]`);
    n++;
  };
  chk('lookups hit', lo.hit, one(s, 'flowpath_ovs_datapath_lookups_hit_total', dp), hi.hit);
  chk('lookups missed', lo.missed, one(s, 'flowpath_ovs_datapath_lookups_missed_total', dp), hi.missed);
  chk('lookups lost', lo.lost, one(s, 'flowpath_ovs_datapath_lookups_lost_total', dp), hi.lost);
  chk('masks hit', lo.maskHit, one(s, 'flowpath_ovs_datapath_masks_hit_total', dp), hi.maskHit);
  chk('cache hit', lo.cacheHit, one(s, 'flowpath_ovs_datapath_cache_hit_total', dp), hi.cacheHit);
  if (exact) {
    chk('flows', lo.flows, one(s, 'flowpath_ovs_datapath_flows', dp), lo.flows);
    chk('masks', lo.masks, one(s, 'flowpath_ovs_datapath_masks', dp), lo.masks);
    const pkts = lo.hit + lo.missed;
    assert.equal(one(s, 'flowpath_ovs_datapath_masks_hit_per_packet', dp).toFixed(2), (lo.maskHit / pkts).toFixed(2));
    assert.equal(one(s, 'flowpath_ovs_datapath_cache_hit_ratio', dp).toFixed(4), (lo.cacheHit / pkts).toFixed(4));
  }
  chk('masks cache size', lo.cacheSize, one(s, 'flowpath_ovs_datapath_masks_cache_size', dp), hi.cacheSize);
  assert.equal(one(s, 'flowpath_ovs_ports', dp), lo.ports.size);
  for (const [name, p] of lo.ports) {
    const labels = { ...dp, port: name, type: p.type, internal: String(p.type === 'internal') };
    assert.equal(one(s, 'flowpath_ovs_port_stats_readable', labels), 1, `${name} readable`);
    for (const [field, metric] of PORT_FIELDS) {
      chk(`${name} ${field}`, p[field] as number, one(s, `flowpath_ovs_port_${metric}_total`, labels), hi.ports.get(name)![field] as number);
    }
  }
  return n;
}

const snapStart = (s: Series) => (s.get('flowpath_ovs_snapshot_timestamp_seconds') ?? 0) - (s.get('flowpath_ovs_refresh_duration_seconds') ?? 0);

async function scrapeUntil(e: Exporter, pred: (s: Series) => boolean, what: string, timeoutMs = 120000): Promise<{ text: string; s: Series }> {
  const end = Date.now() + timeoutMs;
  let text = '';
  for (;;) {
    text = await e.scrape();
    const s = parseExposition(text);
    if (pred(s)) return { text, s };
    if (Date.now() > end) {
      const lines = text.split('\n').filter((l) => /^flowpath_(ovs_up|ovs_genl_up|ovs_snap|scrape_collector_success)/.test(l));
      throw new Error(`timed out waiting for ${what}; last scrape:\n${lines.join('\n')}\nexporter log:\n${e.log()}`);
    }
    await sleep(200);
  }
}

describe('kernel OVS datapath: the seed topology (br-int internal ports, veth wire)', () => {
  const topo = new SeedTopology('ovsk', 'direct');
  let ea: Exporter;
  let eb: Exporter;
  // No diagnosis sampling in the exporters (diagnose samples on its own; the peer pins on request): TCG
  // CPU is scarce.
  const flags = ['--flows.watch=port = 5201', '--ovs.refresh-interval=250ms', '--ovs.timeout=20s', '--scrape.timeout=120s', '--diagnosis.top=0'];

  before(async () => {
    await topo.up();
    [ea, eb] = await Promise.all([topo.startExporter(topo.a, flags), topo.startExporter(topo.b, flags)]);
    await scrapeUntil(ea, (s) => s.get('flowpath_ovs_up') === 1 && s.get('flowpath_ovs_genl_up') === 1, 'flowpath_ovs_up and genl_up 1 in A');
  }, TIMEOUT.before);

  beforeEach((t) => progress(`test: ${t.name}`));

  after(async () => {
    await ea?.stop();
    await eb?.stop();
    await topo.stop();
  }, TIMEOUT.after);

  /** dpctl (genetlink) read, a snapshot that started after it, a second read. */
  async function bracket(read: () => string): Promise<{ lo: DpctlView; s: Series; text: string; hi: DpctlView }> {
    const lo = parseDpctl(read());
    const t1 = Date.now() / 1000;
    const { s, text } = await scrapeUntil(ea, (x) => x.get('flowpath_ovs_up') === 1 && snapStart(x) > t1, 'a snapshot after the dpctl read');
    const hi = parseDpctl(read());
    return { lo, s, text, hi };
  }

  it('genetlink datapath and vport counters agree with ovs-dpctl and ovs-appctl dpctl/show -s, during a flow and idle; br-int is the flow device', TIMEOUT.test, async () => {
    const dpctl = () => topo.dpctl(topo.a, 'show', '-s');
    const appctl = () => topo.appctl(topo.a, 'dpctl/show', '-s');
    const flow = await topo.iperf([]);
    let during = 0;
    let flowText = '';
    try {
      // Wait until the data connection moves bytes through the datapath.
      await scrapeUntil(ea, (s) => pick(s, 'flowpath_flow_acked_bytes_total', { peer_port: '5201' }).some((x) => x.value > 1_000_000), 'the iperf3 flow in flowpath_flow_acked_bytes_total');
      for (const read of [dpctl, appctl]) {
        const b = await bracket(read);
        during += compare(b.lo, b.s, b.hi, false);
        assert.ok(b.hi.hit > b.lo.hit, 'the flow moves packets through the datapath between the two reads');
        flowText = b.text;
      }
    } finally {
      await flow.stop();
    }
    assert.ok(during > 40, `compared ${during} values`);

    // The flows collector: the flow to B:5201 sits on br-int (the OVS internal port holding A's address).
    const s = parseExposition(flowText);
    const infos = pick(s, 'flowpath_flow_info', { peer_ip: topo.b.ip, peer_port: '5201' });
    assert.ok(infos.length >= 2, `iperf3's control and data connections, got ${infos.map((x) => x.key).join(', ')}`);
    for (const f of infos) assert.equal(f.labels.local_device, BRIDGE, f.key);

    // Idle: nothing moves between the two reads, so every value must be equal, gauges included.
    let idle: Awaited<ReturnType<typeof bracket>> | null = null;
    for (let i = 0; i < 20 && !idle; i++) {
      const b = await bracket(dpctl);
      if (JSON.stringify({ ...b.lo, ports: [...b.lo.ports] }) === JSON.stringify({ ...b.hi, ports: [...b.hi.ports] })) idle = b;
      else await sleep(500);
    }
    assert.ok(idle, 'the datapath never stayed idle for one bracket');
    const exact = compare(idle.lo, idle.s, idle.hi, true);
    const viaDaemon = parseDpctl(appctl());
    // ovs-vswitchd reads the same kernel datapath: the same numbers as genetlink when idle.
    assert.deepEqual({ hit: viaDaemon.hit, missed: viaDaemon.missed, lost: viaDaemon.lost }, { hit: idle.lo.hit, missed: idle.lo.missed, lost: idle.lo.lost });

    const v = idle.lo;
    const wire = v.ports.get(UPLINK)!;
    const brint = v.ports.get(BRIDGE)!;
    // Every byte the peer acknowledged went br-int -> datapath -> eth1 (plus headers). The kernel reports
    // an internal port's counters as its netdev sees them (the host's view): what the host sent into the
    // bridge is br-int's TX, unlike a system port, whose TX is what the datapath sent out of it.
    const acked = Math.max(...pick(s, 'flowpath_flow_acked_bytes_total', { peer_port: '5201' }).map((x) => x.value));
    assert.ok(wire.txBytes >= acked && brint.txBytes >= acked, `eth1 tx ${wire.txBytes}, br-int tx ${brint.txBytes}, acked ${acked}`);
    assert.ok(brint.rxBytes < acked / 10, `br-int rx ${brint.rxBytes} (the ACKs the host received)`);
    // The kernel datapath: few upcalls (one per new megaflow), none lost (ovs-vswitchd has handlers).
    assert.ok(v.missed > 0 && v.missed < 200, `missed ${v.missed}`);
    assert.equal(v.lost, 0);
    // Masks were probed during the flow; idle megaflows (and with them the masks) may already have been
    // revalidated away, so masks and flows can be 0 now.
    assert.ok(v.maskHit >= v.hit, `mask hits ${v.maskHit} >= hits ${v.hit}`);
    const st = idle.s;
    assert.equal(one(st, 'flowpath_ovs_internal_port_info', { device: BRIDGE, datapath: v.name }), 1);
    assert.equal(pick(st, 'flowpath_ovs_internal_port_info', { device: 'ovs-system' }).length, 0, 'the datapath device is not an internal port of a bridge');
    assert.equal(pick(st, 'flowpath_ovs_datapath_lookups_hit_total', { datapath: v.name, source: 'unixctl' }).length, 0, 'no double counting: genl only');
    record('ovs-kernel.jsonl', { case: 'dpctl', compared_during_flow: during, compared_idle: exact, acked_bytes: acked, hit: v.hit, missed: v.missed, lost: v.lost, flows: v.flows, masks: v.masks, mask_hit_per_pkt: +(v.maskHit / (v.hit + v.missed)).toFixed(2) });
  });

  it('br-int is selected by default as an OVS internal port; the wire veth and the datapath device are not', TIMEOUT.test, async () => {
    const s = parseExposition(await ea.scrape());
    const nic = pick(s, 'flowpath_nic_info', { device: BRIDGE });
    assert.equal(nic.length, 1, 'br-int in flowpath_nic_info');
    assert.equal(nic[0].labels.class, 'ovs-internal');
    assert.equal(nic[0].labels.kind, 'openvswitch');
    assert.equal(pick(s, 'flowpath_nic_info', { device: UPLINK }).length, 0);
    assert.equal(pick(s, 'flowpath_nic_info', { device: 'ovs-system' }).length, 0);
    assert.equal(one(s, 'flowpath_qdisc_info', { device: BRIDGE, kind: 'noqueue' }), 1);
    // The nic counters of br-int equal the kernel's (ip -s link) when idle.
    const ip = nsSh(topo.a.ns, 'ip', ['-s', '-j', 'link', 'show', 'dev', BRIDGE]);
    const st = (JSON.parse(ip) as Array<{ stats64: { rx: { packets: number }; tx: { packets: number } } }>)[0].stats64;
    const rx = one(s, 'flowpath_nic_rx_packets_total', { device: BRIDGE });
    assert.ok(Math.abs(rx - st.rx.packets) <= 20, `rx packets exporter ${rx} vs ip ${st.rx.packets}`);
  });

  it('flowpath diagnose --peer names the internal ports and the kernel datapath on the hops', TIMEOUT.test, async () => {
    const v = await topo.diagnoseFlow<{ peer_error: string | null; hops: Array<{ hop: string; status: string; where?: string }>; top: { hop: string } | null; findings: Array<{ rule: string; hop: string; status: string }> }>([], 4);
    assert.equal(v.peer_error, null);
    const where = Object.fromEntries(v.hops.map((h) => [h.hop, h.where]));
    assert.deepEqual(
      { qdisc: where['qdisc-tx'], ovsTx: where['ovs-tx'], nicTx: where['nic-tx'], nicRx: where['nic-rx'], ovsRx: where['ovs-rx'], internalRx: where['internal-rx'] },
      {
        qdisc: `${BRIDGE} (OVS internal port)`,
        ovsTx: 'system@ovs-system',
        nicTx: UPLINK,
        nicRx: UPLINK,
        ovsRx: 'system@ovs-system',
        internalRx: `${BRIDGE} (OVS internal port)`,
      },
    );
    for (const h of v.hops) assert.notEqual(h.status, 'n/a', `${h.hop} is on an OVS path`);
    // The kernel datapath is not the userspace one: no vswitchd-CPU finding may call it limiting.
    const limiting = v.findings.filter((f) => f.status === 'limiting');
    assert.deepEqual(limiting.filter((f) => f.rule.startsWith('ovs-')), []);
    record('ovs-kernel.jsonl', { case: 'diagnose', top: v.top?.hop ?? null, limiting: limiting.map((f) => `${f.hop}:${f.rule}`), where });
  });
});
