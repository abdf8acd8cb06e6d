// /proc/net/netstat (TcpExt, IpExt, MPTcpExt) and /proc/net/snmp (Ip, Icmp, Tcp, Udp, ...).
// docs/kernel-sources.md §8.7. Both are pairs of lines:
//   TcpExt: SyncookiesSent SyncookiesRecv ...
//   TcpExt: 0 0 ...
// The set and order of names change between kernels, so values are zipped by name, never by position.

import * as path from 'path';
import { ProcParseError, readProcText } from './read';

/** group -> field -> value. Values are decimal (unsigned long; a few snmp fields such as Tcp MaxConn are -1). */
export type NetstatGroups = Map<string, Map<string, number>>;

/** Fields of a line: the kernel separates them with single spaces; a plain split is much cheaper than a regex one. */
const fields = (s: string): string[] => (/\s\s|\t/.test(s) ? s.split(/\s+/) : s.split(' '));

export function parseNetstat(text: string, file = 'netstat', into: NetstatGroups = new Map()): NetstatGroups {
  const lines = text.split('\n');
  let i = 0;
  while (i < lines.length) {
    const names = lines[i];
    if (names.trim() === '') {
      i++;
      continue;
    }
    const values = lines[i + 1];
    const hc = names.indexOf(':');
    if (hc <= 0) throw new ProcParseError(file, i + 1, 'expected "<Group>: <names>"');
    const group = names.slice(0, hc);
    if (values === undefined || !values.startsWith(group + ':')) {
      throw new ProcParseError(file, i + 2, `expected the values line of "${group}"`);
    }
    const n = fields(names.slice(hc + 1).trim());
    const v = fields(values.slice(hc + 1).trim());
    if (n.length !== v.length) throw new ProcParseError(file, i + 2, `${group}: ${n.length} names but ${v.length} values`);
    let m = into.get(group);
    if (!m) into.set(group, (m = new Map()));
    for (let k = 0; k < n.length; k++) {
      const x = v[k];
      if (!/^-?\d+$/.test(x)) throw new ProcParseError(file, i + 2, `${group} ${n[k]}: value "${x}" is not an integer`);
      m.set(n[k], Number(x));
    }
    i += 2;
  }
  return into;
}

/** Read /proc/net/netstat and /proc/net/snmp into one group map. */
export function readNetstat(procfs: string): NetstatGroups {
  const groups: NetstatGroups = new Map();
  for (const f of ['net/netstat', 'net/snmp']) {
    const file = path.join(procfs, f);
    parseNetstat(readProcText(file), file, groups);
  }
  return groups;
}
