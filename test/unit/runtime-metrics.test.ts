// The exporter's own runtime families (prom-client default metrics): every series a steady exporter
// will ever show is there from the first scrape, so none appears later as a new series.
import { runtimeMetricsText } from '../../src/runtime-metrics';

describe('runtime metrics', () => {
  it('start every kind of the GC duration histogram at zero, in both formats', async () => {
    for (const format of ['text', 'openmetrics'] as const) {
      const text = await runtimeMetricsText(format);
      const kinds = [...text.matchAll(/^nodejs_gc_duration_seconds_count\{kind="(\w+)"\}/gm)].map((m) => m[1]).sort();
      expect([format, kinds]).toEqual([format, ['incremental', 'major', 'minor', 'weakcb']]);
    }
  });
});
