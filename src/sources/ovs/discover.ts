// Where is ovs-vswitchd's unixctl socket? The same rules as `ovs-appctl -t ovs-vswitchd`
// (connect_to_target() in utilities/ovs-appctl.c), docs/kernel-sources.md §7.2:
//   <rundir>/ovs-vswitchd.pid holds the pid  ->  socket <rundir>/ovs-vswitchd.<pid>.ctl
// Run directories, in order: --ovs.rundir (only that one when given), then $OVS_RUNDIR, /run/openvswitch,
// /var/run/openvswitch. An explicit --ovs.unixctl path (a daemon started with --unixctl=PATH) wins over all.
//
// Resolved again on every (re)connect: after ovs-vswitchd restarts the pid, and so the socket name, change.

import { promises as fsp } from 'fs';
import * as path from 'path';

export const DEFAULT_RUNDIRS: readonly string[] = ['/run/openvswitch', '/var/run/openvswitch'];
export const VSWITCHD = 'ovs-vswitchd';

export interface DiscoverOptions {
  /** --ovs.unixctl: a socket path; used as is. */
  unixctl?: string;
  /** --ovs.rundir: the only run directory searched when set. */
  rundir?: string;
  /** $OVS_RUNDIR (passed in, never read from process.env here, so tests control it). */
  envRundir?: string;
  /** Default run directories (tests point them at temp dirs). */
  defaults?: readonly string[];
}

export interface Discovered {
  path: string;
  /** How it was found, for logs: "--ovs.unixctl", or "<rundir>/ovs-vswitchd.pid (pid N)". */
  how: string;
  pid?: number;
}

/** Thrown when no socket can be found; `tried` lists every place looked at and why it did not fit. */
export class NotFoundError extends Error {
  override readonly name = 'OvsSocketNotFound';
  constructor(readonly tried: readonly string[]) {
    super(`ovs-vswitchd control socket not found (${tried.join('; ')})`);
  }
}

/** The run directories to search, in order, without duplicates. Pure. */
export function candidateRundirs(o: DiscoverOptions): string[] {
  if (o.rundir) return [o.rundir];
  const out: string[] = [];
  for (const d of [o.envRundir, ...(o.defaults ?? DEFAULT_RUNDIRS)]) {
    if (d && !out.includes(path.resolve(d))) out.push(path.resolve(d));
  }
  return out;
}

/** Parse a pid file: decimal pid, optional trailing newline. Pure. */
export function parsePidFile(text: string, where: string): number {
  const m = /^\s*(\d+)\s*$/.exec(text);
  const pid = m ? Number(m[1]) : NaN;
  if (!m || !Number.isSafeInteger(pid) || pid <= 0) throw new Error(`${where}: not a pid: ${JSON.stringify(text.slice(0, 40))}`);
  return pid;
}

/** Find the socket. Throws NotFoundError naming every candidate and why it failed. */
export async function discoverUnixctl(o: DiscoverOptions): Promise<Discovered> {
  if (o.unixctl) return { path: o.unixctl, how: '--ovs.unixctl' };
  const tried: string[] = [];
  for (const dir of candidateRundirs(o)) {
    const pidFile = path.join(dir, `${VSWITCHD}.pid`);
    let text: string;
    try {
      text = await fsp.readFile(pidFile, 'utf8');
    } catch (e) {
      tried.push(`${pidFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      continue;
    }
    let pid: number;
    try {
      pid = parsePidFile(text, pidFile);
    } catch (e) {
      tried.push((e as Error).message);
      continue;
    }
    const sock = path.join(dir, `${VSWITCHD}.${pid}.ctl`);
    try {
      const st = await fsp.stat(sock);
      if (!st.isSocket()) {
        tried.push(`${sock}: not a socket`);
        continue;
      }
    } catch (e) {
      tried.push(`${sock}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      continue;
    }
    return { path: sock, how: `${pidFile} (pid ${pid})`, pid };
  }
  throw new NotFoundError(tried);
}
