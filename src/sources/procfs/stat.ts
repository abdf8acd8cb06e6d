// Per-CPU time from /proc/stat (fs/proc/stat.c). docs/kernel-sources.md §8.3.
//
//   cpu  <total...>
//   cpu0 user nice system idle iowait irq softirq steal guest guest_nice   (USER_HZ ticks)
//
// Only online CPUs have a cpuN line. Older kernels print fewer columns (steal 2.6.11, guest 2.6.24,
// guest_nice 2.6.33); missing ones are undefined. guest/guest_nice are already included in user/nice.
// The parser stops at the first line after the cpu block (the intr line can be very long).

import * as path from 'path';
import { ProcParseError, readProcText } from './read';

export const CPU_MODES = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal', 'guest', 'guest_nice'] as const;
export type CpuMode = (typeof CPU_MODES)[number];

export interface CpuTicks {
  cpu: number;
  /** Ticks by mode index (CPU_MODES order); shorter on old kernels. */
  ticks: number[];
}

export function parseProcStatCpus(text: string, file = 'stat'): CpuTicks[] {
  const out: CpuTicks[] = [];
  let pos = 0;
  let lineNo = 0;
  let inCpuBlock = false;
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    lineNo++;
    const line = text.slice(pos, nl);
    pos = nl + 1;
    if (!line.startsWith('cpu')) {
      if (inCpuBlock) break;
      continue;
    }
    inCpuBlock = true;
    const f = line.split(/\s+/);
    if (f[0] === 'cpu') continue; // the all-CPU total
    const m = /^cpu(\d+)$/.exec(f[0]);
    if (!m) throw new ProcParseError(file, lineNo, `unexpected "${f[0]}"`);
    const vals = f.slice(1).filter((s) => s !== '');
    if (vals.length < 4) throw new ProcParseError(file, lineNo, `${vals.length} time columns, expected at least 4`);
    const ticks = vals.slice(0, CPU_MODES.length).map((v) => {
      if (!/^\d+$/.test(v)) throw new ProcParseError(file, lineNo, `value "${v}" is not a tick count`);
      return Number(v);
    });
    out.push({ cpu: Number(m[1]), ticks });
  }
  if (out.length === 0) throw new ProcParseError(file, 1, 'no cpuN lines');
  return out;
}

export function readProcStatCpus(procfs: string): CpuTicks[] {
  const file = path.join(procfs, 'stat');
  return parseProcStatCpus(readProcText(file), file);
}
