// /proc/softirqs (fs/proc/softirqs.c). docs/kernel-sources.md §8.2.
//
//                     CPU0       CPU1        <- one column per *possible* CPU
//           HI:          0          0
//       NET_RX:      12345        678       <- handler runs (counts, not time), decimal u32
//
// Offline CPUs keep their column (their counts stop moving).

import * as path from 'path';
import { ProcParseError, readProcText } from './read';

export interface SoftirqVector {
  /** Vector name as the kernel prints it: HI TIMER NET_TX NET_RX BLOCK IRQ_POLL TASKLET SCHED HRTIMER RCU. */
  name: string;
  /** Counts by column, same order as Softirqs.cpus. */
  counts: number[];
}

export interface Softirqs {
  cpus: number[];
  vectors: SoftirqVector[];
}

export function parseSoftirqs(text: string, file = 'softirqs'): Softirqs {
  const lines = text.split('\n');
  const header = lines[0]?.trim() ?? '';
  if (header === '') throw new ProcParseError(file, 1, 'empty file');
  const cpus = header.split(/\s+/).map((h) => {
    const m = /^CPU(\d+)$/.exec(h);
    if (!m) throw new ProcParseError(file, 1, `header field "${h}" is not CPU<n>`);
    return Number(m[1]);
  });
  const vectors: SoftirqVector[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    if (colon < 0) throw new ProcParseError(file, i + 1, 'no ":" after the vector name');
    const name = line.slice(0, colon).trim();
    if (!/^[A-Z_0-9]+$/.test(name)) throw new ProcParseError(file, i + 1, `bad vector name "${name}"`);
    const f = line.slice(colon + 1).trim().split(/\s+/);
    if (f.length !== cpus.length) throw new ProcParseError(file, i + 1, `${f.length} values for ${cpus.length} CPUs`);
    const counts = f.map((v) => {
      if (!/^\d+$/.test(v)) throw new ProcParseError(file, i + 1, `value "${v}" is not a decimal count`);
      return Number(v);
    });
    vectors.push({ name, counts });
  }
  if (vectors.length === 0) throw new ProcParseError(file, 2, 'no vectors');
  return { cpus, vectors };
}

export function readSoftirqs(procfs: string): Softirqs {
  const file = path.join(procfs, 'softirqs');
  return parseSoftirqs(readProcText(file), file);
}
