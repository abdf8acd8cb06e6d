// Parser for the unixctl `version` reply (ovs_print_version()): "ovs-vswitchd (Open vSwitch) 3.1.0\n",
// followed by "DPDK 22.11.1" on DPDK builds. Pure.

export interface OvsVersion {
  /** "3.1.0" */
  version: string;
  /** "22.11.1" on DPDK builds. */
  dpdk?: string;
}

export function parseVersion(text: string): OvsVersion {
  const m = /^\S+ \(Open vSwitch\) (\S+)/m.exec(text);
  if (!m) throw new Error(`version: unexpected reply ${JSON.stringify(text.slice(0, 80))}`);
  const d = /^DPDK (\S+)/m.exec(text);
  return d ? { version: m[1], dpdk: d[1] } : { version: m[1] };
}
