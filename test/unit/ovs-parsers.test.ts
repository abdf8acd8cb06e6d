import * as fs from 'fs';
import * as path from 'path';
import { parseDpctlShow } from '../../src/sources/ovs/parse-dpctl';
import { isInternalType, parseDpifShow } from '../../src/sources/ovs/parse-dpif';
import { parseUpcallShow } from '../../src/sources/ovs/parse-upcall';
import { parsePmdStats } from '../../src/sources/ovs/parse-pmd';
import { parseCoverageShow, parseReadCounter } from '../../src/sources/ovs/parse-coverage';
import { parseVersion } from '../../src/sources/ovs/parse-version';
import { candidateRundirs, parsePidFile } from '../../src/sources/ovs/discover';

const fx = (name: string) => fs.readFileSync(path.join(__dirname, '../fixtures/ovs', name), 'utf8');

describe('dpctl/show -s', () => {
  it('parses the OVS 3.1 userspace datapath capture, including ports glued to a stats error', () => {
    const [dp, ...more] = parseDpctlShow(fx('dpctl-show-s.netdev-3.1.txt'));
    expect(more).toHaveLength(0);
    expect(dp.name).toBe('netdev@ovs-netdev');
    expect(dp.type).toBe('netdev');
    expect([dp.hit, dp.missed, dp.lost, dp.flows]).toEqual([8204594, 50, 0, 4]);
    // The userspace datapath prints no masks/cache lines.
    expect(dp.maskHit).toBeUndefined();
    expect(dp.masks).toBeUndefined();
    expect(dp.cacheHit).toBeUndefined();
    expect(dp.caches).toEqual({});
    expect(dp.unparsed).toEqual([]);
    expect(dp.ports.map((p) => [p.portNo, p.name, p.type])).toEqual([
      [0, 'ovs-netdev', 'tap'],
      [1, 'br0', 'tap'],
      [2, 'w0', 'system'],
      [3, 'i0', 'tap'],
      [4, 'br1', 'tap'], // glued after ", could not retrieve stats (No such device)"
      [5, 'w1', 'system'],
      [6, 'i1', 'tap'],
      [7, 'vxlan_sys_4789', 'vxlan'], // glued too
    ]);
    const byName = new Map(dp.ports.map((p) => [p.name, p]));
    expect(byName.get('i0')!.stats).toBeUndefined();
    expect(byName.get('i0')!.statsError).toBe('could not retrieve stats (No such device)');
    expect(byName.get('i1')!.statsError).toBe('could not retrieve stats (No such device)');
    expect(byName.get('br1')!.statsError).toBeUndefined();
    expect(byName.get('br1')!.stats).toMatchObject({ rxPackets: 0, txPackets: 0, txDropped: 7895998 });
    expect(byName.get('w0')!.stats).toEqual({
      rxPackets: 4064686,
      rxErrors: 0,
      rxDropped: 0,
      rxOverruns: 0,
      rxFrame: 0,
      txPackets: 3985630,
      txErrors: 0,
      txDropped: 0,
      txAborted: 0,
      txCarrier: 0,
      collisions: 0,
      rxBytes: 284429056,
      txBytes: 467748852,
    });
    // "?" = not counted by that netdev: absent, never 0.
    const vx = byName.get('vxlan_sys_4789')!;
    expect(vx.options).toEqual({ packet_type: 'ptap' });
    expect(vx.stats).toEqual({ rxPackets: 0, txPackets: 0, rxBytes: 0, txBytes: 0 });
  });

  it('parses port options of the dummy-pmd capture', () => {
    const [dp] = parseDpctlShow(fx('dpctl-show-s.dummy-pmd-3.1.txt'));
    const d1 = dp.ports.find((p) => p.name === 'd1')!;
    expect(d1.type).toBe('dummy-pmd');
    expect(d1.options).toEqual({ configured_rx_queues: '1', configured_tx_queues: '1', requested_rx_queues: '1', requested_tx_queues: '1' });
    expect(d1.stats).toMatchObject({ rxPackets: 20, rxBytes: 2360, txBytes: 0 });
    expect(d1.stats!.rxErrors).toBeUndefined();
    expect([dp.hit, dp.missed, dp.lost, dp.flows]).toEqual([19, 1, 0, 0]);
  });

  it('parses a kernel datapath with masks, cache, caches, UPCALL lines and open failures', () => {
    const [dp] = parseDpctlShow(fx('dpctl-show-s.system-constructed.txt'));
    expect(dp.name).toBe('system@ovs-system');
    expect(dp.type).toBe('system');
    expect([dp.hit, dp.missed, dp.lost, dp.flows]).toEqual([1289452, 3127, 12, 27]);
    expect([dp.maskHit, dp.masks, dp.maskHitPerPacket]).toEqual([3987364, 9, 3.08]);
    expect([dp.cacheHit, dp.cacheHitRatePercent]).toEqual([1201190, 92.93]);
    expect(dp.caches).toEqual({ 'masks-cache': 256 });
    expect(dp.unparsed).toEqual([]);
    const by = new Map(dp.ports.map((p) => [p.name, p]));
    expect(by.get('ovs-system')!.type).toBe('internal');
    expect(by.get('eth1')!.type).toBe('system');
    expect(by.get('eth1')!.stats).toMatchObject({ rxPackets: 1190331, txBytes: 3291102553, upcallPackets: 3074, upcallErrors: 12 });
    expect(by.get('genev_sys_6081')!.stats).toMatchObject({ rxPackets: 102207, rxOverruns: undefined, collisions: undefined });
    const mp0 = by.get('ovn-k8s-mp0')!;
    expect(mp0.type).toBe('internal');
    expect(mp0.configError).toBe('open failed (No such device)');
    expect(mp0.statsError).toBe('open failed (No such device)');
    expect(mp0.stats).toBeUndefined();
    expect(by.get('veth9a1c2f3')!.portNo).toBe(5);
    expect(by.get('veth9a1c2f3')!.stats).toMatchObject({ rxBytes: 1125899906842624, txBytes: 99 });
  });

  it('keeps lines it does not know out of the numbers and reports them', () => {
    const text = 'netdev@ovs-netdev:\n  lookups: hit:1 missed:2 lost:3\n  flows: 4\n  frobs: 7\n  port 0: ovs-netdev (tap)\n    RX packets:1 errors:0 dropped:0 overruns:0 frame:0\n    WOBBLE x:1\n';
    const [dp] = parseDpctlShow(text);
    expect(dp.flows).toBe(4);
    expect(dp.unparsed).toEqual(['line 4:   frobs: 7', 'line 7:     WOBBLE x:1']);
    expect(dp.ports[0].stats).toEqual({ rxPackets: 1, rxErrors: 0, rxDropped: 0, rxOverruns: 0, rxFrame: 0 });
  });

  it('rejects malformed counters and text outside a datapath', () => {
    expect(() => parseDpctlShow('  lookups: hit:1 missed:2 lost:3\n')).toThrow(/line 1: text before the first datapath header/);
    expect(() => parseDpctlShow('netdev@x:\n  lookups: hit:1x missed:2 lost:3\n')).toThrow(/line 2: not a counter value "1x"/);
  });

  it('parses several datapaths', () => {
    const text = fx('dpctl-show-s.system-constructed.txt') + fx('dpctl-show-s.dummy-pmd-3.1.txt');
    expect(parseDpctlShow(text).map((d) => [d.name, d.ports.length])).toEqual([
      ['system@ovs-system', 6],
      ['netdev@ovs-netdev', 4],
    ]);
  });
});

describe('dpif/show', () => {
  it('gives each port its bridge, OpenFlow and datapath port numbers and type', () => {
    const [b] = parseDpifShow(fx('dpif-show.netdev-3.1.txt'));
    expect(b.datapath).toBe('netdev@ovs-netdev');
    expect(b.bridges.map((x) => x.name)).toEqual(['br0', 'br1']);
    expect(b.bridges[0].ports).toEqual([
      { name: 'br0', ofPort: 65534, dpPort: 1, type: 'tap', options: {} },
      { name: 'i0', ofPort: 2, dpPort: 3, type: 'tap', options: {} },
      { name: 'vx0', ofPort: 3, dpPort: 7, type: 'vxlan', options: { key: '5', remote_ip: '10.9.9.9' } },
      { name: 'w0', ofPort: 1, dpPort: 2, type: 'system', options: {} },
    ]);
  });

  it('handles patch ports without a datapath port and tunnel options', () => {
    const text = 'netdev@ovs-netdev: hit:38 missed:28\n  br0:\n    br0 65534/1: (tap)\n    p01 4/none: (patch: peer=p10)\n    vx0 3/7: (vxlan: key=5, remote_ip=10.9.9.9)\n';
    const [b] = parseDpifShow(text);
    expect([b.hit, b.missed]).toEqual([38, 28]);
    expect(b.bridges[0].ports[1]).toEqual({ name: 'p01', ofPort: 4, type: 'patch', options: { peer: 'p10' } });
    expect(b.bridges[0].ports[2].options).toEqual({ key: '5', remote_ip: '10.9.9.9' });
  });

  it('knows which types are internal ports', () => {
    expect(['internal', 'tap', 'system', 'vxlan', 'patch'].map(isInternalType)).toEqual([true, true, false, false, false]);
  });
});

describe('upcall/show', () => {
  it('parses the OVS 3.1 capture', () => {
    expect(parseUpcallShow(fx('upcall-show.netdev-3.1.txt'))).toEqual([
      {
        datapath: 'netdev@ovs-netdev',
        flowsCurrent: 4,
        flowsAverage: 7,
        flowsMax: 28,
        flowLimit: 28000,
        dumpDurationMs: 1,
        ufidEnabled: true,
        revalidatorKeys: { '5': 4 },
        unparsed: [],
      },
    ]);
  });

  it('parses offloaded flows and several revalidators', () => {
    const [d] = parseUpcallShow(fx('upcall-show.system-constructed.txt'));
    expect(d).toMatchObject({ datapath: 'system@ovs-system', flowsCurrent: 27, flowLimit: 200000, offloadedFlows: 4, dumpDurationMs: 17 });
    expect(d.revalidatorKeys).toEqual({ '16': 8, '17': 6, '18': 7, '19': 6 });
  });
});

describe('dpif-netdev/pmd-stats-show', () => {
  it('parses the OVS 3.1 main-thread capture (no cycles lines)', () => {
    const [t] = parsePmdStats(fx('pmd-stats-show.main-thread-3.1.txt'));
    expect(t.thread).toBe('main');
    expect(t.format).toBe('stats-show');
    expect(t.numaId).toBeUndefined();
    expect(t.idleCycles).toBeUndefined();
    expect(t.usedCycles).toBeUndefined();
    expect(t.unparsed).toEqual([]);
    // Each lookup is exactly one of: a hit in one of the caches or a miss (upcall ok or failed).
    const hits = t.phwolHits! + t.simpleMatchHits! + t.emcHits! + t.smcHits! + t.megaflowHits!;
    expect(hits + t.upcalls! + t.lostUpcalls!).toBe(t.packetsReceived! + t.recirculations!);
    expect(t.packetsReceived).toBeGreaterThan(1000);
  });

  it('parses a PMD thread block with cycles (OVS 3.1, dummy-pmd capture)', () => {
    const ts = parsePmdStats(fx('pmd-stats-show.pmd-cycles-3.1.txt'));
    expect(ts.map((t) => [t.thread, t.numaId, t.coreId])).toEqual([
      ['pmd', 0, 1],
      ['main', undefined, undefined],
    ]);
    expect(ts[0]).toMatchObject({
      packetsReceived: 20,
      recirculations: 0,
      datapathPasses: 20,
      phwolHits: 0,
      mfexOptHits: 0,
      simpleMatchHits: 0,
      emcHits: 0,
      smcHits: 0,
      megaflowHits: 19,
      subtableLookupsPerMegaflowHit: 1,
      upcalls: 1,
      lostUpcalls: 0,
      packetsPerOutputBatch: 1,
      idleCycles: 2852014357,
      processingCycles: 6828770,
      usedCycles: 2858843127, // = the "avg cycles per packet" numerator

    });
    expect(ts[0].unparsed).toEqual([]);
  });

  it('parses the tab-indented pre-3.0 layout', () => {
    const text = 'pmd thread numa_id 1 core_id 3:\n\tpackets received: 77212\n\tpacket recirculations: 64\n\tavg. datapath passes per packet: 1.00\n\temc hits: 34317\n\tmegaflow hits: 33676\n\tavg. subtable lookups per megaflow hit: 1.06\n\tmiss with success upcall: 9283\n\tmiss with failed upcall: 0\n\tavg. packets per output batch: 1.00\n\tidle cycles: 18521597218095 (100.00%)\n\tprocessing cycles: 923502096 (0.00%)\n';
    const [t] = parsePmdStats(text);
    expect(t).toMatchObject({ thread: 'pmd', numaId: 1, coreId: 3, packetsReceived: 77212, recirculations: 64, emcHits: 34317, upcalls: 9283, idleCycles: 18521597218095 });
    expect(t.smcHits).toBeUndefined();
    expect(t.unparsed).toEqual([]);
  });

  it('parses pmd-perf-show of OVS 3.1 (capture)', () => {
    const [t] = parsePmdStats(fx('pmd-perf-show.pmd-3.1.txt'));
    expect(t).toMatchObject({ thread: 'pmd', numaId: 0, coreId: 1, format: 'perf-show', packetsReceived: 20, datapathPasses: 20, recirculations: 0, megaflowHits: 19, upcalls: 1, lostUpcalls: 0, txPackets: 40, txBatches: 40 });
    expect(t.usedCycles).toBeGreaterThan(0);
    expect(t.unparsed).toEqual([]);
  });

  it('parses the OVS 4.0 format (pmd-stats-show = pmd-perf-show), deriving recirculations exactly', () => {
    const ts = parsePmdStats(fx('pmd-stats-show.perf-format-4.0-constructed.txt'));
    expect(ts).toHaveLength(2);
    expect(ts[0]).toEqual({
      thread: 'pmd',
      numaId: 0,
      coreId: 3,
      format: 'perf-show',
      iterations: 2241830,
      usedCycles: 28811457690,
      packetsReceived: 9604471,
      datapathPasses: 9605123,
      recirculations: 652,
      phwolHits: 0,
      simpleMatchHits: 0,
      emcHits: 9120554,
      smcHits: 0,
      megaflowHits: 484510,
      upcalls: 59,
      lostUpcalls: 0,
      txPackets: 9604412,
      txBatches: 640294,
      unparsed: [],
    });
    // An idle PMD prints only "Rx packets: 0": hit counters stay absent (not guessed).
    expect(ts[1]).toMatchObject({ coreId: 7, packetsReceived: 0, txPackets: 0 });
    expect(ts[1].emcHits).toBeUndefined();
    expect(ts[1].unparsed).toEqual([]);
  });
});

describe('coverage', () => {
  it('parses coverage/show (only counters that fired) and the never-hit count', () => {
    const c = parseCoverageShow(fx('coverage-show-3.1.txt'));
    expect(c.unparsed).toEqual([]);
    expect(c.totals.get('bridge_reconfigure')).toBeGreaterThan(0);
    expect(c.totals.get('upcall_flow_limit_hit')).toBeUndefined();
    expect(c.neverHit).toBeGreaterThan(50);
    for (const v of c.totals.values()) expect(v).toBeGreaterThan(0);
  });

  it('parses a line exactly', () => {
    const c = parseCoverageShow('Event coverage, avg rate over last: 5 seconds, last minute, last hour,  hash=3f7401f0:\nhmap_expand              16479.6/sec  2486.583/sec       41.4431/sec   total: 163190\n7 events never hit\n');
    expect([...c.totals]).toEqual([['hmap_expand', 163190]]);
    expect(c.neverHit).toBe(7);
  });

  it('parses coverage/read-counter', () => {
    expect(parseReadCounter('0\n', 'x')).toBe(0);
    expect(parseReadCounter('1234\n', 'x')).toBe(1234);
    expect(() => parseReadCounter('No such counter\n', 'x')).toThrow(/not a number/);
  });
});

describe('version and discovery helpers', () => {
  it('parses version replies', () => {
    expect(parseVersion('ovs-vswitchd (Open vSwitch) 3.1.0\n')).toEqual({ version: '3.1.0' });
    expect(parseVersion('ovs-vswitchd (Open vSwitch) 3.3.0\nDPDK 23.11.0\n')).toEqual({ version: '3.3.0', dpdk: '23.11.0' });
    expect(() => parseVersion('hello')).toThrow(/unexpected reply/);
  });

  it('orders run directories: --ovs.rundir alone, else $OVS_RUNDIR then the defaults', () => {
    expect(candidateRundirs({ rundir: '/x', envRundir: '/e' })).toEqual(['/x']);
    expect(candidateRundirs({ envRundir: '/e' })).toEqual(['/e', '/run/openvswitch', '/var/run/openvswitch']);
    expect(candidateRundirs({ envRundir: '/run/openvswitch/' })).toEqual(['/run/openvswitch', '/var/run/openvswitch']);
  });

  it('parses pid files', () => {
    expect(parsePidFile('7169\n', 'f')).toBe(7169);
    expect(() => parsePidFile('', 'f')).toThrow(/f: not a pid/);
    expect(() => parsePidFile('12 13', 'f')).toThrow(/not a pid/);
  });
});
