import * as fs from 'fs';
import * as path from 'path';
import { main } from '../../src/cli';
import { VERSION } from '../../src/version';

async function run(argv: string[]) {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (s) => (out += s), stderr: (s) => (err += s) });
  return { code, out, err };
}

describe('flowpath CLI', () => {
  it('--help lists commands, collectors and every flag with defaults', async () => {
    const { code, out } = await run(['--help']);
    expect(code).toBe(0);
    expect(out).toMatch(/^usage: flowpath/);
    for (const f of ['--web.listen-address=<addr>', '--web.telemetry-path', '--web.max-requests', '--path.procfs', '--path.sysfs', '--log.level', '--scrape.timeout']) {
      expect(out).toContain(f);
    }
    expect(out).toContain('(default: ":9632")');
    expect(out).toContain('catalogue');
  });

  it.each([
    [['--no-such-flag'], 'flowpath: unknown flag --no-such-flag\n'],
    [['--web.max-requests=many'], 'flowpath: --web.max-requests: expected an integer, got "many"\n'],
    [['--web.listen-address=nowhere'], 'flowpath: --web.listen-address: bad listen address "nowhere" (want host:port or :port)\n'],
    [['frobnicate'], 'flowpath: unknown command "frobnicate" (see --help)\n'],
  ])('%j exits 2 with a one-line reason', async (argv, msg) => {
    const { code, err, out } = await run(argv);
    expect(code).toBe(2);
    expect(err).toBe(msg);
    expect(out).toBe('');
  });

  it('--version matches package.json', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '../../package.json'), 'utf8'));
    expect(VERSION).toBe(pkg.version);
    const { code, out } = await run(['--version']);
    expect(code).toBe(0);
    expect(out).toContain(`flowpath ${pkg.version}`);
  });

  it('finds the subcommand after flags that take a separate value', async () => {
    const a = await run(['--log.level', 'debug', 'diagnose', '--help']);
    expect(a.code).toBe(0);
    expect(a.out).toMatch(/^usage: flowpath diagnose/);
    const b = await run(['--flow', 'dport = 5201', 'diagnose', '--help']);
    expect(b.code).toBe(0);
    expect(b.out).toMatch(/^usage: flowpath diagnose/);
    const c = await run(['--log.level', 'catalogue']);
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/--log.level: expected one of/);
  });

  it('lists the diagnose command and the collectors in --help', async () => {
    const { out } = await run(['--help']);
    expect(out).toMatch(/\n  diagnose\s/);
    for (const c of ['flows', 'nic', 'irq', 'qdisc', 'softirq', 'netstat', 'sysctl', 'ovs', 'node', 'diagnosis']) {
      expect(out).toMatch(new RegExp(`\\n  ${c}\\s+\\[(on|off)\\]`));
    }
  });
});
