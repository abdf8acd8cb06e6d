// docs/metrics.md must be what the code generates (regenerate with `npm run catalogue`), and every
// declared family must follow the naming conventions.
import * as fs from 'fs';
import * as path from 'path';
import { renderCatalogue, sectionsFor } from '../../src/core/catalogue';
import { ALL_COLLECTORS } from '../../src/collectors';
import { EXPORTER_METRICS } from '../../src/exporter';

const sections = sectionsFor(ALL_COLLECTORS, EXPORTER_METRICS);

describe('metric catalogue', () => {
  it('docs/metrics.md is current (run `npm run catalogue` after changing a metric)', () => {
    const file = fs.readFileSync(path.join(__dirname, '../../docs/metrics.md'), 'utf8');
    expect(file).toBe(renderCatalogue(sections));
  });

  it('no family is declared twice and collector names are unique', () => {
    const names = sections.flatMap((s) => s.metrics.map((m) => m.name));
    expect(new Set(names).size).toBe(names.length);
    const cols = ALL_COLLECTORS.map((c) => c.name);
    expect(new Set(cols).size).toBe(cols.length);
  });

  it('every family follows the naming guide: flowpath_ prefix, units, _total only on counters, no label value in a name', () => {
    for (const m of sections.flatMap((s) => s.metrics)) {
      // the exporter's own process_* / nodejs_* families keep the names client libraries use
      expect(m.name).toMatch(/^(flowpath|process|nodejs)_[a-z0-9_]+$/);
      if (!m.name.startsWith('flowpath_')) expect(sections[0].metrics).toContain(m);
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
