// Interrupts of network devices: /proc/interrupts, /proc/irq/N/ and /sys/kernel/irq/N/, docs/kernel-sources.md §8.4.
//
// Per IRQ the cheapest complete source is /sys/kernel/irq/N/ (CONFIG_SPARSE_IRQ): `actions` (the handler
// names) and `per_cpu_count` (one count per *possible* CPU, in possible-CPU order). Reading those for a
// NIC's handful of vectors avoids formatting the whole /proc/interrupts table, which is
// #IRQs × #online CPUs wide (megabytes on large machines). /proc/interrupts is the fallback when
// /sys/kernel/irq is absent, and the way to find IRQs of devices that have no MSI vectors (by name).
// Affinity comes from /proc/irq/N/{smp_affinity_list,effective_affinity_list}.

import { promises as fs } from 'fs';
import { under } from '../../core/paths';
import { parseCpuList, readAttr, readAttrSync } from '../sysfs/netdev';

export class InterruptsFormatError extends Error {
  override readonly name = 'InterruptsFormatError';
}

export interface InterruptRow {
  irq: number;
  /** Count per CPU column, aligned with ProcInterrupts.cpus. */
  counts: number[];
  chip?: string;
  hwirq?: string;
  /** Handler (action) names, best effort from the text; /proc/irq/N/ or /sys/kernel/irq/N/actions are exact. */
  actions: string[];
}

export interface ProcInterrupts {
  /** CPU numbers of the columns (online CPUs at read time; not necessarily contiguous). */
  cpus: number[];
  /** Numeric IRQ rows only (NMI, LOC, ... are skipped). */
  rows: InterruptRow[];
}

const TRIGGERS = new Set(['edge', 'level', 'Edge', 'Level']);

/** Parse /proc/interrupts (fs/proc/interrupts.c, show_interrupts()). Pure. */
export function parseProcInterrupts(text: string, file = '/proc/interrupts'): ProcInterrupts {
  const lines = text.split('\n');
  const header = lines[0] ?? '';
  const cpus: number[] = [];
  for (const tok of header.trim().split(/\s+/)) {
    const m = /^CPU(\d+)$/.exec(tok);
    if (!m) throw new InterruptsFormatError(`${file}: line 1: expected CPUn column headers, got ${JSON.stringify(tok)}`);
    cpus.push(Number(m[1]));
  }
  if (cpus.length === 0) throw new InterruptsFormatError(`${file}: line 1: no CPU columns`);
  const rows: InterruptRow[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    const m = /^\s*([^:\s]+):(.*)$/.exec(line);
    if (!m) throw new InterruptsFormatError(`${file}: line ${i + 1}: no "NAME:" prefix`);
    if (!/^\d+$/.test(m[1])) continue; // NMI, LOC, ERR, MIS, ...
    const irq = Number(m[1]);
    let rest = m[2];
    const counts: number[] = [];
    for (let c = 0; c < cpus.length; c++) {
      const cm = /^\s*(\d+)/.exec(rest);
      if (!cm) throw new InterruptsFormatError(`${file}: line ${i + 1}: IRQ ${irq} has ${c} count columns, expected ${cpus.length}`);
      counts.push(Number(cm[1]));
      rest = rest.slice(cm[0].length);
    }
    // Then: chip name, hwirq (x86: "1-edge"; GIC: "27 Level"), then ", "-joined action names.
    const tail = rest.trim();
    let chip: string | undefined;
    let hwirq: string | undefined;
    let actions: string[] = [];
    if (tail !== '') {
      const toks = tail.split(/\s+/);
      chip = toks.shift();
      hwirq = toks.shift();
      if (toks.length && TRIGGERS.has(toks[0])) toks.shift();
      const names = toks.join(' ');
      actions = names === '' ? [] : names.split(/,\s*/).filter((s) => s !== '');
    }
    rows.push({ irq, counts, chip, hwirq, actions });
  }
  return { cpus, rows };
}

/** Parse /sys/kernel/irq/N/per_cpu_count ("0,3600,..."), one value per possible CPU. Pure. */
export function parsePerCpuCount(text: string, file: string): number[] {
  const t = text.trim();
  if (!/^\d+(,\d+)*$/.test(t)) throw new InterruptsFormatError(`${file}: expected comma-separated counts, got ${JSON.stringify(t.slice(0, 60))}`);
  return t.split(',').map(Number);
}

export interface IrqDetails {
  irq: number;
  actions: string[];
  /** CPU → interrupt count (all CPUs the source lists, zeros included). */
  perCpu: Map<number, number>;
  /** smp_affinity_list: CPUs the IRQ may be delivered to. */
  affinity?: number[];
  /** effective_affinity_list: CPUs it is actually delivered to (x86: one CPU). */
  effectiveAffinity?: number[];
}

function readList(file: string): number[] | undefined {
  const t = readAttrSync(file);
  return t === undefined ? undefined : parseCpuList(t, file);
}

/** Possible CPUs (/sys/devices/system/cpu/possible), the order of per_cpu_count. */
export async function readPossibleCpus(sysfsRoot: string): Promise<number[] | undefined> {
  return readList(under(sysfsRoot, 'devices', 'system', 'cpu', 'possible'));
}

export interface IrqReadContext {
  procfs: string;
  sysfs: string;
  /** Possible CPUs (for per_cpu_count), read once per scrape. */
  possibleCpus?: number[];
  /** /proc/interrupts, parsed only when /sys/kernel/irq is not available. */
  procInterrupts?: () => Promise<ProcInterrupts>;
}

/**
 * Details of one IRQ. Counts from /sys/kernel/irq/N/per_cpu_count when present (with the possible CPU
 * list), else from /proc/interrupts. Returns undefined if the IRQ no longer exists.
 */
export async function readIrq(ctx: IrqReadContext, irq: number): Promise<IrqDetails | undefined> {
  const sysDir = under(ctx.sysfs, 'kernel', 'irq', String(irq));
  const procDir = under(ctx.procfs, 'irq', String(irq));
  // All four take no sleeping lock (irq descriptor spinlock at most): read synchronously.
  const pcc = readAttrSync(under(sysDir, 'per_cpu_count'));
  const actionsText = readAttrSync(under(sysDir, 'actions'));
  const aff = readList(under(procDir, 'smp_affinity_list'));
  const eff = readList(under(procDir, 'effective_affinity_list'));
  const perCpu = new Map<number, number>();
  let actions: string[] | undefined = actionsText === undefined ? undefined : actionsText.trim().split(',').filter((s) => s !== '');
  if (pcc !== undefined && ctx.possibleCpus) {
    const counts = parsePerCpuCount(pcc, under(sysDir, 'per_cpu_count'));
    if (counts.length !== ctx.possibleCpus.length) {
      throw new InterruptsFormatError(`${under(sysDir, 'per_cpu_count')}: ${counts.length} counts for ${ctx.possibleCpus.length} possible CPUs`);
    }
    counts.forEach((v, i) => perCpu.set(ctx.possibleCpus![i], v));
  } else if (ctx.procInterrupts) {
    const pi = await ctx.procInterrupts();
    const row = pi.rows.find((r) => r.irq === irq);
    if (!row) return undefined;
    row.counts.forEach((v, i) => perCpu.set(pi.cpus[i], v));
    actions ??= await actionDirs(procDir).then((d) => (d.length ? d : row.actions));
  } else {
    return undefined;
  }
  return { irq, actions: actions ?? [], perCpu, affinity: aff, effectiveAffinity: eff };
}

const IRQ_DIR_FILES = new Set(['affinity_hint', 'effective_affinity', 'effective_affinity_list', 'node', 'smp_affinity', 'smp_affinity_list', 'spurious']);
/** Handler names from the subdirectories of /proc/irq/N/. */
async function actionDirs(procDir: string): Promise<string[]> {
  try {
    const ents = await fs.readdir(procDir, { withFileTypes: true });
    return ents.filter((e) => e.isDirectory() && !IRQ_DIR_FILES.has(e.name)).map((e) => e.name);
  } catch {
    return [];
  }
}

export async function readProcInterrupts(procfs: string): Promise<ProcInterrupts> {
  const f = under(procfs, 'interrupts');
  const t = await readAttr(f);
  if (t === undefined) throw new Error(`${f}: missing`);
  return parseProcInterrupts(t, f);
}

export type IrqQueueRole = 'rx' | 'tx' | 'combined' | 'other';

/**
 * Which queue an interrupt serves, from its handler name (driver conventions, docs/kernel-sources.md §8.4). Pure.
 *   virtio_net   virtioN-input.Q (rx) / virtioN-output.Q (tx) / virtioN-config
 *   ixgbe, igb, bnxt, i40e, ice, ena  [drv-]DEV-TxRx-Q / DEV-Tx-Rx-Q (combined), DEV-rx-Q, DEV-tx-Q
 *   mlx5         mlx5_comp<Q>@pci:<bdf> (combined), mlx5_async..., mlx5_ctrl... (other)
 * Names whose number is not a queue number are left unmapped ("other") rather than guessed: gve's
 * gve-ntfy-blk<N> (TX blocks first, then RX, split unknown here), mlx4's EQ numbers. The netdev genl
 * NAPI_GET/QUEUE_GET mapping, where the driver provides it, is preferred over names anyway.
 */
export function irqQueueRole(action: string): { role: IrqQueueRole; queue?: number } {
  const a = action.trim();
  let m: RegExpExecArray | null;
  if ((m = /^virtio\d+-input\.(\d+)$/.exec(a))) return { role: 'rx', queue: Number(m[1]) };
  if ((m = /^virtio\d+-output\.(\d+)$/.exec(a))) return { role: 'tx', queue: Number(m[1]) };
  if ((m = /^mlx5_comp(\d+)@/.exec(a))) return { role: 'combined', queue: Number(m[1]) };
  if ((m = /[-_](?:TxRx|Tx-Rx|txrx|tx-rx|fp|combined)[-_](\d+)$/.exec(a))) return { role: 'combined', queue: Number(m[1]) };
  if ((m = /[-_](?:rx|Rx|RX)[-_](\d+)$/.exec(a))) return { role: 'rx', queue: Number(m[1]) };
  if ((m = /[-_](?:tx|Tx|TX)[-_](\d+)$/.exec(a))) return { role: 'tx', queue: Number(m[1]) };
  return { role: 'other' };
}
