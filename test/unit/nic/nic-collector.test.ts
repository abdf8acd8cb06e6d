// The nic collector end to end on the host-mq fixture: sysfs from the tree, ethtool/netdev genl replayed
// from the binary fixtures through the real decoders, `ethtool -S` from the driver text fixtures.
// Failure policy: EOPNOTSUPP remembered, EPERM/malformed → that part only, malformed sysfs → collector fails.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Config } from '../../../src/core/flags';
import { Emitter } from '../../../src/core/metrics';
import { Logger, nullLogger } from '../../../src/core/log';
import { allFlags } from '../../../src/exporter';
import { NIC_METRICS, NicDeps, createNicCollector, nicCollector } from '../../../src/collectors/nic';
import { DriverStatsResult, parseEthtoolStats } from '../../../src/sources/ethtool-cli';
import { DecodeError } from '../../../src/sources/netlink/attrs';
import { promtoolAvailable, promtoolCheckMetrics } from '../../support/promtool';
import { FakeEthtool, FakeNetdev, HOST_MQ, NIC_FIXTURES, eperm, fakeLinks, mlx5, virtio } from './fixtures';

const ctx = { signal: new AbortController().signal, now: 0 };
const driverText = (d: string) => fs.readFileSync(path.join(NIC_FIXTURES, 'ethtool-S', `${d}.txt`), 'utf8');

class FakeDriverStats {
  calls: string[] = [];
  constructor(private readonly byDev: Record<string, DriverStatsResult | (() => never)>) {}
  async get(dev: string): Promise<DriverStatsResult> {
    this.calls.push(dev);
    const a = this.byDev[dev];
    if (a === undefined) return { kind: 'unsupported', reason: 'no stats available' };
    if (typeof a === 'function') return a();
    return a;
  }
  retain(): void {}
}
const ok = (d: string): DriverStatsResult => ({ kind: 'ok', stats: parseEthtoolStats(driverText(d)), at: 0 });

function deps(over: Partial<NicDeps> = {}): NicDeps & { ethtool: FakeEthtool; netdev: FakeNetdev; driverStats: FakeDriverStats } {
  return {
    ethtool: new FakeEthtool({
      eth0: { rings: mlx5.rings(), channels: mlx5.channels(), coalesce: mlx5.coalesce(), features: mlx5.features(), pause: mlx5.pause(), stats: mlx5.stats() },
      eth2: { rings: virtio.rings(), channels: virtio.channels(), coalesce: virtio.coalesce(), features: virtio.features(), stats: virtio.stats() },
    }),
    netdev: new FakeNetdev({ eth0: { qstats: mlx5.qstats() }, eth2: { qstats: virtio.qstats() } }),
    driverStats: new FakeDriverStats({ eth0: ok('mlx5_core'), eth1: ok('ixgbe'), ens5: ok('ena'), eth2: ok('virtio_net') }),
    links: fakeLinks(),
    ...over,
  } as never;
}

function collector(d: NicDeps, flags: Record<string, string> = {}, log: Logger = nullLogger, sysfs = path.join(HOST_MQ, 'sys')) {
  const config = Config.from(allFlags(), { 'path.sysfs': sysfs, 'path.procfs': path.join(HOST_MQ, 'proc'), ...flags });
  return createNicCollector({ config, log }, d);
}

async function scrape(c: ReturnType<typeof collector>): Promise<string> {
  const out = new Emitter();
  await c.collect(out, ctx);
  return out.render();
}

const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('nic collector on host-mq', () => {
  it('exports sysfs, ethtool genl, qstats and driver stats for the selected devices only', async () => {
    const text = await scrape(collector(deps()));
    // selection: physical + bond + vlan + OVS internal; no lo/veth/tap/bridge
    const devices = [...new Set([...text.matchAll(/^flowpath_nic_info\{device="([^"]+)"/gm)].map((m) => m[1]))];
    expect(devices).toEqual(['bond0', 'br-int', 'ens5', 'eth0', 'eth0.100', 'eth1', 'eth2', 'eth3']);
    expect(text).toContain('flowpath_nic_info{device="eth0",class="physical",kind="",driver="mlx5_core"} 1');
    expect(text).toContain('flowpath_nic_info{device="br-int",class="ovs-internal",kind="openvswitch",driver=""} 1');
    // sysfs
    expect(sample(text, 'flowpath_nic_speed_bytes_per_second{device="eth0"}')).toBe(100000 * 125000);
    expect(sample(text, 'flowpath_nic_speed_bytes_per_second{device="eth2"}')).toBeUndefined(); // -1
    expect(sample(text, 'flowpath_nic_rx_missed_errors_total{device="eth0"}')).toBe(42);
    expect(sample(text, 'flowpath_nic_rx_bytes_total{device="eth0"}')).toBe(15000000000);
    expect(sample(text, 'flowpath_nic_up{device="eth3"}')).toBe(0);
    expect(sample(text, 'flowpath_nic_tx_queue_timeouts_total{device="eth0",queue="2"}')).toBe(3);
    expect(sample(text, 'flowpath_nic_mtu_bytes{device="eth0.100"}')).toBe(8996);
    // rings / channels / features / pause / std stats
    expect(sample(text, 'flowpath_nic_rx_ring_entries{device="eth0"}')).toBe(1024);
    expect(sample(text, 'flowpath_nic_rx_ring_max_entries{device="eth0"}')).toBe(8192);
    expect(sample(text, 'flowpath_nic_channels{device="eth0",type="combined"}')).toBe(4);
    expect(sample(text, 'flowpath_nic_channels_max{device="eth0",type="combined"}')).toBe(63);
    expect(sample(text, 'flowpath_nic_rx_coalesce_seconds{device="eth0"}')).toBe(8e-6);
    expect(sample(text, 'flowpath_nic_rx_coalesce_frames{device="eth0"}')).toBe(128);
    expect(sample(text, 'flowpath_nic_tx_coalesce_seconds{device="eth0"}')).toBe(16e-6);
    expect(sample(text, 'flowpath_nic_rx_coalesce_adaptive{device="eth0"}')).toBe(1);
    expect(sample(text, 'flowpath_nic_tx_coalesce_adaptive{device="eth0"}')).toBe(0);
    expect(sample(text, 'flowpath_nic_tx_coalesce_adaptive{device="eth2"}')).toBeUndefined(); // virtio: n/a
    expect(sample(text, 'flowpath_nic_rx_coalesce_frames{device="eth2"}')).toBe(1);
    expect(sample(text, 'flowpath_nic_offload_active{device="eth0",feature="tx-tcp-segmentation"}')).toBe(0);
    expect(sample(text, 'flowpath_nic_offload_requested{device="eth0",feature="tx-tcp-segmentation"}')).toBe(1);
    expect(sample(text, 'flowpath_nic_offload_active{device="eth0",feature="rx-gro-hw"}')).toBe(1);
    expect(text).not.toContain('feature="highdma"'); // not in the default feature regex
    expect(sample(text, 'flowpath_nic_pause_rx_frames_total{device="eth0"}')).toBe(123456789012);
    expect(sample(text, 'flowpath_nic_pause_tx_enabled{device="eth0"}')).toBe(1);
    expect(sample(text, 'flowpath_nic_std_stat_total{device="eth0",group="eth-mac",stat="FrameCheckSequenceErrors"}')).toBe(12);
    expect(sample(text, 'flowpath_nic_rmon_frames_by_size_total{device="eth0",direction="rx",size="1519-10240"}')).toBe(4000000000);
    // per-queue stats with a queue label
    expect(sample(text, 'flowpath_nic_queue_rx_hw_drops_total{device="eth0",queue="2"}')).toBe(17);
    expect(sample(text, 'flowpath_nic_queue_tx_stop_total{device="eth0",queue="0"}')).toBe(250);
    expect(sample(text, 'flowpath_nic_queue_rx_bytes_total{device="eth0",queue="3"}')).toBe(6000000000);
    expect(text).not.toContain('flowpath_nic_queue_rx_csum_unnecessary_total'); // not in the default qstats regex
    // driver stats
    expect(sample(text, 'flowpath_nic_driver_stat_total{device="eth0",queue="",stat="rx_out_of_buffer"}')).toBe(1024);
    expect(sample(text, 'flowpath_nic_driver_stat_total{device="ens5",queue="",stat="pps_allowance_exceeded"}')).toBe(56);
    expect(sample(text, 'flowpath_nic_driver_stat_total{device="eth1",queue="",stat="rx_no_dma_resources"}')).toBe(31);
    // source status: only for what the device supports
    expect(sample(text, 'flowpath_nic_source_success{device="eth0",source="pause"}')).toBe(1);
    expect(sample(text, 'flowpath_nic_source_success{device="eth2",source="pause"}')).toBeUndefined();
    expect(sample(text, 'flowpath_nic_source_success{device="eth2",source="qstats"}')).toBe(1);
  });

  it('emits only declared families and passes promtool check metrics', async () => {
    const out = new Emitter();
    await collector(deps()).collect(out, ctx);
    const declared = new Set(NIC_METRICS.map((m) => m.name));
    for (const f of out.familyNames()) expect(declared).toContain(f);
    expect(nicCollector.metrics).toBe(NIC_METRICS);
    if (!promtoolAvailable()) throw new Error('promtool is required for this test');
    const r = promtoolCheckMetrics(out.render());
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it('remembers EOPNOTSUPP per device and source: asked once, not on later scrapes', async () => {
    const d = deps();
    const c = collector(d);
    await scrape(c);
    const first = d.ethtool.calls.filter((x) => x.startsWith('pause ')).sort();
    expect(first).toEqual(['pause bond0', 'pause br-int', 'pause ens5', 'pause eth0', 'pause eth0.100', 'pause eth1', 'pause eth2', 'pause eth3']);
    d.ethtool.calls = [];
    d.driverStats.calls = [];
    await scrape(c);
    expect(d.ethtool.calls.filter((x) => x.startsWith('pause '))).toEqual(['pause eth0']);
    expect(d.driverStats.calls.sort()).toEqual(['ens5', 'eth0', 'eth1', 'eth2']); // bond0, br-int, ... said "no stats available"
  });

  it('EPERM or a malformed reply drops only that part of that device, logs once, and sets source_success 0', async () => {
    const warnings: string[] = [];
    const log: Logger = { ...nullLogger, warn: (m: string) => warnings.push(m), child: () => log };
    const d = deps({
      ethtool: new FakeEthtool({
        eth0: {
          rings: mlx5.rings(),
          channels: () => {
            throw eperm();
          },
          features: () => {
            throw new DecodeError('ethtool FEATURES_GET_REPLY', 20, 'bad');
          },
          pause: mlx5.pause(),
          stats: mlx5.stats(),
        },
      }) as never,
      driverStats: new FakeDriverStats({
        eth0: () => {
          throw new Error('ethtool -S eth0: exit 75: Operation not permitted');
        },
        eth1: ok('ixgbe'),
      }) as never,
    });
    const c = collector(d, {}, log);
    const text = await scrape(c);
    expect(sample(text, 'flowpath_nic_source_success{device="eth0",source="channels"}')).toBe(0);
    expect(sample(text, 'flowpath_nic_source_success{device="eth0",source="features"}')).toBe(0);
    expect(sample(text, 'flowpath_nic_source_success{device="eth0",source="driver_stats"}')).toBe(0);
    expect(text).not.toMatch(/flowpath_nic_channels\{device="eth0"/);
    expect(text).not.toMatch(/flowpath_nic_offload_active\{device="eth0"/);
    expect(text).not.toMatch(/flowpath_nic_driver_stat_total\{device="eth0"/);
    // the rest of eth0 and the other devices are unaffected
    expect(sample(text, 'flowpath_nic_rx_ring_entries{device="eth0"}')).toBe(1024);
    expect(sample(text, 'flowpath_nic_pause_rx_frames_total{device="eth0"}')).toBe(123456789012);
    expect(sample(text, 'flowpath_nic_driver_stat_total{device="eth1",queue="",stat="rx_no_dma_resources"}')).toBe(31);
    expect(sample(text, 'flowpath_nic_rx_missed_errors_total{device="eth0"}')).toBe(42);
    expect(warnings.sort()).toEqual(['ethtool -S eth0: exit 75: Operation not permitted', 'ethtool FEATURES_GET_REPLY: bad at offset 20', 'fixture: kernel answered EPERM (-1)']);
    // failures are retried every scrape (not remembered like EOPNOTSUPP) but logged only once
    await scrape(c);
    expect(d.ethtool.calls.filter((x) => x === 'channels eth0')).toHaveLength(2);
    expect(warnings).toHaveLength(3);
  });

  it('a missing generic-netlink family turns those parts off without failing', async () => {
    const { NetlinkError } = await import('../../../src/sources/netlink/socket');
    const missing = () => {
      throw new NetlinkError(-2, 'genl family lookup "ethtool"');
    };
    const d = deps({ ethtool: new FakeEthtool({}, missing as () => never) as never });
    const c = collector(d);
    const text = await scrape(c);
    expect(text).not.toContain('flowpath_nic_rx_ring_entries');
    expect(text).not.toMatch(/source="(rings|channels|coalesce|features|pause|stats)"/);
    expect(text).toContain('flowpath_nic_rx_missed_errors_total{device="eth0"} 42');
    const calls = d.ethtool.calls.length;
    await scrape(c);
    expect(d.ethtool.calls.length).toBe(calls);
  });

  // A sysfs-only tree (no link lookup): devices are listed from class/net.
  describe('malformed sysfs', () => {
    let tmp: string;
    beforeEach(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-nic-col-'));
      fs.cpSync(path.join(HOST_MQ, 'sys'), path.join(tmp, 'sys'), { recursive: true, verbatimSymlinks: true });
    });
    afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

    it('fails the collector with the file name rather than export a wrong number', async () => {
      fs.writeFileSync(path.join(tmp, 'sys/class/net/eth1/mtu'), '1500 bytes\n');
      await expect(scrape(collector(deps({ links: null }), {}, nullLogger, path.join(tmp, 'sys')))).rejects.toThrow(/eth1\/mtu: expected an integer, got "1500 bytes"/);
    });

    it('skips a device whose directory vanished between listing and reading', async () => {
      const c = collector(deps({ links: null }), { 'collector.nic.device-include': 'eth.*' }, nullLogger, path.join(tmp, 'sys'));
      const before = await scrape(c);
      expect(before).toContain('device="eth3"');
      fs.rmSync(path.join(tmp, 'sys/devices/pci0000:00/0000:00:1c.0/0000:02:00.0/net/eth3'), { recursive: true });
      const after = await scrape(c);
      expect(after).not.toContain('device="eth3"');
      expect(after).toContain('device="eth1"');
    });

    it('fails when the class/net directory is missing', async () => {
      fs.rmSync(path.join(tmp, 'sys/class'), { recursive: true });
      await expect(scrape(collector(deps({ links: null }), {}, nullLogger, path.join(tmp, 'sys')))).rejects.toThrow(/listing network devices in .*class\/net/);
    });
  });

  it('a failed or malformed link dump fails the collector with the decoder\'s message (no partial devices)', async () => {
    const { DecodeError } = await import('../../../src/sources/netlink/attrs');
    const broken = { links: async () => Promise.reject(new DecodeError('rtnetlink RTM_NEWLINK', 52, 'IFLA_STATS64 has length 100, want a multiple of 8 of at least 184')) };
    await expect(scrape(collector(deps({ links: broken })))).rejects.toThrow(/RTM_NEWLINK: IFLA_STATS64 has length 100/);
  });

  it('honours the feature, queue-stats and driver-stats flags', async () => {
    const text = await scrape(
      collector(deps(), {
        'collector.nic.features': 'highdma',
        'collector.nic.queue-stats': 'rx-csum-.*',
        'collector.nic.driver-stats-include': 'tx\\d+_stopped',
      }),
    );
    expect(text).toMatch(/feature="highdma"/);
    expect(text).not.toMatch(/feature="rx-gro"/);
    expect(sample(text, 'flowpath_nic_queue_rx_csum_unnecessary_total{device="eth0",queue="1"}')).toBe(1998);
    expect(text).not.toContain('flowpath_nic_queue_rx_packets_total');
    expect(text.match(/^flowpath_nic_driver_stat_total.*$/gm)).toEqual([
      'flowpath_nic_driver_stat_total{device="eth0",queue="0",stat="tx_stopped"} 250',
      'flowpath_nic_driver_stat_total{device="eth0",queue="1",stat="tx_stopped"} 0',
    ]);
    const off = await scrape(collector(deps(), { 'collector.nic.driver-stats': 'false' } as never));
    expect(off).not.toContain('flowpath_nic_driver_stat_total');
  });
});
