// Running and parsing `ss` (iproute2) for live cross-checks of the sock_diag decoder and the selector.
import { execFileSync } from 'child_process';

export interface SsSocket {
  state: string;
  recvQ: number;
  sendQ: number;
  localIp: string;
  localPort: number;
  peerIp: string;
  peerPort: number;
  /** key:value tokens (and "pacing_rate", "delivery_rate", "send" with their value). */
  kv: Map<string, string>;
  /** Bare words: the congestion control name, app_limited, ... */
  flags: Set<string>;
}

function splitAddr(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  let ip = s.slice(0, i);
  const port = s.slice(i + 1);
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  // ss prints an interface scope as "%lo" after the address.
  const pct = ip.indexOf('%');
  if (pct >= 0) ip = ip.slice(0, pct);
  return [ip, port === '*' ? 0 : Number(port)];
}

const VALUE_AFTER = new Set(['pacing_rate', 'delivery_rate', 'send']);

/** Parse one line of `ss -tinmHOn` (one socket per line, no header). */
export function parseSsLine(line: string): SsSocket {
  const tok = line.trim().split(/\s+/);
  if (tok.length < 5) throw new Error(`short ss line: ${line}`);
  const [state, rq, wq, local, peer] = tok;
  const [localIp, localPort] = splitAddr(local);
  let [peerIp, peerPort] = splitAddr(peer);
  // A listener's wildcard peer: "0.0.0.0:*", "[::]:*", or "*:*" (ss's form for some AF_INET6 sockets).
  if (peerIp === '*') peerIp = localIp.includes(':') ? '::' : '0.0.0.0';
  const kv = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 5; i < tok.length; i++) {
    const t = tok[i];
    if (VALUE_AFTER.has(t) && i + 1 < tok.length) {
      kv.set(t, tok[++i]);
      continue;
    }
    const c = t.indexOf(':');
    if (c > 0) kv.set(t.slice(0, c), t.slice(c + 1));
    else flags.add(t);
  }
  return { state, recvQ: Number(rq), sendQ: Number(wq), localIp, localPort, peerIp, peerPort, kv, flags };
}

/** `ss -t <opts> <filter>`, one parsed socket per line. */
export function runSs(opts: string, filter: string[] = []): SsSocket[] {
  const out = execFileSync('ss', [opts, ...filter], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(parseSsLine);
}

export const tupleKey = (localIp: string, localPort: number, peerIp: string, peerPort: number) => `${localIp}|${localPort}|${peerIp}|${peerPort}`;

/** C printf("%g") (precision 6), as ss uses for milliseconds. */
export function fmtG(x: number): string {
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return String(x);
  let e = Math.floor(Math.log10(Math.abs(x)));
  // Rounding to 6 significant digits can carry into the next power of ten.
  if (Math.abs(Number(x.toExponential(5))) >= 10 ** (e + 1)) e++;
  if (e < -4 || e >= 6) {
    const [m, ex] = x.toExponential(5).split('e');
    const mant = m.includes('.') ? m.replace(/0+$/, '').replace(/\.$/, '') : m;
    const n = Number(ex);
    return `${mant}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  const s = x.toFixed(Math.max(0, 5 - e));
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/** ss's state column for a kernel TCP state. */
export const SS_STATE: Record<number, string> = {
  1: 'ESTAB',
  2: 'SYN-SENT',
  3: 'SYN-RECV',
  4: 'FIN-WAIT-1',
  5: 'FIN-WAIT-2',
  6: 'TIME-WAIT',
  7: 'UNCONN',
  8: 'CLOSE-WAIT',
  9: 'LAST-ACK',
  10: 'LISTEN',
  11: 'CLOSING',
};
