// The least-privilege matrix: run the built exporter as an unprivileged user (uid/gid 65534, every
// capability dropped from all sets, no_new_privs) with nothing added, with one capability added at a time,
// and with the OVS control socket's group as a supplementary group, and record which kernel interface
// answers under which privilege. Each run is a real `bin/flowpath`-equivalent process inside a private
// network namespace holding a veth pair and a TCP connection owned by root, next to a private Open vSwitch.
//
// Used by test/lab/privileges.test.ts (which checks the README table and the capability sets of every
// deployment against it) and by `scripts/privilege-matrix` (which rewrites the README table).
// Needs root (namespaces, setpriv to another uid, ovs-vswitchd).
import { ChildProcess, execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PrivateOvs } from './private-ovs';

export const REPO = path.join(__dirname, '../..');
const CLI = path.join(REPO, 'dist/src/cli.js');

/** Capabilities tried one at a time (the ones a network exporter could plausibly need). */
export const CANDIDATE_CAPS = ['net_admin', 'net_raw', 'dac_override', 'dac_read_search', 'sys_ptrace', 'sys_admin'] as const;
export const UNPRIVILEGED_UID = 65534;

export interface Probe {
  /** What the exporter reads (row of the table). */
  what: string;
  collector: string;
  /** true when the exposition shows that this read worked. */
  ok: (m: Exposition) => boolean;
}

export interface Exposition {
  lines: string[];
  /** Queues of the veth that a netdev genl QUEUE_GET dump returned under the same privilege (-1: it failed). */
  netdevQueues?: number;
  has: (name: string, labels?: Record<string, string>) => boolean;
  value: (name: string, labels?: Record<string, string>) => number | undefined;
}

export function parseExposition(text: string): Exposition {
  const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  const match = (name: string, labels: Record<string, string> = {}) =>
    lines.filter((l) => (l.startsWith(name + '{') || l.startsWith(name + ' ')) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return {
    lines,
    has: (name, labels) => match(name, labels).length > 0,
    value: (name, labels) => {
      const l = match(name, labels)[0];
      return l === undefined ? undefined : Number(l.slice(l.lastIndexOf(' ') + 1));
    },
  };
}

const VETH_A = 'fppva';
const VETH_B = 'fppvb';
const ADDR_A = '10.213.7.1';
const ADDR_B = '10.213.7.2';
export const FLOW_PORT = 5931;

const collectorOk = (m: Exposition, c: string) => m.value('flowpath_scrape_collector_success', { collector: c }) === 1;
const flowSeen = (m: Exposition) =>
  m.lines.some((l) => l.startsWith('flowpath_flow_rtt_seconds{') && l.includes(`port="${FLOW_PORT}"`) && l.includes(`"${ADDR_A}"`));

export const PROBES: Probe[] = [
  { what: "sock_diag dump of other users' TCP sockets, with tcp_info", collector: 'flows', ok: (m) => collectorOk(m, 'flows') && flowSeen(m) },
  {
    what: "sock_diag exact lookups of a watched flow (20 Hz sampler)",
    collector: 'diagnosis',
    ok: (m) => collectorOk(m, 'diagnosis') && m.lines.some((l) => l.startsWith('flowpath_flow_limited_seconds_total{') && l.includes(`port="${FLOW_PORT}"`)),
  },
  { what: 'rtnetlink link dump (device state and counters)', collector: 'nic', ok: (m) => collectorOk(m, 'nic') && m.has('flowpath_nic_rx_packets_total', { device: VETH_A }) },
  {
    what: 'ethtool netlink (channels, features; rings, coalescing, pause where the driver has them)',
    collector: 'nic',
    ok: (m) => m.has('flowpath_nic_channels', { device: VETH_A }) && m.has('flowpath_nic_offload_active', { device: VETH_A }),
  },
  {
    what: 'netdev genl (QUEUE_GET/NAPI_GET for queue-to-IRQ roles, QSTATS_GET where the driver has them)',
    collector: 'irq, nic',
    ok: (m) => (m.netdevQueues ?? -1) > 0,
  },
  { what: 'ethtool -S (SIOCETHTOOL ioctl, driver counters)', collector: 'nic', ok: (m) => m.has('flowpath_nic_driver_stat_total', { device: VETH_A }) },
  { what: 'rtnetlink qdisc dump', collector: 'qdisc', ok: (m) => collectorOk(m, 'qdisc') && m.has('flowpath_qdisc_info', { device: VETH_A }) },
  { what: '/proc/interrupts, /proc/irq/*, sysfs queues', collector: 'irq', ok: (m) => collectorOk(m, 'irq') },
  { what: '/proc/softirqs, /proc/stat, /proc/net/softnet_stat', collector: 'softirq', ok: (m) => collectorOk(m, 'softirq') && m.has('flowpath_softnet_processed_packets_total') },
  { what: '/proc/<pid>/stat of ksoftirqd/N (root-owned kernel threads)', collector: 'softirq', ok: (m) => m.has('flowpath_ksoftirqd_cpu_seconds_total') },
  { what: '/proc/net/netstat, /proc/net/snmp', collector: 'netstat', ok: (m) => collectorOk(m, 'netstat') && m.has('flowpath_netstat_tcp_retrans_segs_total') },
  { what: '/proc/sys/net/*', collector: 'sysctl', ok: (m) => collectorOk(m, 'sysctl') && m.lines.filter((l) => l.startsWith('flowpath_sysctl')).length >= 10 },
  { what: 'ovs-vswitchd control socket (unixctl) as OVS creates it: srwxr-x--- root:root', collector: 'ovs', ok: (m) => m.value('flowpath_ovs_up') === 1 },
  { what: 'uname, /proc/cpuinfo', collector: 'node', ok: (m) => collectorOk(m, 'node') },
];

export interface Privilege {
  /** Column label: "root", "none", "CAP_NET_ADMIN", "group <gid>". */
  label: string;
  /** Command prefix that runs the exporter with this privilege (empty for root). */
  prefix: string[];
}

export function unprivileged(caps: readonly string[], groups: readonly number[] = []): string[] {
  const set = caps.length ? `-all,${caps.map((c) => `+${c}`).join(',')}` : '-all';
  return [
    'setpriv',
    `--reuid=${UNPRIVILEGED_UID}`,
    `--regid=${UNPRIVILEGED_UID}`,
    groups.length ? `--groups=${groups.join(',')}` : '--clear-groups',
    `--inh-caps=${set}`,
    ...(caps.length ? [`--ambient-caps=${set}`] : []),
    `--bounding-set=${set}`,
    '--no-new-privs',
  ];
}

export interface MatrixRow {
  what: string;
  collector: string;
  root: boolean;
  unprivileged: boolean;
  /** Single capabilities that make an unprivileged run work (CAP_ names), when it does not work without. */
  caps: string[];
  /** true when the OVS socket's group as a supplementary group makes it work. */
  group: boolean;
}

export interface Matrix {
  rows: MatrixRow[];
  /** Capabilities the deployment must add: for each row that fails unprivileged and has no group fix. */
  needed: string[];
  /** Whether a group-writable control socket is reachable with its group as a supplementary group. */
  groupAlternative: boolean;
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30000 });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// netdev genl probe run with the same privilege (the veth has no queue stats and no IRQs, so the
// exporter's output cannot show whether this family answers): a QUEUE_GET dump for one device.
const NETDEV_PROBE = `
const { NetdevGenlClient } = require(process.argv[1]);
const c = new NetdevGenlClient();
c.queues(Number(process.argv[2])).then(
  (q) => { console.log(q.length); c.close(); },
  (e) => { console.error(String(e.message || e)); console.log(-1); c.close(); },
);
`;

// Scraper run inside the namespace: waits for /readyz, lets the diagnosis sampler take a few samples,
// then prints /metrics.
const SCRAPER = `
const base = process.argv[1];
(async () => {
  for (let i = 0; i < 150; i++) {
    try { if ((await fetch(base + '/readyz')).status === 200) break; } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 1500));
  await fetch(base + '/metrics');
  await new Promise((r) => setTimeout(r, 600));
  process.stdout.write(await (await fetch(base + '/metrics')).text());
})().catch((e) => { console.error(String(e)); process.exit(1); });
`;

export class MatrixLab {
  readonly ns = `fpp${process.pid % 100000}`;
  private nsCreated = false;
  private flow: ChildProcess | null = null;
  private ovs: PrivateOvs | null = null;
  /** The repository as seen by the unprivileged user (a bind mount when its parents are not searchable). */
  private repoView = REPO;
  private bindDir: string | null = null;
  socketGid = 0;

  async setup(): Promise<void> {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} missing: npm run build first`);
    // The unprivileged user must reach dist/ and node_modules/: a clone under /root is not searchable by
    // others, so the run goes through a bind mount in a world-searchable temp dir.
    this.bindDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-priv-'));
    fs.chmodSync(this.bindDir, 0o755);
    sh('mount', ['--bind', REPO, this.bindDir]);
    this.repoView = this.bindDir;

    sh('ip', ['netns', 'add', this.ns]);
    this.nsCreated = true;
    const ipn = (...a: string[]) => sh('ip', ['-n', this.ns, ...a]);
    ipn('link', 'set', 'lo', 'up');
    ipn('link', 'add', VETH_A, 'type', 'veth', 'peer', 'name', VETH_B);
    ipn('addr', 'add', `${ADDR_A}/24`, 'dev', VETH_A);
    ipn('addr', 'add', `${ADDR_B}/24`, 'dev', VETH_B);
    ipn('link', 'set', VETH_A, 'up');
    ipn('link', 'set', VETH_B, 'up');
    // A root-owned TCP connection A -> B across the veth pair, trickling data (a client and a server).
    const py = [
      'import socket, time',
      's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      `s.bind(("${ADDR_B}", ${FLOW_PORT})); s.listen()`,
      `c = socket.create_connection(("${ADDR_B}", ${FLOW_PORT}), source_address=("${ADDR_A}", 0)); a, _ = s.accept()`,
      'print("up", flush=True)',
      'end = time.time() + 600',
      'while time.time() < end:',
      '    c.send(b"x" * 4096); a.recv(65536); time.sleep(0.01)',
    ].join('\n');
    this.flow = spawn('ip', ['netns', 'exec', this.ns, 'python3', '-c', py], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('TCP flow did not come up')), 10000);
      this.flow!.stdout!.once('data', () => {
        clearTimeout(t);
        resolve();
      });
      this.flow!.once('exit', (code) => reject(new Error(`TCP flow exited (${code})`)));
    });

    this.ovs = new PrivateOvs('pm');
    await this.ovs.start();
    const st = fs.statSync(this.ovs.ctlPath());
    this.socketGid = st.gid;
    // The run dir is a private temp dir (0700): open it like /run/openvswitch (0755) so only the socket's
    // own mode decides.
    fs.chmodSync(this.ovs.dir, 0o755);
  }

  socketGroupWritable(): void {
    const p = this.ovs!.ctlPath();
    fs.chmodSync(p, fs.statSync(p).mode | 0o020);
  }

  /** Run the exporter with a privilege and return its exposition. */
  async run(prefix: string[], port: number): Promise<Exposition> {
    const cli = path.join(this.repoView, 'dist/src/cli.js');
    const args = [
      `--web.listen-address=127.0.0.1:${port}`,
      `--collector.nic.device-include=${VETH_A}|${VETH_B}`,
      `--ovs.rundir=${this.ovs!.dir}`,
      '--ovs.refresh-interval=500ms',
      `--flows.watch=port = ${FLOW_PORT}`,
      `--diagnosis.watch=port = ${FLOW_PORT}`,
      '--diagnosis.discover-interval=250ms',
    ];
    // Same V8 flags as bin/flowpath is not needed for a functional run; node is started directly so the
    // capability sets apply to the process that reads.
    const exporter = spawn('ip', ['netns', 'exec', this.ns, ...prefix, process.execPath, cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'], cwd: '/' });
    let log = '';
    exporter.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    try {
      const text = execFileSync('ip', ['netns', 'exec', this.ns, process.execPath, '-e', SCRAPER, `http://127.0.0.1:${port}`], {
        encoding: 'utf8',
        timeout: 30000,
        maxBuffer: 64 << 20,
      });
      const m = parseExposition(text);
      const ifindex = JSON.parse(sh('ip', ['-n', this.ns, '-j', 'link', 'show', VETH_A]))[0].ifindex as number;
      const probe = spawnSync('ip', ['netns', 'exec', this.ns, ...prefix, process.execPath, '-e', NETDEV_PROBE, path.join(this.repoView, 'dist/src/sources/netlink/netdev-genl.js'), String(ifindex)], {
        encoding: 'utf8',
        timeout: 20000,
        cwd: '/',
      });
      m.netdevQueues = Number(probe.stdout.trim() || -1);
      return m;
    } catch (e) {
      throw new Error(`exporter run (${prefix.join(' ') || 'root'}) failed: ${(e as Error).message}\n${log}`);
    } finally {
      exporter.kill('SIGTERM');
      await new Promise<void>((r) => (exporter.exitCode !== null || exporter.signalCode !== null ? r() : exporter.once('exit', () => r())));
    }
  }

  async cleanup(): Promise<void> {
    if (this.flow && this.flow.exitCode === null) {
      this.flow.kill('SIGKILL');
      await sleep(50);
    }
    await this.ovs?.cleanup();
    if (this.nsCreated) {
      try {
        for (const p of sh('ip', ['netns', 'pids', this.ns]).split(/\s+/).filter(Boolean)) process.kill(Number(p), 'SIGKILL');
      } catch {
        /* gone */
      }
      try {
        sh('ip', ['netns', 'del', this.ns]);
      } catch {
        /* gone */
      }
    }
    if (this.bindDir) {
      try {
        sh('umount', [this.bindDir]);
        fs.rmdirSync(this.bindDir);
      } catch {
        /* not mounted */
      }
    }
  }
}

export async function measure(lab: MatrixLab, basePort = 19640): Promise<Matrix> {
  let port = basePort;
  const root = await lab.run([], port++);
  const none = await lab.run(unprivileged([]), port++);
  const withCap = new Map<string, Exposition>();
  for (const c of CANDIDATE_CAPS) withCap.set(c, await lab.run(unprivileged([c]), port++));
  const withGroup = await lab.run(unprivileged([], [lab.socketGid]), port++);

  // The same socket after an operator made it group-writable (chmod g+w): the group alone is enough then.
  lab.socketGroupWritable();
  const gwNone = await lab.run(unprivileged([]), port++);
  const gwGroup = await lab.run(unprivileged([], [lab.socketGid]), port++);

  const rows = PROBES.map((p): MatrixRow => {
    const unpriv = p.ok(none);
    return {
      what: p.what,
      collector: p.collector,
      root: p.ok(root),
      unprivileged: unpriv,
      caps: unpriv ? [] : CANDIDATE_CAPS.filter((c) => p.ok(withCap.get(c)!)).map((c) => `CAP_${c.toUpperCase()}`),
      group: !unpriv && p.ok(withGroup),
    };
  });
  const ovsUp = (m: Exposition) => m.value('flowpath_ovs_up') === 1;
  rows.push({
    what: 'the same socket made group-writable by the operator (chmod g+w)',
    collector: 'ovs',
    root: true,
    unprivileged: ovsUp(gwNone),
    caps: [],
    group: !ovsUp(gwNone) && ovsUp(gwGroup),
  });
  const needed = new Set<string>();
  for (const r of rows) if (!r.unprivileged && !r.group && r.caps.length) needed.add(r.caps[0]);
  return { rows, needed: [...needed].sort(), groupAlternative: rows.some((r) => r.group) };
}

export const TABLE_BEGIN = '<!-- privileges:begin (generated by scripts/privilege-matrix; test/lab/privileges.test.ts checks it) -->';
export const TABLE_END = '<!-- privileges:end -->';

export function renderTable(m: Matrix): string {
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  const lines = [
    TABLE_BEGIN,
    '| what flowpath reads | collector | root | uid 65534, no capabilities | what makes it work unprivileged |',
    '|---|---|---|---|---|',
  ];
  for (const r of m.rows) {
    const fix = r.unprivileged
      ? 'nothing'
      : [...(r.group ? ["the control socket's group as a supplementary group"] : []), ...r.caps.map((c) => `\`${c}\``)].join(' or ') || 'nothing tried works';
    lines.push(`| ${r.what} | ${r.collector} | ${yes(r.root)} | ${yes(r.unprivileged)} | ${fix} |`);
  }
  lines.push('');
  lines.push(
    `Capabilities tried one at a time: ${CANDIDATE_CAPS.map((c) => `\`CAP_${c.toUpperCase()}\``).join(', ')}. ` +
      `Needed: ${m.needed.length ? m.needed.map((c) => `\`${c}\``).join(', ') : '**none**'}` +
      (m.groupAlternative ? ', for the ovs collector only: where the OVS control socket is group-writable, its group as a supplementary group is enough instead.' : '.'),
  );
  lines.push(TABLE_END);
  return lines.join('\n');
}

/** Replace the generated block in a README text. */
export function spliceTable(readme: string, table: string): string {
  const a = readme.indexOf(TABLE_BEGIN);
  const b = readme.indexOf(TABLE_END);
  if (a < 0 || b < a) throw new Error('README has no privileges block');
  return readme.slice(0, a) + table + readme.slice(b + TABLE_END.length);
}

if (require.main === module) {
  (async () => {
    const lab = new MatrixLab();
    try {
      await lab.setup();
      const m = await measure(lab);
      const table = renderTable(m);
      process.stdout.write(table + '\n');
      if (process.argv.includes('--write')) {
        const file = path.join(REPO, 'README.md');
        fs.writeFileSync(file, spliceTable(fs.readFileSync(file, 'utf8'), table));
        process.stderr.write('README.md updated\n');
      }
    } finally {
      await lab.cleanup();
    }
  })().catch((e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
