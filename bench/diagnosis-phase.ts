// One process of the "diagnosis" bench (bench/diagnosis.ts starts one per kind, with the exporter's V8
// flags, and measures them side by side):
//   baseline  Node with the exporter's flags doing nothing (but answering the bench);
//   idle      the sampler as the exporter runs it on a node with no flow to sample;
//   wakeups   an empty timer at the sample rate (what the wake-ups alone cost);
//   sampling  the sampler polling the flows of --port (watched), node evidence every second.
// It prints one JSON line when it is ready, then answers each IPC message "sample" with its CPU time so
// far (process.cpuUsage, µs) and its main thread's, its clock, and for the samplers their counters and the wall time of each
// sampling round since the previous "sample"; "stop" closes the sampler and ends the process.
//
// Run by bench/diagnosis.ts: node <exporter flags> dist/bench/diagnosis-phase.js KIND [--port P] [--rate HZ]

import { readFileSync } from 'fs';
import { LiveNodeSource, SockDiagFlowSource } from '../src/diagnosis/adapters';
import { DEFAULT_SAMPLER_OPTIONS, Sampler, SamplerStats } from '../src/diagnosis/sampler';

export type PhaseKind = 'baseline' | 'idle' | 'wakeups' | 'sampling';
export const PHASE_KINDS: readonly PhaseKind[] = ['baseline', 'idle', 'wakeups', 'sampling'];

/** What a phase process answers to "sample". */
export interface PhaseSample {
  kind: PhaseKind;
  /** user + system CPU of the whole process (every thread), µs. */
  cpuMicros: number;
  /** CPU of the main thread alone (/proc/thread-self/schedstat), µs; the rest is V8's and libuv's helper threads. */
  mainThreadMicros: number;
  /** performance.now() of the process, ms. */
  wallMs: number;
  /** The sampler's counters (idle, sampling). */
  stats?: SamplerStats;
  /** Flows the sampler polls. */
  flows?: number;
  /** Wall time of each sampling round since the previous sample, ms (sampling). */
  roundMs?: number[];
}

/** The number after `--name` in `argv`, or `def`. */
export function arg(argv: readonly string[], name: string, def: number): number {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : def;
}

async function main(argv: readonly string[]): Promise<void> {
  const kind = argv[0] as PhaseKind;
  if (!PHASE_KINDS.includes(kind)) throw new Error(`unknown phase ${argv[0]}; known: ${PHASE_KINDS.join(', ')}`);
  if (!process.send) throw new Error('diagnosis-phase runs under bench/diagnosis.ts (no IPC channel)');
  const rateHz = arg(argv, 'rate', 20);
  const port = arg(argv, 'port', 0);
  let sampler: Sampler | undefined;
  let timer: NodeJS.Timeout | undefined;
  let roundMs: number[] = [];
  if (kind === 'wakeups') timer = setInterval(() => undefined, 1000 / rateHz);
  if (kind === 'idle' || kind === 'sampling') {
    // idle: discovery finds nothing (a port nobody uses); sampling: the flows of --port, all watched.
    const sel = kind === 'idle' ? 'sport = 1 and dport = 1' : `dport = ${port}`;
    const flows = new SockDiagFlowSource({ watch: kind === 'idle' ? '' : sel, candidates: `state established and ${sel}` });
    const node = new LiveNodeSource({ procfs: '/proc', sysfs: '/sys', ovs: null, ovsIntervalMs: 1000 });
    const s = new Sampler({ ...DEFAULT_SAMPLER_OPTIONS, rateHz, ...(kind === 'sampling' ? { top: 0, maxFlows: 64 } : {}) }, flows, node);
    sampler = s;
    if (kind === 'sampling') {
      await s.discover(); // the flows are there from the start, as on a node that has them
      // Each round's wall time, without adding a promise to a round that finishes within its call.
      const tick = s.tick.bind(s);
      s.tick = () => {
        const t = performance.now();
        const done = () => void roundMs.push(performance.now() - t);
        const p = tick();
        if (p) return p.finally(done);
        done();
        return undefined;
      };
    }
    s.start();
  }
  process.on('message', (m: unknown) => {
    if (m === 'sample') {
      const u = process.cpuUsage();
      const main = Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1000;
      const out: PhaseSample = { kind, cpuMicros: u.user + u.system, mainThreadMicros: main, wallMs: performance.now() };
      if (sampler) {
        out.stats = sampler.stats;
        out.flows = sampler.flows().length;
        out.roundMs = roundMs;
        roundMs = [];
      }
      process.send!(out);
    } else if (m === 'stop') {
      if (timer) clearInterval(timer);
      sampler?.close();
      process.disconnect();
    }
  });
  process.send({ ready: kind });
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
