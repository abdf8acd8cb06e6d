// `ethtool -S` text parsing, queue normalisation, and the runner (cache TTL, concurrency 1, timeout,
// unsupported devices) against fake ethtool binaries.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EthtoolStatsCli, classifyEthtoolRun, parseEthtoolStats, splitQueue } from '../../../src/sources/ethtool-cli';
import { emitDriverStats, nicDriverStatsIncludeFlag } from '../../../src/collectors/nic';
import { Emitter } from '../../../src/core/metrics';
import { NIC_FIXTURES } from './fixtures';

const text = (driver: string) => fs.readFileSync(path.join(NIC_FIXTURES, 'ethtool-S', `${driver}.txt`), 'utf8');
const DEFAULT_INCLUDE = nicDriverStatsIncludeFlag.default;

describe('parseEthtoolStats', () => {
  it('parses every driver fixture line', () => {
    for (const d of ['mlx5_core', 'ixgbe', 'ena', 'bnxt_en', 'i40e', 'virtio_net']) {
      const body = text(d);
      const lines = body.trim().split('\n').slice(1);
      const parsed = parseEthtoolStats(body, d);
      expect(parsed.map((s) => `     ${s.name}: ${s.value}`)).toEqual(lines);
    }
    expect(parseEthtoolStats(text('bnxt_en'))[0]).toEqual({ name: '[0]: rx_ucast_packets', value: 1000 });
    expect(parseEthtoolStats(text('mlx5_core')).find((s) => s.name === 'rx_pause_ctrl_phy')!.value).toBe(123456789012);
  });

  it('fails with the line number on malformed output', () => {
    expect(() => parseEthtoolStats(text('malformed'), 'eth9')).toThrow('ethtool -S eth9: line 3: not "name: value": "     this line has no value"');
    expect(() => parseEthtoolStats('Features for x:\n', 'eth9')).toThrow(/line 1: expected "NIC statistics:"/);
  });
});

describe('splitQueue', () => {
  it.each([
    ['rx_queue_3_drops', 'rx_queue_drops', '3'],
    ['tx_queue_0_packets', 'tx_queue_packets', '0'],
    ['queue_1_tx_queue_stop', 'queue_tx_queue_stop', '1'],
    ['rx12_buff_alloc_err', 'rx_buff_alloc_err', '12'],
    ['tx0_stopped', 'tx_stopped', '0'],
    ['ch3_events', 'ch_events', '3'],
    ['[2]: rx_discards', 'rx_discards', '2'],
    ['tx-1.tx_packets', 'tx_packets', '1'],
    ['rx_posted_desc[5]', 'rx_posted_desc', '5'],
    ['rx_prio3_pause', 'rx_prio3_pause', ''],
    ['tx_queue_stopped', 'tx_queue_stopped', ''],
    ['rx_out_of_buffer', 'rx_out_of_buffer', ''],
    ['port.rx_dropped', 'port.rx_dropped', ''],
  ])('%s → stat %s queue %s', (name, stat, queue) => {
    expect(splitQueue(name)).toEqual({ stat, queue });
  });
});

describe('driver stat selection (default include regex)', () => {
  const render = (d: string) => {
    const out = new Emitter();
    emitDriverStats(out, 'eth0', parseEthtoolStats(text(d)), DEFAULT_INCLUDE);
    return out.render();
  };

  it('keeps the mlx5 drop/stall counters with queue labels and leaves out traffic counters', () => {
    const r = render('mlx5_core');
    expect(r).toContain('flowpath_nic_driver_stat_total{device="eth0",queue="",stat="rx_out_of_buffer"} 1024');
    expect(r).toContain('flowpath_nic_driver_stat_total{device="eth0",queue="",stat="rx_discards_phy"} 77');
    expect(r).toContain('flowpath_nic_driver_stat_total{device="eth0",queue="1",stat="rx_buff_alloc_err"} 3');
    expect(r).toContain('flowpath_nic_driver_stat_total{device="eth0",queue="0",stat="tx_stopped"} 250');
    expect(r).toContain('flowpath_nic_driver_stat_total{device="eth0",queue="0",stat="tx_wake"} 250');
    expect(r).toContain('stat="rx_pause_ctrl_phy"} 123456789012');
    expect(r).not.toMatch(/stat="rx_bytes"|stat="rx_packets"|stat="ch_events"|stat="tx_xmit_more"/);
    // never a queue number inside the metric name or the stat label
    expect(r).not.toMatch(/stat="(rx|tx)\d/);
  });

  it('keeps ixgbe rx_no_dma_resources, ENA allowance counters, bnxt and i40e per-queue drops', () => {
    expect(render('ixgbe')).toContain('stat="rx_no_dma_resources"} 31');
    expect(render('ixgbe')).toContain('stat="rx_flow_control_xoff"} 4');
    const ena = render('ena');
    expect(ena).toContain('stat="bw_in_allowance_exceeded"} 1234');
    expect(ena).toContain('{device="eth0",queue="0",stat="queue_tx_queue_stop"} 3');
    expect(ena).toContain('{device="eth0",queue="0",stat="queue_rx_page_alloc_fail"} 2');
    expect(ena).not.toContain('conntrack_allowance_available');
    expect(render('bnxt_en')).toContain('{device="eth0",queue="1",stat="tx_discards"} 1');
    expect(render('i40e')).toContain('{device="eth0",queue="",stat="tx_busy"} 2');
  });

  it('does not emit a duplicate series when two raw names normalise alike', () => {
    const out = new Emitter();
    emitDriverStats(out, 'eth0', [{ name: '[0]: rx_drops', value: 1 }, { name: 'rx-0.rx_drops', value: 2 }, { name: 'rx_queue_0_drops', value: 3 }], DEFAULT_INCLUDE);
    expect(out.sampleCount('flowpath_nic_driver_stat_total')).toBe(2);
  });
});

describe('classifyEthtoolRun', () => {
  const base = { stdout: '', stderr: '' };
  it('classifies ethtool exit statuses', () => {
    expect(classifyEthtoolRun('lo', { ...base, code: 94, stderr: 'no stats available\n' }, 0)).toEqual({ kind: 'unsupported', reason: 'no stats available' });
    expect(classifyEthtoolRun('x', { ...base, code: 96, stderr: 'Cannot get stats strings information: No such device\n' }, 0)).toEqual({ kind: 'gone' });
    expect(() => classifyEthtoolRun('x', { ...base, code: 75, stderr: 'Cannot get stats strings information: Operation not permitted\n' }, 0)).toThrow(
      'ethtool -S x: exit 75: Cannot get stats strings information: Operation not permitted',
    );
    expect(classifyEthtoolRun('x', { ...base, code: 0, stdout: 'NIC statistics:\n     a_drop: 1\n' }, 5)).toEqual({ kind: 'ok', stats: [{ name: 'a_drop', value: 1 }], at: 5 });
  });
});

describe('EthtoolStatsCli against fake ethtool binaries', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-ethtool-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A fake ethtool: logs each call (start/end) and answers per device. */
  function fake(body: string): string {
    const p = path.join(dir, 'ethtool');
    fs.writeFileSync(
      p,
      `#!/bin/sh
echo "start $2" >> ${dir}/log
${body}
echo "end $2" >> ${dir}/log
`,
      { mode: 0o755 },
    );
    return p;
  }
  const log = () => (fs.existsSync(path.join(dir, 'log')) ? fs.readFileSync(path.join(dir, 'log'), 'utf8').trim().split('\n') : []);

  it('caches results for the TTL and runs one ethtool at a time', async () => {
    const bin = fake(`sleep 0.1; printf 'NIC statistics:\\n     rx_drops: %s\\n' "$(wc -l < ${dir}/log)"`);
    let now = 1000;
    const cli = new EthtoolStatsCli({ binary: bin, timeoutMs: 5000, ttlMs: 10000, now: () => now });
    const [a, b, c] = await Promise.all([cli.get('eth0'), cli.get('eth1'), cli.get('eth0')]);
    expect(a).toEqual(c); // same in-flight run
    expect(a.kind === 'ok' && b.kind === 'ok').toBe(true);
    expect(cli.spawned).toBe(2);
    // serial: eth0 ended before eth1 started
    expect(log()).toEqual(['start eth0', 'end eth0', 'start eth1', 'end eth1']);
    now += 5000;
    await cli.get('eth0');
    expect(cli.spawned).toBe(2); // within the TTL
    now += 6000;
    const again = await cli.get('eth0');
    expect(cli.spawned).toBe(3);
    expect(again.kind === 'ok' && again.stats[0].value).not.toBe(a.kind === 'ok' && a.stats[0].value);
  });

  it('kills a hung ethtool at the timeout and the next device still runs', async () => {
    const bin = fake(`if [ "$2" = hang ]; then exec sleep 30; fi; printf 'NIC statistics:\\n     x_err: 1\\n'`);
    const cli = new EthtoolStatsCli({ binary: bin, timeoutMs: 200, ttlMs: 0 });
    const [h, ok] = await Promise.allSettled([cli.get('hang'), cli.get('eth0')]);
    expect(h.status).toBe('rejected');
    expect((h as PromiseRejectedResult).reason.message).toBe('ethtool -S hang: timed out');
    expect(ok).toMatchObject({ status: 'fulfilled', value: { kind: 'ok', stats: [{ name: 'x_err', value: 1 }] } });
  });

  it('reports unsupported devices, vanished devices and a missing binary distinctly', async () => {
    const bin = fake(`case "$2" in lo) echo "no stats available" >&2; exit 94;; gone) echo "Cannot get stats strings information: No such device" >&2; exit 96;; esac`);
    const cli = new EthtoolStatsCli({ binary: bin, timeoutMs: 2000, ttlMs: 0 });
    expect(await cli.get('lo')).toMatchObject({ kind: 'unsupported' });
    expect(await cli.get('gone')).toEqual({ kind: 'gone' });
    const missing = new EthtoolStatsCli({ binary: path.join(dir, 'nope'), timeoutMs: 2000, ttlMs: 0 });
    await expect(missing.get('eth0')).rejects.toThrow(/cannot run ethtool/);
  });
});
