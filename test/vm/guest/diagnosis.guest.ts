// Inside the test guest: the diagnosis accuracy matrix for conditions this machine's kernel cannot make
// (no netem, no sch_fq), on the seed's datapath (kernel OVS, addresses on br-int). The wire between the
// nodes runs through a third namespace, "the network", whose qdiscs neither node can see:
//   A br-int -> OVS -> eth1 =veth= [to-a  net ns (Linux bridge)  to-b] =veth= eth1 -> OVS -> br-int B
// netem on to-b delays/drops/reorders data (A -> B), on to-a it delays the ACKs (B -> A), which gives a
// real round-trip time without queueing A's own packets (a queue of A's skbs would hold its socket
// memory and look like TCP small queues). For each condition `flowpath diagnose --peer` runs in node A
// during an iperf3 flow and must name the expected hop and limit. docs/diagnosis.md keeps the measured
// table (printed by test/vm/guest.test.ts from the results share).
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderBreakdown } from '../../../src/diagnosis/render';
import type { FlowSummary } from '../../../src/diagnosis/types';
import { DiagnoseWorker, Exporter, SeedTopology, nsSh, record, sh, TIMEOUT, progress } from './support';

interface Finding {
  rule: string;
  hop: string;
  status: string;
  limit?: string;
  evidence: Record<string, unknown>;
}
interface Out {
  peer_error: string | null;
  top: Finding | null;
  findings: Finding[];
  sender: { flow?: FlowSummary } | null;
  receiver: { nodeSummary?: unknown } | null;
}

interface Case {
  name: string;
  /** What is set up, in words (docs/diagnosis.md). */
  how: string;
  setup: (t: SeedTopology) => void;
  iperf?: string[];
  check: (o: Out) => void;
  expected: string;
}

const topOf = (o: Out) => (o.top ? `${o.top.hop} / ${o.top.limit ?? o.top.rule}` : '(none limiting)');

/** 20 ms of delay on the ACK path and a buffer of at most 256 KiB in one node: below the BDP. */
function delayWithBuffer(name: string, node: 'a' | 'b', sysctl: string, top: string): Case {
  return {
    name,
    how: `netem on the network, B->A (ACKs): delay 20ms; node ${node.toUpperCase()}: ${sysctl}="4096 131072 262144"`,
    setup: (t) => {
      sh('ip', ['netns', 'exec', t.netNs, 'tc', 'qdisc', 'replace', 'dev', 'to-a', 'root', 'netem', 'delay', '20ms']);
      nsSh(t[node].ns, 'sysctl', ['-q', '-w', `${sysctl}=4096 131072 262144`]);
    },
    expected: top,
    check: (o) => assert.equal(topOf(o), top),
  };
}

const CASES: Case[] = [
  {
    // A segment that netem sends at once overtakes the ones it delays. The delay must stay above the
    // sender's reordering window (RACK: min_rtt/4, widened by min_rtt/4 per round trip with a DSACK, at
    // most 255 steps): ~9 ms at the measured min_rtt of 0.13 ms (the undelayed quarter), so 20 ms of
    // reordering keeps producing spurious retransmits, whatever the emulated guest's speed. With 1 ms the
    // outcome followed the host's load: 234 retransmits, all DSACKed, on a quiet host; none on a busy one.
    name: 'reorder',
    how: 'netem on the network, A->B: delay 20ms reorder 25% 50% (a quarter of the segments, correlated, skip the 20 ms and overtake the rest)',
    setup: (t) => sh('ip', ['netns', 'exec', t.netNs, 'tc', 'qdisc', 'replace', 'dev', 'to-b', 'root', 'netem', 'delay', '20ms', 'reorder', '25%', '50%']),
    expected: 'tcp-tx spurious-retransmits (suspect, reordering); not link / loss',
    check: (o) => {
      const sp = o.findings.find((f) => f.rule === 'spurious-retransmits');
      assert.ok(sp && sp.status === 'suspect' && sp.limit === 'reordering', `spurious-retransmits finding: ${JSON.stringify(sp)}`);
      assert.notEqual(topOf(o), 'link / loss');
    },
  },
  {
    // Random loss on a path with a real round trip (40 ms of delay on the ACKs): CUBIC's loss-limited
    // window (~20 segments) stays far below the path's BDP, so nothing queues, and the emulator's
    // scheduling jitter (up to ~12 ms added to the median srtt on a loaded host) stays far from the 2x
    // that counts as a queue. On the emulated LAN (min_rtt 0.1 ms, the guest's CPU as the "link") the
    // same loss rate leaves a window of ~50 segments against a BDP of 2-3: the flow fills a queue in the
    // guest, and link / queue is the right verdict there (docs/diagnosis.md, 5.1).
    name: 'loss',
    how: 'netem on the network, A->B: loss random 1%; B->A (ACKs): delay 40ms',
    setup: (t) => {
      sh('ip', ['netns', 'exec', t.netNs, 'tc', 'qdisc', 'replace', 'dev', 'to-b', 'root', 'netem', 'loss', 'random', '1%']);
      sh('ip', ['netns', 'exec', t.netNs, 'tc', 'qdisc', 'replace', 'dev', 'to-a', 'root', 'netem', 'delay', '40ms']);
    },
    expected: 'link / loss',
    check: (o) => assert.equal(topOf(o), 'link / loss'),
  },
  delayWithBuffer('delay-rwnd', 'b', 'net.ipv4.tcp_rmem', 'socket-rx / rwnd'),
  delayWithBuffer('delay-sndbuf', 'a', 'net.ipv4.tcp_wmem', 'socket-tx / sndbuf'),
  {
    name: 'fq-pacing',
    how: 'fq on A\'s uplink eth1 (after the OVS datapath); iperf3 --fq-rate 50M (SO_MAX_PACING_RATE)',
    setup: (t) => nsSh(t.a.ns, 'tc', ['qdisc', 'replace', 'dev', 'eth1', 'root', 'fq']),
    iperf: ['--fq-rate', '50M'],
    expected: 'tcp-tx / pacing_capped',
    check: (o) => assert.equal(topOf(o), 'tcp-tx / pacing_capped'),
  },
];

function restore(t: SeedTopology): void {
  for (const dev of ['to-a', 'to-b']) {
    try {
      sh('ip', ['netns', 'exec', t.netNs, 'tc', 'qdisc', 'del', 'dev', dev, 'root']);
    } catch {
      /* none */
    }
  }
  try {
    nsSh(t.a.ns, 'tc', ['qdisc', 'del', 'dev', 'eth1', 'root']);
  } catch {
    /* none */
  }
  nsSh(t.a.ns, 'sysctl', ['-q', '-w', 'net.ipv4.tcp_wmem=4096 16384 4194304']);
  nsSh(t.b.ns, 'sysctl', ['-q', '-w', 'net.ipv4.tcp_rmem=4096 131072 6291456']);
}

/** The sender's time breakdown as `flowpath diagnose` prints it, without the bar. */
const heldBy = (f: FlowSummary | undefined) => (f ? renderBreakdown(f).replace(/ █+/, '') : '');

describe('diagnosis on the kernel OVS datapath with netem and fq (seed topology, wire through a network namespace)', () => {
  const topo = new SeedTopology('dx', 'network');
  let eb: Exporter;
  let worker: DiagnoseWorker;

  before(async () => {
    await topo.up();
    [eb, worker] = await Promise.all([topo.startExporter(topo.b, ['--diagnosis.top=0', '--scrape.timeout=120s', '--ovs.timeout=20s']), topo.startDiagnoseWorker()]);
  }, TIMEOUT.before);

  beforeEach((t) => progress(`test: ${t.name}`));

  after(async () => {
    await eb?.stop();
    await topo.stop();
  }, TIMEOUT.after);

  for (const c of CASES) {
    it(`${c.name}: ${c.expected}`, TIMEOUT.test, async () => {
      restore(topo);
      c.setup(topo);
      let o: Out;
      try {
        o = await topo.diagnoseFlow<Out>(['-C', 'cubic', ...(c.iperf ?? [])], 5, worker);
      } finally {
        restore(topo);
      }
      const f = o.sender?.flow;
      const row = {
        case: c.name,
        how: c.how,
        expected: c.expected,
        top: topOf(o),
        limiting: o.findings.filter((x) => x.status === 'limiting').map((x) => `${x.hop}:${x.rule}`),
        suspect: o.findings.filter((x) => x.status === 'suspect').map((x) => `${x.hop}:${x.rule}`),
        held_by: heldBy(f),
        goodput_mbps: f?.goodputBps ? Math.round((f.goodputBps * 8) / 1e6) : null,
        srtt_ms: f?.medianRttUs ? +(f.medianRttUs / 1000).toFixed(1) : null,
        min_rtt_ms: f?.minRttUs ? +(f.minRttUs / 1000).toFixed(2) : null,
        retrans: f?.retransSegs ?? null,
        dsack: f?.dsackDups ?? null,
      };
      record('diagnosis.jsonl', row);
      assert.equal(o.peer_error, null);
      assert.ok(o.receiver?.nodeSummary, 'the receiver evidence came through --peer');
      c.check(o);
    });
  }
});
