// Which network device holds a local IP address: rtnetlink address dump (RTM_GETADDR, struct ifaddrmsg
// in include/uapi/linux/if_addr.h) joined with the link names (RTM_GETLINK dump, ./rtnl-link.ts).
//
// A flow whose local IP sits on an OVS internal port reports local_device="br-int": the IP device is
// where the flow enters the node's stack, and the start of the path the diagnosis follows.
//
// The map is cached: refreshed when older than the TTL, and at most once per `minRefreshMs` when a
// caller asks for an address it does not know (a new address appeared). Both dumps together are a few
// kilobytes per device, and the link dump skips statistics (RTEXT_FILTER_SKIP_STATS).

import { DecodeError, NLA_TYPE_MASK, align4 } from './attrs';
import { LinkEntry, dumpLinks } from './rtnl-link';
import { NETLINK_ROUTE, NetlinkSocket } from './socket';
import { formatAddr } from './sockdiag';
import { parseIp } from '../flowselect';

export const RTM_NEWADDR = 20;
export const RTM_GETADDR = 22;

const IFA_ADDRESS = 1; // peer address on point-to-point links, else the local address
const IFA_LOCAL = 2; // the local address (IPv4)

const AF_INET = 2;
const AF_INET6 = 10;

export interface AddrEntry {
  family: number;
  /** Formatted like sockdiag.formatAddr (so flows and addresses compare as strings). */
  address: string;
  prefixLen: number;
  ifindex: number;
}

/** Decode one RTM_NEWADDR payload (struct ifaddrmsg, 8 bytes, + attributes). Pure. */
export function parseAddrMessage(buf: Buffer, start: number, end: number): AddrEntry | undefined {
  const where = 'rtnetlink RTM_NEWADDR';
  if (end - start < 8) throw new DecodeError(where, start, `message has ${end - start} bytes, struct ifaddrmsg needs 8`);
  const family = buf[start]; // ifa_family
  const prefixLen = buf[start + 1]; // ifa_prefixlen
  const ifindex = buf.readUInt32LE(start + 4); // ifa_index
  let local = -1;
  let address = -1;
  let off = start + 8;
  while (off + 4 <= end) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
    if (len < 4 || off + len > end) throw new DecodeError(where, off, `attribute type ${type} has bad length ${len} (${end - off} bytes left)`);
    if (type === IFA_LOCAL) local = off + 4;
    else if (type === IFA_ADDRESS) address = off + 4;
    const want = family === AF_INET ? 4 : 16;
    if ((type === IFA_LOCAL || type === IFA_ADDRESS) && len - 4 < want) {
      throw new DecodeError(where, off, `address attribute of ${len - 4} bytes for family ${family}`);
    }
    off += align4(len);
  }
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const at = local >= 0 ? local : address;
  if (at < 0) return undefined;
  return { family, address: formatAddr(buf, at, family), prefixLen, ifindex };
}

/** "::ffff:10.1.2.3" → "10.1.2.3" (a v4-mapped socket address lives on the device holding the IPv4). */
export function unmapV4(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

export interface AddressTable {
  links: LinkEntry[];
  addrs: AddrEntry[];
}

/** Dump links and addresses of the current network namespace. */
export async function fetchAddressTable(sock: NetlinkSocket): Promise<AddressTable> {
  const links = await dumpLinks(sock);
  // As for links: an address dump that raced with a change (NLM_F_DUMP_INTR) is taken again.
  for (let attempt = 1; ; attempt++) {
    const addrs: AddrEntry[] = [];
    const r = await sock.request(Buffer.alloc(8), RTM_GETADDR, 0, {
      dump: true,
      context: 'rtnetlink address dump',
      onMessage: (m) => {
        if (m.type !== RTM_NEWADDR) return;
        const a = parseAddrMessage(m.buf, m.start, m.end);
        if (a) addrs.push(a);
      },
    });
    if (!r.interrupted) return { links, addrs };
    if (attempt === 2) throw new Error('rtnetlink address dump interrupted twice by concurrent address changes (NLM_F_DUMP_INTR)');
  }
}

export interface AddressDevicesOptions {
  /** Refresh when the cached table is older than this (default 30 s). */
  ttlMs?: number;
  /** At most one refresh per this interval triggered by unknown addresses (default 2 s). */
  minRefreshMs?: number;
  /** Where the table comes from (default: rtnetlink in this netns). Tests inject a fake. */
  fetch?: () => Promise<AddressTable>;
  clock?: () => number;
}

/** Local address → device name, cached. */
export class AddressDevices {
  private byAddr = new Map<string, number[]>();
  private names = new Map<number, string>();
  private loadedAt = -Infinity;
  private sock: NetlinkSocket | null = null;
  private readonly ttlMs: number;
  private readonly minRefreshMs: number;
  private readonly fetch: () => Promise<AddressTable>;
  private readonly clock: () => number;
  /** Number of table loads so far (for tests and the collector's debug log). */
  loads = 0;

  constructor(opts: AddressDevicesOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 30_000;
    this.minRefreshMs = opts.minRefreshMs ?? 2_000;
    this.clock = opts.clock ?? (() => performance.now());
    this.fetch =
      opts.fetch ??
      (() => {
        this.sock ??= new NetlinkSocket(NETLINK_ROUTE);
        return fetchAddressTable(this.sock);
      });
  }

  async refresh(): Promise<void> {
    const t = await this.fetch();
    const byAddr = new Map<string, number[]>();
    for (const a of t.addrs) {
      const list = byAddr.get(a.address);
      if (list) {
        if (!list.includes(a.ifindex)) list.push(a.ifindex);
      } else byAddr.set(a.address, [a.ifindex]);
    }
    this.byAddr = byAddr;
    this.names = new Map(t.links.map((l) => [l.ifindex, l.name]));
    this.loadedAt = this.clock();
    this.loads++;
  }

  /** Refresh if the table is older than the TTL. */
  async ensureFresh(): Promise<void> {
    if (this.clock() - this.loadedAt >= this.ttlMs) await this.refresh();
  }

  /**
   * Make sure every address in `ips` can be resolved if it exists: refresh on the TTL, and once more
   * (rate-limited) when some address is unknown.
   */
  async prepare(ips: Iterable<string>): Promise<void> {
    await this.ensureFresh();
    for (const ip of ips) {
      if (!this.byAddr.has(unmapV4(ip))) {
        if (this.clock() - this.loadedAt >= this.minRefreshMs) await this.refresh();
        return;
      }
    }
  }

  /**
   * The device holding `ip`, or undefined. For an address held by several devices (IPv6 link-local),
   * the socket's bound device (idiag_if) decides when it is one of them.
   */
  deviceOf(ip: string, boundIfindex = 0): string | undefined {
    const list = this.byAddr.get(unmapV4(ip));
    if (!list) return boundIfindex ? this.names.get(boundIfindex) : undefined;
    const idx = boundIfindex && list.includes(boundIfindex) ? boundIfindex : list[0];
    return this.names.get(idx);
  }

  /** The device name of an ifindex (from the last link dump). */
  nameOf(ifindex: number): string | undefined {
    return this.names.get(ifindex);
  }

  close(): void {
    this.sock?.close();
    this.sock = null;
  }
}

/** Normalise an address text the way the table stores it (for callers holding user input). */
export function canonicalAddr(ip: string): string | undefined {
  const b = parseIp(ip);
  if (!b) return undefined;
  return unmapV4(formatAddr(b.length === 4 ? Buffer.concat([b, Buffer.alloc(12)]) : b, 0, b.length === 4 ? AF_INET : AF_INET6));
}
