// Adapters from the other sources' records to the diagnosis types, on their fixtures:
// sock_diag replies captured on 6.18 (test/fixtures/sockdiag), /proc of the test VM
// (test/fixtures/procfs/vm-6.18), OVS 3.1 dpif/show (test/fixtures/ovs).

import * as fs from 'fs';
import * as path from 'path';
import { forEachMessage } from '../../../src/sources/netlink/attrs';
import { SockView } from '../../../src/sources/netlink/sockdiag';
import { parseSoftnetStat } from '../../../src/sources/procfs/softnet';
import { parseSoftirqs } from '../../../src/sources/procfs/softirqs';
import { parseProcStatCpus } from '../../../src/sources/procfs/stat';
import { parseNetstat } from '../../../src/sources/procfs/netstat';
import { parseDpifShow } from '../../../src/sources/ovs/parse-dpif';
import type { OvsSnapshot } from '../../../src/sources/ovs/snapshot';
import type { QdiscRecord } from '../../../src/sources/netlink/qdisc';
import { buildNodeSnapshot, flowSampleFromRecord, flowSampleFromView, ovsEvidenceOf, pathDevicesFor } from '../../../src/diagnosis/adapters';
import { sampledState } from '../../../src/diagnosis/classify';
import { decodeRouteOif, routeGetRequest, RTMSG_LEN } from '../../../src/sources/netlink/route';
import { counterDelta, summarizeNode } from '../../../src/diagnosis/summarize';

const FIX = path.join(__dirname, '..', '..', 'fixtures');
const flowsJson = JSON.parse(fs.readFileSync(path.join(FIX, 'sockdiag', 'flows.json'), 'utf8')) as {
  flows: Array<{ name: string; client: [string, number]; server: [string, number] }>;
};

function views(file: string): SockView[] {
  const out: SockView[] = [];
  forEachMessage(fs.readFileSync(path.join(FIX, 'sockdiag', file)), (m) => {
    if (m.type === 20) out.push(new SockView().attach(m.buf, m.start, m.end).copy());
  });
  return out;
}

function clientOf(vs: SockView[], name: string): SockView {
  const f = flowsJson.flows.find((x) => x.name === name);
  const v = vs.find((x) => f && x.sport === f.client[1] && x.dport === f.server[1]);
  if (!v) throw new Error(`no client socket for ${name}`);
  return v;
}

describe('sock_diag replies → FlowSample (captured on 6.18)', () => {
  const a = views('dump-a.bin');

  it('the stalled reader (64 KiB receive buffer, zero window) is rwnd-limited', () => {
    const s = flowSampleFromView(clientOf(a, 'v4-cubic-stalled'), 0);
    expect(s.cc).toBe('cubic');
    expect(s.notsentBytes).toBeGreaterThan(1e6);
    expect(s.sndWnd).toBe(0);
    expect(sampledState(s)).toBe('rwnd');
  });

  it('SO_MAX_PACING_RATE 4 MB/s: max_pacing_rate is decoded, unlimited sentinels are absent', () => {
    const s = flowSampleFromView(clientOf(a, 'v4-paced'), 0);
    expect(s.maxPacingRate).toBe(4000000);
    expect(s.skmem?.sndbuf).toBeGreaterThan(0);
    const bbr = flowSampleFromView(clientOf(a, 'v6-bbr'), 0);
    expect(bbr.maxPacingRate).toBeUndefined(); // 2^64-1: not set
    expect(bbr.cc).toBe('bbr');
    expect(bbr.bbr?.bw).toBeGreaterThan(0);
  });

  it('the view and the decoded record give the same sample', () => {
    for (const v of a.filter((x) => x.state === 1)) {
      expect(flowSampleFromRecord(v.record(), 5, 6)).toEqual(flowSampleFromView(v, 5, 6));
    }
  });

  it('ssthresh "infinite" and min_rtt "none" are absent, never numbers', () => {
    const s = flowSampleFromRecord(
      { family: 2, state: 1, timer: 0, retrans: 0, localIp: '1.1.1.3', localPort: 1, peerIp: '1.1.1.2', peerPort: 2, ifindex: 0, cookie: '1', expires: 0, rqueue: 0, wqueue: 0, uid: 0, inode: 0, tcpInfo: { sndSsthresh: 0x7fffffff, minRtt: 0xffffffff, pacingRate: Infinity, deliveryRateAppLimited: 1 } },
      0,
    );
    expect(s.ssthresh).toBeUndefined();
    expect(s.minRtt).toBeUndefined();
    expect(s.pacingRate).toBeUndefined();
    expect(s.appLimited).toBe(true);
    expect(s.busyTime).toBeUndefined(); // absent field stays absent
  });
});

describe('node records → NodeSnapshot (vm-6.18 /proc)', () => {
  const proc = path.join(FIX, 'procfs', 'vm-6.18', 'proc');
  const read = (f: string) => fs.readFileSync(path.join(proc, f), 'utf8');
  const softnet = parseSoftnetStat(read('net/softnet_stat'));
  const softirqs = parseSoftirqs(read('softirqs'));
  const stat = parseProcStatCpus(read('stat'));
  const netstat = parseNetstat(read('net/netstat'));
  const qdisc: QdiscRecord = { ifindex: 2, handle: 0x80010000, parent: 0xffffffff, kind: 'tbf', bytes: 1000, packets: 10, drops: 3, overlimits: 7, requeues: 0, qlen: 2, backlog: 3000 };
  const snap = buildNodeSnapshot({
    t: 1000,
    devices: [{ name: 'eth0', ifindex: 2, class: 'physical' }],
    attrs: new Map([['eth0', { name: 'eth0', speedMbps: 25000, operstate: 'up', stats: { tx_bytes: 10, tx_dropped: 1, rx_missed_errors: 4 } }]]),
    queues: new Map([['eth0', { rx: [{ queue: 0, rpsCpus: [] }], tx: [{ queue: 0 }] }]]),
    features: new Map([['eth0', new Map([['tx-tcp-segmentation', { active: false, wanted: true, fixed: false }]])]]),
    qdiscs: [qdisc],
    softnet,
    softirqs,
    stat,
    netstat,
    sysctl: { 'net.ipv4.tcp_wmem': '4096 16384 4194304' },
  });

  it('merges softnet, softirqs and /proc/stat per CPU', () => {
    expect(snap.cpus.map((c) => c.cpu)).toEqual([0, 1]);
    const c0 = snap.cpus[0];
    expect(c0.softnetProcessed).toBe(softnet[0].processed);
    expect(c0.netRx).toBe(softirqs.vectors.find((v) => v.name === 'NET_RX')?.counts[0]);
    expect(c0.softirqTicks).toBe(stat[0].ticks[6]);
    expect(c0.totalTicks).toBe(stat[0].ticks.slice(0, 8).reduce((x, y) => x + y, 0));
  });

  it('devices: speed in bit/s, RPS off, TSO from ethtool features; qdisc device by ifindex, root by parent', () => {
    expect(snap.devices[0]).toMatchObject({ name: 'eth0', kind: 'physical', speedBps: 25e9, txDropped: 1, rxMissed: 4, rps: false, tso: false });
    expect(snap.qdiscs[0]).toMatchObject({ device: 'eth0', kind: 'tbf', root: true, drops: 3, backlogBytes: 3000 });
    expect(snap.tcpExt?.TCPTimeouts).toBe(netstat.get('TcpExt')?.get('TCPTimeouts'));
  });

  it('summarizeNode: deltas, u32 wrap of softnet counters, the busiest RX CPU, CPU shares', () => {
    const later = JSON.parse(JSON.stringify(snap)) as typeof snap;
    later.t = 3000;
    later.devices[0].txDropped = 11;
    later.qdiscs[0].drops = 10;
    later.cpus[1].netRx = (later.cpus[1].netRx ?? 0) + 5000;
    later.cpus[1].softirqTicks = (later.cpus[1].softirqTicks ?? 0) + 150;
    later.cpus[1].totalTicks = (later.cpus[1].totalTicks ?? 0) + 200;
    later.cpus[1].idleTicks = (later.cpus[1].idleTicks ?? 0) + 20;
    later.cpus[0].softnetDropped = 5;
    const from = { ...snap, cpus: snap.cpus.map((c) => (c.cpu === 0 ? { ...c, softnetDropped: 2 ** 32 - 3 } : c)) };
    const n = summarizeNode(from, later, { ipDevice: 'eth0', nicDevice: 'eth0' });
    expect(n.seconds).toBe(2);
    expect(n.devices[0].txDropped).toBe(10);
    expect(n.qdiscs[0].drops).toBe(7);
    expect(n.rxCpu?.cpu).toBe(1);
    expect(n.rxCpu?.softirqShare).toBeCloseTo(0.75);
    expect(n.rxCpu?.busyShare).toBeCloseTo(0.9);
    expect(n.cpus[0].softnetDropped).toBe(8); // wrapped u32
    expect(counterDelta(5, 3)).toBe(2 ** 32 - 2);
    expect(counterDelta(2 ** 40, 3)).toBeUndefined(); // a 64-bit counter going back is a reset
  });
});

describe('OVS → path devices and evidence (OVS 3.1 dpif/show)', () => {
  const dpif = parseDpifShow(fs.readFileSync(path.join(FIX, 'ovs', 'dpif-show.netdev-3.1.txt'), 'utf8'));
  const snap = {
    takenAt: 0,
    durationSeconds: 0,
    unixctl: { up: true, connects: 1, commands: [], unparsed: [], dpif, datapaths: [{ name: 'netdev@ovs-netdev', type: 'netdev', hit: 10, missed: 2, lost: 1, caches: {}, unparsed: [], ports: [{ portNo: 2, name: 'w1', type: 'system', options: {}, stats: { txDropped: 4, rxDropped: 0 } }] }] },
    kernel: { moduleLoaded: false },
    internalPorts: [{ device: 'i1', bridge: 'br1', datapath: 'netdev@ovs-netdev', local: false, type: 'tap', source: 'unixctl' }],
  } as unknown as OvsSnapshot;

  it('an IP on an internal port: the uplink of its bridge is the NIC (a system port before a tunnel)', () => {
    const p = pathDevicesFor('i1', snap, new Set(['i1']), [{ name: 'i1', ifindex: 5, class: 'tun' }]);
    expect(p).toEqual({ ipDevice: 'i1', nicDevice: 'w1', viaOvs: true, extraDevices: [] });
    const p0 = pathDevicesFor('i0', snap, new Set(['i0']), []);
    expect(p0.nicDevice).toBe('w0');
  });

  it('a plain device is its own NIC; ifb devices are wire shapers', () => {
    const p = pathDevicesFor('eth0', null, new Set(), [{ name: 'eth0', ifindex: 2, class: 'virtual', kind: 'veth' }, { name: 'ifb-wire', ifindex: 3, class: 'virtual', kind: 'ifb' }]);
    expect(p).toEqual({ ipDevice: 'eth0', nicDevice: 'eth0', viaOvs: false, extraDevices: ['ifb-wire'] });
  });

  it('datapath counters and port drops', () => {
    const e = ovsEvidenceOf(snap, 12.5);
    expect(e?.datapaths[0]).toMatchObject({ name: 'netdev@ovs-netdev', type: 'netdev', lost: 1, missed: 2 });
    expect(e?.ports[0]).toMatchObject({ name: 'w1', internal: false, txDropped: 4 });
    expect(e?.vswitchdCpuSeconds).toBe(12.5);
  });
});

describe('route lookup messages', () => {
  it('RTM_GETROUTE request: rtmsg with the destination length, RTA_DST', () => {
    const b = routeGetRequest('1.1.1.2');
    expect(b[0]).toBe(2); // AF_INET
    expect(b[1]).toBe(32);
    expect(b.readUInt16LE(RTMSG_LEN + 2)).toBe(1); // RTA_DST
    expect([...b.subarray(RTMSG_LEN + 4, RTMSG_LEN + 8)]).toEqual([1, 1, 1, 2]);
    expect(routeGetRequest('::1')[1]).toBe(128);
  });
  it('RTM_NEWROUTE reply: RTA_OIF; a short rtmsg is an error', () => {
    const msg = Buffer.alloc(RTMSG_LEN);
    const oif = Buffer.alloc(8);
    oif.writeUInt16LE(8, 0);
    oif.writeUInt16LE(4, 2); // RTA_OIF
    oif.writeUInt32LE(7, 4);
    const reply = Buffer.concat([msg, oif]);
    expect(decodeRouteOif(reply, 0, reply.length)).toBe(7);
    expect(() => decodeRouteOif(reply, 0, 8)).toThrow(/struct rtmsg/);
  });
});
