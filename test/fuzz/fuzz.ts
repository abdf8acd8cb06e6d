// Shared runner and arbitraries of the decoder fuzz suites (test/fuzz/*.fuzz.test.ts).
//
// Runs per property: FUZZ_RUNS (default 1000: the normal jest run, CI); `npm run fuzz` sets 100000.
// FUZZ_SEED replays a reported failure (fast-check prints the seed and the shrunk counterexample).
//
// Inputs start from the captured/built fixtures under test/fixtures and are mutated (bit flips, byte
// overwrites, truncation, extension, length-field lies at every plausible TLV header, an area wrapped as
// a nested attribute, ranges deleted or duplicated), or come from structure-aware generators (attribute
// trees, grammar-based texts) next to the suites that use them.
import * as fs from 'fs';
import * as path from 'path';
import fc from 'fast-check';
import { NLMSG_DONE, NLMSG_ERROR, forEachMessage } from '../../src/sources/netlink/attrs';

export { fc };

export const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 1000));
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

/** Jest timeout for one property: generous at the default run count, scaled for `npm run fuzz`. */
export const TIMEOUT_MS = Math.max(60_000, RUNS * 5);

export const FIXTURES = path.join(__dirname, '../fixtures');

/** fc.assert with the suite's run count and seed. */
export function check<T>(arb: fc.Arbitrary<T>, prop: (v: T) => void, runs = RUNS): void {
  fc.assert(
    fc.property(arb, (v) => {
      prop(v);
    }),
    { numRuns: runs, seed: SEED, endOnFailure: false },
  );
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: Error };

/**
 * Run fn; an exception that is not one of `allowed` (the module's declared error types) fails the
 * property, naming the input. Returns the value or the allowed error.
 */
export function only<T>(allowed: ReadonlyArray<abstract new (...a: never[]) => Error>, fn: () => T): Outcome<T> {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (allowed.some((c) => e instanceof c)) return { ok: false, error: e as Error };
    throw new Error(`undeclared exception ${(e as Error)?.name ?? typeof e}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
}

/** Deep-equal for decoder outputs (Maps, Buffers, typed arrays, NaN). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  if (a instanceof Map) {
    if (!(b instanceof Map) || a.size !== b.size) return false;
    for (const [k, v] of a) if (!b.has(k) || !sameValue(v, b.get(k))) return false;
    return true;
  }
  if (Array.isArray(a) || ArrayBuffer.isView(a)) {
    const x = a as ArrayLike<unknown>;
    const y = b as ArrayLike<unknown>;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!sameValue(x[i], y[i])) return false;
    return true;
  }
  const ka = Object.keys(a as object).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b as object).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

export function assertSame(a: unknown, b: unknown, what: string): void {
  if (!sameValue(a, b)) throw new Error(`${what}: ${show(a)} != ${show(b)}`);
}

function show(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x instanceof Map ? Object.fromEntries(x) : typeof x === 'bigint' ? String(x) : x))?.slice(0, 400) ?? String(v);
}

// ---------------------------------------------------------------------------------------------------
// Netlink fixtures

export interface NlMessage {
  type: number;
  flags: number;
  /** The payload after struct nlmsghdr, in its own buffer. */
  payload: Buffer;
}

/** The data messages (no DONE/ERROR) of a fixture file holding a stream of netlink messages. */
export function nlMessages(rel: string, bytes: Buffer = fs.readFileSync(path.join(FIXTURES, rel))): NlMessage[] {
  const out: NlMessage[] = [];
  forEachMessage(bytes, (m) => {
    if (m.type === NLMSG_DONE || m.type === NLMSG_ERROR) return;
    out.push({ type: m.type, flags: m.flags, payload: Buffer.from(m.buf.subarray(m.start, m.end)) });
  });
  if (out.length === 0) throw new Error(`${rel}: no data messages`);
  return out;
}

export function fixtureBytes(rel: string): Buffer {
  return fs.readFileSync(path.join(FIXTURES, rel));
}

export function fixtureText(rel: string): string {
  return fs.readFileSync(path.join(FIXTURES, rel), 'utf8');
}

// ---------------------------------------------------------------------------------------------------
// Binary mutations

type Mutation = (b: Buffer) => Buffer;

const INTERESTING_U16 = [0, 1, 2, 3, 4, 5, 7, 8, 12, 16, 20, 0x7fff, 0x8000, 0xfffc, 0xffff];

/** Offsets where a TLV header (u16 len, u16 type) plausibly starts: every multiple of 4. */
const headerAt = (b: Buffer, r: number) => (b.length < 4 ? 0 : (r % Math.floor(b.length / 4)) * 4);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  // flip one bit
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })).map(([p, bit]): Mutation => (b) => {
    if (b.length === 0) return b;
    const c = Buffer.from(b);
    c[p % c.length] ^= 1 << bit;
    return c;
  }),
  // overwrite one byte
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([p, v]): Mutation => (b) => {
    if (b.length === 0) return b;
    const c = Buffer.from(b);
    c[p % c.length] = v;
    return c;
  }),
  // truncate
  fc.nat().map((n): Mutation => (b) => b.subarray(0, b.length === 0 ? 0 : n % b.length)),
  // extend with random bytes
  fc.uint8Array({ minLength: 1, maxLength: 24 }).map((x): Mutation => (b) => Buffer.concat([b, Buffer.from(x)])),
  // a length field that lies: the u16 at a header offset set to an interesting or random value
  fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(...INTERESTING_U16), fc.integer({ min: 0, max: 0xffff }))).map(([r, v]): Mutation => (b) => {
    if (b.length < 2) return b;
    const c = Buffer.from(b);
    c.writeUInt16LE(v, Math.min(headerAt(c, r), c.length - 2));
    return c;
  }),
  // a length field off by a little
  fc.tuple(fc.nat(), fc.integer({ min: -9, max: 9 })).map(([r, d]): Mutation => (b) => {
    if (b.length < 2) return b;
    const c = Buffer.from(b);
    const at = Math.min(headerAt(c, r), c.length - 2);
    c.writeUInt16LE((c.readUInt16LE(at) + d) & 0xffff, at);
    return c;
  }),
  // the nested flag toggled on a type field
  fc.nat().map((r): Mutation => (b) => {
    if (b.length < 4) return b;
    const c = Buffer.from(b);
    const at = headerAt(c, r) + 2;
    c.writeUInt16LE(c.readUInt16LE(at) ^ 0x8000, at);
    return c;
  }),
  // wrap a 4-aligned tail [at, end) in one more attribute header (deeper nesting)
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 0x3fff }), fc.boolean()).map(([r, type, nested]): Mutation => (b) => {
    const at = headerAt(b, r);
    const inner = b.subarray(at);
    const h = Buffer.alloc(4);
    h.writeUInt16LE(Math.min(0xffff, inner.length + 4), 0);
    h.writeUInt16LE(type | (nested ? 0x8000 : 0), 2);
    return Buffer.concat([b.subarray(0, at), h, inner]);
  }),
  // delete or duplicate a range
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 32 }), fc.boolean()).map(([p, n, dup]): Mutation => (b) => {
    if (b.length === 0) return b;
    const a = p % b.length;
    const e = Math.min(b.length, a + n);
    return dup ? Buffer.concat([b.subarray(0, e), b.subarray(a, e), b.subarray(e)]) : Buffer.concat([b.subarray(0, a), b.subarray(e)]);
  }),
);

/** One of the seeds, with 0..4 mutations applied (0 keeps the valid seed in the mix). */
export function mutated(seeds: readonly Buffer[], maxMutations = 4): fc.Arbitrary<Buffer> {
  if (seeds.length === 0) throw new Error('mutated(): no seeds');
  return fc.tuple(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 0, maxLength: maxMutations })).map(([s, ms]) => ms.reduce<Buffer>((b, m) => m(b), Buffer.from(s)));
}

/** A payload placed inside a larger buffer with random bytes around it: {buf, start, end}. */
export interface Placed {
  buf: Buffer;
  start: number;
  end: number;
}

export const garbage = fc.uint8Array({ minLength: 0, maxLength: 16 }).map((x) => Buffer.from(x));

export function place(payload: Buffer, before: Buffer, after: Buffer): Placed {
  return { buf: Buffer.concat([before, payload, after]), start: before.length, end: before.length + payload.length };
}

/**
 * The core property of a (buf, start, end) decoder: on any input it returns a value or throws one of
 * the declared errors; and it reads nothing outside [start, end): the same payload decoded alone (an
 * exact-size buffer, where any read beyond the end is a RangeError) and surrounded by random bytes gives
 * the same value, or the declared error in both cases. A decoder that took bytes of the next message
 * for a missing field of a truncated one (a value from a partial parse) fails here.
 */
export function decoderProperty<T>(
  decode: (buf: Buffer, start: number, end: number) => T,
  errors: ReadonlyArray<abstract new (...a: never[]) => Error>,
  payload: Buffer,
  before: Buffer,
  after: Buffer,
  extra?: (value: T, payload: Buffer) => void,
): void {
  const alone = only(errors, () => decode(Buffer.from(payload), 0, payload.length));
  const p = place(payload, before, after);
  const inside = only(errors, () => decode(p.buf, p.start, p.end));
  if (alone.ok !== inside.ok) {
    throw new Error(`decoded ${alone.ok ? 'alone but not inside a larger buffer' : 'inside a larger buffer but not alone'}: ${alone.ok ? (inside as { error: Error }).error.message : (alone as { error: Error }).error.message}`);
  }
  if (alone.ok && inside.ok) {
    assertSame(alone.value, inside.value, 'value depends on bytes outside the message');
    extra?.(alone.value, payload);
  }
}

// ---------------------------------------------------------------------------------------------------
// Structure-aware netlink attributes

export interface AttrNode {
  type: number;
  nested: boolean;
  payload?: Buffer;
  children?: AttrNode[];
}

const SIZES = [0, 1, 2, 3, 4, 5, 8, 12, 16, 20, 24, 28, 32, 36, 40, 64, 80, 88, 104, 148, 152, 184, 192, 200];

/** Random attribute trees over the given types (plus a few unknown ones), payload sizes near struct sizes. */
export function attrTree(types: readonly number[], depth = 2): fc.Arbitrary<AttrNode[]> {
  const payload = fc.oneof(
    fc.constantFrom(...SIZES).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
    fc.uint8Array({ maxLength: 64 }),
  ).map((x) => Buffer.from(x));
  const type = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...types) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 64 }) });
  const leaf: fc.Arbitrary<AttrNode> = fc.record({ type, nested: fc.constant(false), payload });
  const level = (d: number): fc.Arbitrary<AttrNode[]> =>
    fc.array(d === 0 ? leaf : fc.oneof({ weight: 3, arbitrary: leaf }, { weight: 1, arbitrary: fc.record({ type, nested: fc.boolean(), children: level(d - 1) }) }), { maxLength: 8 });
  return level(depth);
}

/** Serialise an attribute tree (4-byte aligned, as the kernel's nla_put). */
export function encodeAttrs(t: readonly AttrNode[]): Buffer {
  return Buffer.concat(
    t.map((n) => {
      const body = n.children ? encodeAttrs(n.children) : (n.payload ?? Buffer.alloc(0));
      const len = 4 + body.length;
      const out = Buffer.alloc((len + 3) & ~3);
      out.writeUInt16LE(Math.min(len, 0xffff), 0);
      out.writeUInt16LE(n.type | (n.nested ? 0x8000 : 0), 2);
      body.copy(out, 4);
      return out;
    }),
  );
}
