// tc qdisc statistics over rtnetlink (RTM_GETQDISC dump). docs/kernel-sources.md §6.
//
// Layouts (include/uapi/linux/rtnetlink.h, gen_stats.h, pkt_sched.h):
//   struct tcmsg (20 B): u8 tcm_family, u8 pad1, u16 pad2, s32 tcm_ifindex, u32 tcm_handle,
//                        u32 tcm_parent, u32 tcm_info
//   TCA_STATS2 nest: TCA_STATS_BASIC  = struct gnet_stats_basic {u64 bytes; u32 packets} (+4 pad)
//                    TCA_STATS_QUEUE  = struct gnet_stats_queue {u32 qlen, backlog, drops, requeues,
//                                                                overlimits}
//                    TCA_STATS_APP    = qdisc-specific xstats (same bytes as TCA_XSTATS)
//                    TCA_STATS_PKT64  = u64 packets, sent only when the count does not fit in u32
//   TCA_STATS (legacy struct tc_stats, 36 B + pad): u64 bytes, u32 packets, drops, overlimits, bps, pps,
//                    qlen, backlog. Used only when TCA_STATS2 is absent (very old kernels); it has no
//                    requeues.
//
// decodeQdisc is pure (one message payload -> record); dumpQdiscs is the I/O edge.

import { AttrSpan, DecodeError, attrMap, attrString, attrU32, attrU8, forEachAttr, u64 } from './attrs';
import { NetlinkSocket } from './socket';

export const RTM_NEWQDISC = 36;
export const RTM_GETQDISC = 38;

export const TCMSG_LEN = 20;

// enum TCA_* (rtnetlink.h)
export const TCA_KIND = 1;
export const TCA_OPTIONS = 2;
export const TCA_STATS = 3;
export const TCA_XSTATS = 4;
export const TCA_STATS2 = 7;
export const TCA_HW_OFFLOAD = 12;

// enum TCA_STATS_* (gen_stats.h)
export const TCA_STATS_BASIC = 1;
export const TCA_STATS_QUEUE = 3;
export const TCA_STATS_APP = 4;
export const TCA_STATS_PKT64 = 8;

export const TC_H_ROOT = 0xffffffff;
export const TC_H_INGRESS = 0xfffffff1;

/** struct tc_fq_qd_stats (pkt_sched.h). Fields absent from a shorter (older-kernel) struct are undefined. */
export interface FqStats {
  gcFlows: number;
  throttled: number;
  flowsPlimit: number;
  pktsTooLong: number;
  allocationErrors: number;
  /** s64 ns until the next throttled flow is due; meaningful only when > 0 (as tc prints it). */
  timeNextDelayedFlowNs: number;
  flows: number;
  inactiveFlows: number;
  throttledFlows: number;
  /** Since 4.9 (the field was padding before, so older kernels report 0). */
  unthrottleLatencyNs: number;
  ceMark?: number; // 4.2 (struct >= 88 B)
  horizonDrops?: number; // 5.8 (>= 104 B)
  horizonCaps?: number;
  fastpathPackets?: number; // 6.7 (>= 152 B)
  bandDrops?: [number, number, number];
  bandPktCount?: [number, number, number];
}

/** struct tc_fq_codel_xstats with type TCA_FQ_CODEL_XSTATS_QDISC. */
export interface FqCodelStats {
  maxpacket: number;
  dropOverlimit: number;
  ecnMark: number;
  newFlowCount: number;
  newFlowsLen: number;
  oldFlowsLen: number;
  ceMark?: number; // 4.2
  memoryUsage?: number; // 4.7
  dropOvermemory?: number; // 4.7
}

/** TCA_OPTIONS of kind "fq" (enum TCA_FQ_*). Every field optional: the kernel decides what it dumps. */
export interface FqOptions {
  plimit?: number;
  flowPlimit?: number;
  quantum?: number;
  initialQuantum?: number;
  rateEnable?: number;
  /** bytes/s; 0xffffffff (~0U) = no per-flow cap. */
  flowMaxRate?: number;
  bucketsLog?: number;
  flowRefillDelayUs?: number;
  lowRateThreshold?: number;
  /** µs; 0xffffffff = CE marking off. */
  ceThresholdUs?: number;
  timerSlackNs?: number;
  horizonUs?: number;
  horizonDrop?: number;
}

/** TCA_OPTIONS of kind "fq_codel" (enum TCA_FQ_CODEL_*). */
export interface FqCodelOptions {
  targetUs?: number;
  limit?: number;
  intervalUs?: number;
  ecn?: number;
  flows?: number;
  quantum?: number;
  ceThresholdUs?: number;
  dropBatchSize?: number;
  memoryLimit?: number;
}

export interface QdiscRecord {
  ifindex: number;
  handle: number;
  parent: number;
  kind: string;
  bytes: number;
  packets: number;
  drops: number;
  /** Undefined when only the legacy TCA_STATS was sent (it has no requeue count). */
  requeues?: number;
  overlimits: number;
  qlen: number;
  backlog: number;
  hwOffload?: number;
  fq?: FqStats;
  fqOptions?: FqOptions;
  fqCodel?: FqCodelStats;
  fqCodelOptions?: FqCodelOptions;
}

/** The tcmsg of a dump request: all zero = every qdisc of every device. */
export function qdiscDumpRequest(): Buffer {
  return Buffer.alloc(TCMSG_LEN);
}

/** "800b:" / "1:10" like tc prints a handle. */
export function formatHandle(h: number): string {
  const major = (h >>> 16).toString(16);
  const minor = h & 0xffff;
  return minor === 0 ? `${major}:` : `${major}:${minor.toString(16)}`;
}

/** "root" for TC_H_ROOT, else the handle as tc prints it (ingress/clsact: "ffff:fff1"). */
export function formatParent(p: number): string {
  return p === TC_H_ROOT ? 'root' : formatHandle(p);
}

function need(a: AttrSpan, min: number, where: string): void {
  if (a.len < min) throw new DecodeError(where, a.off, `payload is ${a.len} bytes, need at least ${min}`);
}

/** Decode one RTM_NEWQDISC payload (tcmsg + attributes) in buf[start, end). */
export function decodeQdisc(buf: Buffer, start: number, end: number): QdiscRecord {
  if (end - start < TCMSG_LEN) throw new DecodeError('RTM_NEWQDISC tcmsg', start, `message payload is ${end - start} bytes, need ${TCMSG_LEN}`);
  const ifindex = buf.readInt32LE(start + 4);
  const handle = buf.readUInt32LE(start + 8);
  const parent = buf.readUInt32LE(start + 12);
  const where = `RTM_NEWQDISC ifindex ${ifindex} handle ${formatHandle(handle)}`;
  const a = attrMap(buf, start + TCMSG_LEN, end, where);
  const kind = attrString(buf, a.get(TCA_KIND));
  if (kind === undefined || kind === '') throw new DecodeError(where, start + TCMSG_LEN, 'no TCA_KIND attribute');

  const rec: QdiscRecord = {
    ifindex,
    handle,
    parent,
    kind,
    bytes: 0,
    packets: 0,
    drops: 0,
    overlimits: 0,
    qlen: 0,
    backlog: 0,
    hwOffload: attrU8(buf, a.get(TCA_HW_OFFLOAD), `${where} TCA_HW_OFFLOAD`),
  };

  let app: AttrSpan | undefined;
  const stats2 = a.get(TCA_STATS2);
  if (stats2) {
    const w2 = `${where} TCA_STATS2`;
    const s = attrMap(buf, stats2.off, stats2.off + stats2.len, w2);
    const basic = s.get(TCA_STATS_BASIC);
    const queue = s.get(TCA_STATS_QUEUE);
    if (!basic) throw new DecodeError(w2, stats2.off, 'no TCA_STATS_BASIC');
    if (!queue) throw new DecodeError(w2, stats2.off, 'no TCA_STATS_QUEUE');
    need(basic, 12, `${w2} TCA_STATS_BASIC`);
    need(queue, 20, `${w2} TCA_STATS_QUEUE`);
    rec.bytes = u64(buf, basic.off);
    rec.packets = buf.readUInt32LE(basic.off + 8);
    const pkt64 = s.get(TCA_STATS_PKT64);
    if (pkt64) {
      need(pkt64, 8, `${w2} TCA_STATS_PKT64`);
      rec.packets = u64(buf, pkt64.off);
    }
    rec.qlen = buf.readUInt32LE(queue.off);
    rec.backlog = buf.readUInt32LE(queue.off + 4);
    rec.drops = buf.readUInt32LE(queue.off + 8);
    rec.requeues = buf.readUInt32LE(queue.off + 12);
    rec.overlimits = buf.readUInt32LE(queue.off + 16);
    app = s.get(TCA_STATS_APP);
  } else {
    const st = a.get(TCA_STATS);
    if (!st) throw new DecodeError(where, start + TCMSG_LEN, 'neither TCA_STATS2 nor TCA_STATS present');
    need(st, 36, `${where} TCA_STATS`);
    rec.bytes = u64(buf, st.off);
    rec.packets = buf.readUInt32LE(st.off + 8);
    rec.drops = buf.readUInt32LE(st.off + 12);
    rec.overlimits = buf.readUInt32LE(st.off + 16);
    rec.qlen = buf.readUInt32LE(st.off + 28);
    rec.backlog = buf.readUInt32LE(st.off + 32);
  }
  app ??= a.get(TCA_XSTATS);

  const opts = a.get(TCA_OPTIONS);
  if (kind === 'fq') {
    if (app) rec.fq = decodeFqStats(buf, app, `${where} fq xstats`);
    if (opts) rec.fqOptions = decodeFqOptions(buf, opts, `${where} fq TCA_OPTIONS`);
  } else if (kind === 'fq_codel') {
    if (app) rec.fqCodel = decodeFqCodelStats(buf, app, `${where} fq_codel xstats`);
    if (opts) rec.fqCodelOptions = decodeFqCodelOptions(buf, opts, `${where} fq_codel TCA_OPTIONS`);
  }
  return rec;
}

// struct tc_fq_qd_stats offsets (docs/kernel-sources.md §6.3). Sizes: 80 (3.12), 88 (4.2), 104 (5.8),
// 152 (6.7). Decoded by length: a field is read only if the struct is long enough to hold it.
export const FQ_STATS_MIN = 80;
export function decodeFqStats(buf: Buffer, a: AttrSpan, where: string): FqStats {
  need(a, FQ_STATS_MIN, where);
  const o = a.off;
  const has = (off: number, size: number) => off + size <= a.len;
  const st: FqStats = {
    gcFlows: u64(buf, o + 0),
    throttled: u64(buf, o + 24),
    flowsPlimit: u64(buf, o + 32),
    pktsTooLong: u64(buf, o + 40),
    allocationErrors: u64(buf, o + 48),
    timeNextDelayedFlowNs: Number(buf.readBigInt64LE(o + 56)),
    flows: buf.readUInt32LE(o + 64),
    inactiveFlows: buf.readUInt32LE(o + 68),
    throttledFlows: buf.readUInt32LE(o + 72),
    unthrottleLatencyNs: buf.readUInt32LE(o + 76),
  };
  if (has(80, 8)) st.ceMark = u64(buf, o + 80);
  if (has(88, 16)) {
    st.horizonDrops = u64(buf, o + 88);
    st.horizonCaps = u64(buf, o + 96);
  }
  if (has(104, 44)) {
    st.fastpathPackets = u64(buf, o + 104);
    st.bandDrops = [u64(buf, o + 112), u64(buf, o + 120), u64(buf, o + 128)];
    st.bandPktCount = [buf.readUInt32LE(o + 136), buf.readUInt32LE(o + 140), buf.readUInt32LE(o + 144)];
  }
  return st;
}

// struct tc_fq_codel_xstats: u32 type, then (type 0) struct tc_fq_codel_qd_stats. The union also holds
// the 24-byte class stats, so the struct was 28 B (3.5), 32 B (ce_mark, 4.2), 40 B (memory, 4.7).
export const FQ_CODEL_XSTATS_QDISC = 0;
export function decodeFqCodelStats(buf: Buffer, a: AttrSpan, where: string): FqCodelStats | undefined {
  need(a, 28, where);
  const o = a.off;
  const type = buf.readUInt32LE(o);
  if (type !== FQ_CODEL_XSTATS_QDISC) return undefined; // class stats are not dumped for qdiscs
  const st: FqCodelStats = {
    maxpacket: buf.readUInt32LE(o + 4),
    dropOverlimit: buf.readUInt32LE(o + 8),
    ecnMark: buf.readUInt32LE(o + 12),
    newFlowCount: buf.readUInt32LE(o + 16),
    newFlowsLen: buf.readUInt32LE(o + 20),
    oldFlowsLen: buf.readUInt32LE(o + 24),
  };
  if (a.len >= 32) st.ceMark = buf.readUInt32LE(o + 28);
  if (a.len >= 40) {
    st.memoryUsage = buf.readUInt32LE(o + 32);
    st.dropOvermemory = buf.readUInt32LE(o + 36);
  }
  return st;
}

// enum TCA_FQ_* (pkt_sched.h)
const FQ_OPT_U32: Record<number, keyof FqOptions> = {
  1: 'plimit',
  2: 'flowPlimit',
  3: 'quantum',
  4: 'initialQuantum',
  5: 'rateEnable',
  7: 'flowMaxRate',
  8: 'bucketsLog',
  9: 'flowRefillDelayUs',
  11: 'lowRateThreshold',
  12: 'ceThresholdUs',
  13: 'timerSlackNs',
  14: 'horizonUs',
};
const TCA_FQ_HORIZON_DROP = 15;

export function decodeFqOptions(buf: Buffer, a: AttrSpan, where: string): FqOptions {
  const o: FqOptions = {};
  forEachAttr(buf, a.off, a.off + a.len, where, (type, off, len) => {
    const key = FQ_OPT_U32[type];
    if (key) o[key] = attrU32(buf, { off, len }, `${where} TCA_FQ attribute ${type}`);
    else if (type === TCA_FQ_HORIZON_DROP) o.horizonDrop = attrU8(buf, { off, len }, `${where} TCA_FQ_HORIZON_DROP`);
  });
  return o;
}

// enum TCA_FQ_CODEL_* (pkt_sched.h); all u32.
const FQ_CODEL_OPT_U32: Record<number, keyof FqCodelOptions> = {
  1: 'targetUs',
  2: 'limit',
  3: 'intervalUs',
  4: 'ecn',
  5: 'flows',
  6: 'quantum',
  7: 'ceThresholdUs',
  8: 'dropBatchSize',
  9: 'memoryLimit',
};

export function decodeFqCodelOptions(buf: Buffer, a: AttrSpan, where: string): FqCodelOptions {
  const o: FqCodelOptions = {};
  forEachAttr(buf, a.off, a.off + a.len, where, (type, off, len) => {
    const key = FQ_CODEL_OPT_U32[type];
    if (key) o[key] = attrU32(buf, { off, len }, `${where} TCA_FQ_CODEL attribute ${type}`);
  });
  return o;
}

// ---------------------------------------------------------------------------------------------------
// I/O edge

export interface QdiscDump {
  qdiscs: QdiscRecord[];
  /** NLM_F_DUMP_INTR: the dump raced with a qdisc change. */
  interrupted: boolean;
}

export async function dumpQdiscs(sock: NetlinkSocket): Promise<QdiscDump> {
  const qdiscs: QdiscRecord[] = [];
  const r = await sock.request(qdiscDumpRequest(), RTM_GETQDISC, 0, {
    dump: true,
    context: 'RTM_GETQDISC dump',
    onMessage: (m) => {
      if (m.type === RTM_NEWQDISC) qdiscs.push(decodeQdisc(m.buf, m.start, m.end));
    },
  });
  return { qdiscs, interrupted: r.interrupted };
}

/**
 * A dump that raced with a qdisc change (NLM_F_DUMP_INTR) may miss or repeat entries: retry once, then
 * fail rather than return a possibly inconsistent set. Used by the qdisc collector and the diagnosis.
 */
export async function consistentQdiscDump(dump: () => Promise<QdiscDump>): Promise<QdiscDump> {
  let d = await dump();
  if (d.interrupted) d = await dump();
  if (d.interrupted) throw new Error('RTM_GETQDISC dump interrupted twice by concurrent qdisc changes (NLM_F_DUMP_INTR)');
  return d;
}
