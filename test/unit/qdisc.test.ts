// The RTM_NEWQDISC decoder and the qdisc collector on fixtures (test/fixtures/qdisc/README.md).
import * as fs from 'fs';
import * as path from 'path';
import { Config } from '../../src/core/flags';
import { nullLogger } from '../../src/core/log';
import { Emitter } from '../../src/core/metrics';
import { DecodeError, forEachMessage } from '../../src/sources/netlink/attrs';
import { QdiscDump, QdiscRecord, decodeQdisc, formatHandle, formatParent } from '../../src/sources/netlink/qdisc';
import { NetlinkError } from '../../src/sources/netlink/socket';
import { QdiscSources, cachedDeviceNames, makeQdiscCollector } from '../../src/collectors/qdisc';
import { selectDevices } from '../../src/sources/devices';
import * as os from 'os';
import { allFlags } from '../../src/exporter';
import { promtoolAvailable, promtoolCheckMetrics } from '../support/promtool';

const DIR = path.join(__dirname, '../fixtures/qdisc');
const expected = JSON.parse(fs.readFileSync(path.join(DIR, 'expected.json'), 'utf8'));

function decodeFile(name: string): QdiscRecord[] {
  const out: QdiscRecord[] = [];
  forEachMessage(fs.readFileSync(path.join(DIR, name)), (m) => out.push(decodeQdisc(m.buf, m.start, m.end)));
  return out;
}

async function render(files: string[], names: Record<number, string>, dumps?: QdiscDump[]): Promise<string> {
  const qdiscs = files.flatMap(decodeFile);
  const queue = dumps ? [...dumps] : undefined;
  const sources: QdiscSources = {
    devices: async () => new Map(Object.entries(names).map(([k, v]) => [Number(k), v])),
    dump: async () => (queue ? queue.shift()! : { qdiscs, interrupted: false }),
  };
  const def = makeQdiscCollector(() => sources);
  const out = new Emitter();
  await def.create({ config: Config.from(allFlags()), log: nullLogger }).collect(out, { signal: new AbortController().signal, now: 0 });
  return out.render();
}

const sample = (text: string, name: string, labels: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : line.slice(line.lastIndexOf(' ') + 1);
};

describe('decodeQdisc on built fixtures', () => {
  it('decodes mq with two fq children (6.7 struct), PKT64 and fq options', () => {
    const [mq, fq1, fq2] = decodeFile('fq-mq-6.7.bin');
    expect(mq).toMatchObject({ ifindex: 1002, kind: 'mq', bytes: 10000001000, packets: 300, drops: 177, requeues: 8, qlen: 3, backlog: 4542 });
    expect(formatHandle(mq.handle)).toBe('1:');
    expect(formatParent(mq.parent)).toBe('root');
    expect(mq.fq).toBeUndefined();

    expect(fq1.kind).toBe('fq');
    expect(formatHandle(fq1.handle)).toBe('8001:');
    expect(formatParent(fq1.parent)).toBe('1:1');
    expect(fq1.packets).toBe(6000000000); // TCA_STATS_PKT64 wins over the u32 in gnet_stats_basic
    const x = expected.fqBase;
    expect(fq1.fq).toEqual({
      gcFlows: Number(x.gc_flows),
      throttled: Number(x.throttled),
      flowsPlimit: Number(x.flows_plimit),
      pktsTooLong: Number(x.pkts_too_long),
      allocationErrors: Number(x.allocation_errors),
      timeNextDelayedFlowNs: Number(x.time_next_delayed_flow),
      flows: Number(x.flows),
      inactiveFlows: Number(x.inactive_flows),
      throttledFlows: Number(x.throttled_flows),
      unthrottleLatencyNs: Number(x.unthrottle_latency_ns),
      ceMark: Number(x.ce_mark),
      horizonDrops: Number(x.horizon_drops),
      horizonCaps: Number(x.horizon_caps),
      fastpathPackets: Number(x.fastpath_packets),
      bandDrops: x.band_drops.map(Number),
      bandPktCount: x.band_pkt_count.map(Number),
    });
    const o = expected.fqOpts;
    expect(fq1.fqOptions).toEqual({
      plimit: o.plimit,
      flowPlimit: o.flow_plimit,
      quantum: o.quantum,
      initialQuantum: o.initial_quantum,
      rateEnable: o.rate_enable,
      flowMaxRate: 0xffffffff,
      bucketsLog: o.buckets_log,
      flowRefillDelayUs: o.flow_refill_delay,
      lowRateThreshold: o.low_rate_threshold,
      ceThresholdUs: o.ce_threshold,
      timerSlackNs: o.timer_slack,
      horizonUs: o.horizon,
      horizonDrop: 1,
    });
    // Second child: xstats only in TCA_STATS_APP, nothing throttled (negative time_next_delayed_flow).
    expect(fq2.fq?.throttled).toBe(17);
    expect(fq2.fq?.timeNextDelayedFlowNs).toBe(-5);
    expect(fq2.fqOptions).toMatchObject({ flowMaxRate: 12500000, rateEnable: 0, horizonDrop: 0 });
  });

  it('reads only the fields each fq xstats size has (3.12, 4.2, 5.8, 6.7)', () => {
    const [s80, s88, s104, s152] = decodeFile('fq-sizes.bin').map((q) => q.fq!);
    expect(s80.throttled).toBe(9876543210123);
    expect(s80.ceMark).toBeUndefined();
    expect(s88.ceMark).toBe(555);
    expect(s88.horizonDrops).toBeUndefined();
    expect(s104.horizonDrops).toBe(66);
    expect(s104.horizonCaps).toBe(88);
    expect(s104.fastpathPackets).toBeUndefined();
    expect(s104.bandDrops).toBeUndefined();
    expect(s152.fastpathPackets).toBe(99999);
    expect(s152.bandPktCount).toEqual([4, 5, 6]);
  });

  it('decodes fq_codel xstats by length and ignores class-type xstats', () => {
    const [a, b, c] = decodeFile('fq_codel.bin');
    expect(a.fqCodel).toEqual({ maxpacket: 1514, dropOverlimit: 9, ecnMark: 8, newFlowCount: 4321, newFlowsLen: 1, oldFlowsLen: 2, ceMark: 7, memoryUsage: 65536, dropOvermemory: 3 });
    expect(a.fqCodelOptions).toEqual({ targetUs: 5000, limit: 10240, intervalUs: 100000, ecn: 1, flows: 1024, quantum: 1514, dropBatchSize: 64, memoryLimit: 33554432 });
    expect(a).toMatchObject({ bytes: 123456789, packets: 98765, drops: 11, requeues: 2, overlimits: 9, qlen: 5, backlog: 7570 });
    expect(b.fqCodel).toEqual({ maxpacket: 60, dropOverlimit: 1, ecnMark: 2, newFlowCount: 3, newFlowsLen: 0, oldFlowsLen: 1 });
    expect(c.fqCodel).toBeUndefined();
  });

  it('falls back to the legacy struct tc_stats (no requeues) when TCA_STATS2 is absent', () => {
    const [q] = decodeFile('legacy-tc-stats.bin');
    expect(q).toMatchObject({ kind: 'pfifo', bytes: 4294967301, packets: 4000000000, drops: 4, overlimits: 1, qlen: 12, backlog: 18000 });
    expect(q.requeues).toBeUndefined();
  });

  it('decodes a real 6.18 dump to the numbers tc printed at the same moment', () => {
    const got = decodeFile('live-6.18.bin');
    const tc = JSON.parse(fs.readFileSync(path.join(DIR, 'live-6.18.tc.json'), 'utf8')) as Array<Record<string, unknown>>;
    const links = JSON.parse(fs.readFileSync(path.join(DIR, 'live-6.18.links.json'), 'utf8')) as Record<string, string>;
    expect(got).toHaveLength(tc.length);
    got.forEach((q, i) => {
      const t = tc[i];
      expect({ dev: links[q.ifindex], kind: q.kind, handle: formatHandle(q.handle), parent: formatParent(q.parent) }).toEqual({
        dev: t.dev,
        kind: t.kind,
        handle: t.handle,
        parent: t.root ? 'root' : t.parent,
      });
      expect([q.bytes, q.packets, q.drops, q.overlimits, q.requeues, q.backlog, q.qlen]).toEqual([t.bytes, t.packets, t.drops, t.overlimits, t.requeues, t.backlog, t.qlen]);
    });
    expect(got.map((q) => q.kind)).toEqual(expect.arrayContaining(['mq', 'htb', 'tbf', 'pfifo_fast', 'ingress', 'noqueue', 'pfifo', 'bfifo']));
  });

  it.each([
    ['bad-short-tcmsg.bin', /tcmsg.*12 bytes, need 20/],
    ['bad-no-kind.bin', /no TCA_KIND/],
    ['bad-attr-overrun.bin', /length 200 overruns/],
    ['bad-no-queue.bin', /TCA_STATS2.*no TCA_STATS_QUEUE/],
    ['bad-short-basic.bin', /TCA_STATS_BASIC.*8 bytes, need at least 12/],
    ['bad-short-fq-xstats.bin', /fq xstats.*64 bytes, need at least 80/],
  ])('%s is rejected with a DecodeError that says where', (file, msg) => {
    let err: unknown;
    try {
      decodeFile(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as Error).message).toMatch(msg);
  });
});

describe('qdisc collector', () => {
  it('renders every qdisc with device/kind/handle/parent, fq xstats, bands and options', async () => {
    const text = await render(['fq-mq-6.7.bin'], { 1002: 'eth9' });
    const fq1 = 'device="eth9",kind="fq",handle="8001:",parent="1:1"';
    const fq2 = 'device="eth9",kind="fq",handle="8002:",parent="1:2"';
    expect(sample(text, 'flowpath_qdisc_info', 'device="eth9",kind="mq",handle="1:",parent="root"')).toBe('1');
    expect(sample(text, 'flowpath_qdisc_bytes_total', 'device="eth9",kind="mq",handle="1:",parent="root"')).toBe('10000001000');
    expect(sample(text, 'flowpath_qdisc_packets_total', fq1)).toBe('6000000000');
    expect(sample(text, 'flowpath_qdisc_fq_throttled_total', fq1)).toBe('9876543210123');
    expect(sample(text, 'flowpath_qdisc_fq_throttled_flows', fq1)).toBe('2');
    expect(sample(text, 'flowpath_qdisc_fq_next_packet_delay_seconds', fq1)).toBe('0.0015');
    expect(sample(text, 'flowpath_qdisc_fq_next_packet_delay_seconds', fq2)).toBeUndefined();
    expect(sample(text, 'flowpath_qdisc_fq_unthrottle_latency_seconds', fq1)).toBe(String(12345 / 1e9));
    expect(sample(text, 'flowpath_qdisc_fq_band_drops_total', `${fq2},band="1"`)).toBe('100');
    expect(sample(text, 'flowpath_qdisc_fq_band_packets', `${fq1},band="2"`)).toBe('6');
    expect(sample(text, 'flowpath_qdisc_fq_flow_max_rate_bytes_per_second', fq1)).toBe('+Inf');
    expect(sample(text, 'flowpath_qdisc_fq_flow_max_rate_bytes_per_second', fq2)).toBe('12500000');
    expect(sample(text, 'flowpath_qdisc_fq_rate_enable', fq2)).toBe('0');
    expect(sample(text, 'flowpath_qdisc_fq_horizon_seconds', fq1)).toBe('10');
    expect(sample(text, 'flowpath_qdisc_fq_plimit_packets', fq1)).toBe('10000');
    // mq has no fq families
    expect(text).not.toMatch(/flowpath_qdisc_fq_[a-z_]+\{device="eth9",kind="mq"/);
    if (promtoolAvailable()) expect(promtoolCheckMetrics(text)).toEqual({ status: 0, output: '' });
  });

  it('omits families a shorter struct does not carry, and renders fq_codel and legacy stats', async () => {
    const text = await render(['fq-sizes.bin', 'fq_codel.bin', 'legacy-tc-stats.bin'], { 10: 'a', 11: 'b', 13: 'd', 20: 'c', 21: 'e', 22: 'f', 30: 'p' });
    const a = 'device="a",kind="fq",handle="10:",parent="root"';
    expect(sample(text, 'flowpath_qdisc_fq_throttled_total', a)).toBe('9876543210123');
    expect(sample(text, 'flowpath_qdisc_fq_ce_mark_total', a)).toBeUndefined();
    expect(sample(text, 'flowpath_qdisc_fq_ce_mark_total', 'device="b",kind="fq",handle="11:",parent="root"')).toBe('555');
    expect(text).not.toContain('handle="12:"'); // ifindex 12 is not a selected device
    expect(sample(text, 'flowpath_qdisc_fq_fastpath_packets_total', 'device="d",kind="fq",handle="13:",parent="root"')).toBe('99999');
    const c = 'device="c",kind="fq_codel",handle="20:",parent="root"';
    expect(sample(text, 'flowpath_qdisc_fq_codel_drop_overmemory_total', c)).toBe('3');
    expect(sample(text, 'flowpath_qdisc_fq_codel_target_seconds', c)).toBe('0.005');
    expect(sample(text, 'flowpath_qdisc_fq_codel_memory_usage_bytes', 'device="e",kind="fq_codel",handle="21:",parent="root"')).toBeUndefined();
    expect(sample(text, 'flowpath_qdisc_fq_codel_maxpacket_bytes', 'device="f",kind="fq_codel",handle="22:",parent="root"')).toBeUndefined();
    const p = 'device="p",kind="pfifo",handle="30:",parent="root"';
    expect(sample(text, 'flowpath_qdisc_bytes_total', p)).toBe('4294967301');
    expect(sample(text, 'flowpath_qdisc_requeues_total', p)).toBeUndefined();
    if (promtoolAvailable()) expect(promtoolCheckMetrics(text)).toEqual({ status: 0, output: '' });
  });

  it('reports noqueue devices as such, with zero counters', async () => {
    const text = await render(['live-6.18.bin'], { 1: 'lo', 7: 'br0', 6: 'v4', 3: 'v1' });
    expect(sample(text, 'flowpath_qdisc_info', 'device="br0",kind="noqueue",handle="0:",parent="root"')).toBe('1');
    expect(sample(text, 'flowpath_qdisc_bytes_total', 'device="v4",kind="noqueue",handle="0:",parent="root"')).toBe('0');
    expect(sample(text, 'flowpath_qdisc_info', 'device="v1",kind="pfifo",handle="10:",parent="1:10"')).toBe('1');
    expect(text).not.toContain('device="v0"');
  });

  it('retries a dump interrupted by a concurrent change once, then fails', async () => {
    const qdiscs = decodeFile('legacy-tc-stats.bin');
    const ok = await render([], { 30: 'p' }, [
      { qdiscs: [], interrupted: true },
      { qdiscs, interrupted: false },
    ]);
    expect(sample(ok, 'flowpath_qdisc_packets_total', 'device="p",kind="pfifo",handle="30:",parent="root"')).toBe('4000000000');
    await expect(
      render([], { 30: 'p' }, [
        { qdiscs, interrupted: true },
        { qdiscs, interrupted: true },
      ]),
    ).rejects.toThrow(/interrupted twice/);
  });

  it('fails (throws) when the netlink dump fails, e.g. EPERM', async () => {
    const def = makeQdiscCollector(() => ({
      devices: async () => new Map([[1, 'lo']]),
      dump: async () => {
        throw new NetlinkError(-1, 'RTM_GETQDISC dump');
      },
    }));
    const c = def.create({ config: Config.from(allFlags()), log: nullLogger });
    await expect(c.collect(new Emitter(), { signal: new AbortController().signal, now: 0 })).rejects.toThrow(/EPERM/);
  });
});

describe('qdisc device-name cache', () => {
  // A minimal sysfs: class/net/<dev>/uevent with the ifindex (what selectDevices reads per device).
  function addDev(root: string, name: string, ifindex: number): void {
    const d = path.join(root, 'class/net', name);
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'uevent'), `INTERFACE=${name}\nIFINDEX=${ifindex}\n`);
    fs.writeFileSync(path.join(d, 'type'), '1\n');
    fs.writeFileSync(path.join(d, 'flags'), '0x1003\n');
  }

  it('re-selects devices only when a name or an ifindex changed', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-qdev-'));
    try {
      addDev(root, 'a0', 1);
      addDev(root, 'b0', 2);
      let calls = 0;
      const lookup = cachedDeviceNames(async (...args) => {
        calls++;
        return selectDevices(args[0], args[1], args[2], { links: null });
      });
      const config = Config.from(allFlags(), { 'path.sysfs': root, 'collector.nic.device-include': '.*' });
      expect([...(await lookup(config, [1, 2]))]).toEqual([
        [1, 'a0'],
        [2, 'b0'],
      ]);
      await lookup(config, [2, 1]);
      expect(calls).toBe(1);
      fs.renameSync(path.join(root, 'class/net/b0'), path.join(root, 'class/net/c0')); // a rename
      expect((await lookup(config, [1, 2])).get(2)).toBe('c0');
      expect(calls).toBe(2);
      fs.rmSync(path.join(root, 'class/net/c0'), { recursive: true }); // re-created under the same name
      addDev(root, 'c0', 7);
      expect((await lookup(config, [1, 7])).get(7)).toBe('c0');
      expect(calls).toBe(3);
      await lookup(config, [1, 7]);
      expect(calls).toBe(3);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
