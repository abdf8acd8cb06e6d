// The threads of a process and their CPU use: /proc/<pid>/task/<tid>/stat (fs/proc/array.c
// do_task_stat()) and /proc/<pid>/task/<tid>/schedstat (fs/proc/base.c proc_pid_schedstat()).
//
//   stat:      pid (comm) state ppid ... utime(14) stime(15) ... processor(39) ...   (ticks in USER_HZ)
//   schedstat: <ns on a CPU> <ns runnable, waiting on a run queue> <timeslices>
//
// schedstat needs CONFIG_SCHED_INFO (set by most distribution kernels); its nanosecond run time is exact
// where utime/stime are tick-sampled, and its wait time says whether a thread that ran little wanted to
// run more (a starved thread) or slept by choice.
//
// readTasks() opens, reads and closes every file. A TaskReader (what a sampler polling the same processes
// every second uses) keeps the descriptors open and re-reads them from offset 0 (./read.ts), which drops
// the open/fstat/close of every file of every thread; the descriptors of threads that left the task
// directory, and of processes no longer read, are closed (sweep()), so exited threads pin nothing.

import * as fs from 'fs';
import * as path from 'path';
import { ProcFileError, ProcParseError, forgetHeld, readWhole } from './read';

export interface TaskStat {
  tid: number;
  comm: string;
  /** Field 3: R running, S sleeping, D disk sleep, ... */
  state: string;
  /** Fields 14 and 15, USER_HZ ticks. */
  utime: number;
  stime: number;
  /** utime + stime. */
  cpuTicks: number;
  /** Field 39: the CPU the task last ran on (undefined on kernels that print fewer fields). */
  processor?: number;
}

export interface TaskSample extends TaskStat {
  pid: number;
  /** schedstat: nanoseconds on a CPU and waiting runnable on a run queue (undefined without schedstat). */
  runNs?: number;
  waitNs?: number;
  /** /proc/<pid>/task/<tid>/status voluntary_ctxt_switches: times the thread blocked (read on request). */
  voluntarySwitches?: number;
}

/**
 * Parse one /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat line. comm may hold spaces and ")": it ends
 * at the last ")".
 */
export function parseTaskStat(text: string, file = 'stat'): TaskStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new ProcParseError(file, 1, 'no "(comm)" field');
  const tid = Number(text.slice(0, open).trim());
  // The fields after comm are separated by single spaces (seq_put_decimal_*); a plain split is several
  // times cheaper than a regex one on this ~300-byte line, read per thread per snapshot.
  const rest = text.slice(close + 2).trimEnd().split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime 15, processor 39.
  if (rest.length < 13) throw new ProcParseError(file, 1, `${rest.length + 2} fields, expected at least 15`);
  const num = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined);
  const utime = num(rest[11]);
  const stime = num(rest[12]);
  if (!Number.isInteger(tid) || utime === undefined || stime === undefined) {
    throw new ProcParseError(file, 1, `bad tid/utime/stime "${text.slice(0, open).trim()}" "${rest[11]}" "${rest[12]}"`);
  }
  return { tid, comm: text.slice(open + 1, close), state: rest[0], utime, stime, cpuTicks: utime + stime, processor: num(rest[36]) };
}

/** Parse /proc/<pid>/task/<tid>/schedstat: "<run ns> <wait ns> <slices>". */
export function parseSchedstat(text: string, file = 'schedstat'): { runNs: number; waitNs: number } {
  const f = text.trim().split(/\s+/);
  if (f.length < 2 || !/^\d+$/.test(f[0]) || !/^\d+$/.test(f[1])) throw new ProcParseError(file, 1, `expected "<run ns> <wait ns> <slices>", got "${text.trim()}"`);
  return { runNs: Number(f[0]), waitNs: Number(f[1]) };
}

type Reader = (file: string) => string;
const readFresh: Reader = (file) => fs.readFileSync(file, 'latin1');

function readOptional(file: string, read: Reader = readFresh): string | undefined {
  try {
    return read(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    // The task exited between listing and reading.
    if (err.code === 'ENOENT' || err.code === 'ESRCH') return undefined;
    throw new ProcFileError(file, err.code ?? 'EIO', `cannot read (${err.code ?? err.message})`);
  }
}

/**
 * The threads of `pid` (at most `maxThreads`, the lowest tids first) with their CPU time. An exited
 * process gives []; a permission error throws ProcFileError (EACCES).
 */
export function readTasks(procfs: string, pid: number, maxThreads = 256, withStatus = false): TaskSample[] {
  return readTaskDir(procfs, pid, maxThreads, withStatus, readFresh);
}

function readTaskDir(procfs: string, pid: number, maxThreads: number, withStatus: boolean, read: Reader, onTids?: (dir: string, tids: number[]) => void): TaskSample[] {
  const dir = path.join(procfs, String(pid), 'task');
  let tids: number[];
  try {
    tids = fs
      .readdirSync(dir)
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .sort((a, b) => a - b)
      .slice(0, maxThreads);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT' || err.code === 'ESRCH') return [];
    throw new ProcFileError(dir, err.code ?? 'EIO', `cannot list (${err.code ?? err.message})`);
  }
  onTids?.(dir, tids);
  const out: TaskSample[] = [];
  for (const tid of tids) {
    const statFile = `${dir}/${tid}/stat`;
    const text = readOptional(statFile, read);
    if (text === undefined) continue;
    const st = parseTaskStat(text, statFile);
    const schedFile = `${dir}/${tid}/schedstat`;
    const sched = readOptional(schedFile, read);
    let voluntarySwitches: number | undefined;
    if (withStatus) {
      const m = /^voluntary_ctxt_switches:\s*(\d+)/m.exec(readOptional(`${dir}/${tid}/status`, read) ?? '');
      if (m) voluntarySwitches = Number(m[1]);
    }
    out.push({ pid, ...st, ...(sched !== undefined ? parseSchedstat(sched, schedFile) : {}), voluntarySwitches });
  }
  return out;
}

/**
 * readTasks() for processes read again and again: their threads' files stay open between reads (see the
 * header). Call sweep() after each round of reads: it closes what belongs to processes not read in that
 * round. close() closes everything.
 */
export class TaskReader {
  /** Task directory → the tids read from it last time, and whether it was read this round. */
  private readonly dirs = new Map<string, { tids: Set<number>; round: boolean }>();

  constructor(private readonly procfs: string) {}

  read(pid: number, maxThreads = 256, withStatus = false): TaskSample[] {
    return readTaskDir(this.procfs, pid, maxThreads, withStatus, readWhole, (dir, tids) => {
      const now = new Set(tids);
      const was = this.dirs.get(dir);
      if (was) for (const t of was.tids) if (!now.has(t)) forgetHeld(`${dir}/${t}/`);
      this.dirs.set(dir, { tids: now, round: true });
    });
  }

  sweep(): void {
    for (const [dir, d] of this.dirs) {
      if (d.round) {
        d.round = false;
        continue;
      }
      forgetHeld(`${dir}/`);
      this.dirs.delete(dir);
    }
  }

  close(): void {
    for (const dir of this.dirs.keys()) forgetHeld(`${dir}/`);
    this.dirs.clear();
  }
}
