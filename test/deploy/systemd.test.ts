// deploy/systemd/flowpath.service: `systemd-analyze verify` accepts it without a warning (the ExecStart
// path rewritten to this checkout's launcher, since /opt/flowpath does not exist here), it carries the
// DaemonSet's hardening, and its flags are flags flowpath knows.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Config } from '../../src/core/flags';
import { allFlags } from '../../src/exporter';
import { REPO, flagOverrides } from '../support/deploy-files';

const UNIT = path.join(REPO, 'deploy/systemd/flowpath.service');
const text = fs.readFileSync(UNIT, 'utf8');
const settings = new Map<string, string[]>();
for (const l of text.split('\n')) {
  const m = /^([A-Za-z]+)=(.*)$/.exec(l);
  if (m) settings.set(m[1], [...(settings.get(m[1]) ?? []), m[2]]);
}
const one = (k: string) => settings.get(k)?.[0];

function verify(unitText: string): { status: number | null; output: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-unit-'));
  try {
    const file = path.join(dir, 'flowpath.service');
    fs.writeFileSync(file, unitText.replace('/opt/flowpath/bin/flowpath', path.join(REPO, 'bin/flowpath')));
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    if (r.error) throw new Error(`systemd-analyze: ${r.error.message} (Debian package systemd; scripts/install-test-deps)`);
    // Lines about other units on this machine are not ours.
    const output = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes(file)).join('\n');
    return { status: r.status, output };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('deploy/systemd/flowpath.service', () => {
  it('passes systemd-analyze verify without a warning', () => {
    expect(verify(text)).toEqual({ status: 0, output: '' });
  });

  it('verify does report a broken unit (so the check can fail)', () => {
    expect(verify(text.replace('NoNewPrivileges=yes', 'NoNewPrivileges=yes\nProtectKernelTunabels=yes')).output).toMatch(/ProtectKernelTunabels/);
  });

  it('has the hardening of the DaemonSet', () => {
    expect(one('DynamicUser')).toBe('yes'); // non-root
    expect(one('NoNewPrivileges')).toBe('yes'); // allowPrivilegeEscalation: false
    expect(one('ProtectSystem')).toBe('strict'); // readOnlyRootFilesystem
    expect(one('ProtectKernelTunables')).toBe('yes'); // /proc/sys and /sys read-only
    expect(one('SystemCallFilter')).toBe('@system-service'); // seccomp RuntimeDefault
    expect(one('CapabilityBoundingSet')).toBe(one('AmbientCapabilities')); // drop ALL + the matrix (privileges test)
    expect(one('MemoryMax')).toBeDefined();
  });

  it('passes only flags flowpath knows, with valid values', () => {
    const [exe, ...args] = one('ExecStart')!.split(/\s+/);
    expect(exe).toBe('/opt/flowpath/bin/flowpath');
    const overrides = flagOverrides(args);
    expect(() => Config.from(allFlags(), overrides)).not.toThrow();
  });
});
