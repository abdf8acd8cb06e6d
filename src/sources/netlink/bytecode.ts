// INET_DIAG_REQ_BYTECODE: the filter program the kernel runs on every socket of a sock_diag dump
// (inet_diag_bc_run() / inet_diag_bc_audit() in net/ipv4/inet_diag.c; docs/kernel-sources.md §2.2).
//
// Program = a sequence of `struct inet_diag_bc_op { u8 code; u8 yes; u16 no; }` (host order), some
// followed by an argument. The kernel evaluates an op; true advances `yes` bytes, false advances `no`
// bytes. The socket matches iff execution ends exactly at the end of the program; jumping to end+4
// rejects. The audit (any violation = EINVAL for the whole dump) wants `yes` = the op's own length,
// every `no` a multiple of 4 landing on an op boundary (or end / end+4), and only forward jumps.
//
// This module is the assembler: a boolean condition tree in, bytes out. Every op falls through on true
// (yes = own length) and jumps forward on false, which satisfies the audit by construction:
//   cond          op(no -> F)
//   a and b       a(F) b(F)
//   a or b        a(L) JMP(-> end) L: b(F)
//   not a         a(L) JMP(-> F) L:
// The program's overall F is "reject" (end+4); falling off the end accepts.

export const INET_DIAG_BC_NOP = 0;
export const INET_DIAG_BC_JMP = 1;
export const INET_DIAG_BC_S_GE = 2;
export const INET_DIAG_BC_S_LE = 3;
export const INET_DIAG_BC_D_GE = 4;
export const INET_DIAG_BC_D_LE = 5;
export const INET_DIAG_BC_AUTO = 6;
export const INET_DIAG_BC_S_COND = 7;
export const INET_DIAG_BC_D_COND = 8;
export const INET_DIAG_BC_DEV_COND = 9;
export const INET_DIAG_BC_MARK_COND = 10;
export const INET_DIAG_BC_S_EQ = 11;
export const INET_DIAG_BC_D_EQ = 12;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;

/** Which end of the connection a condition looks at: src = local, dst = peer (ss's words). */
export type End = 'src' | 'dst';

/** A condition the kernel can evaluate, and the boolean structure around it. */
export type BcNode =
  | { k: 'true' }
  | { k: 'false' }
  | { k: 'and'; a: BcNode; b: BcNode }
  | { k: 'or'; a: BcNode; b: BcNode }
  | { k: 'not'; a: BcNode }
  /** port >= / <= value (S_GE, S_LE, D_GE, D_LE). */
  | { k: 'port'; end: End; cmp: 'ge' | 'le'; port: number }
  /**
   * inet_diag_hostcond: family 0 = any address (then only the port counts), AF_INET / AF_INET6 with a
   * prefix in bits; port -1 = any port. An AF_INET condition also matches v4-mapped AF_INET6 sockets.
   */
  | { k: 'host'; end: End; family: number; prefixLen: number; addr: Buffer; port: number };

interface Label {
  pos: number | null;
}

interface Op {
  at: number;
  code: number;
  len: number;
  target: Label | 'reject';
  arg: Buffer | null;
}

/**
 * Assemble a condition tree into INET_DIAG_REQ_BYTECODE bytes. Returns null when the tree is constant
 * true (no filter needed). A constant-false tree yields a 4-byte program that rejects everything.
 */
export function assemble(root: BcNode): Buffer | null {
  if (root.k === 'true') return null;
  const ops: Op[] = [];
  let pc = 0;
  const here = (l: Label) => {
    l.pos = pc;
  };
  const emit = (code: number, len: number, target: Label | 'reject', arg: Buffer | null) => {
    ops.push({ at: pc, code, len, target, arg });
    pc += len;
  };
  // Emit code for `n` that falls through when n is true and jumps to `F` when false.
  const gen = (n: BcNode, F: Label | 'reject'): void => {
    switch (n.k) {
      case 'true':
        return;
      case 'false':
        emit(INET_DIAG_BC_JMP, 4, F, null);
        return;
      case 'and':
        gen(n.a, F);
        gen(n.b, F);
        return;
      case 'or': {
        const tryB: Label = { pos: null };
        const end: Label = { pos: null };
        gen(n.a, tryB);
        emit(INET_DIAG_BC_JMP, 4, end, null);
        here(tryB);
        gen(n.b, F);
        here(end);
        return;
      }
      case 'not': {
        const isFalse: Label = { pos: null };
        gen(n.a, isFalse);
        emit(INET_DIAG_BC_JMP, 4, F, null);
        here(isFalse);
        return;
      }
      case 'port': {
        if (!Number.isInteger(n.port) || n.port < 0 || n.port > 65535) throw new Error(`bytecode: port ${n.port} out of range`);
        const code =
          n.end === 'src' ? (n.cmp === 'ge' ? INET_DIAG_BC_S_GE : INET_DIAG_BC_S_LE) : n.cmp === 'ge' ? INET_DIAG_BC_D_GE : INET_DIAG_BC_D_LE;
        // The argument is a second inet_diag_bc_op whose `no` field holds the port (code, yes = 0).
        const arg = Buffer.alloc(4);
        arg.writeUInt16LE(n.port, 2);
        emit(code, 8, F, arg);
        return;
      }
      case 'host': {
        const addrLen = n.family === AF_INET ? 4 : n.family === AF_INET6 ? 16 : n.family === AF_UNSPEC ? 0 : -1;
        if (addrLen < 0) throw new Error(`bytecode: address family ${n.family} not supported`);
        if (n.addr.length < addrLen) throw new Error(`bytecode: address has ${n.addr.length} bytes, family ${n.family} needs ${addrLen}`);
        if (n.prefixLen < 0 || n.prefixLen > addrLen * 8) throw new Error(`bytecode: prefix /${n.prefixLen} out of range`);
        if (!Number.isInteger(n.port) || n.port < -1 || n.port > 65535) throw new Error(`bytecode: port ${n.port} out of range`);
        // struct inet_diag_hostcond { u8 family; u8 prefix_len; int port; __be32 addr[]; }
        const arg = Buffer.alloc(8 + addrLen);
        arg[0] = n.family;
        arg[1] = n.prefixLen;
        arg.writeInt32LE(n.port, 4);
        n.addr.copy(arg, 8, 0, addrLen);
        emit(n.end === 'src' ? INET_DIAG_BC_S_COND : INET_DIAG_BC_D_COND, 4 + arg.length, F, arg);
        return;
      }
    }
  };
  gen(root, 'reject');
  const total = pc;
  if (total > 0xffff - 4) throw new Error(`bytecode: program of ${total} bytes is too long (jumps are u16)`);
  const out = Buffer.alloc(total);
  for (const op of ops) {
    const target = op.target === 'reject' ? total + 4 : op.target.pos;
    if (target === null) throw new Error('bytecode: unresolved label');
    const no = target - op.at;
    if (no < op.len || no % 4 !== 0) throw new Error(`bytecode: bad jump ${no} at ${op.at}`);
    out[op.at] = op.code;
    out[op.at + 1] = op.len; // yes: fall through
    out.writeUInt16LE(no, op.at + 2);
    if (op.arg) op.arg.copy(out, op.at + 4);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// A model of the kernel's audit and interpreter, for tests and for checking programs before sending.

export interface BcSocket {
  family: number;
  sport: number;
  dport: number;
  /** 16 bytes, network order; AF_INET uses the first 4. */
  src: Buffer;
  dst: Buffer;
}

function validCc(bc: Buffer, len: number, cc: number): boolean {
  // valid_cc(): is `cc` (remaining length) reachable by walking `yes` steps from the start?
  let off = 0;
  let rem = len;
  while (rem > 0) {
    if (cc > rem) return false;
    if (cc === rem) return true;
    const yes = bc[off + 1];
    if (yes < 4 || yes > rem) return false; // (the audit rejects these anyway)
    rem -= yes;
    off += yes;
  }
  return false;
}

/** Mirrors inet_diag_bc_audit(): throws Error("EINVAL: ...") where the kernel would refuse the program. */
export function auditBytecode(bc: Buffer): void {
  const len = bc.length;
  let off = 0;
  let rem = len;
  while (rem > 0) {
    if (rem < 4) throw new Error(`EINVAL: ${rem} trailing bytes at ${off}`);
    const code = bc[off];
    const yes = bc[off + 1];
    const no = bc.readUInt16LE(off + 2);
    let minLen = 4;
    switch (code) {
      case INET_DIAG_BC_S_COND:
      case INET_DIAG_BC_D_COND: {
        if (rem < 12) throw new Error(`EINVAL: hostcond truncated at ${off}`);
        const fam = bc[off + 4];
        const plen = bc[off + 5];
        const alen = fam === AF_UNSPEC ? 0 : fam === AF_INET ? 4 : fam === AF_INET6 ? 16 : -1;
        if (alen < 0) throw new Error(`EINVAL: hostcond family ${fam} at ${off}`);
        minLen = 12 + alen;
        if (plen > alen * 8) throw new Error(`EINVAL: prefix ${plen} at ${off}`);
        if (rem < minLen) throw new Error(`EINVAL: hostcond address truncated at ${off}`);
        break;
      }
      case INET_DIAG_BC_S_GE:
      case INET_DIAG_BC_S_LE:
      case INET_DIAG_BC_D_GE:
      case INET_DIAG_BC_D_LE:
      case INET_DIAG_BC_S_EQ:
      case INET_DIAG_BC_D_EQ:
        minLen = 8;
        if (rem < 8) throw new Error(`EINVAL: port op truncated at ${off}`);
        break;
      case INET_DIAG_BC_AUTO:
      case INET_DIAG_BC_JMP:
      case INET_DIAG_BC_NOP:
        break;
      default:
        throw new Error(`EINVAL: op code ${code} at ${off}`);
    }
    if (code !== INET_DIAG_BC_NOP) {
      if (no < minLen || no > rem + 4 || no & 3) throw new Error(`EINVAL: no=${no} at ${off}`);
      if (no < rem && !validCc(bc, len, rem - no)) throw new Error(`EINVAL: no=${no} at ${off} lands off the yes chain`);
    }
    if (yes < minLen || yes > rem + 4 || yes & 3) throw new Error(`EINVAL: yes=${yes} at ${off}`);
    off += yes;
    rem -= yes;
  }
}

function bitstringMatch(a: Buffer, aOff: number, b: Buffer, bOff: number, bits: number): boolean {
  const words = bits >> 5;
  const rest = bits & 31;
  for (let i = 0; i < words * 4; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  if (rest) {
    const w1 = a.readUInt32BE(aOff + words * 4);
    const w2 = b.readUInt32BE(bOff + words * 4);
    const mask = (0xffffffff << (32 - rest)) >>> 0;
    if (((w1 ^ w2) & mask) >>> 0 !== 0) return false;
  }
  return true;
}

/** Mirrors inet_diag_bc_run() for the ops this project emits (plus S_EQ/D_EQ). */
export function runBytecode(bc: Buffer, s: BcSocket): boolean {
  let off = 0;
  let len = bc.length;
  while (len > 0) {
    const code = bc[off];
    const yesLen = bc[off + 1];
    const noLen = bc.readUInt16LE(off + 2);
    let yes = true;
    switch (code) {
      case INET_DIAG_BC_NOP:
        break;
      case INET_DIAG_BC_JMP:
        yes = false;
        break;
      case INET_DIAG_BC_S_EQ:
        yes = s.sport === bc.readUInt16LE(off + 6);
        break;
      case INET_DIAG_BC_S_GE:
        yes = s.sport >= bc.readUInt16LE(off + 6);
        break;
      case INET_DIAG_BC_S_LE:
        yes = s.sport <= bc.readUInt16LE(off + 6);
        break;
      case INET_DIAG_BC_D_EQ:
        yes = s.dport === bc.readUInt16LE(off + 6);
        break;
      case INET_DIAG_BC_D_GE:
        yes = s.dport >= bc.readUInt16LE(off + 6);
        break;
      case INET_DIAG_BC_D_LE:
        yes = s.dport <= bc.readUInt16LE(off + 6);
        break;
      case INET_DIAG_BC_S_COND:
      case INET_DIAG_BC_D_COND: {
        const fam = bc[off + 4];
        const plen = bc[off + 5];
        const port = bc.readInt32LE(off + 8);
        const isSrc = code === INET_DIAG_BC_S_COND;
        const addr = isSrc ? s.src : s.dst;
        if (port !== -1 && port !== (isSrc ? s.sport : s.dport)) {
          yes = false;
          break;
        }
        if (fam !== AF_UNSPEC && fam !== s.family) {
          yes =
            s.family === AF_INET6 &&
            fam === AF_INET &&
            addr.readUInt32BE(0) === 0 &&
            addr.readUInt32BE(4) === 0 &&
            addr.readUInt32BE(8) === 0xffff &&
            bitstringMatch(addr, 12, bc, off + 12, plen);
          break;
        }
        if (plen === 0) break;
        yes = bitstringMatch(addr, 0, bc, off + 12, plen);
        break;
      }
      default:
        throw new Error(`runBytecode: op ${code} not modelled`);
    }
    const step = yes ? yesLen : noLen;
    len -= step;
    off += step;
  }
  return len === 0;
}
