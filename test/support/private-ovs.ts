// A private Open vSwitch for live tests (like the lab's userspace OVS, lab/README.md, without the lab/ scripts): ovsdb-server and
// ovs-vswitchd with state in a temp dir, ovs-vswitchd running inside a network namespace of its own (so
// its taps, bridges and veths cannot clash with any other OVS or lab on the machine), no systemd, no
// --mlockall. Everything it creates is recorded and removed by cleanup(), which is safe to call twice and
// after a partial setup.
import { execFile, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export function missingTools(): string[] {
  const need = ['ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-appctl', 'ip', 'iperf3', 'ping'];
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  return need.filter((c) => !dirs.some((d) => fs.existsSync(path.join(d, c))));
}

export function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, ovs-vswitchd)';
  const m = missingTools();
  return m.length ? `missing tools: ${m.join(', ')}` : null;
}

export function sh(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 20000, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function shAsync(cmd: string, args: readonly string[], timeoutMs = 60000): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? ((err as unknown as { code: number }).code) : 1) : 0;
      resolve({ stdout, stderr, code });
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface PrivateOvsOptions {
  /** Extra ovs-vswitchd arguments (e.g. --enable-dummy). */
  vswitchdArgs?: string[];
  /** other_config settings written before ovs-vswitchd starts. */
  otherConfig?: Record<string, string>;
}

export class PrivateOvs {
  readonly dir: string;
  /** Namespace that runs ovs-vswitchd (and holds its taps and veths). */
  readonly ns: string;
  private readonly createdNs: string[] = [];
  private dbPid: number | null = null;
  private readonly vswitchdPids = new Set<number>();

  constructor(
    readonly tag: string,
    private readonly opts: PrivateOvsOptions = {},
  ) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `flowpath-ovs-${tag}-`));
    this.ns = this.nsName('sw');
  }

  /** A namespace name unique to this test process. */
  nsName(role: string): string {
    return `fpo${process.pid % 100000}${this.tag}${role}`;
  }

  addNs(name: string): void {
    sh('ip', ['netns', 'add', name]);
    this.createdNs.push(name);
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    // Quiet namespaces: no IPv6 autoconf/MLD chatter through the switch.
    sh('ip', ['netns', 'exec', name, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  }

  get dbSock(): string {
    return path.join(this.dir, 'db.sock');
  }

  vsctl(...args: string[]): string {
    return sh('ovs-vsctl', [`--db=unix:${this.dbSock}`, '--timeout=20', ...args]);
  }

  /** The current control socket: <dir>/ovs-vswitchd.<pid>.ctl (found from the pid file, like ovs-appctl). */
  ctlPath(): string {
    const pid = Number(fs.readFileSync(path.join(this.dir, 'ovs-vswitchd.pid'), 'utf8').trim());
    return path.join(this.dir, `ovs-vswitchd.${pid}.ctl`);
  }

  appctl(...args: string[]): string {
    return sh('ovs-appctl', ['-t', this.ctlPath(), ...args]);
  }

  async start(): Promise<void> {
    this.addNs(this.ns);
    sh('ovsdb-tool', ['create', path.join(this.dir, 'conf.db'), '/usr/share/openvswitch/vswitch.ovsschema']);
    sh('ovsdb-server', [
      path.join(this.dir, 'conf.db'),
      `--remote=punix:${this.dbSock}`,
      '-vconsole:off',
      `--pidfile=${path.join(this.dir, 'ovsdb-server.pid')}`,
      `--unixctl=${path.join(this.dir, 'ovsdb-server.ctl')}`,
      `--log-file=${path.join(this.dir, 'ovsdb-server.log')}`,
      '--no-chdir',
      '--detach',
    ]);
    this.dbPid = Number(fs.readFileSync(path.join(this.dir, 'ovsdb-server.pid'), 'utf8').trim());
    this.vsctl('--no-wait', 'init');
    const oc = Object.entries(this.opts.otherConfig ?? {}).map(([k, v]) => `other_config:${k}=${v}`);
    if (oc.length) this.vsctl('--no-wait', 'set', 'Open_vSwitch', '.', ...oc);
    await this.startVswitchd();
  }

  /** Start ovs-vswitchd in its namespace; OVS_RUNDIR makes it listen on <dir>/ovs-vswitchd.<pid>.ctl. */
  async startVswitchd(): Promise<number> {
    sh(
      'ip',
      [
        'netns',
        'exec',
        this.ns,
        'ovs-vswitchd',
        `unix:${this.dbSock}`,
        ...(this.opts.vswitchdArgs ?? []),
        '-vconsole:off',
        `--pidfile=${path.join(this.dir, 'ovs-vswitchd.pid')}`,
        `--log-file=${path.join(this.dir, 'ovs-vswitchd.log')}`,
        '--no-chdir',
        '--detach',
      ],
      { env: { OVS_RUNDIR: this.dir } },
    );
    const pid = Number(fs.readFileSync(path.join(this.dir, 'ovs-vswitchd.pid'), 'utf8').trim());
    this.vswitchdPids.add(pid);
    for (let i = 0; i < 100 && !fs.existsSync(this.ctlPath()); i++) await sleep(50);
    return pid;
  }

  /** SIGKILL ovs-vswitchd (no clean exit: stale pid file and socket stay, like a crash). */
  async killVswitchd(): Promise<void> {
    const pid = Number(fs.readFileSync(path.join(this.dir, 'ovs-vswitchd.pid'), 'utf8').trim());
    if (!this.vswitchdPids.has(pid)) throw new Error(`pid ${pid} was not started by this test`);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(20);
    this.vswitchdPids.delete(pid);
  }

  async cleanup(): Promise<void> {
    for (const pid of [...this.vswitchdPids]) {
      if (alive(pid)) process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 50 && alive(pid); i++) await sleep(20);
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      this.vswitchdPids.delete(pid);
    }
    if (this.dbPid !== null) {
      if (alive(this.dbPid)) process.kill(this.dbPid, 'SIGTERM');
      for (let i = 0; i < 50 && alive(this.dbPid); i++) await sleep(20);
      this.dbPid = null;
    }
    for (const ns of this.createdNs.splice(0).reverse()) {
      // Processes we started inside (iperf3 -s -D) die with their pids below; the netns goes last.
      try {
        const pids = sh('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean).map(Number);
        for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
      } catch {
        /* already gone */
      }
      try {
        sh('ip', ['netns', 'del', ns]);
      } catch {
        /* already gone */
      }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
