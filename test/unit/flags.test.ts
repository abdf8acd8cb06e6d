import {
  Config,
  UsageError,
  boolFlag,
  durationFlag,
  enumFlag,
  floatFlag,
  formatFlagHelp,
  intFlag,
  listFlag,
  parseArgs,
  parseDuration,
  regexFlag,
  stringFlag,
} from '../../src/core/flags';

const s = stringFlag('web.listen-address', ':9632', 'Listen.');
const b = boolFlag('collector.flows', true, 'Flows.');
const i = intFlag('flows.max', 100, 'Cap.', 1, 10000);
const f = floatFlag('diagnosis.sample-rate', 20, 'Hz.', 0.1, 1000);
const d = durationFlag('scrape.timeout', 10, 'Deadline.', 0.01);
const r = regexFlag('collector.nic.device-include', '', 'Include.');
const l = listFlag('collector.sysctl.include', 'More sysctls.');
const e = enumFlag('log.level', 'info', ['debug', 'info', 'warn', 'error'] as const, 'Level.');
const defs = [s, b, i, f, d, r, l, e];

describe('parseArgs', () => {
  it('uses defaults when nothing is given', () => {
    const { config, positional } = parseArgs(defs, []);
    expect(config.get(s)).toBe(':9632');
    expect(config.get(b)).toBe(true);
    expect(config.get(i)).toBe(100);
    expect(config.get(r)).toBeNull();
    expect(config.get(l)).toEqual([]);
    expect(positional).toEqual([]);
  });

  it('accepts --name=value, --name value, --no-bool, repeatable lists and positionals', () => {
    const { config, positional } = parseArgs(defs, [
      '--web.listen-address=127.0.0.1:1',
      '--flows.max', '5',
      '--no-collector.flows',
      '--scrape.timeout=500ms',
      '--collector.nic.device-include=eth.*|ens[0-9]+',
      '--collector.sysctl.include=net.core.somaxconn',
      '--collector.sysctl.include', 'vm.swappiness',
      '--log.level=debug',
      'diagnose',
      '--diagnosis.sample-rate=50',
    ]);
    expect(config.get(s)).toBe('127.0.0.1:1');
    expect(config.get(i)).toBe(5);
    expect(config.get(b)).toBe(false);
    expect(config.get(d)).toBeCloseTo(0.5);
    expect(config.get(r)!.test('eth0')).toBe(true);
    expect(config.get(r)!.test('xeth0')).toBe(false); // anchored
    expect(config.get(l)).toEqual(['net.core.somaxconn', 'vm.swappiness']);
    expect(config.get(e)).toBe('debug');
    expect(config.get(f)).toBe(50);
    expect(config.isSet(i)).toBe(true);
    expect(config.isSet(s)).toBe(true);
    expect(positional).toEqual(['diagnose']);
  });

  it.each([
    [['--nope'], /unknown flag --nope/],
    [['-x'], /unknown flag -x/],
    [['--flows.max=abc'], /expected an integer/],
    [['--flows.max=0'], /outside 1..10000/],
    [['--flows.max'], /needs a value/],
    [['--scrape.timeout=10'], /duration/],
    [['--scrape.timeout=1ms'], /at least 10ms/],
    [['--collector.nic.device-include=(['], /invalid regular expression/],
    [['--log.level=loud'], /expected one of/],
    [['--no-collector.flows=1'], /takes no value/],
    [['--collector.flows=maybe'], /expected true or false/],
    [['--no-flows.max'], /unknown flag --no-flows.max/],
  ])('rejects %j with a one-line UsageError', (argv, re) => {
    let err: unknown;
    try {
      parseArgs(defs, argv);
    } catch (x) {
      err = x;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(re);
    expect((err as Error).message).not.toContain('\n');
  });

  it('refuses a flag declared twice', () => {
    expect(() => parseArgs([s, s], [])).toThrow(/declared twice/);
  });

  it('Config.from overrides from an object and get() refuses unregistered flags', () => {
    const c = Config.from(defs, { 'flows.max': '7', 'collector.flows': false });
    expect(c.get(i)).toBe(7);
    expect(c.get(b)).toBe(false);
    expect(() => c.get(stringFlag('other', '', ''))).toThrow(/not registered/);
  });
});

describe('durations and help', () => {
  it('parses Prometheus-style durations', () => {
    expect(parseDuration('250ms')).toBeCloseTo(0.25);
    expect(parseDuration('1.5s')).toBe(1.5);
    expect(parseDuration('2m')).toBe(120);
    expect(parseDuration('1h')).toBe(3600);
    expect(() => parseDuration('5')).toThrow();
    expect(() => parseDuration('-1s')).toThrow();
  });

  it('formats help with defaults, [no-] for booleans', () => {
    const h = formatFlagHelp(defs);
    expect(h).toContain('--[no-]collector.flows');
    expect(h).toContain('--flows.max=<int>');
    expect(h).toContain('(default: 100)');
    expect(h).toContain('(default: 10s)');
    expect(h).toContain('(default: "")');
  });
});
