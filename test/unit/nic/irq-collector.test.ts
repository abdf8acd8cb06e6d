// The irq collector on the host-mq fixture, and the PromQL question it exists for, evaluated by
// `promtool test rules` on the fixture's own output: "which CPU handles the RX queue of this NIC, and is RPS off?"
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Config } from '../../../src/core/flags';
import { Emitter } from '../../../src/core/metrics';
import { nullLogger } from '../../../src/core/log';
import { allFlags } from '../../../src/exporter';
import { IRQ_METRICS, IrqDeps, actionMentions, createIrqCollector } from '../../../src/collectors/irq';
import { NetlinkError } from '../../../src/sources/netlink/socket';
import { promtoolAvailable, promtoolCheckMetrics } from '../../support/promtool';
import { FakeNetdev, HOST_MQ, fakeLinks, mlx5, withHostMqCopy } from './fixtures';

const ctx = { signal: new AbortController().signal, now: 0 };

function collector(over: Partial<IrqDeps> = {}, flags: Record<string, string> = {}, root = HOST_MQ) {
  const config = Config.from(allFlags(), { 'path.sysfs': path.join(root, 'sys'), 'path.procfs': path.join(root, 'proc'), ...flags });
  return createIrqCollector({ config, log: nullLogger }, { netdev: new FakeNetdev({ eth0: { queues: mlx5.queues(), napis: mlx5.napis() } }), links: fakeLinks(), ...over });
}
async function scrape(c: ReturnType<typeof collector>): Promise<string> {
  const out = new Emitter();
  await c.collect(out, ctx);
  return out.render();
}
const lines = (text: string, family: string) => text.split('\n').filter((l) => l.startsWith(family + '{') || l.startsWith(family + ' '));

/** The answer to the RX-CPU/RPS question; also in the irq collector's header comment and the report. */
export const RX_CPU_RPS_QUERY = 'flowpath_irq_rx_queue_cpu_info{device="eth0"} * on(instance, device, queue) group_left() (flowpath_rps_cpus{device="eth0"} == bool 0)';

describe('irq collector on host-mq', () => {
  it('maps every NIC interrupt to its queue and CPU (NAPI for mlx5, handler names for the rest)', async () => {
    const text = await scrape(collector());
    // devices in name order, IRQs ascending within a device
    expect(lines(text, 'flowpath_irq_info')).toEqual([
      'flowpath_irq_info{device="ens5",irq="27",action="ena-mgmnt@pci:0000:00:05.0",role="other",queue=""} 1',
      'flowpath_irq_info{device="ens5",irq="28",action="ens5-Tx-Rx-0",role="combined",queue="0"} 1',
      'flowpath_irq_info{device="ens5",irq="29",action="ens5-Tx-Rx-1",role="combined",queue="1"} 1',
      'flowpath_irq_info{device="eth0",irq="98",action="mlx5_async0@pci:0000:3b:00.0",role="other",queue=""} 1',
      'flowpath_irq_info{device="eth0",irq="99",action="mlx5_comp0@pci:0000:3b:00.0",role="combined",queue="0"} 1',
      'flowpath_irq_info{device="eth0",irq="100",action="mlx5_comp1@pci:0000:3b:00.0",role="combined",queue="1"} 1',
      'flowpath_irq_info{device="eth0",irq="101",action="mlx5_comp2@pci:0000:3b:00.0",role="combined",queue="2"} 1',
      'flowpath_irq_info{device="eth0",irq="102",action="mlx5_comp3@pci:0000:3b:00.0",role="combined",queue="3"} 1',
      'flowpath_irq_info{device="eth1",irq="120",action="eth1-TxRx-0",role="combined",queue="0"} 1',
      'flowpath_irq_info{device="eth1",irq="121",action="eth1-TxRx-1",role="combined",queue="1"} 1',
      'flowpath_irq_info{device="eth1",irq="122",action="eth1",role="other",queue=""} 1',
      'flowpath_irq_info{device="eth2",irq="40",action="virtio3-config",role="other",queue=""} 1',
      'flowpath_irq_info{device="eth2",irq="41",action="virtio3-input.0",role="rx",queue="0"} 1',
      'flowpath_irq_info{device="eth2",irq="42",action="virtio3-output.0",role="tx",queue="0"} 1',
      'flowpath_irq_info{device="eth2",irq="43",action="virtio3-input.1",role="rx",queue="1"} 1',
      'flowpath_irq_info{device="eth2",irq="44",action="virtio3-output.1",role="tx",queue="1"} 1',
      'flowpath_irq_info{device="eth3",irq="11",action="eth3",role="other",queue=""} 1',
    ]);
    // the upstream root ports' vectors (25, 30) are not attributed to any NIC
    expect(text).not.toMatch(/irq="(25|30)"/);
    expect(lines(text, 'flowpath_irq_rx_queue_cpu_info')).toEqual(
      expect.arrayContaining([
        'flowpath_irq_rx_queue_cpu_info{device="eth0",queue="3",irq="102",cpu="3"} 1',
        'flowpath_irq_rx_queue_cpu_info{device="eth2",queue="1",irq="43",cpu="3"} 1',
        'flowpath_irq_rx_queue_cpu_info{device="ens5",queue="0",irq="28",cpu="1"} 1',
      ]),
    );
    expect(lines(text, 'flowpath_irq_rx_queue_cpu_info')).toHaveLength(4 + 2 + 2 + 2);
  });

  it('exports interrupt counts: totals always, per CPU only where non-zero by default', async () => {
    const text = await scrape(collector());
    expect(lines(text, 'flowpath_irq_interrupts_total').find((l) => l.includes('irq="101"'))).toBe('flowpath_irq_interrupts_total{device="eth0",irq="101"} 345688');
    expect(lines(text, 'flowpath_irq_cpu_interrupts_total').filter((l) => l.includes('irq="101"'))).toEqual([
      'flowpath_irq_cpu_interrupts_total{device="eth0",irq="101",cpu="0"} 10',
      'flowpath_irq_cpu_interrupts_total{device="eth0",irq="101",cpu="2"} 345678',
    ]);
    // virtio counts come from /proc/interrupts (no /sys/kernel/irq entry in the fixture)
    expect(lines(text, 'flowpath_irq_cpu_interrupts_total').filter((l) => l.includes('irq="43"'))).toEqual(['flowpath_irq_cpu_interrupts_total{device="eth2",irq="43",cpu="3"} 1300']);
    expect(text).toContain('flowpath_irq_cpu_interrupts_total{device="eth0",irq="102",cpu="3"} 4294967295');
    const all = await scrape(collector({}, { 'collector.irq.per-cpu': 'all' }));
    expect(lines(all, 'flowpath_irq_cpu_interrupts_total')).toHaveLength(17 * 4);
    const none = await scrape(collector({}, { 'collector.irq.per-cpu': 'none' }));
    expect(lines(none, 'flowpath_irq_cpu_interrupts_total')).toHaveLength(0);
    expect(lines(none, 'flowpath_irq_interrupts_total')).toHaveLength(17);
  });

  it('exports RPS, RFS and XPS per queue', async () => {
    const text = await scrape(collector());
    expect(lines(text, 'flowpath_rps_cpus').filter((l) => l.includes('"eth0"'))).toEqual([
      'flowpath_rps_cpus{device="eth0",queue="0"} 0',
      'flowpath_rps_cpus{device="eth0",queue="1"} 0',
      'flowpath_rps_cpus{device="eth0",queue="2"} 0',
      'flowpath_rps_cpus{device="eth0",queue="3"} 3',
    ]);
    expect(text).toContain('flowpath_rps_info{device="eth0",queue="3",cpus="1-3"} 1');
    expect(text).toContain('flowpath_rps_info{device="eth0",queue="0",cpus=""} 1');
    expect(text).toContain('flowpath_rps_flow_entries{device="eth0",queue="3"} 4096');
    expect(text).toContain('flowpath_rps_sock_flow_entries 32768');
    expect(text).toContain('flowpath_xps_cpus{device="eth0",queue="2"} 1');
    expect(text).toContain('flowpath_xps_info{device="eth0",queue="2",cpus="2",rxqs=""} 1');
    expect(text).not.toMatch(/flowpath_xps_cpus\{device="eth3"/); // single queue: no xps_cpus
    expect(text).toContain('flowpath_irq_effective_cpu_info{device="eth2",irq="41",cpu="1"} 1');
    expect(text).toContain('flowpath_irq_affinity_info{device="eth2",irq="41",cpus="0-1"} 1');
  });

  it('reuses RPS/XPS settings for --collector.irq.topology-ttl; interrupt counts are read every scrape', async () => {
    await withHostMqCopy(async (tmp) => {
      const rps = path.join(tmp, 'sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/net/eth0/queues/rx-0/rps_cpus');
      expect(fs.existsSync(rps)).toBe(true);
      const cached = collector({}, {}, tmp);
      const every = collector({}, { 'collector.irq.topology-ttl': '0s' }, tmp);
      await scrape(cached);
      fs.writeFileSync(rps, '00000000,00000003\n');
      fs.writeFileSync(path.join(tmp, 'sys/kernel/irq/99/per_cpu_count'), '124456,0,0,0\n');
      const a = await scrape(cached);
      const b = await scrape(every);
      expect(a).toContain('flowpath_rps_cpus{device="eth0",queue="0"} 0'); // within the TTL: as first read
      expect(b).toContain('flowpath_rps_cpus{device="eth0",queue="0"} 2'); // TTL 0: read now
      const count = (t: string) => lines(t, 'flowpath_irq_interrupts_total').find((l) => l.includes('irq="99"'));
      expect(count(a)).toBe('flowpath_irq_interrupts_total{device="eth0",irq="99"} 124456'); // counts are never cached
    });
  });

  it('falls back to handler names when netdev genl fails, and never guesses a queue', async () => {
    const eperm = () => {
      throw new NetlinkError(-1, 'fixture');
    };
    const text = await scrape(collector({ netdev: new FakeNetdev({ eth0: { queues: eperm as never, napis: eperm as never } }) }));
    // mlx5_comp<N> names give the same mapping as NAPI did
    expect(text).toContain('flowpath_irq_info{device="eth0",irq="100",action="mlx5_comp1@pci:0000:3b:00.0",role="combined",queue="1"} 1');
  });

  it('emits only declared families and passes promtool check metrics', async () => {
    const out = new Emitter();
    await collector().collect(out, ctx);
    const declared = new Set(IRQ_METRICS.map((m) => m.name));
    for (const f of out.familyNames()) expect(declared).toContain(f);
    if (!promtoolAvailable()) throw new Error('promtool is required for this test');
    const r = promtoolCheckMetrics(out.render());
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it('fails the collector on a malformed affinity list or /proc/interrupts, naming the file', async () => {
    await withHostMqCopy(async (tmp) => {
      fs.writeFileSync(path.join(tmp, 'proc/irq/99/effective_affinity_list'), 'cpu0\n');
      await expect(scrape(collector({}, {}, tmp))).rejects.toThrow(/proc\/irq\/99\/effective_affinity_list: not a CPU list/);
      fs.writeFileSync(path.join(tmp, 'proc/irq/99/effective_affinity_list'), '0\n');
      fs.writeFileSync(path.join(tmp, 'proc/interrupts'), '   CPU0 CPU1 CPU2 CPU3\n 41:  1 2\n');
      await expect(scrape(collector({}, {}, tmp))).rejects.toThrow(/proc\/interrupts: line 2: IRQ 41 has 2 count columns, expected 4/);
    });
  });

  it('answers "which CPU handles each RX queue of eth0, and is RPS off?" in PromQL (promtool test rules on the fixture output)', async () => {
    if (!promtoolAvailable()) throw new Error('promtool is required for this test');
    const text = await scrape(collector());
    // Every sample of the exposition becomes a constant input series of instance "node-a".
    const series = text
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => {
        const m = /^([a-z_:]+)(\{.*\})? (\S+)$/.exec(l)!;
        const labels = m[2] ? m[2].slice(1, -1) + ',' : '';
        return `      - series: '${m[1]}{${labels}instance="node-a"}'\n        values: '${m[3]}x3'`;
      });
    const exp = (queue: number, irq: number, cpu: number, v: number) =>
      `          - labels: '{cpu="${cpu}", device="eth0", instance="node-a", irq="${irq}", queue="${queue}"}'\n            value: ${v}`;
    const yaml = [
      'evaluation_interval: 1m',
      'tests:',
      '  - interval: 1m',
      '    input_series:',
      ...series,
      '    promql_expr_test:',
      `      - expr: '${RX_CPU_RPS_QUERY}'`,
      '        eval_time: 2m',
      '        exp_samples:',
      exp(0, 99, 0, 1),
      exp(1, 100, 1, 1),
      exp(2, 101, 2, 1),
      exp(3, 102, 3, 0),
    ].join('\n');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-promql-'));
    try {
      const f = path.join(dir, 'rx-cpu.test.yml');
      fs.writeFileSync(f, yaml + '\n');
      const r = spawnSync('promtool', ['test', 'rules', f], { encoding: 'utf8' });
      expect(r.stdout + r.stderr).toContain('SUCCESS');
      expect(r.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('matches device names in handler names on word boundaries', () => {
    expect(actionMentions('eth3', 'eth3')).toBe(true);
    expect(actionMentions('eth3-rx-0', 'eth3')).toBe(true);
    expect(actionMentions('eth31', 'eth3')).toBe(false);
    expect(actionMentions('veth3', 'eth3')).toBe(false);
    expect(actionMentions('eth0.100', 'eth0.100')).toBe(true);
  });
});
