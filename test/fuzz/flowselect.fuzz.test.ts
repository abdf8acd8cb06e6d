// Fuzz: the flow selector grammar (flowselect.ts). Random token soups and mutated selectors give an AST or
// SelectorError (never another exception: the selector comes from flags and API parameters); ASTs print to
// source and parse back to the same AST; compiled plans pass the kernel's bytecode audit (model) and the
// kernel-side filter (states mask + bytecode, run by the interpreter model) selects every socket the exact
// predicate selects, and exactly those when the plan says it is exact.
import { AF_INET, AF_INET6, auditBytecode, runBytecode } from '../../src/sources/netlink/bytecode';
import { formatAddr } from '../../src/sources/netlink/sockdiag';
import { STATE_BY_NAME, Sel, SelectorError, compileSelector, parseSelector } from '../../src/sources/flowselect';
import { TIMEOUT_MS, assertSame, check, fc, only } from './fuzz';

const WORDS = ['sport', 'dport', 'port', 'src', 'dst', 'addr', 'state', 'loopback', 'all', 'none', 'not', 'and', 'or', 'established', 'listen', 'time-wait', 'connected', 'synchronized', '5201', ':22', '65535', '65536', '0', '-1', '10.0.0.0/8', '::1', '[fe80::1]/64', '::ffff:10.1.2.3/104', '1.2.3.4/33', 'x:y::z', '999.1.1.1'];
const OPS = ['(', ')', '=', '==', '!=', '<', '<=', '>', '>=', '!', '&&', '||', '&', '|', '#'];

/** Token soups: mostly grammar words and operators, some random characters. */
const soup = fc.array(fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...WORDS) }, { weight: 4, arbitrary: fc.constantFrom(...OPS) }, { weight: 1, arbitrary: fc.string({ maxLength: 4 }) }), { maxLength: 24 }).chain((toks) =>
  fc.array(fc.constantFrom(' ', '', '  ', '\t'), { minLength: toks.length, maxLength: toks.length }).map((sp) => toks.map((t, i) => t + sp[i]).join('')),
);

// --- a printer (AST -> source), the inverse the round trip needs

const STATE_NAME = new Map<number, string>();
for (const [name, states] of Object.entries(STATE_BY_NAME)) if (states.length === 1 && !STATE_NAME.has(states[0])) STATE_NAME.set(states[0], name);

function print(n: Sel): string {
  switch (n.k) {
    case 'true':
      return 'all';
    case 'false':
      return 'none';
    case 'and':
    case 'or':
      return `(${print(n.a)}) ${n.k} (${print(n.b)})`;
    case 'not':
      return `not (${print(n.a)})`;
    case 'port':
      return `${n.end === 'src' ? 'sport' : 'dport'} ${n.cmp === 'eq' ? '=' : n.cmp === 'ge' ? '>=' : '<='} ${n.port}`;
    case 'net': {
      const b = Buffer.alloc(16);
      n.addr.copy(b);
      const a = formatAddr(b, 0, n.family === 4 ? AF_INET : AF_INET6);
      return `${n.end} ${n.family === 6 ? `[${a}]` : a}/${n.prefixLen}`;
    }
    case 'state':
      return `state ${STATE_NAME.get(n.state)}`;
  }
}

function maskTo(addr: Buffer, plen: number): Buffer {
  const b = Buffer.from(addr);
  for (let i = 0; i < b.length; i++) b[i] &= (0xff << (8 - Math.max(0, Math.min(8, plen - i * 8)))) & 0xff;
  return b;
}

const net: fc.Arbitrary<Sel> = fc.oneof(
  fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 32 })).map(([a, p]) => ({ family: 4 as const, prefixLen: p, addr: maskTo(Buffer.from(a), p) })),
  // IPv6, not v4-mapped (that is read as the IPv4 network, see the grammar)
  fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 128 })).map(([a, p]) => {
    const b = Buffer.from(a);
    if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) b[0] = 0x20;
    return { family: 6 as const, prefixLen: p, addr: maskTo(b, p) };
  }).filter((n) => !(n.addr.subarray(0, 10).every((x) => x === 0) && n.addr[10] === 0xff && n.addr[11] === 0xff && n.prefixLen >= 96)),
).chain((n) => fc.constantFrom<'src' | 'dst'>('src', 'dst').map((end) => ({ k: 'net' as const, end, ...n }) as Sel));

const leaf: fc.Arbitrary<Sel> = fc.oneof(
  fc.constantFrom<Sel>({ k: 'true' }, { k: 'false' }),
  fc.record({ k: fc.constant('port' as const), end: fc.constantFrom<'src' | 'dst'>('src', 'dst'), cmp: fc.constantFrom<'eq' | 'ge' | 'le'>('eq', 'ge', 'le'), port: fc.integer({ min: 0, max: 65535 }) }),
  net,
  fc.constantFrom(...STATE_NAME.keys()).map((state): Sel => ({ k: 'state', state })),
);
const ast = (d: number): fc.Arbitrary<Sel> =>
  d === 0
    ? leaf
    : fc.oneof(
        { weight: 2, arbitrary: leaf },
        { weight: 1, arbitrary: ast(d - 1).map((a): Sel => ({ k: 'not', a })) },
        { weight: 2, arbitrary: fc.tuple(fc.constantFrom<'and' | 'or'>('and', 'or'), ast(d - 1), ast(d - 1)).map(([k, a, b]): Sel => ({ k, a, b })) },
      );

const socket = fc.record({
  v6: fc.boolean(),
  mapped: fc.boolean(),
  state: fc.integer({ min: 1, max: 12 }),
  sport: fc.integer({ min: 0, max: 65535 }),
  dport: fc.integer({ min: 0, max: 65535 }),
  src: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  dst: fc.uint8Array({ minLength: 16, maxLength: 16 }),
}).map((s) => {
  const fix = (a: Uint8Array) => {
    const b = Buffer.alloc(16);
    Buffer.from(a).copy(b);
    if (!s.v6) b.fill(0, 4);
    else if (s.mapped) {
      b.fill(0, 0, 10);
      b[10] = b[11] = 0xff;
    }
    return b;
  };
  return { family: s.v6 ? AF_INET6 : AF_INET, state: s.state, sport: s.sport, dport: s.dport, src: fix(s.src), dst: fix(s.dst) };
});

describe('flowselect.ts', () => {
  it('token soups: an AST or SelectorError', () => {
    check(soup, (src) => {
      only([SelectorError], () => compileSelector(src));
    });
  }, TIMEOUT_MS);

  it('deep nesting and long chains: SelectorError, not a stack overflow or a bytecode error', () => {
    check(fc.tuple(fc.integer({ min: 1, max: 20000 }), fc.constantFrom('(', 'not ', '! '), fc.integer({ min: 1, max: 5000 })), ([depth, open, chain]) => {
      only([SelectorError], () => compileSelector(`${open.repeat(depth)}port = 1${open === '(' ? ')'.repeat(depth) : ''}`));
      only([SelectorError], () => compileSelector(Array.from({ length: chain }, (_, i) => `dst 10.${i >> 8 & 255}.${i & 255}.0/24`).join(' or ')));
    }, Math.min(200, Math.max(20, Math.floor(Number(process.env.FUZZ_RUNS ?? 1000) / 50))));
  }, TIMEOUT_MS);

  it('AST -> source -> AST round-trips', () => {
    check(ast(4), (a) => {
      assertSame(parseSelector(print(a)), a, `parse(print(ast)) for "${print(a)}"`);
    });
  }, TIMEOUT_MS);

  it('compiled plans pass the bytecode audit; the kernel-side filter is a superset of the predicate (equal when exact)', () => {
    check(fc.tuple(ast(4), fc.array(socket, { minLength: 1, maxLength: 8 })), ([a, socks]) => {
      const c = compileSelector(print(a));
      for (const p of c.plans) if (p.bytecode) auditBytecode(p.bytecode);
      for (const s of socks) {
        const plan = c.plans.find((p) => p.family === s.family);
        const kernel = plan !== undefined && (plan.states & (1 << s.state)) !== 0 && (plan.bytecode === null || runBytecode(plan.bytecode, s));
        const exact = c.matches({ family: s.family, state: s.state, sport: s.sport, dport: s.dport, buf: Buffer.concat([s.src, s.dst]), srcOff: 0, dstOff: 16 });
        if (exact && !kernel) throw new Error(`"${c.source}": the kernel filter drops a socket the predicate selects`);
        if (c.exact && kernel !== exact) throw new Error(`"${c.source}" claims exact but kernel=${kernel} predicate=${exact}`);
      }
    });
  }, TIMEOUT_MS);
});
