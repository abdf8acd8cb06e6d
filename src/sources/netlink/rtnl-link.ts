// Network links over rtnetlink: one RTM_GETLINK dump (struct ifinfomsg + IFLA_* attributes,
// include/uapi/linux/if_link.h and rtnetlink.h) gives every device's index, name, link kind, flags,
// MTU, queue length, operstate, carrier and carrier transition counts, the GSO/TSO/GRO size caps and
// IFLA_STATS64 (struct rtnl_link_stats64, the same dev_get_stats() the sysfs statistics/* files print).
// One dump replaces ~30 sysfs reads per device, and is what `ip -s -d link` asks.
//
// Pure decoder first; then the dump, and `LiveLinks`, which lets every per-device collector of a scrape
// share one dump (callers that arrive while a dump is in flight get its answer).

import { DecodeError, attrString, attrU32Of, forEachAttr, u64 } from './attrs';
import { NETLINK_ROUTE, NetlinkSocket } from './socket';

export const RTM_NEWLINK = 16;
export const RTM_GETLINK = 18;

const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_TXQLEN = 13;
const IFLA_OPERSTATE = 16;
const IFLA_LINKINFO = 18;
const IFLA_STATS64 = 23;
const IFLA_EXT_MASK = 29;
const IFLA_CARRIER = 33;
const IFLA_CARRIER_CHANGES = 35;
const IFLA_GSO_MAX_SEGS = 40;
const IFLA_GSO_MAX_SIZE = 41;
const IFLA_CARRIER_UP_COUNT = 47;
const IFLA_CARRIER_DOWN_COUNT = 48;
const IFLA_GRO_MAX_SIZE = 58;
const IFLA_TSO_MAX_SIZE = 59;
const IFLA_TSO_MAX_SEGS = 60;
const IFLA_INFO_KIND = 1;
const RTEXT_FILTER_SKIP_STATS = 1 << 3;

export const IFF_UP = 0x1;

/** struct rtnl_link_stats64 field order (and the sysfs statistics/ file names); 8 bytes each. */
export const LINK_STATS64_FIELDS = [
  'rx_packets',
  'tx_packets',
  'rx_bytes',
  'tx_bytes',
  'rx_errors',
  'tx_errors',
  'rx_dropped',
  'tx_dropped',
  'multicast',
  'collisions',
  'rx_length_errors',
  'rx_over_errors',
  'rx_crc_errors',
  'rx_frame_errors',
  'rx_fifo_errors',
  'rx_missed_errors',
  'tx_aborted_errors',
  'tx_carrier_errors',
  'tx_fifo_errors',
  'tx_heartbeat_errors',
  'tx_window_errors',
  'rx_compressed',
  'tx_compressed',
  'rx_nohandler',
  'rx_otherhost_dropped', // 5.19+; not in sysfs
] as const;
export type LinkStatName = (typeof LINK_STATS64_FIELDS)[number];

/** Identity of a link: what the address map and device classification need. */
export interface LinkEntry {
  ifindex: number;
  name: string;
  /** IFLA_LINKINFO/IFLA_INFO_KIND ("veth", "vlan", "openvswitch", ...); absent for a plain device. */
  kind?: string;
}

/** Everything one RTM_NEWLINK carries that flowpath uses. Absent attribute = undefined, never 0. */
export interface LinkRecord extends LinkEntry {
  /** ifi_type: ARPHRD_* (772 = loopback). */
  type: number;
  /** ifi_flags: IFF_* (IFF_UP = 1, IFF_LOOPBACK = 8, IFF_LOWER_UP = 1 << 16). */
  flags: number;
  mtu?: number;
  txQueueLen?: number;
  /** IF_OPER_* (RFC 2863: 0 unknown, 1 notpresent, 2 down, 3 lowerlayerdown, 4 testing, 5 dormant, 6 up). */
  operstate?: number;
  /** netif_carrier_ok(): 1 or 0. */
  carrier?: number;
  carrierChanges?: number;
  carrierUpCount?: number;
  carrierDownCount?: number;
  gsoMaxSize?: number;
  gsoMaxSegs?: number;
  tsoMaxSize?: number;
  tsoMaxSegs?: number;
  groMaxSize?: number;
  /** IFLA_STATS64 by field name; only the fields the kernel sent (older kernels send fewer). */
  stats?: Partial<Record<LinkStatName, number>>;
}

const WHERE = 'rtnetlink RTM_NEWLINK';

type ScalarField = 'mtu' | 'txQueueLen' | 'operstate' | 'carrier' | 'carrierChanges' | 'carrierUpCount' | 'carrierDownCount' | 'gsoMaxSize' | 'gsoMaxSegs' | 'tsoMaxSize' | 'tsoMaxSegs' | 'groMaxSize';
/** The scalar attributes: type → [record field, attribute name for errors, size in bytes (u8 or u32)]. */
const SCALARS = new Map<number, [ScalarField, string, 1 | 4]>([
  [IFLA_MTU, ['mtu', 'IFLA_MTU', 4]],
  [IFLA_TXQLEN, ['txQueueLen', 'IFLA_TXQLEN', 4]],
  [IFLA_OPERSTATE, ['operstate', 'IFLA_OPERSTATE', 1]],
  [IFLA_CARRIER, ['carrier', 'IFLA_CARRIER', 1]],
  [IFLA_CARRIER_CHANGES, ['carrierChanges', 'IFLA_CARRIER_CHANGES', 4]],
  [IFLA_CARRIER_UP_COUNT, ['carrierUpCount', 'IFLA_CARRIER_UP_COUNT', 4]],
  [IFLA_CARRIER_DOWN_COUNT, ['carrierDownCount', 'IFLA_CARRIER_DOWN_COUNT', 4]],
  [IFLA_GSO_MAX_SIZE, ['gsoMaxSize', 'IFLA_GSO_MAX_SIZE', 4]],
  [IFLA_GSO_MAX_SEGS, ['gsoMaxSegs', 'IFLA_GSO_MAX_SEGS', 4]],
  [IFLA_TSO_MAX_SIZE, ['tsoMaxSize', 'IFLA_TSO_MAX_SIZE', 4]],
  [IFLA_TSO_MAX_SEGS, ['tsoMaxSegs', 'IFLA_TSO_MAX_SEGS', 4]],
  [IFLA_GRO_MAX_SIZE, ['groMaxSize', 'IFLA_GRO_MAX_SIZE', 4]],
]);

/** Decode one RTM_NEWLINK payload (struct ifinfomsg, 16 bytes, + attributes). undefined without a name. */
export function parseLinkMessage(buf: Buffer, start: number, end: number): LinkRecord | undefined {
  if (end - start < 16) throw new DecodeError(WHERE, start, `message has ${end - start} bytes, struct ifinfomsg needs 16`);
  // struct ifinfomsg: u8 family, u8 pad, u16 type, s32 index, u32 flags, u32 change
  const rec: LinkRecord = { ifindex: buf.readInt32LE(start + 4), name: '', type: buf.readUInt16LE(start + 2), flags: buf.readUInt32LE(start + 8) };
  let named = false;
  forEachAttr(buf, start + 16, end, WHERE, (t, off, len) => {
    const scalar = SCALARS.get(t);
    if (scalar) {
      const [field, name, size] = scalar;
      if (len < size) throw new DecodeError(WHERE, off, `${name} has length ${len}, want ${size}`);
      rec[field] = size === 1 ? buf[off] : buf.readUInt32LE(off);
      return;
    }
    switch (t) {
      case IFLA_IFNAME:
        rec.name = attrString(buf, { off, len }) ?? '';
        named = true;
        break;
      case IFLA_STATS64: {
        if (len % 8 !== 0 || len < 8 * 23) throw new DecodeError(WHERE, off, `IFLA_STATS64 has length ${len}, want a multiple of 8 of at least 184`);
        const stats: Partial<Record<LinkStatName, number>> = {};
        const n = Math.min(len / 8, LINK_STATS64_FIELDS.length);
        for (let i = 0; i < n; i++) stats[LINK_STATS64_FIELDS[i]] = u64(buf, off + 8 * i);
        rec.stats = stats;
        break;
      }
      case IFLA_LINKINFO:
        forEachAttr(buf, off, off + len, `${WHERE} IFLA_LINKINFO`, (ct, coff, clen) => {
          if (ct === IFLA_INFO_KIND) rec.kind = attrString(buf, { off: coff, len: clen });
        });
        break;
    }
  });
  return named ? rec : undefined;
}

/** Dump every link of this network namespace; `stats: false` asks the kernel to leave statistics out. */
export async function dumpLinks(sock: NetlinkSocket, opts: { stats?: boolean } = {}): Promise<LinkRecord[]> {
  const ifi = Buffer.alloc(16); // struct ifinfomsg, AF_UNSPEC
  const req = opts.stats ? ifi : Buffer.concat([ifi, attrU32Of(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)]);
  // A dump that raced with a device change (NLM_F_DUMP_INTR) may miss or repeat a device: dump again,
  // and fail rather than hand out a device list that may be wrong if that races too.
  for (let attempt = 1; ; attempt++) {
    const links: LinkRecord[] = [];
    const r = await sock.request(req, RTM_GETLINK, 0, {
      dump: true,
      context: 'rtnetlink link dump',
      onMessage: (m) => {
        if (m.type !== RTM_NEWLINK) return;
        const l = parseLinkMessage(m.buf, m.start, m.end);
        if (l) links.push(l);
      },
    });
    if (!r.interrupted) return links;
    if (attempt === 2) throw new Error('rtnetlink link dump interrupted twice by concurrent device changes (NLM_F_DUMP_INTR)');
  }
}

/** Where link records come from; tests inject a fake built from a fixture tree. */
export interface LinkLookup {
  /** Every link of the namespace, with statistics, as of a dump that started no earlier than this call. */
  links(): Promise<readonly LinkRecord[]>;
}

/**
 * The live lookup: one rtnetlink socket; concurrent callers share the dump in flight, so the nic, qdisc
 * and irq collectors of one scrape cost one dump between them.
 */
export class LiveLinks implements LinkLookup {
  private sock: NetlinkSocket | null = null;
  private inFlight: Promise<LinkRecord[]> | null = null;
  /** Dumps done (for tests). */
  dumps = 0;

  links(): Promise<LinkRecord[]> {
    if (this.inFlight) return this.inFlight;
    this.sock ??= new NetlinkSocket(NETLINK_ROUTE, { timeoutMs: 2000 });
    const p = dumpLinks(this.sock, { stats: true }).finally(() => {
      this.inFlight = null;
    });
    this.dumps++;
    this.inFlight = p;
    return p;
  }

  close(): void {
    this.sock?.close();
    this.sock = null;
  }
}

let shared: LiveLinks | null = null;
/** The process-wide live lookup (its socket is unref'd while idle). */
export function liveLinks(): LiveLinks {
  shared ??= new LiveLinks();
  return shared;
}
