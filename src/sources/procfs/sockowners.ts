// Which processes hold a socket: the socket's inode (sock_diag idiag_inode) appears as the target
// "socket:[INODE]" of a /proc/<pid>/fd/<n> symlink in every process that has it open — what `ss -p`
// and `lsof` read.
//
// A scan reads one symlink per open descriptor on the node, so it is bounded and cached:
//   - a found owner is kept as (pid, fd) and re-checked with one readlink per read; it is dropped when
//     the descriptor no longer points at the socket (closed, or the pid reused);
//   - inodes not found yet trigger a scan at most every `rescanMs`; one scan reads at most
//     `maxLinksPerScan` symlinks and resumes where it stopped on the next call (newest pids first:
//     the processes of a flow that just appeared are usually recent);
//   - without permission (another user's process, no CAP_SYS_PTRACE) readdir of /proc/<pid>/fd fails
//     with EACCES: such processes are counted and skipped, and an inode not found elsewhere is reported
//     as unknown with that reason — never as "no owner".

import * as fs from 'fs';
import * as path from 'path';

export interface SocketOwner {
  /** Processes found holding the socket (pids), sorted. */
  pids: number[];
  /** Set when no owner is known: why (permission, not found, scan not finished). */
  unknown?: string;
}

export interface SocketOwnerFinderOptions {
  /** Least time between two scans for inodes not found yet (ms). */
  rescanMs?: number;
  /** Most symlinks one call reads while scanning. */
  maxLinksPerScan?: number;
  /** The directory and symlink reads (tests inject failures such as EACCES, which root never sees). */
  io?: Pick<typeof fs, 'readdirSync' | 'readlinkSync'>;
}

interface Held {
  pid: number;
  fd: string;
}

const SOCKET_RE = /^socket:\[(\d+)\]$/;

export class SocketOwnerFinder {
  private readonly owners = new Map<number, Held[]>();
  /** Pids still to visit in the current scan (a scan spans calls when it hits the link budget). */
  private pending: string[] = [];
  private scanStartedAt = -Infinity;
  private scanDenied = 0;
  private lastDenied = 0;
  private lastScanComplete = false;
  /** Scans started and symlinks read (tests, cost accounting). */
  scans = 0;
  linksRead = 0;
  readonly rescanMs: number;
  readonly maxLinksPerScan: number;
  private readonly io: Pick<typeof fs, 'readdirSync' | 'readlinkSync'>;

  constructor(
    private readonly procfs: string,
    o: SocketOwnerFinderOptions = {},
  ) {
    this.rescanMs = o.rescanMs ?? 5000;
    this.maxLinksPerScan = o.maxLinksPerScan ?? 5000;
    this.io = o.io ?? fs;
  }

  private readlink(pid: number | string, fd: string): string | undefined {
    this.linksRead++;
    try {
      return this.io.readlinkSync(path.join(this.procfs, String(pid), 'fd', fd)) as string;
    } catch {
      return undefined;
    }
  }

  /** The owners of each inode (`now`: a monotonic ms clock for the rescan interval). */
  find(inodes: readonly number[], now: number): Map<number, SocketOwner> {
    const want = new Set(inodes.filter((i) => Number.isInteger(i) && i > 0));
    for (const i of [...this.owners.keys()]) if (!want.has(i)) this.owners.delete(i);
    // Re-check what is known: one readlink per (pid, fd).
    for (const [inode, held] of this.owners) {
      const still = held.filter((h) => this.readlink(h.pid, h.fd) === `socket:[${inode}]`);
      if (still.length) this.owners.set(inode, still);
      else this.owners.delete(inode);
    }
    const missing = [...want].filter((i) => !this.owners.has(i));
    if (missing.length > 0) this.scan(new Set(missing), now);
    const out = new Map<number, SocketOwner>();
    for (const i of want) {
      const held = this.owners.get(i);
      if (held) {
        out.set(i, { pids: [...new Set(held.map((h) => h.pid))].sort((a, b) => a - b) });
        continue;
      }
      let why: string;
      if (this.pending.length > 0) why = 'the scan of /proc/*/fd has not reached it yet';
      else if (this.lastDenied > 0) why = `no permission to read /proc/PID/fd of ${this.lastDenied} processes (EACCES; needs root or CAP_SYS_PTRACE)`;
      else why = 'no process in this PID namespace holds the socket';
      out.set(i, { pids: [], unknown: why });
    }
    return out;
  }

  private scan(missing: Set<number>, now: number): void {
    if (this.pending.length === 0) {
      if (now - this.scanStartedAt < this.rescanMs && this.lastScanComplete) return;
      let pids: string[];
      try {
        pids = (this.io.readdirSync(this.procfs) as string[]).filter((n) => /^\d+$/.test(n));
      } catch {
        return;
      }
      this.pending = pids.sort((a, b) => Number(a) - Number(b)); // popped from the end: newest first
      this.scanStartedAt = now;
      this.scanDenied = 0;
      this.scans++;
    }
    let budget = this.maxLinksPerScan;
    while (this.pending.length > 0 && budget > 0 && missing.size > 0) {
      const pid = this.pending.pop() as string;
      let fds: string[];
      try {
        fds = this.io.readdirSync(path.join(this.procfs, pid, 'fd')) as string[];
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EACCES' || code === 'EPERM') this.scanDenied++;
        continue;
      }
      for (const fd of fds) {
        budget--;
        const target = this.readlink(pid, fd);
        const m = target !== undefined ? SOCKET_RE.exec(target) : null;
        if (!m) continue;
        const inode = Number(m[1]);
        if (!missing.has(inode) && !this.owners.has(inode)) continue;
        const list = this.owners.get(inode) ?? [];
        list.push({ pid: Number(pid), fd });
        this.owners.set(inode, list);
      }
      for (const i of [...missing]) if (this.owners.has(i)) missing.delete(i);
    }
    if (missing.size === 0) this.pending = []; // everything found: end the scan early
    if (this.pending.length === 0) {
      this.lastScanComplete = true;
      this.lastDenied = this.scanDenied;
    } else this.lastScanComplete = false;
  }
}
