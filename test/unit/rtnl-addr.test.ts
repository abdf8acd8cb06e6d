// Address -> device: rtnetlink fixtures (test/fixtures/rtnl-addr/README.md) checked against `ip -j addr`,
// malformed messages, and the cache's refresh rules.
import * as fs from 'fs';
import * as path from 'path';
import { DecodeError, forEachMessage } from '../../src/sources/netlink/attrs';
import { AddrEntry, AddressDevices, AddressTable, RTM_NEWADDR, canonicalAddr, parseAddrMessage } from '../../src/sources/netlink/rtnl-addr';
import { LinkEntry, RTM_NEWLINK, parseLinkMessage } from '../../src/sources/netlink/rtnl-link';

const FIX = path.join(__dirname, '../fixtures/rtnl-addr');

function table(): AddressTable {
  const links: LinkEntry[] = [];
  const addrs: AddrEntry[] = [];
  forEachMessage(fs.readFileSync(path.join(FIX, 'link.bin')), (m) => {
    if (m.type === RTM_NEWLINK) links.push(parseLinkMessage(m.buf, m.start, m.end)!);
  });
  forEachMessage(fs.readFileSync(path.join(FIX, 'addr.bin')), (m) => {
    if (m.type === RTM_NEWADDR) addrs.push(parseAddrMessage(m.buf, m.start, m.end)!);
  });
  return { links, addrs };
}

describe('rtnetlink address and link dumps vs ip -j addr show', () => {
  const ip = JSON.parse(fs.readFileSync(path.join(FIX, 'ip-addr.json'), 'utf8')) as Array<{ ifindex: number; ifname: string; addr_info: Array<{ local: string; prefixlen: number }> }>;

  it('finds every device and every address ip lists, on the same device', async () => {
    const t = table();
    expect(t.links.map((l) => [l.ifindex, l.name]).sort()).toEqual(ip.map((d) => [d.ifindex, d.ifname]).sort());
    const want = ip.flatMap((d) => d.addr_info.map((a) => [a.local, a.prefixlen, d.ifname]));
    const names = new Map(t.links.map((l) => [l.ifindex, l.name]));
    expect(t.addrs.map((a) => [a.address, a.prefixLen, names.get(a.ifindex)]).sort()).toEqual(want.sort());
    const devs = new AddressDevices({ fetch: async () => t });
    await devs.refresh();
    for (const [addr, , dev] of want) expect(devs.deviceOf(addr as string)).toBe(dev);
    expect(devs.deviceOf('::ffff:127.0.0.1')).toBe('lo'); // v4-mapped socket address -> the IPv4's device
    expect(devs.deviceOf('198.51.100.1')).toBeUndefined();
  });

  it('rejects malformed messages with a DecodeError', () => {
    let msg: Buffer | null = null;
    forEachMessage(fs.readFileSync(path.join(FIX, 'addr.bin')), (m) => {
      msg ??= Buffer.from(m.buf.subarray(m.start, m.end));
    });
    const p = Buffer.from(msg!);
    expect(() => parseAddrMessage(p, 0, 6)).toThrow(/struct ifaddrmsg needs 8/);
    p.writeUInt16LE(200, 8); // first attribute overruns
    expect(() => parseAddrMessage(p, 0, p.length)).toThrow(DecodeError);
    const q = Buffer.from(msg!);
    // An IFA_ADDRESS of 2 bytes for AF_INET.
    const r = Buffer.concat([q.subarray(0, 8), Buffer.from([6, 0, 1, 0, 10, 0, 0, 0])]);
    expect(() => parseAddrMessage(r, 0, r.length)).toThrow(/address attribute of 2 bytes/);
    expect(() => parseLinkMessage(Buffer.alloc(10), 0, 10)).toThrow(/struct ifinfomsg needs 16/);
  });
});

describe('AddressDevices cache', () => {
  const tables: AddressTable[] = [
    { links: [{ ifindex: 1, name: 'lo' }, { ifindex: 5, name: 'br-int' }], addrs: [{ family: 2, address: '10.0.0.5', prefixLen: 24, ifindex: 5 }] },
    {
      links: [{ ifindex: 1, name: 'lo' }, { ifindex: 5, name: 'br-int' }, { ifindex: 6, name: 'eth1' }, { ifindex: 7, name: 'eth2' }],
      addrs: [
        { family: 2, address: '10.0.0.5', prefixLen: 24, ifindex: 5 },
        { family: 2, address: '10.0.1.9', prefixLen: 24, ifindex: 6 },
        { family: 10, address: 'fe80::1', prefixLen: 64, ifindex: 6 },
        { family: 10, address: 'fe80::1', prefixLen: 64, ifindex: 7 },
      ],
    },
  ];
  let now = 0;
  let loads = 0;
  const make = () =>
    new AddressDevices({
      ttlMs: 30_000,
      minRefreshMs: 2_000,
      clock: () => now,
      fetch: async () => tables[Math.min(loads++, tables.length - 1)],
    });
  beforeEach(() => {
    now = 0;
    loads = 0;
  });

  it('refreshes on the TTL, and on an unknown address at most once per minRefreshMs', async () => {
    const d = make();
    await d.prepare(['10.0.0.5']);
    expect(d.loads).toBe(1);
    expect(d.deviceOf('10.0.0.5')).toBe('br-int');
    now = 500;
    await d.prepare(['10.0.1.9']); // unknown, but the table is only 0.5 s old
    expect(d.loads).toBe(1);
    expect(d.deviceOf('10.0.1.9')).toBeUndefined();
    now = 2_500;
    await d.prepare(['10.0.1.9']); // unknown and 2.5 s old: reload
    expect(d.loads).toBe(2);
    expect(d.deviceOf('10.0.1.9')).toBe('eth1');
    now = 10_000;
    await d.prepare(['10.0.0.5', '10.0.1.9']); // all known, within TTL
    expect(d.loads).toBe(2);
    now = 33_000;
    await d.prepare([]);
    expect(d.loads).toBe(3);
  });

  it('uses the bound device for an address several devices hold (IPv6 link-local)', async () => {
    const d = make();
    loads = 1;
    await d.refresh();
    expect(d.deviceOf('fe80::1', 7)).toBe('eth2');
    expect(d.deviceOf('fe80::1', 6)).toBe('eth1');
    expect(d.deviceOf('fe80::1')).toBe('eth1');
    expect(d.deviceOf('192.0.2.1', 7)).toBe('eth2'); // not held by any device: the bound one
  });

  it('normalises user input the way the table stores addresses', () => {
    expect(canonicalAddr('::FFFF:10.0.0.5')).toBe('10.0.0.5');
    expect(canonicalAddr('2001:DB8:0:0::1')).toBe('2001:db8::1');
    expect(canonicalAddr('nope')).toBeUndefined();
  });
});
