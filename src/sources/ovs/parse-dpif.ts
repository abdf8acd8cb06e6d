// Parser for `dpif/show` (ofproto-dpif's backer listing): which bridge each datapath port belongs to. Pure.
//
//   netdev@ovs-netdev: hit:12 missed:18
//     br0:
//       br0 65534/1: (tap)
//       i0 2/3: (tap)
//       p01 4/none: (patch: peer=p10)
//       vx0 3/7: (vxlan: key=5, remote_ip=10.9.9.9)
//       w0 1/2: (system)
//
// Columns: <port name> <OpenFlow port>/<datapath port or "none">: (<netdev type>[: k=v, ...]).
// OpenFlow port 65534 (OFPP_LOCAL) is the bridge's own internal port. With the userspace (netdev)
// datapath an internal interface is opened as a tap device, so its type prints as "tap"; with the kernel
// datapath it prints as "internal".

import { OvsParseError } from './parse-dpctl';

export const OFPP_LOCAL = 65534;

export interface DpifPort {
  name: string;
  ofPort: number;
  /** Datapath port number; undefined for ports that have none (patch ports). */
  dpPort?: number;
  type: string;
  options: Record<string, string>;
}

export interface DpifBridge {
  name: string;
  ports: DpifPort[];
}

export interface DpifBacker {
  /** "netdev@ovs-netdev", "system@ovs-system". */
  datapath: string;
  hit?: number;
  missed?: number;
  bridges: DpifBridge[];
}

export function parseDpifShow(text: string): DpifBacker[] {
  const out: DpifBacker[] = [];
  let backer: DpifBacker | null = null;
  let bridge: DpifBridge | null = null;
  text.split('\n').forEach((raw, i) => {
    const ln = i + 1;
    if (raw.trim() === '') return;
    let m: RegExpExecArray | null;
    if ((m = /^(\S+@\S+):(?: hit:(\d+) missed:(\d+))?$/.exec(raw))) {
      backer = { datapath: m[1], bridges: [] };
      if (m[2] !== undefined) {
        backer.hit = Number(m[2]);
        backer.missed = Number(m[3]);
      }
      out.push(backer);
      bridge = null;
    } else if ((m = /^ {2}(\S+):$/.exec(raw))) {
      if (!backer) throw new OvsParseError('dpif/show', ln, 'bridge before any datapath', raw);
      bridge = { name: m[1], ports: [] };
      (backer as DpifBacker).bridges.push(bridge);
    } else if ((m = /^ {4}(\S+) (\d+)\/(\d+|none):(?: \((.*)\))?$/.exec(raw))) {
      if (!bridge) throw new OvsParseError('dpif/show', ln, 'port before any bridge', raw);
      const port: DpifPort = { name: m[1], ofPort: Number(m[2]), type: '', options: {} };
      if (m[3] !== 'none') port.dpPort = Number(m[3]);
      const t = m[4] ?? '';
      const colon = t.indexOf(': ');
      port.type = colon < 0 ? t : t.slice(0, colon);
      if (colon >= 0) {
        for (const kv of t.slice(colon + 2).split(', ')) {
          const eq = kv.indexOf('=');
          if (eq > 0) port.options[kv.slice(0, eq)] = kv.slice(eq + 1);
        }
      }
      (bridge as DpifBridge).ports.push(port);
    }
    // Other lines (a newer OVS's extra detail) carry nothing this parser exports.
  });
  return out;
}

/** Types under which an OVS internal interface appears: kernel dp "internal", userspace dp "tap". */
export function isInternalType(type: string): boolean {
  return type === 'internal' || type === 'tap' || type === 'dummy-internal';
}
