// The sock_diag decoder against `ss -tinmHOn` (iproute2) and getsockopt(TCP_INFO) for the same sockets.
//
// Flows (loopback only, opened by test/support/tcp-flows.py because Node has no setsockopt):
//   v4-cubic-stalled  IPv4, CUBIC, the reader never reads: rwnd-limited, notsent > 0, zero window
//   v6-bbr            IPv6, BBR, fast reader: BBR info, pacing, delivery rate
//   mapped-cubic      AF_INET6 listener on ::ffff:127.0.0.1: the accepted socket is v4-mapped
//   v4-paced          IPv4, CUBIC, SO_MAX_PACING_RATE 4 MB/s: max pacing rate present
//   v6-bbr-stalled    IPv6, BBR, stalled reader
// plus their listeners. The helper process is SIGSTOPped while sampling (docs/kernel-sources.md §3.7), and
// each reference read (ss, getsockopt) is sandwiched between two netlink dumps A and B: a value must
// equal A's or B's, and a counter or chronograph must lie between them (chronos get a few jiffies).
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as path from 'path';
import { compileSelector } from '../../src/sources/flowselect';
import { SockDiag, SockView } from '../../src/sources/netlink/sockdiag';
import { decodeTcpInfo, tcpInfoLayout } from '../../src/sources/netlink/tcpinfo';
import { SS_STATE, runSs, tupleKey } from '../support/ss';
import { JIFFY_TOLERANCE_MS, compareWithSs } from '../support/ss-expect';
import * as os from 'os';

const SUPPORT = path.join(__dirname, '../support');

interface FlowInfo {
  name: string;
  client: [string, number];
  server: [string, number];
}

let helper: ChildProcess | null = null;
let flows: FlowInfo[] = [];
let sd: SockDiag;

function startHelper(specs: object[]): Promise<{ pid: number; flows: FlowInfo[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [path.join(SUPPORT, 'tcp-flows.py'), JSON.stringify(specs)], { stdio: ['pipe', 'pipe', 'pipe'] });
    helper = child;
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)));
    });
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.on('exit', (code) => reject(new Error(`tcp-flows.py exited with ${code}: ${err}`)));
  });
}

function stopHelper(): void {
  if (!helper || helper.exitCode !== null) return;
  try {
    process.kill(helper.pid!, 'SIGCONT');
  } catch {
    /* gone */
  }
  helper.kill('SIGKILL');
}

beforeAll(async () => {
  sd = new SockDiag();
  const h = await startHelper([
    { name: 'v4-cubic-stalled', family: '4', cc: 'cubic', reader: 'stalled', rcvbuf: 65536 },
    { name: 'v6-bbr', family: '6', cc: 'bbr', reader: 'fast' },
    { name: 'mapped-cubic', family: 'mapped', cc: 'cubic', reader: 'fast' },
    { name: 'v4-paced', family: '4', cc: 'cubic', reader: 'fast', pacing: 4_000_000, sndbuf: 65536 },
    { name: 'v6-bbr-stalled', family: '6', cc: 'bbr', reader: 'stalled', rcvbuf: 65536 },
  ]);
  flows = h.flows;
  // Let the flows run long enough for chronographs, rates and the zero window to appear.
  await new Promise((r) => setTimeout(r, 1500));
});

afterAll(() => {
  stopHelper();
  sd?.close();
});

// Our sockets: one of the helper's listener ports at either end. TIME-WAIT sockets are left out on both
// sides: Node and python listeners set SO_REUSEADDR, so bind(0) may pick a port that an earlier test's
// connection still holds in TIME-WAIT, and such a socket (no tcp_info) would join the universe.
function portsFilter(): { selector: string; ss: string[] } {
  const ports = flows.map((f) => f.server[1]);
  return {
    selector: `(${ports.map((p) => `port = ${p}`).join(' or ')}) and not state time-wait`,
    ss: ['exclude', 'time-wait', '(', ...ports.flatMap((p, i) => [...(i ? ['or'] : []), 'sport', '=', `:${p}`, 'or', 'dport', '=', `:${p}`]), ')'],
  };
}

async function dumpOurs(selector: string): Promise<Map<string, SockView>> {
  const sel = compileSelector(selector);
  const out = new Map<string, SockView>();
  await sd.dump(sel.plans, 0xce, (v) => {
    out.set(tupleKey(v.localIp(), v.sport, v.peerIp(), v.dport), v.copy());
  });
  return out;
}

/** Sample while the helper is stopped: A = netlink, then the reference reads, then B = netlink. */
async function sandwich<T>(read: () => T): Promise<{ a: Map<string, SockView>; ref: T; b: Map<string, SockView> }> {
  const pid = helper!.pid!;
  const { selector } = portsFilter();
  process.kill(pid, 'SIGSTOP');
  try {
    await new Promise((r) => setTimeout(r, 300));
    const a = await dumpOurs(selector);
    const ref = read();
    const b = await dumpOurs(selector);
    return { a, ref, b };
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

describe('sock_diag decoder vs ss -tinmHOn (live, loopback)', () => {
  it('finds the same sockets and agrees on every field ss prints', async () => {
    const { a, ref: ss, b } = await sandwich(() => runSs('-tinmHOna', portsFilter().ss));
    const problems: string[] = [];
    // 5 flows x 2 ends + 5 listeners.
    expect(ss.length).toBe(15);
    expect(new Set(a.keys())).toEqual(new Set(ss.map((s) => tupleKey(s.localIp, s.localPort, s.peerIp, s.peerPort))));
    let compared = 0;
    for (const s of ss) {
      const k = tupleKey(s.localIp, s.localPort, s.peerIp, s.peerPort);
      const ra = a.get(k)!.record();
      const rb = (b.get(k) ?? a.get(k)!).record();
      const r = compareWithSs(s, ra, rb, `${k} (${SS_STATE[ra.state]})`);
      problems.push(...r.problems);
      compared += r.compared;
    }
    expect(problems).toEqual([]);
    expect(compared).toBeGreaterThan(200);
  });

  it('covers what the flows were opened for (rwnd-limited, notsent, pacing cap, BBR, v4-mapped, IPv6)', async () => {
    const { a } = await sandwich(() => null);
    const byName = (name: string, end: 'client' | 'server') => {
      const f = flows.find((x) => x.name === name)!;
      const me = f[end];
      const peer = f[end === 'client' ? 'server' : 'client'];
      // The mapped flow's client is AF_INET; the server side is AF_INET6 with ::ffff: addresses.
      const v = a.get(tupleKey(me[0], me[1], me[0].startsWith('::ffff:') ? `::ffff:${peer[0]}` : peer[0], peer[1]));
      if (!v) throw new Error(`socket of ${name} (${end}) not found`);
      return v.record();
    };
    const stalled = byName('v4-cubic-stalled', 'client');
    expect(stalled.cc).toBe('cubic');
    expect(stalled.tcpInfo!.notsentBytes).toBeGreaterThan(0);
    expect(stalled.tcpInfo!.rwndLimited).toBeGreaterThan(0);
    expect(stalled.tcpInfo!.busyTime).toBeGreaterThanOrEqual(stalled.tcpInfo!.rwndLimited);
    expect(stalled.tcpInfo!.sndWnd).toBe(0);
    const paced = byName('v4-paced', 'client');
    expect(paced.tcpInfo!.maxPacingRate).toBe(4_000_000);
    expect(paced.tcpInfo!.pacingRate).toBeLessThanOrEqual(4_000_000);
    const bbr = byName('v6-bbr', 'client');
    expect(bbr.family).toBe(10);
    expect(bbr.localIp).toBe('::1');
    expect(bbr.cc).toBe('bbr');
    expect(bbr.bbr!.bw).toBeGreaterThan(0);
    expect(bbr.tcpInfo!.bytesAcked).toBeGreaterThan(0);
    const mapped = byName('mapped-cubic', 'server');
    expect(mapped.family).toBe(10);
    expect(mapped.localIp).toBe('::ffff:127.0.0.1');
    expect(mapped.tcpInfo!.bytesReceived).toBeGreaterThan(0);
    expect(byName('v6-bbr-stalled', 'client').tcpInfo!.rwndLimited).toBeGreaterThan(0);
  });

  it('agrees with getsockopt(TCP_INFO) on every tcp_info field, including those ss does not print', async () => {
    const { a, ref, b } = await sandwich(() => execFileSync('python3', [path.join(SUPPORT, 'tcp-info-getsockopt.py'), String(helper!.pid)], { encoding: 'utf8' }));
    const socks = JSON.parse(ref) as Array<{ local: [string, number]; peer: [string, number]; info: string }>;
    const layout = tcpInfoLayout(os.release());
    const problems: string[] = [];
    let compared = 0;
    const chronos = new Set(['busyTime', 'rwndLimited', 'sndbufLimited', 'lastDataSent', 'lastDataRecv', 'lastAckRecv', 'totalRtoTime']);
    for (const s of socks) {
      const peerIp = s.peer[1] === 0 ? (s.local[0].includes(':') ? '::' : '0.0.0.0') : s.peer[0];
      const k = tupleKey(s.local[0], s.local[1], peerIp, s.peer[1]);
      const va = a.get(k);
      if (!va) {
        problems.push(`${k}: getsockopt socket not in the netlink dump`);
        continue;
      }
      const ta = va.record().tcpInfo!;
      const tb = (b.get(k) ?? va).record().tcpInfo!;
      const gbuf = Buffer.from(s.info, 'hex');
      // getsockopt copies min(optlen, sizeof): the same length the netlink attribute carries.
      expect(gbuf.length).toBe(va.infoLen);
      const g = decodeTcpInfo(gbuf, 0, gbuf.length, layout);
      for (const f of layout.fields) {
        const x = g[f.name];
        const lo = Math.min(ta[f.name], tb[f.name]);
        const hi = Math.max(ta[f.name], tb[f.name]);
        const tol = chronos.has(f.name) ? (f.unit === 'us' ? JIFFY_TOLERANCE_MS * 1000 : JIFFY_TOLERANCE_MS) : 0;
        const ok = x === ta[f.name] || x === tb[f.name] || (x >= lo - tol && x <= hi + tol);
        if (!ok) problems.push(`${k} ${f.kernel}: getsockopt ${x}, netlink ${ta[f.name]} / ${tb[f.name]}`);
        compared++;
      }
    }
    expect(problems).toEqual([]);
    expect(socks.length).toBe(15);
    expect(compared).toBe(15 * layout.fields.length);
  });

  it('decodes the same values through the lazy view, the typed-array decoder and the record', async () => {
    const { a } = await sandwich(() => null);
    const out = new Float64Array(sd.layout.fields.length);
    for (const v of a.values()) {
      const rec = decodeTcpInfo(v.buf, v.infoOff, v.infoLen, sd.layout);
      expect(v.tcpInfoInto(out)).toBe(true);
      sd.layout.fields.forEach((f, i) => {
        expect([f.name, out[i]]).toEqual([f.name, rec[f.name]]);
        expect([f.name, v.tcp(f)]).toEqual([f.name, rec[f.name]]);
      });
    }
  });
});
