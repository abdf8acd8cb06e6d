// rtnetlink link records (src/sources/netlink/rtnl-link.ts) from a dump WITH statistics, checked field by
// field against `ip -d -s -s -j link` and the sysfs files read right after on the same quiet namespace
// (test/fixtures/rtnl-link/README.md); the record → NetdevAttrs mapping; malformed messages.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DecodeError, forEachMessage } from '../../src/sources/netlink/attrs';
import { LINK_STATS64_FIELDS, LinkRecord, RTM_NEWLINK, parseLinkMessage } from '../../src/sources/netlink/rtnl-link';
import { NETDEV_STAT_FILES, netdevAttrsFromLink } from '../../src/sources/sysfs/netdev';

const FIX = path.join(__dirname, '../fixtures/rtnl-link');

interface IpLink {
  ifindex: number;
  ifname: string;
  mtu: number;
  txqlen?: number;
  operstate: string;
  linkinfo?: { info_kind?: string };
  gso_max_size: number;
  gso_max_segs: number;
  tso_max_size: number;
  tso_max_segs: number;
  gro_max_size: number;
  stats64: { rx: Record<string, number>; tx: Record<string, number> };
}

function messages(): Array<{ buf: Buffer; start: number; end: number }> {
  const out: Array<{ buf: Buffer; start: number; end: number }> = [];
  forEachMessage(fs.readFileSync(path.join(FIX, 'link-stats.bin')), (m) => {
    if (m.type === RTM_NEWLINK) out.push({ buf: Buffer.from(m.buf.subarray(m.start, m.end)), start: 0, end: m.end - m.start });
  });
  return out;
}
const links = (): LinkRecord[] => messages().map((m) => parseLinkMessage(m.buf, m.start, m.end)!);
const ip = JSON.parse(fs.readFileSync(path.join(FIX, 'ip-link.json'), 'utf8')) as IpLink[];
const sysfs = JSON.parse(fs.readFileSync(path.join(FIX, 'sysfs.json'), 'utf8')) as Record<string, Record<string, string>>;

describe('RTM_NEWLINK with IFLA_STATS64 vs ip -d -s -s -j link and sysfs (captured together)', () => {
  const recs = links();

  it('lists the same devices with the same index, kind, mtu, txqlen and operstate', () => {
    expect(recs.map((l) => [l.ifindex, l.name, l.kind])).toEqual(ip.map((d) => [d.ifindex, d.ifname, d.linkinfo?.info_kind]));
    for (const d of ip) {
      const l = recs.find((r) => r.name === d.ifname)!;
      expect([d.ifname, l.mtu, l.txQueueLen]).toEqual([d.ifname, d.mtu, d.txqlen ?? 0]);
      expect([d.ifname, ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'][l.operstate!]]).toEqual([d.ifname, d.operstate.toLowerCase()]);
      expect([d.ifname, l.gsoMaxSize, l.gsoMaxSegs, l.tsoMaxSize, l.tsoMaxSegs, l.groMaxSize]).toEqual([d.ifname, d.gso_max_size, d.gso_max_segs, d.tso_max_size, d.tso_max_segs, d.gro_max_size]);
      expect([d.ifname, l.carrierChanges]).toEqual([d.ifname, d.stats64.tx.carrier_changes]);
      // ip's own names for the stats64 fields it prints
      expect([d.ifname, l.stats!.rx_bytes, l.stats!.rx_packets, l.stats!.tx_bytes, l.stats!.tx_packets, l.stats!.rx_over_errors, l.stats!.tx_window_errors]).toEqual([
        d.ifname, d.stats64.rx.bytes, d.stats64.rx.packets, d.stats64.tx.bytes, d.stats64.tx.packets, d.stats64.rx.over_errors, d.stats64.tx.window_errors,
      ]);
    }
    expect(recs.find((l) => l.name === 'fxA')!.stats!.rx_bytes).not.toBe(recs.find((l) => l.name === 'fxA')!.stats!.tx_bytes);
  });

  it('has every sysfs statistics/ counter and carrier count, and rx_otherhost_dropped beyond them', () => {
    for (const l of recs) {
      const f = sysfs[l.name];
      for (const s of NETDEV_STAT_FILES) expect([l.name, s, l.stats![s]]).toEqual([l.name, s, Number(f[`statistics/${s}`])]);
      expect([l.name, l.carrierChanges, l.carrierUpCount, l.carrierDownCount]).toEqual([l.name, Number(f.carrier_changes), Number(f.carrier_up_count), Number(f.carrier_down_count)]);
      expect(l.stats!.rx_otherhost_dropped).toBe(0);
      expect(Object.keys(l.stats!)).toEqual([...LINK_STATS64_FIELDS]);
    }
  });

  it('maps a record to the same NetdevAttrs the sysfs files give (carrier absent while down; speed/duplex from sysfs)', async () => {
    const noSys = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-rtnl-link-'));
    try {
      for (const l of recs) {
        const a = await netdevAttrsFromLink(noSys, l);
        const f = sysfs[l.name];
        expect([l.name, a.operstate, a.mtu, a.txQueueLen, a.carrier]).toEqual([
          l.name, f.operstate, Number(f.mtu), Number(f.tx_queue_len), f.carrier.startsWith('error') ? undefined : Number(f.carrier),
        ]);
        expect([a.speedMbps, a.duplex]).toEqual([undefined, undefined]); // no such files under noSys
        expect(a.stats.tx_bytes).toBe(Number(f['statistics/tx_bytes']));
      }
      expect(sysfs.tap9.carrier).toBe('error EINVAL'); // the fixture covers the down case
    } finally {
      fs.rmSync(noSys, { recursive: true, force: true });
    }
  });
});

describe('RTM_NEWLINK decoding edge cases', () => {
  const ifi = (index: number) => {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(772, 2);
    b.writeInt32LE(index, 4);
    b.writeUInt32LE(0x9, 8);
    return b;
  };
  const nla = (type: number, payload: Buffer) => {
    const b = Buffer.alloc((4 + payload.length + 3) & ~3);
    b.writeUInt16LE(4 + payload.length, 0);
    b.writeUInt16LE(type, 2);
    payload.copy(b, 4);
    return b;
  };
  const name = nla(3, Buffer.from('lo\0'));

  it('reads type and flags from ifinfomsg; no name = no record; absent attributes stay undefined', () => {
    const m = Buffer.concat([ifi(1), name]);
    expect(parseLinkMessage(m, 0, m.length)).toEqual({ ifindex: 1, name: 'lo', type: 772, flags: 9 });
    expect(parseLinkMessage(ifi(1), 0, 16)).toBeUndefined();
  });

  it('an older kernel sends 23 or 24 stats64 fields: the rest are absent, not 0', () => {
    const stats = Buffer.alloc(8 * 23);
    for (let i = 0; i < 23; i++) stats.writeUInt32LE(i + 1, 8 * i);
    stats.writeUInt32LE(2, 4); // rx_packets high word: 2 * 2^32 + 1
    const m = Buffer.concat([ifi(1), name, nla(23, stats)]);
    const l = parseLinkMessage(m, 0, m.length)!;
    expect(l.stats!.rx_packets).toBe(2 * 4294967296 + 1);
    expect(l.stats!.tx_compressed).toBe(23);
    expect(l.stats!.rx_nohandler).toBeUndefined();
    expect('rx_otherhost_dropped' in l.stats!).toBe(false);
  });

  it('rejects malformed messages with a DecodeError naming the attribute', () => {
    expect(() => parseLinkMessage(Buffer.alloc(10), 0, 10)).toThrow(/struct ifinfomsg needs 16/);
    const short = Buffer.concat([ifi(1), name, nla(4, Buffer.from([0xdc, 0x05]))]);
    expect(() => parseLinkMessage(short, 0, short.length)).toThrow(/IFLA_MTU has length 2/);
    const odd = Buffer.concat([ifi(1), name, nla(23, Buffer.alloc(100))]);
    expect(() => parseLinkMessage(odd, 0, odd.length)).toThrow(/IFLA_STATS64 has length 100/);
    const over = Buffer.concat([ifi(1), name]);
    over.writeUInt16LE(200, 16);
    expect(() => parseLinkMessage(over, 0, over.length)).toThrow(DecodeError);
  });

  it('random corruption of the captured messages gives a record or a DecodeError, nothing else', () => {
    const ms = messages();
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
    for (let i = 0; i < 2000; i++) {
      const m = ms[rnd(ms.length)];
      const b = Buffer.from(m.buf);
      for (let k = 0; k < 1 + rnd(4); k++) b[rnd(b.length)] = rnd(256);
      const end = rnd(4) === 0 ? rnd(b.length + 1) : b.length;
      try {
        parseLinkMessage(b, 0, end);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
      }
    }
  });
});
