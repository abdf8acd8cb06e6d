// A private two-namespace topology with one device per qdisc shape the kernel of the test VM has
// (mq with children, htb with classes and leaf qdiscs, tbf with a child, pfifo_fast + ingress, a bridge
// and veths with noqueue). Needs root and iproute2. Used by test/live/qdisc.vs-tc.test.ts and by
// test/fixtures/qdisc/capture-live.ts. Everything lives in the two namespaces, so `down()` (deleting
// them) removes every device; nothing touches the root namespace.
//
//   ns A                                   ns B
//   v0  mq 1: (4 TX queues, pfifo_fast x4)  --  w0  10.201.0.2
//   v1  htb 1: classes 1:1 1:10 1:20,        --  w1  10.201.1.2
//       pfifo 10: under 1:10, bfifo 20: under 1:20 (default class 1:10, 1 Mbit)
//   v2  tbf 1: 1 Mbit, pfifo 2: under 1:1    --  w2  10.201.2.2
//   v3  pfifo_fast root + ingress            --  w3  10.201.3.2
//   br0 (noqueue) 10.201.4.1 with port v4    --  w4  10.201.4.2

import { spawnSync } from 'child_process';

export interface Topology {
  nsA: string;
  nsB: string;
  down(): void;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

export function canCreateNetns(): boolean {
  return process.getuid?.() === 0 && spawnSync('ip', ['-V']).status === 0 && spawnSync('tc', ['-V']).status === 0;
}

export function ipns(ns: string, ...args: string[]): string {
  return run('ip', ['-n', ns, ...args]);
}

export function inNs(ns: string, cmd: string, args: string[]): string {
  return run('ip', ['netns', 'exec', ns, cmd, ...args]);
}

export function up(tag = `${process.pid}`): Topology {
  const nsA = `fpq-${tag}-a`;
  const nsB = `fpq-${tag}-b`;
  const down = () => {
    for (const ns of [nsA, nsB]) spawnSync('ip', ['netns', 'del', ns]);
  };
  try {
    run('ip', ['netns', 'add', nsA]);
    run('ip', ['netns', 'add', nsB]);
    for (const ns of [nsA, nsB]) {
      // No IPv6 autoconfiguration traffic (RS, DAD, MLD) moving counters behind the test's back.
      inNs(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
      ipns(ns, 'link', 'set', 'lo', 'up');
    }
    for (let i = 0; i <= 4; i++) {
      const q = i === 0 ? ['numtxqueues', '4', 'numrxqueues', '4'] : [];
      ipns(nsA, 'link', 'add', `v${i}`, ...q, 'type', 'veth', 'peer', 'name', `w${i}`, 'netns', nsB, ...q);
    }
    const tc = (...a: string[]) => run('tc', ['-n', nsA, ...a]);
    tc('qdisc', 'add', 'dev', 'v0', 'root', 'handle', '1:', 'mq');
    tc('qdisc', 'add', 'dev', 'v1', 'root', 'handle', '1:', 'htb', 'default', '10');
    tc('class', 'add', 'dev', 'v1', 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '10mbit');
    tc('class', 'add', 'dev', 'v1', 'parent', '1:1', 'classid', '1:10', 'htb', 'rate', '1mbit', 'ceil', '1mbit');
    tc('class', 'add', 'dev', 'v1', 'parent', '1:1', 'classid', '1:20', 'htb', 'rate', '5mbit');
    tc('qdisc', 'add', 'dev', 'v1', 'parent', '1:10', 'handle', '10:', 'pfifo', 'limit', '20');
    tc('qdisc', 'add', 'dev', 'v1', 'parent', '1:20', 'handle', '20:', 'bfifo', 'limit', '100000');
    tc('qdisc', 'add', 'dev', 'v2', 'root', 'handle', '1:', 'tbf', 'rate', '1mbit', 'burst', '10k', 'latency', '20ms');
    tc('qdisc', 'add', 'dev', 'v2', 'parent', '1:1', 'handle', '2:', 'pfifo', 'limit', '10');
    tc('qdisc', 'add', 'dev', 'v3', 'root', 'pfifo_fast');
    tc('qdisc', 'add', 'dev', 'v3', 'ingress');
    ipns(nsA, 'link', 'add', 'br0', 'type', 'bridge');
    ipns(nsA, 'link', 'set', 'v4', 'master', 'br0');
    for (let i = 0; i <= 4; i++) {
      const a = i === 4 ? 'br0' : `v${i}`;
      ipns(nsA, 'addr', 'add', `10.201.${i}.1/24`, 'dev', a);
      ipns(nsB, 'addr', 'add', `10.201.${i}.2/24`, 'dev', `w${i}`);
      ipns(nsB, 'link', 'set', `w${i}`, 'up');
      ipns(nsA, 'link', 'set', `v${i}`, 'up');
    }
    ipns(nsA, 'link', 'set', 'br0', 'up');
  } catch (e) {
    down();
    throw e;
  }
  return { nsA, nsB, down };
}

/** Send ICMP through every device of ns A: `count` echo requests of `size` bytes, 2 ms apart. */
export function traffic(t: Topology, count = 40, size = 1200): void {
  for (let i = 0; i <= 4; i++) {
    // Exit status 1 (some replies lost) is expected where tbf/htb drop; only failures to run matter.
    const r = spawnSync('ip', ['netns', 'exec', t.nsA, 'ping', '-q', '-c', String(count), '-i', '0.002', '-s', String(size), '-W', '1', `10.201.${i}.2`], { encoding: 'utf8' });
    if (r.error) throw r.error;
    if (r.status !== 0 && r.status !== 1) throw new Error(`ping 10.201.${i}.2 failed: ${r.stderr}`);
  }
}
