// Sysctl reader and collector on fixture trees (test/fixtures/procfs/README.md).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Config, UsageError, parseArgs } from '../../src/core/flags';
import { nullLogger } from '../../src/core/log';
import { Emitter } from '../../src/core/metrics';
import { parseSysctlValue, readSysctl, sysctlPath } from '../../src/sources/procfs/sysctl';
import { DEFAULT_SYSCTLS, sysctlCollector } from '../../src/collectors/sysctl';
import { allFlags } from '../../src/exporter';
import { promtoolAvailable, promtoolCheckMetrics } from '../support/promtool';

const FIX = path.join(__dirname, '../fixtures/procfs');

async function collect(procfs: string, extra: Record<string, string> = {}): Promise<string> {
  const config = Config.from(allFlags(), { 'path.procfs': procfs, ...extra });
  const out = new Emitter();
  await sysctlCollector.create({ config, log: nullLogger }).collect(out, { signal: new AbortController().signal, now: 0 });
  return out.render();
}
const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('sysctl source', () => {
  it('numbers vs strings', () => {
    expect(parseSysctlValue('net.ipv4.tcp_rmem', '4096\t87380\t6291456\n')).toEqual({ name: 'net.ipv4.tcp_rmem', numbers: [4096, 87380, 6291456] });
    expect(parseSysctlValue('x.y', '-1\n')).toEqual({ name: 'x.y', numbers: [-1] });
    expect(parseSysctlValue('x.y', 'reno  cubic bbr\n')).toEqual({ name: 'x.y', text: 'reno cubic bbr' });
    expect(parseSysctlValue('x.y', '\n')).toEqual({ name: 'x.y', text: '' });
  });
  it('maps names to paths like sysctl(8), refusing escapes', () => {
    expect(sysctlPath('net.ipv4.tcp_rmem')).toBe('net/ipv4/tcp_rmem');
    expect(sysctlPath('net.ipv4.conf.eth0/100.rp_filter')).toBe('net/ipv4/conf/eth0.100/rp_filter');
    expect(() => sysctlPath('net..x')).toThrow(/bad sysctl name/);
    expect(() => sysctlPath('net.ipv4./.x')).toThrow(/bad sysctl name/);
    expect(() => sysctlPath('tcp_rmem')).toThrow(/bad sysctl name/);
  });
  it('a sysctl this kernel lacks is undefined, not an error', () => {
    expect(readSysctl(path.join(FIX, 'old-4.9-offline/proc'), 'net.core.netdev_budget_usecs')).toBeUndefined();
  });
});

describe('sysctl collector', () => {
  it('captured 6.18: every default sysctl present on the VM, triples by index, strings as info', async () => {
    const text = await collect(path.join(FIX, 'vm-6.18/proc'));
    const present = DEFAULT_SYSCTLS.filter((n) => fs.existsSync(path.join(FIX, 'vm-6.18/proc/sys', n.split('.').join('/'))));
    for (const n of present) expect(text).toContain(`name="${n}"`);
    const wmem = fs.readFileSync(path.join(FIX, 'vm-6.18/proc/sys/net/ipv4/tcp_wmem'), 'latin1').trim().split(/\s+/).map(Number);
    expect([0, 1, 2].map((i) => value(text, `flowpath_sysctl_value{name="net.ipv4.tcp_wmem",index="${i}"}`))).toEqual(wmem);
    const cc = fs.readFileSync(path.join(FIX, 'vm-6.18/proc/sys/net/ipv4/tcp_congestion_control'), 'latin1').trim();
    expect(value(text, `flowpath_sysctl_info{name="net.ipv4.tcp_congestion_control",value="${cc}"}`)).toBe(1);
    if (promtoolAvailable()) expect(promtoolCheckMetrics(text)).toEqual({ status: 0, output: '' });
  });

  it('old kernel: missing sysctls are skipped, tab-separated triples read, includes added', async () => {
    const text = await collect(path.join(FIX, 'old-4.9-offline/proc'), { 'collector.sysctl.include': 'kernel.osrelease' });
    expect(value(text, 'flowpath_sysctl_value{name="net.ipv4.tcp_rmem",index="1"}')).toBe(87380);
    expect(value(text, 'flowpath_sysctl_value{name="net.ipv4.tcp_notsent_lowat",index="0"}')).toBe(4294967295);
    expect(value(text, 'flowpath_sysctl_info{name="net.ipv4.tcp_available_congestion_control",value="cubic reno"}')).toBe(1);
    expect(value(text, 'flowpath_sysctl_info{name="kernel.osrelease",value="4.9.0-19-amd64"}')).toBe(1);
    expect(text).not.toContain('netdev_budget_usecs');
    expect(text).not.toContain('tcp_tso_rtt_log');
  });

  it('rejects a bad --collector.sysctl.include at flag parsing', () => {
    expect(() => parseArgs(allFlags(), ['--collector.sysctl.include=../../etc/passwd'])).toThrow(UsageError);
    expect(parseArgs(allFlags(), ['--collector.sysctl.include=net.ipv4.tcp_reordering', '--collector.sysctl.include=vm.swappiness']).config).toBeDefined();
  });

  it('fails when /proc/sys is absent altogether, or a sysctl cannot be read (EISDIR)', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-sysctl-'));
    try {
      await expect(collect(empty)).rejects.toThrow(/none of \d+ sysctls exists/);
      fs.mkdirSync(path.join(empty, 'sys/net/ipv4/tcp_rmem'), { recursive: true });
      await expect(collect(empty)).rejects.toThrow(/tcp_rmem: cannot read \(EISDIR\)/);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
