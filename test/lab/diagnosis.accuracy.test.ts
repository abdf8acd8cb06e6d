// Accuracy of the diagnosis on the lab (issue 5.4): for every flow condition of lab/flow, under CUBIC and
// BBR, on the OVS and the plain-veth topology, `flowpath diagnose` run in node A with --peer (node B
// serving /api/diagnosis) must name the right limit and hop as its top finding, and an unconstrained flow
// must get no "limiting" finding on a hop that is not one.
//
// Needs root, network namespaces, iperf3 and OVS (lab/up), and the compiled code (npm run build; or
// FLOWPATH_DIST=<dir with the compiled src/>). Each topology is built and torn down once; each flow runs
// ~4 s. The measured matrix is printed at the end (docs/diagnosis.md keeps a copy).

import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { B_IP, Condition, CongestionControl, NS_A, NS_B, OVS_UNIXCTL, REPO_ROOT, Topo, labDown, labSkipReason, labUp, nsExec, startFlow } from './lab';

const DIST = path.resolve(process.env.FLOWPATH_DIST ?? path.join(REPO_ROOT, 'dist', 'src'));
const PEER_PORT = 9639;
// The flow outlives the diagnosis by ~2 s: on a loaded machine starting node and the diagnose command
// can take a second or more, and a flow that ends inside the window leaves too few samples.
const FLOW_SECONDS = 6;
const WARMUP_MS = 700;
const DIAGNOSE_SECONDS = 2.8;

const skip = labSkipReason();
const d = skip ? describe.skip : describe;
if (skip) console.warn(`diagnosis accuracy: skipped: ${skip}`);

/** `flowpath diagnose` through the compiled module (works before the CLI registers the command). */
const DIAGNOSE_JS = `
const B = process.argv[1];
const { parseArgs } = require(B + '/core/flags');
const { allFlags } = require(B + '/exporter');
const cmd = require(B + '/diagnosis/command');
const args = parseArgs([...allFlags(), ...cmd.diagnoseCommand.flags], process.argv.slice(2));
cmd.runDiagnose(args.config, { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) })
  .then((c) => process.exit(c), (e) => { console.error(e && e.stack || e); process.exit(1); });
`;

/** The exporter's HTTP server with the diagnosis collector and API, as src/cli.ts serves them. */
const PEER_JS = `
const B = process.argv[1];
const { parseArgs } = require(B + '/core/flags');
const { Exporter, allFlags } = require(B + '/exporter');
const { createApp } = require(B + '/server');
const { createLogger } = require(B + '/core/log');
const { diagnosisCollector, samplerFromRegistry } = require(B + '/collectors/diagnosis');
const { mountDiagnosisApi } = require(B + '/diagnosis/api');
const defs = [diagnosisCollector];
const args = parseArgs(allFlags(defs), process.argv.slice(3));
const exporter = new Exporter(args.config, createLogger('warn'), defs);
exporter.start();
const app = createApp(exporter, { routes: (a) => mountDiagnosisApi(a, { sampler: () => samplerFromRegistry(exporter.registry) }) });
const [host, port] = process.argv[2].split(':');
const srv = app.listen(Number(port), host, () => console.log('listening'));
process.on('SIGTERM', () => { srv.close(); exporter.close().finally(() => process.exit(0)); });
`;

interface Expect {
  hop: string;
  limit: string;
}

const EXPECT: Partial<Record<Condition, Expect>> = {
  pace: { hop: 'tcp-tx', limit: 'pacing_capped' },
  app: { hop: 'socket-tx', limit: 'app' },
  rwnd: { hop: 'socket-rx', limit: 'rwnd' },
  sndbuf: { hop: 'socket-tx', limit: 'sndbuf' },
  bneck: { hop: 'link', limit: 'queue' },
  loss: { hop: 'link', limit: 'loss' },
};

/**
 * Hops that may legitimately limit an unconstrained flow: on the OVS topology the userspace datapath
 * (its tap queue and vswitchd's CPU), on plain veth the CPUs: the sender's writer thread, the receiver's
 * RX softirq CPU and its reader thread.
 */
const BASE_ALLOWED: Record<Topo, string[]> = {
  ovs: ['qdisc-tx', 'ovs-tx', 'ovs-rx'],
  // sender, receiver and softirq share two CPUs: the CPU-bound writer (socket-tx), the RX softirq CPU
  // (nic-rx) or the CPU-bound reader with data waiting in its queue (socket-rx)
  veth: ['socket-tx', 'nic-rx', 'socket-rx'],
};

/**
 * Cells whose expected finding may come out as "suspect" rather than "limiting" (no top finding): the
 * plain-veth loss case under CUBIC. Its RTT is ~50 µs and the ~1-packet queue keeps cwnd at ~3 segments;
 * 50-70% of the samples find the window open with data waiting and nothing queued on the host, which no
 * sampled state explains (unclassified), so the path-bound share lands on either side of the rule's 30%
 * (27% and 47% in two runs on an idle machine) and the loss finding is limiting in some runs and suspect
 * in others. Both name the loss on the link; the test still requires that finding (docs/diagnosis.md,
 * accuracy matrix).
 */
const SUSPECT_ALLOWED: ReadonlyArray<[Topo, Condition, CongestionControl]> = [['veth', 'loss', 'cubic']];
const suspectAllowed = (topo: Topo, cond: Condition, cc: CongestionControl) => SUSPECT_ALLOWED.some(([t, c, k]) => t === topo && c === cond && k === cc);

const CASES: Array<[Condition, CongestionControl]> = (['base', 'pace', 'app', 'rwnd', 'sndbuf', 'bneck', 'loss'] as Condition[]).flatMap((c) =>
  (['cubic', 'bbr'] as CongestionControl[]).map((cc) => [c, cc] as [Condition, CongestionControl]),
);

interface Row {
  topo: Topo;
  cond: Condition;
  cc: string;
  top: string;
  limiting: string;
  shares: string;
  goodput: string;
  ok: boolean | 'suspect';
}
const matrix: Row[] = [];

interface Finding {
  rule: string;
  hop: string;
  status: string;
  limit?: string;
}
interface Out {
  top: Finding | null;
  findings: Finding[];
  peer_error: string | null;
  sender: { flow?: { reasons: Record<string, number>; seconds: number; goodputBps?: number } } | null;
  receiver: { flow?: unknown; nodeSummary?: unknown } | null;
}

function startPeer(topo: Topo): Promise<ChildProcess> {
  const extra = topo === 'ovs' ? [`--ovs.unixctl=${OVS_UNIXCTL}`] : [];
  const child = spawn('ip', ['netns', 'exec', NS_B, process.execPath, '-e', PEER_JS, DIST, `${B_IP}:${PEER_PORT}`, '--diagnosis.top=0', '--diagnosis.node-interval=0.5s', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`peer did not start: ${err}`)), 15000);
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (out.includes('listening')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`peer exited (${code}): ${err}`));
    });
  });
}

async function diagnose(topo: Topo): Promise<Out> {
  const extra = topo === 'ovs' ? [`--ovs.unixctl=${OVS_UNIXCTL}`] : [];
  const { stdout } = await nsExec(
    NS_A,
    process.execPath,
    ['-e', DIAGNOSE_JS, DIST, '--flow', `dport = 5201 and dst ${B_IP}`, '--duration', `${DIAGNOSE_SECONDS}s`, '--json', '--peer', `http://${B_IP}:${PEER_PORT}`, ...extra],
    { timeoutMs: 30000 },
  );
  return JSON.parse(stdout) as Out;
}

const fmtShares = (f: { reasons: Record<string, number>; seconds: number } | undefined) =>
  f
    ? Object.entries(f.reasons)
        .filter(([, v]) => v / f.seconds >= 0.05)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${Math.round((100 * v) / f.seconds)}%`)
        .join(', ')
    : '';

d.each(['ovs', 'veth'] as Topo[])('diagnosis accuracy on the %s topology', (topo) => {
  let peer: ChildProcess | null = null;

  beforeAll(async () => {
    if (!fs.existsSync(path.join(DIST, 'diagnosis', 'command.js'))) {
      throw new Error(`${DIST}/diagnosis/command.js is missing: run npm run build (or set FLOWPATH_DIST)`);
    }
    await labUp({ topo });
    peer = await startPeer(topo);
  }, 90_000);

  afterAll(async () => {
    if (peer && peer.exitCode === null) {
      peer.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      if (peer.exitCode === null) peer.kill('SIGKILL');
    }
    await labDown();
  }, 90_000);

  it.each(CASES)('%s / %s', async (cond, cc) => {
    const flow = await startFlow(cond, { cc, seconds: FLOW_SECONDS });
    let out: Out;
    try {
      await new Promise((r) => setTimeout(r, WARMUP_MS));
      out = await diagnose(topo);
    } finally {
      await flow.done.catch(() => flow.stop());
    }
    const limiting = out.findings.filter((f) => f.status === 'limiting');
    const exp = EXPECT[cond];
    // the expected finding, only suspect, and nothing limiting at all (SUSPECT_ALLOWED)
    const suspect =
      exp !== undefined && suspectAllowed(topo, cond, cc) && out.top === null && limiting.length === 0 && out.findings.some((f) => f.hop === exp.hop && f.limit === exp.limit && f.status === 'suspect');
    const ok = exp
      ? (out.top?.hop === exp.hop && out.top?.limit === exp.limit) || (suspect ? 'suspect' : false)
      : limiting.every((f) => BASE_ALLOWED[topo].includes(f.hop));
    const sf = out.sender?.flow;
    matrix.push({
      topo,
      cond,
      cc,
      top: out.top ? `${out.top.hop} / ${out.top.limit}` : '(none limiting)',
      limiting: limiting.map((f) => `${f.hop}:${f.rule}`).join(' '),
      shares: fmtShares(sf),
      goodput: sf?.goodputBps ? `${((sf.goodputBps * 8) / 1e6).toFixed(0)} Mbit/s` : '?',
      ok,
    });
    expect(out.peer_error).toBeNull();
    expect(out.receiver?.nodeSummary).toBeDefined();
    if (exp && !suspect) {
      expect({ hop: out.top?.hop, limit: out.top?.limit }).toEqual(exp);
    } else {
      expect(limiting.filter((f) => !BASE_ALLOWED[topo].includes(f.hop))).toEqual([]);
    }
  }, 60_000);
});

afterAll(() => {
  if (matrix.length === 0) return;
  const lines = [
    '| topology | condition | cc | top finding (hop / limit) | all limiting findings | time held by (sender) | goodput | ok |',
    '|---|---|---|---|---|---|---|---|',
    ...matrix.map((r) => `| ${r.topo} | ${r.cond} | ${r.cc} | ${r.top} | ${r.limiting} | ${r.shares} | ${r.goodput} | ${r.ok === 'suspect' ? 'suspect (allowed)' : r.ok ? 'yes' : '**no**'} |`),
  ];
  console.log(`diagnosis accuracy matrix (${matrix.filter((r) => r.ok === true).length}/${matrix.length} right, ${matrix.filter((r) => r.ok === 'suspect').length} suspect where allowed):\n${lines.join('\n')}`);
});

