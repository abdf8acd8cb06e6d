// sock_diag decoding on binary fixtures (test/fixtures/sockdiag/README.md): a live 6.18 capture checked
// against the `ss -tinmHOna` output taken between its two dumps, shorter tcp_info structs of older
// kernels, the 7.0 layout at offset 276, and malformed input.
import * as fs from 'fs';
import * as path from 'path';
import { DecodeError, forEachMessage } from '../../src/sources/netlink/attrs';
import {
  ALL_STATES_MASK,
  INET_DIAG_REQ_V2_LEN,
  SOCK_DIAG_BY_FAMILY,
  SockView,
  buildDumpRequest,
  buildExactRequest,
  formatAddr,
  sockKeyOf,
} from '../../src/sources/netlink/sockdiag';
import { LAYOUT_6_18, LAYOUT_7_0, SKMEM, TCPI, decodeTcpInfo, parseKernelRelease, tcpInfoLayout } from '../../src/sources/netlink/tcpinfo';
import { parseSsLine, tupleKey } from '../support/ss';
import { compareWithSs } from '../support/ss-expect';

const FIX = path.join(__dirname, '../fixtures/sockdiag');
const read = (f: string) => fs.readFileSync(path.join(FIX, f));

/** Every SOCK_DIAG_BY_FAMILY message of a fixture, as detached views. */
function views(file: string, layout = LAYOUT_6_18): SockView[] {
  const out: SockView[] = [];
  forEachMessage(read(file), (m) => {
    if (m.type === SOCK_DIAG_BY_FAMILY) out.push(new SockView(layout).attach(m.buf, m.start, m.end).copy());
  });
  return out;
}

const byTuple = (vs: SockView[]) => new Map(vs.map((v) => [tupleKey(v.localIp(), v.sport, v.peerIp(), v.dport), v]));

describe('live capture (Linux 6.18) vs ss -tinmHOna taken between two dumps', () => {
  const a = byTuple(views('dump-a.bin'));
  const b = byTuple(views('dump-b.bin'));
  const ss = read('ss.txt').toString().split('\n').filter((l) => l.trim()).map(parseSsLine);

  it('has the same sockets as ss', () => {
    expect(ss.length).toBe(12);
    expect(new Set(a.keys())).toEqual(new Set(ss.map((s) => tupleKey(s.localIp, s.localPort, s.peerIp, s.peerPort))));
  });

  it('agrees with every token ss printed', () => {
    const problems: string[] = [];
    let compared = 0;
    for (const s of ss) {
      const k = tupleKey(s.localIp, s.localPort, s.peerIp, s.peerPort);
      const r = compareWithSs(s, a.get(k)!.record(), b.get(k)!.record(), k);
      problems.push(...r.problems);
      compared += r.compared;
    }
    expect(problems).toEqual([]);
    expect(compared).toBeGreaterThan(150);
  });

  it('decodes IPv4, IPv6 and v4-mapped addresses, cookies and the CC name', () => {
    const all = [...a.values()].map((v) => v.record());
    expect(all.filter((r) => r.family === 2).length).toBe(7); // 2 listeners + 2 flows x 2 ends + the mapped flow's AF_INET client
    expect(all.filter((r) => r.localIp === '::1').length).toBe(3);
    expect(all.filter((r) => r.localIp === '::ffff:127.0.0.1').length).toBe(2);
    expect(new Set(all.map((r) => r.cookie)).size).toBe(12);
    expect(new Set(all.map((r) => r.cc))).toEqual(new Set(['cubic', 'bbr']));
    for (const r of all) {
      expect(r.tcpInfoLength).toBe(280);
      expect(Object.keys(r.skmem!).length).toBe(9);
      expect(r.shutdown).toBe(0);
    }
    const stalled = all.find((r) => r.state === 1 && r.cc === 'cubic' && r.tcpInfo!.notsentBytes > 0)!;
    expect(stalled.tcpInfo!.rwndLimited).toBeGreaterThan(0);
    expect(stalled.tcpInfo!.sndWnd).toBe(0);
    const paced = all.find((r) => r.tcpInfo!.maxPacingRate === 4_000_000);
    expect(paced).toBeDefined();
    // Unlimited pacing is the all-ones u64: decoded as Infinity, never as 1.8e19.
    expect(all.filter((r) => r.tcpInfo!.maxPacingRate === Infinity).length).toBe(11);
  });
});

describe('shorter tcp_info from older kernels: present by length, absent is not 0', () => {
  const full = byTuple(views('dump-a.bin'));
  const cases: Array<[string, number, string[], string[]]> = [
    ['short-5.4.bin', 232, ['sndWnd', 'rcvOoopack', 'bytesSent', 'busyTime'], ['rcvWnd', 'rehash', 'totalRto', 'receivedCe', 'accecnFailMode']],
    ['short-4.9.bin', 168, ['deliveryRate', 'minRtt', 'notsentBytes', 'bytesAcked'], ['busyTime', 'rwndLimited', 'delivered', 'bytesSent', 'sndWnd']],
    ['short-3.14.bin', 104, ['rtt', 'sndCwnd', 'totalRetrans', 'rcvSpace'], ['pacingRate', 'maxPacingRate', 'bytesAcked', 'segsOut', 'minRtt']],
  ];
  it.each(cases)('%s (%d bytes)', (file, len, present, absent) => {
    const vs = views(file);
    expect(vs.length).toBe(12);
    const out = new Float64Array(LAYOUT_6_18.fields.length);
    for (const v of vs) {
      const f = full.get(tupleKey(v.localIp(), v.sport, v.peerIp(), v.dport))!;
      expect(v.infoLen).toBe(len);
      const rec = v.record().tcpInfo!;
      const fullRec = f.record().tcpInfo!;
      for (const fld of LAYOUT_6_18.fields) {
        if (fld.off + fld.size <= len) expect([fld.name, rec[fld.name]]).toEqual([fld.name, fullRec[fld.name]]);
        else {
          expect([fld.name, rec[fld.name]]).toEqual([fld.name, undefined]);
          expect(v.tcp(fld)).toBeUndefined();
        }
      }
      for (const n of present) expect(rec[n]).toBeDefined();
      for (const n of absent) expect(n in rec).toBe(false);
      v.tcpInfoInto(out);
      LAYOUT_6_18.fields.forEach((fld, i) => expect(Number.isNaN(out[i])).toBe(fld.off + fld.size > len));
    }
  });

  it('short-3.14.bin also has the 7-element skmeminfo of Linux < 3.6 and no BBR info', () => {
    for (const v of views('short-3.14.bin')) {
      expect(v.skmem(SKMEM.optmem)).toBeDefined();
      expect(v.skmem(SKMEM.backlog)).toBeUndefined();
      expect(v.skmem(SKMEM.drops)).toBeUndefined();
      expect(v.record().skmem).not.toHaveProperty('backlog');
      expect(v.hasBbr).toBe(false);
      expect(v.bbrBw()).toBeUndefined();
    }
  });
});

describe('the 280-byte struct of 6.18 vs 7.0 (bytes 276..279), decided by kernel release', () => {
  it('picks the layout from the release string', () => {
    expect(tcpInfoLayout('6.18.44-fc-v657').tail).toBe('6.18');
    expect(tcpInfoLayout('6.19.2').tail).toBe('6.18');
    expect(tcpInfoLayout('7.0.0-rc1').tail).toBe('7.0');
    expect(tcpInfoLayout('7.3.1').tail).toBe('7.0');
    expect(tcpInfoLayout('not-a-version').tail).toBe('6.18');
    expect(parseKernelRelease('5.4.0-150-generic')).toEqual([5, 4]);
  });

  it('reads the 7.0 bit-field word, or the two 6.18 u16, from the same bytes', () => {
    const [v7] = views('accecn-7.0.bin', LAYOUT_7_0);
    const t7 = v7.record().tcpInfo!;
    expect([t7.ecnMode, t7.accecnOptSeen, t7.accecnFailMode, t7.options2]).toEqual([2, 1, 9, 5]);
    const [v6] = views('accecn-7.0.bin', LAYOUT_6_18);
    const t6 = v6.record().tcpInfo!;
    expect([t6.accecnFailMode, t6.accecnOptSeen]).toEqual([0x596, 0]);
    expect(t6).not.toHaveProperty('ecnMode');
    // Everything before offset 276 is the same in both.
    for (const f of LAYOUT_6_18.fields) if (f.off < 276) expect(t7[f.name]).toBe(t6[f.name]);
  });
});

describe('malformed input: a DecodeError that says where, never a crash or a wrong number', () => {
  const src = read('dump-a.bin');
  // The first ESTAB socket's message, with header, as a standalone buffer.
  let first: Buffer = Buffer.alloc(0);
  forEachMessage(src, (m) => {
    if (first.length === 0 && m.type === SOCK_DIAG_BY_FAMILY && m.buf[m.start + 1] === 1) first = Buffer.from(m.buf.subarray(m.start - 16, m.end));
  });
  const payload = () => Buffer.from(first.subarray(16));
  const attach = (p: Buffer) => new SockView().attach(p, 0, p.length);
  /** Offset (in the payload) of the first attribute of a type. */
  const attrAt = (p: Buffer, type: number) => {
    for (let o = 72; o + 4 <= p.length; o += (p.readUInt16LE(o) + 3) & ~3) if ((p.readUInt16LE(o + 2) & 0x3fff) === type) return o;
    throw new Error(`no attribute ${type}`);
  };

  it('accepts the untouched message', () => {
    expect(attach(payload()).hasInfo).toBe(true);
  });

  it('rejects an inet_diag_msg shorter than 72 bytes', () => {
    expect(() => attach(payload().subarray(0, 40))).toThrow(/40 bytes, struct inet_diag_msg needs 72/);
  });

  it('rejects an unknown address family', () => {
    const p = payload();
    p[0] = 99;
    expect(() => attach(p)).toThrow(/idiag_family 99/);
  });

  it('rejects an attribute whose length overruns the message, naming type and offset', () => {
    const p = payload();
    const o = attrAt(p, 2);
    p.writeUInt16LE(4000, o);
    expect(() => attach(p)).toThrow(new RegExp(`attribute type 2 length 4000 overruns the message .* at offset ${o}`));
  });

  it('rejects an attribute shorter than its header', () => {
    const p = payload();
    p.writeUInt16LE(2, attrAt(p, 4));
    expect(() => attach(p)).toThrow(/has length 2 < 4/);
  });

  it('rejects a truncated message (attributes cut in the middle)', () => {
    const p = payload();
    const o = attrAt(p, 2);
    expect(() => attach(p.subarray(0, o + 100))).toThrow(DecodeError);
  });

  it('rejects an INET_DIAG_INFO whose length is not a struct tcp_info size', () => {
    const p = payload();
    const o = attrAt(p, 2);
    // Shrink INFO to 150 bytes and keep the rest of the message aligned behind it.
    const rest = p.subarray(o + 4 + 280);
    const info = Buffer.alloc(152);
    p.copy(info, 0, o + 4, o + 4 + 150);
    const hdr = Buffer.alloc(4);
    hdr.writeUInt16LE(154, 0);
    hdr.writeUInt16LE(2, 2);
    const q = Buffer.concat([p.subarray(0, o), hdr, info, rest]);
    expect(() => attach(q)).toThrow(/INET_DIAG_INFO length 150 is not a struct tcp_info size/);
  });

  it('rejects short skmeminfo and BBR info payloads', () => {
    const p = payload();
    p.writeUInt16LE(4 + 10, attrAt(p, 7)); // 10 bytes: not a u32 array (and the rest still parses)
    expect(() => attach(p)).toThrow(DecodeError);
    const bbr = views('dump-a.bin').find((v) => v.hasBbr)!;
    const q = Buffer.from(bbr.buf.subarray(bbr.start, bbr.end));
    const o = attrAt(q, 16);
    expect(o + 24).toBe(q.length); // BBRINFO is the last attribute: cut its payload to 12 bytes
    q.writeUInt16LE(4 + 12, o);
    expect(() => attach(q.subarray(0, o + 16))).toThrow(/BBRINFO length 12 is shorter than struct tcp_bbr_info/);
  });

  it('rejects garbage after the last attribute', () => {
    expect(() => attach(Buffer.concat([payload(), Buffer.from([1, 2, 3])]))).toThrow(/3 trailing bytes/);
  });

  it('rejects a netlink message that claims more bytes than the datagram holds', () => {
    const d = Buffer.from(first);
    d.writeUInt32LE(first.length + 64, 0);
    expect(() => forEachMessage(d, () => undefined)).toThrow(/does not fit/);
  });

  it('never throws anything but DecodeError on random garbage or random corruption', () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < 3000; i++) {
      let p: Buffer;
      if (i % 3 === 0) {
        p = Buffer.alloc(Math.floor(rnd() * 600));
        for (let j = 0; j < p.length; j++) p[j] = Math.floor(rnd() * 256);
        if (p.length > 0) p[0] = rnd() < 0.5 ? 2 : 10;
      } else {
        p = payload();
        for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) p[72 + Math.floor(rnd() * (p.length - 72))] = Math.floor(rnd() * 256);
        if (rnd() < 0.3) p = p.subarray(0, Math.floor(rnd() * p.length));
      }
      try {
        const v = attach(p);
        v.record(); // every accessor stays inside the message
        accepted++;
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        rejected++;
      }
    }
    expect(accepted).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);
  });

  it('decodeTcpInfo refuses a length that does not fit the buffer', () => {
    expect(() => decodeTcpInfo(Buffer.alloc(100), 0, 104)).toThrow(/104 bytes announced, 100 present/);
    expect(() => decodeTcpInfo(Buffer.alloc(100))).toThrow(/not a struct tcp_info size/);
  });
});

describe('requests and addresses', () => {
  it('builds struct inet_diag_req_v2 for a dump, with the bytecode attribute after it', () => {
    const bc = Buffer.from([1, 4, 8, 0]);
    const r = buildDumpRequest(10, ALL_STATES_MASK, 0xce, bc);
    expect(r.length).toBe(INET_DIAG_REQ_V2_LEN + 8);
    expect([r[0], r[1], r[2], r[3]]).toEqual([10, 6, 0xce, 0]);
    expect(r.readUInt32LE(4)).toBe(0x1ffe);
    expect(r.subarray(8, 48).every((b) => b === 0)).toBe(true);
    expect([r.readUInt32LE(48), r.readUInt32LE(52)]).toEqual([0xffffffff, 0xffffffff]); // INET_DIAG_NOCOOKIE
    expect([r.readUInt16LE(56), r.readUInt16LE(58)]).toEqual([8, 1]); // nlattr INET_DIAG_REQ_BYTECODE
    expect(r.subarray(60)).toEqual(bc);
    expect(buildDumpRequest(2, 2, 0).length).toBe(56);
  });

  it('builds an exact request: ports big-endian, addresses, bound device, cookie words', () => {
    const k = sockKeyOf({ localIp: '::ffff:10.1.2.3', localPort: 5201, peerIp: '::ffff:10.9.8.7', peerPort: 40000, cookie: '4294967301', ifindex: 7 });
    expect(k.family).toBe(10);
    const r = buildExactRequest(k, 0x4e);
    expect(r.readUInt16BE(8)).toBe(5201);
    expect(r.readUInt16BE(10)).toBe(40000);
    expect(formatAddr(r, 12, 10)).toBe('::ffff:10.1.2.3');
    expect(formatAddr(r, 28, 10)).toBe('::ffff:10.9.8.7');
    expect(r.readUInt32LE(44)).toBe(7);
    expect([r.readUInt32LE(48), r.readUInt32LE(52)]).toEqual([5, 1]);
    expect(() => sockKeyOf({ localIp: '10.0.0.1', localPort: 1, peerIp: '::1', peerPort: 2 })).toThrow(/mixes IPv4 and IPv6/);
    expect(() => sockKeyOf({ localIp: '10.0.0.300', localPort: 1, peerIp: '10.0.0.1', peerPort: 2 })).toThrow(/bad IP address/);
  });

  it('formats addresses like ss (RFC 5952 for IPv6)', () => {
    const v6 = (s: string) => {
      const b = Buffer.alloc(16);
      s.split(':').forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
      return formatAddr(b, 0, 10);
    };
    expect(formatAddr(Buffer.from([192, 0, 2, 7]), 0, 2)).toBe('192.0.2.7');
    expect(v6('0:0:0:0:0:0:0:0')).toBe('::');
    expect(v6('0:0:0:0:0:0:0:1')).toBe('::1');
    expect(v6('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(v6('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(v6('fe80:0:0:0:fc:ff:fe00:1')).toBe('fe80::fc:ff:fe00:1');
    expect(v6('1:0:0:0:0:0:0:0')).toBe('1::');
    expect(v6('0:0:0:0:0:ffff:a01:203')).toBe('::ffff:10.1.2.3');
  });

  it('reads the tcp_info field table at the offsets of include/uapi/linux/tcp.h', () => {
    // Spot checks against the offsets of struct tcp_info (include/uapi/linux/tcp.h, as gcc's offsetof() gives them).
    expect([TCPI.rtt.off, TCPI.sndCwnd.off, TCPI.pacingRate.off, TCPI.bytesAcked.off, TCPI.notsentBytes.off]).toEqual([68, 80, 104, 120, 144]);
    expect([TCPI.busyTime.off, TCPI.bytesSent.off, TCPI.sndWnd.off, TCPI.totalRtoTime.off, TCPI.receivedCeBytes.off]).toEqual([168, 200, 228, 244, 272]);
    // No two fields overlap except the bit fields sharing a byte/word.
    const spans = LAYOUT_6_18.fields.filter((f) => f.bits === undefined).map((f) => [f.off, f.off + f.size]);
    spans.sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i][0]).toBeGreaterThanOrEqual(spans[i - 1][1]);
    expect(spans[spans.length - 1][1]).toBe(280);
  });
});
