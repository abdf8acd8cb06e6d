// One broken source fails only its own collector: the registry reports it with
// flowpath_scrape_collector_success 0 and the other collectors' samples are still served. Also a real
// permission error (EACCES, as an unprivileged user) instead of a simulated one.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Config } from '../../src/core/flags';
import { nullLogger } from '../../src/core/log';
import { Registry } from '../../src/collectors/registry';
import { softirqCollector } from '../../src/collectors/softirq';
import { sysctlCollector } from '../../src/collectors/sysctl';
import { netstatCollector } from '../../src/collectors/netstat';
import { nodeCollector } from '../../src/collectors/node';
import { allFlags } from '../../src/exporter';

const FIX = path.join(__dirname, '../fixtures/procfs/old-4.9-offline');
const REPO = path.join(__dirname, '../..');
const DEFS = [softirqCollector, sysctlCollector, netstatCollector, nodeCollector];

function copyTree(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-iso-'));
  fs.cpSync(FIX, dir, { recursive: true });
  return dir;
}

async function scrape(dir: string): Promise<string> {
  const config = Config.from(allFlags(DEFS), { 'path.procfs': path.join(dir, 'proc'), 'path.sysfs': path.join(dir, 'sys') });
  const reg = new Registry(DEFS, { config, log: nullLogger }, 5);
  try {
    return (await reg.scrape()).render();
  } finally {
    await reg.close();
  }
}

/**
 * The first directory from / down to `file` that user `uid` (not its owner) cannot enter (no execute bit
 * for others), with its mode; undefined when every one can be entered. A checkout under a 0700 directory
 * (mktemp -d makes one) cannot be loaded by another user: that is the checkout, not the collector.
 */
function closedTo(uid: number, file: string): string | undefined {
  const parts = path.resolve(file).split(path.sep).filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const dir = path.sep + parts.slice(0, i).join(path.sep);
    const st = fs.statSync(dir);
    if (st.isDirectory() && st.uid !== uid && (st.mode & 0o001) === 0) {
      return `${dir} (mode ${(st.mode & 0o777).toString(8)}) cannot be entered by uid ${uid}: check out where others can read`;
    }
  }
  return undefined;
}

describe('failure isolation between the node-level collectors', () => {
  it.each([
    ['softirq', 'proc/net/softnet_stat', 'flowpath_softnet_'],
    ['netstat', 'proc/net/netstat', 'flowpath_netstat_'],
    ['node', 'proc/cpuinfo', 'flowpath_node_'],
  ])('a malformed file fails %s only', async (name, file, prefix) => {
    const dir = copyTree();
    try {
      fs.writeFileSync(path.join(dir, file), 'not what the kernel writes\n');
      const text = await scrape(dir);
      expect(text).toContain(`flowpath_scrape_collector_success{collector="${name}"} 0`);
      expect(text).not.toMatch(new RegExp(`^${prefix}`, 'm'));
      for (const other of DEFS.filter((d) => d.name !== name)) {
        expect(text).toContain(`flowpath_scrape_collector_success{collector="${other.name}"} 1`);
      }
      expect(text).toContain('flowpath_sysctl_value{name="net.ipv4.tcp_rmem",index="2"} 6291456');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a missing procfs fails every procfs collector but the scrape still answers', async () => {
    const text = await scrape('/nonexistent-flowpath');
    for (const d of DEFS) expect(text).toContain(`flowpath_scrape_collector_success{collector="${d.name}"} 0`);
  });

  // The collector runs as uid 65534, so it needs root to start, and a checkout that user can enter. CI
  // runs as root: there a missing privilege fails instead of skipping.
  const root = process.getuid?.() === 0;
  (root || process.env.CI ? it : it.skip)('EACCES for an unprivileged reader fails that collector with the file and errno', () => {
    expect(root).toBe(true);
    expect(closedTo(65534, REPO)).toBeUndefined();
    const dir = copyTree();
    try {
      fs.chmodSync(dir, 0o755);
      fs.chmodSync(path.join(dir, 'proc/softirqs'), 0o000);
      const r = spawnSync(
        process.execPath,
        ['-r', path.join(REPO, 'test/support/ts-register.js'), path.join(REPO, 'test/support/collect-once.ts'), 'softirq,netstat', `--path.procfs=${dir}/proc`, `--path.sysfs=${dir}/sys`],
        { uid: 65534, gid: 65534, encoding: 'utf8', cwd: '/' },
      );
      expect(r.stderr).toBe('');
      expect(r.status).toBe(3);
      expect(r.stdout).toContain(`# FAILED softirq: ${dir}/proc/softirqs: cannot read (EACCES)`);
      expect(r.stdout).toContain('flowpath_netstat_tcpext_timeouts_total 4242');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
