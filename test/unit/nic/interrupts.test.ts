// /proc/interrupts, /sys/kernel/irq/N and handler-name → queue mapping.
import * as fs from 'fs';
import * as path from 'path';
import {
  irqQueueRole,
  parsePerCpuCount,
  parseProcInterrupts,
  readIrq,
  readPossibleCpus,
  readProcInterrupts,
} from '../../../src/sources/procfs/interrupts';
import { HOST_MQ } from './fixtures';

const PROC = path.join(HOST_MQ, 'proc');
const SYS = path.join(HOST_MQ, 'sys');

describe('parseProcInterrupts', () => {
  it('parses the x86 multi-queue fixture: CPU columns, counts, chip, handler names; skips NMI/LOC/ERR', () => {
    const p = parseProcInterrupts(fs.readFileSync(path.join(PROC, 'interrupts'), 'utf8'));
    expect(p.cpus).toEqual([0, 1, 2, 3]);
    expect(p.rows.map((r) => r.irq)).toEqual([0, 11, 25, 27, 28, 29, 30, 40, 41, 42, 43, 44, 98, 99, 100, 101, 102, 120, 121, 122]);
    const r102 = p.rows.find((r) => r.irq === 102)!;
    expect(r102).toEqual({ irq: 102, counts: [0, 0, 0, 4294967295], chip: 'IR-PCI-MSIX-0000:3b:00.0', hwirq: '4-edge', actions: ['mlx5_comp3@pci:0000:3b:00.0'] });
    expect(p.rows.find((r) => r.irq === 25)!.actions).toEqual(['PCIe PME', 'pciehp']);
  });

  it('parses this machine\'s /proc/interrupts with one count column per online CPU', () => {
    const text = fs.readFileSync('/proc/interrupts', 'utf8');
    const p = parseProcInterrupts(text);
    const online = fs.readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
    expect(p.cpus.length).toBeGreaterThan(0);
    expect(p.cpus[p.cpus.length - 1]).toBeLessThanOrEqual(Number(online.split(/[-,]/).pop()));
    for (const r of p.rows) expect(r.counts).toHaveLength(p.cpus.length);
  });

  it('parses the ARM GIC layout (separate trigger word) and non-contiguous CPUs', () => {
    const text = [
      '           CPU0       CPU2       ',
      ' 11:       4321       1234     GICv3  27 Level     arch_timer',
      ' 45:          0         99     ITS-MSI 524288 Edge      eth0-TxRx-0',
      'IPI0:       10         20       Rescheduling interrupts',
      '',
    ].join('\n');
    const p = parseProcInterrupts(text);
    expect(p.cpus).toEqual([0, 2]);
    expect(p.rows).toEqual([
      { irq: 11, counts: [4321, 1234], chip: 'GICv3', hwirq: '27', actions: ['arch_timer'] },
      { irq: 45, counts: [0, 99], chip: 'ITS-MSI', hwirq: '524288', actions: ['eth0-TxRx-0'] },
    ]);
  });

  it('fails with file and line on a short row or a bad header', () => {
    expect(() => parseProcInterrupts('    CPU0  CPU1\n 5:   1\n', 'F')).toThrow('F: line 2: IRQ 5 has 1 count columns, expected 2');
    expect(() => parseProcInterrupts('  cpu0\n', 'F')).toThrow(/F: line 1: expected CPUn column headers/);
    expect(() => parseProcInterrupts('', 'F')).toThrow(/line 1/);
    expect(() => parsePerCpuCount('1,,2', 'P')).toThrow(/P: expected comma-separated counts/);
  });
});

describe('readIrq', () => {
  it('reads /sys/kernel/irq/N when present and /proc/interrupts otherwise, to the same numbers', async () => {
    const possibleCpus = await readPossibleCpus(SYS);
    expect(possibleCpus).toEqual([0, 1, 2, 3]);
    const proc = await readProcInterrupts(PROC);
    const ctx = { procfs: PROC, sysfs: SYS, possibleCpus, procInterrupts: async () => proc };
    const viaSys = await readIrq(ctx, 101);
    expect(viaSys).toEqual({
      irq: 101,
      actions: ['mlx5_comp2@pci:0000:3b:00.0'],
      perCpu: new Map([[0, 10], [1, 0], [2, 345678], [3, 0]]),
      affinity: [2],
      effectiveAffinity: [2],
    });
    // IRQ 43 (virtio) has no /sys/kernel/irq entry in the fixture: counts from /proc/interrupts, the name from /proc/irq/43/
    const viaProc = await readIrq(ctx, 43);
    expect(viaProc).toEqual({ irq: 43, actions: ['virtio3-input.1'], perCpu: new Map([[0, 0], [1, 0], [2, 0], [3, 1300]]), affinity: [2, 3], effectiveAffinity: [3] });
    // both sources agree wherever both exist
    for (const row of proc.rows) {
      if (!fs.existsSync(path.join(SYS, 'kernel/irq', String(row.irq)))) continue;
      const d = await readIrq(ctx, row.irq);
      expect([...d!.perCpu.values()]).toEqual(row.counts);
    }
    expect(await readIrq({ ...ctx, procInterrupts: async () => proc }, 4000)).toBeUndefined();
  });

  it('rejects a per_cpu_count that does not match the possible CPUs', async () => {
    const ctx = { procfs: PROC, sysfs: SYS, possibleCpus: [0, 1] };
    await expect(readIrq(ctx, 99)).rejects.toThrow(/per_cpu_count: 4 counts for 2 possible CPUs/);
  });
});

describe('irqQueueRole', () => {
  it.each([
    ['virtio3-input.1', 'rx', 1],
    ['virtio3-output.0', 'tx', 0],
    ['virtio3-config', 'other', undefined],
    ['mlx5_comp7@pci:0000:3b:00.0', 'combined', 7],
    ['mlx5_async0@pci:0000:3b:00.0', 'other', undefined],
    ['eth1-TxRx-1', 'combined', 1],
    ['i40e-ens1f0-TxRx-12', 'combined', 12],
    ['ice-ens2-TxRx-3', 'combined', 3],
    ['ens5-Tx-Rx-1', 'combined', 1],
    ['ena-mgmnt@pci:0000:00:05.0', 'other', undefined],
    ['eth0-rx-2', 'rx', 2],
    ['eth0-tx-2', 'tx', 2],
    ['eth1', 'other', undefined],
    ['gve-ntfy-blk3@pci:0000:00:04.0', 'other', undefined],
  ])('%s → %s %s', (action, role, queue) => {
    expect(irqQueueRole(action)).toEqual(queue === undefined ? { role } : { role, queue });
  });
});
