// Which processes hold a socket: the socket's inode (sock_diag idiag_inode) appears as the target
// "socket:[INODE]" of a /proc/<pid>/fd/<n> symlink in every process that has it open — what `ss -p`
// and `lsof` read.
//
// A scan reads one symlink per open descriptor on the node, so it is bounded and cached:
//   - a found owner is kept as (pid, fd) and re-checked with one readlink per read; it is dropped when
//     the descriptor no longer points at the socket (closed, or the pid reused);
//   - inodes not found yet trigger a scan at most every `rescanMs`; one call reads at most
//     `maxLinksPerScan` symlinks and spends at most `maxScanMs`, and the scan resumes where it stopped on
//     the next call. Processes in this process's network namespace come first (/proc/PID/ns/net: the
//     sockets sock_diag shows are this namespace's, and so are their processes, unless a socket was
//     passed across), newest pids first within each group (a flow that just appeared is usually a recent
//     process's); a process holding thousands of descriptors elsewhere on the node does not delay them;
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
  /** Most time one call spends scanning (ms): the caller's event loop is blocked meanwhile. */
  maxScanMs?: number;
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
  /** The process being read when the last call ran out of budget, and how far it got. */
  private cur: { pid: string; fds: string[]; i: number } | undefined;
  private scanStartedAt = -Infinity;
  private scanDenied = 0;
  private lastDenied = 0;
  private lastScanComplete = false;
  /** Scans started and symlinks read (tests, cost accounting). */
  scans = 0;
  linksRead = 0;
  readonly rescanMs: number;
  readonly maxLinksPerScan: number;
  readonly maxScanMs: number;
  private readonly io: Pick<typeof fs, 'readdirSync' | 'readlinkSync'>;

  constructor(
    private readonly procfs: string,
    o: SocketOwnerFinderOptions = {},
  ) {
    this.rescanMs = o.rescanMs ?? 5000;
    this.maxLinksPerScan = o.maxLinksPerScan ?? 5000;
    this.maxScanMs = o.maxScanMs ?? 5;
    this.io = o.io ?? fs;
  }

  /** The network namespace of a process ("net:[4026531840]"), undefined when unreadable. */
  private netns(pid: string): string | undefined {
    try {
      return this.io.readlinkSync(path.join(this.procfs, pid, 'ns', 'net')) as string;
    } catch {
      return undefined;
    }
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
      if (this.pending.length > 0 || this.cur) why = 'the scan of /proc/*/fd has not reached it yet';
      else if (this.lastDenied > 0) why = `no permission to read /proc/PID/fd of ${this.lastDenied} processes (EACCES; needs root or CAP_SYS_PTRACE)`;
      else why = 'no process in this PID namespace holds the socket';
      out.set(i, { pids: [], unknown: why });
    }
    return out;
  }

  private scan(missing: Set<number>, now: number): void {
    if (this.pending.length === 0 && !this.cur) {
      if (now - this.scanStartedAt < this.rescanMs && this.lastScanComplete) return;
      let pids: string[];
      try {
        pids = (this.io.readdirSync(this.procfs) as string[]).filter((n) => /^\d+$/.test(n));
      } catch {
        return;
      }
      // Popped from the end: this namespace's processes first, newest first within each group.
      const own = this.netns('self');
      const same = own === undefined ? [] : pids.filter((p) => this.netns(p) === own);
      const sameSet = new Set(same);
      const byPid = (a: string, b: string) => Number(a) - Number(b);
      this.pending = [...pids.filter((p) => !sameSet.has(p)).sort(byPid), ...same.sort(byPid)];
      this.scanStartedAt = now;
      this.scanDenied = 0;
      this.scans++;
    }
    let budget = this.maxLinksPerScan;
    const deadline = process.hrtime.bigint() + BigInt(Math.round(this.maxScanMs * 1e6));
    const timeLeft = () => process.hrtime.bigint() < deadline;
    while ((this.cur || this.pending.length > 0) && budget > 0 && missing.size > 0 && timeLeft()) {
      if (!this.cur) {
        const pid = this.pending.pop() as string;
        try {
          this.cur = { pid, fds: this.io.readdirSync(path.join(this.procfs, pid, 'fd')) as string[], i: 0 };
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'EACCES' || code === 'EPERM') this.scanDenied++;
          continue;
        }
      }
      const c = this.cur;
      // A process with many descriptors is read over several calls (cursor c.i).
      while (c.i < c.fds.length && budget > 0 && ((c.i & 63) !== 63 || timeLeft())) {
        const fd = c.fds[c.i++];
        budget--;
        const target = this.readlink(c.pid, fd);
        const m = target !== undefined ? SOCKET_RE.exec(target) : null;
        if (!m) continue;
        const inode = Number(m[1]);
        if (!missing.has(inode) && !this.owners.has(inode)) continue;
        const list = this.owners.get(inode) ?? [];
        list.push({ pid: Number(c.pid), fd });
        this.owners.set(inode, list);
      }
      if (c.i >= c.fds.length) this.cur = undefined;
      for (const i of [...missing]) if (this.owners.has(i)) missing.delete(i);
    }
    if (missing.size === 0) {
      // everything found: end the scan early
      this.pending = [];
      this.cur = undefined;
    }
    if (this.pending.length === 0 && !this.cur) {
      this.lastScanComplete = true;
      this.lastDenied = this.scanDenied;
    } else this.lastScanComplete = false;
  }
}
