// Address -> device over rtnetlink against `ip -j addr show` (iproute2) in this network namespace.
import { execFileSync } from 'child_process';
import { AddressDevices, fetchAddressTable } from '../../src/sources/netlink/rtnl-addr';
import { NETLINK_ROUTE, NetlinkSocket } from '../../src/sources/netlink/socket';

describe('rtnetlink address table vs ip -j addr show (live)', () => {
  it('lists the same devices and addresses, and maps each address to its device', async () => {
    const ip = JSON.parse(execFileSync('ip', ['-j', 'addr', 'show'], { encoding: 'utf8' })) as Array<{
      ifindex: number;
      ifname: string;
      addr_info: Array<{ local: string; prefixlen: number }>;
    }>;
    const sock = new NetlinkSocket(NETLINK_ROUTE);
    try {
      const t = await fetchAddressTable(sock);
      expect(t.links.map((l) => `${l.ifindex}:${l.name}`).sort()).toEqual(ip.map((d) => `${d.ifindex}:${d.ifname}`).sort());
      const want = ip.flatMap((d) => d.addr_info.map((a) => `${a.local}/${a.prefixlen}@${d.ifname}`)).sort();
      const names = new Map(t.links.map((l) => [l.ifindex, l.name]));
      expect(t.addrs.map((a) => `${a.address}/${a.prefixLen}@${names.get(a.ifindex)}`).sort()).toEqual(want);
      const devs = new AddressDevices({ fetch: () => fetchAddressTable(sock) });
      await devs.prepare(['127.0.0.1']);
      for (const d of ip) for (const a of d.addr_info) expect([a.local, devs.deviceOf(a.local)]).toEqual([a.local, d.ifname]);
      expect(devs.deviceOf('::ffff:127.0.0.1')).toBe('lo');
    } finally {
      sock.close();
    }
  });
});
