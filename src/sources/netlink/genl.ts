// Generic netlink family lookup (CTRL_CMD_GETFAMILY). docs/kernel-sources.md §1.2.
//
// Trap: asking the kernel for an unknown family name can make it request_module() the family (e.g.
// ovs_datapath loads openvswitch.ko). listFamilies() dumps the family table instead, which never loads
// anything; use it when a module load would be a side effect.

import { attrMap, attrString, attrStringOf, attrU16, genlBody } from './attrs';
import { NETLINK_GENERIC, NetlinkSocket } from './socket';

export const GENL_ID_CTRL = 0x10;
const CTRL_CMD_GETFAMILY = 3;
const CTRL_ATTR_FAMILY_ID = 1;
const CTRL_ATTR_FAMILY_NAME = 2;

export interface GenlFamily {
  id: number;
  name: string;
}

function decodeFamily(buf: Buffer, start: number, end: number): GenlFamily | undefined {
  const a = attrMap(buf, start + 4, end, 'genl ctrl family');
  const id = attrU16(buf, a.get(CTRL_ATTR_FAMILY_ID), 'CTRL_ATTR_FAMILY_ID');
  const name = attrString(buf, a.get(CTRL_ATTR_FAMILY_NAME));
  if (id === undefined || name === undefined) return undefined;
  return { id, name };
}

/** Resolve one family by name. Rejects with NetlinkError ENOENT when the family does not exist. */
export async function resolveFamily(sock: NetlinkSocket, name: string): Promise<GenlFamily> {
  let fam: GenlFamily | undefined;
  await sock.request(genlBody(CTRL_CMD_GETFAMILY, 1, attrStringOf(CTRL_ATTR_FAMILY_NAME, name)), GENL_ID_CTRL, 0, {
    context: `genl family lookup "${name}"`,
    onMessage: (m) => {
      fam = decodeFamily(m.buf, m.start, m.end);
    },
  });
  if (!fam) throw new Error(`genl family lookup "${name}": reply had no family id`);
  return fam;
}

/** Dump every registered family without triggering module autoloading. */
export async function listFamilies(sock: NetlinkSocket): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  await sock.request(genlBody(CTRL_CMD_GETFAMILY, 1), GENL_ID_CTRL, 0, {
    dump: true,
    context: 'genl family dump',
    onMessage: (m) => {
      const f = decodeFamily(m.buf, m.start, m.end);
      if (f) out.set(f.name, f.id);
    },
  });
  return out;
}

/** A generic-netlink socket bound to one family (resolved lazily, re-resolved after errors). */
export class GenlClient {
  private family: Promise<GenlFamily> | null = null;
  readonly sock: NetlinkSocket;

  constructor(
    readonly familyName: string,
    sock?: NetlinkSocket,
  ) {
    this.sock = sock ?? new NetlinkSocket(NETLINK_GENERIC);
  }

  familyId(): Promise<GenlFamily> {
    if (!this.family) {
      this.family = resolveFamily(this.sock, this.familyName);
      this.family.catch(() => {
        this.family = null;
      });
    }
    return this.family;
  }

  close(): void {
    this.sock.close();
  }
}
