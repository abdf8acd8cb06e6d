// Fuzz: netlink framing and attributes (attrs.ts), the request/response socket's datagram walk
// (socket.ts), struct tcp_info and the other sock_diag payloads (tcpinfo.ts), and the lazy sock_diag
// view (sockdiag.ts). See fuzz.ts for the run count and the mutations.
import { DecodeError, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP_INTR, NLM_F_MULTI, attr, forEachAttr, forEachMessage, nlmsg } from '../../src/sources/netlink/attrs';
import { NETLINK_ROUTE, NetlinkError, NetlinkSocket } from '../../src/sources/netlink/socket';
import { INET_DIAG_INFO, INET_DIAG_MSG_LEN, SOCK_DIAG_BY_FAMILY, SockView } from '../../src/sources/netlink/sockdiag';
import {
  LAYOUT_6_18,
  LAYOUT_7_0,
  TcpInfoLayout,
  decodeBbr,
  decodeDctcp,
  decodeSkmem,
  decodeTcpInfo,
  decodeTcpInfoInto,
  decodeVegas,
  readTcpInfo,
} from '../../src/sources/netlink/tcpinfo';
import { AttrNode, TIMEOUT_MS, assertSame, attrTree, check, decoderProperty, encodeAttrs, fc, garbage, mutated, nlMessages, only, RUNS } from './fuzz';

const SOCKDIAG = ['sockdiag/dump-a.bin', 'sockdiag/dump-b.bin', 'sockdiag/short-3.14.bin', 'sockdiag/short-4.9.bin', 'sockdiag/short-5.4.bin', 'sockdiag/accecn-7.0.bin'];
const sockMsgs = SOCKDIAG.flatMap((f) => nlMessages(f)).filter((m) => m.type === SOCK_DIAG_BY_FAMILY);

describe('attrs.ts: attribute walk', () => {
  it('round-trips any attribute list built with attr()', () => {
    const item = fc.record({ type: fc.integer({ min: 0, max: 0x3fff }), payload: fc.uint8Array({ maxLength: 40 }), nested: fc.boolean() });
    check(fc.tuple(fc.array(item, { maxLength: 12 }), garbage, garbage), ([items, before, after]) => {
      const area = Buffer.concat(items.map((i) => attr(i.type, Buffer.from(i.payload), i.nested)));
      const buf = Buffer.concat([before, area, after]);
      const seen: Array<{ type: number; payload: Buffer; nested: boolean }> = [];
      forEachAttr(buf, before.length, before.length + area.length, 'fuzz', (type, off, len, nested) => seen.push({ type, payload: Buffer.from(buf.subarray(off, off + len)), nested }));
      assertSame(seen, items.map((i) => ({ type: i.type, payload: Buffer.from(i.payload), nested: i.nested })), 'attributes');
    });
  }, TIMEOUT_MS);

  it('on mutated areas: DecodeError or a walk that tiles the area inside its bounds', () => {
    const seeds = sockMsgs.slice(0, 8).map((m) => m.payload.subarray(INET_DIAG_MSG_LEN));
    check(fc.tuple(mutated(seeds), garbage), ([area, after]) => {
      const buf = Buffer.concat([area, after]);
      let next = 0;
      only([DecodeError], () =>
        forEachAttr(buf, 0, area.length, 'fuzz', (_t, off, len) => {
          if (off - 4 !== next) throw new Error(`attribute at ${off - 4}, expected ${next}`);
          if (off + len > area.length) throw new Error(`attribute ${off}+${len} beyond the area (${area.length})`);
          next = (off - 4 + 4 + len + 3) & ~3;
        }),
      );
    });
  }, TIMEOUT_MS);

  it('forEachMessage: messages built with nlmsg() come back in order; mutated streams give DecodeError or in-bounds views', () => {
    const msg = fc.record({ type: fc.integer({ min: 0, max: 0xffff }), flags: fc.integer({ min: 0, max: 0xffff }), body: fc.uint8Array({ maxLength: 64 }) });
    check(fc.array(msg, { maxLength: 8 }), (ms) => {
      const stream = Buffer.concat(ms.map((m) => {
        const b = nlmsg(m.type, m.flags, Buffer.from(m.body));
        return Buffer.concat([b, Buffer.alloc(((b.length + 3) & ~3) - b.length)]);
      }));
      const seen: Array<{ type: number; flags: number; body: Buffer }> = [];
      forEachMessage(stream, (v) => seen.push({ type: v.type, flags: v.flags, body: Buffer.from(v.buf.subarray(v.start, v.end)) }));
      assertSame(seen, ms.map((m) => ({ type: m.type, flags: m.flags, body: Buffer.from(m.body) })), 'messages');
    });
    const streams = ['sockdiag/dump-a.bin', 'qdisc/live-6.18.bin', 'rtnl-link/link-stats.bin'].map((f) => require('fs').readFileSync(require('path').join(__dirname, '../fixtures', f)) as Buffer);
    check(mutated(streams), (b) => {
      only([DecodeError], () =>
        forEachMessage(b, (v) => {
          if (v.start < 16 || v.end > b.length || v.start > v.end) throw new Error(`message view ${v.start}..${v.end} outside ${b.length} bytes`);
        }),
      );
    });
  }, TIMEOUT_MS);
});

describe('socket.ts: datagrams of a pending request', () => {
  // A real NETLINK_ROUTE socket whose send() is captured: the test plays the kernel.
  let sock: NetlinkSocket;
  let sent: Buffer | null = null;
  beforeAll(() => {
    sock = new NetlinkSocket(NETLINK_ROUTE, { timeoutMs: 60_000 });
    const raw = (sock as unknown as { sock: { send: (m: Buffer, o: unknown, cb?: (e?: Error) => void) => void } }).sock;
    raw.send = (m, _o, cb) => {
      sent = Buffer.from(m);
      cb?.();
    };
  });
  afterAll(() => sock.close());
  const feed = (b: Buffer) => (sock as unknown as { onDatagram(b: Buffer): void }).onDatagram(b);

  const withSeq = (b: Buffer, seq: number) => {
    const c = Buffer.from(b);
    // rewrite the seq of every well-formed message header (a mutated stream keeps its own bytes after that)
    let off = 0;
    while (off + 16 <= c.length) {
      const len = c.readUInt32LE(off);
      c.writeUInt32LE(seq, off + 8);
      if (len < 16 || off + len > c.length) break;
      off += Math.ceil(len / 4) * 4;
    }
    return c;
  };
  const done = (seq: number, errno = 0) => {
    const b = nlmsg(NLMSG_DONE, NLM_F_MULTI, Buffer.alloc(4));
    b.writeInt32LE(errno, 16);
    b.writeUInt32LE(seq, 8);
    return b;
  };

  it('a dump split into any datagrams delivers exactly its messages, and DUMP_INTR is reported', async () => {
    const msgs = nlMessages('sockdiag/dump-a.bin');
    const arb = fc.tuple(fc.subarray(msgs.map((_, i) => i), { minLength: 0 }), fc.array(fc.nat({ max: 12 }), { maxLength: 12 }), fc.option(fc.nat(), { nil: undefined }), fc.integer({ min: -200, max: 0 }));
    await fc.assert(
      fc.asyncProperty(arb, async ([idx, cuts, intrAt, errno]) => {
        const chosen = idx.map((i) => msgs[i]);
        const seen: Buffer[] = [];
        const p = sock.request(Buffer.alloc(16), 18, 0, { dump: true, context: 'fuzz', onMessage: (m) => seen.push(Buffer.from(m.buf.subarray(m.start, m.end))) });
        const seq = sent!.readUInt32LE(8);
        const wire: Buffer[] = chosen.map((m, i) => {
          const b = nlmsg(m.type, m.flags | NLM_F_MULTI | (intrAt !== undefined && i === intrAt % Math.max(1, chosen.length) ? NLM_F_DUMP_INTR : 0), m.payload);
          b.writeUInt32LE(seq, 8);
          return Buffer.concat([b, Buffer.alloc(((b.length + 3) & ~3) - b.length)]);
        });
        wire.push(done(seq, errno));
        // cut the message list into datagrams of 1..12 messages
        let at = 0;
        for (const c of cuts) {
          if (at >= wire.length) break;
          const n = Math.max(1, c);
          feed(Buffer.concat(wire.slice(at, at + n)));
          at += n;
        }
        if (at < wire.length) feed(Buffer.concat(wire.slice(at)));
        const r = await p.then(
          (v) => ({ ok: true as const, v }),
          (e: Error) => ({ ok: false as const, e }),
        );
        if (errno < 0) {
          if (r.ok || !(r.e instanceof NetlinkError) || r.e.errno !== errno) throw new Error(`error ${errno} in NLMSG_DONE not reported: ${JSON.stringify(r)}`);
        } else {
          if (!r.ok) throw r.e;
          assertSame(seen, chosen.map((m) => m.payload), 'delivered messages');
          if (r.v.interrupted !== (intrAt !== undefined && chosen.length > 0)) throw new Error(`interrupted=${r.v.interrupted}`);
        }
      }),
      { numRuns: Math.min(RUNS, 2000) },
    );
  }, TIMEOUT_MS);

  it('mutated datagrams settle the request with data, DecodeError or NetlinkError, never an escape', async () => {
    const streams = ['sockdiag/dump-a.bin', 'rtnl-link/link-stats.bin'].map((f) => require('fs').readFileSync(require('path').join(__dirname, '../fixtures', f)) as Buffer);
    await fc.assert(
      fc.asyncProperty(mutated(streams), async (dgram) => {
        const p = sock.request(Buffer.alloc(16), 18, 0, {
          dump: true,
          context: 'fuzz',
          onMessage: (m) => {
            if (m.start < 16 || m.end > m.buf.length || m.start > m.end) throw new Error(`view ${m.start}..${m.end} outside ${m.buf.length}`);
          },
        });
        const seq = sent!.readUInt32LE(8);
        feed(withSeq(dgram, seq));
        feed(done(seq)); // ends the request if the mutated datagram did not
        await p.then(
          () => undefined,
          (e: Error) => {
            if (!(e instanceof DecodeError) && !(e instanceof NetlinkError)) throw e;
          },
        );
      }),
      { numRuns: Math.min(RUNS, 5000) },
    );
  }, TIMEOUT_MS);

  it('an NLMSG_ERROR payload of any length rejects with NetlinkError or DecodeError, or acks', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 24 }), async (payload) => {
        const p = sock.request(Buffer.alloc(16), 18, 0, { context: 'fuzz', expect: 0, onMessage: () => undefined });
        const seq = sent!.readUInt32LE(8);
        const b = nlmsg(NLMSG_ERROR, 0, Buffer.from(payload));
        b.writeUInt32LE(seq, 8);
        feed(b);
        const r = await p.then(
          () => 'ack',
          (e: Error) => e,
        );
        if (r === 'ack') {
          if (payload.length < 4 || Buffer.from(payload).readInt32LE(0) !== 0) throw new Error('acked a non-zero error');
        } else if (payload.length < 4) {
          if (!(r instanceof DecodeError)) throw r;
        } else if (!(r instanceof NetlinkError) || r.errno !== Buffer.from(payload).readInt32LE(0)) throw r;
      }),
      { numRuns: Math.min(RUNS, 2000) },
    );
  }, TIMEOUT_MS);
});

describe('tcpinfo.ts', () => {
  const layouts: TcpInfoLayout[] = [LAYOUT_6_18, LAYOUT_7_0];
  const structs = fc.tuple(fc.integer({ min: 0, max: 40 }).map((n) => n * 8), fc.constantFrom(0, 1)).chain(([len, l]) =>
    fc.tuple(fc.uint8Array({ minLength: len, maxLength: len }), fc.constant(layouts[l]), garbage, garbage),
  );

  it('decodeTcpInfo: presence by length, values read at the layout offsets, nothing from outside', () => {
    check(structs, ([bytes, layout, before, after]) => {
      const b = Buffer.from(bytes);
      const inside = Buffer.concat([before, b, after]);
      const rec = decodeTcpInfo(b, 0, b.length, layout);
      assertSame(decodeTcpInfo(inside, before.length, b.length, layout), rec, 'tcp_info inside a larger buffer');
      for (const f of layout.fields) {
        const present = f.off + f.size <= b.length;
        if (present !== f.name in rec) throw new Error(`${f.name}: present=${f.name in rec} with ${b.length} bytes`);
        if (present && !(Number.isInteger(rec[f.name]) || rec[f.name] === Infinity)) throw new Error(`${f.name} = ${rec[f.name]}`);
      }
    });
  }, TIMEOUT_MS);

  it('decodeTcpInfoInto (compiled straight-line reads and the generic loop) agrees with readTcpInfo', () => {
    check(structs, ([bytes, layout, before, after]) => {
      const b = Buffer.concat([before, Buffer.from(bytes), after]);
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const out = new Float64Array(layout.fields.length);
      decodeTcpInfoInto(dv, before.length, bytes.length, layout, out);
      layout.fields.forEach((f, i) => {
        const want = readTcpInfo(b, before.length, bytes.length, f);
        if (!(want === undefined ? Number.isNaN(out[i]) : out[i] === want)) throw new Error(`${f.name}: into=${out[i]} read=${want}`);
      });
    });
  }, TIMEOUT_MS);

  it('any length: DecodeError exactly when not a multiple of 8', () => {
    check(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const r = only([DecodeError], () => decodeTcpInfo(Buffer.from(bytes)));
      if (r.ok !== (bytes.length % 8 === 0)) throw new Error(`length ${bytes.length}: ok=${r.ok}`);
    });
  }, TIMEOUT_MS);

  it('skmeminfo, bbr, dctcp, vegas: a value or DecodeError for a short struct', () => {
    check(fc.tuple(fc.uint8Array({ maxLength: 48 }), garbage, garbage), ([bytes, before, after]) => {
      for (const dec of [decodeSkmem, decodeBbr, decodeDctcp, decodeVegas] as Array<(b: Buffer, s: number, e: number) => unknown>) {
        decoderProperty((b, s, e) => dec(b, s, e - s), [DecodeError], Buffer.from(bytes), before, after);
      }
    });
  }, TIMEOUT_MS);
});

describe('sockdiag.ts: SockView', () => {
  const decodeAll = (layout: TcpInfoLayout) => (buf: Buffer, start: number, end: number) => {
    const v = new SockView(layout).attach(buf, start, end);
    const rec = v.record();
    // the copies the collectors keep must read the same
    assertSame(v.copy().record(), rec, 'copy()');
    assertSame(v.copyInto(new SockView(layout)).record(), rec, 'copyInto()');
    const out = new Float64Array(layout.fields.length);
    if (v.tcpInfoInto(out) !== (rec.tcpInfo !== undefined)) throw new Error('tcpInfoInto presence');
    return rec;
  };

  it('mutated captured messages: attach() throws DecodeError or every accessor and record() work', () => {
    check(fc.tuple(mutated(sockMsgs.map((m) => m.payload)), fc.constantFrom(LAYOUT_6_18, LAYOUT_7_0), garbage, garbage), ([p, layout, before, after]) => {
      decoderProperty(decodeAll(layout), [DecodeError], p, before, after);
    });
  }, TIMEOUT_MS);

  it('structure-aware attribute trees after a valid inet_diag_msg', () => {
    const head = sockMsgs[0].payload.subarray(0, INET_DIAG_MSG_LEN);
    check(fc.tuple(attrTree([1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 21, 22]), garbage, garbage), ([tree, before, after]) => {
      const p = Buffer.concat([head, encodeAttrs(tree)]);
      decoderProperty(decodeAll(LAYOUT_6_18), [DecodeError], p, before, after, (rec) => {
        const info = [...tree].reverse().find((n: AttrNode) => n.type === INET_DIAG_INFO);
        const want = info ? (info.children ? encodeAttrs(info.children).length : info.payload!.length) : undefined;
        if (rec.tcpInfoLength !== want) throw new Error(`tcp_info length ${rec.tcpInfoLength}, attribute has ${want}`);
      });
    });
  }, TIMEOUT_MS);
});
