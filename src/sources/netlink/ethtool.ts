// ethtool over generic netlink (family "ethtool", version 1), docs/kernel-sources.md §5.
// Layouts: include/uapi/linux/ethtool_netlink_generated.h and ethtool_netlink.h; string sets in
// include/uapi/linux/ethtool.h; semantics in Documentation/networking/ethtool-netlink.rst.
//
// Decoders are pure: (genl payload buffer, start, end) → record. EthtoolClient is the I/O edge: one
// per-device request per message type (the device is given by ifindex), on one socket.
//
// Traps handled here (docs/kernel-sources.md §5.1–5.4): request and reply command ids differ; the STATS request header is
// attribute 2 and its GROUPS bitset is mandatory; verbose *list* bitsets carry no VALUE flag (presence
// means set); feature indexes move between kernels, so features are resolved by name; stat nests number
// their counters from 0.

import {
  AttrSpan,
  DecodeError,
  GENL_HDRLEN,
  attrFlagOf,
  attrMap,
  attrString,
  attrStringOf,
  attrU32,
  attrU32Of,
  attrU64,
  attrU8,
  forEachAttr,
  genlBody,
  nest,
} from './attrs';
import { GenlClient } from './genl';

export const ETHTOOL_GENL_NAME = 'ethtool';
export const ETHTOOL_GENL_VERSION = 1;

// Request (user → kernel) and reply (kernel → user) message ids, docs/kernel-sources.md §5.1.
export const ETHTOOL_MSG = {
  STRSET_GET: 1,
  STRSET_GET_REPLY: 1,
  FEATURES_GET: 11,
  FEATURES_GET_REPLY: 11,
  RINGS_GET: 15,
  RINGS_GET_REPLY: 16,
  CHANNELS_GET: 17,
  CHANNELS_GET_REPLY: 18,
  COALESCE_GET: 19,
  COALESCE_GET_REPLY: 20,
  PAUSE_GET: 21,
  PAUSE_GET_REPLY: 22,
  STATS_GET: 32,
  STATS_GET_REPLY: 33,
} as const;

// ETHTOOL_A_HEADER_*
const HDR_DEV_INDEX = 1;
const HDR_FLAGS = 3;
export const ETHTOOL_FLAG_COMPACT_BITSETS = 1;
export const ETHTOOL_FLAG_STATS = 4;

// String set ids (enum ethtool_stringset, include/uapi/linux/ethtool.h).
export const ETH_SS_FEATURES = 4;
export const ETH_SS_STATS_STD = 16;

// ---------------------------------------------------------------------------------------------------
// Records

export interface EthtoolRings {
  rxMax?: number;
  rxMiniMax?: number;
  rxJumboMax?: number;
  txMax?: number;
  rx?: number;
  rxMini?: number;
  rxJumbo?: number;
  tx?: number;
  rxBufLen?: number;
  cqeSize?: number;
}

/**
 * Interrupt coalescing (ethtool -c). Absent = the driver does not support that parameter (the kernel
 * only sends the attributes in the driver's supported_coalesce_params).
 */
export interface EthtoolCoalesce {
  rxUsecs?: number;
  rxFrames?: number;
  txUsecs?: number;
  txFrames?: number;
  adaptiveRx?: boolean;
  adaptiveTx?: boolean;
}

export interface EthtoolChannels {
  rxMax?: number;
  txMax?: number;
  otherMax?: number;
  combinedMax?: number;
  rx?: number;
  tx?: number;
  other?: number;
  combined?: number;
}

export interface FeatureState {
  /** In the ACTIVE list: on now. */
  active: boolean;
  /** In the WANTED list: requested by the user/driver default. */
  wanted: boolean;
  /** Cannot be changed: not in the HW (changeable) value, or in the NOCHANGE list. */
  fixed: boolean;
}
/** Feature name (kernel netdev_features_strings) → state. Only named bits in the HW mask are listed. */
export type EthtoolFeatures = Map<string, FeatureState>;

export interface EthtoolPause {
  autoneg?: boolean;
  rx?: boolean;
  tx?: boolean;
  /** Present only when the request asked for stats and the driver counts them. */
  txFrames?: number;
  rxFrames?: number;
}

export interface HistBucket {
  low: number;
  high: number;
  value: number;
}

export interface EthtoolStatGroup {
  /** ETHTOOL_STATS_* id: 0 eth-phy, 1 eth-mac, 2 eth-ctrl, 3 rmon, 4 phydev. */
  id: number;
  /** The string set holding this group's counter names. */
  ssId?: number;
  /** Counter index (in the string set) → value. */
  stats: Map<number, number>;
  histRx: HistBucket[];
  histTx: HistBucket[];
}

/** A string set: index → string. */
export type StringSet = Map<number, string>;

// ---------------------------------------------------------------------------------------------------
// Decoders (pure). `start` is the genl payload start (genlmsghdr included), `end` its end.

function attrsOf(buf: Buffer, start: number, end: number, where: string): Map<number, AttrSpan> {
  if (end - start < GENL_HDRLEN) throw new DecodeError(where, start, `payload of ${end - start} bytes is shorter than genlmsghdr`);
  return attrMap(buf, start + GENL_HDRLEN, end, where);
}

function checkCmd(buf: Buffer, start: number, want: number, where: string): void {
  const cmd = buf[start];
  if (cmd !== want) throw new DecodeError(where, start, `genl cmd ${cmd}, expected ${want}`);
}

const u32 = (buf: Buffer, a: Map<number, AttrSpan>, t: number, where: string) => attrU32(buf, a.get(t), `${where} attr ${t}`);
const bool8 = (buf: Buffer, a: Map<number, AttrSpan>, t: number, where: string) => {
  const v = attrU8(buf, a.get(t), `${where} attr ${t}`);
  return v === undefined ? undefined : v !== 0;
};

/** ETHTOOL_MSG_RINGS_GET_REPLY (16), docs/kernel-sources.md §5.2. */
export function decodeRings(buf: Buffer, start: number, end: number): EthtoolRings {
  const where = 'ethtool RINGS_GET_REPLY';
  checkCmd(buf, start, ETHTOOL_MSG.RINGS_GET_REPLY, where);
  const a = attrsOf(buf, start, end, where);
  return {
    rxMax: u32(buf, a, 2, where),
    rxMiniMax: u32(buf, a, 3, where),
    rxJumboMax: u32(buf, a, 4, where),
    txMax: u32(buf, a, 5, where),
    rx: u32(buf, a, 6, where),
    rxMini: u32(buf, a, 7, where),
    rxJumbo: u32(buf, a, 8, where),
    tx: u32(buf, a, 9, where),
    rxBufLen: u32(buf, a, 10, where),
    cqeSize: u32(buf, a, 12, where),
  };
}

/**
 * ETHTOOL_MSG_COALESCE_GET_REPLY (20). ETHTOOL_A_COALESCE_* follow struct ethtool_coalesce after the
 * header: RX_USECS 2, RX_MAX_FRAMES 3, (RX_*_IRQ 4-5), TX_USECS 6, TX_MAX_FRAMES 7, (TX_*_IRQ 8-9,
 * STATS_BLOCK_USECS 10), USE_ADAPTIVE_RX 11 and USE_ADAPTIVE_TX 12 (u8).
 */
export function decodeCoalesce(buf: Buffer, start: number, end: number): EthtoolCoalesce {
  const where = 'ethtool COALESCE_GET_REPLY';
  checkCmd(buf, start, ETHTOOL_MSG.COALESCE_GET_REPLY, where);
  const a = attrsOf(buf, start, end, where);
  return {
    rxUsecs: u32(buf, a, 2, where),
    rxFrames: u32(buf, a, 3, where),
    txUsecs: u32(buf, a, 6, where),
    txFrames: u32(buf, a, 7, where),
    adaptiveRx: bool8(buf, a, 11, where),
    adaptiveTx: bool8(buf, a, 12, where),
  };
}

/** ETHTOOL_MSG_CHANNELS_GET_REPLY (18), docs/kernel-sources.md §5.2. */
export function decodeChannels(buf: Buffer, start: number, end: number): EthtoolChannels {
  const where = 'ethtool CHANNELS_GET_REPLY';
  checkCmd(buf, start, ETHTOOL_MSG.CHANNELS_GET_REPLY, where);
  const a = attrsOf(buf, start, end, where);
  return {
    rxMax: u32(buf, a, 2, where),
    txMax: u32(buf, a, 3, where),
    otherMax: u32(buf, a, 4, where),
    combinedMax: u32(buf, a, 5, where),
    rx: u32(buf, a, 6, where),
    tx: u32(buf, a, 7, where),
    other: u32(buf, a, 8, where),
    combined: u32(buf, a, 9, where),
  };
}

/** ETHTOOL_MSG_PAUSE_GET_REPLY (22), docs/kernel-sources.md §5.2. */
export function decodePause(buf: Buffer, start: number, end: number): EthtoolPause {
  const where = 'ethtool PAUSE_GET_REPLY';
  checkCmd(buf, start, ETHTOOL_MSG.PAUSE_GET_REPLY, where);
  const a = attrsOf(buf, start, end, where);
  const out: EthtoolPause = { autoneg: bool8(buf, a, 2, where), rx: bool8(buf, a, 3, where), tx: bool8(buf, a, 4, where) };
  const st = a.get(5);
  if (st) {
    const s = attrMap(buf, st.off, st.off + st.len, `${where} STATS`);
    out.txFrames = attrU64(buf, s.get(2), `${where} STATS TX_FRAMES`);
    out.rxFrames = attrU64(buf, s.get(3), `${where} STATS RX_FRAMES`);
  }
  return out;
}

// Bitsets (ETHTOOL_A_BITSET_*), docs/kernel-sources.md §5.3.
const BITSET_NOMASK = 1;
const BITSET_SIZE = 2;
const BITSET_BITS = 3;
const BITSET_VALUE = 4;
const BITSET_MASK = 5;
const BITS_BIT = 1;
const BIT_INDEX = 1;
const BIT_NAME = 2;
const BIT_VALUE = 3;

export interface DecodedBitset {
  /** A list (NOMASK): only set bits are listed. */
  list: boolean;
  size?: number;
  /** Bits in the mask (for a list: the set bits), with their value and name where known. */
  bits: Map<number, { name?: string; value: boolean }>;
}

/**
 * Decode a bitset nest, verbose or compact. For compact sets, `names` (string set ETH_SS_FEATURES etc.)
 * supplies the names. Compact bitmaps are u32 words in host order, bit i in word i/32.
 */
export function decodeBitset(buf: Buffer, a: AttrSpan, where: string, names?: StringSet): DecodedBitset {
  const m = attrMap(buf, a.off, a.off + a.len, where);
  const list = m.has(BITSET_NOMASK);
  const size = attrU32(buf, m.get(BITSET_SIZE), `${where} SIZE`);
  const bits = new Map<number, { name?: string; value: boolean }>();
  const bitsAttr = m.get(BITSET_BITS);
  if (bitsAttr) {
    forEachAttr(buf, bitsAttr.off, bitsAttr.off + bitsAttr.len, `${where} BITS`, (t, off, len) => {
      if (t !== BITS_BIT) return;
      const b = attrMap(buf, off, off + len, `${where} BIT`);
      const index = attrU32(buf, b.get(BIT_INDEX), `${where} BIT INDEX`);
      if (index === undefined) throw new DecodeError(`${where} BIT`, off, 'bit without INDEX');
      bits.set(index, { name: attrString(buf, b.get(BIT_NAME)), value: list ? true : b.has(BIT_VALUE) });
    });
    return { list, size, bits };
  }
  const value = m.get(BITSET_VALUE);
  if (!value) return { list, size, bits };
  if (size === undefined) throw new DecodeError(where, a.off, 'compact bitset without SIZE');
  const words = Math.ceil(size / 32);
  if (value.len < words * 4) throw new DecodeError(`${where} VALUE`, value.off, `${value.len} bytes for ${size} bits`);
  const mask = m.get(BITSET_MASK);
  if (!list && (!mask || mask.len < words * 4)) throw new DecodeError(`${where} MASK`, a.off, `missing or short mask for ${size} bits`);
  for (let i = 0; i < size; i++) {
    const w = i >>> 5;
    const bit = 1 << (i & 31);
    const v = (buf.readUInt32LE(value.off + w * 4) & bit) !== 0;
    const inMask = list ? v : (buf.readUInt32LE(mask!.off + w * 4) & bit) !== 0;
    if (inMask) bits.set(i, { name: names?.get(i), value: v });
  }
  return { list, size, bits };
}

/** ETHTOOL_MSG_FEATURES_GET_REPLY (11), docs/kernel-sources.md §5.3. `names` is needed only for compact replies. */
export function decodeFeatures(buf: Buffer, start: number, end: number, names?: StringSet): EthtoolFeatures {
  const where = 'ethtool FEATURES_GET_REPLY';
  checkCmd(buf, start, ETHTOOL_MSG.FEATURES_GET_REPLY, where);
  const a = attrsOf(buf, start, end, where);
  const get = (t: number, what: string) => {
    const s = a.get(t);
    if (!s) throw new DecodeError(where, start, `no ${what} bitset`);
    return decodeBitset(buf, s, `${where} ${what}`, names);
  };
  const hw = get(2, 'HW');
  const wanted = get(3, 'WANTED');
  const active = get(4, 'ACTIVE');
  const nochange = get(5, 'NOCHANGE');
  const out: EthtoolFeatures = new Map();
  for (const [index, b] of hw.bits) {
    const name = b.name ?? names?.get(index);
    if (!name) continue; // unnamed (reserved) bit
    out.set(name, {
      active: active.bits.get(index)?.value === true,
      wanted: wanted.bits.get(index)?.value === true,
      fixed: !b.value || nochange.bits.get(index)?.value === true,
    });
  }
  return out;
}

/** ETHTOOL_MSG_STATS_GET_REPLY (33), docs/kernel-sources.md §5.4. */
export function decodeStats(buf: Buffer, start: number, end: number): EthtoolStatGroup[] {
  const where = 'ethtool STATS_GET_REPLY';
  checkCmd(buf, start, ETHTOOL_MSG.STATS_GET_REPLY, where);
  if (end - start < GENL_HDRLEN) throw new DecodeError(where, start, 'short payload');
  const groups: EthtoolStatGroup[] = [];
  forEachAttr(buf, start + GENL_HDRLEN, end, where, (t, off, len) => {
    if (t !== 4) return; // ETHTOOL_A_STATS_GRP
    const gw = `${where} GRP`;
    const g: EthtoolStatGroup = { id: -1, stats: new Map(), histRx: [], histTx: [] };
    forEachAttr(buf, off, off + len, gw, (gt, goff, glen) => {
      switch (gt) {
        case 2:
          g.id = attrU32(buf, { off: goff, len: glen }, `${gw} ID`)!;
          break;
        case 3:
          g.ssId = attrU32(buf, { off: goff, len: glen }, `${gw} SS_ID`);
          break;
        case 4: {
          // One counter per STAT nest: a single u64 attribute whose type is the counter index (from 0).
          forEachAttr(buf, goff, goff + glen, `${gw} STAT`, (st, soff, slen) => {
            if (slen !== 8) throw new DecodeError(`${gw} STAT ${st}`, soff, `counter of ${slen} bytes (want 8)`);
            g.stats.set(st, attrU64(buf, { off: soff, len: slen }, `${gw} STAT ${st}`)!);
          });
          break;
        }
        case 5:
        case 6: {
          const h = attrMap(buf, goff, goff + glen, `${gw} HIST`);
          const low = attrU32(buf, h.get(7), `${gw} HIST BKT_LOW`);
          const high = attrU32(buf, h.get(8), `${gw} HIST BKT_HI`);
          const value = attrU64(buf, h.get(9), `${gw} HIST VAL`);
          if (low === undefined || high === undefined || value === undefined) throw new DecodeError(`${gw} HIST`, goff, 'bucket without LOW/HI/VAL');
          (gt === 5 ? g.histRx : g.histTx).push({ low, high, value });
          break;
        }
        default:
          break; // GRP_PAD and future attributes
      }
    });
    if (g.id < 0) throw new DecodeError(gw, off, 'group without ID');
    groups.push(g);
  });
  return groups;
}

/** ETHTOOL_MSG_STRSET_GET_REPLY (1): string set id → strings. */
export function decodeStrsets(buf: Buffer, start: number, end: number): Map<number, StringSet> {
  const where = 'ethtool STRSET_GET_REPLY';
  checkCmd(buf, start, ETHTOOL_MSG.STRSET_GET_REPLY, where);
  const a = attrsOf(buf, start, end, where);
  const out = new Map<number, StringSet>();
  const sets = a.get(2);
  if (!sets) return out;
  forEachAttr(buf, sets.off, sets.off + sets.len, `${where} STRINGSETS`, (t, off, len) => {
    if (t !== 1) return;
    const s = attrMap(buf, off, off + len, `${where} STRINGSET`);
    const id = attrU32(buf, s.get(1), `${where} STRINGSET ID`);
    if (id === undefined) throw new DecodeError(`${where} STRINGSET`, off, 'no ID');
    const strings: StringSet = new Map();
    const ss = s.get(3);
    if (ss) {
      forEachAttr(buf, ss.off, ss.off + ss.len, `${where} STRINGS`, (st, soff, slen) => {
        if (st !== 1) return;
        const e = attrMap(buf, soff, soff + slen, `${where} STRING`);
        const index = attrU32(buf, e.get(1), `${where} STRING INDEX`);
        if (index === undefined) throw new DecodeError(`${where} STRING`, soff, 'no INDEX');
        strings.set(index, attrString(buf, e.get(2)) ?? '');
      });
    }
    out.set(id, strings);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Requests (pure builders)

function header(type: number, ifindex: number | undefined, flags: number): Buffer {
  const parts: Buffer[] = [];
  if (ifindex !== undefined) parts.push(attrU32Of(HDR_DEV_INDEX, ifindex));
  if (flags) parts.push(attrU32Of(HDR_FLAGS, flags));
  return nest(type, ...parts);
}

export function ringsRequest(ifindex: number): Buffer {
  return genlBody(ETHTOOL_MSG.RINGS_GET, ETHTOOL_GENL_VERSION, header(1, ifindex, 0));
}
export function channelsRequest(ifindex: number): Buffer {
  return genlBody(ETHTOOL_MSG.CHANNELS_GET, ETHTOOL_GENL_VERSION, header(1, ifindex, 0));
}
export function coalesceRequest(ifindex: number): Buffer {
  return genlBody(ETHTOOL_MSG.COALESCE_GET, ETHTOOL_GENL_VERSION, header(1, ifindex, 0));
}
export function featuresRequest(ifindex: number): Buffer {
  return genlBody(ETHTOOL_MSG.FEATURES_GET, ETHTOOL_GENL_VERSION, header(1, ifindex, 0));
}
export function pauseRequest(ifindex: number): Buffer {
  return genlBody(ETHTOOL_MSG.PAUSE_GET, ETHTOOL_GENL_VERSION, header(1, ifindex, ETHTOOL_FLAG_STATS));
}
/** STATS_GET: header is attribute 2; GROUPS (3) is a verbose NOMASK bitset naming the groups. */
export function statsRequest(ifindex: number, groups: readonly string[]): Buffer {
  const bits = groups.map((g) => nest(BITS_BIT, attrStringOf(BIT_NAME, g)));
  return genlBody(
    ETHTOOL_MSG.STATS_GET,
    ETHTOOL_GENL_VERSION,
    header(2, ifindex, 0),
    nest(3, attrFlagOf(BITSET_NOMASK), nest(BITSET_BITS, ...bits)),
  );
}
/** STRSET_GET for global sets: an (empty) header is still required. */
export function strsetRequest(ids: readonly number[]): Buffer {
  return genlBody(
    ETHTOOL_MSG.STRSET_GET,
    ETHTOOL_GENL_VERSION,
    header(1, undefined, 0),
    nest(2, ...ids.map((id) => nest(1, attrU32Of(1, id)))),
  );
}

// ---------------------------------------------------------------------------------------------------
// Client (I/O edge)

export interface EthtoolClientOptions {
  /**
   * How long a device's configuration replies (rings, channels, coalescing, features) are reused, in ms; 0 = ask the
   * kernel every time. Only successful replies are kept; pause and standard stats (counters) are never
   * cached.
   */
  configTtlMs?: number;
  now?: () => number;
}

export class EthtoolClient {
  private readonly genl: GenlClient;
  private stdGroups: Promise<string[]> | null = null;
  private readonly strsets = new Map<number, StringSet>();
  private readonly configTtlMs: number;
  private readonly now: () => number;
  /** `${what}/${ifindex}` → reply and when it was received. */
  private readonly config = new Map<string, { at: number; value: unknown }>();

  constructor(genl?: GenlClient, opts: EthtoolClientOptions = {}) {
    this.genl = genl ?? new GenlClient(ETHTOOL_GENL_NAME);
    this.configTtlMs = opts.configTtlMs ?? 0;
    this.now = opts.now ?? Date.now;
  }

  private cachedConfig<T>(what: string, ifindex: number, ask: () => Promise<T>): Promise<T> {
    if (this.configTtlMs <= 0) return ask();
    const now = this.now();
    const key = `${what}/${ifindex}`;
    const hit = this.config.get(key);
    if (hit && now - hit.at < this.configTtlMs) return Promise.resolve(hit.value as T);
    // A miss: drop every expired entry too (devices that went away), so the map stays at the live devices.
    for (const [k, e] of this.config) if (now - e.at >= this.configTtlMs) this.config.delete(k);
    return ask().then((value) => {
      this.config.set(key, { at: now, value });
      return value;
    });
  }

  private async one<T>(body: Buffer, what: string, decode: (buf: Buffer, start: number, end: number) => T): Promise<T> {
    const fam = await this.genl.familyId();
    let out: T | undefined;
    await this.genl.sock.request(body, fam.id, 0, {
      context: `ethtool ${what}`,
      onMessage: (m) => {
        out = decode(m.buf, m.start, m.end);
      },
    });
    if (out === undefined) throw new Error(`ethtool ${what}: no reply message`);
    return out;
  }

  rings(ifindex: number, dev = String(ifindex)): Promise<EthtoolRings> {
    return this.cachedConfig('rings', ifindex, () => this.one(ringsRequest(ifindex), `RINGS_GET ${dev}`, decodeRings));
  }
  channels(ifindex: number, dev = String(ifindex)): Promise<EthtoolChannels> {
    return this.cachedConfig('channels', ifindex, () => this.one(channelsRequest(ifindex), `CHANNELS_GET ${dev}`, decodeChannels));
  }
  coalesce(ifindex: number, dev = String(ifindex)): Promise<EthtoolCoalesce> {
    return this.cachedConfig('coalesce', ifindex, () => this.one(coalesceRequest(ifindex), `COALESCE_GET ${dev}`, decodeCoalesce));
  }
  features(ifindex: number, dev = String(ifindex)): Promise<EthtoolFeatures> {
    return this.cachedConfig('features', ifindex, () => this.one(featuresRequest(ifindex), `FEATURES_GET ${dev}`, (b, s, e) => decodeFeatures(b, s, e)));
  }
  pause(ifindex: number, dev = String(ifindex)): Promise<EthtoolPause> {
    return this.one(pauseRequest(ifindex), `PAUSE_GET ${dev}`, decodePause);
  }

  /** Global string sets, cached (they only change with the kernel). */
  async stringSets(ids: readonly number[]): Promise<Map<number, StringSet>> {
    const missing = ids.filter((i) => !this.strsets.has(i));
    if (missing.length) {
      const got = await this.one(strsetRequest(missing), `STRSET_GET ${missing.join(',')}`, decodeStrsets);
      for (const [id, s] of got) this.strsets.set(id, s);
      for (const id of missing) if (!this.strsets.has(id)) this.strsets.set(id, new Map());
    }
    return new Map(ids.map((i) => [i, this.strsets.get(i)!]));
  }

  /** Names of the standard stats groups this kernel knows (string set ETH_SS_STATS_STD). */
  standardGroups(): Promise<string[]> {
    if (!this.stdGroups) {
      this.stdGroups = this.stringSets([ETH_SS_STATS_STD]).then((m) => [...(m.get(ETH_SS_STATS_STD) ?? new Map()).entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]));
      this.stdGroups.catch(() => {
        this.stdGroups = null;
      });
    }
    return this.stdGroups;
  }

  /** Every standard group, with its counter names resolved. */
  async stats(ifindex: number, dev = String(ifindex)): Promise<Array<EthtoolStatGroup & { group: string; names: StringSet }>> {
    const groups = await this.standardGroups();
    if (groups.length === 0) return [];
    const raw = await this.one(statsRequest(ifindex, groups), `STATS_GET ${dev}`, decodeStats);
    const ssIds = [...new Set(raw.map((g) => g.ssId).filter((x): x is number => x !== undefined))];
    const sets = ssIds.length ? await this.stringSets(ssIds) : new Map<number, StringSet>();
    return raw.map((g) => ({ ...g, group: groups[g.id] ?? `group${g.id}`, names: (g.ssId !== undefined && sets.get(g.ssId)) || new Map() }));
  }

  close(): void {
    this.genl.close();
  }
}
