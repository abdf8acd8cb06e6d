// ethtool generic-netlink decoders on captured (virtio, Linux 6.18) and built (mlx5-like) replies.
import { DecodeError, GENL_HDRLEN, attrMap, forEachAttr } from '../../../src/sources/netlink/attrs';
import {
  ETH_SS_FEATURES,
  decodeChannels,
  decodeFeatures,
  decodePause,
  decodeRings,
  decodeStats,
  pauseRequest,
  ringsRequest,
  statsRequest,
  strsetRequest,
} from '../../../src/sources/netlink/ethtool';
import { messages, mlx5, single, statsWithNames, strsets, virtio } from './fixtures';

describe('ethtool genl decoders: captured virtio_net eth0 (Linux 6.18)', () => {
  it('decodes RINGS and CHANNELS as `ethtool -g/-l eth0` showed them', () => {
    expect(virtio.rings()).toEqual({ rxMax: 256, txMax: 256, rx: 256, tx: 256 });
    expect(virtio.channels()).toEqual({ combinedMax: 1, combined: 1 });
  });

  it('decodes COALESCE as `ethtool -c eth0` showed it (rx/tx-usecs 0, rx/tx-frames 1, adaptive RX off, TX n/a)', () => {
    expect(virtio.coalesce()).toEqual({ rxUsecs: 0, rxFrames: 1, txUsecs: 0, txFrames: 1, adaptiveRx: false, adaptiveTx: undefined });
  });

  it('decodes verbose FEATURES lists by presence and the HW set by VALUE flag', () => {
    const f = virtio.features();
    // ethtool -k eth0 on the capture machine: tcp-segmentation on, tx-checksum-ipv4 off [fixed], lro off [fixed], rx-checksumming on [fixed]
    expect(f.get('tx-tcp-segmentation')).toEqual({ active: true, wanted: true, fixed: false });
    expect(f.get('tx-checksum-ipv4')).toEqual({ active: false, wanted: false, fixed: true });
    expect(f.get('rx-lro')).toEqual({ active: false, wanted: false, fixed: true });
    expect(f.get('rx-checksum')).toMatchObject({ active: true, fixed: true });
    expect(f.get('rx-gro')).toEqual({ active: true, wanted: true, fixed: false });
    // unnamed (reserved) bits are skipped, every other kernel feature is listed
    expect(f.has('')).toBe(false);
    expect(f.size).toBe([...strsets().get(ETH_SS_FEATURES)!.values()].filter((n) => n !== '').length);
  });

  it('decodes STATS groups that virtio leaves empty', () => {
    const groups = statsWithNames('virtio-eth0.stats.bin');
    expect(groups.map((g) => [g.group, g.ssId, g.stats.size])).toEqual([
      ['eth-phy', 17, 0],
      ['eth-mac', 18, 0],
      ['eth-ctrl', 19, 0],
      ['rmon', 20, 0],
      ['phydev', 21, 0],
    ]);
    expect(groups[1].names.get(13)).toBe('FramesLostDueToIntMACRcvError');
  });
});

describe('ethtool genl decoders: built mlx5-like eth0', () => {
  it('decodes rings and channels, ignoring attributes it does not export', () => {
    expect(mlx5.rings()).toEqual({ rxMax: 8192, txMax: 8192, rx: 1024, tx: 1024, cqeSize: 0 });
    expect(mlx5.channels()).toEqual({ rxMax: 0, txMax: 0, otherMax: 0, combinedMax: 63, combined: 4 });
    expect(mlx5.coalesce()).toEqual({ rxUsecs: 8, rxFrames: 128, txUsecs: 16, txFrames: 32, adaptiveRx: true, adaptiveTx: false });
  });

  it('reports "requested on" and "fixed" the way ethtool -k does', () => {
    const f = mlx5.features();
    expect(f.get('tx-tcp-segmentation')).toEqual({ active: false, wanted: true, fixed: false });
    expect(f.get('tx-tcp6-segmentation')).toEqual({ active: true, wanted: true, fixed: false });
    expect(f.get('highdma')).toEqual({ active: true, wanted: true, fixed: true });
    expect(f.get('tx-checksum-ip-generic')).toEqual({ active: false, wanted: false, fixed: true }); // not in HW value
    expect(f.get('rx-gro-hw')).toEqual({ active: true, wanted: true, fixed: false });
    expect(f.size).toBe(19);
  });

  it('decodes compact bitsets to the same state given the feature string set', () => {
    const names = strsets().get(ETH_SS_FEATURES)!;
    const compact = single('mlx5-eth0.features-compact.bin', (b, s, e) => decodeFeatures(b, s, e, names));
    expect(compact).toEqual(mlx5.features());
  });

  it('decodes pause settings and u64 pause frame counters', () => {
    expect(mlx5.pause()).toEqual({ autoneg: false, rx: true, tx: true, txFrames: 0, rxFrames: 123456789012 });
  });

  it('decodes stats groups numbered from attribute type 0, across GRP_PAD, with RMON histograms', () => {
    const g = mlx5.stats();
    const mac = g.find((x) => x.group === 'eth-mac')!;
    expect([...mac.stats].map(([i, v]) => [mac.names.get(i), v])).toEqual([
      ['FramesTransmittedOK', 9876543210],
      ['FramesReceivedOK', 8765432109],
      ['FrameCheckSequenceErrors', 12],
      ['OctetsTransmittedOK', 12345678901234],
      ['OctetsReceivedOK', 11234567890123],
      ['FramesLostDueToIntMACRcvError', 34],
    ]);
    expect(g.find((x) => x.group === 'eth-phy')!.stats.get(0)).toBe(7); // type 0 is data, not "unspec"
    const rmon = g.find((x) => x.group === 'rmon')!;
    expect(rmon.histRx).toEqual([
      { low: 0, high: 64, value: 100 },
      { low: 65, high: 127, value: 200 },
      { low: 128, high: 255, value: 300 },
      { low: 1519, high: 10240, value: 4000000000 },
    ]);
    expect(rmon.histTx).toHaveLength(2);
    expect(g.find((x) => x.group === 'phydev')!.stats.size).toBe(0);
  });
});

describe('ethtool genl decoders: malformed and mismatched replies', () => {
  it('fails on an attribute length that overruns the message, naming the message', () => {
    const [m] = messages('bad.rings-overrun.bin');
    expect(() => decodeRings(m.buf, m.start, m.end)).toThrow(DecodeError);
    expect(() => decodeRings(m.buf, m.start, m.end)).toThrow(/RINGS_GET_REPLY: attribute type 1 length 200 overruns/);
  });

  it('fails on a stats counter that is not 8 bytes', () => {
    const [m] = messages('bad.stats-4-byte-counter.bin');
    expect(() => decodeStats(m.buf, m.start, m.end)).toThrow(/STAT 0: counter of 4 bytes \(want 8\)/);
  });

  it('refuses a reply of another command (request/reply ids differ: RINGS 15 → 16)', () => {
    const [m] = messages('mlx5-eth0.channels.bin');
    expect(() => decodeRings(m.buf, m.start, m.end)).toThrow(/genl cmd 18, expected 16/);
    expect(() => decodePause(m.buf, m.start, m.end)).toThrow(/expected 22/);
    expect(() => decodeChannels(m.buf, m.start, m.start + 2)).toThrow(/genl cmd|shorter than genlmsghdr/);
  });
});

describe('ethtool genl requests', () => {
  it('puts the STATS header in attribute 2 and a NOMASK GROUPS bitset in 3', () => {
    const b = statsRequest(7, ['eth-mac', 'rmon']);
    expect(b[0]).toBe(32);
    const a = attrMap(b, GENL_HDRLEN, b.length, 'req');
    expect([...a.keys()]).toEqual([2, 3]);
    const hdr = attrMap(b, a.get(2)!.off, a.get(2)!.off + a.get(2)!.len, 'hdr');
    expect(b.readUInt32LE(hdr.get(1)!.off)).toBe(7);
    const names: string[] = [];
    const groups = attrMap(b, a.get(3)!.off, a.get(3)!.off + a.get(3)!.len, 'groups');
    expect(groups.has(1)).toBe(true); // NOMASK
    forEachAttr(b, groups.get(3)!.off, groups.get(3)!.off + groups.get(3)!.len, 'bits', (_t, off, len) => {
      const bit = attrMap(b, off, off + len, 'bit');
      names.push(b.toString('utf8', bit.get(2)!.off, bit.get(2)!.off + bit.get(2)!.len - 1));
    });
    expect(names).toEqual(['eth-mac', 'rmon']);
  });

  it('asks for pause stats with ETHTOOL_FLAG_STATS and sends an empty header for global string sets', () => {
    const p = pauseRequest(3);
    const hdr = attrMap(p, GENL_HDRLEN, p.length, 'req').get(1)!;
    const h = attrMap(p, hdr.off, hdr.off + hdr.len, 'hdr');
    expect(p.readUInt32LE(h.get(3)!.off)).toBe(4);
    expect(ringsRequest(3)[0]).toBe(15);
    const s = strsetRequest([16]);
    const sa = attrMap(s, GENL_HDRLEN, s.length, 'req');
    expect(sa.get(1)!.len).toBe(0);
    expect(sa.has(2)).toBe(true);
  });
});
