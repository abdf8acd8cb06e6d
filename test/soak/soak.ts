// The churn soak (run by scripts/soak inside the sender namespace; see docs/testing.md): flows opened and
// closed at --rate per second by test/soak/churn.py towards a server in the receiver namespace, while the
// real exporter (bin/flowpath, default flags) is scraped every second. Checks, after the run:
//   - retention: no per-flow series of the flows collector for a flow that was closed before the scrape
//     started (they vanish at the next scrape); no per-flow series of the diagnosis collector later than
//     the sampler's grace period (2 min) after the close;
//   - memory, from a forced full GC every 10 s (test/soak/gc-on-signal.js): the memory in use (RSS less
//     the free part of V8's heap) and the live heap (heapUsed) of the last 10% of the run less than 5%
//     above their values right after warm-up (medians of the 10% after it); RSS itself is reported, not
//     bounded (V8 keeping free heap pages is not growth of the exporter). Warm-up: the first 20% of the
//     run, and at least the diagnosis collector's retention of closed flows (2 minutes) plus one minute,
//     since the retained state fills until then; in runs under 5 minutes (CI) the first minute, and
//     both bounds are 50%, as V8 is still sizing its heap and the retention is still filling;
//   - descriptors: the exporter's fd count after warm-up stays within ±2 of its warm-up median;
//   - sampler: flowpath_diagnosis_ticks_total rises in every 5 s window (at least 25% of the nominal
//     sample rate: a stall would leave it flat);
//   - every scrape answers 200 and every collector except those that cannot work here reports success.
// Prints the RSS/fd/tick curves (one row per 10% of the run) and writes a JSON report; exit 1 on failure.
//
// Usage: node -r ./test/support/ts-register.js test/soak/soak.ts --server ADDR:PORT --duration S
//        [--rate 100] [--report FILE] [--exporter-port 9639]
import { spawn, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { ALL_COLLECTORS } from '../../src/collectors';
import { parseExposition } from '../support/exposition';

const REPO = path.join(__dirname, '../..');
const GONE_GRACE_S = 120; // the diagnosis sampler's goneGraceMs (docs/diagnosis.md: "2 minutes")
const CLOCK_SLACK_S = 0.05;

function arg(name: string, def?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (def === undefined) throw new Error(`--${name} is required`);
  return def;
}


function get(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

const rssBytes = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const fdCount = (pid: number) => fs.readdirSync(`/proc/${pid}/fd`).length;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)];
};

interface Sample {
  t: number; // seconds since the start
  start: number; // wall seconds, scrape start
  end: number;
  rss: number;
  fds: number;
  ticks: number;
  /** the exporter's own nodejs_heap_size_used_bytes and flowpath_diagnosis_sampled_flows */
  heapUsed: number;
  sampled: number;
  flowSeries: number;
  diagFlows: number;
  failedCollectors: string[];
}

/** process.memoryUsage() of the exporter right after a forced full GC (test/soak/gc-on-signal.js). */
interface GcSample {
  t: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  rss: number;
}
const GC_EVERY_S = 10;

interface FlowLog {
  lport: number;
  open: number;
  close: number | null;
}

async function main(): Promise<number> {
  const [serverIp, serverPort] = arg('server').split(':');
  const duration = Number(arg('duration', '600'));
  const rate = arg('rate', '100');
  const reportFile = arg('report', path.join(os.tmpdir(), `flowpath-soak-${process.pid}.json`));
  const port = Number(arg('exporter-port', '9639'));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-soak-'));
  const flowLog = path.join(work, 'flows.jsonl');
  const children: ChildProcess[] = [];
  const failures: string[] = [];
  const samples: Sample[] = [];
  const flowFamilies = new Set(ALL_COLLECTORS.find((d) => d.name === 'flows')!.metrics.map((m) => m.name));
  const diagFamilies = new Set(ALL_COLLECTORS.find((d) => d.name === 'diagnosis')!.metrics.map((m) => m.name));
  // series seen per flow: [family kind, local_port, scrape start, scrape end]
  const seen: Array<{ kind: 'flows' | 'diagnosis'; lport: number; start: number; end: number; family: string }> = [];
  // memory right after a forced full GC, every GC_EVERY_S seconds
  const afterGc: GcSample[] = [];
  let t0 = Date.now() / 1000;
  try {
    // The preload answers SIGUSR2 with a full GC and the memory right after it (test/soak/gc-on-signal.js).
    const nodeOptions = `${process.env.NODE_OPTIONS ?? ''} -r ${path.join(__dirname, 'gc-on-signal.js')}`.trim();
    const exporter = spawn(path.join(REPO, 'bin/flowpath'), [`--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NODE_OPTIONS: nodeOptions } });
    children.push(exporter);
    let stderr = '';
    let partial = '';
    exporter.stderr!.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-20000);
      const lines = (partial + c.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        const m = /^flowpath-soak-gc (\{.*\})$/.exec(l);
        if (m) afterGc.push({ t: Date.now() / 1000 - t0, ...(JSON.parse(m[1]) as Omit<GcSample, 't'>) });
      }
    });
    for (let i = 0; ; i++) {
      try {
        if ((await get(`http://127.0.0.1:${port}/metrics`, 10_000)).status === 200) break;
      } catch {
        /* not listening yet */
      }
      if (i > 100 || exporter.exitCode !== null) throw new Error(`exporter did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const client = spawn('python3', [path.join(__dirname, 'churn.py'), 'client', serverIp, serverPort, '--rate', rate, '--duration', String(duration), '--log', flowLog], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(client);
    // The load generator's status: its last complete non-empty stdout line (a chunk may end inside a
    // line, or hold only the newline of the line before).
    let lastStatus = '';
    let outPartial = '';
    const takeLines = (text: string) => {
      const lines = (outPartial + text).split('\n');
      outPartial = lines.pop() ?? '';
      for (const l of lines) if (l.trim() !== '') lastStatus = l.trim();
    };
    client.stdout!.on('data', (c: Buffer) => takeLines(c.toString()));
    const clientDone = new Promise<number>((r) =>
      client.on('close', (code) => {
        takeLines('\n');
        r(code ?? 1);
      }),
    );

    t0 = Date.now() / 1000;
    let next = t0;
    while (Date.now() / 1000 - t0 < duration) {
      next += 1;
      const start = Date.now() / 1000;
      let res: { status: number; body: string };
      try {
        res = await get(`http://127.0.0.1:${port}/metrics`, 10_000);
      } catch (e) {
        failures.push(`scrape at +${(start - t0).toFixed(1)} s: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, Math.max(0, next * 1000 - Date.now())));
        continue;
      }
      const end = Date.now() / 1000;
      if (res.status !== 200) failures.push(`scrape at +${(start - t0).toFixed(1)} s: HTTP ${res.status}`);
      const series = parseExposition(res.body);
      const flowKeys = new Set<string>();
      const diagKeys = new Set<string>();
      for (const s of series) {
        const kind = flowFamilies.has(s.name) ? 'flows' : diagFamilies.has(s.name) ? 'diagnosis' : null;
        if (!kind || s.labels.local_port === undefined || s.labels.peer_ip !== serverIp) continue;
        const key = `${kind}|${s.name}|${s.labels.local_port}`;
        (kind === 'flows' ? flowKeys : diagKeys).add(key);
      }
      for (const k of [...flowKeys, ...diagKeys]) {
        const [kind, family, lport] = k.split('|');
        seen.push({ kind: kind as 'flows' | 'diagnosis', family, lport: Number(lport), start, end });
      }
      const ticks = series.find((s) => s.name === 'flowpath_diagnosis_ticks_total')?.value ?? NaN;
      const failedCollectors = series.filter((s) => s.name === 'flowpath_scrape_collector_success' && s.value !== 1).map((s) => s.labels.collector);
      samples.push({
        t: start - t0,
        start,
        end,
        rss: rssBytes(exporter.pid!),
        fds: fdCount(exporter.pid!),
        ticks,
        heapUsed: series.find((s) => s.name === 'nodejs_heap_size_used_bytes')?.value ?? NaN,
        sampled: series.find((s) => s.name === 'flowpath_diagnosis_sampled_flows')?.value ?? NaN,
        flowSeries: new Set([...flowKeys].map((k) => k.split('|')[2])).size,
        diagFlows: new Set([...diagKeys].map((k) => k.split('|')[2])).size,
        failedCollectors,
      });
      // between two scrapes, so the GC pause does not fall into a measured scrape
      if (samples.length % GC_EVERY_S === 0) exporter.kill('SIGUSR2');
      await new Promise((r) => setTimeout(r, Math.max(0, next * 1000 - Date.now())));
    }
    const clientCode = await clientDone;
    if (clientCode !== 0) failures.push(`load generator exited with ${clientCode}`);
    let status: { opened?: number; closed?: number; failed?: number; done?: boolean } = {};
    try {
      status = JSON.parse(lastStatus) as typeof status;
    } catch {
      /* reported below */
    }
    if (status.done !== true) failures.push(`no final status line from the load generator (last stdout line: ${JSON.stringify(lastStatus.slice(0, 200))})`);

    // ---- checks
    const flows: FlowLog[] = fs.readFileSync(flowLog, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as FlowLog);
    const byPort = new Map<number, FlowLog[]>();
    for (const f of flows) byPort.set(f.lport, [...(byPort.get(f.lport) ?? []), f]);
    let retentionViolations = 0;
    let unknownFlows = 0;
    for (const s of seen) {
      const grace = s.kind === 'flows' ? CLOCK_SLACK_S : GONE_GRACE_S + 2;
      const candidates = byPort.get(s.lport) ?? [];
      if (candidates.length === 0) {
        unknownFlows++;
        continue;
      }
      // Alive at the scrape: opened before it ended, and closed (if at all) after its start minus the grace.
      const ok = candidates.some((f) => f.open <= s.end + CLOCK_SLACK_S && (f.close === null || f.close >= s.start - grace));
      if (!ok) {
        retentionViolations++;
        if (retentionViolations <= 5) {
          const last = Math.max(...candidates.map((f) => f.close ?? Infinity));
          failures.push(`${s.family} for local port ${s.lport} in the scrape at +${(s.start - t0).toFixed(1)} s, ${(s.start - last).toFixed(1)} s after the flow closed (allowed: ${grace} s)`);
        }
      }
    }
    if (retentionViolations > 5) failures.push(`... ${retentionViolations} retention violations in all`);
    if (unknownFlows > 0) failures.push(`${unknownFlows} per-flow series towards ${serverIp} with a local port the load generator never used`);

    // Warm-up: until the retained per-flow state is full. The diagnosis collector keeps a closed flow's
    // series (and its samples) for GONE_GRACE_S; before that much time has passed the live heap grows by
    // design (measured: heap after a full GC rises for the first ~3 minutes, then stays level), so a long
    // run's warm-up ends one minute after the grace period at the earliest. Short runs keep their minute.
    const warm = duration >= 300 ? Math.max(duration * 0.2, GONE_GRACE_S + 60) : Math.max(duration * 0.2, Math.min(60, duration * 0.5));
    const after = samples.filter((s) => s.t >= warm && s.t < warm + duration * 0.1);
    const last = samples.filter((s) => s.t >= duration * 0.9);
    const rssWarm = median(after.map((s) => s.rss));
    const rssEnd = median(last.map((s) => s.rss));
    const rssGrowth = rssEnd / rssWarm - 1;
    // V8 sizes its heap over the first minutes (RSS rises while the live heap does not): the 5% bound is
    // checked on runs of 5 minutes or more (npm run soak: 10); a shorter run (CI: 2 minutes) only catches
    // gross growth.
    const rssBound = duration >= 300 ? 0.05 : 0.5;
    // RSS itself is reported, not bounded: in 10-minute runs it grew 4–5% after warm-up while the live
    // heap, the Buffers and everything outside the V8 heap stayed level; all of it was V8 keeping more
    // free heap pages (heapTotal - heapUsed after a full GC: +4–5 MB). The bound is on what the exporter
    // uses: RSS after a full GC minus that free V8 heap space (checked below with the GC samples).
    // Where the memory is, from the forced-GC samples: live JS heap, V8's heap reservation, memory outside
    // the V8 heap that JS objects own (Buffers), and the rest of RSS (code, stacks, malloc arenas).
    const gcAt = (from: number, to: number) => afterGc.filter((g) => g.t >= from && g.t < to);
    const mem = (g: GcSample[]) => ({
      heapUsedMb: median(g.map((x) => x.heapUsed)) / 1e6,
      heapTotalMb: median(g.map((x) => x.heapTotal)) / 1e6,
      externalMb: median(g.map((x) => x.external)) / 1e6,
      otherMb: median(g.map((x) => x.rss - x.heapTotal - x.external)) / 1e6,
      rssMb: median(g.map((x) => x.rss)) / 1e6,
      inUseMb: median(g.map((x) => x.rss - (x.heapTotal - x.heapUsed))) / 1e6,
      n: g.length,
    });
    const memWarm = mem(gcAt(warm, warm + Math.max(duration * 0.1, GC_EVERY_S * 3)));
    const memEnd = mem(gcAt(duration * 0.9 - Math.max(0, GC_EVERY_S * 3 - duration * 0.1), Infinity));
    // The live heap (after a forced full GC) is what a leak grows: same bound as RSS, same windows.
    const heapGrowth = memEnd.heapUsedMb / memWarm.heapUsedMb - 1;
    const inUseGrowth = memEnd.inUseMb / memWarm.inUseMb - 1;
    if (!(inUseGrowth < rssBound)) failures.push(`memory in use (RSS after a full GC less free V8 heap) grew ${(inUseGrowth * 100).toFixed(1)}% after warm-up (${memWarm.inUseMb.toFixed(1)} MB -> ${memEnd.inUseMb.toFixed(1)} MB), bound ${rssBound * 100}%`);
    if (!(heapGrowth < rssBound)) failures.push(`heap after a full GC grew ${(heapGrowth * 100).toFixed(1)}% after warm-up (${memWarm.heapUsedMb.toFixed(1)} MB -> ${memEnd.heapUsedMb.toFixed(1)} MB), bound ${rssBound * 100}%`);
    const fdWarm = median(after.map((s) => s.fds));
    const fdAfter = samples.filter((s) => s.t >= warm).map((s) => s.fds);
    const fdMin = Math.min(...fdAfter);
    const fdMax = Math.max(...fdAfter);
    if (fdMax > fdWarm + 2 || fdMin < fdWarm - 2) failures.push(`fd count not flat after warm-up: median ${fdWarm}, range ${fdMin}..${fdMax}`);

    const rateHz = 20;
    let stalls = 0;
    for (let i = 0, j = 0; i < samples.length; i++) {
      while (j < samples.length && samples[j].start - samples[i].start < 5) j++;
      if (j >= samples.length) break;
      const dt = samples[j].start - samples[i].start;
      const dticks = samples[j].ticks - samples[i].ticks;
      if (!(dticks >= 0.25 * rateHz * dt)) {
        stalls++;
        if (stalls <= 3) failures.push(`sampler stalled: ${dticks} ticks in ${dt.toFixed(1)} s from +${samples[i].t.toFixed(1)} s`);
      }
    }
    const tickRate = (samples[samples.length - 1].ticks - samples[0].ticks) / (samples[samples.length - 1].start - samples[0].start);

    const failedScrapes = samples.filter((s) => s.failedCollectors.length > 0);
    const failedNames = new Map<string, number>();
    for (const s of failedScrapes) for (const n of s.failedCollectors) failedNames.set(n, (failedNames.get(n) ?? 0) + 1);
    // ovs: no ovs-vswitchd in the namespace pair; every other collector must succeed in every scrape.
    for (const [n, count] of failedNames) if (n !== 'ovs') failures.push(`collector ${n} failed in ${count} of ${samples.length} scrapes`);
    if (samples.length < duration * 0.8) failures.push(`only ${samples.length} scrapes in ${duration} s`);
    if ((status.opened ?? 0) < Number(rate) * duration * 0.8) failures.push(`the load generator opened only ${status.opened} flows (${Number(rate) * duration} planned)`);
    if (!samples.some((s) => s.diagFlows > 0)) failures.push('the diagnosis sampler never exported a flow of the churn');

    // ---- curves
    const rows: string[] = [];
    const step = duration / 10;
    for (let k = 0; k < 10; k++) {
      const w = samples.filter((s) => s.t >= k * step && s.t < (k + 1) * step);
      if (w.length < 2) continue;
      const tr = (w[w.length - 1].ticks - w[0].ticks) / (w[w.length - 1].start - w[0].start);
      rows.push(
        `| ${Math.round(k * step)}-${Math.round((k + 1) * step)} s | ${(median(w.map((s) => s.rss)) / 1e6).toFixed(1)} | ${(Math.max(...w.map((s) => s.rss)) / 1e6).toFixed(1)} | ${median(w.map((s) => s.fds))} | ${Math.min(...w.map((s) => s.fds))}..${Math.max(...w.map((s) => s.fds))} | ${tr.toFixed(1)} | ${(Math.min(...w.map((s) => s.heapUsed)) / 1e6).toFixed(1)} | ${(median(gcAt(k * step, (k + 1) * step).map((g) => g.heapUsed)) / 1e6).toFixed(1)} | ${(median(gcAt(k * step, (k + 1) * step).map((g) => g.heapTotal)) / 1e6).toFixed(1)} | ${(median(gcAt(k * step, (k + 1) * step).map((g) => g.rss - g.heapTotal - g.external)) / 1e6).toFixed(1)} | ${median(w.map((s) => s.flowSeries))} | ${median(w.map((s) => s.sampled))} | ${Math.max(...w.map((s) => s.diagFlows))} |`,
      );
    }
    const table = ['| window | RSS median MB | RSS max MB | fds median | fds range | ticks/s | heap used min MB | heap after GC MB | V8 heap total MB | RSS outside V8 heap and Buffers MB | flows exported | flows sampled | diagnosis flows (max) |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|', ...rows].join('\n');
    const report = {
      duration,
      rate: Number(rate),
      scrapes: samples.length,
      flows: { opened: status.opened, closed: status.closed, failed: status.failed },
      rss: { warmMb: rssWarm / 1e6, endMb: rssEnd / 1e6, growth: rssGrowth },
      warmUpSeconds: warm,
      afterGc: { warm: memWarm, end: memEnd, heapUsedGrowth: heapGrowth, inUseGrowth },
      fds: { warm: fdWarm, min: fdMin, max: fdMax },
      ticksPerSecond: tickRate,
      retentionViolations,
      failedCollectors: Object.fromEntries(failedNames),
      failures,
      table,
      gcSamples: afterGc,
      samples: samples.map(({ t, rss, fds, ticks, heapUsed, sampled, flowSeries, diagFlows }) => ({ t, rss, fds, ticks, heapUsed, sampled, flowSeries, diagFlows })),
    };
    fs.writeFileSync(reportFile, JSON.stringify(report, null, 1));
    process.stdout.write(`${table}\n\nflows opened ${status.opened}, closed ${status.closed}, failed ${status.failed}; ${samples.length} scrapes; ` +
      `RSS ${(rssWarm / 1e6).toFixed(1)} -> ${(rssEnd / 1e6).toFixed(1)} MB (${(rssGrowth * 100).toFixed(2)}%); ` +
      `after a full GC: heap used ${memWarm.heapUsedMb.toFixed(1)} -> ${memEnd.heapUsedMb.toFixed(1)} MB, V8 heap ${memWarm.heapTotalMb.toFixed(1)} -> ${memEnd.heapTotalMb.toFixed(1)} MB, ` +
      `external ${memWarm.externalMb.toFixed(1)} -> ${memEnd.externalMb.toFixed(1)} MB, rest of RSS ${memWarm.otherMb.toFixed(1)} -> ${memEnd.otherMb.toFixed(1)} MB, ` +
      `in use ${memWarm.inUseMb.toFixed(1)} -> ${memEnd.inUseMb.toFixed(1)} MB (${(inUseGrowth * 100).toFixed(2)}%); fds ${fdMin}..${fdMax}; ` +
      `${tickRate.toFixed(1)} ticks/s; report ${reportFile}\n`);
    for (const f of failures) process.stdout.write(`FAIL ${f}\n`);
    return failures.length === 0 ? 0 : 1;
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`soak: ${(e as Error).stack ?? e}\n`);
    process.exit(2);
  },
);
