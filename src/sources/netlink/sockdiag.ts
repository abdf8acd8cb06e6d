// sock_diag / inet_diag for TCP (include/uapi/linux/inet_diag.h, net/ipv4/inet_diag.c;
// docs/kernel-sources.md §2): request building, dumps, exact lookups by 4-tuple + cookie, and a lazy
// per-socket view.
//
// Performance design (10k connections = 20k sockets, ~10 MB of replies per dump):
// - the kernel filters (INET_DIAG_REQ_BYTECODE + idiag_states, see flowselect.ts);
// - SockView is a flyweight: attach() walks the ~10 attributes of one message and records offsets;
//   every field is read at a fixed offset only when asked for, so a dump allocates nothing per socket;
// - callers copy() the few sockets they keep (the exported flows).
// Decode errors name the message and attribute offset (DecodeError) and fail the dump: never a guess.

import * as os from 'os';
import { DecodeError, NLA_TYPE_MASK, attr } from './attrs';
import { AF_INET, AF_INET6 } from './bytecode';
import { parseIp } from '../flowselect';
import { NetlinkBatchSocket } from './batch';
import { NETLINK_SOCK_DIAG, NetlinkSocket, RequestResult } from './socket';
import {
  BBR_INFO_LEN,
  BBR_UNIT,
  BbrInfo,
  DctcpInfo,
  LAYOUT_6_18,
  SKMEM_NAMES,
  SkmemName,
  TcpInfoField,
  TcpInfoLayout,
  TcpInfoRecord,
  VegasInfo,
  bbrBw,
  bbrCwndGain,
  bbrMinRtt,
  bbrPacingGain,
  checkBbrLength,
  checkSkmemLength,
  checkTcpInfoLength,
  decodeDctcp,
  decodeTcpInfo,
  decodeTcpInfoInto,
  decodeVegas,
  readSkmem,
  readTcpInfoDv,
  SKMEM,
  tcpInfoLayout,
} from './tcpinfo';

export { AF_INET, AF_INET6 };

/** nlmsg type of requests and replies (include/uapi/linux/sock_diag.h). */
export const SOCK_DIAG_BY_FAMILY = 20;
export const IPPROTO_TCP = 6;

/** sizeof(struct inet_diag_req_v2) and sizeof(struct inet_diag_msg). */
export const INET_DIAG_REQ_V2_LEN = 56;
export const INET_DIAG_MSG_LEN = 72;

// Reply attributes (enum in include/uapi/linux/inet_diag.h).
export const INET_DIAG_MEMINFO = 1;
export const INET_DIAG_INFO = 2;
export const INET_DIAG_VEGASINFO = 3;
export const INET_DIAG_CONG = 4;
export const INET_DIAG_TOS = 5;
export const INET_DIAG_TCLASS = 6;
export const INET_DIAG_SKMEMINFO = 7;
export const INET_DIAG_SHUTDOWN = 8;
export const INET_DIAG_DCTCPINFO = 9;
export const INET_DIAG_MARK = 15;
export const INET_DIAG_BBRINFO = 16;
export const INET_DIAG_CGROUP_ID = 21;
export const INET_DIAG_SOCKOPT = 22;

// Request attribute.
export const INET_DIAG_REQ_BYTECODE = 1;

/** idiag_ext bits: bit (attr - 1) asks for attr. VEGASINFO's bit also triggers DCTCPINFO and BBRINFO. */
export const EXT_MEMINFO = 1 << (INET_DIAG_MEMINFO - 1);
export const EXT_INFO = 1 << (INET_DIAG_INFO - 1);
export const EXT_VEGASINFO = 1 << (INET_DIAG_VEGASINFO - 1);
export const EXT_CONG = 1 << (INET_DIAG_CONG - 1);
export const EXT_SKMEMINFO = 1 << (INET_DIAG_SKMEMINFO - 1);
export const EXT_SHUTDOWN = 1 << (INET_DIAG_SHUTDOWN - 1);
/** What flows need: tcp_info, CC name, CC info (BBR/DCTCP via the Vegas bit), skmeminfo, shutdown. */
export const EXT_FLOWS = EXT_INFO | EXT_VEGASINFO | EXT_CONG | EXT_SKMEMINFO | EXT_SHUTDOWN;

/** INET_DIAG_NOCOOKIE: the wildcard cookie (both u32 words all ones). */
export const NOCOOKIE = 0xffffffff;

export const TCP_LISTEN = 10;
/** Every TCP state 1..12 (bit 1 << state). */
export const ALL_STATES_MASK = 0x1ffe;

// ---------------------------------------------------------------------------------------------------
// Requests

/** struct inet_diag_req_v2 + optional bytecode attribute, for a dump of one family. */
export function buildDumpRequest(family: number, states: number, ext: number, bytecode: Buffer | null = null): Buffer {
  const req = Buffer.alloc(INET_DIAG_REQ_V2_LEN);
  req[0] = family; // sdiag_family
  req[1] = IPPROTO_TCP; // sdiag_protocol
  req[2] = ext & 0xff; // idiag_ext
  req.writeUInt32LE(states >>> 0, 4); // idiag_states
  // id: all zero = wildcard, except the cookie, which must be INET_DIAG_NOCOOKIE to mean "any".
  req.writeUInt32LE(NOCOOKIE, 8 + 40);
  req.writeUInt32LE(NOCOOKIE, 8 + 44);
  return bytecode && bytecode.length > 0 ? Buffer.concat([req, attr(INET_DIAG_REQ_BYTECODE, bytecode)]) : req;
}

/** What identifies one socket for an exact lookup (inet_diag_sockid). */
export interface SockKey {
  family: number;
  /** 16 bytes each, network order (IPv4 in the first 4). */
  src: Buffer;
  dst: Buffer;
  sport: number;
  dport: number;
  /** idiag_if: the bound device index (0 = none). */
  ifindex: number;
  /** Socket cookie as [low u32, high u32]; undefined = INET_DIAG_NOCOOKIE. */
  cookie?: [number, number];
}

/** struct inet_diag_req_v2 for an exact lookup (no NLM_F_DUMP). */
export function buildExactRequest(k: SockKey, ext: number): Buffer {
  const req = Buffer.alloc(INET_DIAG_REQ_V2_LEN);
  req[0] = k.family;
  req[1] = IPPROTO_TCP;
  req[2] = ext & 0xff;
  req.writeUInt32LE(ALL_STATES_MASK, 4);
  req.writeUInt16BE(k.sport, 8); // idiag_sport, network order
  req.writeUInt16BE(k.dport, 10); // idiag_dport
  k.src.copy(req, 12, 0, 16); // idiag_src
  k.dst.copy(req, 28, 0, 16); // idiag_dst
  req.writeUInt32LE(k.ifindex >>> 0, 44); // idiag_if
  req.writeUInt32LE(k.cookie ? k.cookie[0] : NOCOOKIE, 48); // idiag_cookie[0]
  req.writeUInt32LE(k.cookie ? k.cookie[1] : NOCOOKIE, 52); // idiag_cookie[1]
  return req;
}

// ---------------------------------------------------------------------------------------------------
// Addresses

/** Format 4 (AF_INET) or 16 (AF_INET6) address bytes; v4-mapped IPv6 as "::ffff:a.b.c.d" (as ss). */
export function formatAddr(buf: Buffer, off: number, family: number): string {
  if (family === AF_INET) return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
  let mapped = buf.readUInt16BE(off + 10) === 0xffff;
  for (let i = 0; mapped && i < 10; i++) if (buf[off + i] !== 0) mapped = false;
  if (mapped) return `::ffff:${buf[off + 12]}.${buf[off + 13]}.${buf[off + 14]}.${buf[off + 15]}`;
  // RFC 5952: lowercase, no leading zeros, the longest run (>= 2) of zero groups becomes "::".
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(buf.readUInt16BE(off + i * 2));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number, b: number) => g.slice(a, b).map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

/** Address text to the 16-byte inet_diag form (IPv4 in the first 4 bytes) and its family. */
export function addrToSockid(ip: string): { family: number; bytes: Buffer } {
  const s = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const b = parseIp(s);
  if (!b) throw new Error(`bad IP address "${ip}"`);
  const out = Buffer.alloc(16);
  b.copy(out);
  return { family: b.length === 4 ? AF_INET : AF_INET6, bytes: out };
}

// ---------------------------------------------------------------------------------------------------
// The lazy per-socket view

const WHERE = 'sock_diag SOCK_DIAG_BY_FAMILY';
/** Network-order u16 from bytes (plain Uint8Array reads). Host-order u32 are read through the view's DataView. */
const rd16be = (b: Buffer, o: number) => (b[o] << 8) | b[o + 1];
const EMPTY = Buffer.alloc(0);
const EMPTY_DV = new DataView(EMPTY.buffer, EMPTY.byteOffset, 0);

/** A socket's complete record (everything decoded), for the JSON API, single-flow polling and tests. */
export interface SockRecord {
  family: number;
  state: number;
  timer: number;
  retrans: number;
  localIp: string;
  localPort: number;
  peerIp: string;
  peerPort: number;
  ifindex: number;
  cookie: string;
  expires: number;
  rqueue: number;
  wqueue: number;
  uid: number;
  inode: number;
  cc?: string;
  shutdown?: number;
  tcpInfo?: TcpInfoRecord;
  tcpInfoLength?: number;
  skmem?: Partial<Record<SkmemName, number>>;
  bbr?: BbrInfo;
  dctcp?: DctcpInfo;
  vegas?: VegasInfo;
  mark?: number;
}

/**
 * A view over one SOCK_DIAG_BY_FAMILY reply message (struct inet_diag_msg + attributes). attach() checks
 * the framing and records attribute offsets; accessors read at fixed offsets. One instance is reused for
 * every message of a dump; copy() detaches a socket you want to keep.
 */
export class SockView {
  buf: Buffer = EMPTY;
  /** DataView over buf (V8 inlines its reads; Buffer.readUInt32LE is several times slower). */
  dv: DataView = EMPTY_DV;
  /** Start of struct inet_diag_msg and end of the message. */
  start = 0;
  end = 0;
  /** Payload offset and length of each attribute type below 32 seen in the message (-1 = absent). */
  readonly attrOff = new Int32Array(32).fill(-1);
  readonly attrLen = new Int32Array(32);
  /** Bit t set = attrOff[t] was set by the current message (only those are reset by the next attach). */
  private seenTypes = 0;
  /** The attributes read for every socket, copied into plain fields (the fastest to read). */
  infoOff = -1;
  infoLen = 0;
  private skmemOff = -1;
  private skmemLen = 0;
  private bbrOff = -1;

  constructor(readonly layout: TcpInfoLayout = LAYOUT_6_18) {}

  /** Point the view at a message payload buf[start, end). Throws DecodeError on malformed input. */
  attach(buf: Buffer, start: number, end: number): this {
    if (end > buf.length || start > end) throw new DecodeError(WHERE, start, `message bounds ${start}..${end} outside a ${buf.length}-byte buffer`);
    if (end - start < INET_DIAG_MSG_LEN) {
      throw new DecodeError(WHERE, start, `message has ${end - start} bytes, struct inet_diag_msg needs ${INET_DIAG_MSG_LEN}`);
    }
    const fam = buf[start];
    if (fam !== AF_INET && fam !== AF_INET6) throw new DecodeError(WHERE, start, `idiag_family ${fam} is neither AF_INET nor AF_INET6`);
    if (buf !== this.buf) {
      this.buf = buf;
      this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    this.start = start;
    this.end = end;
    const offs = this.attrOff;
    const lens = this.attrLen;
    // Forget the previous message's attributes: only the ~7 types it had, not all 32 slots.
    for (let seen = this.seenTypes; seen !== 0; ) {
      const t = 31 - Math.clz32(seen);
      offs[t] = -1;
      seen ^= 1 << t;
    }
    let seen = 0;
    this.seenTypes = -1; // until the walk completes: a message that fails it leaves every slot to reset
    // Record where each attribute is; validate the ones we read afterwards. Error strings are built only
    // on failure (this loop runs for every socket of a dump).
    const dv = this.dv;
    let off = start + INET_DIAG_MSG_LEN;
    while (off + 4 <= end) {
      const hdr = dv.getUint32(off, true); // struct nlattr in one load
      const len = hdr & 0xffff; // nla_len
      const type = (hdr >>> 16) & NLA_TYPE_MASK; // nla_type
      if (len < 4) throw new DecodeError(WHERE, off, `attribute type ${type} has length ${len} < 4`);
      if (off + len > end) throw new DecodeError(WHERE, off, `attribute type ${type} length ${len} overruns the message (${end - off} bytes left)`);
      if (type < 32) {
        offs[type] = off + 4;
        lens[type] = len - 4;
        seen |= 1 << type;
      }
      off += (len + 3) & ~3;
    }
    this.seenTypes = seen;
    if (off < end) throw new DecodeError(WHERE, off, `${end - off} trailing bytes after the last attribute`);
    if (offs[INET_DIAG_INFO] >= 0 && lens[INET_DIAG_INFO] % 8 !== 0) checkTcpInfoLength(lens[INET_DIAG_INFO], `${WHERE} INET_DIAG_INFO`, offs[INET_DIAG_INFO]);
    if (offs[INET_DIAG_SKMEMINFO] >= 0 && lens[INET_DIAG_SKMEMINFO] % 4 !== 0) {
      checkSkmemLength(lens[INET_DIAG_SKMEMINFO], `${WHERE} INET_DIAG_SKMEMINFO`, offs[INET_DIAG_SKMEMINFO]);
    }
    if (offs[INET_DIAG_BBRINFO] >= 0 && lens[INET_DIAG_BBRINFO] < BBR_INFO_LEN) checkBbrLength(lens[INET_DIAG_BBRINFO], `${WHERE} INET_DIAG_BBRINFO`, offs[INET_DIAG_BBRINFO]);
    this.infoOff = offs[INET_DIAG_INFO];
    this.infoLen = this.infoOff < 0 ? 0 : lens[INET_DIAG_INFO];
    this.skmemOff = offs[INET_DIAG_SKMEMINFO];
    this.skmemLen = lens[INET_DIAG_SKMEMINFO];
    this.bbrOff = offs[INET_DIAG_BBRINFO];
    this.need(INET_DIAG_DCTCPINFO, 16, 'INET_DIAG_DCTCPINFO');
    this.need(INET_DIAG_VEGASINFO, 16, 'INET_DIAG_VEGASINFO');
    this.need(INET_DIAG_SHUTDOWN, 1, 'INET_DIAG_SHUTDOWN');
    this.need(INET_DIAG_MARK, 4, 'INET_DIAG_MARK');
    return this;
  }

  private need(type: number, min: number, name: string): void {
    const n = this.attrLen[type];
    if (this.attrOff[type] >= 0 && n < min) throw new DecodeError(`${WHERE} ${name}`, this.attrOff[type], `length ${n} is shorter than ${min}`);
  }


  // struct inet_diag_msg
  get family(): number {
    return this.buf[this.start]; // idiag_family
  }
  get state(): number {
    return this.buf[this.start + 1]; // idiag_state
  }
  get timer(): number {
    return this.buf[this.start + 2]; // idiag_timer
  }
  get retrans(): number {
    return this.buf[this.start + 3]; // idiag_retrans
  }
  get sport(): number {
    return rd16be(this.buf, this.start + 4); // id.idiag_sport (network order)
  }
  get dport(): number {
    return rd16be(this.buf, this.start + 6); // id.idiag_dport
  }
  /** Offsets of id.idiag_src / id.idiag_dst (16 bytes each, network order). */
  get srcOff(): number {
    return this.start + 8;
  }
  get dstOff(): number {
    return this.start + 24;
  }
  get ifindex(): number {
    return this.dv.getUint32(this.start + 40, true); // id.idiag_if
  }
  get cookieLo(): number {
    return this.dv.getUint32(this.start + 44, true); // id.idiag_cookie[0]
  }
  get cookieHi(): number {
    return this.dv.getUint32(this.start + 48, true); // id.idiag_cookie[1]
  }
  get expires(): number {
    return this.dv.getUint32(this.start + 52, true); // idiag_expires, ms
  }
  get rqueue(): number {
    return this.dv.getUint32(this.start + 56, true); // idiag_rqueue
  }
  get wqueue(): number {
    return this.dv.getUint32(this.start + 60, true); // idiag_wqueue
  }
  get uid(): number {
    return this.dv.getUint32(this.start + 64, true); // idiag_uid
  }
  get inode(): number {
    return this.dv.getUint32(this.start + 68, true); // idiag_inode
  }

  /** The cookie as a number key (exact while the high word is below 2^21, i.e. for 2^53 sockets). */
  get cookieKey(): number {
    return this.cookieHi * 4294967296 + this.cookieLo;
  }
  /** The cookie in decimal, as the kernel's u64. */
  cookie(): string {
    return ((BigInt(this.cookieHi) << 32n) | BigInt(this.cookieLo)).toString();
  }
  localIp(): string {
    return formatAddr(this.buf, this.srcOff, this.family);
  }
  peerIp(): string {
    return formatAddr(this.buf, this.dstOff, this.family);
  }
  key(): SockKey {
    return {
      family: this.family,
      src: Buffer.from(this.buf.subarray(this.srcOff, this.srcOff + 16)),
      dst: Buffer.from(this.buf.subarray(this.dstOff, this.dstOff + 16)),
      sport: this.sport,
      dport: this.dport,
      ifindex: this.ifindex,
      cookie: [this.cookieLo, this.cookieHi],
    };
  }

  get hasInfo(): boolean {
    return this.infoOff >= 0;
  }
  /** One tcp_info field; undefined when the kernel sent no tcp_info or a struct too short for it. */
  tcp(f: TcpInfoField): number | undefined {
    return this.infoOff < 0 ? undefined : readTcpInfoDv(this.dv, this.infoOff, this.infoLen, f);
  }
  /**
   * Decode the whole tcp_info into out (index = layout.fields index; NaN = absent). Returns false when
   * the socket has no tcp_info (TIME_WAIT, request sockets). Allocation-free.
   */
  tcpInfoInto(out: Float64Array): boolean {
    if (this.infoOff < 0) return false;
    decodeTcpInfoInto(this.dv, this.infoOff, this.infoLen, this.layout, out);
    return true;
  }
  /** Decode the skmeminfo array into out[0..8] (NaN = element not sent). Returns false when absent. */
  skmemInto(out: Float64Array): boolean {
    if (this.skmemOff < 0) return false;
    for (let i = 0; i < out.length; i++) out[i] = i * 4 + 4 <= this.skmemLen ? this.dv.getUint32(this.skmemOff + i * 4, true) : NaN;
    return true;
  }
  /** skmeminfo element (SKMEM.*), undefined if absent. */
  skmem(i: number): number | undefined {
    return this.skmemOff < 0 || i * 4 + 4 > this.skmemLen ? undefined : this.dv.getUint32(this.skmemOff + i * 4, true);
  }
  get shutdown(): number | undefined {
    return this.attrOff[INET_DIAG_SHUTDOWN] < 0 ? undefined : this.buf[this.attrOff[INET_DIAG_SHUTDOWN]];
  }
  get mark(): number | undefined {
    return this.attrOff[INET_DIAG_MARK] < 0 ? undefined : this.dv.getUint32(this.attrOff[INET_DIAG_MARK], true);
  }
  get hasBbr(): boolean {
    return this.bbrOff >= 0;
  }
  bbrBw(): number | undefined {
    return this.bbrOff < 0 ? undefined : this.dv.getUint32(this.bbrOff + 4, true) * 4294967296 + this.dv.getUint32(this.bbrOff, true); // bbr_bw_hi, bbr_bw_lo
  }
  bbrMinRtt(): number | undefined {
    return this.bbrOff < 0 ? undefined : this.dv.getUint32(this.bbrOff + 8, true); // bbr_min_rtt, us
  }
  bbrPacingGain(): number | undefined {
    return this.bbrOff < 0 ? undefined : this.dv.getUint32(this.bbrOff + 12, true) / BBR_UNIT; // bbr_pacing_gain
  }
  bbrCwndGain(): number | undefined {
    return this.bbrOff < 0 ? undefined : this.dv.getUint32(this.bbrOff + 16, true) / BBR_UNIT; // bbr_cwnd_gain
  }
  /** INET_DIAG_CONG as a string; interned, so reading it for every socket allocates nothing. */
  cong(): string | undefined {
    return this.attrOff[INET_DIAG_CONG] < 0 ? undefined : internCong(this.buf, this.attrOff[INET_DIAG_CONG], this.attrLen[INET_DIAG_CONG]);
  }

  /** Buffer owned by this view when it holds a copy (reused by copyInto). */
  private own: Buffer | null = null;

  /**
   * Copy this message into `target`, reusing the target's own buffer when it is large enough: keeping N
   * sockets across a dump then allocates nothing in steady state. Returns the target, attached.
   */
  copyInto(target: SockView): SockView {
    const len = this.end - this.start;
    let b = target.own;
    if (!b || b.length < len) {
      b = Buffer.alloc(Math.max(len, 1024));
      target.own = b;
    }
    this.buf.copy(b, 0, this.start, this.end);
    return target.attach(b, 0, len);
  }

  /** A detached copy (its own buffer holding just this message). */
  copy(): SockView {
    const v = new SockView(this.layout);
    const b = Buffer.allocUnsafe(this.end - this.start);
    this.buf.copy(b, 0, this.start, this.end);
    return v.attach(b, 0, b.length);
  }

  /** Decode everything (allocates; for the API, single-flow polling and tests). */
  record(): SockRecord {
    const r: SockRecord = {
      family: this.family,
      state: this.state,
      timer: this.timer,
      retrans: this.retrans,
      localIp: this.localIp(),
      localPort: this.sport,
      peerIp: this.peerIp(),
      peerPort: this.dport,
      ifindex: this.ifindex,
      cookie: this.cookie(),
      expires: this.expires,
      rqueue: this.rqueue,
      wqueue: this.wqueue,
      uid: this.uid,
      inode: this.inode,
    };
    const cc = this.cong();
    if (cc !== undefined) r.cc = cc;
    if (this.shutdown !== undefined) r.shutdown = this.shutdown;
    if (this.mark !== undefined) r.mark = this.mark;
    if (this.infoOff >= 0) {
      r.tcpInfo = decodeTcpInfo(this.buf, this.infoOff, this.infoLen, this.layout);
      r.tcpInfoLength = this.infoLen;
    }
    if (this.skmemOff >= 0) {
      const m: Partial<Record<SkmemName, number>> = {};
      for (const n of SKMEM_NAMES) {
        const v = readSkmem(this.buf, this.skmemOff, this.skmemLen, SKMEM[n]);
        if (v !== undefined) m[n] = v;
      }
      r.skmem = m;
    }
    if (this.bbrOff >= 0) r.bbr = { bw: bbrBw(this.buf, this.bbrOff), minRtt: bbrMinRtt(this.buf, this.bbrOff), pacingGain: bbrPacingGain(this.buf, this.bbrOff), cwndGain: bbrCwndGain(this.buf, this.bbrOff) };
    if (this.attrOff[INET_DIAG_DCTCPINFO] >= 0) r.dctcp = decodeDctcp(this.buf, this.attrOff[INET_DIAG_DCTCPINFO], this.attrLen[INET_DIAG_DCTCPINFO]);
    if (this.attrOff[INET_DIAG_VEGASINFO] >= 0) r.vegas = decodeVegas(this.buf, this.attrOff[INET_DIAG_VEGASINFO], this.attrLen[INET_DIAG_VEGASINFO]);
    return r;
  }
}

const congCache: Array<{ bytes: Uint8Array; name: string }> = [];
function internCong(buf: Buffer, off: number, len: number): string {
  // The name is NUL-terminated inside the attribute; compare bytes in JS (no native call, no allocation).
  let n = 0;
  while (n < len && buf[off + n] !== 0) n++;
  for (let c = 0; c < congCache.length; c++) {
    const b = congCache[c].bytes;
    if (b.length !== n) continue;
    let i = 0;
    while (i < n && b[i] === buf[off + i]) i++;
    if (i === n) return congCache[c].name;
  }
  const name = buf.toString('utf8', off, off + n);
  if (congCache.length < 64) congCache.push({ bytes: Uint8Array.from(buf.subarray(off, off + n)), name });
  return name;
}

// ---------------------------------------------------------------------------------------------------
// The source

export interface DumpPlan {
  family: number;
  /** idiag_states mask. */
  states: number;
  bytecode: Buffer | null;
}

export interface DumpResult {
  /** Reply messages (sockets) seen. */
  sockets: number;
  /** NLM_F_DUMP_INTR seen in some family's dump: the result may be inconsistent. */
  interrupted: boolean;
  datagrams: number;
}

export interface SockDiagOptions {
  /** Kernel release for the tcp_info layout (default os.release()). */
  kernelRelease?: string;
  timeoutMs?: number;
  /** Lookups through the `netlink` package's own send and receive (batch.ts): for tests. */
  packageIo?: boolean;
  /** Receive buffer of the lookups (default 4 KiB): for tests. */
  lookupBufferSize?: number;
}

/**
 * TCP sockets over NETLINK_SOCK_DIAG. dump() streams every socket of the plans through one reused
 * SockView; lookup() queries known sockets by 4-tuple + cookie, many per datagram.
 */
export class SockDiag {
  readonly layout: TcpInfoLayout;
  private dumpSock: NetlinkSocket | null = null;
  private lookupSock: NetlinkBatchSocket | null = null;
  private readonly view: SockView;
  /** The view lookupEach() hands out (not the dump's: a lookup's answer may arrive while a dump runs). */
  private readonly lookupView: SockView;
  private readonly timeoutMs: number;
  private readonly opts: SockDiagOptions;

  constructor(opts: SockDiagOptions = {}) {
    this.layout = tcpInfoLayout(opts.kernelRelease ?? os.release());
    this.view = new SockView(this.layout);
    this.lookupView = new SockView(this.layout);
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.opts = opts;
  }

  /** Whether lookups use write/read on the socket's descriptor (batch.ts); undefined before the first. */
  get lookupDirect(): boolean | undefined {
    return this.lookupSock?.direct;
  }

  /**
   * Dump the sockets of each plan (one family per request, one after the other: the kernel allows one
   * dump in flight per socket). `onSocket` gets the shared view, valid only during the call.
   */
  async dump(plans: readonly DumpPlan[], ext: number, onSocket: (v: SockView) => void): Promise<DumpResult> {
    if (!this.dumpSock) this.dumpSock = new NetlinkSocket(NETLINK_SOCK_DIAG, { msgBufferSize: 32768, recvBufferSize: 4 << 20, timeoutMs: this.timeoutMs });
    const res: DumpResult = { sockets: 0, interrupted: false, datagrams: 0 };
    const view = this.view;
    for (const plan of plans) {
      const fam = plan.family === AF_INET ? 'AF_INET' : 'AF_INET6';
      const r: RequestResult = await this.dumpSock.request(buildDumpRequest(plan.family, plan.states, ext, plan.bytecode), SOCK_DIAG_BY_FAMILY, 0, {
        dump: true,
        context: `sock_diag dump ${fam}`,
        onMessage: (m) => {
          if (m.type !== SOCK_DIAG_BY_FAMILY) throw new DecodeError(`sock_diag dump ${fam}`, m.start - 16, `unexpected message type ${m.type}`);
          onSocket(view.attach(m.buf, m.start, m.end));
        },
      });
      res.sockets += r.messages;
      res.datagrams += r.datagrams;
      if (r.interrupted) res.interrupted = true;
    }
    return res;
  }

  /**
   * Look up known sockets by 4-tuple (+ bound device + cookie): one datagram of exact requests, one
   * hash lookup each in the kernel. Returns a detached view per key, or null where the socket is gone
   * (ENOENT: closed, or the 4-tuple now belongs to another socket with a different cookie).
   */
  async lookup(keys: readonly SockKey[], ext = EXT_FLOWS): Promise<Array<SockView | null>> {
    return this.lookupPrepared(keys.map((k) => buildExactRequest(k, ext)));
  }

  /** Like lookup(), with request bodies built once by buildExactRequest() (for 20 Hz polling). */
  async lookupPrepared(bodies: readonly Buffer[]): Promise<Array<SockView | null>> {
    const out: Array<SockView | null> = new Array<SockView | null>(bodies.length).fill(null);
    await this.lookupEach(bodies, (i, v) => {
      out[i] = v.copy();
    });
    return out;
  }

  /**
   * Like lookupPrepared() without copies: `onFound(i, view)` is called for each request whose socket
   * was found, with the shared view over the received datagram, valid only during the call (a sampler
   * converts what it keeps there). Requests whose socket is gone get no call.
   */
  async lookupEach(bodies: readonly Buffer[], onFound: (index: number, v: SockView) => void): Promise<void> {
    await this.lookupEachNow(bodies, onFound);
  }

  /**
   * lookupEach(), finished within this call when the batch socket can (NetlinkBatchSocket.exchangeNow):
   * undefined when every answer was handled, else a promise of the rest; a failure is thrown, or rejects.
   */
  lookupEachNow(bodies: readonly Buffer[], onFound: (index: number, v: SockView) => void): Promise<void> | undefined {
    // An exact answer is one message of ~0.5 KiB per datagram (tcp_info, skmeminfo, CC info): a 4 KiB
    // receive buffer holds it with room, where the 16 KiB default allocated 30 times what arrives, per
    // flow and round (a longer answer fails the round as truncated, never silently).
    this.lookupSock ??= new NetlinkBatchSocket(NETLINK_SOCK_DIAG, { timeoutMs: this.timeoutMs, msgBufferSize: this.opts.lookupBufferSize ?? 4096, packageIo: this.opts.packageIo });
    const view = this.lookupView;
    let failure: Error | null = null;
    const check = () => {
      if (failure) throw failure;
    };
    const pending = this.lookupSock.exchangeNow(SOCK_DIAG_BY_FAMILY, 0, bodies, 'sock_diag exact lookup', (i, m, errno) => {
      if (m) {
        if (m.type !== SOCK_DIAG_BY_FAMILY) throw new DecodeError('sock_diag exact lookup', m.start - 16, `unexpected message type ${m.type}`);
        onFound(i, view.attach(m.buf, m.start, m.end));
      } else if (errno !== -2) {
        failure ??= new Error(`sock_diag exact lookup #${i}: kernel answered errno ${errno}`);
      }
    });
    if (pending) return pending.then(check);
    check();
    return undefined;
  }

  close(): void {
    this.dumpSock?.close();
    this.lookupSock?.close();
    this.dumpSock = null;
    this.lookupSock = null;
  }
}

/** Build a lookup key from text addresses (e.g. the diagnosis API's FlowKey). */
export function sockKeyOf(k: { localIp: string; localPort: number; peerIp: string; peerPort: number; cookie?: string | bigint; ifindex?: number }): SockKey {
  const src = addrToSockid(k.localIp);
  const dst = addrToSockid(k.peerIp);
  if (src.family !== dst.family) {
    throw new Error(`lookup key mixes IPv4 and IPv6 (${k.localIp}, ${k.peerIp}); use ::ffff:a.b.c.d for v4-mapped sockets`);
  }
  let cookie: [number, number] | undefined;
  if (k.cookie !== undefined) {
    const c = BigInt(k.cookie);
    cookie = [Number(c & 0xffffffffn), Number((c >> 32n) & 0xffffffffn)];
  }
  return { family: src.family, src: src.bytes, dst: dst.bytes, sport: k.localPort, dport: k.peerPort, ifindex: k.ifindex ?? 0, cookie };
}
