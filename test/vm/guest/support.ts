// Helpers for the tests that run inside the test guest (lab/vm/run; node's test runner, see
// test/vm/guest.test.ts). The guest is a throw-away Debian 6.1 kernel under qemu: the host's root is
// read-only, /tmp and /run are tmpfs, and nothing else runs in it, so these helpers may load modules,
// create namespaces and start daemons freely. They still stop everything they start (stop()).
//
// The seed topology (two nodes, each with its address on the OVS internal port br-int of its own kernel
// bridge, one veth "wire" between the nodes' uplinks, optionally through a "network" namespace that
// holds netem) is built by SeedTopology. Addresses are documentation ranges only.
import { ChildProcess, execFile, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { alive } from '../../support/private-ovs';

export const REPO = path.resolve(__dirname, '..', '..', '..', '..');
export const CLI = path.join(REPO, 'dist', 'src', 'cli.js');
export const RESULTS = process.env.FLOWPATH_VM_RESULTS ?? '/tmp';
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function inGuest(): boolean {
  return process.env.FLOWPATH_VM === '1';
}

export function sh(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      env: { ...process.env, ...opts.env },
      timeout: opts.timeoutMs ?? 60000,
      input: opts.input,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      maxBuffer: 64 << 20,
    });
  } catch (e) {
    const x = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${x.message}\n${x.stdout ?? ''}${x.stderr ?? ''}`);
  }
}

export function shAsync(cmd: string, args: readonly string[], timeoutMs = 120000): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : 1) : 0;
      resolve({ stdout, stderr, code });
    });
  });
}

export const nsSh = (ns: string, cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) =>
  sh('ip', ['netns', 'exec', ns, cmd, ...args], opts);

/** The guest's uptime in seconds (/proc/uptime's first field). */
function uptimeSeconds(): number {
  return Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
}

/** ovs-vswitchd 3.1 started in the first seconds of a guest's uptime registers no upcall handlers and
 * every upcall is "lost" (seen on TCG guests); wait until the guest has been up this long. */
export async function waitUptime(seconds: number): Promise<void> {
  for (;;) {
    const up = uptimeSeconds();
    if (up >= seconds) return;
    await sleep((seconds - up) * 1000 + 50);
  }
}

/** GET over a fresh connection (no keep-alive: a reused socket the server is closing fails the request). */
export function httpGet(url: string, timeoutMs = 180000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

async function waitFor(what: string, timeoutMs: number, pred: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await pred()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

export interface Node {
  name: 'a' | 'b';
  ns: string;
  /** Address on br-int (198.51.100.0/24). */
  ip: string;
  /** Address of the management veth, reachable from the guest's root namespace (203.0.113.0/24). */
  mgmtIp: string;
  /** OVS run/db/log directory (OVS_RUNDIR etc.). */
  ovsDir: string;
  /** Uplink of br-int (one end of the wire). */
  uplink: string;
}

const NODE_IP = { a: '198.51.100.1', b: '198.51.100.2' } as const;
const MGMT = { a: ['203.0.113.1', '203.0.113.2'], b: ['203.0.113.5', '203.0.113.6'] } as const;
export const BRIDGE = 'br-int';
export const UPLINK = 'eth1';

/**
 * Two node namespaces, each with its own ovsdb-server + ovs-vswitchd on the kernel datapath
 * (system@ovs-system of that namespace), the node address on br-int (the bridge's internal port) and the
 * uplink eth1 in br-int. `wire: "direct"`: eth1 (A) <-veth-> eth1 (B). `wire: "network"`: each eth1 is
 * one end of a veth whose other end sits in a third namespace bridging the two (a Linux bridge), so qdiscs
 * there (netem) are in neither node. A management veth per node (203.0.113.0/30 and .4/30) lets the
 * tests in the guest's root namespace reach the exporters.
 */
export class SeedTopology {
  readonly a: Node;
  readonly b: Node;
  readonly netNs: string;
  private readonly createdNs: string[] = [];
  private readonly createdLinks: string[] = [];
  private readonly pidfiles: string[] = [];
  private readonly children = new Set<ChildProcess>();

  constructor(
    readonly tag: string,
    readonly wire: 'direct' | 'network' = 'direct',
  ) {
    const node = (name: 'a' | 'b'): Node => ({ name, ns: `${tag}-${name}`, ip: NODE_IP[name], mgmtIp: MGMT[name][1], ovsDir: `/tmp/${tag}-ovs-${name}`, uplink: UPLINK });
    this.a = node('a');
    this.b = node('b');
    this.netNs = `${tag}-net`;
  }

  private addNs(ns: string): void {
    sh('ip', ['netns', 'add', ns]);
    this.createdNs.push(ns);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    nsSh(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  }

  ovsEnv(n: Node): NodeJS.ProcessEnv {
    return { OVS_RUNDIR: n.ovsDir, OVS_LOGDIR: n.ovsDir, OVS_DBDIR: n.ovsDir, OVS_SYSCONFDIR: n.ovsDir };
  }

  vsctl(n: Node, ...args: string[]): string {
    return nsSh(n.ns, 'ovs-vsctl', [`--db=unix:${n.ovsDir}/db.sock`, '--timeout=30', ...args], { env: this.ovsEnv(n) });
  }

  /** ovs-appctl to this node's ovs-vswitchd. */
  appctl(n: Node, ...args: string[]): string {
    const pid = fs.readFileSync(`${n.ovsDir}/ovs-vswitchd.pid`, 'utf8').trim();
    return sh('ovs-appctl', ['-t', `${n.ovsDir}/ovs-vswitchd.${pid}.ctl`, ...args]);
  }

  /** ovs-dpctl in the node's namespace: the kernel datapath over genetlink, without ovs-vswitchd. */
  dpctl(n: Node, ...args: string[]): string {
    return nsSh(n.ns, 'ovs-dpctl', args);
  }

  async up(): Promise<void> {
    progress(`${this.tag}: topology up (${this.wire} wire)`);
    await waitUptime(10);
    sh('modprobe', ['openvswitch']);
    for (const n of [this.a, this.b]) this.addNs(n.ns);
    if (this.wire === 'direct') {
      sh('ip', ['link', 'add', 'eth1', 'netns', this.a.ns, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', this.b.ns]);
    } else {
      this.addNs(this.netNs);
      sh('ip', ['-n', this.netNs, 'link', 'add', 'br0', 'type', 'bridge']);
      for (const n of [this.a, this.b]) {
        sh('ip', ['link', 'add', 'eth1', 'netns', n.ns, 'type', 'veth', 'peer', 'name', `to-${n.name}`, 'netns', this.netNs]);
        sh('ip', ['-n', this.netNs, 'link', 'set', `to-${n.name}`, 'master', 'br0', 'up']);
      }
      sh('ip', ['-n', this.netNs, 'link', 'set', 'br0', 'up']);
    }
    for (const n of [this.a, this.b]) {
      const [rootIp, nsIp] = MGMT[n.name];
      const m = `mgmt-${this.tag}-${n.name}`.slice(0, 15);
      sh('ip', ['link', 'add', m, 'type', 'veth', 'peer', 'name', 'mgmt', 'netns', n.ns]);
      this.createdLinks.push(m);
      sh('ip', ['addr', 'add', `${rootIp}/30`, 'dev', m]);
      sh('ip', ['link', 'set', m, 'up']);
      sh('ip', ['-n', n.ns, 'addr', 'add', `${nsIp}/30`, 'dev', 'mgmt']);
      sh('ip', ['-n', n.ns, 'link', 'set', 'mgmt', 'up']);
      await this.startOvs(n);
      this.vsctl(n, 'add-br', BRIDGE);
      this.vsctl(n, 'add-port', BRIDGE, n.uplink);
      sh('ip', ['-n', n.ns, 'link', 'set', n.uplink, 'up']);
      sh('ip', ['-n', n.ns, 'addr', 'add', `${n.ip}/24`, 'dev', BRIDGE]);
      sh('ip', ['-n', n.ns, 'link', 'set', BRIDGE, 'up']);
    }
    await waitFor('a ping from A to B through both kernel datapaths', 60000, () => {
      nsSh(this.a.ns, 'ping', ['-c', '1', '-W', '1', this.b.ip]);
      return true;
    });
  }

  private async startOvs(n: Node): Promise<void> {
    progress(`${this.tag}: OVS in ${n.ns}`);
    fs.mkdirSync(n.ovsDir, { recursive: true });
    const env = this.ovsEnv(n);
    sh('ovsdb-tool', ['create', `${n.ovsDir}/conf.db`, '/usr/share/openvswitch/vswitch.ovsschema']);
    nsSh(n.ns, 'ovsdb-server', [`${n.ovsDir}/conf.db`, `--remote=punix:${n.ovsDir}/db.sock`, '-vconsole:off', `--pidfile=${n.ovsDir}/ovsdb-server.pid`, `--log-file=${n.ovsDir}/ovsdb-server.log`, '--no-chdir', '--detach'], { env });
    this.pidfiles.push(`${n.ovsDir}/ovsdb-server.pid`);
    this.vsctl(n, '--no-wait', 'init');
    // --detach returns once the daemon is up; bounded in case it hangs on the datapath.
    sh('timeout', ['60', 'ip', 'netns', 'exec', n.ns, 'ovs-vswitchd', `unix:${n.ovsDir}/db.sock`, '-vconsole:off', `--pidfile=${n.ovsDir}/ovs-vswitchd.pid`, `--log-file=${n.ovsDir}/ovs-vswitchd.log`, '--no-chdir', '--detach'], { env, timeoutMs: 70000 });
    this.pidfiles.push(`${n.ovsDir}/ovs-vswitchd.pid`);
  }

  /** A long-lived child process (killed by stop()). */
  spawnIn(ns: string, cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): ChildProcess {
    const c = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.children.add(c);
    c.on('exit', () => this.children.delete(c));
    return c;
  }

  /** flowpath serving on 0.0.0.0:9632 in the node's namespace, reading this node's OVS. */
  async startExporter(n: Node, flags: readonly string[] = []): Promise<Exporter> {
    progress(`${this.tag}: exporter in ${n.ns}`);
    const c = this.spawnIn(n.ns, process.execPath, [CLI, '--web.listen-address=0.0.0.0:9632', `--ovs.rundir=${n.ovsDir}`, '--log.level=warn', ...flags]);
    let log = '';
    c.stdout?.setEncoding('utf8').on('data', (s: string) => (log += s));
    c.stderr?.setEncoding('utf8').on('data', (s: string) => (log += s));
    const url = `http://${n.mgmtIp}:9632`;
    await waitFor(`flowpath in ${n.ns}`, 240000, async () => c.exitCode !== null || (await httpGet(`${url}/healthz`, 5000)).status === 200).catch((e) => {
      throw new Error(`${(e as Error).message}\nflowpath log:\n${log}`);
    });
    if (c.exitCode !== null) throw new Error(`flowpath in ${n.ns} exited with ${c.exitCode}:\n${log}`);
    return {
      url,
      scrape: async () => {
        const r = await httpGet(`${url}/metrics`);
        if (r.status !== 200) throw new Error(`GET ${url}/metrics: ${r.status} ${r.body.slice(0, 300)}`);
        return r.body;
      },
      log: () => log,
      stop: async () => {
        if (c.exitCode === null) c.kill('SIGTERM');
        await waitFor('flowpath to exit', 10000, () => c.exitCode !== null || c.signalCode !== null).catch(() => c.kill('SIGKILL'));
      },
    };
  }

  /**
   * An iperf3 flow from A to B that runs until stop() (node processes start slowly under emulation, so a
   * flow of fixed length could end before the tool that measures it has started). started resolves once
   * the client has connected (iperf3 prints its first interval).
   */
  async iperf(args: readonly string[], opts: { port?: number } = {}): Promise<{ stop: () => Promise<void> }> {
    const port = String(opts.port ?? 5201);
    progress(`${this.tag}: iperf3 ${args.join(' ')}`);
    const srv = this.spawnIn(this.b.ns, 'iperf3', ['-s', '-1', '-B', this.b.ip, '-p', port]);
    await waitFor('iperf3 -s to listen', 30000, () => nsSh(this.b.ns, 'ss', ['-Htln', `sport = :${port}`]).includes(port));
    const cli = this.spawnIn(this.a.ns, 'iperf3', ['-c', this.b.ip, '-B', this.a.ip, '-p', port, '-t', '600', '-i', '1', '--forceflush', ...args]);
    let out = '';
    cli.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
    cli.stderr?.setEncoding('utf8').on('data', (s: string) => (out += s));
    const started = () => /sec\s+[\d.]+ [KMG]?Bytes/.test(out);
    await waitFor('iperf3 -c to report its first second', 120000, () => cli.exitCode !== null || started()).catch(() => undefined);
    if (!started()) {
      for (const c of [cli, srv]) if (c.exitCode === null) c.kill('SIGKILL');
      throw new Error(`iperf3 -c did not start a flow (exit ${cli.exitCode}): ${out}`);
    }
    return {
      stop: async () => {
        for (const c of [cli, srv]) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
        await waitFor('iperf3 to exit', 10000, () => (cli.exitCode !== null || cli.signalCode !== null) && (srv.exitCode !== null || srv.signalCode !== null));
      },
    };
  }

  /**
   * `flowpath diagnose --json --peer <B>` in node A during an iperf3 flow A -> B (started here, with
   * iperf3 arguments `iperfArgs`, and stopped when diagnose ends). Returns diagnose's JSON. With a worker
   * (startDiagnoseWorker) the run happens in that process; without, through the CLI (dist/src/cli.js).
   */
  async diagnoseFlow<T>(iperfArgs: readonly string[], seconds: number, worker?: DiagnoseWorker): Promise<T> {
    const flow = await this.iperf(iperfArgs);
    let out: { stdout: string; stderr: string; code: number };
    try {
      await sleep(1500);
      const args = ['--flow', `dport = 5201 and dst ${this.b.ip}`, '--duration', `${seconds}s`, '--json', '--peer', `http://${this.b.ip}:9632`, '--peer.timeout=60s', `--ovs.rundir=${this.a.ovsDir}`, '--ovs.timeout=20s'];
      progress(`${this.tag}: diagnose ${worker ? 'in the worker' : 'through the CLI'}`);
      out = worker ? await worker.run(args) : await shAsync('ip', ['netns', 'exec', this.a.ns, process.execPath, CLI, 'diagnose', ...args], 240000);
    } finally {
      await flow.stop();
    }
    if (out.code !== 0) throw new Error(`flowpath diagnose exited ${out.code}:\n${out.stderr}\n${out.stdout}`);
    return JSON.parse(out.stdout) as T;
  }

  /** A diagnose worker (./diagnose-worker.ts) in node A's namespace; stopped by stop(). */
  async startDiagnoseWorker(): Promise<DiagnoseWorker> {
    progress(`${this.tag}: diagnose worker`);
    const c = this.spawnIn(this.a.ns, process.execPath, [path.join(__dirname, 'diagnose-worker.js')]);
    c.stdin?.setDefaultEncoding('utf8');
    let buf = '';
    let err = '';
    const waiting: Array<(line: string) => void> = [];
    const lines: string[] = [];
    c.stdout?.setEncoding('utf8').on('data', (s: string) => {
      buf += s;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const l = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const w = waiting.shift();
        if (w) w(l);
        else lines.push(l);
      }
    });
    c.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
    const next = (timeoutMs: number) =>
      new Promise<string>((resolve, reject) => {
        const l = lines.shift();
        if (l !== undefined) return resolve(l);
        const t = setTimeout(() => reject(new Error(`diagnose worker: no answer in ${timeoutMs} ms; stderr:\n${err}`)), timeoutMs);
        waiting.push((x) => {
          clearTimeout(t);
          resolve(x);
        });
        c.once('exit', (code) => reject(new Error(`diagnose worker exited ${code}: ${err}`)));
      });
    const ready = await next(240000);
    if (ready !== 'ready') throw new Error(`diagnose worker said ${ready}: ${err}`);
    return {
      run: async (args) => {
        c.stdin!.write(JSON.stringify(args) + '\n');
        return JSON.parse(await next(240000)) as { code: number; stdout: string; stderr: string };
      },
    };
  }

  async stop(): Promise<void> {
    progress(`${this.tag}: topology down`);
    for (const c of [...this.children]) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const f of this.pidfiles.splice(0).reverse()) {
      try {
        const pid = Number(fs.readFileSync(f, 'utf8').trim());
        if (pid > 0 && alive(pid)) process.kill(pid, 'SIGTERM');
        for (let i = 0; i < 50 && pid > 0 && alive(pid); i++) await sleep(50);
        if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
      } catch {
        /* never started */
      }
    }
    for (const ns of this.createdNs.splice(0).reverse()) {
      try {
        for (const p of sh('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean).map(Number)) if (alive(p)) process.kill(p, 'SIGKILL');
        sh('ip', ['netns', 'del', ns]);
      } catch {
        /* gone */
      }
    }
    for (const l of this.createdLinks.splice(0)) {
      try {
        sh('ip', ['link', 'del', l]);
      } catch {
        /* went with its namespace peer */
      }
    }
    for (const n of [this.a, this.b]) fs.rmSync(n.ovsDir, { recursive: true, force: true });
  }
}

export interface DiagnoseWorker {
  run(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

export interface Exporter {
  url: string;
  scrape(): Promise<string>;
  log(): string;
  stop(): Promise<void>;
}

export type Series = Map<string, number>;

/** Exposition text -> "name{labels}" -> value. */
export function parseExposition(text: string): Series {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    const v = line.slice(sp + 1);
    m.set(line.slice(0, sp), v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v));
  }
  return m;
}

/** The series of a family whose labels include every given pair. */
export function pick(s: Series, name: string, labels: Record<string, string> = {}): Array<{ key: string; labels: Record<string, string>; value: number }> {
  const out: Array<{ key: string; labels: Record<string, string>; value: number }> = [];
  for (const [k, v] of s) {
    const brace = k.indexOf('{');
    const n = brace < 0 ? k : k.slice(0, brace);
    if (n !== name) continue;
    const l: Record<string, string> = {};
    for (const m of k.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) l[m[1]] = m[2];
    if (Object.entries(labels).every(([a, b]) => l[a] === b)) out.push({ key: k, labels: l, value: v });
  }
  return out;
}

/** Exactly one series of the family with these labels: its value. */
export function one(s: Series, name: string, labels: Record<string, string> = {}): number {
  const p = pick(s, name, labels);
  if (p.length !== 1) throw new Error(`want exactly one ${name}${JSON.stringify(labels)}, found ${p.length}: ${p.map((x) => x.key).join(', ')}`);
  return p[0].value;
}

/** Append a JSON line to the results share (the host test prints and keeps it). */
export function record(file: string, obj: unknown): void {
  fs.appendFileSync(path.join(RESULTS, file), JSON.stringify(obj) + '\n');
}

/**
 * One line "<guest uptime> s <what>" in RESULTS/progress. node's test runner reports a test only when it
 * ends, so a step that hangs shows nothing there; when the guest overruns its time lab/vm/run prints this
 * file's tail instead.
 */
export function progress(what: string): void {
  fs.appendFileSync(path.join(RESULTS, 'progress'), `${uptimeSeconds().toFixed(2)} s ${what}\n`);
}

/**
 * Bounds for each guest test and hook (node:test options), so a test that hangs fails by name and the
 * others still run. The longest test takes 45-100 s under TCG. (node's --test-timeout would bound a
 * whole file instead.)
 */
export const TIMEOUT = { test: { timeout: 300_000 }, before: { timeout: 300_000 }, after: { timeout: 120_000 } } as const;
