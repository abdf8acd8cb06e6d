// Netlink framing and attribute (TLV) helpers. Pure functions over Buffers; no I/O.
// Layouts: include/uapi/linux/netlink.h (struct nlmsghdr, struct nlattr), genetlink.h (genlmsghdr).
// See docs/kernel-sources.md §1.1.

export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;
export const GENL_HDRLEN = 4;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = 0x3fff;

export const align4 = (n: number) => (n + 3) & ~3;

/** A decode failure that says where: which message/attribute and at which byte offset. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  constructor(
    readonly where: string,
    readonly offset: number,
    detail: string,
  ) {
    super(`${where}: ${detail} at offset ${offset}`);
  }
}

/** Read a little-endian u64 as a JS number (exact below 2^53, which covers every real counter). */
export function u64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off + 4) * 4294967296 + buf.readUInt32LE(off);
}

/** True if the u64 at off is all ones (the kernel's "unset/unlimited", e.g. ~0ULL pacing rate). */
export function u64IsMax(buf: Buffer, off: number): boolean {
  return buf.readUInt32LE(off) === 0xffffffff && buf.readUInt32LE(off + 4) === 0xffffffff;
}

/**
 * Walk the attributes in buf[start, end). Calls fn(type, payloadOffset, payloadLength, nested) for each;
 * type has NLA_F_NESTED/NLA_F_NET_BYTEORDER masked off. Throws DecodeError on a malformed length.
 * Type 0 is passed through (some nests number children from 0: ethtool stats, OVS upcall stats).
 */
export function forEachAttr(
  buf: Buffer,
  start: number,
  end: number,
  where: string,
  fn: (type: number, off: number, len: number, nested: boolean) => void,
): void {
  if (end > buf.length) throw new DecodeError(where, start, `attribute area ends at ${end} beyond buffer length ${buf.length}`);
  let off = start;
  while (off + NLA_HDRLEN <= end) {
    const len = buf.readUInt16LE(off);
    const rawType = buf.readUInt16LE(off + 2);
    if (len < NLA_HDRLEN) throw new DecodeError(where, off, `attribute type ${rawType & NLA_TYPE_MASK} has length ${len} < 4`);
    if (off + len > end) {
      throw new DecodeError(where, off, `attribute type ${rawType & NLA_TYPE_MASK} length ${len} overruns the message (${end - off} bytes left)`);
    }
    fn(rawType & NLA_TYPE_MASK, off + NLA_HDRLEN, len - NLA_HDRLEN, (rawType & NLA_F_NESTED) !== 0);
    off += align4(len);
  }
  if (off < end) {
    // Trailing bytes shorter than an attribute header: tolerated only if they are padding.
    for (let i = off; i < end; i++) if (buf[i] !== 0) throw new DecodeError(where, off, `${end - off} trailing bytes`);
  }
}

export interface AttrSpan {
  off: number;
  len: number;
}

/** Index the attributes of an area by type (last one wins). */
export function attrMap(buf: Buffer, start: number, end: number, where: string): Map<number, AttrSpan> {
  const m = new Map<number, AttrSpan>();
  forEachAttr(buf, start, end, where, (type, off, len) => m.set(type, { off, len }));
  return m;
}

/** Payload of one attribute as a view (no copy). */
export const attrBuf = (buf: Buffer, a: AttrSpan) => buf.subarray(a.off, a.off + a.len);

export function attrU8(buf: Buffer, a: AttrSpan | undefined, where: string): number | undefined {
  if (!a) return undefined;
  if (a.len < 1) throw new DecodeError(where, a.off, `u8 attribute has length ${a.len}`);
  return buf[a.off];
}
export function attrU16(buf: Buffer, a: AttrSpan | undefined, where: string): number | undefined {
  if (!a) return undefined;
  if (a.len < 2) throw new DecodeError(where, a.off, `u16 attribute has length ${a.len}`);
  return buf.readUInt16LE(a.off);
}
export function attrU32(buf: Buffer, a: AttrSpan | undefined, where: string): number | undefined {
  if (!a) return undefined;
  if (a.len < 4) throw new DecodeError(where, a.off, `u32 attribute has length ${a.len}`);
  return buf.readUInt32LE(a.off);
}
export function attrS32(buf: Buffer, a: AttrSpan | undefined, where: string): number | undefined {
  if (!a) return undefined;
  if (a.len < 4) throw new DecodeError(where, a.off, `s32 attribute has length ${a.len}`);
  return buf.readInt32LE(a.off);
}
export function attrU64(buf: Buffer, a: AttrSpan | undefined, where: string): number | undefined {
  if (!a) return undefined;
  if (a.len < 8) throw new DecodeError(where, a.off, `u64 attribute has length ${a.len}`);
  return u64(buf, a.off);
}
/** YNL "uint": 4 or 8 bytes depending on the value (netdev qstats). */
export function attrUint(buf: Buffer, a: AttrSpan | undefined, where: string): number | undefined {
  if (!a) return undefined;
  if (a.len === 4) return buf.readUInt32LE(a.off);
  if (a.len === 8) return u64(buf, a.off);
  throw new DecodeError(where, a.off, `uint attribute has length ${a.len} (want 4 or 8)`);
}
/** NUL-terminated (or not) string attribute. */
export function attrString(buf: Buffer, a: AttrSpan | undefined): string | undefined {
  if (!a) return undefined;
  let end = a.off + a.len;
  const nul = buf.indexOf(0, a.off);
  if (nul >= 0 && nul < end) end = nul;
  return buf.toString('utf8', a.off, end);
}

// ---------------------------------------------------------------------------------------------------
// Building requests

/** One attribute with the given payload (padded to 4 bytes). */
export function attr(type: number, payload: Buffer, nested = false): Buffer {
  const len = NLA_HDRLEN + payload.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type | (nested ? NLA_F_NESTED : 0), 2);
  payload.copy(out, NLA_HDRLEN);
  return out;
}
export const nest = (type: number, ...children: Buffer[]) => attr(type, Buffer.concat(children), true);
export function attrU32Of(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return attr(type, b);
}
export function attrU16Of(type: number, v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v, 0);
  return attr(type, b);
}
export function attrU8Of(type: number, v: number): Buffer {
  return attr(type, Buffer.from([v & 0xff]));
}
export const attrStringOf = (type: number, s: string) => attr(type, Buffer.from(s + '\0', 'utf8'));
export const attrFlagOf = (type: number) => attr(type, Buffer.alloc(0));

/** A complete netlink message: header + body. seq and pid are filled in by the socket. */
export function nlmsg(type: number, flags: number, body: Buffer): Buffer {
  const msg = Buffer.alloc(NLMSG_HDRLEN + body.length);
  msg.writeUInt32LE(msg.length, 0);
  msg.writeUInt16LE(type, 4);
  msg.writeUInt16LE(flags, 6);
  body.copy(msg, NLMSG_HDRLEN);
  return msg;
}

/** genlmsghdr + body. */
export function genlBody(cmd: number, version: number, ...rest: Buffer[]): Buffer {
  const h = Buffer.alloc(GENL_HDRLEN);
  h[0] = cmd;
  h[1] = version;
  return Buffer.concat([h, ...rest]);
}

// ---------------------------------------------------------------------------------------------------
// Splitting a datagram into messages

export interface NlMsgView {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /**
   * The datagram buffer (shared; do not keep references across datagrams unless you copy). The view
   * object itself is reused for every message of a datagram: valid only during the callback.
   */
  buf: Buffer;
  /** Payload offset (after the 16-byte header) and end. */
  start: number;
  end: number;
}

/**
 * Iterate the messages in one received datagram. Throws DecodeError on a malformed length.
 * One view object is reused for every message of the datagram: it is valid only during the callback
 * (copy the fields you keep). This runs once per socket of a sock_diag dump (20k per scrape at 10k
 * connections), so it allocates nothing per message and reads the header bytes directly.
 */
export function forEachMessage(buf: Buffer, fn: (m: NlMsgView) => void): void {
  const m: NlMsgView = { type: 0, flags: 0, seq: 0, pid: 0, buf, start: 0, end: 0 };
  const n = buf.length;
  let off = 0;
  while (off + NLMSG_HDRLEN <= n) {
    const len = (buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16)) + buf[off + 3] * 16777216;
    if (len < NLMSG_HDRLEN || off + len > n) {
      throw new DecodeError('nlmsghdr', off, `message length ${len} does not fit the ${n - off} bytes left`);
    }
    m.type = buf[off + 4] | (buf[off + 5] << 8);
    m.flags = buf[off + 6] | (buf[off + 7] << 8);
    m.seq = (buf[off + 8] | (buf[off + 9] << 8) | (buf[off + 10] << 16)) + buf[off + 11] * 16777216;
    m.pid = (buf[off + 12] | (buf[off + 13] << 8) | (buf[off + 14] << 16)) + buf[off + 15] * 16777216;
    m.start = off + NLMSG_HDRLEN;
    m.end = off + len;
    fn(m);
    off += (len + 3) & ~3;
  }
}
