// "diagnosis" bench: what the diagnosis sampler costs at --diagnosis.sample-rate (default 20 Hz).
//
// A child process runs N loopback TCP flows (127.0.0.1 only; each writes 64 KiB every 10 ms, ~50 Mbit/s,
// so the flows are alive and changing without saturating a CPU). This process then runs the sampler with
// the live sources (exact sock_diag lookups of the N flows in one datagram per round, node evidence every
// second, no OVS) for D seconds, and reports:
//   - CPU of this process while sampling minus its CPU while idle for the same time (process.cpuUsage),
//     as a share of one core;
//   - wall time per sampling round (median, p99) from the sampler's own accounting;
//   - rounds, lookups and overruns.
//
// Run: npm run build && node dist/bench/diagnosis.js [--flows N] [--seconds D] [--rate HZ]

import { ChildProcess, spawn } from 'child_process';
import { LiveNodeSource, SockDiagFlowSource } from '../src/diagnosis/adapters';
import { DEFAULT_SAMPLER_OPTIONS, Sampler } from '../src/diagnosis/sampler';

export interface DiagnosisBenchOptions {
  flows?: number;
  seconds?: number;
  rateHz?: number;
  log?: (line: string) => void;
}

export interface DiagnosisBenchResult {
  flows: number;
  rateHz: number;
  seconds: number;
  ticks: number;
  lookups: number;
  overruns: number;
  /** CPU of the sampling process above its idle baseline, share of one core. */
  cpuShare: number;
  idleCpuShare: number;
  tickWallMs: { median: number; p99: number };
  samplingShare: number;
}

const FLOWS_JS = `
const net = require('net');
const n = Number(process.argv[1]);
const srv = net.createServer((s) => { s.on('data', () => {}); s.on('error', () => {}); });
srv.listen(0, '127.0.0.1', () => {
  const port = srv.address().port;
  const buf = Buffer.alloc(65536);
  let up = 0;
  for (let i = 0; i < n; i++) {
    const c = net.connect(port, '127.0.0.1', () => {
      setInterval(() => c.write(buf), 10);
      if (++up === n) console.log(JSON.stringify({ port }));
    });
    c.on('error', () => {});
  }
});
`;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

export async function runDiagnosisBench(o: DiagnosisBenchOptions = {}): Promise<DiagnosisBenchResult> {
  const nFlows = o.flows ?? 1;
  const seconds = o.seconds ?? 10;
  const rateHz = o.rateHz ?? 20;
  const log = o.log ?? ((l: string) => console.log(l));
  const child: ChildProcess = spawn(process.execPath, ['-e', FLOWS_JS, String(nFlows)], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout?.setEncoding('utf8').on('data', (s: string) => {
        out += s;
        const m = /\{"port":(\d+)\}/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.on('exit', (c) => reject(new Error(`flow generator exited (${c})`)));
    });
    const flows = new SockDiagFlowSource({ watch: `sport = ${port} or dport = ${port}` });
    const node = new LiveNodeSource({ procfs: '/proc', sysfs: '/sys', ovs: null, ovsIntervalMs: 1000 });
    const sampler = new Sampler(
      { ...DEFAULT_SAMPLER_OPTIONS, rateHz, top: 0, maxFlows: 4 * nFlows + 8, discoverIntervalMs: 0, nodeIntervalMs: 1000 },
      flows,
      node,
    );
    // Pin the client ends (the server ends are the same flows seen from the other side).
    for (const d of await flows.discover()) if (d.watched && d.key.peerPort === port) sampler.pin(d.key, seconds + 60);

    // Baseline: this process idle for the same time.
    const i0 = process.cpuUsage();
    await sleep(seconds * 1000);
    const idle = process.cpuUsage(i0);
    const idleShare = (idle.user + idle.system) / 1e6 / seconds;

    const tickTimes: number[] = [];
    const origTick = sampler.tick.bind(sampler);
    sampler.tick = async () => {
      const t = process.hrtime.bigint();
      await origTick();
      tickTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
    };
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    sampler.start();
    await sleep(seconds * 1000);
    await sampler.stop();
    const used = process.cpuUsage(c0);
    const wall = (performance.now() - w0) / 1000;
    sampler.close();
    const st = sampler.stats;
    const res: DiagnosisBenchResult = {
      flows: sampler.flows().length,
      rateHz,
      seconds: wall,
      ticks: st.ticks,
      lookups: st.lookups,
      overruns: st.overruns,
      cpuShare: (used.user + used.system) / 1e6 / wall - idleShare,
      idleCpuShare: idleShare,
      tickWallMs: { median: quantile(tickTimes, 0.5), p99: quantile(tickTimes, 0.99) },
      samplingShare: st.samplingSeconds / wall,
    };
    log(
      `diagnosis sampler: ${res.flows} flow(s) at ${rateHz} Hz for ${wall.toFixed(1)} s: ${res.ticks} rounds, ${res.lookups} lookups, ${res.overruns} overruns; ` +
        `CPU ${(100 * res.cpuShare).toFixed(2)}% of a core above idle (${(100 * idleShare).toFixed(2)}%); ` +
        `round wall time median ${res.tickWallMs.median.toFixed(3)} ms, p99 ${res.tickWallMs.p99.toFixed(3)} ms`,
    );
    return res;
  } finally {
    child.kill('SIGTERM');
  }
}

if (require.main === module) {
  const arg = (name: string, def: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : def;
  };
  runDiagnosisBench({ flows: arg('flows', 1), seconds: arg('seconds', 10), rateHz: arg('rate', 20) }).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
