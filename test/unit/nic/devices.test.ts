// Device classification and include/exclude selection (src/sources/devices.ts) on the host-mq tree.
import * as path from 'path';
import { RtnlLinkKinds, classifyDevice, isSelected, listDevices, parseUevent, selectDevices } from '../../../src/sources/devices';
import { parseLinkMessage } from '../../../src/sources/netlink/rtnl-addr';
import { deviceExcludeFlag, deviceIncludeFlag } from '../../../src/sources/devices';
import { Config } from '../../../src/core/flags';
import { HOST_MQ, fakeKinds } from './fixtures';

const SYS = path.join(HOST_MQ, 'sys');
const re = (s: string) => Config.from([deviceIncludeFlag, deviceExcludeFlag], { 'collector.nic.device-include': s }).get(deviceIncludeFlag);

describe('device classification', () => {
  it('classifies every host-mq device from sysfs plus rtnetlink link kinds', async () => {
    const kinds = fakeKinds();
    const all = await listDevices(SYS, { linkKinds: kinds });
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
    // Devices with a bus device and loopback are not looked up.
    expect(kinds.calls).toEqual([[7, 12, 9, 8, 13, 11, 10]]);
  });

  it('selects physical, bond, vlan and OVS internal ports by default; an include regex replaces that; exclude applies last', async () => {
    const kinds = fakeKinds();
    const names = async (inc: RegExp | null, exc: RegExp | null) => (await selectDevices(SYS, inc, exc, { linkKinds: kinds })).map((d) => d.name);
    expect(await names(null, null)).toEqual(['bond0', 'br-int', 'ens5', 'eth0', 'eth0.100', 'eth1', 'eth2', 'eth3']);
    expect(await names(null, re('eth.*'))).toEqual(['bond0', 'br-int', 'ens5']);
    expect(await names(re('veth.*|lo|tap0'), null)).toEqual(['lo', 'tap0', 'veth3f2a1b']);
    expect(await names(re('eth0.*'), re('eth0\\.100'))).toEqual(['eth0']);
  });

  it('without a link-kind source, an OVS internal port cannot be told from a veth and is left out', async () => {
    const d = await selectDevices(SYS, null, null, { linkKinds: null });
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

  it('decodes RTM_NEWLINK link kinds', () => {
    const ifi = Buffer.alloc(16);
    ifi.writeInt32LE(12, 4);
    const name = Buffer.from([12, 0, 3, 0, ...Buffer.from('br-int\0'), 0]);
    const kind = Buffer.from([16, 0, 1, 0, ...Buffer.from('openvswitch\0')]);
    const linkinfo = Buffer.concat([Buffer.from([4 + kind.length, 0, 18, 0x80]), kind]);
    const msg = Buffer.concat([ifi, name, linkinfo]);
    expect(parseLinkMessage(msg, 0, msg.length)).toEqual({ ifindex: 12, name: 'br-int', kind: 'openvswitch' });
    expect(parseLinkMessage(Buffer.concat([ifi, name]), 0, 28)).toEqual({ ifindex: 12, name: 'br-int' });
    expect(() => parseLinkMessage(ifi, 0, 8)).toThrow(/struct ifinfomsg needs 16/);
  });

  it('reads link kinds of this machine over rtnetlink (loopback has none)', async () => {
    const live = new RtnlLinkKinds();
    try {
      const m = await live.kinds([1]);
      expect(m.get(1)).toBeNull();
    } finally {
      live.close();
    }
  });
});
