// Fuzz: the per-device netlink decoders: ethtool replies and bitsets, the netdev genl family, rtnetlink
// links, addresses and qdiscs (with xstats), and the OVS kernel datapath over genetlink. Mutated captured
// and built fixtures, structure-aware attribute trees, and round trips through builders.
import { DecodeError, attr, attrU32Of, genlBody, nest } from '../../src/sources/netlink/attrs';
import {
  ETHTOOL_MSG,
  decodeBitset,
  decodeChannels,
  decodeCoalesce,
  decodeFeatures,
  decodePause,
  decodeRings,
  decodeStats,
  decodeStrsets,
} from '../../src/sources/netlink/ethtool';
import { decodeNapi, decodeQstats, decodeQueue, QSTATS_COUNTERS } from '../../src/sources/netlink/netdev-genl';
import { LINK_STATS64_FIELDS, parseLinkMessage } from '../../src/sources/netlink/rtnl-link';
import { parseAddrMessage } from '../../src/sources/netlink/rtnl-addr';
import { decodeFqCodelStats, decodeFqStats, decodeQdisc } from '../../src/sources/netlink/qdisc';
import { decodeOvsDatapath, decodeOvsVport } from '../../src/sources/netlink/ovs';
import { formatAddr } from '../../src/sources/netlink/sockdiag';
import { DP_FAMILY, VPORT_FAMILY, dpAttrs, loadHex, ovsMessage, vportAttrs } from '../support/ovs-genl';
import { TIMEOUT_MS, assertSame, attrTree, check, decoderProperty, encodeAttrs, fc, garbage, mutated, nlMessages } from './fuzz';

type Decoder = (buf: Buffer, start: number, end: number) => unknown;

const genlFiles = (suffix: string) => ['mlx5-eth0', 'virtio-eth0'].map((d) => `nic/genl/${d}.${suffix}.bin`);
const payloads = (files: string[]) => files.flatMap((f) => nlMessages(f).map((m) => m.payload));

/** The mutation property for one decoder over the messages of some fixture files. */
function mutationSuite(name: string, decode: Decoder, files: string[]): void {
  it(`${name}: mutated fixtures give a value or DecodeError, from the message's own bytes only`, () => {
    check(fc.tuple(mutated(payloads(files)), garbage, garbage), ([p, before, after]) => decoderProperty(decode, [DecodeError], p, before, after));
  }, TIMEOUT_MS);
}

/** The structure-aware property: a fixed header (genl cmd, ifinfomsg, ...) then a random attribute tree. */
function treeSuite(name: string, decode: Decoder, head: Buffer, types: number[]): void {
  it(`${name}: random attribute trees after a valid header give a value or DecodeError`, () => {
    check(fc.tuple(attrTree(types), garbage, garbage), ([tree, before, after]) => decoderProperty(decode, [DecodeError], Buffer.concat([head, encodeAttrs(tree)]), before, after));
  }, TIMEOUT_MS);
}

const genlHead = (cmd: number) => Buffer.from([cmd, 1, 0, 0]);

describe('ethtool.ts', () => {
  const names = (() => {
    const m = nlMessages('nic/genl/kernel-6.18.strset-features.bin')[0].payload;
    return decodeStrsets(m, 0, m.length).get(4);
  })();
  mutationSuite('decodeRings', decodeRings, [...genlFiles('rings'), 'nic/genl/bad.rings-overrun.bin']);
  mutationSuite('decodeCoalesce', decodeCoalesce, genlFiles('coalesce'));
  mutationSuite('decodeChannels', decodeChannels, genlFiles('channels'));
  mutationSuite('decodePause', decodePause, ['nic/genl/mlx5-eth0.pause.bin']);
  mutationSuite('decodeFeatures (verbose)', (b, s, e) => decodeFeatures(b, s, e), genlFiles('features'));
  mutationSuite('decodeFeatures (compact)', (b, s, e) => decodeFeatures(b, s, e, names), ['nic/genl/mlx5-eth0.features-compact.bin']);
  mutationSuite('decodeStats', decodeStats, [...genlFiles('stats'), 'nic/genl/bad.stats-4-byte-counter.bin']);
  mutationSuite('decodeStrsets', decodeStrsets, ['nic/genl/kernel-6.18.strset-features.bin', 'nic/genl/kernel-6.18.strset-stats.bin']);
  treeSuite('decodeRings', decodeRings, genlHead(ETHTOOL_MSG.RINGS_GET_REPLY), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12]);
  treeSuite('decodePause', decodePause, genlHead(ETHTOOL_MSG.PAUSE_GET_REPLY), [1, 2, 3, 4, 5]);
  treeSuite('decodeFeatures', (b, s, e) => decodeFeatures(b, s, e, names), genlHead(ETHTOOL_MSG.FEATURES_GET_REPLY), [1, 2, 3, 4, 5]);
  treeSuite('decodeStats', decodeStats, genlHead(ETHTOOL_MSG.STATS_GET_REPLY), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  treeSuite('decodeStrsets', decodeStrsets, genlHead(ETHTOOL_MSG.STRSET_GET_REPLY), [1, 2, 3]);

  it('compact bitsets round-trip: the bits in the mask with their values (a list: the set bits)', () => {
    const arb = fc.integer({ min: 0, max: 200 }).chain((size) => {
      const words = Math.ceil(size / 32);
      const word = fc.integer({ min: 0, max: 0xffffffff });
      return fc.record({ size: fc.constant(size), value: fc.array(word, { minLength: words, maxLength: words }), mask: fc.array(word, { minLength: words, maxLength: words }), list: fc.boolean() });
    });
    check(arb, ({ size, value, mask, list }) => {
      const words = (ws: number[]) => Buffer.concat(ws.map((w) => { const b = Buffer.alloc(4); b.writeUInt32LE(w >>> 0); return b; }));
      const inner = [attrU32Of(2, size), attr(4, words(value))];
      if (list) inner.unshift(attr(1, Buffer.alloc(0)));
      else inner.push(attr(5, words(mask)));
      const buf = nest(1, ...inner);
      const got = decodeBitset(buf, { off: 4, len: buf.length - 4 }, 'fuzz');
      const want = new Map<number, { name?: string; value: boolean }>();
      for (let i = 0; i < size; i++) {
        const v = ((value[i >>> 5] >>> (i & 31)) & 1) === 1;
        const m = list ? v : ((mask[i >>> 5] >>> (i & 31)) & 1) === 1;
        if (m) want.set(i, { name: undefined, value: v });
      }
      assertSame(got, { list, size, bits: want }, 'bitset');
    });
  }, TIMEOUT_MS);
});

describe('netdev-genl.ts', () => {
  mutationSuite('decodeQstats', decodeQstats, [...genlFiles('qstats'), 'nic/genl/bad.qstats-6-byte-uint.bin']);
  mutationSuite('decodeQueue', decodeQueue, genlFiles('queues'));
  mutationSuite('decodeNapi', decodeNapi, genlFiles('napis'));
  treeSuite('decodeQstats', decodeQstats, genlHead(12), [1, 2, 3, 4, ...QSTATS_COUNTERS.map(([id]) => id)]);
  treeSuite('decodeQueue', decodeQueue, genlHead(10), [1, 2, 3, 4]);
  treeSuite('decodeNapi', decodeNapi, genlHead(11), [1, 2, 3, 4]);

  it('decodeQstats round-trips counters of 4 or 8 bytes', () => {
    const counter = fc.tuple(fc.constantFrom(...QSTATS_COUNTERS), fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), fc.boolean());
    check(fc.tuple(fc.integer({ min: 1, max: 0x7fffffff }), fc.uniqueArray(counter, { selector: (c) => c[0][0], maxLength: 27 })), ([ifindex, counters]) => {
      const attrs = [attrU32Of(1, ifindex)];
      for (const [[id], v, wide] of counters) {
        const b = Buffer.alloc(wide || v > 0xffffffff ? 8 : 4);
        if (b.length === 8) b.writeBigUInt64LE(BigInt(v));
        else b.writeUInt32LE(v);
        attrs.push(attr(id, b));
      }
      const p = genlBody(12, 1, ...attrs);
      assertSame(decodeQstats(p, 0, p.length), { ifindex, counters: new Map(counters.map(([[, name], v]) => [name, v])) }, 'qstats');
    });
  }, TIMEOUT_MS);
});

describe('rtnl-link.ts and rtnl-addr.ts', () => {
  mutationSuite('parseLinkMessage', parseLinkMessage, ['rtnl-link/link-stats.bin', 'rtnl-addr/link.bin']);
  mutationSuite('parseAddrMessage', parseAddrMessage, ['rtnl-addr/addr.bin']);
  treeSuite('parseLinkMessage', parseLinkMessage, Buffer.alloc(16), [3, 4, 13, 16, 18, 23, 33, 35, 40, 41, 47, 48, 58, 59, 60]);
  treeSuite('parseAddrMessage (AF_INET)', parseAddrMessage, Buffer.from([2, 24, 0, 0, 5, 0, 0, 0]), [1, 2, 3, 8]);
  treeSuite('parseAddrMessage (AF_INET6)', parseAddrMessage, Buffer.from([10, 64, 0, 0, 5, 0, 0, 0]), [1, 2, 3, 8]);

  it('parseLinkMessage round-trips name, kind, scalars and IFLA_STATS64 of 23..25 counters', () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const arb = fc.record({
      ifindex: fc.integer({ min: 1, max: 0x7fffffff }),
      name: fc.stringMatching(/^[a-z][a-z0-9_.-]{0,14}$/),
      kind: fc.option(fc.constantFrom('veth', 'vlan', 'openvswitch', 'bond'), { nil: undefined }),
      mtu: fc.option(u32, { nil: undefined }),
      operstate: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
      stats: fc.option(fc.integer({ min: 23, max: 25 }).chain((n) => fc.array(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), { minLength: n, maxLength: n })), { nil: undefined }),
    });
    check(arb, (l) => {
      const ifi = Buffer.alloc(16);
      ifi.writeInt32LE(l.ifindex, 4);
      const attrs = [attr(3, Buffer.from(l.name + '\0'))];
      if (l.mtu !== undefined) attrs.push(attrU32Of(4, l.mtu));
      if (l.operstate !== undefined) attrs.push(attr(16, Buffer.from([l.operstate])));
      if (l.kind !== undefined) attrs.push(nest(18, attr(1, Buffer.from(l.kind + '\0'))));
      if (l.stats) {
        const b = Buffer.alloc(8 * l.stats.length);
        l.stats.forEach((v, i) => b.writeBigUInt64LE(BigInt(v), 8 * i));
        attrs.push(attr(23, b));
      }
      const p = Buffer.concat([ifi, ...attrs]);
      const rec = parseLinkMessage(p, 0, p.length)!;
      assertSame(rec, {
        ifindex: l.ifindex,
        name: l.name,
        type: 0,
        flags: 0,
        kind: l.kind,
        mtu: l.mtu,
        operstate: l.operstate,
        stats: l.stats ? Object.fromEntries(l.stats.map((v, i) => [LINK_STATS64_FIELDS[i], v])) : undefined,
      }, 'link');
    });
  }, TIMEOUT_MS);

  it('parseAddrMessage round-trips IFA_LOCAL/IFA_ADDRESS (local wins) formatted like sock_diag', () => {
    const arb = fc.record({ v6: fc.boolean(), local: fc.option(fc.uint8Array({ minLength: 16, maxLength: 16 }), { nil: undefined }), address: fc.uint8Array({ minLength: 16, maxLength: 16 }), plen: fc.integer({ min: 0, max: 128 }), ifindex: fc.integer({ min: 1, max: 0x7fffffff }) });
    check(arb, (a) => {
      const n = a.v6 ? 16 : 4;
      const head = Buffer.from([a.v6 ? 10 : 2, a.plen, 0, 0, 0, 0, 0, 0]);
      head.writeUInt32LE(a.ifindex, 4);
      const attrs = [attr(1, Buffer.from(a.address.subarray(0, n)))];
      if (a.local) attrs.push(attr(2, Buffer.from(a.local.subarray(0, n))));
      const p = Buffer.concat([head, ...attrs]);
      const src = Buffer.alloc(16);
      Buffer.from((a.local ?? a.address).subarray(0, n)).copy(src);
      assertSame(parseAddrMessage(p, 0, p.length), { family: a.v6 ? 10 : 2, address: formatAddr(src, 0, a.v6 ? 10 : 2), prefixLen: a.plen, ifindex: a.ifindex }, 'address');
    });
  }, TIMEOUT_MS);
});

describe('qdisc.ts', () => {
  const files = ['fq-mq-6.7.bin', 'fq-sizes.bin', 'fq_codel.bin', 'legacy-tc-stats.bin', 'live-6.18.bin', 'bad-attr-overrun.bin', 'bad-no-kind.bin', 'bad-no-queue.bin', 'bad-short-basic.bin', 'bad-short-fq-xstats.bin', 'bad-short-tcmsg.bin'];
  mutationSuite('decodeQdisc', decodeQdisc, files.map((f) => `qdisc/${f}`));
  for (const kind of ['fq', 'fq_codel']) {
    const head = Buffer.concat([Buffer.alloc(20), attr(1, Buffer.from(`${kind}\0`))]);
    treeSuite(`decodeQdisc (${kind})`, decodeQdisc, head, [2, 3, 4, 7, 12]);
  }

  it('fq and fq_codel xstats: fields present exactly as far as the struct length reaches', () => {
    check(fc.tuple(fc.integer({ min: 0, max: 160 }), fc.uint8Array({ minLength: 160, maxLength: 160 })), ([len, bytes]) => {
      const b = Buffer.from(bytes.subarray(0, len));
      for (const [dec, min] of [[decodeFqStats, 80], [decodeFqCodelStats, 28]] as const) {
        let v: Record<string, unknown> | undefined;
        try {
          v = dec(b, { off: 0, len }, 'fuzz') as Record<string, unknown> | undefined;
        } catch (e) {
          if (!(e instanceof DecodeError) || len >= min) throw e;
          continue;
        }
        if (len < min) throw new Error(`${dec.name} accepted ${len} bytes`);
        if (!v) continue; // fq_codel class stats
        const fq = dec === decodeFqStats;
        const expectKeys = fq ? ['ceMark', 'horizonDrops', 'fastpathPackets'] : ['ceMark', 'memoryUsage'];
        const need = fq ? [88, 104, 148] : [32, 40];
        expectKeys.forEach((k, i) => {
          if ((v![k] !== undefined) !== (len >= need[i])) throw new Error(`${dec.name}: ${k} present=${v![k] !== undefined} with ${len} bytes`);
        });
      }
    });
  }, TIMEOUT_MS);

  it('round-trips tcmsg, kind and TCA_STATS2 basic/queue (+PKT64)', () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const arb = fc.record({ ifindex: fc.integer({ min: 1, max: 0x7fffffff }), handle: u32, parent: u32, kind: fc.constantFrom('fq', 'fq_codel', 'mq', 'pfifo_fast', 'noqueue'), bytes: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), packets: u32, pkt64: fc.option(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), { nil: undefined }), q: fc.array(u32, { minLength: 5, maxLength: 5 }) });
    check(arb, (q) => {
      const tc = Buffer.alloc(20);
      tc.writeInt32LE(q.ifindex, 4);
      tc.writeUInt32LE(q.handle, 8);
      tc.writeUInt32LE(q.parent, 12);
      const basic = Buffer.alloc(16);
      basic.writeBigUInt64LE(BigInt(q.bytes));
      basic.writeUInt32LE(q.packets, 8);
      const queue = Buffer.alloc(20);
      q.q.forEach((v, i) => queue.writeUInt32LE(v, 4 * i));
      const kids = [attr(1, basic), attr(3, queue)];
      if (q.pkt64 !== undefined) {
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(BigInt(q.pkt64));
        kids.push(attr(8, b));
      }
      const p = Buffer.concat([tc, attr(1, Buffer.from(`${q.kind}\0`)), nest(7, ...kids)]);
      const [qlen, backlog, drops, requeues, overlimits] = q.q;
      assertSame(decodeQdisc(p, 0, p.length), { ifindex: q.ifindex, handle: q.handle, parent: q.parent, kind: q.kind, bytes: q.bytes, packets: q.pkt64 ?? q.packets, drops, requeues, overlimits, qlen, backlog }, 'qdisc');
    });
  }, TIMEOUT_MS);
});

describe('netlink/ovs.ts (kernel datapath over genetlink)', () => {
  const dp: Buffer[] = nlMessages('', loadHex('dp-dump.hex')).map((m) => m.payload);
  const vp: Buffer[] = nlMessages('', loadHex('vport-dump.hex')).map((m) => m.payload);
  it('decodeOvsDatapath / decodeOvsVport: mutated fixtures give a value or DecodeError', () => {
    check(fc.tuple(mutated([...dp, ...vp]), garbage, garbage), ([p, before, after]) => {
      decoderProperty(decodeOvsDatapath, [DecodeError], p, before, after);
      decoderProperty(decodeOvsVport, [DecodeError], p, before, after);
    });
  }, TIMEOUT_MS);
  treeSuite('decodeOvsDatapath', decodeOvsDatapath, Buffer.from([1, 2, 0, 0, 5, 0, 0, 0]), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  treeSuite('decodeOvsVport', decodeOvsVport, Buffer.from([1, 2, 0, 0, 5, 0, 0, 0]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

  const u64 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
  const payloadOf = (msg: Buffer) => msg.subarray(16);
  it('round-trips datapath specs built by test/support/ovs-genl.ts', () => {
    const arb = fc.record({
      ifindex: fc.integer({ min: 1, max: 0x7fffffff }),
      name: fc.stringMatching(/^[a-z][a-z0-9-]{0,14}$/),
      stats: fc.option(fc.tuple(u64, u64, u64, u64), { nil: undefined }),
      megaflow: fc.option(fc.record({ maskHit: u64, masks: fc.integer({ min: 0, max: 0xffffffff }), cacheHit: u64 }), { nil: undefined }),
      masksCacheSize: fc.option(fc.integer({ min: 0, max: 0xffffffff }), { nil: undefined }),
      userFeatures: fc.option(fc.integer({ min: 0, max: 0xffffffff }), { nil: undefined }),
      pad: fc.boolean(),
    });
    check(arb, (d) => {
      const p = payloadOf(ovsMessage(DP_FAMILY, 1, 2, d.ifindex, dpAttrs(d)));
      const got = decodeOvsDatapath(p, 0, p.length);
      const [hit, missed, lost, flows] = d.stats ?? [];
      assertSame(got, {
        ifindex: d.ifindex,
        name: d.name,
        hit,
        missed,
        lost,
        flows,
        masksCacheSize: d.masksCacheSize,
        maskHit: d.megaflow?.maskHit,
        masks: d.megaflow?.masks,
        cacheHit: d.megaflow && d.masksCacheSize !== undefined ? d.megaflow.cacheHit : undefined,
        userFeatures: d.userFeatures,
      }, 'datapath');
    });
  }, TIMEOUT_MS);

  it('round-trips vport specs (stats, upcall nest in either order, PAD attributes)', () => {
    const s32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
    const arb = fc.record({
      portNo: fc.option(fc.integer({ min: 0, max: 0xffffffff }), { nil: undefined }),
      type: fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined }),
      name: fc.option(fc.stringMatching(/^[a-z][a-z0-9-]{0,14}$/), { nil: undefined }),
      ifindex: fc.option(s32, { nil: undefined }),
      netnsid: fc.option(s32, { nil: undefined }),
      stats: fc.option(fc.array(u64, { minLength: 8, maxLength: 8 }), { nil: undefined }),
      upcall: fc.option(fc.record({ success: fc.option(u64, { nil: undefined }), fail: fc.option(u64, { nil: undefined }), reversed: fc.boolean() }), { nil: undefined }),
      pad: fc.boolean(),
    });
    check(arb, (v) => {
      const p = payloadOf(ovsMessage(VPORT_FAMILY, 1, 2, 5, vportAttrs(v)));
      const got = decodeOvsVport(p, 0, p.length);
      const s = v.stats;
      assertSame({ ...got, type: undefined }, {
        dpIfindex: 5,
        portNo: v.portNo,
        typeId: v.type,
        name: v.name,
        ifindex: v.ifindex,
        netnsid: v.netnsid,
        stats: s ? { rxPackets: s[0], txPackets: s[1], rxBytes: s[2], txBytes: s[3], rxErrors: s[4], txErrors: s[5], rxDropped: s[6], txDropped: s[7] } : undefined,
        upcallSuccess: v.upcall?.success,
        upcallFail: v.upcall?.fail,
      }, 'vport');
    });
  }, TIMEOUT_MS);
});
