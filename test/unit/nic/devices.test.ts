// Device classification and include/exclude selection (src/sources/devices.ts) on the host-mq tree.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { classifyDevice, isSelected, listDevices, parseUevent, selectDevices, sysfsMatchesNetns } from '../../../src/sources/devices';
import { LiveLinks, parseLinkMessage } from '../../../src/sources/netlink/rtnl-link';
import { deviceExcludeFlag, deviceIncludeFlag } from '../../../src/sources/devices';
import { Config } from '../../../src/core/flags';
import { HOST_MQ, fakeLinks } from './fixtures';

const SYS = path.join(HOST_MQ, 'sys');
const re = (s: string) => Config.from([deviceIncludeFlag, deviceExcludeFlag], { 'collector.nic.device-include': s }).get(deviceIncludeFlag);

describe('device classification', () => {
  it('classifies every host-mq device from sysfs plus rtnetlink link kinds', async () => {
    const links = fakeLinks();
    const all = await listDevices(SYS, { links });
    expect(all.map((d) => [d.name, d.class, d.driver ?? '', d.kind ?? ''])).toEqual([
      ['bond0', 'bond', '', 'bond'],
      ['br-int', 'ovs-internal', '', 'openvswitch'],
      ['br0', 'bridge', '', 'bridge'],
      ['ens5', 'physical', 'ena', ''],
      ['eth0', 'physical', 'mlx5_core', ''],
      ['eth0.100', 'vlan', '', 'vlan'],
      ['eth1', 'physical', 'ixgbe', ''],
      ['eth2', 'physical', 'virtio_net', ''],
      ['eth3', 'physical', 'e1000', ''],
      ['lo', 'loopback', '', ''],
      ['ovs-system', 'ovs-datapath', '', 'openvswitch'],
      ['tap0', 'tun', '', 'tun'],
      ['veth3f2a1b', 'virtual', '', 'veth'],
    ]);
    expect(links.dumps).toBe(1);
    // The same from sysfs alone, but for the devices only the link kind tells apart.
    const sysOnly = await listDevices(SYS, { links: null });
    expect(sysOnly.map((d) => [d.name, d.class])).toEqual(all.map((d) => [d.name, ['br-int', 'ovs-system'].includes(d.name) || d.class === 'team' ? 'virtual' : d.class]));
  });

  it('selects physical, bond, vlan and OVS internal ports by default; an include regex replaces that; exclude applies last', async () => {
    const links = fakeLinks();
    const names = async (inc: RegExp | null, exc: RegExp | null) => (await selectDevices(SYS, inc, exc, { links })).map((d) => d.name);
    expect(await names(null, null)).toEqual(['bond0', 'br-int', 'ens5', 'eth0', 'eth0.100', 'eth1', 'eth2', 'eth3']);
    expect(await names(null, re('eth.*'))).toEqual(['bond0', 'br-int', 'ens5']);
    expect(await names(re('veth.*|lo|tap0'), null)).toEqual(['lo', 'tap0', 'veth3f2a1b']);
    expect(await names(re('eth0.*'), re('eth0\\.100'))).toEqual(['eth0']);
  });

  it('without a link-kind source, an OVS internal port cannot be told from a veth and is left out', async () => {
    const d = await selectDevices(SYS, null, null, { links: null });
    expect(d.map((x) => x.name)).not.toContain('br-int');
  });

  it('pure rules', () => {
    const f = { name: 'x', hasDevice: false, hasBonding: false, hasBridge: false, hasTunFlags: false };
    expect(classifyDevice({ ...f, flags: 0x9 })).toBe('loopback');
    expect(classifyDevice({ ...f, hasDevice: true, devtype: 'vlan' })).toBe('vlan');
    expect(classifyDevice({ ...f, kind: 'team' })).toBe('team');
    expect(classifyDevice({ ...f, hasDevice: true, devtype: 'wlan' })).toBe('physical');
    expect(classifyDevice({ ...f, kind: 'vxlan' })).toBe('virtual');
    expect(isSelected({ name: 'lo', class: 'loopback' }, null, null)).toBe(false);
    expect(isSelected({ name: 'team0', class: 'team' }, null, null)).toBe(true);
    expect(parseUevent('DEVTYPE=vlan\nINTERFACE=a=b\nIFINDEX=8\n')).toEqual(new Map([['DEVTYPE', 'vlan'], ['INTERFACE', 'a=b'], ['IFINDEX', '8']]));
  });

  it('uses rtnetlink for a sysfs root other than /sys only when it shows this namespace (same names and indexes)', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-netns-'));
    try {
      fs.symlinkSync('/sys', path.join(tmp, 'host-sys')); // like a host /sys mounted at /host/sys with hostNetwork
      expect(await sysfsMatchesNetns(path.join(tmp, 'host-sys'))).toBe(true);
      const viaLink = await listDevices(path.join(tmp, 'host-sys'));
      expect(viaLink.find((d) => d.name === 'lo')?.link?.stats).toBeDefined();
      expect(await sysfsMatchesNetns(SYS)).toBe(false); // the fixture tree is not this namespace
      expect((await listDevices(SYS)).every((d) => d.link === undefined)).toBe(true);
      // the comparison itself, against injected dumps of the same tree (two more names for it: the
      // decision is kept per root)
      fs.symlinkSync(SYS, path.join(tmp, 'a'));
      fs.symlinkSync(SYS, path.join(tmp, 'b'));
      expect(await sysfsMatchesNetns(path.join(tmp, 'a'), fakeLinks())).toBe(true);
      const partial = { links: async () => (await fakeLinks().links()).filter((l) => l.name !== 'eth3') };
      expect(await sysfsMatchesNetns(path.join(tmp, 'b'), partial)).toBe(false);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('lists this namespace over rtnetlink: the same names as /sys/class/net, one dump for concurrent callers', async () => {
    const live = new LiveLinks();
    try {
      const [a, b, c] = await Promise.all([listDevices('/sys', { links: live }), listDevices('/sys', { links: live }), live.links()]);
      expect(live.dumps).toBe(1);
      expect(a.map((d) => d.name)).toEqual(fs.readdirSync('/sys/class/net').sort());
      expect(b).toEqual(a);
      expect(c.map((l) => l.name).sort()).toEqual(a.map((d) => d.name));
      const lo = a.find((d) => d.name === 'lo')!;
      expect([lo.class, lo.kind, lo.link?.stats?.rx_packets !== undefined]).toEqual(['loopback', undefined, true]);
      await live.links();
      expect(live.dumps).toBe(2); // no caching beyond the dump in flight
    } finally {
      live.close();
    }
  });
});
