// Text rendering of a verdict: the path of docs/kernel-sources.md §0 with a status per hop, the time breakdown and
// the ranked findings (`flowpath diagnose`), plus the progress bar shown while sampling on a TTY.

import { fmtRate } from './rules';
import type { Finding, FlowKey, FlowSummary, HopStatus, Verdict } from './types';
import { REASONS } from './types';

export interface RenderOptions {
  color?: boolean;
  /** Show every finding, including ok ones (default: limiting and suspect, plus ok count). */
  all?: boolean;
  /** Labels for the two sides, e.g. "this node" / "peer http://b:9632". */
  senderLabel?: string;
  receiverLabel?: string;
}

const ANSI: Record<string, string> = { limiting: '\x1b[1;31m', suspect: '\x1b[33m', ok: '\x1b[32m', dim: '\x1b[2m', bold: '\x1b[1m', reset: '\x1b[0m' };

export function fmtKey(k: FlowKey | undefined): string {
  if (!k) return '(no flow)';
  const h = (ip: string) => (ip.includes(':') ? `[${ip}]` : ip);
  return `${h(k.localIp)}:${k.localPort} → ${h(k.peerIp)}:${k.peerPort}`;
}

function statusWord(s: HopStatus['status']): string {
  return s === 'limiting' ? 'LIMITING' : s;
}

/** "pacing_capped 96.1% ███████  idle 2.0% ..." for the reasons above 0.5 %. */
export function renderBreakdown(f: FlowSummary, width = 30): string {
  if (f.seconds <= 0) return '(not enough samples)';
  const parts = REASONS.map((r) => [r, f.reasons[r] / f.seconds] as const)
    .filter(([, x]) => x >= 0.005)
    .sort((a, b) => b[1] - a[1]);
  return parts
    .map(([r, x], i) => {
      const bar = i === 0 ? ' ' + '█'.repeat(Math.max(1, Math.round(x * width))) : '';
      return `${r} ${(x * 100).toFixed(1)}%${bar}`;
    })
    .join('   ');
}

function oneLine(f: Finding | undefined, h: HopStatus): string {
  if (f) return f.summary;
  return h.note ?? '';
}

export function renderVerdict(v: Verdict, opts: RenderOptions = {}): string {
  const c = (k: string, s: string) => (opts.color ? `${ANSI[k] ?? ''}${s}${ANSI.reset}` : s);
  const lines: string[] = [];
  const tx = v.sender?.flow;
  const rx = v.receiver?.flow;
  const main = tx ?? rx;
  lines.push(c('bold', `flow ${fmtKey(v.flow)}`) + (main?.cc ? `   ${main.cc}` : '') + (main ? `   ${main.seconds.toFixed(1)} s, ${main.samples} samples` : ''));
  if (tx) {
    const rtt = tx.medianRttUs !== undefined ? `srtt ${(tx.medianRttUs / 1000).toFixed(2)} ms` : '';
    const minrtt = tx.minRttUs !== undefined ? ` (min ${(tx.minRttUs / 1000).toFixed(2)} ms)` : '';
    lines.push(`goodput ${fmtRate(tx.goodputBps)}   ${rtt}${minrtt}   retransmits ${tx.retransSegs ?? '?'} (${tx.dsackDups ?? 0} spurious)`);
    lines.push(`time held by: ${renderBreakdown(tx)}`);
  } else if (rx) {
    lines.push(`receiving ${fmtRate(rx.receiveBps)} (this node is the receiver; sender-side reasons need --peer)`);
  }
  lines.push('');
  const byRule = new Map(v.findings.map((f) => [f.rule, f]));
  const hopLine = (h: HopStatus) => {
    const f = h.findings.length ? byRule.get(h.findings[0]) : undefined;
    const st = statusWord(h.status).padEnd(9);
    const colored = h.status === 'limiting' || h.status === 'suspect' || h.status === 'ok' ? c(h.status, st) : c('dim', st);
    return `  ● ${h.title.padEnd(26)} ${colored} ${oneLine(f, h)}`;
  };
  lines.push(c('bold', ` SENDER${opts.senderLabel ? ` (${opts.senderLabel})` : ''}`));
  for (const h of v.hops) {
    if (h.hop === 'link') {
      const f = h.findings.length ? byRule.get(h.findings[0]) : undefined;
      const st = statusWord(h.status);
      const colored = h.status === 'limiting' || h.status === 'suspect' || h.status === 'ok' ? c(h.status, st) : c('dim', st);
      lines.push(`  ══════════ link ══════════ ${colored} ${oneLine(f, h)}`);
      lines.push(c('bold', ` RECEIVER${opts.receiverLabel ? ` (${opts.receiverLabel})` : ''}`));
      continue;
    }
    lines.push(hopLine(h));
    if (h.hop !== 'socket-rx' && h.hop !== 'nic-tx') lines.push('  │');
  }
  lines.push('');
  if (v.top) {
    lines.push(c('limiting', `VERDICT: limited at ${hopTitle(v, v.top.hop)} (${v.top.limit ?? v.top.rule}): ${v.top.summary}`));
    lines.push(`  next: ${v.top.next}`);
  } else {
    const s = v.findings.find((f) => f.status === 'suspect');
    lines.push(c('ok', 'VERDICT: no hop limits the flow') + (s ? `; most suspect: ${hopTitle(v, s.hop)}: ${s.summary}` : ''));
  }
  lines.push('');
  const shown = opts.all ? v.findings : v.findings.filter((f) => f.status !== 'ok');
  lines.push(`Findings (${shown.length} shown, ranked${opts.all ? '' : `; ${v.findings.length - shown.length} ok`}):`);
  shown.forEach((f, i) => {
    lines.push(`  ${i + 1}. ${c(f.status, `[${f.status}]`)} ${hopTitle(v, f.hop)} / ${f.rule}: ${f.summary}`);
    const ev = Object.entries(f.evidence)
      .filter(([, x]) => x !== null && x !== '')
      .map(([k, x]) => `${k}=${x}`)
      .join(' ');
    if (ev) lines.push(c('dim', `       evidence: ${ev}`));
    if (f.next) lines.push(`       next: ${f.next}`);
  });
  return lines.join('\n') + '\n';
}

function hopTitle(v: Verdict, hop: string): string {
  return v.hops.find((h) => h.hop === hop)?.title ?? hop;
}

/** "[██████░░░░░░] 4.1/10 s  82 samples" for a TTY progress line. */
export function renderProgress(doneSeconds: number, totalSeconds: number, samples: number, width = 30): string {
  const x = totalSeconds > 0 ? Math.min(1, doneSeconds / totalSeconds) : 1;
  const n = Math.round(x * width);
  return `[${'█'.repeat(n)}${'░'.repeat(width - n)}] ${doneSeconds.toFixed(1)}/${totalSeconds.toFixed(1)} s  ${samples} samples`;
}
