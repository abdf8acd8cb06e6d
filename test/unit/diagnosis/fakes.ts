// Fake sources and clock for the sampler, API, collector and command tests.

import { discoveryRate } from '../../../src/diagnosis/sampler';
import type { Clock, DiscoverWant, FlowSource, NodeSource, RatedFlow, Sampler } from '../../../src/diagnosis/sampler';
import type { FlowKey, FlowSample, NodeSnapshot, PathDevices } from '../../../src/diagnosis/types';

/** Run n sampling rounds, advancing the fake clock by stepMs after each. */
export async function tickN(s: Sampler, clock: FakeClock, n: number, stepMs = 50): Promise<void> {
  for (let i = 0; i < n; i++) {
    await s.tick();
    clock.t += stepMs;
  }
}

export class FakeClock implements Clock {
  t = 0;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private next = 1;
  /**
   * How early timers fire (ms), as Node's do on libuv's whole-millisecond loop clock (where a timeout is
   * at least 1 ms): a timer of `ms` then fires at max(1, ms) − early.
   */
  early = 0;
  /** Timers set so far (each is one wake-up of a real process). */
  timersSet = 0;
  now = () => this.t;
  wall = () => 1_700_000_000_000 + this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = this.next++;
    this.timersSet++;
    this.timers.push({ at: this.t + (this.early > 0 ? Math.max(1, ms) - this.early : ms), fn, id });
    return id;
  };
  clearTimeout = (h: unknown) => {
    this.timers = this.timers.filter((x) => x.id !== h);
  };
  /** Advance time, running due timers in order (and awaiting the promises they start). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const due = this.timers[0];
      if (!due || due.at > end) break;
      this.timers.shift();
      this.t = due.at;
      due.fn();
      for (let i = 0; i < 5; i++) await Promise.resolve();
    }
    this.t = end;
  }
}

export const key = (port: number, cookie = '1'): FlowKey => ({ localIp: '10.0.0.1', localPort: port, peerIp: '10.0.0.2', peerPort: 5201, cookie });

export class FakeFlows implements FlowSource {
  /** port -> bytes acked so far and whether it exists. */
  flows = new Map<number, { bytes: number; watched: boolean; cookie: string; sig: Partial<FlowSample>; rate: number }>();
  lookups = 0;
  openedConnections?: () => number | undefined;
  /** Bytes per flow (port#cookie) at the previous discovery: the fake rates its flows as the live source does. */
  private prevBytes = new Map<string, number>();
  discover = async (want: DiscoverWant): Promise<RatedFlow[]> => {
    const prev = this.prevBytes;
    this.prevBytes = new Map();
    return [...this.flows.entries()].map(([p, f]) => {
      this.prevBytes.set(`${p}#${f.cookie}`, f.bytes);
      return { key: key(p, f.cookie), bytesAcked: f.bytes, bytesReceived: 0, watched: f.watched, bytesPerSecond: discoveryRate(f.bytes, prev.get(`${p}#${f.cookie}`), want.seconds) };
    });
  };
  lookup: FlowSource['lookup'] = async (keys: readonly FlowKey[], t: number): Promise<Array<FlowSample | null>> =>
    keys.map((k) => {
      this.lookups++;
      return this.sample(k, t);
    });
  /** The sample of `k` at `t` (null: no such flow, or another cookie). */
  sample(k: FlowKey, t: number): FlowSample | null {
    const f = this.flows.get(k.localPort);
    if (!f || f.cookie !== k.cookie) return null;
    const us = t * 1000;
    return { ...f.sig, t, sndMss: 1448, busyTime: Math.floor(us * 0.9), rwndLimited: 0, sndbufLimited: 0, bytesAcked: Math.floor((f.rate * t) / 1000), bytesSent: Math.floor((f.rate * t) / 1000) };
  }
  close = () => undefined;
}

export class FakeNode implements NodeSource {
  snaps = 0;
  snapshot = async (t: number): Promise<NodeSnapshot> => {
    this.snaps++;
    return { t, devices: [{ name: 'eth0', txDropped: 3, txBytes: this.snaps * 1000 }], qdiscs: [], cpus: [], errors: [] };
  };
  pathFor = async (): Promise<PathDevices> => ({ ipDevice: 'eth0', nicDevice: 'eth0' });
  close = () => undefined;
}


/** A LISTEN dump for the diagnosis collector's FlowIdentities that reports listeners on these ports. */
export function fakeListeners(...ports: number[]) {
  const dumper = {
    dumps: 0,
    async dump(_plans: unknown, _ext: number, onSocket: (v: import('../../../src/sources/netlink/sockdiag').SockView) => void) {
      dumper.dumps++;
      for (const sport of ports) onSocket({ state: 10, sport } as unknown as import('../../../src/sources/netlink/sockdiag').SockView);
      return { sockets: ports.length, interrupted: false, datagrams: 1 };
    },
  };
  return dumper;
}
