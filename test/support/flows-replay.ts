// Replay of captured sock_diag dumps for the flows collector's unit tests: the fixture messages as
// mutable copies (tests rewrite tcp_info counters in place), a FlowSource that honours the plans' state
// masks, and a scrape helper that reads values back from the exposition.
import * as fs from 'fs';
import * as path from 'path';
import { Config } from '../../src/core/flags';
import { Emitter } from '../../src/core/metrics';
import { FlowSource, FlowsCollector, flowsCollector, flowsSettings } from '../../src/collectors/flows';
import { allFlags } from '../../src/exporter';
import { forEachMessage } from '../../src/sources/netlink/attrs';
import { DumpPlan, DumpResult, SOCK_DIAG_BY_FAMILY, SockView } from '../../src/sources/netlink/sockdiag';

const FIX = path.join(__dirname, '../fixtures/sockdiag');

/** Payloads (inet_diag_msg + attributes) of a fixture, as mutable copies. */
export function payloads(file: string): Buffer[] {
  const out: Buffer[] = [];
  forEachMessage(fs.readFileSync(path.join(FIX, file)), (m) => {
    if (m.type === SOCK_DIAG_BY_FAMILY) out.push(Buffer.from(m.buf.subarray(m.start, m.end)));
  });
  return out;
}

export const infoOff = (p: Buffer) => new SockView().attach(p, 0, p.length).infoOff;

export class Replay implements FlowSource {
  plans: DumpPlan[][] = [];
  interruptNext = 0;
  constructor(public msgs: Buffer[]) {}
  listenerDumps = 0;
  /** The flows dump asks for tcp_info and more; the listener dump (which ports are services) for nothing. */
  async dump(plans: readonly DumpPlan[], ext: number, onSocket: (v: SockView) => void): Promise<DumpResult> {
    const listeners = ext === 0;
    if (listeners) this.listenerDumps++;
    else this.plans.push([...plans]);
    const v = new SockView();
    for (const p of this.msgs) {
      v.attach(p, 0, p.length);
      if (!plans.some((pl) => pl.states & (1 << v.state))) continue;
      onSocket(v);
    }
    const interrupted = !listeners && this.interruptNext > 0;
    if (interrupted) this.interruptNext--;
    return { sockets: this.msgs.length, interrupted, datagrams: 1 };
  }
  close(): void {}
}

export const fakeAddrs = { prepare: async () => undefined, deviceOf: (ip: string) => (ip.endsWith('127.0.0.1') ? 'lo' : undefined), close: () => undefined };

export function settings(over: Record<string, string>) {
  return flowsSettings(Config.from(allFlags([flowsCollector]), over));
}

export async function scrape(c: FlowsCollector): Promise<{ text: string; get: (name: string, labels?: Record<string, string>) => number[] }> {
  const out = new Emitter();
  await c.collect(out);
  const text = out.render();
  const get = (name: string, labels: Record<string, string> = {}) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(name + '{') || l.startsWith(name + ' '))
      .filter((l) => Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)))
      .map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));
  return { text, get };
}

/** local_port of every flowpath_flow_info series. */
export const infoPorts = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('flowpath_flow_info{'))
    .map((l) => Number(/local_port="(\d+)"/.exec(l)![1]));

/** The 8 flow ends of dump-a.bin (ESTAB), in order, with their local ports. */
export function flowsOf(msgs: Buffer[]): Array<{ p: Buffer; port: number }> {
  return msgs.filter((p) => p[1] === 1).map((p) => ({ p, port: p.readUInt16BE(4) }));
}
export const setU64 = (p: Buffer, off: number, v: number) => {
  const o = infoOff(p) + off;
  p.writeUInt32LE(v % 2 ** 32, o);
  p.writeUInt32LE(Math.floor(v / 2 ** 32), o + 4);
};
/** Flows are ranked by bytes acked + received: these tests move bytes_acked only. */
export const setAcked = (p: Buffer, v: number) => {
  setU64(p, 120, v); // tcpi_bytes_acked
  setU64(p, 128, 0); // tcpi_bytes_received
};

