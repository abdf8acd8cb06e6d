/**
 * Helpers for jest tests that need the lab (root, network namespaces, OVS userspace datapath).
 * They drive the bash scripts in lab/ (lab/up, lab/flow, lab/exporter, lab/down) so a test sees exactly
 * what a user sees. Names and addresses follow the same environment overrides as lab/lib.sh.
 *
 * Usage:
 *   const d = labSkipReason() ? describe.skip : describe;
 *   d('...', () => {
 *     beforeAll(() => labUp({ topo: 'ovs' }), 30_000);
 *     afterAll(() => labDown(), 30_000);
 *     it('...', async () => {
 *       const flow = await startFlow('pace', { cc: 'cubic', seconds: 5 });
 *       const { stdout } = await nsExec(NS_A, 'ss', ['-tinH', `dst ${B_IP}`]);
 *       const result = await flow.done;            // or: await flow.stop();
 *     });
 *   });
 *
 * Only one lab exists per machine (fixed namespace, link and OVS names), so labUp() takes a lock
 * (`${LAB_DIR}.lock`, owner pid inside) that labDown() releases: lab test files running in parallel jest
 * workers wait for each other instead of tearing each other's lab down. labUp() always passes --force,
 * i.e. it replaces a lab left over from an earlier (crashed) run.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export type Topo = 'ovs' | 'veth';
export type Condition = 'base' | 'pace' | 'app' | 'rwnd' | 'sndbuf' | 'bneck' | 'loss';
export type CongestionControl = 'cubic' | 'bbr' | 'reno';
export const CONDITIONS: readonly Condition[] = ['base', 'pace', 'app', 'rwnd', 'sndbuf', 'bneck', 'loss'];

const env = process.env;
export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const LAB_SCRIPTS = path.join(REPO_ROOT, 'lab');
export const LAB_DIR = env.LAB_DIR ?? '/tmp/flowpath-lab';
export const LAB_STATE = path.join(LAB_DIR, 'state');
export const NS_A = env.LAB_NS_A ?? 'fp-a';
export const NS_B = env.LAB_NS_B ?? 'fp-b';
export const A_IP = env.A_IP ?? '1.1.1.3';
export const B_IP = env.B_IP ?? '1.1.1.2';
export const LAB_PREFIX = Number(env.LAB_PREFIX ?? 24);
export const IPERF_PORT = Number(env.LAB_IPERF_PORT ?? 5201);
/** ovs topology: the veth pair that is the physical link (root netns) and the OVS objects. */
export const WIRE_A = env.LAB_WIRE_A ?? 'wire-a';
export const WIRE_B = env.LAB_WIRE_B ?? 'wire-b';
export const BR_A = env.LAB_BR_A ?? 'br-a';
export const BR_B = env.LAB_BR_B ?? 'br-b';
export const INT_A = env.LAB_INT_A ?? 'a-int';
export const INT_B = env.LAB_INT_B ?? 'b-int';
export const OVS_DP_TAP = 'ovs-netdev';
export const OVS_DIR = path.join(LAB_DIR, 'ovs');
export const OVS_UNIXCTL = path.join(OVS_DIR, 'ovs-vswitchd.ctl');
export const OVS_DB_SOCK = path.join(OVS_DIR, 'db.sock');
/** veth topology: device name inside each node namespace, and the ifb that carries the wire shaper. */
export const VETH_DEV = 'eth0';
export const VETH_IFB = env.LAB_VETH_IFB ?? 'ifb-wire';
/** Default listen address of lab/exporter inside a node namespace. */
export const EXPORTER_ADDR = '127.0.0.1:9632';

/** The device holding the node's address in each topology. */
export function nodeDevice(topo: Topo, node: 'a' | 'b'): string {
  if (topo === 'veth') return VETH_DEV;
  return node === 'a' ? INT_A : INT_B;
}

// ------------------------------------------------------------------------------------------------
// Availability

function commandExists(cmd: string): boolean {
  return (env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')
    .split(':')
    .concat(['/usr/sbin', '/sbin'])
    .some((dir) => {
      try {
        fs.accessSync(path.join(dir, cmd), fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

/**
 * Why lab tests cannot run here (not root, no `ip netns`), or null when they can. Missing tools
 * (OVS, iperf3, ...) are not a reason to skip: labUp() then fails with the list of missing commands.
 */
export function labSkipReason(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return 'lab tests need root (network namespaces, veth, tc, OVS); run as root';
  }
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'pipe' });
  } catch (e) {
    return `lab tests need network namespace support (ip netns list failed: ${(e as Error).message})`;
  }
  return null;
}

const LAB_TOOLS = ['ip', 'tc', 'ethtool', 'ping', 'ss', 'iperf3', 'ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-appctl'];

/** Commands the lab needs that are not installed (empty when all are there). */
export function labMissingTools(): string[] {
  return LAB_TOOLS.filter((c) => !commandExists(c));
}

/** Root, `ip netns` and every lab tool (OVS binaries included) present. */
export function labAvailable(): boolean {
  return labSkipReason() === null && labMissingTools().length === 0;
}

// ------------------------------------------------------------------------------------------------
// Running things

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/** Run a command; rejects with an Error naming the command, exit code and stderr when it fails. */
export function run(cmd: string, args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      [...args],
      { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, env: process.env },
      (err, stdout, stderr) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException & { code?: unknown }).code;
          reject(new Error(`${cmd} ${args.join(' ')} failed (${code ?? err.message}): ${String(stderr).trim() || err.message}`));
        } else {
          resolve({ stdout: String(stdout), stderr: String(stderr) });
        }
      },
    );
  });
}

/** Run a command inside network namespace `ns` (`ip netns exec ns cmd args...`). */
export function nsExec(ns: string, cmd: string, args: readonly string[] = [], opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

/** Run one of the lab scripts (lab/up, lab/flow, ...). */
export function labScript(name: 'up' | 'down' | 'flow' | 'exporter', args: readonly string[] = [], opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
  return run(path.join(LAB_SCRIPTS, name), args, opts);
}

// ------------------------------------------------------------------------------------------------
// Lock: one lab per machine

const LOCK_DIR = `${LAB_DIR}.lock`;
const LOCK_OWNER = path.join(LOCK_DIR, 'owner');

function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function tryLock(): boolean {
  try {
    fs.mkdirSync(LOCK_DIR);
    fs.writeFileSync(LOCK_OWNER, String(process.pid));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  let owner = NaN;
  try {
    owner = Number(fs.readFileSync(LOCK_OWNER, 'utf8').trim());
  } catch {
    // owner file not written yet (another process is between mkdir and write) or removed
  }
  if (owner === process.pid) return true;
  if (Number.isInteger(owner) && owner > 0 && !pidAlive(owner)) {
    fs.rmSync(LOCK_DIR, { recursive: true, force: true }); // stale: its owner is gone
  }
  return false;
}

async function acquireLabLock(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (tryLock()) return;
    if (Date.now() > deadline) {
      let owner = '?';
      try {
        owner = fs.readFileSync(LOCK_OWNER, 'utf8').trim();
      } catch {
        /* ignore */
      }
      throw new Error(`the lab is in use by process ${owner} (lock ${LOCK_DIR}); lab tests must not run concurrently`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

function releaseLabLock(): void {
  try {
    if (Number(fs.readFileSync(LOCK_OWNER, 'utf8').trim()) === process.pid) {
      fs.rmSync(LOCK_DIR, { recursive: true, force: true });
    }
  } catch {
    // not ours or not there
  }
}

// ------------------------------------------------------------------------------------------------
// Lab up / down

export interface LabUpOptions {
  topo: Topo;
  /** Link rate on the wire, tc syntax (e.g. '200mbit'). */
  rate?: string;
  /** How long to wait for another process's lab to be released (default 45 s). */
  lockTimeoutMs?: number;
}

export interface LabInfo {
  topo: Topo;
  /** Setup time reported by lab/up, in seconds. */
  setupSeconds: number;
  output: string;
}

/** Build the lab (replacing any existing one). Takes the machine-wide lab lock. */
export async function labUp(opts: LabUpOptions): Promise<LabInfo> {
  await acquireLabLock(opts.lockTimeoutMs ?? 45_000);
  const args = ['--force', '--topo', opts.topo];
  if (opts.rate !== undefined) args.push('--rate', opts.rate);
  try {
    const { stdout } = await labScript('up', args, { timeoutMs: 60_000 });
    const m = /setup took ([0-9.]+) s/.exec(stdout);
    return { topo: opts.topo, setupSeconds: m ? Number(m[1]) : NaN, output: stdout };
  } catch (e) {
    releaseLabLock();
    throw e;
  }
}

/** Remove everything the lab created; releases the lab lock. Safe to call when the lab is down. */
export async function labDown(): Promise<{ teardownSeconds: number; output: string }> {
  try {
    const { stdout } = await labScript('down', [], { timeoutMs: 60_000 });
    const m = /teardown took ([0-9.]+) s/.exec(stdout);
    return { teardownSeconds: m ? Number(m[1]) : NaN, output: stdout };
  } finally {
    releaseLabLock();
  }
}

// ------------------------------------------------------------------------------------------------
// Flows

export interface FlowOptions {
  cc?: CongestionControl;
  seconds?: number;
  /** Where lab/flow copies iperf3's JSON result (default: a file in os tmpdir, removed after parsing). */
  json?: string;
}

export interface FlowResult {
  condition: Condition;
  /** True when the flow was ended by stop() (the numbers are then NaN). */
  stopped: boolean;
  senderBitsPerSecond: number;
  receiverBitsPerSecond: number;
  retransmits: number;
  /** iperf3's full JSON output (null when stopped). */
  iperf3: unknown;
  /** lab/flow's stdout (includes its one-line summary). */
  output: string;
}

export interface Flow {
  /** pid of the iperf3 client (in node A). */
  clientPid: number;
  /** Resolves when the flow has ended and lab/flow has restored everything it changed. */
  done: Promise<FlowResult>;
  /** End the flow now (SIGTERM to lab/flow, which restores and exits); resolves when restored. */
  stop(): Promise<void>;
}

interface Iperf3Json {
  error?: string;
  end?: { sum_sent?: { bits_per_second?: number; retransmits?: number }; sum_received?: { bits_per_second?: number } };
}

/**
 * Start an iperf3 flow A -> B under `cond` (see lab/flow). Resolves once both iperf3 connections are
 * established, so the caller can observe a running flow.
 */
export function startFlow(cond: Condition, opts: FlowOptions = {}): Promise<Flow> {
  const cc = opts.cc ?? 'cubic';
  const seconds = opts.seconds ?? 10;
  const ownJson = opts.json === undefined;
  const jsonPath = opts.json ?? path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-flow-')), `flow-${cond}.json`);
  const child = spawn(path.join(LAB_SCRIPTS, 'flow'), [cond, '--cc', cc, '--time', String(seconds), '--json', jsonPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: process.env,
  });
  let stdout = '';
  let stderr = '';
  let stopping = false;
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));

  const exited = new Promise<number | null>((resolve) => {
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : null)));
  });

  const done: Promise<FlowResult> = exited.then((code) => {
    const cleanup = (): void => {
      if (ownJson) fs.rmSync(path.dirname(jsonPath), { recursive: true, force: true });
    };
    if (stopping) {
      cleanup();
      return {
        condition: cond, stopped: true, senderBitsPerSecond: NaN, receiverBitsPerSecond: NaN,
        retransmits: NaN, iperf3: null, output: stdout,
      };
    }
    if (code !== 0) {
      cleanup();
      throw new Error(`lab/flow ${cond} failed (exit ${code}): ${stderr.trim()}`);
    }
    let j: Iperf3Json;
    try {
      j = JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as Iperf3Json;
    } finally {
      cleanup();
    }
    const sent = j.end?.sum_sent;
    const recv = j.end?.sum_received;
    if (j.error || sent?.bits_per_second === undefined || recv?.bits_per_second === undefined) {
      throw new Error(`lab/flow ${cond}: iperf3 JSON has no result (${j.error ?? 'no end.sum_sent/sum_received'})`);
    }
    return {
      condition: cond, stopped: false, senderBitsPerSecond: sent.bits_per_second, receiverBitsPerSecond: recv.bits_per_second,
      retransmits: sent.retransmits ?? NaN, iperf3: j, output: stdout,
    };
  });
  done.catch(() => undefined); // a caller that never awaits `done` must not cause an unhandled rejection

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) {
      await exited;
      return;
    }
    stopping = true;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
    // If lab/flow had to be killed, its restore records are still there: undo them now.
    await labScript('flow', ['--stop']);
  };

  return new Promise<Flow>((resolve, reject) => {
    const onData = (): void => {
      const m = /flow started: client_pid=(\d+)/.exec(stdout);
      if (m) {
        child.stdout.off('data', onData);
        resolve({ clientPid: Number(m[1]), done, stop });
      }
    };
    child.stdout.on('data', onData);
    void exited.then((code) => {
      if (!/flow started: /.test(stdout)) reject(new Error(`lab/flow ${cond} did not start (exit ${code}): ${stderr.trim()}`));
    });
  });
}

// ------------------------------------------------------------------------------------------------
// Exporter

export interface Exporter {
  pid: number;
  ns: string;
  address: string;
  /** GET a path (default /metrics) from inside the exporter's namespace. */
  scrape(urlPath?: string): Promise<string>;
  stop(): Promise<void>;
}

/** node -e script: GET argv[1], print the body, exit 1 on a non-2xx status or error (no curl needed). */
const HTTP_GET = [
  "require('http').get(process.argv[1], (r) => {",
  "  let b = ''; r.setEncoding('utf8'); r.on('data', (c) => (b += c));",
  "  r.on('end', () => { process.stdout.write(b); if ((r.statusCode ?? 0) >= 300) { console.error('HTTP ' + r.statusCode); process.exit(1); } });",
  "}).on('error', (e) => { console.error(e.message); process.exit(1); });",
].join('\n');

/**
 * Start flowpath in a node namespace via `lab/exporter NODE --background -- FLAGS` (needs `npm run build`,
 * or FLOWPATH_CLI in the environment). Resolves once it listens.
 */
export async function startExporter(node: 'a' | 'b', flags: readonly string[] = []): Promise<Exporter> {
  const { stdout } = await labScript('exporter', [node, '--background', '--', ...flags]);
  const pid = Number(stdout.trim().split('\n').pop());
  const ns = node === 'a' ? NS_A : NS_B;
  const given = flags.find((f) => f.startsWith('--web.listen-address='));
  const address = given ? given.slice(given.indexOf('=') + 1) : EXPORTER_ADDR;
  return {
    pid,
    ns,
    address,
    scrape: async (urlPath = '/metrics') => (await nsExec(ns, process.execPath, ['-e', HTTP_GET, `http://${address}${urlPath}`])).stdout,
    stop: async () => {
      await labScript('exporter', [node, '--stop']);
    },
  };
}
