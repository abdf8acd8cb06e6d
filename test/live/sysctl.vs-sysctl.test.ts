// The sysctl collector against sysctl(8) on the live kernel, and a value change seen on the next scrape.
import { execFileSync } from 'child_process';
import { DEFAULT_SYSCTLS, sysctlCollector } from '../../src/collectors/sysctl';
import { collectLive } from './node-support';

const sysctl = (name: string): string | undefined => {
  try {
    return execFileSync('sysctl', ['-n', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
};

describe('sysctl collector vs sysctl -n', () => {
  it('exports every default sysctl exactly as sysctl(8) prints it', async () => {
    const { series } = await collectLive(sysctlCollector);
    let seen = 0;
    for (const name of DEFAULT_SYSCTLS) {
      const v = sysctl(name);
      const ours = [...series].filter(([k]) => k.includes(`{name="${name}",`));
      if (v === undefined) {
        expect([name, ours]).toEqual([name, []]);
        continue;
      }
      seen++;
      const tokens = v.split(/\s+/);
      if (tokens.every((t) => /^-?\d+$/.test(t))) {
        expect([name, tokens.map((_, i) => series.get(`flowpath_sysctl_value{name="${name}",index="${i}"}`))]).toEqual([name, tokens.map(Number)]);
        expect(ours).toHaveLength(tokens.length);
      } else {
        expect([name, ours]).toEqual([name, [[`flowpath_sysctl_info{name="${name}",value="${tokens.join(' ')}"}`, 1]]]);
      }
    }
    expect(seen).toBeGreaterThan(25);
  });

  const root = process.getuid?.() === 0;
  (root ? it : it.skip)('sees a changed value on the next scrape (net.ipv4.tcp_notsent_lowat, restored after)', async () => {
    const old = sysctl('net.ipv4.tcp_notsent_lowat')!;
    try {
      execFileSync('sysctl', ['-q', '-w', 'net.ipv4.tcp_notsent_lowat=131071']);
      const { series } = await collectLive(sysctlCollector);
      expect(series.get('flowpath_sysctl_value{name="net.ipv4.tcp_notsent_lowat",index="0"}')).toBe(131071);
    } finally {
      execFileSync('sysctl', ['-q', '-w', `net.ipv4.tcp_notsent_lowat=${old}`]);
    }
    expect(sysctl('net.ipv4.tcp_notsent_lowat')).toBe(old);
  });
});
