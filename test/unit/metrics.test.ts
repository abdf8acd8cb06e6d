import { Emitter, MetricTable, OPENMETRICS_EOF, counter, gauge, metric } from '../../src/core/metrics';
import { parseOpenMetrics } from '../support/openmetrics';

describe('metric descriptors', () => {
  it('enforce the naming conventions', () => {
    expect(() => counter('flowpath_x', 'h')).toThrow(/must end in _total/);
    expect(() => gauge('flowpath_x_total', 'h')).toThrow(/must not end in _total/);
    expect(() => gauge('node_x', 'h')).toThrow(/bad metric name/);
    expect(() => gauge('flowpath_x', 'h', ['a', 'a'])).toThrow(/duplicate label/);
    expect(() => gauge('flowpath_x', 'h', ['bad-label'])).toThrow(/bad label/);
    expect(() => gauge('flowpath_x', 'h', ['__reserved'])).toThrow(/bad label/);
  });

  it('derive the unit from the name', () => {
    expect(gauge('flowpath_rtt_seconds', 'h').unit).toBe('seconds');
    expect(counter('flowpath_sent_bytes_total', 'h').unit).toBe('bytes');
    expect(gauge('flowpath_rate_bytes_per_second', 'h').unit).toBe('bytes_per_second');
    expect(gauge('flowpath_cwnd', 'h').unit).toBeUndefined();
    expect(metric('flowpath_cwnd_segments', 'gauge', 'h', [], 'segments').unit).toBe('segments');
  });
});

describe('Emitter', () => {
  const g = gauge('flowpath_test_value', 'A "test" value\nwith a newline \\ backslash.', ['device']);
  const c = counter('flowpath_test_events_total', 'Events.', []);

  it('renders HELP/TYPE once per family and escapes label values and help', () => {
    const out = new Emitter();
    out.add(g, ['eth0'], 1.5);
    out.add(g, ['we"ird\\na\nme'], 2);
    out.add(c, [], 7n);
    expect(out.render()).toBe(
      '# HELP flowpath_test_value A "test" value\\nwith a newline \\\\ backslash.\n' +
        '# TYPE flowpath_test_value gauge\n' +
        'flowpath_test_value{device="eth0"} 1.5\n' +
        'flowpath_test_value{device="we\\"ird\\\\na\\nme"} 2\n' +
        '# HELP flowpath_test_events_total Events.\n' +
        '# TYPE flowpath_test_events_total counter\n' +
        'flowpath_test_events_total 7\n',
    );
  });

  it('skips undefined and null values (absent, not zero) and renders booleans and non-finite values', () => {
    const out = new Emitter();
    out.add(g, ['a'], undefined);
    out.add(g, ['b'], null);
    expect(out.render()).toBe('');
    out.add(g, ['c'], true);
    out.add(g, ['d'], NaN);
    out.add(g, ['e'], Infinity);
    expect(out.render()).toContain('{device="c"} 1\n');
    expect(out.render()).toContain('{device="d"} NaN\n');
    expect(out.render()).toContain('{device="e"} +Inf\n');
  });

  it('rejects a wrong label count and a name declared twice differently', () => {
    const out = new Emitter();
    expect(() => out.add(g, [], 1)).toThrow(/0 label values for 1 labels/);
    out.add(g, ['x'], 1);
    const other = gauge('flowpath_test_value', 'different help', ['device']);
    expect(() => out.add(other, ['y'], 1)).toThrow(/declared twice/);
  });

  it('absorbs another emitter, merging samples of the same family', () => {
    const a = new Emitter();
    const b = new Emitter();
    a.add(g, ['a'], 1);
    b.add(g, ['b'], 2);
    b.add(c, [], 3);
    a.absorb(b);
    expect(a.sampleCount(g.name)).toBe(2);
    expect(a.sampleCount()).toBe(3);
    expect(a.render().match(/# TYPE flowpath_test_value/g)).toHaveLength(1);
  });
});

describe('Emitter, OpenMetrics', () => {
  const bytes = counter('flowpath_t_rx_bytes_total', 'Bytes "received"\\ on\nthe wire.', ['device']);
  const up = gauge('flowpath_t_up', 'Up.', []);
  const dur = gauge('flowpath_t_duration_seconds', 'Duration.', ['x']);
  const odd = gauge('flowpath_t_rate', 'Rate, unit not in the name.', [], 'bytes_per_second');

  it('names counter families without _total, escapes quotes in HELP, gives UNIT only when the name ends in it', () => {
    const e = new Emitter();
    e.add(bytes, ['eth0'], 12);
    e.add(up, [], true);
    e.add(dur, ['a"b\\c\nd'], 0.5);
    e.add(odd, [], 3);
    e.add(up, [], NaN);
    const om = e.render('openmetrics');
    expect(om).toContain('# HELP flowpath_t_rx_bytes Bytes \\"received\\"\\\\ on\\nthe wire.\n# TYPE flowpath_t_rx_bytes counter\n# UNIT flowpath_t_rx_bytes bytes\nflowpath_t_rx_bytes_total{device="eth0"} 12\n');
    expect(om).toContain('# TYPE flowpath_t_rate gauge\nflowpath_t_rate 3\n');
    expect(om).not.toContain('# EOF');
    const fams = parseOpenMetrics(om + OPENMETRICS_EOF);
    expect(fams.map((f) => [f.name, f.type, f.unit])).toEqual([
      ['flowpath_t_rx_bytes', 'counter', 'bytes'],
      ['flowpath_t_up', 'gauge', ''],
      ['flowpath_t_duration_seconds', 'gauge', 'seconds'],
      ['flowpath_t_rate', 'gauge', ''],
    ]);
    expect(fams[0].samples).toEqual([{ name: 'flowpath_t_rx_bytes_total', labels: { device: 'eth0' }, value: 12 }]);
    expect(fams[2].samples[0].labels).toEqual({ x: 'a"b\\c\nd' });
    expect(() => parseOpenMetrics(om)).toThrow(/EOF/); // the parser is strict
    // the text format keeps the 0.0.4 rules
    const text = e.render();
    expect(text).toContain('# HELP flowpath_t_rx_bytes_total Bytes "received"\\\\ on\\nthe wire.\n# TYPE flowpath_t_rx_bytes_total counter\n');
    expect(text).not.toContain('# UNIT');
  });

  it('absorb() leaves the absorbed emitter unchanged (concurrent scrapes share collector output)', () => {
    const shared = new Emitter();
    shared.add(up, [], 1);
    const a = new Emitter();
    const b = new Emitter();
    a.absorb(shared);
    b.absorb(shared);
    a.add(up, [], 2);
    b.absorb(shared);
    expect(shared.render()).toBe('# HELP flowpath_t_up Up.\n# TYPE flowpath_t_up gauge\nflowpath_t_up 1\n');
    expect(a.sampleCount('flowpath_t_up')).toBe(2);
    expect(b.sampleCount('flowpath_t_up')).toBe(2);
    expect(shared.sampleCount('flowpath_t_up')).toBe(1);
  });
});

describe('MetricTable', () => {
  interface Rec { rx: number; speed?: number }
  const t = new MetricTable<Rec>(['device'], [
    ['flowpath_t_rx_bytes_total', 'counter', 'Received.', (r) => r.rx],
    ['flowpath_t_speed_bytes_per_second', 'gauge', 'Speed.', (r) => r.speed],
  ]);

  it('emits one sample per column and omits absent fields', () => {
    const out = new Emitter();
    t.emit(out, { rx: 10, speed: 5 }, ['eth0']);
    t.emit(out, { rx: 20 }, ['eth1']);
    expect(t.descs.map((d) => d.name)).toEqual(['flowpath_t_rx_bytes_total', 'flowpath_t_speed_bytes_per_second']);
    expect(out.sampleCount('flowpath_t_rx_bytes_total')).toBe(2);
    expect(out.sampleCount('flowpath_t_speed_bytes_per_second')).toBe(1);
  });

  it('renders one label set per record and refuses a wrong label count', () => {
    const out = new Emitter();
    t.emit(out, { rx: 1, speed: 2 }, ['we"ird']);
    expect(out.render()).toContain('flowpath_t_rx_bytes_total{device="we\\"ird"} 1\n');
    expect(out.render()).toContain('flowpath_t_speed_bytes_per_second{device="we\\"ird"} 2\n');
    expect(() => t.emit(out, { rx: 1 }, [])).toThrow(/0 label values for 1 labels/);
  });

  it('validates every column like metric()', () => {
    expect(() => new MetricTable<Rec>(['device'], [['flowpath_bad', 'counter', 'x', (r) => r.rx]])).toThrow(/_total/);
  });
});
