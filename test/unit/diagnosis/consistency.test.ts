// One definition per quantity across the findings of a report, and no finding that states a rate
// relation its own evidence contradicts (docs/diagnosis.md, "Quantities").

import { pacingBound } from '../../../src/diagnosis/classify';
import { pathShare, share } from '../../../src/diagnosis/rules';
import { diagnose } from '../../../src/diagnosis/verdict';
import type { EvidenceValue, FlowSummary, NodeSummary, ThreadDelta, Verdict } from '../../../src/diagnosis/types';
import { MBIT, SIG, node, skmem, synthFlow } from './synth';

const INODE = 77;
const th = (run: number, wait: number): ThreadDelta => ({ pid: 5, tid: 6, comm: 'iperf3', runShare: run, waitShare: wait, demand: run + wait, processor: 1 });
const withOwner = (threads: ThreadDelta[]): NodeSummary =>
  node({
    owners: [{ inode: INODE, pids: [5], threads }],
    cpus: [
      { cpu: 0, softirqShare: 0.05 },
      { cpu: 1, softirqShare: 0.4, irqShare: 0, stealShare: 0 },
    ],
    cpuBusy: 0.98,
  });
const ovs = (p: Partial<NonNullable<NodeSummary['ovs']>>): NodeSummary =>
  node({ path: { ipDevice: 'a-int', nicDevice: 'wire-a', viaOvs: true }, ovs: { datapaths: [{ name: 'ovs-netdev', type: 'netdev' }], portDrops: [], ...p } });

// The veth BBR report of the issue: BBR with room in cwnd half the time, cwnd-limited the other half,
// pacing_rate 215 Gbit/s while ~11 Gbit/s leave, the writer CPU-bound on CPU 1.
const issueFlow = synthFlow(
  { ...SIG.base_bbr_veth, inode: INODE, pacingRate: 215e9 / 8, bbr: { bw: 173e9 / 8, minRtt: 20, pacingGain: 1.25, cwndGain: 2 } },
  { goodputBps: 10750 * MBIT, vary: (i) => (i % 3 === 0 ? { unacked: 300 } : {}) },
);

const REPORTS: Array<[string, Verdict]> = [
  ['issue: BBR on veth, pacing rate 20× goodput, writer CPU-bound', diagnose({ sender: { flow: issueFlow, nodeSummary: withOwner([th(0.97, 0.02)]) } })],
  ['bneck cubic on OVS, vswitchd with spare capacity', diagnose({ sender: { flow: synthFlow(SIG.bneck, { goodputBps: 191 * MBIT, retransPerSec: 10 }), nodeSummary: ovs({ vswitchdCpuShare: 0.95, vswitchdThread: { ...th(0.9, 0.05), sleepsPerSecond: 400 } }) } })],
  ['bneck bbr', diagnose({ sender: { flow: synthFlow(SIG.bneck_bbr, { goodputBps: 193 * MBIT, retransPerSec: 150 }), nodeSummary: node() } })],
  ['app-limited, writer asleep', diagnose({ sender: { flow: synthFlow({ ...SIG.app, inode: INODE }, { busy: 0.25, goodputBps: 100 * MBIT }), nodeSummary: withOwner([th(0.03, 0)]) } })],
  ['pacing-capped', diagnose({ sender: { flow: synthFlow(SIG.pace_bbr, { goodputBps: 100 * MBIT }), nodeSummary: node() } })],
  ['rwnd with a receiver', diagnose({ sender: { flow: synthFlow({ ...SIG.rwnd }, { rwnd: 0.94, goodputBps: 111 * MBIT }), nodeSummary: node() }, receiver: { flow: synthFlow({ cc: 'cubic', inode: INODE, skmem: skmem({ rmemAlloc: 6e6, rcvbuf: 6291456 }) }, { goodputBps: 0 }), nodeSummary: withOwner([th(0.95, 0.03)]) } })],
];

const pct = (x: number) => Math.round(x * 1000) / 10;

/** Phrases the summaries use for a share of the sender's time, and the one definition behind each. */
const PHRASES: Array<[RegExp, string, (f: FlowSummary) => number]> = [
  [/path-bound (\d+(?:\.\d+)?)%/g, 'path_bound_pct', (f) => pathShare(f)],
  [/cwnd-limited (\d+(?:\.\d+)?)%/g, 'cwnd_pct', (f) => share(f, 'cwnd')],
  [/paced (?:the flow )?(\d+(?:\.\d+)?)%/g, 'pacing_pct', (f) => share(f, 'pacing')],
  [/\bidle (\d+(?:\.\d+)?)%/g, 'idle_pct', (f) => share(f, 'idle')],
  [/nothing unsent (\d+(?:\.\d+)?)%/g, 'app_pct', (f) => share(f, 'app')],
  [/unclassified (\d+(?:\.\d+)?)%/g, 'unclassified_pct', (f) => share(f, 'unclassified')],
  [/left the socket empty (\d+(?:\.\d+)?)%/g, 'empty_pct', (f) => share(f, 'idle', 'app')],
  [/receive window held the sender (\d+(?:\.\d+)?)%/g, 'rwnd_pct', (f) => share(f, 'rwnd')],
];

describe.each(REPORTS)('%s', (_name, v) => {
  const tx = v.sender?.flow as FlowSummary;

  it('every evidence key has one value across the findings', () => {
    const seen = new Map<string, { value: EvidenceValue; rule: string }>();
    for (const f of v.findings) {
      for (const [k, x] of Object.entries(f.evidence)) {
        const prev = seen.get(k);
        if (prev) expect({ key: k, rule: f.rule, value: x }).toEqual({ key: k, rule: f.rule, value: prev.value });
        else seen.set(k, { value: x, rule: f.rule });
      }
    }
  });

  it('every share a summary states is the one definition of that quantity (and its evidence key)', () => {
    let checked = 0;
    for (const f of v.findings) {
      for (const [re, key, def] of PHRASES) {
        for (const m of f.summary.matchAll(re)) {
          expect({ rule: f.rule, phrase: m[0], value: Number(m[1]) }).toEqual({ rule: f.rule, phrase: m[0], value: pct(def(tx)) });
          if (key in f.evidence) expect({ rule: f.rule, key, value: f.evidence[key] }).toEqual({ rule: f.rule, key, value: pct(def(tx)) });
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(0);
  });

  it('no non-ok pacing finding while the flow sends far below its pacing rate', () => {
    for (const f of v.findings) {
      if (f.status === 'ok' || (f.limit !== 'pacing' && f.limit !== 'pacing_capped')) continue;
      const send = f.evidence.send_rate_bps as number;
      const rate = (f.limit === 'pacing' ? f.evidence.pacing_rate_bps : f.evidence.max_pacing_rate_bps) as number;
      expect(send).toBeGreaterThanOrEqual(0.5 * rate);
    }
  });
});

describe('the issue report', () => {
  const v = REPORTS[0][1];
  it('does not say BBR paced the flow most of the time at 215 Gbit/s', () => {
    const p = v.findings.find((f) => f.rule === 'pacing');
    expect(p?.status).toBe('ok');
    expect(p?.summary).toMatch(/20\.0× the send rate/);
    expect((v.sender?.flow?.reasons.pacing ?? 1) / (v.sender?.flow?.seconds ?? 1)).toBeLessThan(0.1);
    // the time with room to send and no pacing goes to unclassified, and the CPU-bound writer explains it
    expect(v.top?.rule).toBe('sender-cpu');
    expect(v.top?.summary).toMatch(/CPU-bound: it ran 97% of a core on CPU 1 .*softirq 40%/);
  });
  it('pacingBound: bytes sent at the pacing rate allow the whole interval, 1/20 of it allows ~6%', () => {
    const a = { t: 0, bytesSent: 0, pacingRate: 1e9, sndMss: 1448 };
    expect(pacingBound(a, { ...a, t: 50, bytesSent: 50e6 })).toBeGreaterThanOrEqual(0.05);
    expect(pacingBound(a, { ...a, t: 50, bytesSent: 2.5e6 })).toBeLessThan(0.05 / 10);
    expect(pacingBound(a, { ...a, t: 50 })).toBeGreaterThan(0); // one skb due across the boundary
    expect(pacingBound({ t: 0 }, { t: 50 })).toBe(Infinity); // no bytes_sent: not checked
  });
});
