import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DecodeError, forEachMessage } from '../../src/sources/netlink/attrs';
import {
  decodeOvsDatapath,
  decodeOvsVport,
  dpDumpRequest,
  ovsModuleLoaded,
  readKernelOvs,
  vportDumpRequest,
} from '../../src/sources/netlink/ovs';
import { DP_FAMILY, FakeGenl, VPORT_FAMILY, doneMessage, dpAttrs, loadHex, ovsMessage, vportAttrs } from '../support/ovs-genl';

/** Decode every data message of a datagram with `fn`. */
function decodeAll<T>(dgram: Buffer, fn: (b: Buffer, s: number, e: number) => T): T[] {
  const out: T[] = [];
  forEachMessage(dgram, (m) => {
    if (m.type > 0x0f) out.push(fn(m.buf, m.start, m.end));
  });
  return out;
}

const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

function fakeSysfs(loaded: boolean): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-sysfs-'));
  tmpDirs.push(dir);
  if (loaded) fs.mkdirSync(path.join(dir, 'module', 'openvswitch'), { recursive: true });
  return dir;
}

describe('OVS datapath genetlink decoding (fixtures from the header layout)', () => {
  it('decodes the datapath dump fixture', () => {
    expect(decodeAll(loadHex('dp-dump.hex'), decodeOvsDatapath)).toEqual([
      {
        ifindex: 5,
        name: 'ovs-system',
        hit: 1289452,
        missed: 3127,
        lost: 12,
        flows: 27,
        maskHit: 3987364,
        masks: 9,
        cacheHit: 1201190,
        masksCacheSize: 256,
        userFeatures: 0xb,
      },
    ]);
  });

  it('decodes the vport dump fixture, including upcall stats numbered from 0', () => {
    const vs = decodeAll(loadHex('vport-dump.hex'), decodeOvsVport);
    expect(vs.map((v) => [v.portNo, v.type, v.name, v.ifindex])).toEqual([
      [0, 'internal', 'ovs-system', 5],
      [1, 'internal', 'br-int', 6],
      [2, 'system', 'eth1', 3],
    ]);
    expect(vs[2]).toEqual({
      dpIfindex: 5,
      portNo: 2,
      typeId: 1,
      type: 'system',
      name: 'eth1',
      ifindex: 3,
      netnsid: undefined,
      stats: { rxPackets: 1190331, txPackets: 2210551, rxBytes: 80123114, txBytes: 3291102553, rxErrors: 0, txErrors: 0, rxDropped: 0, txDropped: 7 },
      upcallSuccess: 3074,
      upcallFail: 12,
    });
  });

  it('the test builder produces the same bytes as the fixtures', () => {
    const dp = ovsMessage(DP_FAMILY, 3, 2, 5, dpAttrs({ ifindex: 5, name: 'ovs-system', stats: [1289452, 3127, 12, 27], megaflow: { maskHit: 3987364, masks: 9, cacheHit: 1201190 }, userFeatures: 0xb, masksCacheSize: 256 }), 2, 0x1234);
    expect(Buffer.concat([dp, doneMessage(0, 0x1234)]).toString('hex')).toBe(loadHex('dp-dump.hex').toString('hex'));
    const v2 = ovsMessage(VPORT_FAMILY, 3, 1, 5, vportAttrs({ portNo: 2, type: 1, name: 'eth1', ifindex: 3, stats: [1190331, 2210551, 80123114, 3291102553, 0, 0, 0, 7], upcall: { success: 3074, fail: 12 } }), 2, 0x1234);
    expect(loadHex('vport-dump.hex').includes(v2)).toBe(true);
  });

  it('skips PAD attributes and reads u64 at unaligned offsets', () => {
    const msg = ovsMessage(DP_FAMILY, 3, 2, 9, dpAttrs({ ifindex: 9, name: 'x', stats: [2 ** 40 + 1, 2, 3, 4], megaflow: { maskHit: 5, masks: 6, cacheHit: 7 }, masksCacheSize: 8, pad: true }));
    const [dp] = decodeAll(msg, decodeOvsDatapath);
    expect([dp.hit, dp.missed, dp.lost, dp.flows, dp.maskHit, dp.masks, dp.cacheHit]).toEqual([2 ** 40 + 1, 2, 3, 4, 5, 6, 7]);
    const vm = ovsMessage(VPORT_FAMILY, 3, 1, 9, vportAttrs({ portNo: 3, type: 4, name: 'vxlan_sys_4789', stats: [1, 2, 3, 4, 5, 6, 7, 8], pad: true, upcall: { success: 9, fail: 10, reversed: true } }));
    const [v] = decodeAll(vm, decodeOvsVport);
    expect(v.type).toBe('vxlan');
    expect(v.stats).toEqual({ rxPackets: 1, txPackets: 2, rxBytes: 3, txBytes: 4, rxErrors: 5, txErrors: 6, rxDropped: 7, txDropped: 8 });
    expect([v.upcallSuccess, v.upcallFail]).toEqual([9, 10]);
  });

  it('does not trust n_cache_hit without the masks cache (kernel < 5.9: the slot was padding)', () => {
    const msg = ovsMessage(DP_FAMILY, 3, 2, 9, dpAttrs({ ifindex: 9, name: 'old', stats: [1, 2, 3, 4], megaflow: { maskHit: 5, masks: 6, cacheHit: 0 } }));
    const [dp] = decodeAll(msg, decodeOvsDatapath);
    expect(dp.maskHit).toBe(5);
    expect(dp.cacheHit).toBeUndefined();
    expect(dp.masksCacheSize).toBeUndefined();
  });

  it('leaves absent fields absent (no upcall stats before 6.2, unknown vport type named)', () => {
    const [v] = decodeAll(ovsMessage(VPORT_FAMILY, 3, 1, 9, vportAttrs({ portNo: 1, type: 99, name: 'x' })), decodeOvsVport);
    expect(v.type).toBe('type99');
    expect(v.stats).toBeUndefined();
    expect(v.upcallSuccess).toBeUndefined();
  });

  it('fails with a DecodeError naming the attribute on short structs and broken lengths', () => {
    const shortStats = ovsMessage(DP_FAMILY, 3, 2, 1, [...dpAttrs({ ifindex: 1, name: 'x' }), Buffer.from([0x0c, 0, 3, 0, 1, 2, 3, 4, 5, 6, 7, 8])]);
    expect(() => decodeAll(shortStats, decodeOvsDatapath)).toThrow(/OVS_DP_ATTR_STATS: struct has 8 bytes, want 32/);
    const badLen = ovsMessage(DP_FAMILY, 3, 2, 1, [Buffer.from([0xff, 0, 1, 0])]);
    expect(() => decodeAll(badLen, decodeOvsDatapath)).toThrow(DecodeError);
    const noName = ovsMessage(DP_FAMILY, 3, 2, 1, []);
    expect(() => decodeAll(noName, decodeOvsDatapath)).toThrow(/no OVS_DP_ATTR_NAME/);
    const shortUpcall = ovsMessage(VPORT_FAMILY, 3, 1, 1, [Buffer.from([0x0c, 0, 0x0a, 0x80, 0x08, 0, 0, 0, 1, 0, 0, 0])]);
    expect(() => decodeAll(shortUpcall, decodeOvsVport)).toThrow(/child 0 has 4 bytes, want 8/);
  });

  it('builds dump requests with the ovs_header', () => {
    expect(dpDumpRequest().toString('hex')).toBe('0302000000000000');
    expect(vportDumpRequest(5).toString('hex')).toBe('0301000005000000');
  });
});

describe('readKernelOvs', () => {
  const answers = () => ({ ctrl: loadHex('ctrl-families.hex'), dp: loadHex('dp-dump.hex'), vports: { 5: loadHex('vport-dump.hex') } });

  it('sends nothing when /sys/module/openvswitch is absent (no module autoload)', async () => {
    const sysfs = fakeSysfs(false);
    const fake = new FakeGenl(answers());
    expect(await ovsModuleLoaded(sysfs)).toBe(false);
    expect(await readKernelOvs(fake, sysfs)).toBeNull();
    expect(fake.requests).toEqual([]);
  });

  it('finds the families by dumping the family table, then dumps datapaths and their vports', async () => {
    const fake = new FakeGenl(answers());
    const st = await readKernelOvs(fake, fakeSysfs(true));
    expect(fake.requests.map((r) => [r.type, r.dump])).toEqual([
      [0x10, true], // CTRL_CMD_GETFAMILY dump, never a by-name lookup
      [DP_FAMILY, true],
      [VPORT_FAMILY, true],
    ]);
    expect(fake.requests[0].body.length).toBe(4); // no CTRL_ATTR_FAMILY_NAME: nothing to autoload
    expect(fake.requests[2].body.readInt32LE(4)).toBe(5); // the datapath's ifindex in ovs_header
    expect(st!.datapaths).toHaveLength(1);
    expect(st!.datapaths[0]).toMatchObject({ name: 'ovs-system', ifindex: 5, hit: 1289452 });
    expect(st!.datapaths[0].vports.map((v) => v.name)).toEqual(['ovs-system', 'br-int', 'eth1']);
    expect(st!.interrupted).toBe(false);
  });

  it('returns null when the module is loaded but the families are not registered', async () => {
    const ctrlWithoutOvs = Buffer.concat([doneMessage(0)]);
    const fake = new FakeGenl({ ctrl: ctrlWithoutOvs, dp: Buffer.alloc(0), vports: {} });
    expect(await readKernelOvs(fake, fakeSysfs(true))).toBeNull();
    expect(fake.requests).toHaveLength(1);
  });

  it('propagates a kernel error from a vport dump (ENODEV)', async () => {
    const fake = new FakeGenl({ ...answers(), vports: {} });
    await expect(readKernelOvs(fake, fakeSysfs(true))).rejects.toThrow(/ovs_vport dump of ovs-system \(dp_ifindex 5\).*ENODEV/);
  });
});
