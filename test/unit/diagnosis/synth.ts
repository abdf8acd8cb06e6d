// Synthetic flows and nodes for the diagnosis unit tests. The flow signatures are the sender-side `ss`
// samples measured on the lab's OVS userspace topology (lab/README.md; `ss -tinm` at t = 4 s); the generator adds what ss shows as
// cumulative counters (busy, rwnd_limited, sndbuf_limited, bytes_*) at a chosen rate, quantised to
// jiffies (HZ = 250) as the kernel does.

import { FlowClassifier } from '../../../src/diagnosis/classify';
import { FlowHistory } from '../../../src/diagnosis/history';
import { summarizeFlow } from '../../../src/diagnosis/summarize';
import type { FlowKey, FlowSample, FlowSummary, NodeSummary, SkMem } from '../../../src/diagnosis/types';

export const KEY: FlowKey = { localIp: '1.1.1.3', localPort: 40000, peerIp: '1.1.1.2', peerPort: 5201, cookie: '77' };
export const MBIT = 1e6 / 8; // bytes/s in one Mbit/s

export function skmem(p: Partial<SkMem>): SkMem {
  return { rmemAlloc: 0, rcvbuf: 131072, wmemAlloc: 0, sndbuf: 4194304, fwdAlloc: 0, wmemQueued: 0, optmem: 0, backlog: 0, drops: 0, ...p };
}

/** The lab signatures as single samples (only what ss printed; the rest is the generator's). */
export const SIG: Record<string, Partial<FlowSample>> = {
  base: { cc: 'cubic', rtt: 14064, minRtt: 130, cwnd: 1015, ssthresh: 760, pacingRate: 1003221840 / 8, deliveryRate: 819967904 / 8, unacked: 1007, notsentBytes: 1656416, sndWnd: 5328896, skmem: skmem({ wmemQueued: 3155320, sndbuf: 4194304 }) },
  base_bbr: { cc: 'bbr', rtt: 1780, minRtt: 150, cwnd: 210, pacingRate: 1128283712 / 8, deliveryRate: 931580416 / 8, unacked: 166, notsentBytes: 2938904, sndWnd: 6e6, bbr: { bw: 1139680512 / 8, minRtt: 150, pacingGain: 1, cwndGain: 2 }, skmem: skmem({ wmemQueued: 3e6 }) },
  // Plain veth, BBR unconstrained (measured here: rtt 0.36 ms, in flight well below cwnd).
  base_bbr_veth: { cc: 'bbr', rtt: 360, minRtt: 20, cwnd: 300, pacingRate: 11000e6 / 8, deliveryRate: 11000e6 / 8, unacked: 120, notsentBytes: 2e6, sndWnd: 6e6, bbr: { bw: 11100e6 / 8, minRtt: 20, pacingGain: 1, cwndGain: 2 }, skmem: skmem({ wmemQueued: 3e6 }) },
  pace_cubic: { cc: 'cubic', rtt: 1172, minRtt: 120, cwnd: 80, pacingRate: 100e6 / 8, maxPacingRate: 100e6 / 8, deliveryRate: 349969784 / 8, unacked: 40, notsentBytes: 333040, sndWnd: 339968, skmem: skmem({ wmemQueued: 400000 }) },
  pace_bbr: { cc: 'bbr', rtt: 1415, minRtt: 130, cwnd: 92, pacingRate: 100e6 / 8, maxPacingRate: 100e6 / 8, deliveryRate: 332873560 / 8, unacked: 45, notsentBytes: 616848, sndWnd: 6e6, bbr: { bw: 706340784 / 8, minRtt: 130, pacingGain: 1, cwndGain: 2 }, skmem: skmem({ wmemQueued: 700000 }) },
  app: { cc: 'cubic', rtt: 2254, minRtt: 140, cwnd: 182, pacingRate: 1122051488 / 8, deliveryRate: 847382632 / 8, appLimited: true, unacked: 0, notsentBytes: 0, sndWnd: 500736, skmem: skmem({ wmemQueued: 0, sndbuf: 350208 }) },
  rwnd: { cc: 'cubic', rtt: 323, minRtt: 120, cwnd: 10, pacingRate: 717275536 / 8, deliveryRate: 108940432 / 8, unacked: 2, notsentBytes: 35384, sndWnd: 4096, skmem: skmem({ wmemQueued: 40000 }) },
  sndbuf: { cc: 'cubic', rtt: 701, minRtt: 120, cwnd: 111, pacingRate: 2199164504 / 8, deliveryRate: 1126562360 / 8, appLimited: true, unacked: 14, notsentBytes: 0, sndWnd: 3e6, skmem: skmem({ wmemQueued: 21104, sndbuf: 8192 }) },
  bneck: { cc: 'cubic', rtt: 3050, minRtt: 130, cwnd: 78, ssthresh: 69, pacingRate: 355452160 / 8, deliveryRate: 209075592 / 8, unacked: 78, notsentBytes: 351864, sndWnd: 3e6, skmem: skmem({ wmemQueued: 500000 }) },
  bneck_bbr: { cc: 'bbr', rtt: 5459, minRtt: 140, cwnd: 98, pacingRate: 213605656 / 8, deliveryRate: 190396472 / 8, unacked: 178, retrans: 2, lost: 2, sacked: 69, notsentBytes: 592232, sndWnd: 3e6, bbr: { bw: 215763288 / 8, minRtt: 140, pacingGain: 1, cwndGain: 2 }, skmem: skmem({ wmemQueued: 800000 }) },
  loss: { cc: 'cubic', rtt: 477, minRtt: 300, cwnd: 10, ssthresh: 9, pacingRate: 290963888 / 8, deliveryRate: 235926680 / 8, unacked: 10, notsentBytes: 154936, sndWnd: 3e6, skmem: skmem({ wmemQueued: 170000 }) },
  // A tbf on the sender's own eth0 (veth topology) (a local qdisc): TSQ back-pressure, unacked < cwnd.
  local_tbf: { cc: 'cubic', rtt: 4500, minRtt: 60, cwnd: 150, pacingRate: 30e6, deliveryRate: 200 * MBIT, unacked: 66, notsentBytes: 1.8e6, sndWnd: 3e6, skmem: skmem({ wmemAlloc: 140000, wmemQueued: 1.9e6 }) },
  // The test guest (test/vm/guest/diagnosis.guest.ts: Debian 6.1 kernel under qemu, kernel OVS datapath,
  // netem in a namespace between the nodes), node A's `ss -tinm` during each condition:
  // fq as root qdisc of the uplink, iperf3 --fq-rate 50M: pacing_rate 50M/50M, cwnd and rwnd have room,
  // skmem t stays at 132880 (two 64 KiB GSO skbs wait in fq: the small-queue limit).
  guest_fq_pace: { cc: 'cubic', rtt: 4905, minRtt: 391, cwnd: 571, ssthresh: 571, pacingRate: 50e6 / 8, maxPacingRate: 50e6 / 8, deliveryRate: 49998080 / 8, unacked: 90, notsentBytes: 2791208, sndWnd: 1009792, skmem: skmem({ wmemAlloc: 132880, wmemQueued: 2979128, sndbuf: 4194304 }) },
  // netem loss random 1% on the data, delay 20ms on the ACKs: cwnd ~20 at srtt 24 ms, rtt at its minimum + jitter.
  guest_loss_rtt20: { cc: 'cubic', rtt: 24036, minRtt: 20000, cwnd: 18, ssthresh: 14, pacingRate: 1427649, deliveryRate: 1111993, unacked: 18, notsentBytes: 3784744, sndWnd: 3e6, skmem: skmem({ wmemQueued: 3870504, sndbuf: 4194304 }) },
  // netem loss random 1% alone (min_rtt 0.12 ms, the emulated CPU as the link): cwnd ~50 fills a queue.
  guest_loss_lan: { cc: 'cubic', rtt: 2929, minRtt: 118, cwnd: 53, ssthresh: 39, pacingRate: 26689596, deliveryRate: 300345104 / 8, unacked: 53, notsentBytes: 651600, sndWnd: 1554688, skmem: skmem({ wmemQueued: 736296, sndbuf: 992256 }) },
  // netem delay 10ms reorder 25% 50% on the data: min_rtt is the undelayed quarter's, every retransmit DSACKed.
  guest_reorder: { cc: 'cubic', rtt: 16693, minRtt: 102, cwnd: 15, ssthresh: 11, pacingRate: 1527437, deliveryRate: 1338640, unacked: 15, notsentBytes: 330144, sndWnd: 3e6, skmem: skmem({ wmemQueued: 340384, sndbuf: 426496 }) },
};

export interface SynthOptions {
  seconds?: number;
  hz?: number;
  /** Shares of wall time measured by the kernel chronographs. */
  busy?: number;
  rwnd?: number;
  sndbuf?: number;
  goodputBps?: number;
  /** Retransmitted segments per second, and how many of them DSACK reports as spurious. */
  retransPerSec?: number;
  dsackPerSec?: number;
  /** Per-sample override (e.g. a state that alternates). */
  vary?: (i: number) => Partial<FlowSample>;
}

const JIFFY_US = 4000;
const q = (us: number) => Math.floor(us / JIFFY_US) * JIFFY_US;

export function synthSamples(sig: Partial<FlowSample>, o: SynthOptions = {}): FlowSample[] {
  const seconds = o.seconds ?? 4;
  const hz = o.hz ?? 20;
  const n = Math.round(seconds * hz);
  const out: FlowSample[] = [];
  const busy = o.busy ?? 1;
  const goodput = o.goodputBps ?? sig.deliveryRate ?? 100 * MBIT;
  const mss = sig.sndMss ?? 1448;
  for (let i = 0; i <= n; i++) {
    const tSec = i / hz;
    const us = tSec * 1e6;
    const retr = Math.floor((o.retransPerSec ?? 0) * tSec);
    const sample: FlowSample = {
      state: 1,
      sndMss: mss,
      ...sig,
      t: 1000 + tSec * 1000,
      busyTime: q(us * busy),
      rwndLimited: q(us * (o.rwnd ?? 0)),
      sndbufLimited: q(us * (o.sndbuf ?? 0)),
      bytesAcked: Math.floor(goodput * tSec),
      bytesReceived: 0,
      bytesSent: Math.floor(goodput * tSec) + retr * mss,
      bytesRetrans: retr * mss,
      totalRetrans: retr,
      dsackDups: Math.floor((o.dsackPerSec ?? 0) * tSec),
      ...(o.vary ? o.vary(i) : {}),
    };
    out.push(sample);
  }
  return out;
}

export function synthFlow(sig: Partial<FlowSample>, o: SynthOptions = {}, key: FlowKey = KEY): FlowSummary {
  const cls = new FlowClassifier();
  const h = new FlowHistory(Infinity);
  for (const sample of synthSamples(sig, o)) {
    cls.add(sample);
    h.push(sample, cls);
  }
  const s = summarizeFlow(key, h);
  if (!s) throw new Error('no samples');
  return s;
}

/** A node summary with nothing wrong: devices and CPUs as given, no drops. */
export function node(p: Partial<NodeSummary> = {}): NodeSummary {
  return {
    seconds: 4,
    path: { ipDevice: 'eth0', nicDevice: 'eth0', viaOvs: false },
    devices: [],
    qdiscs: [],
    cpus: [],
    tcpExt: {},
    sysctl: {},
    errors: [],
    ...p,
  };
}
