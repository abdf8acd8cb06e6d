// The NetlinkSocket against the running kernel: genl family lookup and dump, error paths, concurrency.
import * as fs from 'fs';
import { genlBody } from '../../src/sources/netlink/attrs';
import { GENL_ID_CTRL, listFamilies, resolveFamily } from '../../src/sources/netlink/genl';
import { NETLINK_GENERIC, NetlinkError, NetlinkSocket } from '../../src/sources/netlink/socket';

describe('NetlinkSocket (live kernel)', () => {
  let sock: NetlinkSocket;
  beforeEach(() => {
    sock = new NetlinkSocket(NETLINK_GENERIC);
  });
  afterEach(() => sock.close());

  it('resolves the ethtool family to the id the control family lists', async () => {
    const fam = await resolveFamily(sock, 'nlctrl');
    expect(fam.id).toBe(GENL_ID_CTRL);
    const all = await listFamilies(sock);
    expect(all.get('nlctrl')).toBe(GENL_ID_CTRL);
    if (all.has('ethtool')) expect((await resolveFamily(sock, 'ethtool')).id).toBe(all.get('ethtool'));
    expect(all.size).toBeGreaterThan(3);
  });

  it('turns NLMSG_ERROR into a NetlinkError with the errno name', async () => {
    await expect(resolveFamily(sock, 'fp_nofamily')).rejects.toMatchObject({ code: 'ENOENT', errno: -2 });
  });

  it('serialises concurrent dumps on one socket (no EBUSY)', async () => {
    const results = await Promise.all([listFamilies(sock), listFamilies(sock), resolveFamily(sock, 'nlctrl'), listFamilies(sock)]);
    expect((results[0] as Map<string, number>).size).toBe((results[3] as Map<string, number>).size);
  });

  it('rejects requests after close and fails a request the kernel never answers (bad command) cleanly', async () => {
    // Command 0xee does not exist in nlctrl: the kernel answers EOPNOTSUPP.
    await expect(
      sock.request(genlBody(0xee, 1), GENL_ID_CTRL, 0, { context: 'bogus ctrl cmd', onMessage: () => {} }),
    ).rejects.toBeInstanceOf(NetlinkError);
    sock.close();
    await expect(listFamilies(sock)).rejects.toThrow(/closed/);
  });

  it('does not autoload modules when listing families', async () => {
    const before = fs.existsSync('/sys/module/openvswitch');
    const all = await listFamilies(sock);
    expect(all.has('ovs_datapath')).toBe(before);
    expect(fs.existsSync('/sys/module/openvswitch')).toBe(before);
  });
});
