// A long-lived exporter registry driven over stdin/stdout, for the fault matrix (test/live/fault-matrix.test.ts),
// which runs it inside a private network namespace (`ip netns exec`), possibly as an unprivileged user.
//
//   node -r ./test/support/ts-register.js test/support/fault-driver.ts [--flag=value ...]
//
// One JSON command per stdin line, one JSON answer per stdout line:
//   {"cmd":"scrape"}                         → {"text": exposition, "fds": n, "rss": bytes, "heap": bytes}
//   {"cmd":"arm","fault":"enobufs"|"dumpintr","context":"regex","count":n}
//        The next n netlink requests (NetlinkSocket, socket.ts) whose context matches fail like the
//        kernel's: "enobufs" drops the reply datagram and reports recvmsg ENOBUFS on the socket (the
//        receive queue overflowed); "dumpintr" sets NLM_F_DUMP_INTR on every reply message (the dump
//        raced with a change). → {"ok":true}
//   {"cmd":"disarm"}                         → {"ok":true}: every armed fault cleared
//   {"cmd":"requests","context":"regex"}     → {"n": netlink requests sent so far whose context matches}
//   {"cmd":"gc"}                             → {"ok":true} after a full GC (run with --expose-gc)
//   {"cmd":"exit"}
import * as fs from 'fs';
import * as readline from 'readline';
import { Config } from '../../src/core/flags';
import { nullLogger } from '../../src/core/log';
import { ALL_COLLECTORS } from '../../src/collectors';
import { allFlags } from '../../src/exporter';
import { Registry } from '../../src/collectors/registry';
import { NLM_F_DUMP_INTR } from '../../src/sources/netlink/attrs';
import { NetlinkSocket } from '../../src/sources/netlink/socket';

interface Armed {
  fault: 'enobufs' | 'dumpintr';
  re: RegExp;
  count: number;
  hit: Set<object>;
}
const armed: Armed[] = [];

// The seam: NetlinkSocket's datagram handler (private; reached through the prototype).
type Internals = { current: { opts: { context: string } } | null; sock: { _error(e: Error): void } | null; onDatagram(buf: Buffer): void };
const proto = NetlinkSocket.prototype as unknown as Internals;
const onDatagram = proto.onDatagram;
proto.onDatagram = function (this: Internals, buf: Buffer): void {
  const p = this.current;
  const a = p && armed.find((x) => x.re.test(p.opts.context) && (x.hit.has(p) || x.count > 0));
  if (!p || !a) return onDatagram.call(this, buf);
  if (!a.hit.has(p)) {
    a.hit.add(p);
    a.count--;
  }
  if (a.fault === 'enobufs') {
    const err = Object.assign(new Error('recvmsg: No buffer space available'), { code: 'ENOBUFS', errno: -105, syscall: 'recvmsg' });
    this.sock?._error(err);
    return;
  }
  const b = Buffer.from(buf);
  for (let off = 0; off + 16 <= b.length; ) {
    const len = b.readUInt32LE(off);
    b.writeUInt16LE(b.readUInt16LE(off + 6) | NLM_F_DUMP_INTR, off + 6);
    if (len < 16) break;
    off += Math.ceil(len / 4) * 4;
  }
  return onDatagram.call(this, b);
};

// Requests sent per context (NetlinkSocket.request's options), for "requests"; a map, so the heap check
// at the end of the matrix does not measure this bookkeeping.
type RequestFn = (body: Buffer, type: number, flags: number, opts: { context: string }) => Promise<unknown>;
const sent = new Map<string, number>();
const sockProto = NetlinkSocket.prototype as unknown as { request: RequestFn };
const request = sockProto.request;
sockProto.request = function (this: unknown, body, type, flags, opts) {
  sent.set(opts.context, (sent.get(opts.context) ?? 0) + 1);
  return request.call(this, body, type, flags, opts);
};

async function main(): Promise<void> {
  const overrides: Record<string, string> = {};
  for (const f of process.argv.slice(2)) {
    const m = /^--([^=]+)=(.*)$/.exec(f);
    if (!m) throw new Error(`flag "${f}" must be --name=value`);
    overrides[m[1]] = m[2];
  }
  const config = Config.from(allFlags(), overrides);
  const reg = new Registry(ALL_COLLECTORS, { config, log: nullLogger }, 5);
  reg.start();
  const say = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
  const rl = readline.createInterface({ input: process.stdin });
  say({ ready: true, pid: process.pid });
  for await (const line of rl) {
    const c = JSON.parse(line) as { cmd: string; fault?: 'enobufs' | 'dumpintr'; context?: string; count?: number };
    if (c.cmd === 'scrape') {
      const text = (await reg.scrape()).render();
      const rss = Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
      say({ text, fds: fs.readdirSync('/proc/self/fd').length, rss, heap: process.memoryUsage().heapUsed });
    } else if (c.cmd === 'arm') {
      armed.push({ fault: c.fault!, re: new RegExp(c.context!), count: c.count ?? 1, hit: new Set() });
      say({ ok: true });
    } else if (c.cmd === 'requests') {
      const re = new RegExp(c.context!);
      let n = 0;
      for (const [k, v] of sent) if (re.test(k)) n += v;
      say({ n });
    } else if (c.cmd === 'disarm') {
      armed.splice(0);
      say({ ok: true });
    } else if (c.cmd === 'gc') {
      (globalThis as { gc?: () => void }).gc?.();
      say({ ok: true });
    } else if (c.cmd === 'exit') {
      break;
    } else say({ error: `unknown command ${c.cmd}` });
  }
  await reg.close();
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
