// Reading small /proc and /sys files. Synchronous on purpose: these are in-memory pseudo-files read in
// a few microseconds, while fs.promises.readFile costs ~0.4 ms per file in thread-pool round trips
// (measured on the test VM), which would dominate a scrape that reads dozens of them. And with
// open/read/close into one reused buffer rather than fs.readFileSync, which fstat()s and grows a fresh
// buffer for every zero-size pseudo-file: ~13 µs instead of ~34 µs per sysctl on the test VM.

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

/** open + read until EOF + close, into the shared buffer; returns latin1 text. Throws errno errors. */
export function readWhole(file: string): string {
  const fd = fs.openSync(file, 'r');
  try {
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, n);
        buf = bigger;
      }
      const k = fs.readSync(fd, buf, n, buf.length - n, null);
      if (k === 0) break;
      n += k;
    }
    return buf.toString('latin1', 0, n);
  } finally {
    fs.closeSync(fd);
  }
}

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
