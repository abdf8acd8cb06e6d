// findNetlinkFd (src/sources/netlink/batch.ts): the descriptor of one of this process's netlink sockets,
// from /proc/self/net/netlink (protocol + port id -> inode) and the /proc/self/fd links. On a fixture
// procfs, and on the live one for a socket this test opens.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NetlinkBatchSocket, findNetlinkFd } from '../../src/sources/netlink/batch';

const NETLINK_HEADER = 'sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n';
const row = (eth: number, pid: number, inode: number) => `0000000000000000 ${eth}   ${pid} 00000000 0        0        0     2        0        ${inode}\n`;

describe('findNetlinkFd', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-nlfd-'));
    fs.mkdirSync(path.join(dir, 'self', 'net'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'self', 'fd'));
    fs.writeFileSync(path.join(dir, 'self', 'net', 'netlink'), NETLINK_HEADER + row(0, 900, 111) + row(4, 900, 222) + row(4, 901, 333));
    for (const [fd, target] of [['0', '/dev/null'], ['5', 'socket:[111]'], ['7', 'socket:[222]'], ['9', 'pipe:[333]']]) fs.symlinkSync(target, path.join(dir, 'self', 'fd', fd));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('matches protocol and port id, then the socket inode among the descriptors', () => {
    expect(findNetlinkFd(4, 900, dir)).toBe(7);
    expect(findNetlinkFd(0, 900, dir)).toBe(5);
  });

  it('is null for no such socket, an inode no descriptor links to, or no procfs', () => {
    expect(findNetlinkFd(4, 902, dir)).toBeNull();
    expect(findNetlinkFd(4, 901, dir)).toBeNull(); // inode 333 is only a pipe's
    expect(findNetlinkFd(4, 900, path.join(dir, 'missing'))).toBeNull();
  });

  it('finds a live socket of this process (NETLINK_SOCK_DIAG), whose descriptor is that socket', () => {
    const s = new NetlinkBatchSocket(4);
    try {
      expect(s.direct).toBe(true);
      const fd = (s as unknown as { fd: number }).fd;
      const inode = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`))?.[1];
      const line = fs
        .readFileSync('/proc/self/net/netlink', 'utf8')
        .split('\n')
        .find((l) => l.trim().split(/\s+/)[9] === inode);
      expect(line?.trim().split(/\s+/)[1]).toBe('4');
    } finally {
      s.close();
    }
    const viaPackage = new NetlinkBatchSocket(4, { packageIo: true });
    expect(viaPackage.direct).toBe(false);
    viaPackage.close();
  });
});
