// The irq collector against /proc/interrupts, /proc/irq/N and sysfs read independently, on this machine's
// eth0 (virtio_net: MSI-X vectors on the PCI parent, virtioN-input.Q / -output.Q). Counts are checked
// between a read before and a read after the scrape.
import * as fs from 'fs';
import * as path from 'path';
import { Config } from '../../src/core/flags';
import { Emitter } from '../../src/core/metrics';
import { nullLogger } from '../../src/core/log';
import { allFlags } from '../../src/exporter';
import { createIrqCollector } from '../../src/collectors/irq';
import { samples } from '../support/ethtool-text';

const DEV = 'eth0';
const have = fs.existsSync(`/sys/class/net/${DEV}/device`);
const d = have ? describe : describe.skip;

/** /proc/interrupts rows by IRQ: per-CPU counts keyed by CPU, plus the text after the counts. */
function procInterrupts(): Map<number, { counts: Map<number, number>; tail: string }> {
  const lines = fs.readFileSync('/proc/interrupts', 'utf8').split('\n');
  const cpus = lines[0].trim().split(/\s+/).map((c) => Number(c.slice(3)));
  const out = new Map<number, { counts: Map<number, number>; tail: string }>();
  for (const l of lines.slice(1)) {
    const m = /^\s*(\d+):\s+(.*)$/.exec(l);
    if (!m) continue;
    const toks = m[2].split(/\s+/);
    out.set(Number(m[1]), { counts: new Map(cpus.map((c, i) => [c, Number(toks[i])])), tail: toks.slice(cpus.length).join(' ') });
  }
  return out;
}

d('irq collector vs /proc/interrupts and /proc/irq (this machine, eth0)', () => {
  const config = Config.from(allFlags(), { 'collector.nic.device-include': DEV, 'collector.irq.per-cpu': 'all' });
  const c = createIrqCollector({ config, log: nullLogger });
  afterAll(() => c.close?.());
  const scrape = async () => {
    const out = new Emitter();
    await c.collect(out, { signal: new AbortController().signal, now: Date.now() });
    return samples(out.render());
  };

  it('finds exactly the MSI vectors of eth0, named as in /proc/interrupts and /proc/irq/N/', async () => {
    const s = await scrape();
    const pci = path.dirname(fs.realpathSync(`/sys/class/net/${DEV}/device`)); // virtioN → its PCI function
    const msi = fs.readdirSync(path.join(pci, 'msi_irqs')).map(Number).sort((a, b) => a - b);
    const ours = [...s.keys()].filter((k) => k.startsWith('flowpath_irq_info{')).map((k) => Number(/irq="(\d+)"/.exec(k)![1]));
    expect([...new Set(ours)].sort((a, b) => a - b)).toEqual(msi);
    const proc = procInterrupts();
    for (const k of [...s.keys()].filter((x) => x.startsWith('flowpath_irq_info{'))) {
      const irq = Number(/irq="(\d+)"/.exec(k)![1]);
      const action = /action="([^"]*)"/.exec(k)![1];
      expect(proc.get(irq)!.tail.endsWith(action)).toBe(true);
      expect(fs.existsSync(`/proc/irq/${irq}/${action}`)).toBe(true);
      const role = /role="([^"]*)"/.exec(k)![1];
      const queue = /queue="([^"]*)"/.exec(k)![1];
      if (/^virtio\d+-/.test(action)) {
        const m = /-(input|output)\.(\d+)$/.exec(action);
        expect([action, role, queue]).toEqual([action, m ? (m[1] === 'input' ? 'rx' : 'tx') : 'other', m ? m[2] : '']);
      }
    }
  });

  it('effective affinity equals /proc/irq/N/effective_affinity_list; rx queue → CPU series agree', async () => {
    const s = await scrape();
    for (const k of [...s.keys()].filter((x) => x.startsWith('flowpath_irq_effective_cpu_info{'))) {
      const irq = /irq="(\d+)"/.exec(k)![1];
      const cpu = /cpu="(\d+)"/.exec(k)![1];
      expect(fs.readFileSync(`/proc/irq/${irq}/effective_affinity_list`, 'utf8').trim()).toBe(cpu);
    }
    const rxq = [...s.keys()].filter((x) => x.startsWith('flowpath_irq_rx_queue_cpu_info{'));
    expect(rxq.length).toBeGreaterThan(0);
    for (const k of rxq) {
      const irq = /irq="(\d+)"/.exec(k)![1];
      const cpu = /cpu="(\d+)"/.exec(k)![1];
      expect(s.get(`flowpath_irq_effective_cpu_info{device="${DEV}",irq="${irq}",cpu="${cpu}"}`)).toBe(1);
      expect([...s.keys()].some((x) => x.startsWith(`flowpath_irq_info{device="${DEV}",irq="${irq}",`) && /role="(rx|combined)"/.test(x))).toBe(true);
    }
  });

  it('interrupt counts lie between /proc/interrupts read before and after, per CPU and in total', async () => {
    const before = procInterrupts();
    const s = await scrape();
    const after = procInterrupts();
    let checked = 0;
    for (const [k, v] of s) {
      const m = /^flowpath_irq_cpu_interrupts_total\{device="[^"]+",irq="(\d+)",cpu="(\d+)"\}$/.exec(k);
      if (!m) continue;
      const irq = Number(m[1]);
      const cpu = Number(m[2]);
      const b = before.get(irq)!.counts.get(cpu);
      if (b === undefined) continue; // a possible-but-offline CPU (not in /proc/interrupts)
      expect(v).toBeGreaterThanOrEqual(b);
      expect(v).toBeLessThanOrEqual(after.get(irq)!.counts.get(cpu)!);
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
    for (const [k, v] of s) {
      const m = /^flowpath_irq_interrupts_total\{device="[^"]+",irq="(\d+)"\}$/.exec(k);
      if (!m) continue;
      const sum = (x: Map<number, { counts: Map<number, number> }>) => [...x.get(Number(m[1]))!.counts.values()].reduce((a, b) => a + b, 0);
      expect(v).toBeGreaterThanOrEqual(sum(before));
      expect(v).toBeLessThanOrEqual(sum(after));
    }
  });

  it('RPS/XPS per queue equal the sysfs files; rps_sock_flow_entries equals the sysctl', async () => {
    const s = await scrape();
    const qdir = `/sys/class/net/${DEV}/queues`;
    for (const q of fs.readdirSync(qdir)) {
      const [dir, n] = q.split('-');
      if (dir === 'rx') {
        const mask = parseInt(fs.readFileSync(`${qdir}/${q}/rps_cpus`, 'utf8').trim().replace(/,/g, ''), 16);
        const bits = mask.toString(2).split('').filter((b) => b === '1').length;
        expect(s.get(`flowpath_rps_cpus{device="${DEV}",queue="${n}"}`)).toBe(bits);
        expect(s.get(`flowpath_rps_flow_entries{device="${DEV}",queue="${n}"}`)).toBe(Number(fs.readFileSync(`${qdir}/${q}/rps_flow_cnt`, 'utf8')));
      } else if (fs.existsSync(`${qdir}/${q}/xps_cpus`)) {
        let xps: string | null = null;
        try {
          xps = fs.readFileSync(`${qdir}/${q}/xps_cpus`, 'utf8');
        } catch {
          xps = null; // single-queue device: the read fails (ENOENT)
        }
        expect(s.has(`flowpath_xps_cpus{device="${DEV}",queue="${n}"}`)).toBe(xps !== null);
      }
    }
    expect(s.get('flowpath_rps_sock_flow_entries')).toBe(Number(fs.readFileSync('/proc/sys/net/core/rps_sock_flow_entries', 'utf8')));
  });
});
