// Small helpers shared by the bench sections (bench/run.ts calls them by name): timing, medians and
// ratios, interleaved measurement, child processes that print a JSON line when ready, HTTP scrapes, RSS,
// markdown tables and the results file.

import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';

export type Log = (line: string) => void;

/** A bench section: measures something and returns a JSON-serialisable result (+ a markdown table). */
export interface BenchSection {
  name: string;
  description: string;
  run(log: Log): Promise<{ result: unknown; markdown?: string }>;
}

export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}
export const median = (xs: readonly number[]): number => quantile(xs, 0.5);
export const ratio = (a: number, b: number): number => a / b;

/**
 * Run every method `reps` times, interleaved (the order rotates each round so no method always follows
 * the same one), after `warmup` unrecorded rounds. Returns the durations in ms per method: the wall
 * time of the call, or the number the method resolves with (a duration measured where it ran).
 */
export async function interleave(methods: Record<string, () => Promise<unknown>>, reps: number, warmup: number): Promise<Record<string, number[]>> {
  const names = Object.keys(methods);
  const out: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < warmup + reps; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length];
      const t0 = nowMs();
      const r = await methods[name]();
      const dt = typeof r === 'number' ? r : nowMs() - t0;
      if (round >= warmup) out[name].push(dt);
    }
  }
  return out;
}

export function markdownTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export const fmtMs = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
export const fmtRatio = (x: number) => `${x.toFixed(2)}×`;

/** Spawn a child that prints one JSON line when it is ready. stdin is a pipe: closing it ends the child. */
export function spawnReady<T>(cmd: string, args: string[], timeoutMs = 120_000): Promise<{ child: ChildProcess; info: T; stop: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: not ready after ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    const stop = () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null || child.signalCode !== null) return r();
        child.once('exit', () => r());
        child.stdin?.end();
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      });
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0 && out.length > 0) {
        clearTimeout(timer);
        try {
          resolve({ child, info: JSON.parse(out.slice(0, nl)) as T, stop });
        } catch (e) {
          reject(e as Error);
        }
        out = out.slice(nl + 1);
      }
    });
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited with ${code} before it was ready: ${err}`));
    });
  });
}

/** A child that answers one JSON line per command line (after a first "ready" line). */
export async function spawnWorker(cmd: string, args: string[]): Promise<{ ask: (line: string) => Promise<Record<string, unknown>>; stop: () => Promise<void> }> {
  const w = await spawnReady<{ ready: boolean }>(cmd, args);
  const waiting: Array<(v: Record<string, unknown>) => void> = [];
  let buf = '';
  w.child.stdout!.on('data', (c: Buffer) => {
    buf += c.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      waiting.shift()?.(JSON.parse(line) as Record<string, unknown>);
    }
  });
  return {
    ask: (line) =>
      new Promise((resolve, reject) => {
        waiting.push((v) => (typeof v.error === 'string' ? reject(new Error(v.error)) : resolve(v)));
        w.child.stdin!.write(line + '\n');
      }),
    stop: w.stop,
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** GET a URL over a kept-alive connection; resolves with status, body size and (keepBody) the body. */
export function httpGet(url: string, timeoutMs = 30_000, keepBody = false): Promise<{ status: number; bytes: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (keepBody) chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, body: keepBody ? Buffer.concat(chunks).toString() : '' }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout fetching ${url}`)));
    req.on('error', reject);
  });
}

export async function waitForHttp(url: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await httpGet(url)).status === 200) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > end) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** VmRSS and VmHWM of a process, in MB. */
export function rssMb(pid: number): { rss: number; hwm: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

export const RESULTS_DIR = path.join(__dirname, '../../bench/results');

/** Merge this run's sections into bench/results/latest.json (sections not run keep their last result). */
export function writeResults(sections: Record<string, unknown>, file = path.join(RESULTS_DIR, 'latest.json')): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let prev: { sections?: Record<string, unknown> } = {};
  try {
    prev = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    /* first run */
  }
  const out = { updated: new Date().toISOString(), sections: { ...(prev.sections ?? {}), ...sections } };
  fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  return file;
}
