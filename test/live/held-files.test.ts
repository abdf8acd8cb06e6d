// Held descriptors of pseudo-files (src/sources/procfs/read.ts): re-reads give fresh values, regular files
// are never held, forgetHeld closes, and (root) a device renamed under a held path is not read again once
// the device listing has seen the change.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { forgetHeld, heldCount, readWhole } from '../../src/sources/procfs/read';

const REPO = path.join(__dirname, '../..');

describe('held pseudo-file descriptors', () => {
  it('re-reads a held /proc file with fresh content', async () => {
    const a = readWhole('/proc/uptime');
    const n = heldCount();
    await new Promise((r) => setTimeout(r, 30));
    const b = readWhole('/proc/uptime');
    expect(heldCount()).toBe(n); // the same descriptor, not a new one
    expect(Number(b.split(' ')[0])).toBeGreaterThan(Number(a.split(' ')[0]));
    // a multi-record seq_file larger than one page is read whole from the held descriptor
    const live = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').length;
    const viaHeld = readWhole('/proc/self/maps').split('\n').length;
    expect(Math.abs(viaHeld - live)).toBeLessThan(20);
  });

  it('never holds a regular file: a replaced file is read anew', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-held-'));
    try {
      const f = path.join(dir, 'value');
      fs.writeFileSync(f, 'one\n');
      const n = heldCount();
      expect(readWhole(f)).toBe('one\n');
      fs.writeFileSync(path.join(dir, 'tmp'), 'two\n');
      fs.renameSync(path.join(dir, 'tmp'), f); // a new inode under the same name
      expect(readWhole(f)).toBe('two\n');
      expect(heldCount()).toBe(n);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('forgetHeld closes the descriptors under a prefix', () => {
    readWhole('/sys/class/net/lo/mtu');
    readWhole('/sys/class/net/lo/tx_queue_len');
    const n = heldCount();
    forgetHeld('/sys/class/net/lo/');
    expect(heldCount()).toBe(n - 2);
    expect(readWhole('/sys/class/net/lo/mtu').trim()).toBe(fs.readFileSync('/sys/class/net/lo/mtu', 'utf8').trim());
  });

  const root = process.getuid?.() === 0 && spawnSync('ip', ['-V']).status === 0;
  (root ? it : it.skip)('a renamed device: the listing drops its held files, the new device of that name is read', () => {
    const ns = `fpheld${process.pid}`;
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    try {
      expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
      expect(spawnSync('ip', ['-n', ns, 'link', 'add', 'fa', 'type', 'veth', 'peer', 'name', 'fz']).status).toBe(0);
      const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-r', path.join(REPO, 'test/support/ts-register.js'), path.join(REPO, 'test/support/held-rename.ts')], {
        encoding: 'utf8',
        cwd: REPO,
      });
      expect(r.stderr).toBe('');
      const o = JSON.parse(r.stdout) as { first: string; held: number; stale: string; fresh: string; want: string };
      expect(o.held).toBeGreaterThan(0);
      expect(o.stale).toBe(o.first); // the hazard is real: the descriptor followed the renamed device
      expect(o.fresh).toBe(o.want); // and the listing fixed it
      expect(o.fresh).not.toBe(o.first);
    } finally {
      spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    }
  }, 30_000);
});
