// /proc/net/softnet_stat (softnet_seq_show(), net/core/net-procfs.c). docs/kernel-sources.md §8.1.
//
// One line per online CPU, every column %08x (hex u32, wrapping). Columns by position (1-based):
//   1 processed, 2 dropped, 3 time_squeeze, 4-8 zero, 9 cpu_collision (0 since 4.x),
//   10 received_rps (2.6.35), 11 flow_limit_count (3.11), 12 backlog length (≈5.10),
//   13 CPU index (≈5.10), 14 input_pkt_queue length, 15 process_queue length (6.4).
// Extra columns beyond 15 are ignored. Without column 13, line i belongs to the i-th online CPU.

import * as path from 'path';
import { ProcParseError, readProcText } from './read';
import { readOnlineCpus } from './cpuinfo';

export interface SoftnetRow {
  cpu: number;
  processed: number;
  dropped: number;
  timeSqueeze: number;
  cpuCollision: number;
  receivedRps?: number;
  flowLimitCount?: number;
  backlogLen?: number;
  inputQueueLen?: number;
  processQueueLen?: number;
  /** Number of columns on the line. */
  columns: number;
}

const HEX_RE = /^[0-9a-fA-F]{1,8}$/;

/**
 * Parse softnet_stat text. `onlineCpus` (ascending) maps lines to CPUs when the kernel prints no CPU
 * index column; without it, line i is CPU i (right unless CPUs are offline).
 */
export function parseSoftnetStat(text: string, onlineCpus?: readonly number[], file = 'softnet_stat'): SoftnetRow[] {
  const rows: SoftnetRow[] = [];
  const lines = text.split('\n');
  let lineNo = 0;
  let needMap = false;
  for (const line of lines) {
    lineNo++;
    if (line.trim() === '') continue;
    const f = line.trim().split(/\s+/);
    if (f.length < 9) throw new ProcParseError(file, lineNo, `${f.length} columns, expected at least 9`);
    const n: number[] = new Array(Math.min(f.length, 15));
    for (let i = 0; i < n.length; i++) {
      if (!HEX_RE.test(f[i])) throw new ProcParseError(file, lineNo, `column ${i + 1} "${f[i]}" is not a hex u32`);
      n[i] = parseInt(f[i], 16);
    }
    const row: SoftnetRow = {
      cpu: n.length >= 13 ? n[12] : -1,
      processed: n[0],
      dropped: n[1],
      timeSqueeze: n[2],
      cpuCollision: n[8],
      columns: f.length,
    };
    if (n.length >= 10) row.receivedRps = n[9];
    if (n.length >= 11) row.flowLimitCount = n[10];
    if (n.length >= 12) row.backlogLen = n[11];
    if (n.length >= 14) row.inputQueueLen = n[13];
    if (n.length >= 15) row.processQueueLen = n[14];
    if (row.cpu < 0) needMap = true;
    rows.push(row);
  }
  if (needMap) {
    if (onlineCpus && onlineCpus.length !== rows.length) {
      throw new ProcParseError(file, 1, `${rows.length} lines without a CPU index column but ${onlineCpus.length} online CPUs`);
    }
    rows.forEach((r, i) => {
      if (r.cpu < 0) r.cpu = onlineCpus ? onlineCpus[i] : i;
    });
  }
  const seen = new Set<number>();
  for (const r of rows) {
    if (seen.has(r.cpu)) throw new ProcParseError(file, 1, `CPU ${r.cpu} appears twice`);
    seen.add(r.cpu);
  }
  return rows;
}

export function readSoftnet(procfs: string, sysfs: string): SoftnetRow[] {
  const file = path.join(procfs, 'net/softnet_stat');
  const text = readProcText(file);
  // The online CPU list is only needed for kernels without the index column (< ≈5.10).
  const firstLine = text.slice(0, text.indexOf('\n') >>> 0);
  const online = firstLine.trim().split(/\s+/).length >= 13 ? undefined : readOnlineCpus(sysfs);
  return parseSoftnetStat(text, online, file);
}
