// CPU time of the per-CPU softirq threads ksoftirqd/N (/proc/<pid>/stat, fs/proc/array.c do_task_stat()).
// Softirq work the kernel defers out of interrupt context (too much pending, or PREEMPT_RT) runs in these
// threads and is accounted as their CPU time, not as the "softirq" column of /proc/stat.
//
// Finding them: they are children of kthreadd (pid 2), so /proc/2/task/2/children (CONFIG_PROC_CHILDREN)
// lists the candidates; without it every /proc/<pid> is scanned. The pid -> CPU map is cached and only
// rebuilt when a cached pid disappears or changes name, or (at most once a minute) when an online CPU
// has no thread yet. In a container without the host PID namespace the threads are invisible: the map
// stays empty and nothing is reported.

import * as fs from 'fs';
import * as path from 'path';
import { ProcFileError, readProcText, readProcTextOptional } from './read';
import { parseTaskStat } from './tasks';

export interface PidStat {
  pid: number;
  comm: string;
  /** utime and stime in USER_HZ ticks (fields 14 and 15). */
  utime: number;
  stime: number;
}

/** Parse /proc/<pid>/stat (the same format as a thread's stat: ./tasks.ts). */
export function parsePidStat(text: string, file = 'stat'): PidStat {
  const t = parseTaskStat(text, file);
  return { pid: t.tid, comm: t.comm, utime: t.utime, stime: t.stime };
}

const KSOFTIRQD_RE = /^ksoftirqd\/(\d+)$/;

export interface KsoftirqdTime {
  cpu: number;
  pid: number;
  /** utime + stime, USER_HZ ticks. */
  ticks: number;
}

export class KsoftirqdTracker {
  private pids = new Map<number, number>(); // pid -> cpu
  private lastScan = -Infinity;
  /** Scans performed (for tests and debugging). */
  scans = 0;

  constructor(
    private readonly procfs: string,
    private readonly rescanIntervalMs = 60_000,
  ) {}

  /** Read the threads' CPU time. `onlineCpus`, if known, triggers a rescan when a CPU has no thread. */
  read(now: number, onlineCpus?: readonly number[]): KsoftirqdTime[] {
    if (this.pids.size === 0 || this.missingCpu(onlineCpus)) {
      if (now - this.lastScan >= this.rescanIntervalMs) this.scan(now);
    }
    let out = this.readCached();
    if (out === undefined) {
      // A cached thread vanished or its pid was reused: rebuild the map once, now.
      this.scan(now);
      out = this.readCached() ?? [];
    }
    return out;
  }

  private missingCpu(onlineCpus?: readonly number[]): boolean {
    if (!onlineCpus) return false;
    const have = new Set(this.pids.values());
    return onlineCpus.some((c) => !have.has(c));
  }

  /** undefined if the cache is stale. */
  private readCached(): KsoftirqdTime[] | undefined {
    const out: KsoftirqdTime[] = [];
    for (const [pid, cpu] of this.pids) {
      const file = path.join(this.procfs, String(pid), 'stat');
      const text = readProcTextOptional(file);
      if (text === undefined) return undefined;
      const st = parsePidStat(text, file);
      if (st.comm !== `ksoftirqd/${cpu}`) return undefined;
      out.push({ cpu, pid, ticks: st.utime + st.stime });
    }
    out.sort((a, b) => a.cpu - b.cpu);
    return out;
  }

  private candidates(): string[] {
    const children = readProcTextOptional(path.join(this.procfs, '2/task/2/children'));
    if (children !== undefined && children.trim() !== '') return children.trim().split(/\s+/);
    try {
      return fs.readdirSync(this.procfs).filter((n) => /^\d+$/.test(n));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new ProcFileError(this.procfs, err.code ?? 'EIO', `cannot list (${err.code ?? err.message})`);
    }
  }

  private scan(now: number): void {
    this.scans++;
    this.lastScan = now;
    const pids = new Map<number, number>();
    for (const p of this.candidates()) {
      let comm: string;
      try {
        comm = readProcText(path.join(this.procfs, p, 'comm')).trim();
      } catch {
        continue; // exited between listing and reading
      }
      const m = KSOFTIRQD_RE.exec(comm);
      if (m) pids.set(Number(p), Number(m[1]));
    }
    this.pids = pids;
  }
}
