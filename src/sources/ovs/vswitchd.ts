// CPU time of ovs-vswitchd: on the userspace datapath (and for upcalls on the kernel one) its threads
// forward packets, so a vswitchd that burns a core is evidence that OVS limits a flow.

import * as path from 'path';
import { parsePidStat } from '../procfs/ksoftirqd';
import { readProcTextOptional } from '../procfs/read';
import { VSWITCHD, parsePidFile } from './discover';
import type { Discovered } from './discover';

/**
 * The pid of the ovs-vswitchd behind this control socket: known when the socket was found through the
 * pid file; found through --ovs.unixctl, the daemon's pid file usually sits next to its control socket.
 */
export function vswitchdPid(endpoint: Pick<Discovered, 'path' | 'pid'>): number | undefined {
  if (endpoint.pid) return endpoint.pid;
  const file = path.join(path.dirname(endpoint.path), `${VSWITCHD}.pid`);
  const text = readProcTextOptional(file);
  return text ? parsePidFile(text, file) : undefined;
}

/**
 * utime + stime of the process in seconds (/proc/PID/stat fields 14 and 15, in USER_HZ ticks), or
 * undefined when the pid or its stat file is not there. Throws on an unreadable or malformed file.
 */
export function vswitchdCpuSeconds(procfs: string, endpoint: Pick<Discovered, 'path' | 'pid'>, userHz: number): number | undefined {
  const pid = vswitchdPid(endpoint);
  if (!pid) return undefined;
  const text = readProcTextOptional(path.join(procfs, String(pid), 'stat'));
  if (!text) return undefined;
  const ps = parsePidStat(text);
  return (ps.utime + ps.stime) / userHz;
}
