// Flow selectors: a small expression language over a TCP socket's ports, addresses and state, compiled
// twice: into INET_DIAG_REQ_BYTECODE (plus the idiag_states mask and the families to dump) so the
// kernel does the filtering, and into a JS predicate over a socket view for the exact answer.
//
// Grammar (keywords lowercase; whitespace separates tokens; `#` is not special):
//
//   selector := expr | ""                        empty = every socket
//   expr     := and ( ("or" | "||") and )*
//   and      := unary ( ("and" | "&&") unary )*
//   unary    := ("not" | "!") unary | "(" expr ")" | cond
//   cond     := PORTKEY CMP PORT                  sport = 5201, dport >= 1024, port != 22
//             | ADDRKEY [ "=" | "==" | "!=" ] NET  dst 10.0.0.0/8, src = ::1, addr != 192.0.2.7
//             | "state" [ "=" | "==" | "!=" ] STATE
//             | "loopback"                        local address in 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104
//             | "all" | "none"
//   PORTKEY  := "sport" (local port) | "dport" (peer port) | "port" (either end)
//   ADDRKEY  := "src" (local address) | "dst" (peer address) | "addr" (either end)
//   CMP      := "=" | "==" | "!=" | "<" | "<=" | ">" | ">="
//   PORT     := 0..65535, optionally written ":5201" as in ss
//   NET      := IPv4 or IPv6 address, optional "/prefix", IPv6 optionally in [brackets]
//   STATE    := established | syn-sent | syn-recv | fin-wait-1 | fin-wait-2 | time-wait | close (closed)
//             | close-wait | last-ack | listen (listening) | closing | new-syn-recv
//             | connected (all but listen and close) | synchronized (connected minus syn-sent/syn-recv)
//
// Semantics follow the kernel's bytecode (inet_diag_bc_run): an IPv4 network also matches IPv4-mapped
// addresses of AF_INET6 sockets (::ffff:10.1.2.3 is in 10.0.0.0/8); an IPv6 network never matches an
// AF_INET socket; "::ffff:a.b.c.d/n" (n >= 96) is read as the IPv4 network a.b.c.d/(n-96).
// `port OP N` is true if either port satisfies it, except `port != N`, which means neither port is N;
// likewise `addr != X` means neither address is in X.
//
// State has no bytecode op: it goes into the idiag_states mask. For each (family, state) the selector is
// partially evaluated; a combination that is constant false is not dumped at all, and the bytecode is the
// OR of the remaining distinct residues. When every residue is the same (the usual case: state and
// family only appear in conjunctions) the kernel filter is exact and the JS predicate is not needed.

import { AF_INET, AF_INET6, BcNode, End, assemble } from './netlink/bytecode';

export class SelectorError extends Error {
  override readonly name = 'SelectorError';
  constructor(
    readonly source: string,
    readonly column: number,
    detail: string,
  ) {
    super(`${detail} at column ${column + 1}: ${source.slice(0, column)}⟨here⟩${source.slice(column)}`);
  }
}

export type Cmp = 'eq' | 'ge' | 'le';

export type Sel =
  | { k: 'true' }
  | { k: 'false' }
  | { k: 'and'; a: Sel; b: Sel }
  | { k: 'or'; a: Sel; b: Sel }
  | { k: 'not'; a: Sel }
  | { k: 'port'; end: End; cmp: Cmp; port: number }
  /** family 4 or 6; addr holds 4 or 16 bytes in network order, host bits cleared. */
  | { k: 'net'; end: End; family: 4 | 6; prefixLen: number; addr: Buffer }
  | { k: 'state'; state: number };

const TRUE: Sel = { k: 'true' };
const FALSE: Sel = { k: 'false' };

export const STATE_BY_NAME: Readonly<Record<string, number[]>> = {
  established: [1],
  'syn-sent': [2],
  'syn-recv': [3],
  'fin-wait-1': [4],
  'fin-wait-2': [5],
  'time-wait': [6],
  close: [7],
  closed: [7],
  'close-wait': [8],
  'last-ack': [9],
  listen: [10],
  listening: [10],
  closing: [11],
  'new-syn-recv': [12],
  connected: [1, 2, 3, 4, 5, 6, 8, 9, 11, 12],
  synchronized: [1, 4, 5, 6, 8, 9, 11],
};

/** The TCP states a dump may ask for (idiag_states bits 1..12). */
export const ALL_STATES: readonly number[] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

// ---------------------------------------------------------------------------------------------------
// Addresses

/** Parse an IPv4 or IPv6 literal into bytes, or undefined. Accepts "::ffff:1.2.3.4". */
export function parseIp(s: string): Buffer | undefined {
  if (s.includes(':')) return parseIpv6(s);
  return parseIpv4(s);
}

function parseIpv4(s: string): Buffer | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const b = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i])) return undefined;
    const n = Number(parts[i]);
    if (n > 255) return undefined;
    b[i] = n;
  }
  return b;
}

function parseIpv6(s: string): Buffer | undefined {
  const out = Buffer.alloc(16);
  let head = s;
  let v4: Buffer | undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) > lastColon) {
    v4 = parseIpv4(s.slice(lastColon + 1));
    if (!v4) return undefined;
    head = s.slice(0, lastColon + 1) + '0:0'; // placeholder for the last 32 bits
  }
  const dbl = head.indexOf('::');
  if (dbl !== head.lastIndexOf('::')) return undefined;
  const groupsOf = (t: string): number[] | undefined => {
    if (t === '') return [];
    const gs = t.split(':');
    const out: number[] = [];
    for (const g of gs) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  if (dbl >= 0) {
    const left = groupsOf(head.slice(0, dbl));
    const right = groupsOf(head.slice(dbl + 2));
    if (!left || !right || left.length + right.length > 7) return undefined;
    groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  } else {
    const all = groupsOf(head);
    if (!all || all.length !== 8) return undefined;
    groups = all;
  }
  for (let i = 0; i < 8; i++) out.writeUInt16BE(groups[i], i * 2);
  if (v4) v4.copy(out, 12);
  return out;
}

function isV4Mapped(b: Buffer, off = 0): boolean {
  for (let i = 0; i < 10; i++) if (b[off + i] !== 0) return false;
  return b[off + 10] === 0xff && b[off + 11] === 0xff;
}

/** Clear the host bits after `prefixLen`. */
function maskTo(addr: Buffer, prefixLen: number): Buffer {
  const b = Buffer.from(addr);
  for (let i = 0; i < b.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLen - i * 8));
    b[i] &= (0xff << (8 - keep)) & 0xff;
  }
  return b;
}

/** Parse "10.0.0.0/8", "::1", "[fe80::1]/64" into a network; undefined if not an address. */
export function parseNet(text: string): { family: 4 | 6; prefixLen: number; addr: Buffer } | undefined {
  let s = text;
  let prefix: number | undefined;
  const slash = s.indexOf('/');
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    s = s.slice(0, slash);
  }
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const bytes = parseIp(s);
  if (!bytes) return undefined;
  let family: 4 | 6 = bytes.length === 4 ? 4 : 6;
  let plen = prefix ?? bytes.length * 8;
  if (plen > bytes.length * 8) return undefined;
  let addr = bytes;
  if (family === 6 && isV4Mapped(bytes) && plen >= 96) {
    family = 4;
    addr = bytes.subarray(12);
    plen -= 96;
  }
  return { family, prefixLen: plen, addr: maskTo(addr, plen) };
}

// ---------------------------------------------------------------------------------------------------
// Parser

type Tok = { t: 'word' | 'op' | 'lp' | 'rp' | 'eof'; v: string; pos: number };

/** Most conditions and most nesting (parentheses, not) a selector may have: a kernel filter holds a few
 * thousand conditions at most (jumps are u16), and every stage of the compiler recurses over the tree. */
export const MAX_CONDITIONS = 1000;
export const MAX_NESTING = 100;

class Parser {
  private pos = 0;
  private peeked: Tok | null = null;
  private conditions = 0;
  private nesting = 0;
  constructor(private readonly src: string) {}

  fail(pos: number, msg: string): never {
    throw new SelectorError(this.src, pos, msg);
  }

  private skipWs(): void {
    while (this.pos < this.src.length && /\s/.test(this.src[this.pos])) this.pos++;
  }

  private lex(): Tok {
    this.skipWs();
    const s = this.src;
    const start = this.pos;
    if (start >= s.length) return { t: 'eof', v: '', pos: start };
    const c = s[start];
    if (c === '(') {
      this.pos++;
      return { t: 'lp', v: c, pos: start };
    }
    if (c === ')') {
      this.pos++;
      return { t: 'rp', v: c, pos: start };
    }
    const two = s.slice(start, start + 2);
    if (['==', '!=', '<=', '>=', '&&', '||'].includes(two)) {
      this.pos += 2;
      return { t: 'op', v: two, pos: start };
    }
    if ('=<>!'.includes(c)) {
      this.pos++;
      return { t: 'op', v: c, pos: start };
    }
    let end = start;
    while (end < s.length && !/[\s()=<>!&|]/.test(s[end])) end++;
    if (end === start) this.fail(start, `unexpected character "${c}"`);
    this.pos = end;
    return { t: 'word', v: s.slice(start, end), pos: start };
  }

  peek(): Tok {
    if (!this.peeked) this.peeked = this.lex();
    return this.peeked;
  }

  next(): Tok {
    const t = this.peek();
    this.peeked = null;
    return t;
  }

  /** An address operand (the word lexer keeps ':', '.', '/', '[', ']' together). */
  addressToken(): Tok {
    const t = this.next();
    if (t.t !== 'word') this.fail(t.pos, t.t === 'eof' ? 'expected an address' : `expected an address, got "${t.v}"`);
    return t;
  }

  parse(): Sel {
    if (this.peek().t === 'eof') return TRUE;
    const e = this.expr();
    const t = this.peek();
    if (t.t !== 'eof') this.fail(t.pos, `unexpected "${t.v}" (missing "and"/"or"?)`);
    return e;
  }

  private expr(): Sel {
    return this.binary('or', 'or', '||', () => this.and());
  }

  private and(): Sel {
    return this.binary('and', 'and', '&&', () => this.unary());
  }

  /** A left-associative chain `operand (word|op operand)*`. */
  private binary(k: 'and' | 'or', word: string, op: string, operand: () => Sel): Sel {
    let left = operand();
    for (;;) {
      const t = this.peek();
      if ((t.t === 'word' && t.v === word) || (t.t === 'op' && t.v === op)) {
        this.next();
        left = { k, a: left, b: operand() };
      } else return left;
    }
  }

  private unary(): Sel {
    const t = this.peek();
    const nots = (t.t === 'word' && t.v === 'not') || (t.t === 'op' && t.v === '!');
    if (nots || t.t === 'lp') {
      if (++this.nesting > MAX_NESTING) this.fail(t.pos, `nested more than ${MAX_NESTING} levels deep`);
      this.next();
      let e: Sel;
      if (nots) e = { k: 'not', a: this.unary() };
      else {
        e = this.expr();
        const r = this.next();
        if (r.t !== 'rp') this.fail(r.pos, `expected ")" to close the "(" at column ${t.pos + 1}`);
      }
      this.nesting--;
      return e;
    }
    if (++this.conditions > MAX_CONDITIONS) this.fail(t.pos, `more than ${MAX_CONDITIONS} conditions`);
    return this.cond();
  }

  private cond(): Sel {
    const t = this.next();
    if (t.t !== 'word') this.fail(t.pos, t.t === 'eof' ? 'expression ends too early' : `unexpected "${t.v}"`);
    switch (t.v) {
      case 'all':
        return TRUE;
      case 'none':
        return FALSE;
      case 'loopback':
        return LOOPBACK;
      case 'sport':
      case 'dport':
      case 'port':
        return this.portCond(t);
      case 'src':
      case 'dst':
      case 'addr':
        return this.addrCond(t);
      case 'state':
        return this.stateCond();
      default:
        this.fail(t.pos, `unknown keyword "${t.v}" (expected sport, dport, port, src, dst, addr, state, loopback, all, none, not or "(")`);
    }
  }

  private portCond(key: Tok): Sel {
    const opTok = this.next();
    if (opTok.t !== 'op' || !['=', '==', '!=', '<', '<=', '>', '>='].includes(opTok.v)) {
      this.fail(opTok.pos, `expected a comparison (=, !=, <, <=, >, >=) after "${key.v}"`);
    }
    const pt = this.next();
    const m = pt.t === 'word' ? /^:?(\d{1,5})$/.exec(pt.v) : null;
    const port = m ? Number(m[1]) : NaN;
    if (!m || port > 65535) this.fail(pt.pos, `expected a port number 0..65535 after "${key.v} ${opTok.v}"`);
    const one = (end: End): Sel => {
      switch (opTok.v) {
        case '=':
        case '==':
          return { k: 'port', end, cmp: 'eq', port };
        case '!=':
          return { k: 'not', a: { k: 'port', end, cmp: 'eq', port } };
        case '>=':
          return { k: 'port', end, cmp: 'ge', port };
        case '<=':
          return { k: 'port', end, cmp: 'le', port };
        case '>':
          return port >= 65535 ? FALSE : { k: 'port', end, cmp: 'ge', port: port + 1 };
        default: // '<'
          return port <= 0 ? FALSE : { k: 'port', end, cmp: 'le', port: port - 1 };
      }
    };
    if (key.v === 'sport') return one('src');
    if (key.v === 'dport') return one('dst');
    // "port != N": neither end uses port N.
    if (opTok.v === '!=') return { k: 'not', a: { k: 'or', a: { k: 'port', end: 'src', cmp: 'eq', port }, b: { k: 'port', end: 'dst', cmp: 'eq', port } } };
    return { k: 'or', a: one('src'), b: one('dst') };
  }

  private addrCond(key: Tok): Sel {
    let negate = false;
    const p = this.peek();
    if (p.t === 'op') {
      if (p.v === '=' || p.v === '==') this.next();
      else if (p.v === '!=') {
        this.next();
        negate = true;
      } else this.fail(p.pos, `expected an address (or =, !=) after "${key.v}"`);
    }
    const at = this.addressToken();
    const net = parseNet(at.v);
    if (!net) this.fail(at.pos, `"${at.v}" is not an IPv4/IPv6 address or network (a.b.c.d[/n], x:y::z[/n])`);
    const one = (end: End): Sel => ({ k: 'net', end, ...net });
    const cond: Sel = key.v === 'src' ? one('src') : key.v === 'dst' ? one('dst') : { k: 'or', a: one('src'), b: one('dst') };
    return negate ? { k: 'not', a: cond } : cond;
  }

  private stateCond(): Sel {
    let negate = false;
    const p = this.peek();
    if (p.t === 'op') {
      if (p.v === '=' || p.v === '==') this.next();
      else if (p.v === '!=') {
        this.next();
        negate = true;
      } else this.fail(p.pos, 'expected a state name (or =, !=) after "state"');
    }
    const t = this.next();
    const states = t.t === 'word' ? STATE_BY_NAME[t.v] : undefined;
    if (!states) this.fail(t.pos, `expected a TCP state name (${Object.keys(STATE_BY_NAME).join(', ')})`);
    let cond: Sel = { k: 'state', state: states[0] };
    for (const s of states.slice(1)) cond = { k: 'or', a: cond, b: { k: 'state', state: s } };
    return negate ? { k: 'not', a: cond } : cond;
  }
}

const LOOPBACK: Sel = {
  k: 'or',
  a: { k: 'net', end: 'src', family: 4, prefixLen: 8, addr: Buffer.from([127, 0, 0, 0]) },
  b: { k: 'net', end: 'src', family: 6, prefixLen: 128, addr: parseIpv6('::1') as Buffer },
};

/** Parse a selector. Throws SelectorError naming the column. */
export function parseSelector(src: string): Sel {
  return new Parser(src).parse();
}

// ---------------------------------------------------------------------------------------------------
// Partial evaluation and compilation

function simplify(n: Sel): Sel {
  switch (n.k) {
    case 'and': {
      const a = simplify(n.a);
      if (a.k === 'false') return FALSE;
      const b = simplify(n.b);
      if (b.k === 'false') return FALSE;
      if (a.k === 'true') return b;
      if (b.k === 'true') return a;
      return { k: 'and', a, b };
    }
    case 'or': {
      const a = simplify(n.a);
      if (a.k === 'true') return TRUE;
      const b = simplify(n.b);
      if (b.k === 'true') return TRUE;
      if (a.k === 'false') return b;
      if (b.k === 'false') return a;
      return { k: 'or', a, b };
    }
    case 'not': {
      const a = simplify(n.a);
      if (a.k === 'true') return FALSE;
      if (a.k === 'false') return TRUE;
      if (a.k === 'not') return a.a;
      return { k: 'not', a };
    }
    default:
      return n;
  }
}

/** The selector for sockets of one family (AF_INET/AF_INET6) in one TCP state. */
export function residual(n: Sel, family: number, state: number): Sel {
  const sub = (x: Sel): Sel => {
    switch (x.k) {
      case 'state':
        return x.state === state ? TRUE : FALSE;
      case 'net':
        // An IPv6 network can never match an AF_INET socket (inet_diag_bc_run's family check).
        return family === AF_INET && x.family === 6 ? FALSE : x;
      case 'and':
      case 'or':
        return { k: x.k, a: sub(x.a), b: sub(x.b) };
      case 'not':
        return { k: 'not', a: sub(x.a) };
      default:
        return x;
    }
  };
  return simplify(sub(n));
}

function key(n: Sel): string {
  switch (n.k) {
    case 'true':
    case 'false':
      return n.k;
    case 'and':
    case 'or':
      return `${n.k}(${key(n.a)},${key(n.b)})`;
    case 'not':
      return `not(${key(n.a)})`;
    case 'port':
      return `port(${n.end},${n.cmp},${n.port})`;
    case 'net':
      return `net(${n.end},${n.family},${n.prefixLen},${n.addr.toString('hex')})`;
    case 'state':
      return `state(${n.state})`;
  }
}

function toBc(n: Sel): BcNode {
  switch (n.k) {
    case 'true':
    case 'false':
      return n;
    case 'and':
    case 'or':
      return { k: n.k, a: toBc(n.a), b: toBc(n.b) };
    case 'not':
      return { k: 'not', a: toBc(n.a) };
    case 'port':
      // Equality as a hostcond with "any address": the portable form ss emits (S_EQ/D_EQ need 4.16).
      if (n.cmp === 'eq') return { k: 'host', end: n.end, family: 0, prefixLen: 0, addr: Buffer.alloc(0), port: n.port };
      return { k: 'port', end: n.end, cmp: n.cmp, port: n.port };
    case 'net':
      return { k: 'host', end: n.end, family: n.family === 4 ? AF_INET : AF_INET6, prefixLen: n.prefixLen, addr: n.addr, port: -1 };
    case 'state':
      throw new Error('state conditions are resolved before bytecode generation');
  }
}

/** What to ask the kernel for one address family. */
export interface FamilyPlan {
  family: number;
  /** idiag_states bit mask (1 << state). */
  states: number;
  /** INET_DIAG_REQ_BYTECODE payload, or null for no filter. */
  bytecode: Buffer | null;
}

export interface CompiledSelector {
  source: string;
  ast: Sel;
  /** Families to dump (a family whose every state residue is false is left out). */
  plans: FamilyPlan[];
  /** True when the kernel's answer is exactly the selection (no JS predicate needed). */
  exact: boolean;
  /** The exact predicate, for sockets the kernel returned (and for tests). */
  matches: (s: SockFacts) => boolean;
}

/** What the predicate reads from a socket: the inet_diag_msg header fields. */
export interface SockFacts {
  readonly family: number;
  readonly state: number;
  readonly sport: number;
  readonly dport: number;
  /** Buffer holding the 16-byte source and destination address fields (network order). */
  readonly buf: Buffer;
  readonly srcOff: number;
  readonly dstOff: number;
}

export function compileSelector(source: string, ast: Sel = parseSelector(source)): CompiledSelector {
  const plans: FamilyPlan[] = [];
  let exact = true;
  for (const family of [AF_INET, AF_INET6]) {
    let states = 0;
    const residues = new Map<string, Sel>();
    for (const s of ALL_STATES) {
      const r = residual(ast, family, s);
      if (r.k === 'false') continue;
      states |= 1 << s;
      residues.set(key(r), r);
    }
    if (states === 0) continue;
    if (residues.size > 1) exact = false;
    let union: Sel = FALSE;
    for (const r of residues.values()) union = union.k === 'false' ? r : { k: 'or', a: union, b: r };
    let bytecode: Buffer | null;
    try {
      bytecode = assemble(toBc(simplify(union)));
    } catch (e) {
      // e.g. a program longer than the u16 jumps reach: the selector is too big for a kernel filter.
      throw new SelectorError(source, 0, `cannot be compiled into a kernel filter (${(e as Error).message})`);
    }
    plans.push({ family, states, bytecode });
  }
  return { source, ast, plans, exact, matches: predicate(ast) };
}

/** Build the JS predicate (closures, no allocation per call). Mirrors inet_diag_bc_run's semantics. */
export function predicate(n: Sel): (s: SockFacts) => boolean {
  switch (n.k) {
    case 'true':
      return () => true;
    case 'false':
      return () => false;
    case 'and': {
      const a = predicate(n.a);
      const b = predicate(n.b);
      return (s) => a(s) && b(s);
    }
    case 'or': {
      const a = predicate(n.a);
      const b = predicate(n.b);
      return (s) => a(s) || b(s);
    }
    case 'not': {
      const a = predicate(n.a);
      return (s) => !a(s);
    }
    case 'state': {
      const st = n.state;
      return (s) => s.state === st;
    }
    case 'port': {
      const { port, cmp } = n;
      const src = n.end === 'src';
      if (cmp === 'eq') return (s) => (src ? s.sport : s.dport) === port;
      if (cmp === 'ge') return (s) => (src ? s.sport : s.dport) >= port;
      return (s) => (src ? s.sport : s.dport) <= port;
    }
    case 'net': {
      const { addr, prefixLen } = n;
      const src = n.end === 'src';
      if (n.family === 6) {
        return (s) => s.family === AF_INET6 && prefixMatch(s.buf, src ? s.srcOff : s.dstOff, addr, prefixLen);
      }
      return (s) => {
        const off = src ? s.srcOff : s.dstOff;
        if (s.family === AF_INET) return prefixMatch(s.buf, off, addr, prefixLen);
        return s.family === AF_INET6 && isV4Mapped(s.buf, off) && prefixMatch(s.buf, off + 12, addr, prefixLen);
      };
    }
  }
}

function prefixMatch(buf: Buffer, off: number, net: Buffer, prefixLen: number): boolean {
  const full = prefixLen >> 3;
  for (let i = 0; i < full; i++) if (buf[off + i] !== net[i]) return false;
  const rest = prefixLen & 7;
  if (rest) {
    const mask = (0xff << (8 - rest)) & 0xff;
    if ((buf[off + full] & mask) !== net[full]) return false;
  }
  return true;
}

/** Either of two selectors (the kernel filter for "--flows.select or --flows.watch"). */
export function orSelectors(a: Sel, b: Sel): Sel {
  return simplify({ k: 'or', a, b });
}
