// The nic and irq collectors against ethtool and sysfs on veth, tap and bridge devices created here in two
// private network namespaces (needs root). The collectors run inside namespace A through
// `ip netns exec` (which also mounts that namespace's /sys), the reference tools run the same way.
// Everything is deleted in afterAll (deleting a namespace removes the devices in it).
import { execFileSync, spawnSync } from 'child_process';
import * as path from 'path';
import { parseEthtoolStats, splitQueue } from '../../src/sources/ethtool-cli';
import { nicDriverStatsIncludeFlag } from '../../src/collectors/nic';
import { parseEthtoolI, parseEthtoolK, parseEthtoolSections, samples } from '../support/ethtool-text';

const REPO = path.join(__dirname, '../..');
const root = process.getuid?.() === 0 && spawnSync('ip', ['-V']).status === 0;
const d = root ? describe : describe.skip;
const NS_A = `fpnic${process.pid}a`;
const NS_B = `fpnic${process.pid}b`;
const A_IP = '10.231.77.1';
const B_IP = '10.231.77.2';

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const inA = (cmd: string, ...args: string[]) => execFileSync('ip', ['netns', 'exec', NS_A, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const inAFails = (cmd: string, ...args: string[]) => {
  const r = spawnSync('ip', ['netns', 'exec', NS_A, cmd, ...args], { encoding: 'utf8' });
  return r.status === 0 ? '' : r.stderr;
};
const sysA = (p: string) => inA('cat', `/sys/class/net/${p}`).trim();

function cleanup(): void {
  for (const ns of [NS_A, NS_B]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

/** Run the collectors once inside namespace A; returns the parsed exposition. */
function scrape(): Map<string, number> {
  const r = spawnSync(
    'ip',
    [
      'netns', 'exec', NS_A, process.execPath, '-r', path.join(REPO, 'test/support/ts-register.js'), path.join(REPO, 'test/support/collect-once.ts'),
      'nic,irq', '--collector.nic.device-include=vA|br0|tap0|lo', '--collector.nic.features=.*', '--collector.nic.driver-stats-ttl=0s', '--collector.irq.per-cpu=all',
    ],
    { encoding: 'utf8', cwd: REPO },
  );
  if (r.status !== 0) throw new Error(`collect-once exited ${r.status}: ${r.stdout.slice(-500)} ${r.stderr.slice(-2000)}`);
  return samples(r.stdout);
}

d('nic/irq collectors vs ethtool and sysfs on veth, tap and bridge (private namespaces)', () => {
  let s: Map<string, number>;

  beforeAll(() => {
    cleanup();
    ip('netns', 'add', NS_A);
    ip('netns', 'add', NS_B);
    for (const ns of [NS_A, NS_B]) {
      execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    ip('-n', NS_A, 'link', 'add', 'vA', 'numtxqueues', '4', 'numrxqueues', '4', 'type', 'veth', 'peer', 'name', 'vB', 'numtxqueues', '4', 'numrxqueues', '4', 'netns', NS_B);
    ip('-n', NS_A, 'addr', 'add', `${A_IP}/30`, 'dev', 'vA');
    ip('-n', NS_B, 'addr', 'add', `${B_IP}/30`, 'dev', 'vB');
    ip('-n', NS_A, 'link', 'set', 'vA', 'up');
    ip('-n', NS_B, 'link', 'set', 'vB', 'up');
    ip('-n', NS_A, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', NS_A, 'link', 'set', 'br0', 'up');
    ip('-n', NS_A, 'tuntap', 'add', 'tap0', 'mode', 'tap');
    // RPS on rx-1 (CPUs 0-1 or 0), XPS on tx-2
    inA('sh', '-c', 'echo 3 > /sys/class/net/vA/queues/rx-1/rps_cpus; echo 256 > /sys/class/net/vA/queues/rx-1/rps_flow_cnt; echo 1 > /sys/class/net/vA/queues/tx-2/xps_cpus');
    execFileSync('ip', ['netns', 'exec', NS_A, 'ping', '-c', '2', '-i', '0.2', '-q', B_IP], { stdio: 'ignore' }); // non-zero counters
    s = scrape();
  }, 60_000);
  afterAll(cleanup);

  it('selects exactly the included devices and labels their kind as ethtool -i names the driver', () => {
    for (const [dev, cls] of [['vA', 'virtual'], ['br0', 'bridge'], ['tap0', 'tun']]) {
      const drv = parseEthtoolI(inA('ethtool', '-i', dev)).get('driver');
      expect(s.get(`flowpath_nic_info{device="${dev}",class="${cls}",kind="${drv}",driver=""}`)).toBe(1);
    }
    expect(s.get('flowpath_nic_info{device="lo",class="loopback",kind="",driver=""}')).toBe(1);
    expect([...s.keys()].filter((k) => k.startsWith('flowpath_nic_info{'))).toHaveLength(4);
  });

  it('ethtool -k: same on/fixed/requested state for every feature of vA, br0, tap0', () => {
    for (const dev of ['vA', 'br0', 'tap0']) {
      const k = parseEthtoolK(inA('ethtool', '-k', dev));
      let n = 0;
      for (const [name, st] of k) {
        const active = s.get(`flowpath_nic_offload_active{device="${dev}",feature="${name}"}`);
        if (active === undefined) continue;
        n++;
        expect([dev, name, active, s.get(`flowpath_nic_offload_fixed{device="${dev}",feature="${name}"}`)]).toEqual([dev, name, st.on ? 1 : 0, st.fixed ? 1 : 0]);
        if (!st.fixed) expect([dev, name, s.get(`flowpath_nic_offload_requested{device="${dev}",feature="${name}"}`)]).toEqual([dev, name, (st.requested ?? st.on) ? 1 : 0]);
      }
      expect([dev, n > 40]).toEqual([dev, true]);
    }
  });

  it('ethtool -l / -g: veth channels 4/4; no rings on veth (EOPNOTSUPP → absent)', () => {
    const l = parseEthtoolSections(inA('ethtool', '-l', 'vA'));
    expect(s.get('flowpath_nic_channels{device="vA",type="rx"}')).toBe(l.current.get('RX'));
    expect(s.get('flowpath_nic_channels{device="vA",type="tx"}')).toBe(l.current.get('TX'));
    expect(s.get('flowpath_nic_channels_max{device="vA",type="rx"}')).toBe(l.max.get('RX'));
    expect(l.current.get('RX')).toBe(4);
    expect(inAFails('ethtool', '-g', 'vA')).toMatch(/not supported/i);
    expect([...s.keys()].some((k) => k.includes('ring_entries{device="vA"'))).toBe(false);
    expect(s.has('flowpath_nic_source_success{device="vA",source="rings"}')).toBe(false);
    expect(s.get('flowpath_nic_source_success{device="vA",source="features"}')).toBe(1);
  });

  it('ethtool -S: veth per-queue drop counters with a queue label; tap and bridge have none', () => {
    const stats = parseEthtoolStats(inA('ethtool', '-S', 'vA'));
    const include = nicDriverStatsIncludeFlag.default!;
    const kept = stats.filter((x) => include.test(x.name));
    expect(kept.length).toBeGreaterThanOrEqual(4);
    for (const x of kept) {
      const { stat, queue } = splitQueue(x.name);
      expect([x.name, s.get(`flowpath_nic_driver_stat_total{device="vA",queue="${queue}",stat="${stat}"}`)]).toEqual([x.name, x.value]);
    }
    expect(s.has('flowpath_nic_driver_stat_total{device="vA",queue="",stat="peer_ifindex"}')).toBe(false);
    expect(s.has('flowpath_nic_driver_stat_total{device="vA",queue="3",stat="rx_queue_drops"}')).toBe(true);
    for (const dev of ['tap0', 'br0']) {
      expect(inAFails('ethtool', '-S', dev)).toMatch(/no stats available|not supported/i);
      expect([...s.keys()].some((k) => k.includes(`driver_stat_total{device="${dev}"`))).toBe(false);
    }
  });

  it('sysfs attributes and RPS/XPS equal what the namespace shows; veth has no IRQs', () => {
    for (const dev of ['vA', 'br0', 'tap0']) {
      expect(s.get(`flowpath_nic_mtu_bytes{device="${dev}"}`)).toBe(Number(sysA(`${dev}/mtu`)));
      expect(s.get(`flowpath_nic_tx_queue_len_packets{device="${dev}"}`)).toBe(Number(sysA(`${dev}/tx_queue_len`)));
      expect(s.get(`flowpath_nic_operstate_info{device="${dev}",operstate="${sysA(`${dev}/operstate`)}"}`)).toBe(1);
    }
    expect(s.get('flowpath_nic_speed_bytes_per_second{device="vA"}')).toBe(Number(sysA('vA/speed')) * 125000);
    // Counters and caps come from the rtnetlink link dump: equal to every sysfs statistics/ file and to
    // ip -d link on these quiet devices (IPv6 off). Quiet is not silent (an ARP refresh may arrive at any
    // time), so the counters are read before and after a fresh scrape: equal when nothing moved, else
    // in between.
    const statFiles = (dev: string) => inA('ls', `/sys/class/net/${dev}/statistics`).split('\n').filter(Boolean);
    const readStats = () => new Map(['vA', 'br0', 'tap0'].flatMap((dev) => statFiles(dev).map((f) => [`${dev}/${f}`, Number(sysA(`${dev}/statistics/${f}`))] as const)));
    const before = readStats();
    const fresh = scrape();
    const after = readStats();
    for (const dev of ['vA', 'br0', 'tap0']) {
      for (const f of statFiles(dev)) {
        const v = fresh.get(`flowpath_nic_${f}_total{device="${dev}"}`);
        const lo = before.get(`${dev}/${f}`)!;
        const hi = after.get(`${dev}/${f}`)!;
        if (lo === hi) expect([dev, f, v]).toEqual([dev, f, lo]);
        else expect([dev, f, v! >= lo && v! <= hi]).toEqual([dev, f, true]);
      }
      expect(s.get(`flowpath_nic_carrier_down_changes_total{device="${dev}"}`)).toBe(Number(sysA(`${dev}/carrier_down_count`)));
      const j = JSON.parse(inA('ip', '-d', '-j', 'link', 'show', dev))[0];
      expect([dev, s.get(`flowpath_nic_gso_max_size_bytes{device="${dev}"}`), s.get(`flowpath_nic_tso_max_segments{device="${dev}"}`), s.get(`flowpath_nic_gro_max_size_bytes{device="${dev}"}`)]).toEqual([
        dev, j.gso_max_size, j.tso_max_segs, j.gro_max_size,
      ]);
    }
    expect(s.get('flowpath_nic_tx_packets_total{device="vA"}')).toBeGreaterThan(0);
    expect(s.get('flowpath_nic_carrier{device="tap0"}')).toBeUndefined(); // down: no carrier value, as sysfs (EINVAL)
    const nproc = Number(execFileSync('nproc', { encoding: 'utf8' }));
    expect(s.get('flowpath_rps_cpus{device="vA",queue="1"}')).toBe(Math.min(2, nproc));
    expect(s.get('flowpath_rps_info{device="vA",queue="1",cpus="' + (nproc > 1 ? '0-1' : '0') + '"}')).toBe(1);
    expect(s.get('flowpath_rps_flow_entries{device="vA",queue="1"}')).toBe(Number(sysA('vA/queues/rx-1/rps_flow_cnt')));
    expect(s.get('flowpath_rps_cpus{device="vA",queue="0"}')).toBe(0);
    expect(s.get('flowpath_xps_cpus{device="vA",queue="2"}')).toBe(1);
    expect(s.get('flowpath_xps_info{device="vA",queue="2",cpus="0",rxqs=""}')).toBe(1);
    expect([...s.keys()].some((k) => k.startsWith('flowpath_irq_info{'))).toBe(false);
  });

  it('counters move when traffic flows (ping over the veth), and lie between sysfs reads', () => {
    const before = Number(sysA('vA/statistics/tx_packets'));
    execFileSync('ip', ['netns', 'exec', NS_A, 'ping', '-c', '5', '-i', '0.2', '-q', B_IP], { stdio: 'ignore' });
    const mid = Number(sysA('vA/statistics/tx_packets'));
    const s2 = scrape();
    const after = Number(sysA('vA/statistics/tx_packets'));
    const v = s2.get('flowpath_nic_tx_packets_total{device="vA"}')!;
    expect(mid - before).toBeGreaterThanOrEqual(5);
    expect(v).toBeGreaterThanOrEqual(mid);
    expect(v).toBeLessThanOrEqual(after);
    expect(v - s.get('flowpath_nic_tx_packets_total{device="vA"}')!).toBeGreaterThanOrEqual(5);
    expect(s2.get('flowpath_nic_rx_bytes_total{device="vA"}')!).toBeGreaterThan(s.get('flowpath_nic_rx_bytes_total{device="vA"}')!);
  }, 60_000);
});
