// Child process of the flows bench (compiled to dist/bench/dumper.js): runs the in-process methods in a
// process that does nothing else, so the garbage of the bench's own work (8 MB of ss output per run,
// /metrics bodies) cannot trigger GC pauses inside the timed dumps.
// Reads one command per line on stdin, runs it, and answers {"ms":..,"sockets":..}:
//   floor   dump every socket, count the messages (no decoding)
//   decode  dump every socket and decode every field of every socket
//   select  what the flows collector does per scrape before rendering: dump every socket, read state,
//           cookie and bytes acked of each, keep the 100 flows with most bytes acked since the last
//           sample, and decode those 100 completely
import * as readline from 'readline';
import { FlowsCollector, NOT_DUMPED } from '../src/collectors/flows';
import { nullLogger } from '../src/core/log';
import { compileSelector } from '../src/sources/flowselect';
import { EXT_FLOWS, SOCK_DIAG_BY_FAMILY, SockDiag, SockView, buildDumpRequest } from '../src/sources/netlink/sockdiag';
import { NETLINK_SOCK_DIAG, NetlinkSocket } from '../src/sources/netlink/socket';
import { nowMs } from './lib';

// Every socket ss -t would list too: both families, every state but TIME_WAIT.
const everything = compileSelector('all').plans.map((p) => ({ ...p, states: p.states & ~NOT_DUMPED }));
const sd = new SockDiag();
const raw = new NetlinkSocket(NETLINK_SOCK_DIAG, { msgBufferSize: 32768, recvBufferSize: 4 << 20 });
const tcp = new Float64Array(sd.layout.fields.length);
const skm = new Float64Array(9);
let sink = 0;
let count = 0;
const collector = new FlowsCollector({ select: compileSelector('all'), watch: null, max: 100, servicePorts: 10, procfs: '/proc' }, nullLogger);

async function select(): Promise<void> {
  const r = await collector.sample();
  count = r.seen;
  for (const f of r.exported) sink += f.view.record().tcpInfo?.rtt ?? 0;
}

/** Decode every field of one socket, allocating nothing. */
function decodeAll(v: SockView): void {
  count++;
  sink += v.family + v.state + v.timer + v.retrans + v.sport + v.dport + v.ifindex + v.cookieKey + v.expires + v.rqueue + v.wqueue + v.uid + v.inode;
  sink += v.buf[v.srcOff] + v.buf[v.dstOff + 15];
  if (v.tcpInfoInto(tcp)) sink += tcp[0] + tcp[30];
  if (v.skmemInto(skm)) sink += skm[5];
  if (v.hasBbr) sink += v.bbrBw()! + v.bbrMinRtt()! + v.bbrPacingGain()! + v.bbrCwndGain()!;
  sink += v.cong()?.length ?? 0;
  sink += v.shutdown ?? 0;
}

async function floor(): Promise<void> {
  for (const p of everything) {
    await raw.request(buildDumpRequest(p.family, p.states, EXT_FLOWS, p.bytecode), SOCK_DIAG_BY_FAMILY, 0, {
      dump: true,
      context: 'bench floor dump',
      onMessage: () => {
        count++;
      },
    });
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (cmd) => {
  void (async () => {
    count = 0;
    const t0 = nowMs();
    if (cmd === 'decode') await sd.dump(everything, EXT_FLOWS, decodeAll);
    else if (cmd === 'floor') await floor();
    else if (cmd === 'select') await select();
    else throw new Error(`unknown command ${cmd}`);
    const ms = nowMs() - t0;
    process.stdout.write(JSON.stringify({ ms, sockets: count, sink: sink > 0 }) + '\n');
  })().catch((e: Error) => {
    process.stdout.write(JSON.stringify({ error: e.message }) + '\n');
  });
});
rl.on('close', () => {
  sd.close();
  raw.close();
  collector.close();
  process.exit(0);
});
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
