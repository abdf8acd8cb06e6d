// Sysctls under /proc/sys (docs/kernel-sources.md §8.6). A value is either a list of integers
// ("4096 131072 6291456", "1") or a string ("bbr", "reno cubic bbr"). Network sysctls are per network
// namespace: the values are those of the namespace the exporter runs in.

import * as path from 'path';
import { ProcFileError, ProcParseError, readProcText } from './read';

export type SysctlValue = { name: string; numbers: number[] } | { name: string; text: string };

const NAME_RE = /^[a-zA-Z0-9_\-/]+(\.[a-zA-Z0-9_\-/]+)+$/;

/**
 * "net.ipv4.tcp_rmem" -> "net/ipv4/tcp_rmem". As in sysctl(8), a "/" inside a component stands for a dot
 * in the file name: "net.ipv4.conf.eth0/100.rp_filter" -> "net/ipv4/conf/eth0.100/rp_filter".
 */
export function sysctlPath(name: string): string {
  if (!NAME_RE.test(name)) throw new Error(`bad sysctl name "${name}"`);
  const parts = name.split('.').map((p) => p.replace(/\//g, '.'));
  if (parts.some((p) => p === '.' || p === '..')) throw new Error(`bad sysctl name "${name}"`);
  return parts.join('/');
}

/** Integers if every whitespace-separated token is an integer, else the trimmed text. */
export function parseSysctlValue(name: string, text: string, file = name): SysctlValue {
  const t = text.trim();
  const tokens = t === '' ? [] : t.split(/\s+/);
  if (tokens.length > 0 && tokens.every((x) => /^-?\d+$/.test(x))) {
    return { name, numbers: tokens.map(Number) };
  }
  if (t.includes('\n')) throw new ProcParseError(file, 2, 'multi-line value');
  return { name, text: t.replace(/\s+/g, ' ') };
}

/** Read one sysctl; undefined if this kernel (or namespace) does not have it. */
export function readSysctl(procfs: string, name: string): SysctlValue | undefined {
  const file = path.join(procfs, 'sys', sysctlPath(name));
  try {
    return parseSysctlValue(name, readProcText(file), file);
  } catch (e) {
    if (e instanceof ProcFileError && e.code === 'ENOENT') return undefined;
    throw e;
  }
}
