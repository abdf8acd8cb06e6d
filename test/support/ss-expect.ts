// What `ss -tinmHOn` prints for a socket, computed from our decoded record (iproute2 misc/ss.c,
// tcp_show_info() and tcp_stats_print(); docs/kernel-sources.md §3.7), and the comparison rules shared by the
// live cross-check and the fixture test. A reference read taken between two netlink reads A and B must
// equal A's or B's token; counters and chronographs must lie between them (chronos +- a few jiffies).
import { SockRecord } from '../../src/sources/netlink/sockdiag';
import { TcpInfoRecord } from '../../src/sources/netlink/tcpinfo';
import { SS_STATE, SsSocket, fmtG } from './ss';

export const JIFFY_TOLERANCE_MS = 12; // a few jiffies at HZ >= 250


export type Kind = 'exact' | 'counter' | 'chrono';
export interface Expect {
  kind: Kind;
  value: string;
}

export function ssExpectations(r: SockRecord): Map<string, Expect> {
  const m = new Map<string, Expect>();
  const t = r.tcpInfo as TcpInfoRecord;
  const ex = (k: string, v: string | undefined, kind: Kind = 'exact') => {
    if (v !== undefined) m.set(k, { kind, value: v });
  };
  const nz = (x: number) => (x ? String(x) : undefined);
  if (r.skmem) {
    const s = r.skmem;
    let v = `(r${s.rmemAlloc},rb${s.rcvbuf},t${s.wmemAlloc},tb${s.sndbuf},f${s.fwdAlloc},w${s.wmemQueued},o${s.optmem}`;
    if (s.backlog !== undefined) v += `,bl${s.backlog}`;
    if (s.drops !== undefined) v += `,d${s.drops}`;
    ex('skmem', v + ')');
  }
  if (!t) return m;
  if (t.options & 4) ex('wscale', `${t.sndWscale},${t.rcvWscale}`);
  if (t.rto && t.rto !== 3000000) ex('rto', fmtG(t.rto / 1000));
  ex('backoff', nz(t.backoff));
  if (t.rtt) ex('rtt', `${fmtG(t.rtt / 1000)}/${fmtG(t.rttvar / 1000)}`);
  if (t.ato) ex('ato', fmtG(t.ato / 1000));
  ex('mss', nz(t.sndMss));
  ex('pmtu', nz(t.pmtu));
  ex('rcvmss', nz(t.rcvMss));
  ex('advmss', nz(t.advmss));
  ex('cwnd', nz(t.sndCwnd));
  if (t.sndSsthresh < 0xffff) ex('ssthresh', nz(t.sndSsthresh));
  ex('bytes_sent', nz(t.bytesSent), 'counter');
  ex('bytes_retrans', nz(t.bytesRetrans), 'counter');
  ex('bytes_acked', nz(t.bytesAcked), 'counter');
  ex('bytes_received', nz(t.bytesReceived), 'counter');
  ex('segs_out', nz(t.segsOut), 'counter');
  ex('segs_in', nz(t.segsIn), 'counter');
  ex('data_segs_out', nz(t.dataSegsOut), 'counter');
  ex('data_segs_in', nz(t.dataSegsIn), 'counter');
  if (r.bbr) {
    let v = `(bw:${r.bbr.bw * 8}bps,mrtt:${fmtG(r.bbr.minRtt / 1000)}`;
    if (r.bbr.pacingGain) v += `,pacing_gain:${fmtG(r.bbr.pacingGain)}`;
    if (r.bbr.cwndGain) v += `,cwnd_gain:${fmtG(r.bbr.cwndGain)}`;
    ex('bbr', v + ')');
  }
  if (t.rtt > 0 && t.sndMss && t.sndCwnd) ex('send', `${((t.sndCwnd * t.sndMss * 8e6) / t.rtt).toFixed(0)}bps`);
  ex('lastsnd', nz(t.lastDataSent), 'chrono');
  ex('lastrcv', nz(t.lastDataRecv), 'chrono');
  ex('lastack', nz(t.lastAckRecv), 'chrono');
  if (t.pacingRate && t.pacingRate !== Infinity) {
    let v = `${t.pacingRate * 8}bps`;
    if (t.maxPacingRate && t.maxPacingRate !== Infinity) v += `/${t.maxPacingRate * 8}bps`;
    ex('pacing_rate', v);
  }
  if (t.deliveryRate) ex('delivery_rate', `${t.deliveryRate * 8}bps`);
  ex('delivered', nz(t.delivered), 'counter');
  ex('delivered_ce', nz(t.deliveredCe), 'counter');
  if (t.busyTime) {
    ex('busy', `${Math.floor(t.busyTime / 1000)}ms`, 'chrono');
    if (t.rwndLimited) ex('rwnd_limited', `${Math.floor(t.rwndLimited / 1000)}ms(${((100 * t.rwndLimited) / t.busyTime).toFixed(1)}%)`, 'chrono');
    if (t.sndbufLimited) ex('sndbuf_limited', `${Math.floor(t.sndbufLimited / 1000)}ms(${((100 * t.sndbufLimited) / t.busyTime).toFixed(1)}%)`, 'chrono');
  }
  ex('unacked', nz(t.unacked));
  if (t.retrans || t.totalRetrans) ex('retrans', `${t.retrans}/${t.totalRetrans}`);
  ex('lost', nz(t.lost));
  if (r.state !== 10) ex('sacked', nz(t.sacked));
  ex('dsack_dups', nz(t.dsackDups), 'counter');
  ex('fackets', nz(t.fackets));
  if (t.reordering !== 3) ex('reordering', String(t.reordering));
  ex('reord_seen', nz(t.reordSeen), 'counter');
  if (t.rcvRtt) ex('rcv_rtt', fmtG(t.rcvRtt / 1000));
  ex('rcv_space', nz(t.rcvSpace));
  ex('rcv_ssthresh', nz(t.rcvSsthresh));
  ex('notsent', nz(t.notsentBytes));
  if (t.minRtt && t.minRtt !== 0xffffffff) ex('minrtt', fmtG(t.minRtt / 1000));
  ex('rcv_ooopack', nz(t.rcvOoopack), 'counter');
  ex('snd_wnd', nz(t.sndWnd));
  return m;
}

/** Numbers of a token value: "123ms(45.6%)" -> [123, 45.6]; "1234bps" -> [1234]. */
const nums = (s: string) => (s.match(/[0-9.]+/g) ?? []).map(Number);

export function checkToken(key: string, got: string, a: Expect | undefined, b: Expect | undefined, where: string): string | null {
  const cands = [a, b].filter((x): x is Expect => x !== undefined);
  if (cands.some((c) => c.value === got)) return null;
  const kind = cands[0]?.kind;
  if (kind === 'counter' || kind === 'chrono') {
    const g = nums(got);
    const lo = nums(a?.value ?? '0');
    const hi = nums(b?.value ?? a?.value ?? '0');
    const tol = kind === 'chrono' ? JIFFY_TOLERANCE_MS : 0;
    if (g[0] >= Math.min(lo[0], hi[0]) - tol && g[0] <= Math.max(lo[0], hi[0]) + tol) {
      // "rwnd_limited:Xms(P%)": the share moves with both chronos; allow the span of A and B.
      if (g.length < 2 || (g[1] >= Math.min(lo[1], hi[1]) - 0.15 && g[1] <= Math.max(lo[1], hi[1]) + 0.15)) return null;
    }
  }
  return `${where} ${key}: ss printed "${got}", netlink gave "${a?.value}" before and "${b?.value}" after`;
}


/** Compare one ss line with the netlink records read before (a) and after (b) it. Returns problems. */
export function compareWithSs(s: SsSocket, ra: SockRecord, rb: SockRecord, where: string): { problems: string[]; compared: number } {
  const problems: string[] = [];
  let compared = 0;
  if (s.state !== SS_STATE[ra.state]) problems.push(`${where} state ${s.state} vs ${SS_STATE[ra.state]}`);
  if (![ra.rqueue, rb.rqueue].includes(s.recvQ)) problems.push(`${where} Recv-Q ${s.recvQ} vs ${ra.rqueue}/${rb.rqueue}`);
  if (![ra.wqueue, rb.wqueue].includes(s.sendQ)) problems.push(`${where} Send-Q ${s.sendQ} vs ${ra.wqueue}/${rb.wqueue}`);
  if (ra.cc !== undefined && !s.flags.has(ra.cc)) problems.push(`${where} cc ${ra.cc} not printed by ss`);
  const al = (r: SockRecord) => !!r.tcpInfo?.deliveryRateAppLimited;
  if (al(ra) !== s.flags.has('app_limited') && al(rb) !== s.flags.has('app_limited')) problems.push(`${where} app_limited differs`);
  const ea = ssExpectations(ra);
  const eb = ssExpectations(rb);
  for (const key of new Set([...ea.keys(), ...eb.keys(), ...s.kv.keys()])) {
    const got = s.kv.get(key);
    if (got === undefined) {
      if (ea.has(key) && eb.has(key)) problems.push(`${where} ${key}: netlink has "${ea.get(key)!.value}", ss printed nothing`);
      continue;
    }
    if (!ea.has(key) && !eb.has(key)) {
      problems.push(`${where} ${key}: ss printed "${got}", netlink has nothing`);
      continue;
    }
    const p = checkToken(key, got, ea.get(key), eb.get(key), where);
    if (p) problems.push(p);
    compared++;
  }
  return { problems, compared };
}
