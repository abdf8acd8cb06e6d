// Reading small /proc and /sys files. Synchronous on purpose: these are in-memory pseudo-files read in
// a few microseconds, while fs.promises.readFile costs ~0.4 ms per file in thread-pool round trips
// (measured on the test VM), which would dominate a scrape that reads dozens of them.

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

/** Read a whole pseudo-file as text. Throws ProcFileError naming the file and the errno. */
export function readProcText(file: string): string {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ProcFileError(file, err.code ?? 'EIO', `cannot read (${err.code ?? err.message})`);
  }
}

/** Like readProcText, but undefined when the file does not exist (an optional kernel interface). */
export function readProcTextOptional(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'latin1');
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
