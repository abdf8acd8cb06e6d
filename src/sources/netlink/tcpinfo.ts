// struct tcp_info (include/uapi/linux/tcp.h, filled by tcp_get_info() in net/ipv4/tcp.c) and the other
// per-socket payloads of a sock_diag reply: skmeminfo (sk_get_meminfo(), net/core/sock.c) and the
// congestion-control info union (struct tcp_bbr_info, tcpvegas_info, tcp_dctcp_info in
// include/uapi/linux/inet_diag.h). docs/kernel-sources.md §3.
//
// The decoder is a layout table read at fixed offsets, never an object built per socket: the sock_diag
// source keeps the attribute's offset and length and reads a field only when someone asks for it.
//
// Presence is decided by the attribute length (the kernel sends exactly its own sizeof): a field whose
// end lies beyond the attribute is absent (undefined), never 0. `ss` zero-fills short structs; we do not.
// The one layout change at constant length (6.18/6.19 vs 7.0+, bytes 276..279) is decided by the kernel
// release, which the I/O edge passes in (tcpInfoLayout(os.release())).

import { DecodeError } from './attrs';

export type FieldSize = 1 | 2 | 4 | 8;

export interface TcpInfoField {
  /** camelCase of the kernel name without the tcpi_ prefix, e.g. "notsentBytes" for tcpi_notsent_bytes. */
  readonly name: string;
  /** The member of struct tcp_info, for grep. */
  readonly kernel: string;
  readonly off: number;
  readonly size: FieldSize;
  /** Bit field inside the unit at `off` (size 1 or 4): shift and width in bits. */
  readonly shift?: number;
  readonly bits?: number;
  /** Kernel release that added the field (documentation; presence is decided by length). */
  readonly since: string;
  /** Units of the raw value. */
  readonly unit: string;
}

const f = (
  name: string,
  kernel: string,
  off: number,
  size: FieldSize,
  since: string,
  unit: string,
  bitfield?: [shift: number, bits: number],
): TcpInfoField => ({ name, kernel, off, size, since, unit, shift: bitfield?.[0], bits: bitfield?.[1] });

/** Every member of struct tcp_info up to offset 276, the same on every kernel that has it. */
const COMMON: readonly TcpInfoField[] = [
  f('state', 'tcpi_state', 0, 1, '2.6', 'TCP state (tcp_states.h)'),
  f('caState', 'tcpi_ca_state', 1, 1, '2.6', '0 Open 1 Disorder 2 CWR 3 Recovery 4 Loss'),
  f('retransmits', 'tcpi_retransmits', 2, 1, '2.6', 'count (consecutive RTOs of the head)'),
  f('probes', 'tcpi_probes', 3, 1, '2.6', 'count'),
  f('backoff', 'tcpi_backoff', 4, 1, '2.6', 'exponent'),
  f('options', 'tcpi_options', 5, 1, '2.6', 'bits: 1 TS 2 SACK 4 WSCALE 8 ECN 16 ECN_SEEN 32 SYN_DATA 64 USEC_TS 128 TFO_CHILD'),
  f('sndWscale', 'tcpi_snd_wscale', 6, 1, '2.6', 'shift', [0, 4]),
  f('rcvWscale', 'tcpi_rcv_wscale', 6, 1, '2.6', 'shift', [4, 4]),
  f('deliveryRateAppLimited', 'tcpi_delivery_rate_app_limited', 7, 1, '4.9', 'flag', [0, 1]),
  f('fastopenClientFail', 'tcpi_fastopen_client_fail', 7, 1, '5.5', 'enum', [1, 2]),
  f('rto', 'tcpi_rto', 8, 4, '2.6', 'us'),
  f('ato', 'tcpi_ato', 12, 4, '2.6', 'us'),
  f('sndMss', 'tcpi_snd_mss', 16, 4, '2.6', 'bytes'),
  f('rcvMss', 'tcpi_rcv_mss', 20, 4, '2.6', 'bytes'),
  f('unacked', 'tcpi_unacked', 24, 4, '2.6', 'segments'),
  f('sacked', 'tcpi_sacked', 28, 4, '2.6', 'segments'),
  f('lost', 'tcpi_lost', 32, 4, '2.6', 'segments'),
  f('retrans', 'tcpi_retrans', 36, 4, '2.6', 'segments'),
  f('fackets', 'tcpi_fackets', 40, 4, '2.6', 'segments (always 0 since 4.15)'),
  f('lastDataSent', 'tcpi_last_data_sent', 44, 4, '2.6', 'ms'),
  f('lastAckSent', 'tcpi_last_ack_sent', 48, 4, '2.6', 'ms (never filled)'),
  f('lastDataRecv', 'tcpi_last_data_recv', 52, 4, '2.6', 'ms'),
  f('lastAckRecv', 'tcpi_last_ack_recv', 56, 4, '2.6', 'ms'),
  f('pmtu', 'tcpi_pmtu', 60, 4, '2.6', 'bytes'),
  f('rcvSsthresh', 'tcpi_rcv_ssthresh', 64, 4, '2.6', 'bytes'),
  f('rtt', 'tcpi_rtt', 68, 4, '2.6', 'us'),
  f('rttvar', 'tcpi_rttvar', 72, 4, '2.6', 'us'),
  f('sndSsthresh', 'tcpi_snd_ssthresh', 76, 4, '2.6', 'segments (0x7FFFFFFF = infinite)'),
  f('sndCwnd', 'tcpi_snd_cwnd', 80, 4, '2.6', 'segments'),
  f('advmss', 'tcpi_advmss', 84, 4, '2.6', 'bytes'),
  f('reordering', 'tcpi_reordering', 88, 4, '2.6', 'segments'),
  f('rcvRtt', 'tcpi_rcv_rtt', 92, 4, '2.6', 'us'),
  f('rcvSpace', 'tcpi_rcv_space', 96, 4, '2.6', 'bytes'),
  f('totalRetrans', 'tcpi_total_retrans', 100, 4, '2.6', 'segments'),
  f('pacingRate', 'tcpi_pacing_rate', 104, 8, '3.15', 'bytes/s (2^64-1 = unlimited)'),
  f('maxPacingRate', 'tcpi_max_pacing_rate', 112, 8, '3.15', 'bytes/s (2^64-1 = not set)'),
  f('bytesAcked', 'tcpi_bytes_acked', 120, 8, '4.1', 'bytes'),
  f('bytesReceived', 'tcpi_bytes_received', 128, 8, '4.1', 'bytes'),
  f('segsOut', 'tcpi_segs_out', 136, 4, '4.2', 'segments'),
  f('segsIn', 'tcpi_segs_in', 140, 4, '4.2', 'segments'),
  f('notsentBytes', 'tcpi_notsent_bytes', 144, 4, '4.6', 'bytes'),
  f('minRtt', 'tcpi_min_rtt', 148, 4, '4.6', 'us (0xFFFFFFFF = no sample)'),
  f('dataSegsIn', 'tcpi_data_segs_in', 152, 4, '4.6', 'segments'),
  f('dataSegsOut', 'tcpi_data_segs_out', 156, 4, '4.6', 'segments'),
  f('deliveryRate', 'tcpi_delivery_rate', 160, 8, '4.9', 'bytes/s'),
  f('busyTime', 'tcpi_busy_time', 168, 8, '4.10', 'us'),
  f('rwndLimited', 'tcpi_rwnd_limited', 176, 8, '4.10', 'us'),
  f('sndbufLimited', 'tcpi_sndbuf_limited', 184, 8, '4.10', 'us'),
  f('delivered', 'tcpi_delivered', 192, 4, '4.18', 'segments'),
  f('deliveredCe', 'tcpi_delivered_ce', 196, 4, '4.18', 'segments'),
  f('bytesSent', 'tcpi_bytes_sent', 200, 8, '4.19', 'bytes'),
  f('bytesRetrans', 'tcpi_bytes_retrans', 208, 8, '4.19', 'bytes'),
  f('dsackDups', 'tcpi_dsack_dups', 216, 4, '4.19', 'segments'),
  f('reordSeen', 'tcpi_reord_seen', 220, 4, '4.19', 'events'),
  f('rcvOoopack', 'tcpi_rcv_ooopack', 224, 4, '5.4', 'packets'),
  f('sndWnd', 'tcpi_snd_wnd', 228, 4, '5.4', 'bytes'),
  f('rcvWnd', 'tcpi_rcv_wnd', 232, 4, '6.2', 'bytes'),
  f('rehash', 'tcpi_rehash', 236, 4, '6.2', 'count'),
  f('totalRto', 'tcpi_total_rto', 240, 2, '6.7', 'count'),
  f('totalRtoRecoveries', 'tcpi_total_rto_recoveries', 242, 2, '6.7', 'count'),
  f('totalRtoTime', 'tcpi_total_rto_time', 244, 4, '6.7', 'ms'),
  f('receivedCe', 'tcpi_received_ce', 248, 4, '6.18', 'segments'),
  f('deliveredE1Bytes', 'tcpi_delivered_e1_bytes', 252, 4, '6.18', 'bytes (u32, wraps)'),
  f('deliveredE0Bytes', 'tcpi_delivered_e0_bytes', 256, 4, '6.18', 'bytes (u32, wraps)'),
  f('deliveredCeBytes', 'tcpi_delivered_ce_bytes', 260, 4, '6.18', 'bytes (u32, wraps)'),
  f('receivedE1Bytes', 'tcpi_received_e1_bytes', 264, 4, '6.18', 'bytes (u32, wraps)'),
  f('receivedE0Bytes', 'tcpi_received_e0_bytes', 268, 4, '6.18', 'bytes (u32, wraps)'),
  f('receivedCeBytes', 'tcpi_received_ce_bytes', 272, 4, '6.18', 'bytes (u32, wraps)'),
];

/** 6.18 and 6.19: two u16 at 276 and 278. */
const TAIL_6_18: readonly TcpInfoField[] = [
  f('accecnFailMode', 'tcpi_accecn_fail_mode', 276, 2, '6.18', 'bits'),
  f('accecnOptSeen', 'tcpi_accecn_opt_seen', 278, 2, '6.18', 'enum'),
];

/** 7.0+: one u32 bit-field word at 276 replaces the two u16 (same sizeof, 280). */
const TAIL_7_0: readonly TcpInfoField[] = [
  f('ecnMode', 'tcpi_ecn_mode', 276, 4, '7.0', '0 off 1 RFC3168 2 AccECN 3 pending', [0, 2]),
  f('accecnOptSeen', 'tcpi_accecn_opt_seen', 276, 4, '7.0', 'enum', [2, 2]),
  f('accecnFailMode', 'tcpi_accecn_fail_mode', 276, 4, '7.0', 'bits', [4, 4]),
  f('options2', 'tcpi_options2', 276, 4, '7.0', 'bits', [8, 24]),
];

export interface TcpInfoLayout {
  /** "6.18" or "7.0": which tail layout applies to bytes 276..279. */
  readonly tail: '6.18' | '7.0';
  readonly fields: readonly TcpInfoField[];
  /** Fields by name (for tests, the JSON API, and code that names a field once). */
  readonly byName: ReadonlyMap<string, TcpInfoField>;
  /** The table as typed arrays (field i = fields[i]) for decodeTcpInfoInto's tight loop. */
  readonly offs: Uint16Array;
  readonly sizes: Uint8Array;
  readonly shifts: Uint8Array;
  readonly masks: Uint32Array;
  /** sizeof(struct tcp_info) of the layout: the end of its last field (280). */
  readonly size: number;
  /**
   * decodeTcpInfoInto for a struct of at least `size` bytes (what the running kernel sends): the table
   * compiled into straight-line reads at constant offsets, without the per-field length check and size
   * dispatch of the generic loop (the hot path of "decode every socket").
   */
  readonly decodeFull: (dv: DataView, off: number, out: Float64Array) => void;
}

/**
 * Compile a field table into one function of straight-line DataView reads (out[i] = field i), with the
 * same results as the generic loop of decodeTcpInfoInto: u64 all-ones is Infinity, bit fields are
 * shifted and masked. Generated from the table so the two can never disagree.
 */
function compileFullDecoder(fields: readonly TcpInfoField[]): (dv: DataView, off: number, out: Float64Array) => void {
  const lines: string[] = ['"use strict";', 'let lo = 0, hi = 0;'];
  fields.forEach((x, i) => {
    const o = x.off;
    const read = x.size === 1 ? `dv.getUint8(off + ${o})` : x.size === 2 ? `dv.getUint16(off + ${o}, true)` : `dv.getUint32(off + ${o}, true)`;
    if (x.size === 8) {
      lines.push(`lo = dv.getUint32(off + ${o}, true); hi = dv.getUint32(off + ${o + 4}, true);`);
      lines.push(`out[${i}] = lo === 0xffffffff && hi === 0xffffffff ? Infinity : hi * 4294967296 + lo;`);
    } else if (x.bits !== undefined) {
      lines.push(`out[${i}] = (${read} >>> ${x.shift ?? 0}) & ${2 ** x.bits - 1};`);
    } else {
      lines.push(`out[${i}] = ${read};`);
    }
  });
  return new Function('dv', 'off', 'out', lines.join('\n')) as (dv: DataView, off: number, out: Float64Array) => void;
}

function makeLayout(tail: '6.18' | '7.0'): TcpInfoLayout {
  const fields = [...COMMON, ...(tail === '7.0' ? TAIL_7_0 : TAIL_6_18)];
  return {
    tail,
    fields,
    byName: new Map(fields.map((x) => [x.name, x])),
    offs: Uint16Array.from(fields.map((x) => x.off)),
    sizes: Uint8Array.from(fields.map((x) => x.size)),
    shifts: Uint8Array.from(fields.map((x) => x.shift ?? 0)),
    masks: Uint32Array.from(fields.map((x) => (x.bits === undefined ? 0xffffffff : 2 ** x.bits - 1))),
    size: Math.max(...fields.map((x) => x.off + x.size)),
    decodeFull: compileFullDecoder(fields),
  };
}

export const LAYOUT_6_18 = makeLayout('6.18');
export const LAYOUT_7_0 = makeLayout('7.0');

/** Parse "6.18.44-fc-v657" into [6, 18]; undefined if it does not start with two numbers. */
export function parseKernelRelease(release: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/**
 * The struct tcp_info layout for a kernel release (os.release()). Only bytes 276..279 differ, and only
 * for kernels that send 280 bytes; an unparsable release gets the 6.18 layout.
 */
export function tcpInfoLayout(release: string): TcpInfoLayout {
  const v = parseKernelRelease(release);
  return v && v[0] >= 7 ? LAYOUT_7_0 : LAYOUT_6_18;
}

/** Well-known field handles, so hot code does not look fields up by name. Same in both layouts. */
export const TCPI = Object.fromEntries(COMMON.map((x) => [x.name, x])) as Readonly<Record<CommonFieldName, TcpInfoField>>;
export type CommonFieldName =
  | 'state' | 'caState' | 'retransmits' | 'probes' | 'backoff' | 'options' | 'sndWscale' | 'rcvWscale'
  | 'deliveryRateAppLimited' | 'fastopenClientFail' | 'rto' | 'ato' | 'sndMss' | 'rcvMss' | 'unacked'
  | 'sacked' | 'lost' | 'retrans' | 'fackets' | 'lastDataSent' | 'lastAckSent' | 'lastDataRecv'
  | 'lastAckRecv' | 'pmtu' | 'rcvSsthresh' | 'rtt' | 'rttvar' | 'sndSsthresh' | 'sndCwnd' | 'advmss'
  | 'reordering' | 'rcvRtt' | 'rcvSpace' | 'totalRetrans' | 'pacingRate' | 'maxPacingRate' | 'bytesAcked'
  | 'bytesReceived' | 'segsOut' | 'segsIn' | 'notsentBytes' | 'minRtt' | 'dataSegsIn' | 'dataSegsOut'
  | 'deliveryRate' | 'busyTime' | 'rwndLimited' | 'sndbufLimited' | 'delivered' | 'deliveredCe'
  | 'bytesSent' | 'bytesRetrans' | 'dsackDups' | 'reordSeen' | 'rcvOoopack' | 'sndWnd' | 'rcvWnd'
  | 'rehash' | 'totalRto' | 'totalRtoRecoveries' | 'totalRtoTime' | 'receivedCe' | 'deliveredE1Bytes'
  | 'deliveredE0Bytes' | 'deliveredCeBytes' | 'receivedE1Bytes' | 'receivedE0Bytes' | 'receivedCeBytes';

/** Sentinels the kernel uses for "none/unlimited" (callers decide how to present them). */
export const TCP_INFINITE_SSTHRESH = 0x7fffffff;
export const MIN_RTT_NONE = 0xffffffff;

/**
 * Read one field of a tcp_info that occupies buf[off, off+len). Returns undefined when the struct is
 * too short to contain the field. u64 values are returned as numbers (exact below 2^53, which covers
 * every real counter); the all-ones u64 ("unlimited" pacing rates) is returned as Infinity.
 */
export function readTcpInfo(buf: Buffer, off: number, len: number, fld: TcpInfoField): number | undefined {
  if (fld.off + fld.size > len) return undefined;
  const p = off + fld.off;
  let v: number;
  switch (fld.size) {
    case 1:
      v = buf[p];
      break;
    case 2:
      v = buf.readUInt16LE(p);
      break;
    case 4:
      v = buf.readUInt32LE(p);
      break;
    default: {
      const lo = buf.readUInt32LE(p);
      const hi = buf.readUInt32LE(p + 4);
      if (lo === 0xffffffff && hi === 0xffffffff) return Infinity;
      return hi * 4294967296 + lo;
    }
  }
  if (fld.bits !== undefined) v = (v >>> (fld.shift ?? 0)) & ((1 << fld.bits) - 1);
  return v;
}

/** Same as readTcpInfo over a DataView of the buffer (several times faster in hot loops). */
export function readTcpInfoDv(dv: DataView, off: number, len: number, fld: TcpInfoField): number | undefined {
  if (fld.off + fld.size > len) return undefined;
  const p = off + fld.off;
  let v: number;
  switch (fld.size) {
    case 1:
      v = dv.getUint8(p);
      break;
    case 2:
      v = dv.getUint16(p, true);
      break;
    case 4:
      v = dv.getUint32(p, true);
      break;
    default: {
      const lo = dv.getUint32(p, true);
      const hi = dv.getUint32(p + 4, true);
      if (lo === 0xffffffff && hi === 0xffffffff) return Infinity;
      return hi * 4294967296 + lo;
    }
  }
  if (fld.bits !== undefined) v = (v >>> (fld.shift ?? 0)) & ((1 << fld.bits) - 1);
  return v;
}

/**
 * Decode every field of a tcp_info at dv[off, off+len) into out[i] (i = index in layout.fields):
 * NaN where the struct is too short (absent), Infinity for an all-ones u64. No allocation: this is the
 * "decode every socket" path (one reused Float64Array for a whole dump).
 */
export function decodeTcpInfoInto(dv: DataView, off: number, len: number, layout: TcpInfoLayout, out: Float64Array): void {
  if (len >= layout.size && out.length >= layout.fields.length) {
    layout.decodeFull(dv, off, out);
    return;
  }
  const { offs, sizes, shifts, masks } = layout;
  const n = offs.length;
  for (let i = 0; i < n; i++) {
    const o = offs[i];
    const sz = sizes[i];
    if (o + sz > len) {
      out[i] = NaN;
      continue;
    }
    const p = off + o;
    let v: number;
    if (sz === 4) v = dv.getUint32(p, true);
    else if (sz === 8) {
      const lo = dv.getUint32(p, true);
      const hi = dv.getUint32(p + 4, true);
      out[i] = lo === 0xffffffff && hi === 0xffffffff ? Infinity : hi * 4294967296 + lo;
      continue;
    } else if (sz === 1) v = dv.getUint8(p);
    else v = dv.getUint16(p, true);
    out[i] = ((v >>> shifts[i]) & masks[i]) >>> 0;
  }
}

/**
 * Validate the length of an INET_DIAG_INFO payload. sizeof(struct tcp_info) is a multiple of 8 on every
 * kernel (it has u64 members), so any other length is not a tcp_info: a clear error instead of guesses.
 */
export function checkTcpInfoLength(len: number, where: string, off: number): void {
  if (len % 8 !== 0) {
    throw new DecodeError(where, off, `INET_DIAG_INFO length ${len} is not a struct tcp_info size (a multiple of 8)`);
  }
}

export type TcpInfoRecord = Record<string, number>;

/**
 * Decode every field present in a tcp_info into a plain record (kernel names in camelCase). For tests,
 * the JSON API and single-flow polling; the scrape path reads fields lazily with readTcpInfo().
 */
export function decodeTcpInfo(buf: Buffer, off = 0, len = buf.length - off, layout: TcpInfoLayout = LAYOUT_6_18): TcpInfoRecord {
  checkTcpInfoLength(len, 'struct tcp_info', off);
  if (off + len > buf.length) throw new DecodeError('struct tcp_info', off, `${len} bytes announced, ${buf.length - off} present`);
  const out: TcpInfoRecord = {};
  for (const fld of layout.fields) {
    const v = readTcpInfo(buf, off, len, fld);
    if (v !== undefined) out[fld.name] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// INET_DIAG_SKMEMINFO: u32[SK_MEMINFO_VARS] (include/uapi/linux/sock_diag.h, sk_get_meminfo()).

export const SKMEM = {
  rmemAlloc: 0, // SK_MEMINFO_RMEM_ALLOC  ss "r"
  rcvbuf: 1, // SK_MEMINFO_RCVBUF        ss "rb"
  wmemAlloc: 2, // SK_MEMINFO_WMEM_ALLOC ss "t" (what TSQ limits)
  sndbuf: 3, // SK_MEMINFO_SNDBUF        ss "tb"
  fwdAlloc: 4, // SK_MEMINFO_FWD_ALLOC   ss "f"
  wmemQueued: 5, // SK_MEMINFO_WMEM_QUEUED ss "w"
  optmem: 6, // SK_MEMINFO_OPTMEM        ss "o"
  backlog: 7, // SK_MEMINFO_BACKLOG      ss "bl" (3.6+)
  drops: 8, // SK_MEMINFO_DROPS          ss "d" (4.7+)
} as const;
export type SkmemName = keyof typeof SKMEM;
export const SKMEM_NAMES = Object.keys(SKMEM) as SkmemName[];

export function checkSkmemLength(len: number, where: string, off: number): void {
  if (len % 4 !== 0) throw new DecodeError(where, off, `INET_DIAG_SKMEMINFO length ${len} is not a multiple of 4`);
}

/** Element i of a skmeminfo array at buf[off, off+len), or undefined when the kernel sent fewer. */
export function readSkmem(buf: Buffer, off: number, len: number, i: number): number | undefined {
  return i * 4 + 4 <= len ? buf.readUInt32LE(off + i * 4) : undefined;
}

export function decodeSkmem(buf: Buffer, off = 0, len = buf.length - off): Partial<Record<SkmemName, number>> {
  checkSkmemLength(len, 'skmeminfo', off);
  const out: Partial<Record<SkmemName, number>> = {};
  for (const n of SKMEM_NAMES) {
    const v = readSkmem(buf, off, len, SKMEM[n]);
    if (v !== undefined) out[n] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// struct tcp_bbr_info (INET_DIAG_BBRINFO, bbr_get_info() in net/ipv4/tcp_bbr.c). 20 bytes in mainline;
// out-of-tree BBRv3 appends fields: the first 20 bytes keep their meaning and the rest is ignored.

export const BBR_INFO_LEN = 20;
/** Gains are fixed-point with BBR_UNIT = 256. */
export const BBR_UNIT = 256;

export interface BbrInfo {
  /** bytes/s: (bbr_bw_hi << 32) | bbr_bw_lo */
  bw: number;
  /** us: bbr_min_rtt */
  minRtt: number;
  /** bbr_pacing_gain / 256 */
  pacingGain: number;
  /** bbr_cwnd_gain / 256 */
  cwndGain: number;
}

export function checkBbrLength(len: number, where: string, off: number): void {
  if (len < BBR_INFO_LEN) throw new DecodeError(where, off, `INET_DIAG_BBRINFO length ${len} is shorter than struct tcp_bbr_info (${BBR_INFO_LEN})`);
}

export const bbrBw = (buf: Buffer, off: number) => buf.readUInt32LE(off + 4) * 4294967296 + buf.readUInt32LE(off); // bbr_bw_hi, bbr_bw_lo
export const bbrMinRtt = (buf: Buffer, off: number) => buf.readUInt32LE(off + 8); // bbr_min_rtt
export const bbrPacingGain = (buf: Buffer, off: number) => buf.readUInt32LE(off + 12) / BBR_UNIT; // bbr_pacing_gain
export const bbrCwndGain = (buf: Buffer, off: number) => buf.readUInt32LE(off + 16) / BBR_UNIT; // bbr_cwnd_gain

export function decodeBbr(buf: Buffer, off = 0, len = buf.length - off): BbrInfo {
  checkBbrLength(len, 'tcp_bbr_info', off);
  return { bw: bbrBw(buf, off), minRtt: bbrMinRtt(buf, off), pacingGain: bbrPacingGain(buf, off), cwndGain: bbrCwndGain(buf, off) };
}

/** struct tcp_dctcp_info (INET_DIAG_DCTCPINFO), 16 bytes. */
export interface DctcpInfo {
  enabled: boolean; // dctcp_enabled (false = fallback mode)
  ceState: number; // dctcp_ce_state
  alpha: number; // dctcp_alpha, scaled by 1024
  abEcn: number; // dctcp_ab_ecn
  abTot: number; // dctcp_ab_tot
}

export function decodeDctcp(buf: Buffer, off = 0, len = buf.length - off): DctcpInfo {
  if (len < 16) throw new DecodeError('tcp_dctcp_info', off, `INET_DIAG_DCTCPINFO length ${len} is shorter than 16`);
  return {
    enabled: buf.readUInt16LE(off) !== 0,
    ceState: buf.readUInt16LE(off + 2),
    alpha: buf.readUInt32LE(off + 4),
    abEcn: buf.readUInt32LE(off + 8),
    abTot: buf.readUInt32LE(off + 12),
  };
}

/** struct tcpvegas_info (INET_DIAG_VEGASINFO), 16 bytes. */
export interface VegasInfo {
  enabled: boolean; // tcpv_enabled
  rttCnt: number; // tcpv_rttcnt
  rtt: number; // tcpv_rtt, us
  minRtt: number; // tcpv_minrtt, us
}

export function decodeVegas(buf: Buffer, off = 0, len = buf.length - off): VegasInfo {
  if (len < 16) throw new DecodeError('tcpvegas_info', off, `INET_DIAG_VEGASINFO length ${len} is shorter than 16`);
  return {
    enabled: buf.readUInt32LE(off) !== 0,
    rttCnt: buf.readUInt32LE(off + 4),
    rtt: buf.readUInt32LE(off + 8),
    minRtt: buf.readUInt32LE(off + 12),
  };
}

// ---------------------------------------------------------------------------------------------------
// Names

/** include/net/tcp_states.h, with the names `ss` prints (lowercase). */
export const TCP_STATE_NAMES: readonly string[] = [
  'unknown', // 0
  'established',
  'syn-sent',
  'syn-recv',
  'fin-wait-1',
  'fin-wait-2',
  'time-wait',
  'close',
  'close-wait',
  'last-ack',
  'listen',
  'closing',
  'new-syn-recv',
  'bound-inactive',
];

export const tcpStateName = (s: number) => TCP_STATE_NAMES[s] ?? `state-${s}`;

/** enum tcp_ca_state (include/uapi/linux/tcp.h). */
export const CA_STATE_NAMES: readonly string[] = ['open', 'disorder', 'cwr', 'recovery', 'loss'];
export const caStateName = (s: number) => CA_STATE_NAMES[s] ?? `ca-state-${s}`;
