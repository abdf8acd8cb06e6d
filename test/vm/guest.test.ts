// The test guest (lab/vm): a Debian bookworm kernel under qemu with openvswitch.ko, sch_fq and netem,
// which this machine's kernel lacks. This host-side test compiles src/ and the guest tests
// (test/vm/tsconfig.json -> dist/), boots the guest once with lab/vm/run and runs every
// test/vm/guest/*.guest.ts there with node's test runner (jest itself takes minutes to start under TCG
// emulation). A failure in the guest fails this test with the guest's output; the measurements the guest
// tests record (results share, *.jsonl) are printed. Needs root (qemu reads the root file system over 9p);
// qemu-system-x86, busybox-static and cpio come from scripts/install-test-deps, the guest kernel from the
// Debian mirror (lab/vm/build caches it under /var/cache/flowpath-vm).
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const REPO = path.resolve(__dirname, '..', '..');
const GUEST_DIR = path.join(REPO, 'test', 'vm', 'guest');
const GUEST_TIMEOUT_S = Number(process.env.FLOWPATH_VM_TIMEOUT ?? 1200);

const root = process.getuid?.() === 0;
const d = root ? describe : describe.skip;
if (!root) console.warn('test guest: skipped: needs root (qemu reads the root file system; namespaces, OVS in the guest)');

function run(cmd: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    c.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
    // lab/vm/run kills qemu itself on its own timeout; this is the backstop (qemu dies with it).
    const t = setTimeout(() => c.kill('SIGTERM'), timeoutMs);
    c.on('error', reject);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

d('test guest (qemu, Debian 6.1 kernel: kernel OVS datapath, fq, netem)', () => {
  let results = '';
  afterAll(() => {
    if (results) fs.rmSync(results, { recursive: true, force: true });
  });

  it('every guest test passes', async () => {
    const guestTests = fs.readdirSync(GUEST_DIR).filter((f) => f.endsWith('.guest.ts')).sort();
    expect(guestTests.length).toBeGreaterThan(0);
    const tsc = await run(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'test/vm/tsconfig.json'], 300_000);
    if (tsc.code !== 0) throw new Error(`tsc -p test/vm/tsconfig.json failed:\n${tsc.out}`);
    results = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-vm-results-'));
    const files = guestTests.map((f) => path.join('dist', 'test', 'vm', 'guest', f.replace(/\.ts$/, '.js')));
    const t0 = Date.now();
    const g = await run(
      path.join(REPO, 'lab', 'vm', 'run'),
      ['--timeout', String(GUEST_TIMEOUT_S), '--results', results, '--', process.execPath, '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
      (GUEST_TIMEOUT_S + 120) * 1000,
    );
    const seconds = ((Date.now() - t0) / 1000).toFixed(0);
    for (const f of fs.readdirSync(results).filter((x) => x.endsWith('.jsonl'))) {
      console.log(`guest measurements ${f}:\n${fs.readFileSync(path.join(results, f), 'utf8')}`);
    }
    if (g.code !== 0) throw new Error(`the guest suite failed (exit ${g.code}, ${seconds} s):\n${g.out}`);
    // node's spec reporter summary: every test ran and passed, none skipped.
    const count = (k: string) => Number(new RegExp(`^ℹ ${k} (\\d+)$`, 'm').exec(g.out)?.[1] ?? NaN);
    // Every case runs and asserts: none skipped, cancelled or left as TODO.
    expect({ fail: count('fail'), skipped: count('skipped'), cancelled: count('cancelled'), todo: count('todo') }).toEqual({ fail: 0, skipped: 0, cancelled: 0, todo: 0 });
    expect(count('pass')).toBeGreaterThanOrEqual(guestTests.length);
    // Each test's duration, so a slow guest shows where its time went.
    const timings = g.out.split('\n').filter((l) => /^\s*✔ .*\(\d+(\.\d+)?ms\)\s*$/.test(l));
    console.log(`guest suite: ${count('pass')} passed in ${seconds} s\n${timings.join('\n')}`);
    expect(qemusUsing(results)).toEqual([]);
  }, (GUEST_TIMEOUT_S + 400) * 1000);

  it('lab/vm/build refuses a cache under /tmp or /run (the guest covers both with tmpfs, so it would not see the modules)', async () => {
    for (const dir of ['/tmp/flowpath-vm-cache-test', '/run/flowpath-vm-cache-test']) {
      const r = await run(path.join(REPO, 'lab', 'vm', 'build'), [], 30_000, { FLOWPATH_VM_CACHE: dir });
      expect([r.code, r.out]).toEqual([1, expect.stringContaining(`FLOWPATH_VM_CACHE=${dir} is under /tmp or /run`)]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lab/vm/run: the guest command\'s exit status comes back; on --timeout qemu is killed, the status is 124 and where the guest had got to is printed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-vm-timeout-'));
    try {
      const failing = await run(path.join(REPO, 'lab', 'vm', 'run'), ['--timeout', '300', '--results', dir, '--', 'bash', '-c', 'echo in-guest; exit 7'], 400_000);
      expect([failing.code, /^in-guest$/m.test(failing.out)]).toEqual([7, true]);
      // Killed while booting: no heartbeat yet.
      const booting = await run(path.join(REPO, 'lab', 'vm', 'run'), ['--timeout', '3', '--results', dir, '--', 'sleep', '600'], 120_000);
      expect(booting.code).toBe(124);
      expect(booting.out).toContain('timeout: 3 s; killing qemu');
      expect(booting.out).toContain('the guest never reached guest-init');
      // Killed while the command runs (the guest reaches it 20-45 s after qemu starts): its progress log and the heartbeat's
      // process list come back.
      const stuck = await run(
        path.join(REPO, 'lab', 'vm', 'run'),
        ['--timeout', '100', '--results', dir, '--', 'bash', '-c', 'echo "9.9 s step one" >>"$FLOWPATH_VM_RESULTS/progress"; exec sleep 600'],
        300_000,
      );
      expect(stuck.code).toBe(124);
      expect(stuck.out).toMatch(/the guest tests' last steps[^\n]*\n {2}9\.9 s step one\n/);
      expect(stuck.out).toMatch(/the guest's last heartbeat:\n {2}guest uptime [\d.]+ s; load /);
      expect(stuck.out).toMatch(/ sleep 600$/m);
      expect(qemusUsing(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 900_000);
});

/** Live qemu processes whose command line names DIR (the results share of one run). */
function qemusUsing(dir: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return cmd.startsWith('qemu-system') && cmd.includes(dir);
      } catch {
        return false;
      }
    })
    .map(Number);
}
