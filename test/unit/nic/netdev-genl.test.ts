// netdev generic-netlink decoders: qstats (uint 4/8 bytes), queues, NAPIs.
import { DecodeError, GENL_HDRLEN, attrMap } from '../../../src/sources/netlink/attrs';
import { decodeQstats, qstatsRequest } from '../../../src/sources/netlink/netdev-genl';
import { rolesFromNapi } from '../../../src/collectors/irq';
import { messages, mlx5, virtio } from './fixtures';

describe('netdev genl QSTATS', () => {
  it('decodes the captured virtio per-queue reply (4-byte values, tx-stop/tx-wake)', () => {
    const q = virtio.qstats();
    expect(q.map((x) => [x.queueType, x.queueId, [...x.counters.keys()]])).toEqual([
      ['rx', 0, ['rx-packets', 'rx-bytes']],
      ['tx', 0, ['tx-packets', 'tx-bytes', 'tx-stop', 'tx-wake']],
    ]);
    expect(q[0].ifindex).toBe(4);
  });

  it('decodes 8-byte uints above 2^32 and counters only where present', () => {
    const q = mlx5.qstats();
    expect(q).toHaveLength(8);
    expect(q[3].counters.get('rx-bytes')).toBe(6000000000);
    expect(q[2].counters.get('rx-hw-drops')).toBe(17);
    expect(q[1].counters.get('rx-alloc-fail')).toBe(3);
    expect(q[4]).toMatchObject({ queueType: 'tx', queueId: 0 });
    expect(q[4].counters.get('tx-stop')).toBe(250);
    expect(q[7].counters.get('tx-bytes')).toBe(20000000000);
    expect(q[4].counters.has('rx-packets')).toBe(false);
  });

  it('rejects a uint that is neither 4 nor 8 bytes', () => {
    const [m] = messages('bad.qstats-6-byte-uint.bin');
    expect(() => decodeQstats(m.buf, m.start, m.end)).toThrow(DecodeError);
    expect(() => decodeQstats(m.buf, m.start, m.end)).toThrow(/rx-packets: uint attribute has length 6/);
  });

  it('requests scope=queue for one ifindex', () => {
    const b = qstatsRequest(9, true);
    expect(b[0]).toBe(12);
    const a = attrMap(b, GENL_HDRLEN, b.length, 'req');
    expect(b.readUInt32LE(a.get(1)!.off)).toBe(9);
    expect(b.readUInt32LE(a.get(4)!.off)).toBe(1);
    expect(attrMap(qstatsRequest(9, false), GENL_HDRLEN, qstatsRequest(9, false).length, 'req').has(4)).toBe(false);
  });
});

describe('netdev genl QUEUE/NAPI and the IRQ → queue mapping', () => {
  it('decodes the captured virtio queues; virtio registers no NAPI IRQ, so no mapping', () => {
    expect(virtio.queues()).toEqual([
      { ifindex: 4, id: 0, type: 'rx', napiId: 257 },
      { ifindex: 4, id: 0, type: 'tx', napiId: undefined },
    ]);
    expect(virtio.napis()).toEqual([{ ifindex: 4, id: 257, irq: undefined, pid: undefined }]);
    expect(rolesFromNapi(virtio.queues(), virtio.napis()).size).toBe(0);
  });

  it('maps mlx5 channels: rx q and tx q on one NAPI → IRQ 99+q combined', () => {
    const m = rolesFromNapi(mlx5.queues(), mlx5.napis());
    expect([...m]).toEqual([
      [99, [{ role: 'combined', queue: 0 }]],
      [100, [{ role: 'combined', queue: 1 }]],
      [101, [{ role: 'combined', queue: 2 }]],
      [102, [{ role: 'combined', queue: 3 }]],
    ]);
    expect(mlx5.napis()[3].pid).toBe(4242);
  });

  it('keeps rx-only and tx-only NAPIs apart', () => {
    const m = rolesFromNapi(
      [
        { ifindex: 1, id: 0, type: 'rx', napiId: 1 },
        { ifindex: 1, id: 0, type: 'tx', napiId: 2 },
        { ifindex: 1, id: 1, type: 'rx', napiId: 1 },
      ],
      [
        { ifindex: 1, id: 1, irq: 50 },
        { ifindex: 1, id: 2, irq: 51 },
      ],
    );
    expect(m.get(50)).toEqual([
      { role: 'rx', queue: 0 },
      { role: 'rx', queue: 1 },
    ]);
    expect(m.get(51)).toEqual([{ role: 'tx', queue: 0 }]);
  });
});
