// docs/metrics.md must be what the code generates (regenerate with `npm run catalogue`), and every
// declared family must follow the naming conventions.
import * as fs from 'fs';
import * as path from 'path';
import { renderCatalogue, sectionsFor } from '../../src/core/catalogue';
import { ALL_COLLECTORS } from '../../src/collectors';
import { exporterFamilies } from '../../src/exporter';
import { runtimeFamilies } from '../../src/runtime-metrics';

const sections = sectionsFor(ALL_COLLECTORS, exporterFamilies());

describe('metric catalogue', () => {
  it('docs/metrics.md is current (run `npm run catalogue` after changing a metric)', () => {
    const file = fs.readFileSync(path.join(__dirname, '../../docs/metrics.md'), 'utf8');
    expect(file).toBe(renderCatalogue(sections));
  });

  it('lists every family of prom-client\'s default metrics (gc histogram, event-loop lag, heap spaces, handles)', () => {
    const exporter = sections[0].metrics.map((m) => `${m.name} ${m.kind}`);
    for (const f of ['nodejs_gc_duration_seconds histogram', 'nodejs_eventloop_lag_seconds gauge', 'nodejs_heap_space_size_used_bytes gauge', 'nodejs_active_handles gauge', 'process_cpu_seconds_total counter', 'process_open_fds gauge'])
      expect(exporter).toContain(f);
  });

  it('no family is declared twice and collector names are unique', () => {
    const names = sections.flatMap((s) => s.metrics.map((m) => m.name));
    expect(new Set(names).size).toBe(names.length);
    const cols = ALL_COLLECTORS.map((c) => c.name);
    expect(new Set(cols).size).toBe(cols.length);
  });

  it('every family follows the naming guide: flowpath_ prefix, units, _total only on counters, no label value in a name', () => {
    const runtime = new Set(runtimeFamilies().map((m) => m.name));
    for (const m of sections.flatMap((s) => s.metrics)) {
      // the exporter's own process_* / nodejs_* families are prom-client's, under the names its users'
      // dashboards read (some of its gauges end in _total: nodejs_active_handles_total)
      if (runtime.has(m.name)) {
        expect(m.name).toMatch(/^(process|nodejs)_[a-z0-9_]+$/);
        expect(sections[0].metrics).toContain(m);
        continue;
      }
      expect(m.name).toMatch(/^flowpath_[a-z0-9_]+$/);
      expect(m.kind === 'counter').toBe(m.name.endsWith('_total'));
      expect(m.help.length).toBeGreaterThan(10);
      // non-base units must not appear as suffixes
      expect(m.name).not.toMatch(/_(milliseconds|microseconds|kilobytes|megabytes|bits|percent)(_total)?$/);
      // label values such as device or cpu names must not be baked into names
      expect(m.name).not.toMatch(/_(eth\d+|cpu\d+|queue_?\d+|rx_\d+|tx_\d+)_/);
      if (m.name.endsWith('_info')) expect(m.kind).toBe('gauge');
    }
  });
});
