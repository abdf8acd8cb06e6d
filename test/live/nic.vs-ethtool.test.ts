// The nic collector against the ethtool CLI and an independent sysfs read, on the same devices of this
// machine's own network namespace: eth0 (virtio_net) and lo. No root needed; nothing is created.
// (veth, tap and bridge in a private namespace: test/lab/nic.vs-ethtool.test.ts.)
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import { Config } from '../../src/core/flags';
import { Emitter } from '../../src/core/metrics';
import { nullLogger } from '../../src/core/log';
import { allFlags } from '../../src/exporter';
import { createNicCollector, nicFeaturesFlag } from '../../src/collectors/nic';
import { parseEthtoolStats, splitQueue } from '../../src/sources/ethtool-cli';
import { parseEthtoolI, parseEthtoolK, parseEthtoolSections, samples } from '../support/ethtool-text';

const DEV = fs.existsSync('/sys/class/net/eth0/device') ? 'eth0' : '';
const d = DEV ? describe : describe.skip;
const ethtool = (...args: string[]) => execFileSync('ethtool', args, { encoding: 'utf8' });
const ethtoolFails = (...args: string[]) => {
  try {
    execFileSync('ethtool', args, { encoding: 'utf8', stdio: 'pipe' });
    return '';
  } catch (e) {
    return String((e as { stderr?: string }).stderr ?? '');
  }
};
const sysfsNum = (dev: string, f: string) => Number(fs.readFileSync(`/sys/class/net/${dev}/${f}`, 'utf8'));

d('nic collector vs ethtool and sysfs (this machine, eth0 and lo)', () => {
  const config = Config.from(allFlags(), { 'collector.nic.device-include': `${DEV}|lo`, 'collector.nic.features': '.*', 'collector.nic.driver-stats-ttl': '0s' });
  const c = createNicCollector({ config, log: nullLogger });
  afterAll(() => c.close?.());
  const scrape = async () => {
    const out = new Emitter();
    await c.collect(out, { signal: new AbortController().signal, now: Date.now() });
    return samples(out.render());
  };

  it('ethtool -i: the driver label', async () => {
    const s = await scrape();
    const drv = parseEthtoolI(ethtool('-i', DEV)).get('driver')!;
    expect(s.get(`flowpath_nic_info{device="${DEV}",class="physical",kind="",driver="${drv}"}`)).toBe(1);
    expect(s.get('flowpath_nic_info{device="lo",class="loopback",kind="",driver=""}')).toBe(1);
  });

  it('ethtool -g / -l: rings and channels, n/a = absent', async () => {
    const s = await scrape();
    const g = parseEthtoolSections(ethtool('-g', DEV));
    expect(s.get(`flowpath_nic_rx_ring_entries{device="${DEV}"}`)).toBe(g.current.get('RX'));
    expect(s.get(`flowpath_nic_rx_ring_max_entries{device="${DEV}"}`)).toBe(g.max.get('RX'));
    expect(s.get(`flowpath_nic_tx_ring_entries{device="${DEV}"}`)).toBe(g.current.get('TX'));
    expect(s.get(`flowpath_nic_tx_ring_max_entries{device="${DEV}"}`)).toBe(g.max.get('TX'));
    const l = parseEthtoolSections(ethtool('-l', DEV));
    for (const [label, type] of [['RX', 'rx'], ['TX', 'tx'], ['Other', 'other'], ['Combined', 'combined']]) {
      expect([type, s.get(`flowpath_nic_channels{device="${DEV}",type="${type}"}`)]).toEqual([type, l.current.get(label)]);
      expect([type, s.get(`flowpath_nic_channels_max{device="${DEV}",type="${type}"}`)]).toEqual([type, l.max.get(label)]);
    }
    // lo has no rings: ethtool says "Operation not supported", we export nothing (and remember it)
    expect(ethtoolFails('-g', 'lo')).toMatch(/not supported/i);
    expect(s.has('flowpath_nic_rx_ring_entries{device="lo"}')).toBe(false);
    expect(s.has('flowpath_nic_source_success{device="lo",source="rings"}')).toBe(false);
  });

  it('ethtool -c: interrupt coalescing in seconds and frames, adaptive as 0/1, n/a = absent', async () => {
    const s = await scrape();
    const text = ethtool('-c', DEV);
    const field = (name: string): number | undefined => {
      const m = new RegExp(`^${name}:\\s+(\\S+)`, 'm').exec(text);
      return !m || m[1] === 'n/a' ? undefined : Number(m[1]);
    };
    const adaptive = (dir: 'RX' | 'TX'): number | undefined => {
      const m = new RegExp(`Adaptive RX: (\\S+)\\s+TX: (\\S+)`).exec(text)!;
      const v = dir === 'RX' ? m[1] : m[2];
      return v === 'n/a' ? undefined : v === 'on' ? 1 : 0;
    };
    const us = (v: number | undefined) => (v === undefined ? undefined : v / 1e6);
    expect(s.get(`flowpath_nic_rx_coalesce_seconds{device="${DEV}"}`)).toBe(us(field('rx-usecs')));
    expect(s.get(`flowpath_nic_rx_coalesce_frames{device="${DEV}"}`)).toBe(field('rx-frames'));
    expect(s.get(`flowpath_nic_tx_coalesce_seconds{device="${DEV}"}`)).toBe(us(field('tx-usecs')));
    expect(s.get(`flowpath_nic_tx_coalesce_frames{device="${DEV}"}`)).toBe(field('tx-frames'));
    expect(s.get(`flowpath_nic_rx_coalesce_adaptive{device="${DEV}"}`)).toBe(adaptive('RX'));
    expect(s.get(`flowpath_nic_tx_coalesce_adaptive{device="${DEV}"}`)).toBe(adaptive('TX'));
    expect(field('rx-frames')).toBeDefined(); // the comparison above is not all-absent on this VM
    // lo has no coalescing: ethtool says so, we export nothing
    expect(ethtoolFails('-c', 'lo')).toMatch(/not supported/i);
    expect([...s.keys()].some((k) => k.includes('coalesce') && k.includes('device="lo"'))).toBe(false);
  });

  it('ethtool -k: every feature ethtool prints by kernel name has the same on/fixed/requested state', async () => {
    expect(nicFeaturesFlag.default!.test('tx-tcp-segmentation')).toBe(true);
    const s = await scrape();
    for (const dev of [DEV, 'lo']) {
      const k = parseEthtoolK(ethtool('-k', dev));
      let compared = 0;
      for (const [name, st] of k) {
        const active = s.get(`flowpath_nic_offload_active{device="${dev}",feature="${name}"}`);
        if (active === undefined) continue; // a legacy group label without a single kernel bit
        compared++;
        expect([dev, name, 'on', active]).toEqual([dev, name, 'on', st.on ? 1 : 0]);
        expect([dev, name, 'fixed', s.get(`flowpath_nic_offload_fixed{device="${dev}",feature="${name}"}`)]).toEqual([dev, name, 'fixed', st.fixed ? 1 : 0]);
        if (!st.fixed) {
          const wanted = st.requested ?? st.on;
          expect([dev, name, 'requested', s.get(`flowpath_nic_offload_requested{device="${dev}",feature="${name}"}`)]).toEqual([dev, name, 'requested', wanted ? 1 : 0]);
        }
      }
      // TSO, GSO, GRO, LRO, HW GRO, checksumming and scatter-gather are all among them
      expect(compared).toBeGreaterThan(40);
      for (const f of ['tx-tcp-segmentation', 'tx-generic-segmentation', 'rx-gro', 'rx-lro', 'rx-gro-hw', 'tx-checksum-ip-generic', 'tx-scatter-gather']) {
        expect(s.has(`flowpath_nic_offload_active{device="${dev}",feature="${f}"}`)).toBe(true);
      }
    }
  });

  it('ethtool -a: pause not supported here → no pause series; ethtool -S: same values, queue in a label', async () => {
    expect(ethtoolFails('-a', DEV)).toMatch(/not supported/i);
    const before = parseEthtoolStats(ethtool('-S', DEV));
    const s = await scrape();
    const after = parseEthtoolStats(ethtool('-S', DEV));
    expect([...s.keys()].some((k) => k.startsWith(`flowpath_nic_pause_rx_enabled{device="${DEV}"`))).toBe(false);
    const include = config.get(allFlags().find((f) => f.name === 'collector.nic.driver-stats-include')!) as RegExp;
    let n = 0;
    for (let i = 0; i < before.length; i++) {
      const { name } = before[i];
      const { stat, queue } = splitQueue(name);
      const v = s.get(`flowpath_nic_driver_stat_total{device="${DEV}",queue="${queue}",stat="${stat}"}`);
      if (!include.test(name)) {
        expect(v).toBeUndefined();
        continue;
      }
      n++;
      expect(v).toBeGreaterThanOrEqual(before[i].value);
      expect(v).toBeLessThanOrEqual(after.find((a) => a.name === name)!.value);
    }
    expect(n).toBeGreaterThan(0);
    // lo: "no stats available" → nothing, and no failure
    expect(ethtoolFails('-S', 'lo')).toMatch(/no stats available/);
    expect([...s.keys()].some((k) => k.includes('driver_stat_total{device="lo"'))).toBe(false);
  });

  it('sysfs: attributes equal an independent read, counters lie between reads before and after', async () => {
    const stats = ['rx_bytes', 'rx_packets', 'tx_bytes', 'tx_packets', 'rx_dropped', 'rx_missed_errors', 'tx_dropped', 'rx_nohandler'];
    for (const dev of [DEV, 'lo']) {
      const before = stats.map((f) => sysfsNum(dev, `statistics/${f}`));
      const s = await scrape();
      const after = stats.map((f) => sysfsNum(dev, `statistics/${f}`));
      stats.forEach((f, i) => {
        const v = s.get(`flowpath_nic_${f}_total{device="${dev}"}`)!;
        expect([dev, f, v >= before[i] && v <= after[i]]).toEqual([dev, f, true]);
      });
      expect(s.get(`flowpath_nic_mtu_bytes{device="${dev}"}`)).toBe(sysfsNum(dev, 'mtu'));
      expect(s.get(`flowpath_nic_tx_queue_len_packets{device="${dev}"}`)).toBe(sysfsNum(dev, 'tx_queue_len'));
      expect(s.get(`flowpath_nic_carrier_changes_total{device="${dev}"}`)).toBe(sysfsNum(dev, 'carrier_changes'));
      const op = fs.readFileSync(`/sys/class/net/${dev}/operstate`, 'utf8').trim();
      expect(s.get(`flowpath_nic_operstate_info{device="${dev}",operstate="${op}"}`)).toBe(1);
    }
    // speed -1 on virtio: absent, not -125000
    if (fs.readFileSync(`/sys/class/net/${DEV}/speed`, 'utf8').trim() === '-1') {
      expect((await scrape()).has(`flowpath_nic_speed_bytes_per_second{device="${DEV}"}`)).toBe(false);
    }
  });

  it('netdev qstats: per-queue sums equal the device counters, both bracketed by sysfs reads', async () => {
    const before = sysfsNum(DEV, 'statistics/rx_packets');
    const s = await scrape();
    const after = sysfsNum(DEV, 'statistics/rx_packets');
    const q = [...s].filter(([k]) => k.startsWith(`flowpath_nic_queue_rx_packets_total{device="${DEV}"`));
    // qstats exist since Linux 6.9 and virtio_net implements them (docs/kernel-sources.md §5.6)
    const [maj, min] = os.release().split('.').map(Number);
    if (maj < 6 || (maj === 6 && min < 9)) return;
    expect(q.length).toBeGreaterThan(0);
    const sum = q.reduce((a, [, v]) => a + v, 0);
    expect(sum).toBeGreaterThanOrEqual(before);
    expect(sum).toBeLessThanOrEqual(after);
  });

  it('counters move with loopback traffic', async () => {
    const s0 = await scrape();
    const bytes = 4 << 20;
    await new Promise<void>((resolve, reject) => {
      const srv = net.createServer((sock) => {
        let got = 0;
        sock.on('data', (b) => {
          got += b.length;
          if (got >= bytes) sock.end();
        });
      });
      srv.listen(0, '127.0.0.1', () => {
        const port = (srv.address() as net.AddressInfo).port;
        const cl = net.connect(port, '127.0.0.1', () => cl.write(Buffer.alloc(bytes)));
        cl.on('close', () => srv.close(() => resolve()));
        cl.on('error', reject);
        cl.on('data', () => undefined);
      });
    });
    const s1 = await scrape();
    expect(s1.get('flowpath_nic_rx_bytes_total{device="lo"}')! - s0.get('flowpath_nic_rx_bytes_total{device="lo"}')!).toBeGreaterThanOrEqual(bytes);
    expect(s1.get('flowpath_nic_tx_packets_total{device="lo"}')!).toBeGreaterThan(s0.get('flowpath_nic_tx_packets_total{device="lo"}')!);
  });
});
