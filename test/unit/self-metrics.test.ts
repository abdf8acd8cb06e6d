// The exporter's own process_* / nodejs_* families (src/self-metrics.ts): parsers on edge cases, and the
// values against an independent read of this process's /proc files.
import * as fs from 'fs';
import { Emitter } from '../../src/core/metrics';
import { SELF_METRICS, SelfMetrics, parseMaxFds, parseVsize } from '../../src/self-metrics';
import { samples as values } from '../support/ethtool-text';

describe('self metrics', () => {
  it('parses vsize after a comm holding spaces and parentheses, and the soft fd limit', () => {
    const stat = '4242 (a) b (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 11 0 12345 987654321 2500 18446744073709551615';
    expect(parseVsize(stat)).toBe(987654321);
    expect(parseVsize('4242 (x')).toBeUndefined();
    expect(parseVsize('4242 (x) S 1')).toBeUndefined();
    expect(parseMaxFds('Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n')).toBe(1024);
    expect(parseMaxFds('Max open files            unlimited            unlimited            files\n')).toBeUndefined();
  });

  it('reports this process: CPU grows, memory and fds match /proc/self, GC runs are counted', async () => {
    const self = new SelfMetrics();
    try {
      const first = new Emitter();
      self.emit(first);
      const a = values(first.render());
      // burn some CPU and make garbage
      let junk: unknown[] = [];
      const end = Date.now() + 150;
      while (Date.now() < end) junk.push({ x: Math.random() });
      junk = [];
      await new Promise((r) => setTimeout(r, 20)); // let the gc observer deliver
      const second = new Emitter();
      self.emit(second);
      const text = second.render();
      const b = values(text);
      expect(b.get('process_cpu_seconds_total')! - a.get('process_cpu_seconds_total')!).toBeGreaterThan(0.05);
      const status = fs.readFileSync('/proc/self/status', 'utf8');
      const vmRss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) * 1024;
      const vmSize = Number(/^VmSize:\s+(\d+) kB/m.exec(status)![1]) * 1024;
      expect(Math.abs(b.get('process_resident_memory_bytes')! - vmRss) / vmRss).toBeLessThan(0.2);
      expect(Math.abs(b.get('process_virtual_memory_bytes')! - vmSize) / vmSize).toBeLessThan(0.2);
      const fds = fs.readdirSync('/proc/self/fd').length;
      expect(Math.abs(b.get('process_open_fds')! - fds)).toBeLessThanOrEqual(2);
      const soft = Number(/^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))![1]);
      expect(b.get('process_max_fds')).toBe(soft);
      const started = b.get('process_start_time_seconds')!;
      expect(Math.abs(started - (Date.now() - process.uptime() * 1000) / 1000)).toBeLessThan(2);
      expect(b.get('nodejs_heap_size_used_bytes')!).toBeLessThanOrEqual(b.get('nodejs_heap_size_total_bytes')!);
      const gcRuns = [...b].filter(([k]) => k.startsWith('nodejs_gc_runs_total{')).reduce((s, [, v]) => s + v, 0);
      expect(gcRuns).toBeGreaterThan(0);
      // every family it emits is declared (the catalogue lists SELF_METRICS)
      const declared = new Set(SELF_METRICS.map((d) => d.name));
      for (const k of b.keys()) expect(declared.has(k.replace(/\{.*$/, ''))).toBe(true);
    } finally {
      self.close();
    }
  });
});
