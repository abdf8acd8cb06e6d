// CPU identity and topology: /proc/cpuinfo, /sys/devices/system/cpu/{online,possible}, the kernel release
// (/proc/sys/kernel/osrelease, version) and USER_HZ (the auxiliary vector's AT_CLKTCK).

import * as fs from 'fs';
import * as path from 'path';
import { ProcParseError, readProcText, readProcTextOptional } from './read';

const MAX_CPUS = 65536;

/** Parse a kernel CPU list ("0-3,8,10-11", as in /sys/devices/system/cpu/online). */
export function parseCpuList(text: string, file = 'cpu list'): number[] {
  const s = text.trim();
  const out: number[] = [];
  if (s === '') return out;
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new ProcParseError(file, 1, `bad CPU list element "${part}"`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    // More CPUs or a higher CPU number than any kernel has (NR_CPUS is at most 8192) is not a CPU list:
    // without these bounds "0-4294967295" would build an array of 4 billion numbers, and a number past
    // 2^53 (where c + 1 === c) would never end the loop; both end the process.
    if (b < a || b >= MAX_CPUS || out.length + (b - a) >= MAX_CPUS) throw new ProcParseError(file, 1, `bad CPU range "${part}"`);
    for (let c = a; c <= b; c++) out.push(c);
  }
  return out;
}

/** Online CPUs from sysfs, or undefined if the file is absent (e.g. sysfs not mounted). */
export function readOnlineCpus(sysfs: string): number[] | undefined {
  const file = path.join(sysfs, 'devices/system/cpu/online');
  const t = readProcTextOptional(file);
  return t === undefined ? undefined : parseCpuList(t, file);
}

export function readPossibleCpus(sysfs: string): number[] | undefined {
  const file = path.join(sysfs, 'devices/system/cpu/possible');
  const t = readProcTextOptional(file);
  return t === undefined ? undefined : parseCpuList(t, file);
}

export interface CpuInfo {
  /** Number of "processor" entries (= online CPUs). */
  processors: number;
  /** Distinct CPU model strings in order of appearance (usually one). */
  models: string[];
}

// The model line differs by architecture: x86 "model name", arm64 "CPU part"/"Hardware" (no name),
// powerpc "cpu", s390 "processor N: version ...". Take the first key that is present.
const MODEL_KEYS = ['model name', 'cpu model', 'cpu', 'Hardware', 'Processor', 'uarch', 'isa'];

/** Parse /proc/cpuinfo: count processors and collect model names. */
export function parseCpuinfo(text: string, file = 'cpuinfo'): CpuInfo {
  let processors = 0;
  const byKey = new Map<string, string[]>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === 'processor') processors++;
    if (MODEL_KEYS.includes(key) && value !== '') {
      let l = byKey.get(key);
      if (!l) byKey.set(key, (l = []));
      if (!l.includes(value)) l.push(value);
    }
  }
  if (processors === 0) throw new ProcParseError(file, 1, 'no "processor" entries');
  let models: string[] = [];
  for (const k of MODEL_KEYS) {
    const l = byKey.get(k);
    if (l && l.length > 0) {
      models = l;
      break;
    }
  }
  return { processors, models };
}

export function readCpuinfo(procfs: string): CpuInfo {
  const file = path.join(procfs, 'cpuinfo');
  return parseCpuinfo(readProcText(file), file);
}

export interface KernelInfo {
  release: string;
  version: string;
}

export function readKernelInfo(procfs: string): KernelInfo {
  const release = readProcText(path.join(procfs, 'sys/kernel/osrelease')).trim();
  const version = readProcText(path.join(procfs, 'sys/kernel/version')).trim();
  return { release, version };
}

const AT_NULL = 0;
const AT_CLKTCK = 17;

/**
 * AT_CLKTCK from an auxiliary vector (/proc/self/auxv of a 64-bit process: pairs of u64 type, value).
 * This is sysconf(_SC_CLK_TCK), the USER_HZ that /proc/stat and /proc/<pid>/stat count in.
 */
export function parseAuxvClockTicks(buf: Buffer): number | undefined {
  for (let off = 0; off + 16 <= buf.length; off += 16) {
    const type = Number(buf.readBigUInt64LE(off));
    if (type === AT_NULL) break;
    if (type === AT_CLKTCK) {
      const v = Number(buf.readBigUInt64LE(off + 8));
      return v > 0 ? v : undefined;
    }
  }
  return undefined;
}

let cachedUserHz: number | undefined;
/**
 * USER_HZ of the running kernel. Read from this process's own auxv (it is a kernel ABI constant, not
 * host state, so it does not follow --path.procfs). 100 on every architecture Node runs on if unreadable.
 */
export function userHz(): number {
  if (cachedUserHz !== undefined) return cachedUserHz;
  let hz: number | undefined;
  try {
    hz = parseAuxvClockTicks(fs.readFileSync('/proc/self/auxv'));
  } catch {
    hz = undefined;
  }
  cachedUserHz = hz ?? 100;
  return cachedUserHz;
}
