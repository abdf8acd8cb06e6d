/**
 * End-to-end checks of the lab scripts (lab/up, lab/flow, lab/exporter, lab/down) on this machine:
 * both topologies come up with working, isolated addressing; an iperf3 flow under a condition really
 * gets that condition (observed with ss / sysctl / tc while it runs) and everything is restored after
 * it; lab/down leaves no namespace, link or process behind. Needs root and network namespaces.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  A_IP, B_IP, BR_A, BR_B, INT_A, INT_B, LAB_STATE, NS_A, NS_B, OVS_DB_SOCK, OVS_DIR, OVS_DP_TAP, OVS_UNIXCTL,
  VETH_DEV, VETH_IFB, WIRE_A, WIRE_B, Condition, Flow, Topo,
  labDown, labScript, labSkipReason, labUp, nsExec, run, startExporter, startFlow,
} from './lab';

const skip = labSkipReason();
if (skip) {
  // eslint-disable-next-line no-console
  console.warn(`SKIPPING test/lab/lab-scripts.test.ts: ${skip}`);
}
const d = skip ? describe.skip : describe;

async function linkExists(name: string, ns?: string): Promise<boolean> {
  const args = ns ? ['-n', ns, 'link', 'show', 'dev', name] : ['link', 'show', 'dev', name];
  return run('ip', args).then(() => true, () => false);
}

async function netnsNames(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout.split('\n').map((l) => l.split(' ')[0]).filter((n) => n !== '');
}

function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** pids of the processes recorded in the lab state file (pidfile records). */
function recordedPids(): number[] {
  const pids: number[] = [];
  for (const line of fs.readFileSync(LAB_STATE, 'utf8').split('\n')) {
    const [kind, file] = line.split(' ');
    if (kind === 'pidfile' && file && fs.existsSync(file)) pids.push(Number(fs.readFileSync(file, 'utf8').trim()));
  }
  return pids;
}

async function ping(ns: string, from: string, to: string): Promise<void> {
  await nsExec(ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', '-I', from, to]);
}

async function expectNoDefaultRoute(ns: string): Promise<void> {
  expect((await run('ip', ['-n', ns, '-4', 'route', 'show', 'default'])).stdout.trim()).toBe('');
  expect((await run('ip', ['-n', ns, '-6', 'route', 'show', 'default'])).stdout.trim()).toBe('');
}

async function expectAddressesOnlyInNamespaces(): Promise<void> {
  const root = (await run('ip', ['-4', '-o', 'addr', 'show'])).stdout;
  expect(root).not.toMatch(new RegExp(`inet ${A_IP.replace(/\./g, '\\.')}/`));
  expect(root).not.toMatch(new RegExp(`inet ${B_IP.replace(/\./g, '\\.')}/`));
}

/** Everything a condition may change: per-netns TCP buffer sysctls, qdiscs, the veth shaper's ifb and offloads. */
async function snapshot(topo: Topo): Promise<Record<string, string>> {
  const s: Record<string, string> = {};
  const norm = (t: string): string => t.replace(/qdisc (\S+) [0-9a-f]+:/g, 'qdisc $1 H:').trim();
  for (const ns of [NS_A, NS_B]) {
    for (const key of ['net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem']) {
      s[`${ns} ${key}`] = (await nsExec(ns, 'sysctl', ['-n', key])).stdout.trim();
    }
    s[`${ns} qdiscs`] = norm((await nsExec(ns, 'tc', ['qdisc', 'show'])).stdout);
    s[`${ns} links`] = (await run('ip', ['-n', ns, '-o', 'link', 'show'])).stdout.replace(/\d+: /g, '').replace(/ \\.*$/gm, '');
  }
  if (topo === 'ovs') {
    for (const dev of [WIRE_A, WIRE_B]) s[`qdisc ${dev}`] = norm((await run('tc', ['qdisc', 'show', 'dev', dev])).stdout);
  } else {
    s[`${NS_A} offloads`] = (await nsExec(NS_A, 'ethtool', ['-k', VETH_DEV])).stdout;
    s[`${NS_B} offloads`] = (await nsExec(NS_B, 'ethtool', ['-k', VETH_DEV])).stdout;
  }
  return s;
}

/** Run checks against a running flow; a failing check stops the flow so later tests start clean. */
async function whileRunning(flow: Flow, checks: () => Promise<void>): Promise<void> {
  try {
    await checks();
  } catch (e) {
    await flow.stop();
    throw e;
  }
}

/** ss line(s) of the iperf3 connections from A to B, as seen on the sender. */
async function senderSs(): Promise<string> {
  return (await nsExec(NS_A, 'ss', ['-tinH', `dst ${B_IP} and dport = :5201`])).stdout;
}

d('lab scripts', () => {
  afterAll(async () => {
    await labDown();
  }, 30_000);

  describe('veth topology', () => {
    it('comes up with both nodes reachable, no default route and no address outside the namespaces', async () => {
      await labUp({ topo: 'veth' });
      await ping(NS_A, A_IP, B_IP);
      await ping(NS_B, B_IP, A_IP);
      for (const ns of [NS_A, NS_B]) await expectNoDefaultRoute(ns);
      await expectAddressesOnlyInNamespaces();
      expect((await run('ip', ['-n', NS_A, '-4', '-o', 'addr', 'show', 'dev', VETH_DEV])).stdout).toContain(`inet ${A_IP}/24`);
      expect((await run('ip', ['-n', NS_B, '-4', '-o', 'addr', 'show', 'dev', VETH_DEV])).stdout).toContain(`inet ${B_IP}/24`);
    }, 30_000);

    it('refuses a second lab/up without --force', async () => {
      await expect(labScript('up', ['--topo', 'veth'])).rejects.toThrow(/already up/);
      expect(await netnsNames()).toEqual(expect.arrayContaining([NS_A, NS_B])); // and left the lab alone
    });

    it('puts the bneck shaper behind the receiver and removes it again', async () => {
      const before = await snapshot('veth');
      const flow = await startFlow('bneck', { seconds: 2 });
      await whileRunning(flow, async () => {
        expect((await nsExec(NS_B, 'tc', ['qdisc', 'show', 'dev', VETH_IFB])).stdout).toMatch(/tbf .*rate 200Mbit/);
      });
      const r = await flow.done;
      expect(r.receiverBitsPerSecond).toBeGreaterThan(0);
      expect(r.receiverBitsPerSecond).toBeLessThan(220e6); // shaped to 200 Mbit/s
      expect(await snapshot('veth')).toEqual(before);
      expect(await linkExists(VETH_IFB, NS_B)).toBe(false);
    }, 30_000);

    it('lab/down removes the namespaces', async () => {
      await labDown();
      const names = await netnsNames();
      expect(names).not.toContain(NS_A);
      expect(names).not.toContain(NS_B);
      expect(fs.existsSync(LAB_STATE)).toBe(false);
    }, 30_000);
  });

  describe('ovs topology (userspace datapath)', () => {
    const RATE = '300mbit';

    it('comes up: private OVS, internal ports in the nodes, bare wire, pings both ways', async () => {
      await labUp({ topo: 'ovs', rate: RATE });
      await ping(NS_A, A_IP, B_IP);
      await ping(NS_B, B_IP, A_IP);
      for (const ns of [NS_A, NS_B]) await expectNoDefaultRoute(ns);
      await expectAddressesOnlyInNamespaces();
      expect((await run('ovs-appctl', ['-t', OVS_UNIXCTL, 'version'])).stdout).toMatch(/Open vSwitch/);
      const brs = (await run('ovs-vsctl', [`--db=unix:${OVS_DB_SOCK}`, 'list-br'])).stdout.split('\n').filter(Boolean);
      expect(brs.sort()).toEqual([BR_A, BR_B].sort());
      const dpType = (await run('ovs-vsctl', [`--db=unix:${OVS_DB_SOCK}`, 'get', 'bridge', BR_A, 'datapath_type'])).stdout.trim();
      expect(dpType).toBe('netdev');
      expect((await run('ip', ['-n', NS_A, '-4', '-o', 'addr', 'show', 'dev', INT_A])).stdout).toContain(`inet ${A_IP}/24`);
      expect((await run('ip', ['-n', NS_B, '-4', '-o', 'addr', 'show', 'dev', INT_B])).stdout).toContain(`inet ${B_IP}/24`);
      for (const w of [WIRE_A, WIRE_B]) {
        expect((await run('ip', ['-o', 'addr', 'show', 'dev', w])).stdout.trim()).toBe(''); // no IPv4, no IPv6
      }
      expect((await run('tc', ['qdisc', 'show', 'dev', WIRE_A])).stdout).toMatch(/tbf .*rate 300Mbit/);
    }, 30_000);

    it('pace: SO_MAX_PACING_RATE 100M holds the flow at ~100 Mbit/s, and nothing is left changed', async () => {
      const before = await snapshot('ovs');
      const flow = await startFlow('pace', { cc: 'cubic', seconds: 3 });
      // ss prints pacing_rate X/MAX only when the socket has a max pacing rate.
      await whileRunning(flow, async () => expect(await senderSs()).toMatch(/pacing_rate \S+\/\S+/));
      const r = await flow.done;
      expect(r.stopped).toBe(false);
      expect(r.receiverBitsPerSecond).toBeGreaterThan(60e6);
      expect(r.receiverBitsPerSecond).toBeLessThan(140e6);
      expect(await snapshot('ovs')).toEqual(before);
    }, 30_000);

    const applied: Record<Exclude<Condition, 'base' | 'pace' | 'app'>, () => Promise<void>> = {
      rwnd: async () => expect((await nsExec(NS_B, 'sysctl', ['-n', 'net.ipv4.tcp_rmem'])).stdout.split(/\s+/).slice(0, 3)).toEqual(['4096', '8192', '8192']),
      sndbuf: async () => expect((await nsExec(NS_A, 'sysctl', ['-n', 'net.ipv4.tcp_wmem'])).stdout.split(/\s+/).slice(0, 3)).toEqual(['4096', '8192', '8192']),
      bneck: async () => expect((await run('tc', ['qdisc', 'show', 'dev', WIRE_A])).stdout).toMatch(/tbf .*rate 200Mbit/),
      loss: async () => expect((await run('tc', ['qdisc', 'show', 'dev', WIRE_A])).stdout).toMatch(/tbf .*rate 500Mbit burst 3000b /),
    };
    for (const cond of Object.keys(applied) as (keyof typeof applied)[]) {
      it(`${cond}: applied while the flow runs, restored afterwards`, async () => {
        const before = await snapshot('ovs');
        const flow = await startFlow(cond, { seconds: 2 });
        await whileRunning(flow, applied[cond]);
        const r = await flow.done;
        expect(r.receiverBitsPerSecond).toBeGreaterThan(0);
        expect(await snapshot('ovs')).toEqual(before); // incl. the lab's own 300mbit tbf on wire-a
      }, 30_000);
    }

    it('app: iperf3 -b 100M limits the application', async () => {
      const flow = await startFlow('app', { seconds: 2 });
      // Not paced (no max pacing rate): the application is what limits it.
      await whileRunning(flow, async () => expect(await senderSs()).not.toMatch(/pacing_rate \S+\/\S+/));
      const r = await flow.done;
      expect(r.receiverBitsPerSecond).toBeGreaterThan(60e6);
      expect(r.receiverBitsPerSecond).toBeLessThan(140e6);
    }, 30_000);

    it('stopping a flow early restores too and leaves no iperf3 behind', async () => {
      const before = await snapshot('ovs');
      const flow = await startFlow('rwnd', { seconds: 30 });
      await whileRunning(flow, async () => {
        await applied.rwnd();
        expect(pidAlive(flow.clientPid)).toBe(true);
      });
      await flow.stop();
      const r = await flow.done;
      expect(r.stopped).toBe(true);
      expect(pidAlive(flow.clientPid)).toBe(false);
      expect(await snapshot('ovs')).toEqual(before);
      for (const ns of [NS_A, NS_B]) expect((await run('ip', ['netns', 'pids', ns])).stdout.trim()).toBe('');
    }, 30_000);

    it('lab/exporter runs the CLI inside the node namespace with the lab flags', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-fakecli-'));
      const cli = path.join(dir, 'cli.js');
      // A stand-in for dist/src/cli.js: serves its own argv on the requested listen address.
      fs.writeFileSync(cli, [
        "const a = process.argv.slice(2);",
        "const l = (a.find((x) => x.startsWith('--web.listen-address=')) || '').split('=')[1];",
        "const i = l.lastIndexOf(':');",
        "require('http').createServer((q, r) => r.end(JSON.stringify(a))).listen(+l.slice(i + 1), l.slice(0, i));",
      ].join('\n'));
      const saved = process.env.FLOWPATH_CLI;
      process.env.FLOWPATH_CLI = cli;
      try {
        const exp = await startExporter('a', ['--extra.flag=1']);
        expect(JSON.parse(await exp.scrape('/'))).toEqual([
          '--web.listen-address=127.0.0.1:9632', `--ovs.unixctl=${OVS_UNIXCTL}`, '--extra.flag=1',
        ]);
        expect((await run('ip', ['netns', 'pids', NS_A])).stdout.split('\n')).toContain(String(exp.pid));
        // Left running on purpose: lab/down must stop it.
      } finally {
        if (saved === undefined) delete process.env.FLOWPATH_CLI;
        else process.env.FLOWPATH_CLI = saved;
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }, 30_000);

    it('lab/down removes namespaces, links, processes and the OVS run dir', async () => {
      const pids = recordedPids();
      expect(pids.length).toBe(3); // ovsdb-server, ovs-vswitchd, exporter
      for (const p of pids) expect(pidAlive(p)).toBe(true);
      await labDown();
      for (const p of pids) expect(pidAlive(p)).toBe(false);
      const names = await netnsNames();
      expect(names).not.toContain(NS_A);
      expect(names).not.toContain(NS_B);
      for (const l of [WIRE_A, WIRE_B, BR_A, BR_B, INT_A, INT_B, OVS_DP_TAP]) expect(await linkExists(l)).toBe(false);
      expect(fs.existsSync(OVS_DIR)).toBe(false);
      expect(fs.existsSync(LAB_STATE)).toBe(false);
    }, 30_000);
  });
});
