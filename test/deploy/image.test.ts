// The container image, built and run for real: scripts/image-test builds the Dockerfile unchanged with
// podman on a local stand-in base, runs it exactly as the DaemonSet does (host network, read-only root,
// capabilities of the least-privilege matrix only, no-new-privileges, non-root, host /proc, /sys and
// the OVS run dir read-only at the DaemonSet's paths), scrapes it and checks every collector, the
// process's capabilities and the HEALTHCHECK, then removes what it created. Needs root; a missing podman,
// runc or mmdebstrap fails (scripts/install-test-deps installs them). It takes the shared heavy lock itself.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { REPO } from '../support/deploy-files';

const root = process.getuid?.() === 0;
if (!root && process.env.CI) throw new Error('the image test must run as root in CI');
const d = root ? describe : describe.skip;

d('container image (scripts/image-test, root)', () => {
  it('builds, runs like the DaemonSet, serves every collector, and cleans up', () => {
    const r = spawnSync('bash', [path.join(REPO, 'scripts/image-test')], { encoding: 'utf8', timeout: 20 * 60_000, maxBuffer: 64 << 20 });
    const tail = `${r.stdout}\n${r.stderr}`.split('\n').slice(-40).join('\n');
    expect({ status: r.status, signal: r.signal, tail: r.status === 0 ? '' : tail }).toEqual({ status: 0, signal: null, tail: '' });
    expect(r.stderr).toMatch(/image-test: ok: \d+ collectors succeeded, OVS up/);
    // Nothing of this run is left in the script's podman storage: no container, no test image; only the
    // cached base and stage images stay.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-image-check-'));
    try {
      const cache = process.env.FLOWPATH_IMAGE_CACHE ?? '/var/cache/flowpath-image-test';
      fs.writeFileSync(path.join(dir, 'storage.conf'), `[storage]\ndriver = "overlay"\ngraphroot = "${cache}/storage"\nrunroot = "/run/flowpath-image-test"\n`);
      const env = { ...process.env, CONTAINERS_STORAGE_CONF: path.join(dir, 'storage.conf') };
      const podman = (...args: string[]) => spawnSync('podman', args, { encoding: 'utf8', env }).stdout;
      expect(podman('ps', '-a', '--format', '{{.Names}}').trim()).toBe('');
      const images = podman('images', '--format', '{{.Repository}}:{{.Tag}}').trim().split('\n').sort();
      expect(images.filter((i) => !/^localhost\/(flowpath-base|flowpath-cache):/.test(i))).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 21 * 60_000);
});
