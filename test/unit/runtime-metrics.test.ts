// The exporter's own runtime families (prom-client default metrics): every series a steady exporter
// will ever show is there from the first scrape, so none appears later as a new series; both formats are
// rendered from one registry and say what prom-client's own renderer says.
import * as client from 'prom-client';
import { LEFT_OUT_FAMILIES, renderRuntime, runtimeFamilies, runtimeMetricsText } from '../../src/runtime-metrics';
import { parseOpenMetrics } from '../support/openmetrics';

/** Lines with the sample values cut off (values move between two renderings). */
const shape = (text: string) =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (l.startsWith('#') ? l : l.slice(0, l.lastIndexOf(' '))));

describe('runtime metrics', () => {
  it('start every kind of the GC duration histogram at zero, in both formats', async () => {
    for (const format of ['text', 'openmetrics'] as const) {
      const text = await runtimeMetricsText(format);
      const kinds = [...text.matchAll(/^nodejs_gc_duration_seconds_count\{kind="(\w+)"\}/gm)].map((m) => m[1]).sort();
      expect([format, kinds]).toEqual([format, ['incremental', 'major', 'minor', 'weakcb']]);
    }
  });

  it('renders the families, HELP, TYPE, series and values prom-client\'s Registry.metrics() writes, in both formats', async () => {
    const text = new client.Registry();
    const om = new client.Registry<client.OpenMetricsContentType>();
    om.setContentType(client.openMetricsContentType);
    client.collectDefaultMetrics({ register: text });
    client.collectDefaultMetrics({ register: om });
    for (const [format, reg] of [['text', text], ['openmetrics', om]] as const) {
      const metrics = reg.getMetricsAsArray() as unknown as client.Metric[];
      // prom-client's OpenMetrics renderer renames counter objects in place first: render ours before it
      const values = await Promise.all(metrics.map((m) => m.get()));
      const ours = renderRuntime(values, format);
      const theirs = await reg.metrics();
      // the same lines but for "# UNIT" (ours gives it in OpenMetrics) and the order of samples' values
      expect([format, shape(ours).filter((l) => !l.startsWith('# UNIT '))]).toEqual([format, shape(theirs)]);
      // values too, for a series that does not move
      const [major, minor, patch] = process.versions.node.split('.');
      expect(ours).toContain(`nodejs_version_info{version="${process.version}",major="${major}",minor="${minor}",patch="${patch}"} 1\n`);
    }
    text.clear();
    om.clear();
  });

  it('OpenMetrics output parses: counters named without _total, units given, ends with # EOF', async () => {
    const text = await runtimeMetricsText('openmetrics');
    expect(text.endsWith('# EOF\n')).toBe(true);
    const fams = new Map(parseOpenMetrics(text).map((f) => [f.name, f]));
    expect(fams.get('process_cpu_seconds')?.type).toBe('counter');
    expect(fams.get('nodejs_gc_duration_seconds')).toMatchObject({ type: 'histogram', unit: 'seconds' });
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
  });

  it("exports prom-client's default families with their HELP and TYPE, but the event-loop standard deviation", async () => {
    const theirs = new client.Registry();
    client.collectDefaultMetrics({ register: theirs });
    const fams = (text: string) => text.split('\n').filter((l) => l.startsWith('# HELP ') || l.startsWith('# TYPE ')).sort();
    const expected = fams(await theirs.metrics()).filter((l) => !LEFT_OUT_FAMILIES.includes(l.split(' ')[2]));
    theirs.clear();
    expect(fams(await runtimeMetricsText('text'))).toEqual(expected);
    expect(runtimeFamilies().map((f) => f.name).sort()).toEqual([...new Set(expected.map((l) => l.split(' ')[2]))].sort());
  });

  it('event-loop lag statistics cover the window since the last scrape, and a scrape with no sample in between repeats them', async () => {
    const stats = (text: string) => {
      const out: Record<string, number> = {};
      for (const m of text.matchAll(/^nodejs_eventloop_lag_(min|max|mean|p50|p90|p99)_seconds (\S+)$/gm)) out[m[1]] = Number(m[2]);
      return out;
    };
    await runtimeMetricsText('text'); // starts the window
    await new Promise((r) => setTimeout(r, 100));
    const until = Date.now() + 150;
    while (Date.now() < until); // block the loop for 150 ms
    await new Promise((r) => setTimeout(r, 50));
    const a = stats(await runtimeMetricsText('text'));
    // the monitor records the time between its 10 ms ticks: ~10 ms at rest, one 150+ ms interval here
    expect(a.max).toBeGreaterThanOrEqual(0.15);
    expect(a.min).toBeGreaterThanOrEqual(0.005);
    expect(a.min).toBeLessThanOrEqual(a.p50);
    expect(a.p50).toBeLessThanOrEqual(a.p90);
    expect(a.p90).toBeLessThanOrEqual(a.p99);
    expect(a.p99).toBeLessThanOrEqual(a.max);
    expect(a.mean).toBeGreaterThan(a.min);
    expect(a.mean).toBeLessThan(a.max);
    // no loop turn in between: no new sample, the same window's values (not an empty window's)
    expect(stats(await runtimeMetricsText('text'))).toEqual(a);
    // the next window starts afresh: the 150 ms interval is not in it
    await new Promise((r) => setTimeout(r, 100));
    expect(stats(await runtimeMetricsText('text')).max).toBeLessThan(a.max);
  });
});
