// The exporter's own process and Node.js runtime metrics, under the names Prometheus client libraries
// use (process_* as in client_golang's process collector, nodejs_* as in prom-client), rendered by the
// same Emitter as everything else. Cheap on purpose: reads of /proc/self/stat and /proc/self/limits, a
// readdir of /proc/self/fd and in-process counters, ~60 µs per scrape on the test VM (prom-client's
// default set, used before, cost ~600 µs: an event-loop lag probe, a listing of active resources and
// asynchronous /proc reads). No event-loop lag gauge: Node 20's monitorEventLoopDelay did not show a
// 50 ms block of the loop here (it reported the 10 ms timer interval), and a lag gauge that misses a
// blocked loop is worse than none.
//
// Always /proc/self of the live kernel, not --path.procfs: this is the exporter's own process.

import { readdirSync } from 'fs';
import { PerformanceObserver } from 'perf_hooks';
import { getHeapStatistics } from 'v8';
import { Emitter, processMetric } from './core/metrics';
import { readWhole } from './sources/procfs/read';

const cpu = processMetric('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.');
const start = processMetric('process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.');
const rss = processMetric('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.');
const vsize = processMetric('process_virtual_memory_bytes', 'gauge', 'Virtual memory size in bytes.');
const openFds = processMetric('process_open_fds', 'gauge', 'Number of open file descriptors.');
const maxFds = processMetric('process_max_fds', 'gauge', 'Maximum number of open file descriptors (soft limit).');
const heapTotal = processMetric('nodejs_heap_size_total_bytes', 'gauge', 'V8 heap size reserved, in bytes.');
const heapUsed = processMetric('nodejs_heap_size_used_bytes', 'gauge', 'V8 heap size in use, in bytes.');
const external = processMetric('nodejs_external_memory_bytes', 'gauge', 'Memory of C++ objects bound to JavaScript objects (Buffers), in bytes.');
const gcRuns = processMetric('nodejs_gc_runs_total', 'counter', 'Garbage collections by kind (major, minor, incremental, weakcb).', ['kind']);
const gcSeconds = processMetric('nodejs_gc_duration_seconds_total', 'counter', 'Time spent in garbage collection by kind, in seconds.', ['kind']);

export const SELF_METRICS = [cpu, start, rss, vsize, openFds, maxFds, heapTotal, heapUsed, external, gcRuns, gcSeconds];

/** /proc/self/stat → vsize (field 23, bytes). The comm field may hold spaces and parentheses. */
export function parseVsize(text: string): number | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const f = text.slice(close + 2).split(' '); // f[0] is field 3 (state)
  const v = f[20] === undefined || f[20] === '' ? NaN : Number(f[20]);
  return Number.isFinite(v) ? v : undefined;
}

/** /proc/self/limits → soft "Max open files" ("unlimited" → undefined). */
export function parseMaxFds(text: string): number | undefined {
  const m = /^Max open files\s+(\d+)/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

const GC_KINDS: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };

export class SelfMetrics {
  private readonly startTime = Math.round((Date.now() - performance.now()) / 1000);
  private readonly gc = new Map<string, { runs: number; seconds: number }>();
  private readonly observer: PerformanceObserver;

  constructor() {
    this.observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = GC_KINDS[(e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0] ?? 'other';
        const g = this.gc.get(kind) ?? { runs: 0, seconds: 0 };
        g.runs++;
        g.seconds += e.duration / 1000;
        this.gc.set(kind, g);
      }
    });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  emit(out: Emitter): void {
    const u = process.cpuUsage();
    out.add(cpu, [], (u.user + u.system) / 1e6);
    out.add(start, [], this.startTime);
    out.add(rss, [], process.memoryUsage.rss()); // libuv: /proc/self/stat rss × page size
    try {
      out.add(vsize, [], parseVsize(readWhole('/proc/self/stat')));
    } catch {
      /* no /proc: leave it out */
    }
    try {
      out.add(openFds, [], readdirSync('/proc/self/fd').length);
    } catch {
      /* no /proc: leave it out */
    }
    try {
      out.add(maxFds, [], parseMaxFds(readWhole('/proc/self/limits')));
    } catch {
      /* idem */
    }
    const h = getHeapStatistics();
    out.add(heapTotal, [], h.total_heap_size);
    out.add(heapUsed, [], h.used_heap_size);
    out.add(external, [], h.external_memory);
    for (const [kind, g] of [...this.gc].sort()) {
      out.add(gcRuns, [kind], g.runs);
      out.add(gcSeconds, [kind], g.seconds);
    }
  }

  close(): void {
    this.observer.disconnect();
  }
}
