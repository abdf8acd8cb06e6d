import { Emitter, MetricTable, counter, gauge, metric } from '../../src/core/metrics';

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
