// Parser for the unixctl `version` reply (ovs_print_version()): "ovs-vswitchd (Open vSwitch) 3.1.0\n",
// followed by "DPDK 22.11.1" on DPDK builds. Pure.

import { OvsParseError } from './parse-dpctl';

export interface OvsVersion {
  /** "3.1.0" */
  version: string;
  /** "22.11.1" on DPDK builds. */
  dpdk?: string;
}

export function parseVersion(text: string): OvsVersion {
  const m = /^\S+ \(Open vSwitch\) (\S+)/m.exec(text);
  if (!m) throw new OvsParseError('version', 1, 'unexpected reply', text);
  const d = /^DPDK (\S+)/m.exec(text);
  return d ? { version: m[1], dpdk: d[1] } : { version: m[1] };
}
