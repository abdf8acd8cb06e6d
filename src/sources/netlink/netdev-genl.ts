// The "netdev" generic netlink family (version 1): per-queue statistics (QSTATS_GET, 6.9+), queues and
// NAPI instances (QUEUE_GET / NAPI_GET: which NAPI, hence which IRQ, serves a queue).
// docs/kernel-sources.md §5.6. Layout: include/uapi/linux/netdev.h (generated from Documentation/netlink/specs/netdev.yaml).
//
// Trap (docs/kernel-sources.md §1.1): qstats counters are YNL "uint", 4 or 8 bytes depending on the value: decode by length.
// All three commands are dumps; a dump filtered by ifindex still ends with NLMSG_DONE.

import { AttrSpan, DecodeError, GENL_HDRLEN, attrMap, attrU32, attrU32Of, attrUint, forEachAttr, genlBody } from './attrs';
import { GenlClient } from './genl';

export const NETDEV_GENL_NAME = 'netdev';
export const NETDEV_GENL_VERSION = 1;

export const NETDEV_CMD_QUEUE_GET = 10;
export const NETDEV_CMD_NAPI_GET = 11;
export const NETDEV_CMD_QSTATS_GET = 12;

const QSTATS_IFINDEX = 1;
const QSTATS_QUEUE_TYPE = 2;
const QSTATS_QUEUE_ID = 3;
const QSTATS_SCOPE = 4;
const NETDEV_QSTATS_SCOPE_QUEUE = 1;

const QUEUE_ID = 1;
const QUEUE_IFINDEX = 2;
const QUEUE_TYPE = 3;
const QUEUE_NAPI_ID = 4;

const NAPI_IFINDEX = 1;
const NAPI_ID = 2;
const NAPI_IRQ = 3;
const NAPI_PID = 4;

export type QueueType = 'rx' | 'tx';
const queueType = (v: number | undefined, where: string, off: number): QueueType => {
  if (v === 0) return 'rx';
  if (v === 1) return 'tx';
  throw new DecodeError(where, off, `unknown queue type ${v}`);
};

/** Counter attributes of NETDEV_A_QSTATS_* (ids 8..34), in the kernel's own (YNL spec) names. */
export const QSTATS_COUNTERS: ReadonlyArray<readonly [id: number, name: string]> = [
  [8, 'rx-packets'],
  [9, 'rx-bytes'],
  [10, 'tx-packets'],
  [11, 'tx-bytes'],
  [12, 'rx-alloc-fail'],
  [13, 'rx-hw-drops'],
  [14, 'rx-hw-drop-overruns'],
  [15, 'rx-csum-complete'],
  [16, 'rx-csum-unnecessary'],
  [17, 'rx-csum-none'],
  [18, 'rx-csum-bad'],
  [19, 'rx-hw-gro-packets'],
  [20, 'rx-hw-gro-bytes'],
  [21, 'rx-hw-gro-wire-packets'],
  [22, 'rx-hw-gro-wire-bytes'],
  [23, 'rx-hw-drop-ratelimits'],
  [24, 'tx-hw-drops'],
  [25, 'tx-hw-drop-errors'],
  [26, 'tx-csum-none'],
  [27, 'tx-needs-csum'],
  [28, 'tx-hw-gso-packets'],
  [29, 'tx-hw-gso-bytes'],
  [30, 'tx-hw-gso-wire-packets'],
  [31, 'tx-hw-gso-wire-bytes'],
  [32, 'tx-hw-drop-ratelimits'],
  [33, 'tx-stop'],
  [34, 'tx-wake'],
];
const COUNTER_NAME = new Map(QSTATS_COUNTERS);

export interface QueueStats {
  ifindex: number;
  /** Present with scope=queue; absent in per-device totals. */
  queueType?: QueueType;
  queueId?: number;
  /** Counter name (see QSTATS_COUNTERS) → value. Only counters the driver reports. */
  counters: Map<string, number>;
}

export interface QueueInfo {
  ifindex: number;
  id: number;
  type: QueueType;
  napiId?: number;
}

export interface NapiInfo {
  ifindex: number;
  id: number;
  irq?: number;
  /** PID of the threaded-NAPI kthread, when threaded NAPI is on. */
  pid?: number;
}

function attrsOf(buf: Buffer, start: number, end: number, cmd: number, where: string): Map<number, AttrSpan> {
  if (end - start < GENL_HDRLEN) throw new DecodeError(where, start, `payload of ${end - start} bytes is shorter than genlmsghdr`);
  if (buf[start] !== cmd) throw new DecodeError(where, start, `genl cmd ${buf[start]}, expected ${cmd}`);
  return attrMap(buf, start + GENL_HDRLEN, end, where);
}

/** One QSTATS_GET reply message. Pure. */
export function decodeQstats(buf: Buffer, start: number, end: number): QueueStats {
  const where = 'netdev QSTATS_GET reply';
  if (end - start < GENL_HDRLEN) throw new DecodeError(where, start, 'short payload');
  if (buf[start] !== NETDEV_CMD_QSTATS_GET) throw new DecodeError(where, start, `genl cmd ${buf[start]}, expected ${NETDEV_CMD_QSTATS_GET}`);
  const counters = new Map<string, number>();
  let ifindex: number | undefined;
  let qt: number | undefined;
  let qtOff = start;
  let qid: number | undefined;
  forEachAttr(buf, start + GENL_HDRLEN, end, where, (t, off, len) => {
    const span = { off, len };
    if (t === QSTATS_IFINDEX) ifindex = attrU32(buf, span, `${where} IFINDEX`);
    else if (t === QSTATS_QUEUE_TYPE) {
      qt = attrU32(buf, span, `${where} QUEUE_TYPE`);
      qtOff = off;
    } else if (t === QSTATS_QUEUE_ID) qid = attrU32(buf, span, `${where} QUEUE_ID`);
    else {
      const name = COUNTER_NAME.get(t);
      if (name) counters.set(name, attrUint(buf, span, `${where} ${name}`)!);
      // unknown (newer) counters are skipped: they have no declared metric
    }
  });
  if (ifindex === undefined) throw new DecodeError(where, start, 'no IFINDEX');
  return {
    ifindex,
    queueType: qt === undefined ? undefined : queueType(qt, `${where} QUEUE_TYPE`, qtOff),
    queueId: qid,
    counters,
  };
}

/** One QUEUE_GET reply message. Pure. */
export function decodeQueue(buf: Buffer, start: number, end: number): QueueInfo {
  const where = 'netdev QUEUE_GET reply';
  const a = attrsOf(buf, start, end, NETDEV_CMD_QUEUE_GET, where);
  const id = attrU32(buf, a.get(QUEUE_ID), `${where} ID`);
  const ifindex = attrU32(buf, a.get(QUEUE_IFINDEX), `${where} IFINDEX`);
  const type = attrU32(buf, a.get(QUEUE_TYPE), `${where} TYPE`);
  if (id === undefined || ifindex === undefined || type === undefined) throw new DecodeError(where, start, 'queue without ID/IFINDEX/TYPE');
  return { ifindex, id, type: queueType(type, `${where} TYPE`, a.get(QUEUE_TYPE)!.off), napiId: attrU32(buf, a.get(QUEUE_NAPI_ID), `${where} NAPI_ID`) };
}

/** One NAPI_GET reply message. Pure. */
export function decodeNapi(buf: Buffer, start: number, end: number): NapiInfo {
  const where = 'netdev NAPI_GET reply';
  const a = attrsOf(buf, start, end, NETDEV_CMD_NAPI_GET, where);
  const id = attrU32(buf, a.get(NAPI_ID), `${where} ID`);
  const ifindex = attrU32(buf, a.get(NAPI_IFINDEX), `${where} IFINDEX`);
  if (id === undefined || ifindex === undefined) throw new DecodeError(where, start, 'NAPI without ID/IFINDEX');
  return { ifindex, id, irq: attrU32(buf, a.get(NAPI_IRQ), `${where} IRQ`), pid: attrU32(buf, a.get(NAPI_PID), `${where} PID`) };
}

export function qstatsRequest(ifindex: number, perQueue: boolean): Buffer {
  const parts = [attrU32Of(QSTATS_IFINDEX, ifindex)];
  if (perQueue) parts.push(attrU32Of(QSTATS_SCOPE, NETDEV_QSTATS_SCOPE_QUEUE));
  return genlBody(NETDEV_CMD_QSTATS_GET, NETDEV_GENL_VERSION, ...parts);
}
export const queueRequest = (ifindex: number) => genlBody(NETDEV_CMD_QUEUE_GET, NETDEV_GENL_VERSION, attrU32Of(QUEUE_IFINDEX, ifindex));
export const napiRequest = (ifindex: number) => genlBody(NETDEV_CMD_NAPI_GET, NETDEV_GENL_VERSION, attrU32Of(NAPI_IFINDEX, ifindex));

export class NetdevGenlClient {
  readonly genl: GenlClient;
  constructor(genl?: GenlClient) {
    this.genl = genl ?? new GenlClient(NETDEV_GENL_NAME);
  }

  private async dump<T>(body: Buffer, what: string, decode: (b: Buffer, s: number, e: number) => T, ifindex: number, idOf: (t: T) => number): Promise<T[]> {
    const fam = await this.genl.familyId();
    const out: T[] = [];
    await this.genl.sock.request(body, fam.id, 0, {
      dump: true,
      context: `netdev ${what}`,
      onMessage: (m) => {
        const r = decode(m.buf, m.start, m.end);
        if (idOf(r) === ifindex) out.push(r); // a filtered dump only returns this device; keep the guard anyway
      },
    });
    return out;
  }

  /** Per-queue statistics of one device (rx and tx queues). */
  qstats(ifindex: number, dev = String(ifindex)): Promise<QueueStats[]> {
    return this.dump(qstatsRequest(ifindex, true), `QSTATS_GET ${dev}`, decodeQstats, ifindex, (r) => r.ifindex);
  }
  queues(ifindex: number, dev = String(ifindex)): Promise<QueueInfo[]> {
    return this.dump(queueRequest(ifindex), `QUEUE_GET ${dev}`, decodeQueue, ifindex, (r) => r.ifindex);
  }
  napis(ifindex: number, dev = String(ifindex)): Promise<NapiInfo[]> {
    return this.dump(napiRequest(ifindex), `NAPI_GET ${dev}`, decodeNapi, ifindex, (r) => r.ifindex);
  }

  close(): void {
    this.genl.close();
  }
}
