// The node reader of the diagnosis (src/sources/node-evidence.ts) on fixture trees: every /proc and /sys
// part comes from the same readers the collectors use, a failing part becomes one error line (never a
// throw), OVS is read at most once per OVS interval, and ovs-vswitchd's CPU time comes from
// /proc/PID/stat with the pid of the socket's discovery or of the pid file beside the socket.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NodeEvidenceReader, NodeReaderOptions } from '../../src/sources/node-evidence';
import { userHz } from '../../src/sources/procfs/cpuinfo';
import { vswitchdPid } from '../../src/sources/ovs/vswitchd';
import { HOST_MQ } from './nic/fixtures';
import { NetdevGenlClient } from '../../src/sources/netlink/netdev-genl';

const VM = path.join(__dirname, '../fixtures/procfs/vm-6.18');
const PROC = path.join(VM, 'proc');

let tmp: string;
let sysfs: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-node-ev-'));
  // CPUs of the VM fixture, network devices of the host-mq fixture.
  sysfs = path.join(tmp, 'sys');
  fs.mkdirSync(sysfs);
  fs.symlinkSync(path.join(VM, 'sys/devices'), path.join(sysfs, 'devices'));
  fs.symlinkSync(path.join(HOST_MQ, 'sys/class'), path.join(sysfs, 'class'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function fakeOvs(endpoint: { path: string; pid?: number } | null) {
  const calls: number[] = [];
  const snap = {
    takenAt: 0,
    unixctl: { up: true, connects: 1, commands: [], unparsed: [] },
    kernel: {},
    internalPorts: [{ device: 'br-int', bridge: 'br-int', datapath: 'system@ovs-system', local: true, type: 'internal', source: 'unixctl' }],
  };
  return {
    calls,
    reader: {
      read: async (maxAgeMs?: number) => {
        calls.push(maxAgeMs ?? -1);
        return snap as never;
      },
      close: () => undefined,
      client: { endpoint } as never,
    },
  };
}

const opts = (over: Partial<NodeReaderOptions> = {}): NodeReaderOptions => ({
  procfs: PROC,
  sysfs,
  ovs: null,
  ovsIntervalMs: 1000,
  sysctls: ['net.ipv4.tcp_wmem', 'net.core.default_qdisc', 'net.ipv4.no_such_sysctl'],
  ...over,
});

describe('NodeEvidenceReader on fixtures', () => {
  it('reads /proc, sysctls and the devices through the shared readers', async () => {
    const r = new NodeEvidenceReader(opts());
    try {
      r.watchDevice('eth0');
      const rec = await r.read(0);
      expect(rec.softnet?.map((x) => x.cpu)).toEqual([0, 1]);
      expect(rec.softirqs?.vectors.map((v) => v.name)).toContain('NET_RX');
      expect(rec.stat?.map((c) => c.cpu)).toEqual([0, 1]);
      expect(rec.netstat?.get('TcpExt')?.has('TCPBacklogDrop')).toBe(true);
      expect(rec.sysctl['net.ipv4.tcp_wmem']).toMatch(/^\d+ \d+ \d+$/);
      expect(rec.sysctl['net.core.default_qdisc']).toBeTruthy();
      expect(rec.sysctl['net.ipv4.no_such_sysctl']).toBeUndefined();
      expect(rec.devices?.map((d) => d.name)).toContain('eth0');
      expect(rec.attrs.get('eth0')?.mtu).toBeGreaterThan(0);
      expect(rec.queues.get('eth0')?.tx.length).toBeGreaterThan(0);
      expect(rec.ovs).toBeNull();
      expect(rec.vswitchdCpuSeconds).toBeUndefined();
      expect(rec.userHz).toBe(userHz());
      // A sysctl the kernel does not have is left out; the file sources all read (qdiscs and queue
      // statistics come from this machine's kernel, whatever it has).
      expect(rec.errors.filter((e) => !/^(qdisc|qstats)/.test(e))).toEqual([]);
    } finally {
      r.close();
    }
  });

  it('a device without queue statistics (EOPNOTSUPP) is asked again only after the configuration TTL', async () => {
    const refuse = jest.spyOn(NetdevGenlClient.prototype, 'qstats').mockRejectedValue(Object.assign(new Error('kernel answered EOPNOTSUPP'), { code: 'EOPNOTSUPP' }));
    const r = new NodeEvidenceReader(opts());
    try {
      r.watchDevice('eth0');
      for (const t of [0, 1000, 2000, 29000]) {
        const rec = await r.read(t);
        expect(rec.qstats.has('eth0')).toBe(false);
        expect(rec.errors.filter((e) => /^qstats/.test(e))).toEqual([]);
      }
      const eth0Calls = () => refuse.mock.calls.filter((c) => c[1] === 'eth0').length;
      expect(eth0Calls()).toBe(1);
      await r.read(31000);
      expect(eth0Calls()).toBe(2);
    } finally {
      r.close();
      refuse.mockRestore();
    }
  });

  it('a procfs without the files: one error line per part, nothing thrown', async () => {
    const empty = path.join(tmp, 'empty-proc');
    fs.mkdirSync(empty, { recursive: true });
    const r = new NodeEvidenceReader(opts({ procfs: empty }));
    try {
      const rec = await r.read(0);
      expect(rec.softnet).toBeUndefined();
      expect(rec.stat).toBeUndefined();
      for (const part of ['softnet_stat', 'softirqs', 'stat', 'netstat']) expect(rec.errors).toContainEqual(expect.stringMatching(new RegExp(`^${part}: `)));
      expect(rec.devices?.map((d) => d.name)).toContain('eth0');
    } finally {
      r.close();
    }
  });

  it('reads OVS at most once per OVS interval and ovs-vswitchd CPU time at every read', async () => {
    const ovs = fakeOvs({ path: path.join(tmp, 'ovs-vswitchd.14.ctl'), pid: 14 });
    const r = new NodeEvidenceReader(opts({ ovs: ovs.reader }));
    try {
      const a = await r.read(0);
      await r.read(500);
      expect(ovs.calls).toEqual([1000]);
      await r.read(1500);
      expect(ovs.calls).toEqual([1000, 1000]);
      expect(a.ovs?.unixctl.up).toBe(true);
      expect(a.ovsInternal.has('br-int')).toBe(true);
      // /proc/14/stat of the fixture: utime 1, stime 344 ticks
      expect(a.vswitchdCpuSeconds).toBeCloseTo(345 / userHz(), 9);
    } finally {
      r.close();
    }
  });

  it('finds the pid in the pid file beside a --ovs.unixctl socket; a malformed pid file is an error line', async () => {
    const dir = path.join(tmp, 'run');
    fs.mkdirSync(dir, { recursive: true });
    const ep = { path: path.join(dir, 'ovs-vswitchd.ctl') };
    fs.writeFileSync(path.join(dir, 'ovs-vswitchd.pid'), '22\n');
    expect(vswitchdPid(ep)).toBe(22);
    const r = new NodeEvidenceReader(opts({ ovs: fakeOvs(ep).reader }));
    try {
      const ticks = fs.readFileSync(path.join(PROC, '22/stat'), 'utf8').split(') ')[1].split(' ');
      expect((await r.read(0)).vswitchdCpuSeconds).toBeCloseTo((Number(ticks[11]) + Number(ticks[12])) / userHz(), 9);
      fs.writeFileSync(path.join(dir, 'ovs-vswitchd.pid'), 'not a pid\n');
      const bad = await r.read(5000);
      expect(bad.vswitchdCpuSeconds).toBeUndefined();
      expect(bad.errors).toContainEqual(expect.stringMatching(/^ovs-vswitchd stat: .*ovs-vswitchd\.pid: not a pid/));
    } finally {
      r.close();
    }
  });
});
