// The sender's CPU as evidence, live: two writer processes send over loopback TCP to a sink, one
// CPU-bound (it spins between small writes, so it leaves the socket empty because it is busy), one that
// sleeps between the same writes (empty by choice). The diagnosis sampler, with the live sources, finds
// each socket's process through /proc/PID/fd (checked against the child's pid), reads its threads, and
// must call the first CPU-bound (sender-cpu limiting, app-limited only suspect: "busy, not idle by
// choice") and the second idle by choice (app-limited limiting, sender-cpu ok).
//
// Needs python3 (scripts/install-test-deps) and sock_diag; no root (the processes are this user's).
// Robust on a loaded machine: "CPU-bound" is run + wait (schedstat), so a spinning writer that gets
// half a core still wanted all of it. The sink is a process of its own, reading in a blocking loop: a
// sink in this (jest) process stops reading whenever its event loop is busy, the writer then blocks in
// sendall on a full socket, and a blocked writer is rightly not CPU-bound (seen in CI: demand 0.62).

import { ChildProcess, spawn } from 'child_process';
import * as net from 'net';
import { LiveNodeSource, SockDiagFlowSource } from '../../src/diagnosis/adapters';
import { DEFAULT_SAMPLER_OPTIONS, Sampler } from '../../src/diagnosis/sampler';
import type { FlowKey, Verdict } from '../../src/diagnosis/types';

const WRITER_PY = `
import socket, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(('127.0.0.1', port))
print(s.getsockname()[1], flush=True)
buf = b'x' * 1000
while True:
    s.sendall(buf)
    if mode == 'spin':
        x = 0
        for i in range(20000):
            x += i
    else:
        time.sleep(0.01)
`;

const SINK_PY = `
import socket, threading
srv = socket.socket()
srv.bind(('127.0.0.1', 0))
srv.listen(16)
print(srv.getsockname()[1], flush=True)
def drain(c):
    while c.recv(1 << 20):
        pass
while True:
    c, _ = srv.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
`;

let port = 0;
const children: ChildProcess[] = [];

/** A python3 child that prints one port number when it is ready. */
function startPython(what: string, script: string, args: string[]): Promise<{ child: ChildProcess; localPort: number }> {
  const child = spawn('python3', ['-c', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.on('error', reject);
    child.on('exit', (c) => reject(new Error(`${what} exited early (${c})`)));
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = /^(\d+)\n/.exec(out);
      if (m) resolve({ child, localPort: Number(m[1]) });
    });
  });
}

const startWriter = (mode: 'spin' | 'sleep') => startPython(`writer (${mode})`, WRITER_PY, [String(port), mode]);

beforeAll(async () => {
  port = (await startPython('sink', SINK_PY, [])).localPort;
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

it('a CPU-bound writer is named as the limit; a sleeping one is idle by choice', async () => {
  const spin = await startWriter('spin');
  const sleep = await startWriter('sleep');
  const flows = new SockDiagFlowSource({ watch: `dport = ${port}`, candidates: `state established and dport = ${port}` });
  const node = new LiveNodeSource({ procfs: '/proc', sysfs: '/sys', ovs: null, ovsIntervalMs: 1000 });
  const sampler = new Sampler({ ...DEFAULT_SAMPLER_OPTIONS, rateHz: 20, top: 0, discoverIntervalMs: 0, nodeIntervalMs: 500 }, flows, node);
  try {
    const found = await flows.discover();
    const keyOf = (p: number): FlowKey => {
      const d = found.find((x) => x.key.localPort === p && x.key.peerPort === port);
      if (!d) throw new Error(`flow from port ${p} not found`);
      return d.key;
    };
    const kSpin = keyOf(spin.localPort);
    const kSleep = keyOf(sleep.localPort);
    sampler.pin(kSpin, 60);
    sampler.pin(kSleep, 60);
    await sampler.tick(); // the sockets' inodes, so the first node snapshot reads their owners
    await sampler.snapshotNode();
    sampler.start();
    await new Promise((r) => setTimeout(r, 3000));
    await sampler.stop();
    await sampler.snapshotNode();

    const check = (k: FlowKey, pid: number | undefined) => {
      const ev = sampler.evidence(k, 5);
      const inode = ev.flow?.last.inode;
      expect(inode).toBeGreaterThan(0);
      const owner = ev.nodeSummary?.owners?.find((o) => o.inode === inode);
      expect(owner?.unknown).toBeUndefined();
      expect(owner?.pids).toEqual([pid]);
      expect(owner?.threads[0]?.pid).toBe(pid);
      return { v: sampler.diagnose(k, 5), writer: owner?.threads[0] };
    };
    const byRule = (v: Verdict, id: string) => v.findings.find((f) => f.rule === id);

    const a = check(kSpin, spin.child.pid);
    expect(a.writer?.demand).toBeGreaterThanOrEqual(0.9);
    expect(byRule(a.v, 'sender-cpu')?.status).toBe('limiting');
    expect(byRule(a.v, 'sender-cpu')?.summary).toMatch(/CPU-bound( and starved of CPU)?: it ran \d+(\.\d+)?% of a core on CPU \d+/);
    expect(byRule(a.v, 'app-limited')?.summary).toMatch(/the writer was busy, not idle by choice/);
    expect(a.v.top?.rule).toBe('sender-cpu');

    const b = check(kSleep, sleep.child.pid);
    expect(b.writer?.demand).toBeLessThan(0.5);
    expect(byRule(b.v, 'sender-cpu')?.status).toBe('ok');
    expect(byRule(b.v, 'app-limited')?.status).toBe('limiting');
    expect(byRule(b.v, 'app-limited')?.summary).toMatch(/the writer was idle by choice/);
  } finally {
    sampler.close();
  }
}, 30_000);

it('openedConnections counts the connections established in this namespace (Tcp ActiveOpens + PassiveOpens)', async () => {
  const flows = new SockDiagFlowSource({ watch: '' });
  try {
    const before = flows.openedConnections();
    expect(before).toBeGreaterThanOrEqual(0);
    const c = net.connect(port, '127.0.0.1');
    await new Promise<void>((r, j) => c.on('connect', () => r()).on('error', j));
    c.destroy();
    // loopback: one active open (the client) and one passive open (the sink); other processes may add more
    expect((flows.openedConnections() ?? 0) - (before ?? 0)).toBeGreaterThanOrEqual(2);
  } finally {
    flows.close();
  }
});
