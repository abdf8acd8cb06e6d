// The Open vSwitch kernel datapath over generic netlink: families "ovs_datapath" and "ovs_vport".
// Layouts: include/uapi/linux/openvswitch.h; docs/kernel-sources.md §7.1. GET commands are allowed for
// unprivileged users (net/openvswitch/datapath.c, genl ops without GENL_ADMIN_PERM).
//
// Rules enforced here:
// - Never trigger a module load: nothing is sent unless <sysfs>/module/openvswitch exists, and family ids
//   come from a dump of the family table (listFamilies), never from a lookup by name (which can
//   request_module() openvswitch.ko).
// - Every message is genlmsghdr (4) + struct ovs_header { s32 dp_ifindex } (4) + attributes.
// - The vport dump needs the datapath's ifindex in ovs_header (0 gives ENODEV).
// - OVS_VPORT_ATTR_UPCALL_STATS children are numbered from 0 (SUCCESS = 0, FAIL = 1).
// - u64 values are read at any offset; PAD attributes are skipped.

import { promises as fsp } from 'fs';
import { under } from '../../core/paths';
import {
  DecodeError,
  GENL_HDRLEN,
  attrMap,
  attrS32,
  attrString,
  attrU32,
  forEachAttr,
  genlBody,
  u64,
  type AttrSpan,
} from './attrs';
import { listFamilies } from './genl';
import type { NetlinkSocket } from './socket';
import type { DatapathCounters } from '../ovs/parse-dpctl';

export const OVS_DATAPATH_FAMILY = 'ovs_datapath';
export const OVS_VPORT_FAMILY = 'ovs_vport';
export const OVS_DATAPATH_VERSION = 2;
export const OVS_VPORT_VERSION = 1;
export const OVS_HEADER_LEN = 4;

// enum ovs_datapath_cmd / ovs_vport_cmd
export const OVS_DP_CMD_GET = 3;
export const OVS_VPORT_CMD_GET = 3;

// enum ovs_datapath_attr
export const OVS_DP_ATTR_NAME = 1;
export const OVS_DP_ATTR_UPCALL_PID = 2;
export const OVS_DP_ATTR_STATS = 3; // struct ovs_dp_stats
export const OVS_DP_ATTR_MEGAFLOW_STATS = 4; // struct ovs_dp_megaflow_stats
export const OVS_DP_ATTR_USER_FEATURES = 5;
export const OVS_DP_ATTR_PAD = 6;
export const OVS_DP_ATTR_MASKS_CACHE_SIZE = 7; // Linux 5.9+, same release as n_cache_hit
export const OVS_DP_ATTR_PER_CPU_PIDS = 8;
export const OVS_DP_ATTR_IFINDEX = 9;

// enum ovs_vport_attr
export const OVS_VPORT_ATTR_PORT_NO = 1;
export const OVS_VPORT_ATTR_TYPE = 2;
export const OVS_VPORT_ATTR_NAME = 3;
export const OVS_VPORT_ATTR_OPTIONS = 4;
export const OVS_VPORT_ATTR_UPCALL_PID = 5;
export const OVS_VPORT_ATTR_STATS = 6; // struct ovs_vport_stats
export const OVS_VPORT_ATTR_PAD = 7;
export const OVS_VPORT_ATTR_IFINDEX = 8;
export const OVS_VPORT_ATTR_NETNSID = 9;
export const OVS_VPORT_ATTR_UPCALL_STATS = 10; // nest, Linux 6.2+

// enum ovs_vport_upcall_attr: numbered from 0.
export const OVS_VPORT_UPCALL_ATTR_SUCCESS = 0;
export const OVS_VPORT_UPCALL_ATTR_FAIL = 1;

/** struct ovs_dp_stats: 4 x u64. */
export const OVS_DP_STATS_LEN = 32;
/** struct ovs_dp_megaflow_stats: u64 n_mask_hit, u32 n_masks, u32 pad0, u64 n_cache_hit, u64 pad1. */
export const OVS_DP_MEGAFLOW_STATS_LEN = 32;
/** struct ovs_vport_stats: 8 x u64. */
export const OVS_VPORT_STATS_LEN = 64;

/**
 * enum ovs_vport_type -> the names OVS itself uses for them (dpif-netlink's get_vport_type()), so the
 * kernel and unixctl sources label ports alike ("system" for OVS_VPORT_TYPE_NETDEV).
 */
export const OVS_VPORT_TYPES: Readonly<Record<number, string>> = {
  1: 'system',
  2: 'internal',
  3: 'gre',
  4: 'vxlan',
  5: 'geneve',
  107: 'erspan',
  108: 'ip6erspan',
  109: 'ip6gre',
  110: 'gtpu',
  111: 'bareudp',
  112: 'srv6',
};

/** Counters from struct ovs_dp_stats and struct ovs_dp_megaflow_stats; cacheHit only when the kernel has
 * the per-CPU masks cache (OVS_DP_ATTR_MASKS_CACHE_SIZE present, 5.9+). */
export interface KernelDatapath extends DatapathCounters {
  /** From ovs_header.dp_ifindex of the reply: the ifindex of the datapath's own internal device. */
  ifindex: number;
  /** OVS_DP_ATTR_NAME, e.g. "ovs-system". OVS prints the datapath as "system@<name>". */
  name: string;
  masksCacheSize?: number;
  userFeatures?: number;
}

export interface KernelVportStats {
  rxPackets: number;
  txPackets: number;
  rxBytes: number;
  txBytes: number;
  rxErrors: number;
  txErrors: number;
  rxDropped: number;
  txDropped: number;
}

export interface KernelVport {
  dpIfindex: number;
  portNo?: number;
  /** Numeric OVS_VPORT_ATTR_TYPE and its OVS name ("type<N>" when unknown). */
  typeId?: number;
  type: string;
  name?: string;
  ifindex?: number;
  netnsid?: number;
  stats?: KernelVportStats;
  upcallSuccess?: number;
  upcallFail?: number;
}

function fixedStruct(buf: Buffer, a: AttrSpan | undefined, len: number, where: string): number | undefined {
  if (!a) return undefined;
  if (a.len < len) throw new DecodeError(where, a.off, `struct has ${a.len} bytes, want ${len}`);
  return a.off;
}

/**
 * Decode one OVS_DP_CMD_GET reply. `start` is the offset of the genl header (the netlink payload),
 * `end` the end of the message.
 */
export function decodeOvsDatapath(buf: Buffer, start: number, end: number): KernelDatapath {
  const hdr = start + GENL_HDRLEN;
  if (end - hdr < OVS_HEADER_LEN) throw new DecodeError('ovs_datapath reply', start, 'shorter than genl + ovs_header');
  const ifindex = buf.readInt32LE(hdr);
  const a = attrMap(buf, hdr + OVS_HEADER_LEN, end, 'ovs_datapath reply');
  const name = attrString(buf, a.get(OVS_DP_ATTR_NAME));
  if (name === undefined) throw new DecodeError('ovs_datapath reply', hdr, 'no OVS_DP_ATTR_NAME');
  const dp: KernelDatapath = { ifindex, name };
  const st = fixedStruct(buf, a.get(OVS_DP_ATTR_STATS), OVS_DP_STATS_LEN, 'OVS_DP_ATTR_STATS');
  if (st !== undefined) {
    dp.hit = u64(buf, st);
    dp.missed = u64(buf, st + 8);
    dp.lost = u64(buf, st + 16);
    dp.flows = u64(buf, st + 24);
  }
  const cacheSize = attrU32(buf, a.get(OVS_DP_ATTR_MASKS_CACHE_SIZE), 'OVS_DP_ATTR_MASKS_CACHE_SIZE');
  if (cacheSize !== undefined) dp.masksCacheSize = cacheSize;
  const mf = fixedStruct(buf, a.get(OVS_DP_ATTR_MEGAFLOW_STATS), OVS_DP_MEGAFLOW_STATS_LEN, 'OVS_DP_ATTR_MEGAFLOW_STATS');
  if (mf !== undefined) {
    dp.maskHit = u64(buf, mf);
    dp.masks = buf.readUInt32LE(mf + 8);
    // Before 5.9 the n_cache_hit slot was padding (always 0): trust it only with the masks cache present.
    if (cacheSize !== undefined) dp.cacheHit = u64(buf, mf + 16);
  }
  const feat = attrU32(buf, a.get(OVS_DP_ATTR_USER_FEATURES), 'OVS_DP_ATTR_USER_FEATURES');
  if (feat !== undefined) dp.userFeatures = feat;
  return dp;
}

/** Decode one OVS_VPORT_CMD_GET reply (offsets as for decodeOvsDatapath). */
export function decodeOvsVport(buf: Buffer, start: number, end: number): KernelVport {
  const hdr = start + GENL_HDRLEN;
  if (end - hdr < OVS_HEADER_LEN) throw new DecodeError('ovs_vport reply', start, 'shorter than genl + ovs_header');
  const dpIfindex = buf.readInt32LE(hdr);
  const a = attrMap(buf, hdr + OVS_HEADER_LEN, end, 'ovs_vport reply');
  const typeId = attrU32(buf, a.get(OVS_VPORT_ATTR_TYPE), 'OVS_VPORT_ATTR_TYPE');
  const v: KernelVport = {
    dpIfindex,
    portNo: attrU32(buf, a.get(OVS_VPORT_ATTR_PORT_NO), 'OVS_VPORT_ATTR_PORT_NO'),
    typeId,
    type: typeId === undefined ? 'unknown' : (OVS_VPORT_TYPES[typeId] ?? `type${typeId}`),
    name: attrString(buf, a.get(OVS_VPORT_ATTR_NAME)),
    ifindex: attrS32(buf, a.get(OVS_VPORT_ATTR_IFINDEX), 'OVS_VPORT_ATTR_IFINDEX'),
    netnsid: attrS32(buf, a.get(OVS_VPORT_ATTR_NETNSID), 'OVS_VPORT_ATTR_NETNSID'),
  };
  const st = fixedStruct(buf, a.get(OVS_VPORT_ATTR_STATS), OVS_VPORT_STATS_LEN, 'OVS_VPORT_ATTR_STATS');
  if (st !== undefined) {
    v.stats = {
      rxPackets: u64(buf, st),
      txPackets: u64(buf, st + 8),
      rxBytes: u64(buf, st + 16),
      txBytes: u64(buf, st + 24),
      rxErrors: u64(buf, st + 32),
      txErrors: u64(buf, st + 40),
      rxDropped: u64(buf, st + 48),
      txDropped: u64(buf, st + 56),
    };
  }
  const up = a.get(OVS_VPORT_ATTR_UPCALL_STATS);
  if (up) {
    // Children start at type 0: forEachAttr passes type 0 through.
    forEachAttr(buf, up.off, up.off + up.len, 'OVS_VPORT_ATTR_UPCALL_STATS', (type, off, len) => {
      if (type !== OVS_VPORT_UPCALL_ATTR_SUCCESS && type !== OVS_VPORT_UPCALL_ATTR_FAIL) return;
      if (len < 8) throw new DecodeError('OVS_VPORT_ATTR_UPCALL_STATS', off, `child ${type} has ${len} bytes, want 8`);
      if (type === OVS_VPORT_UPCALL_ATTR_SUCCESS) v.upcallSuccess = u64(buf, off);
      else v.upcallFail = u64(buf, off);
    });
  }
  return v;
}

/** struct ovs_header { int dp_ifindex; } */
export function ovsHeader(dpIfindex: number): Buffer {
  const b = Buffer.alloc(OVS_HEADER_LEN);
  b.writeInt32LE(dpIfindex, 0);
  return b;
}

/** Request bodies (genl header + ovs_header); sent with NLM_F_DUMP. */
export const dpDumpRequest = () => genlBody(OVS_DP_CMD_GET, OVS_DATAPATH_VERSION, ovsHeader(0));
export const vportDumpRequest = (dpIfindex: number) => genlBody(OVS_VPORT_CMD_GET, OVS_VPORT_VERSION, ovsHeader(dpIfindex));

export interface KernelOvsState {
  datapaths: Array<KernelDatapath & { vports: KernelVport[] }>;
  /** A dump reported NLM_F_DUMP_INTR (raced with a change); values are still per-message consistent. */
  interrupted: boolean;
}

/** Is openvswitch.ko loaded? Checked before any netlink request (no module autoload). */
export async function ovsModuleLoaded(sysfs: string): Promise<boolean> {
  try {
    await fsp.stat(under(sysfs, 'module', 'openvswitch'));
    return true;
  } catch {
    return false;
  }
}

/** The part of NetlinkSocket used here (tests pass a replaying fake). */
export type GenlRequester = Pick<NetlinkSocket, 'request'>;

/**
 * Read every kernel datapath and its vports. Returns null when the module is not loaded or the families
 * are not registered (then nothing but the family-table dump was sent, and only if the module is loaded).
 */
export async function readKernelOvs(sock: GenlRequester, sysfs: string, timeoutMs?: number): Promise<KernelOvsState | null> {
  if (!(await ovsModuleLoaded(sysfs))) return null;
  const families = await listFamilies(sock as NetlinkSocket);
  const dpId = families.get(OVS_DATAPATH_FAMILY);
  const vpId = families.get(OVS_VPORT_FAMILY);
  if (dpId === undefined || vpId === undefined) return null;
  const state: KernelOvsState = { datapaths: [], interrupted: false };
  const r = await sock.request(dpDumpRequest(), dpId, 0, {
    dump: true,
    context: 'ovs_datapath dump',
    timeoutMs,
    onMessage: (m) => state.datapaths.push({ ...decodeOvsDatapath(m.buf, m.start, m.end), vports: [] }),
  });
  state.interrupted ||= r.interrupted;
  for (const dp of state.datapaths) {
    const rv = await sock.request(vportDumpRequest(dp.ifindex), vpId, 0, {
      dump: true,
      context: `ovs_vport dump of ${dp.name} (dp_ifindex ${dp.ifindex})`,
      timeoutMs,
      onMessage: (m) => dp.vports.push(decodeOvsVport(m.buf, m.start, m.end)),
    });
    state.interrupted ||= rv.interrupted;
  }
  return state;
}
