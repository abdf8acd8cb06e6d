import {
  DecodeError,
  attr,
  attrMap,
  attrString,
  attrStringOf,
  attrU32Of,
  attrUint,
  forEachAttr,
  forEachMessage,
  nest,
  u64,
  u64IsMax,
} from '../../src/sources/netlink/attrs';

describe('netlink attributes', () => {
  it('round-trips built attributes, including nests, type 0 and padding', () => {
    const buf = Buffer.concat([attrU32Of(0, 7), attrStringOf(2, 'eth0'), nest(3, attrU32Of(1, 9)), attr(4, Buffer.from([1, 2, 3]))]);
    const seen: Array<[number, number, boolean]> = [];
    forEachAttr(buf, 0, buf.length, 'test', (t, _o, l, n) => seen.push([t, l, n]));
    expect(seen).toEqual([
      [0, 4, false],
      [2, 5, false],
      [3, 8, true],
      [4, 3, false],
    ]);
    const m = attrMap(buf, 0, buf.length, 'test');
    expect(attrString(buf, m.get(2))).toBe('eth0');
    const inner = m.get(3)!;
    expect(attrMap(buf, inner.off, inner.off + inner.len, 'nest').get(1)).toBeDefined();
  });

  it('reports a bad attribute length with where and offset', () => {
    const buf = Buffer.concat([attrU32Of(1, 1), Buffer.from([40, 0, 2, 0, 0, 0, 0, 0])]);
    expect(() => forEachAttr(buf, 0, buf.length, 'tcp diag reply', () => {})).toThrow(
      /tcp diag reply: attribute type 2 length 40 overruns the message \(8 bytes left\) at offset 8/,
    );
    const tiny = Buffer.from([2, 0, 1, 0]);
    expect(() => forEachAttr(tiny, 0, 4, 'x', () => {})).toThrow(DecodeError);
    expect(() => forEachAttr(Buffer.from([0, 0, 0, 0, 9, 9]), 0, 6, 'x', () => {})).toThrow(/length 0 < 4/);
  });

  it('rejects non-zero trailing bytes but tolerates zero padding', () => {
    expect(() => forEachAttr(Buffer.concat([attrU32Of(1, 1), Buffer.from([0, 0])]), 0, 10, 'x', () => {})).not.toThrow();
    expect(() => forEachAttr(Buffer.concat([attrU32Of(1, 1), Buffer.from([5, 0])]), 0, 10, 'x', () => {})).toThrow(/trailing/);
  });

  it('reads u64 exactly and detects all-ones, and YNL uint by length', () => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(2n ** 52n + 12345n);
    expect(u64(b, 0)).toBe(2 ** 52 + 12345);
    expect(u64IsMax(b, 0)).toBe(false);
    b.writeBigUInt64LE(2n ** 64n - 1n);
    expect(u64IsMax(b, 0)).toBe(true);
    const four = attrU32Of(1, 77);
    expect(attrUint(four, { off: 4, len: 4 }, 'q')).toBe(77);
    expect(() => attrUint(Buffer.alloc(10), { off: 4, len: 6 }, 'qstats rx-packets')).toThrow(/length 6/);
  });

  it('splits a datagram into messages and rejects a length that overruns it', () => {
    const m1 = Buffer.alloc(20);
    m1.writeUInt32LE(20, 0);
    m1.writeUInt16LE(20, 4);
    const m2 = Buffer.alloc(16);
    m2.writeUInt32LE(16, 0);
    m2.writeUInt16LE(3, 4);
    const types: number[] = [];
    forEachMessage(Buffer.concat([m1, m2]), (m) => types.push(m.type));
    expect(types).toEqual([20, 3]);
    const bad = Buffer.from(m1);
    bad.writeUInt32LE(400, 0);
    expect(() => forEachMessage(bad, () => {})).toThrow(/message length 400 does not fit the 20 bytes left/);
  });
});
