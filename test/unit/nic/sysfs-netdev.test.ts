// Parsers and readers of /sys/class/net/DEV on the host-mq fixture (test/fixtures/nic/README.md).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  SysfsFormatError,
  formatCpuList,
  parseCpuList,
  parseCpuMask,
  parseDuplex,
  parseIntAttr,
  parseOperstate,
  parseQueueDirName,
  parseSpeed,
  readDeviceIrqs,
  readNetdevAttrs,
  readNetdevQueues,
  readRpsSockFlowEntries,
} from '../../../src/sources/sysfs/netdev';

const HOST = path.join(__dirname, '../../fixtures/nic/host-mq');
const SYS = path.join(HOST, 'sys');

describe('sysfs parsers', () => {
  it('parses CPU masks of any width, most significant word first', () => {
    expect(parseCpuMask('0\n', 'f')).toEqual([]);
    expect(parseCpuMask('e\n', 'f')).toEqual([1, 2, 3]);
    expect(parseCpuMask('00000000,00000003', 'f')).toEqual([0, 1]);
    expect(parseCpuMask('00000001,80000000', 'f')).toEqual([31, 32]);
    expect(parseCpuMask('ff', 'f')).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(() => parseCpuMask('0x3', 'x/rps_cpus')).toThrow(/x\/rps_cpus: not a hex CPU mask/);
    expect(() => parseCpuMask('', 'f')).toThrow(SysfsFormatError);
  });

  it('parses and formats CPU lists', () => {
    expect(parseCpuList('0-3,8,10-11\n', 'f')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(parseCpuList('\n', 'f')).toEqual([]);
    expect(() => parseCpuList('3-1', 'f')).toThrow(/bad CPU range/);
    expect(() => parseCpuList('a', 'f')).toThrow(/not a CPU list/);
    expect(formatCpuList([0, 1, 2, 3, 8, 10, 11])).toBe('0-3,8,10-11');
    expect(formatCpuList([5])).toBe('5');
    expect(formatCpuList([])).toBe('');
    for (const s of ['0', '0-1', '1,3,5-7', '0-63']) expect(formatCpuList(parseCpuList(s, 'f'))).toBe(s);
  });

  it('treats speed -1 as unknown and rejects garbage with the file name', () => {
    expect(parseSpeed('-1\n', 'f')).toBeUndefined();
    expect(parseSpeed('25000\n', 'f')).toBe(25000);
    expect(() => parseSpeed('fast', '/sys/class/net/x/speed')).toThrow('/sys/class/net/x/speed: expected an integer, got "fast"');
    expect(parseDuplex('unknown\n', 'f')).toBeUndefined();
    expect(parseDuplex('half\n', 'f')).toBe('half');
    expect(() => parseDuplex('quarter', 'f')).toThrow(/unexpected duplex/);
    expect(parseOperstate('lowerlayerdown\n', 'f')).toBe('lowerlayerdown');
    expect(() => parseOperstate('sideways', 'f')).toThrow(/unexpected operstate/);
    expect(() => parseIntAttr('99999999999999999999', 'f')).toThrow(/beyond 2\^53/);
    expect(parseQueueDirName('rx-12')).toEqual({ dir: 'rx', queue: 12 });
    expect(parseQueueDirName('tx-0')).toEqual({ dir: 'tx', queue: 0 });
    expect(parseQueueDirName('rx-x')).toBeUndefined();
  });
});

describe('sysfs readers on host-mq', () => {
  it('reads attributes and all 24 statistics of the mlx5 device', async () => {
    const a = await readNetdevAttrs(SYS, 'eth0');
    expect(a).toMatchObject({ name: 'eth0', operstate: 'up', carrier: 1, speedMbps: 100000, duplex: 'full', mtu: 9000, txQueueLen: 1000, carrierChanges: 4, carrierUpCount: 2, carrierDownCount: 2 });
    expect(Object.keys(a!.stats)).toHaveLength(24);
    expect(a!.stats.rx_missed_errors).toBe(42);
    expect(a!.stats.rx_bytes).toBe(15000000000);
  });

  it('leaves absent attributes undefined (e1000 with link down has no speed file) and unknown speed/duplex too', async () => {
    const e = await readNetdevAttrs(SYS, 'eth3');
    expect(e!.speedMbps).toBeUndefined();
    expect(e!.duplex).toBeUndefined();
    expect(e!.operstate).toBe('down');
    const v = await readNetdevAttrs(SYS, 'eth2');
    expect(v!.speedMbps).toBeUndefined();
    expect(v!.duplex).toBeUndefined();
  });

  it('returns null for a device that is gone', async () => {
    expect(await readNetdevAttrs(SYS, 'nosuchdev')).toBeNull();
    expect(await readNetdevQueues(SYS, 'nosuchdev')).toBeNull();
  });

  it('reads RPS, XPS, tx_timeout and BQL per queue', async () => {
    const q = await readNetdevQueues(SYS, 'eth0', { txDetails: true });
    expect(q!.rx.map((r) => [r.queue, r.rpsCpus, r.rpsFlowCnt])).toEqual([
      [0, [], 0],
      [1, [], 0],
      [2, [], 0],
      [3, [1, 2, 3], 4096],
    ]);
    expect(q!.tx.map((t) => [t.queue, t.xpsCpus, t.txTimeout, t.bqlLimit, t.bqlInflight])).toEqual([
      [0, [0], 0, 30000, 0],
      [1, [1], 0, 30001, 1514],
      [2, [2], 3, 30002, 3028],
      [3, [3], 0, 30003, 4542],
    ]);
    const single = await readNetdevQueues(SYS, 'eth3');
    expect(single!.tx[0].xpsCpus).toBeUndefined(); // single-queue: no xps_cpus
    expect(single!.tx[0].bqlLimit).toBeUndefined(); // not asked for
    expect(await readRpsSockFlowEntries(path.join(HOST, 'proc'))).toBe(32768);
  });

  it('finds MSI vectors on the PCI function itself, on the PCI parent of virtio, and never on an upstream port', async () => {
    expect((await readDeviceIrqs(SYS, 'eth0'))!.msiIrqs).toEqual([98, 99, 100, 101, 102]);
    const v = await readDeviceIrqs(SYS, 'eth2');
    expect(v!.msiIrqs).toEqual([40, 41, 42, 43, 44]);
    expect(path.basename(v!.busDevice)).toBe('0000:00:04.0');
    const legacy = await readDeviceIrqs(SYS, 'eth3');
    expect(legacy!.msiIrqs).toEqual([]); // not the root port's vector 25
    expect(path.basename(legacy!.busDevice)).toBe('0000:02:00.0');
    expect(await readDeviceIrqs(SYS, 'bond0')).toBeUndefined();
  });

  describe('malformed trees', () => {
    let tmp: string;
    beforeEach(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-nic-sysfs-'));
      fs.cpSync(SYS, path.join(tmp, 'sys'), { recursive: true, verbatimSymlinks: true });
    });
    afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

    it('names the file whose content does not parse', async () => {
      const f = path.join(tmp, 'sys/class/net/eth0/statistics/rx_dropped');
      fs.writeFileSync(f, 'lots\n');
      await expect(readNetdevAttrs(path.join(tmp, 'sys'), 'eth0')).rejects.toThrow(`${path.join(tmp, 'sys/class/net/eth0/statistics/rx_dropped')}: expected an integer, got "lots"`);
    });

    it('rejects a bad rps_cpus mask', async () => {
      fs.writeFileSync(path.join(tmp, 'sys/class/net/eth0/queues/rx-3/rps_cpus'), 'zz\n');
      await expect(readNetdevQueues(path.join(tmp, 'sys'), 'eth0')).rejects.toThrow(/rx-3\/rps_cpus: not a hex CPU mask/);
    });

    it('omits a statistics file that is missing instead of reporting 0', async () => {
      fs.rmSync(path.join(tmp, 'sys/class/net/eth0/statistics/rx_nohandler'));
      const a = await readNetdevAttrs(path.join(tmp, 'sys'), 'eth0');
      expect(a!.stats.rx_nohandler).toBeUndefined();
      expect(Object.keys(a!.stats)).toHaveLength(23);
    });

    it('fails on a directory that is not a net device', async () => {
      for (const f of ['operstate', 'mtu']) fs.rmSync(path.join(tmp, 'sys/class/net/eth1', f));
      await expect(readNetdevAttrs(path.join(tmp, 'sys'), 'eth1')).rejects.toThrow(/has neither operstate nor mtu/);
    });
  });
});
