// Reading small /proc and /sys files. Synchronous on purpose: these are in-memory pseudo-files read in
// a few microseconds, while fs.promises.readFile costs ~0.4 ms per file in thread-pool round trips
// (measured on the test VM), which would dominate a scrape that reads dozens of them.
//
// Descriptors of procfs and sysfs files are kept open and re-read with pread() from offset 0: seq_file
// (procfs, sysfs attributes via kernfs) and the sysctl handlers generate the content again for every
// read that starts at 0, so the value is as fresh as after a new open(). On the test VM that is ~1.6 µs
// per read against ~11–15 µs for open + read + close, most of it the path walk in open() (through the
// /sys/class/net/DEV symlink for per-queue files). Only pseudo-filesystems are held (statfs magic):
// a regular file (fixtures) may be replaced, and a held descriptor would keep reading the old one.
// A held file that fails (a device removed: ENODEV) is closed and opened again once, so the caller sees
// exactly what a fresh open would give. At most HELD_MAX descriptors are held; beyond that files are
// read the old way. Per-device paths are dropped by forgetHeld() when the device list changes (a
// new device may reuse a name; a held descriptor would still follow the old one).

import * as fs from 'fs';

/** A file that could not be read; `code` is the errno name (ENOENT, EACCES, EPERM, EISDIR, ...). */
export class ProcFileError extends Error {
  override readonly name = 'ProcFileError';
  constructor(
    readonly file: string,
    readonly code: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
  }
}

let buf = Buffer.allocUnsafe(64 * 1024);

/**
 * pread from offset 0 into the shared buffer; latin1 text. A multi-record seq_file (/proc/interrupts,
 * /proc/net/*) may return less than asked before its end, so those are read until a read returns 0.
 * A single-value file (a sysfs attribute: one show() of at most a page; a sysctl) gives everything in
 * one read: `single` stops at the first short read, and asks for one page, because the sysctl handler
 * allocates a kernel buffer of the size asked for on every read.
 */
function readFrom(fd: number, single: boolean): string {
  let n = 0;
  for (;;) {
    if (n === buf.length) {
      const bigger = Buffer.allocUnsafe(buf.length * 2);
      buf.copy(bigger, 0, 0, n);
      buf = bigger;
    }
    const want = single && n === 0 ? PAGE : buf.length - n;
    const k = fs.readSync(fd, buf, n, want, n);
    n += k;
    if (k === 0 || (single && k < want)) break;
  }
  return buf.toString('latin1', 0, n);
}
const PAGE = 4096;

const PROC_SUPER_MAGIC = 0x9fa0;
const SYSFS_MAGIC = 0x62656572;
/** Most descriptors held open at once (well under the usual 1024 soft limit with the rest in use). */
export const HELD_MAX = 512;
interface Held {
  fd: number;
  single: boolean;
}
const held = new Map<string, Held>();
type Fs = 'proc' | 'sys' | 'other';
/** Filesystem of each directory seen (statfs once per directory). */
const dirFs = new Map<string, Fs>();

function fsOf(file: string): Fs {
  const dir = file.slice(0, file.lastIndexOf('/') + 1);
  let kind = dirFs.get(dir);
  if (kind === undefined) {
    try {
      const t = fs.statfsSync(file).type;
      kind = t === PROC_SUPER_MAGIC ? 'proc' : t === SYSFS_MAGIC ? 'sys' : 'other';
    } catch {
      kind = 'other';
    }
    if (dirFs.size > 4 * HELD_MAX) dirFs.clear();
    dirFs.set(dir, kind);
  }
  return kind;
}

/** One-value files: sysfs attributes, and sysctls (procfs under a sys/ directory). */
const isSingle = (file: string, kind: Fs) => kind === 'sys' || (kind === 'proc' && /\/sys\//.test(file));

/** Read a whole file (see the header: held descriptor re-read from 0, or open + read + close). Throws errno errors. */
export function readWhole(file: string): string {
  const h = held.get(file);
  if (h !== undefined) {
    try {
      return readFrom(h.fd, h.single);
    } catch {
      held.delete(file);
      try {
        fs.closeSync(h.fd);
      } catch {
        /* already unusable */
      }
      // fall through: open again, so the caller sees what a fresh open gives (ENOENT for a removed device)
    }
  }
  const fd = fs.openSync(file, 'r');
  const kind = fsOf(file);
  const single = isSingle(file, kind);
  let keep = false;
  try {
    const text = readFrom(fd, single);
    keep = kind !== 'other' && held.size < HELD_MAX;
    return text;
  } finally {
    if (keep) held.set(file, { fd, single });
    else fs.closeSync(fd);
  }
}

/** Close the held descriptors of files under `prefix` (a device directory whose device changed). */
export function forgetHeld(prefix: string): void {
  for (const [file, h] of held) {
    if (!file.startsWith(prefix)) continue;
    held.delete(file);
    try {
      fs.closeSync(h.fd);
    } catch {
      /* nothing to do */
    }
  }
}

/** Number of descriptors held now (self metrics, tests). */
export const heldCount = (): number => held.size;

/** Read a whole pseudo-file as text. Throws ProcFileError naming the file and the errno. */
export function readProcText(file: string): string {
  try {
    return readWhole(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ProcFileError(file, err.code ?? 'EIO', `cannot read (${err.code ?? err.message})`);
  }
}

/** Like readProcText, but undefined when the file does not exist (an optional kernel interface). */
export function readProcTextOptional(file: string): string | undefined {
  try {
    return readWhole(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') return undefined;
    throw new ProcFileError(file, err.code ?? 'EIO', `cannot read (${err.code ?? err.message})`);
  }
}

/** A parse failure that says where: file and 1-based line. */
export class ProcParseError extends Error {
  override readonly name = 'ProcParseError';
  constructor(
    readonly file: string,
    readonly line: number,
    detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
  }
}
