// Test support for the OVS kernel datapath over genetlink: a builder of reply messages (from the header
// layout, include/uapi/linux/openvswitch.h), a loader for the annotated .hex fixtures, and a fake
// genetlink socket that replays datagrams like NetlinkSocket delivers them.
import * as fs from 'fs';
import * as path from 'path';
import { NLMSG_DONE, NLMSG_ERROR, NLM_F_MULTI, attr, forEachMessage, nest, type NlMsgView } from '../../src/sources/netlink/attrs';
import { NetlinkError, type RequestOptions, type RequestResult } from '../../src/sources/netlink/socket';

export function loadHex(name: string): Buffer {
  const text = fs.readFileSync(path.join(__dirname, '../fixtures/ovs-genl', name), 'utf8');
  const hex = text
    .split('\n')
    .map((l) => l.replace(/#.*$/, ''))
    .join('')
    .replace(/\s+/g, '');
  return Buffer.from(hex, 'hex');
}

const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};
const s32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
};
const u64s = (...vs: Array<number | bigint>) => {
  const b = Buffer.alloc(8 * vs.length);
  vs.forEach((v, i) => b.writeBigUInt64LE(BigInt(v), i * 8));
  return b;
};
const str = (s: string) => Buffer.from(s + '\0');

/** One netlink message (header + genl header + ovs_header + attributes). */
export function ovsMessage(familyId: number, cmd: number, version: number, dpIfindex: number, attrs: Buffer[], flags = NLM_F_MULTI, seq = 1): Buffer {
  const body = Buffer.concat([Buffer.from([cmd, version, 0, 0]), s32(dpIfindex), ...attrs]);
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + body.length, 0);
  h.writeUInt16LE(familyId, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt32LE(seq, 8);
  return Buffer.concat([h, body]);
}

export function doneMessage(error = 0, seq = 1): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32LE(20, 0);
  b.writeUInt16LE(NLMSG_DONE, 4);
  b.writeUInt16LE(NLM_F_MULTI, 6);
  b.writeUInt32LE(seq, 8);
  b.writeInt32LE(error, 16);
  return b;
}

export interface DpSpec {
  ifindex: number;
  name: string;
  stats?: [number, number, number, number];
  megaflow?: { maskHit: number; masks: number; cacheHit: number };
  masksCacheSize?: number;
  userFeatures?: number;
  /** Insert an OVS_DP_ATTR_PAD before each 64-bit struct, as nla_put_64bit() does on some arches. */
  pad?: boolean;
}

export function dpAttrs(d: DpSpec): Buffer[] {
  const out: Buffer[] = [attr(1, str(d.name))];
  if (d.stats) {
    if (d.pad) out.push(attr(6, Buffer.alloc(0)));
    out.push(attr(3, u64s(...d.stats)));
  }
  if (d.megaflow) {
    if (d.pad) out.push(attr(6, Buffer.alloc(0)));
    const m = Buffer.alloc(32);
    m.writeBigUInt64LE(BigInt(d.megaflow.maskHit), 0);
    m.writeUInt32LE(d.megaflow.masks, 8);
    m.writeBigUInt64LE(BigInt(d.megaflow.cacheHit), 16);
    out.push(attr(4, m));
  }
  if (d.userFeatures !== undefined) out.push(attr(5, u32(d.userFeatures)));
  if (d.masksCacheSize !== undefined) out.push(attr(7, u32(d.masksCacheSize)));
  return out;
}

export interface VportSpec {
  portNo?: number;
  type?: number;
  name?: string;
  ifindex?: number;
  netnsid?: number;
  /** rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors, tx_errors, rx_dropped, tx_dropped */
  stats?: number[];
  upcall?: { success?: number; fail?: number; reversed?: boolean };
  pad?: boolean;
}

export function vportAttrs(v: VportSpec): Buffer[] {
  const out: Buffer[] = [];
  if (v.portNo !== undefined) out.push(attr(1, u32(v.portNo)));
  if (v.type !== undefined) out.push(attr(2, u32(v.type)));
  if (v.name !== undefined) out.push(attr(3, str(v.name)));
  if (v.ifindex !== undefined) out.push(attr(8, s32(v.ifindex)));
  if (v.netnsid !== undefined) out.push(attr(9, s32(v.netnsid)));
  if (v.stats) {
    if (v.pad) out.push(attr(7, Buffer.alloc(0)));
    out.push(attr(6, u64s(...v.stats)));
  }
  if (v.upcall) {
    const kids: Buffer[] = [];
    if (v.upcall.success !== undefined) kids.push(attr(0, u64s(v.upcall.success)));
    if (v.upcall.fail !== undefined) kids.push(attr(1, u64s(v.upcall.fail)));
    if (v.upcall.reversed) kids.reverse();
    out.push(nest(10, ...kids));
  }
  return out;
}

export const DP_FAMILY = 0x1c;
export const VPORT_FAMILY = 0x1d;

/**
 * A fake genetlink socket: answers the ctrl family dump, the datapath dump and per-datapath vport dumps
 * from datagrams, delivering message views exactly like NetlinkSocket (errors in NLMSG_DONE/ERROR reject).
 */
export class FakeGenl {
  readonly requests: Array<{ type: number; flags: number; dump: boolean; body: Buffer; context: string }> = [];
  closed = false;

  constructor(
    private readonly answers: {
      ctrl: Buffer;
      dp: Buffer;
      /** dp_ifindex -> datagram; a missing ifindex answers ENODEV like the kernel. */
      vports: Record<number, Buffer>;
    },
  ) {}

  async request(body: Buffer, type: number, flags: number, opts: RequestOptions): Promise<RequestResult> {
    this.requests.push({ type, flags, dump: opts.dump === true, body: Buffer.from(body), context: opts.context });
    let dgram: Buffer;
    if (type === 0x10) dgram = this.answers.ctrl;
    else if (type === DP_FAMILY) dgram = this.answers.dp;
    else if (type === VPORT_FAMILY) {
      const ifindex = body.readInt32LE(4);
      dgram = this.answers.vports[ifindex] ?? doneMessage(-19);
    } else {
      dgram = doneMessage(-2);
    }
    const result: RequestResult = { interrupted: false, messages: 0, datagrams: 1 };
    let error: NetlinkError | null = null;
    forEachMessage(dgram, (m: NlMsgView) => {
      if (error) return;
      if (m.flags & 0x10) result.interrupted = true;
      if (m.type === NLMSG_DONE || m.type === NLMSG_ERROR) {
        const e = m.buf.readInt32LE(m.start);
        if (e < 0) error = new NetlinkError(e, opts.context);
        return;
      }
      result.messages++;
      opts.onMessage(m);
    });
    if (error) throw error;
    return result;
  }

  close(): void {
    this.closed = true;
  }
}
