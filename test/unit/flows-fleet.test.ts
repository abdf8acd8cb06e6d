// The flows collector at fleet scale, on replayed sock_diag fixtures: the flow identity (role, service
// port), the choice of exported flows with hysteresis, and the per-service counters over every flow.
import { nullLogger } from '../../src/core/log';
import { FlowsCollector, SERVICE_IDLE_MS, chooseExported } from '../../src/collectors/flows';
import { KEEP_SHARE } from '../../src/core/ranking';
import { DEFAULT_PORT_RANGE, ListeningPorts, identify, identityLabels, parsePortRange } from '../../src/sources/flow-identity';
import { SockView } from '../../src/sources/netlink/sockdiag';
import { Replay, fakeAddrs, flowsOf, infoOff, infoPorts, payloads, scrape, setAcked, settings } from '../support/flows-replay';

const listening = (...ports: number[]) => {
  const l = new ListeningPorts();
  for (const p of ports) l.add(p);
  return l;
};

describe('flow identity', () => {
  const r = DEFAULT_PORT_RANGE;
  it('a listener on the local port makes the flow a server of that port', () => {
    expect(identityLabels(identify(5201, 45000, listening(5201), r))).toEqual(['server', '5201']);
    // even when the local port lies in the ephemeral range (a service on a high port)
    expect(identityLabels(identify(40000, 50000, listening(40000), r))).toEqual(['server', '40000']);
  });
  it('otherwise the flow is a client of the peer port, also from a fixed low local port', () => {
    expect(identityLabels(identify(45000, 5201, listening(22), r))).toEqual(['client', '5201']);
    expect(identityLabels(identify(700, 5201, listening(), r))).toEqual(['client', '5201']);
    expect(identityLabels(identify(45000, 46000, listening(), r))).toEqual(['client', '46000']);
  });
  it('an accepted connection whose listener closed: local port outside, peer inside the ephemeral range', () => {
    expect(identityLabels(identify(5201, 45000, listening(), r))).toEqual(['server', '5201']);
    expect(identityLabels(identify(5201, 45000, listening(), { lo: 50000, hi: 60000 }))).toEqual(['client', '45000']);
  });
  it('reads ip_local_port_range and refuses what is not a range', () => {
    expect(parsePortRange('32768\t60999\n')).toEqual({ lo: 32768, hi: 60999 });
    expect(() => parsePortRange('60999 32768')).toThrow(/bad range/);
    expect(() => parsePortRange('')).toThrow(/cannot parse/);
  });
  it('the listening-port set is refilled in place', () => {
    const l = listening(1, 2, 3);
    expect(l.size).toBe(3);
    l.clear();
    expect([l.has(1), l.has(2), l.size]).toEqual([false, false, 0]);
  });
});

describe('choosing the exported flows', () => {
  const view = new SockView();
  const c = (name: number, delta: number) => ({ delta, total: name, view });
  const names = (cs: Array<{ total: number }>) => cs.map((x) => x.total);

  it('keeps an incumbent while it moves at least KEEP_SHARE of the N-th busiest, else takes the busiest', () => {
    // N = 2. Incumbents 1 and 2; newcomer 3 is busier than both.
    expect(names(chooseExported([c(1, 100), c(2, 90)], [c(3, 120)], 2))).toEqual([1, 2]);
    // Incumbent 2 falls below half of the 2nd busiest (100): newcomer 3 takes its place.
    expect(names(chooseExported([c(1, 100), c(2, 100 * KEEP_SHARE - 1)], [c(3, 120)], 2))).toEqual([3, 1]);
    // Fewer candidates than places: all of them, busiest first.
    expect(names(chooseExported([c(1, 5)], [c(2, 10)], 3))).toEqual([2, 1]);
    // A closed incumbent frees its place for the busiest newcomer.
    expect(names(chooseExported([c(1, 100)], [c(3, 50), c(4, 60)], 2))).toEqual([1, 4]);
    // Idle flows (nothing moved): the incumbents stay.
    expect(names(chooseExported([c(1, 0), c(2, 0)], [c(3, 0), c(4, 0)], 2))).toEqual([2, 1]);
  });

  it('a flow oscillating around rank N does not churn the exported set', async () => {
    const msgs = payloads('dump-a.bin');
    const flows = flowsOf(msgs);
    const col = new FlowsCollector(settings({ 'flows.select': '', 'flows.max': '3' }), nullLogger, { source: new Replay(msgs), addrs: fakeAddrs });
    const acked = flows.map(() => 0);
    const step = async (rates: number[]) => {
      rates.forEach((x, i) => {
        acked[i] += x;
        setAcked(flows[i].p, acked[i]);
      });
      return new Set(infoPorts((await scrape(col)).text));
    };
    const first = await step([1000, 900, 800, 700, 10, 10, 10, 10]);
    expect(first).toEqual(new Set([flows[0].port, flows[1].port, flows[2].port]));
    // Flows 2 and 3 swap rank 3 and 4 every scrape; without hysteresis the set would change each time.
    for (let i = 0; i < 6; i++) {
      const s = await step(i % 2 === 0 ? [1000, 900, 700, 800, 10, 10, 10, 10] : [1000, 900, 800, 700, 10, 10, 10, 10]);
      expect(s).toEqual(first);
    }
    // A flow that becomes clearly busier (flow 2 drops to less than half of the 3rd busiest) takes the place.
    expect(await step([1000, 900, 300, 800, 10, 10, 10, 10])).toEqual(new Set([flows[0].port, flows[1].port, flows[3].port]));
  });
});

describe('per-service counters over every flow', () => {
  // tcp_info offsets of the seven counters and their units in the exposition.
  const FIELDS = [
    { off: 120, size: 8, flow: 'flowpath_flow_acked_bytes_total', svc: 'flowpath_flows_acked_bytes_total', scale: 1 },
    { off: 128, size: 8, flow: 'flowpath_flow_received_bytes_total', svc: 'flowpath_flows_received_bytes_total', scale: 1 },
    { off: 168, size: 8, flow: 'flowpath_flow_busy_seconds_total', svc: 'flowpath_flows_busy_seconds_total', scale: 1e6 },
    { off: 176, size: 8, flow: 'flowpath_flow_rwnd_limited_seconds_total', svc: 'flowpath_flows_rwnd_limited_seconds_total', scale: 1e6 },
    { off: 184, size: 8, flow: 'flowpath_flow_sndbuf_limited_seconds_total', svc: 'flowpath_flows_sndbuf_limited_seconds_total', scale: 1e6 },
    { off: 100, size: 4, flow: 'flowpath_flow_retransmitted_packets_total', svc: 'flowpath_flows_retransmitted_packets_total', scale: 1 },
    { off: 216, size: 4, flow: 'flowpath_flow_dsack_dups_total', svc: 'flowpath_flows_dsack_dups_total', scale: 1 },
  ];
  const read = (p: Buffer, f: (typeof FIELDS)[number]) => {
    const o = infoOff(p) + f.off;
    return f.size === 4 ? p.readUInt32LE(o) : p.readUInt32LE(o) + p.readUInt32LE(o + 4) * 2 ** 32;
  };
  const write = (p: Buffer, f: (typeof FIELDS)[number], v: number) => {
    const o = infoOff(p) + f.off;
    p.writeUInt32LE(v % 2 ** 32, o);
    if (f.size === 8) p.writeUInt32LE(Math.floor(v / 2 ** 32), o + 4);
  };
  type Scrape = Awaited<ReturnType<typeof scrape>>;
  /** Sum of a per-flow family's values grouped by (role, service_port). */
  const perFlowSums = (s: Scrape, name: string) => {
    const m = new Map<string, number>();
    for (const l of s.text.split('\n').filter((x) => x.startsWith(name + '{'))) {
      const k = `${/role="(\w+)"/.exec(l)![1]}/${/service_port="(\w+)"/.exec(l)![1]}`;
      m.set(k, (m.get(k) ?? 0) + Number(l.slice(l.lastIndexOf(' ') + 1)));
    }
    return m;
  };
  const svc = (s: Scrape, name: string) => {
    const m = new Map<string, number>();
    for (const l of s.text.split('\n').filter((x) => x.startsWith(name + '{')))
      m.set(`${/role="(\w+)"/.exec(l)![1]}/${/service_port="(\w+)"/.exec(l)![1]}`, Number(l.slice(l.lastIndexOf(' ') + 1)));
    return m;
  };

  it('equal the sum of the per-flow deltas, the first scrape being the baseline; a closed flow keeps what it added', async () => {
    const msgs = payloads('dump-a.bin');
    const flows = flowsOf(msgs);
    const src = new Replay(msgs);
    const col = new FlowsCollector(settings({ 'flows.select': '', 'flows.max': '100' }), nullLogger, { source: src, addrs: fakeAddrs });
    const s0 = await scrape(col);
    // Baseline: 8 buckets (4 service ports × client/server), each with one flow and nothing counted yet.
    expect([...svc(s0, 'flowpath_flows_open').values()]).toEqual(Array(8).fill(1));
    for (const f of FIELDS) expect([...svc(s0, f.svc).values()]).toEqual(Array(8).fill(0));

    const bump = (k: number) => flows.forEach((fl, i) => FIELDS.forEach((f, j) => write(fl.p, f, read(fl.p, f) + (i + 1) * (j + 1) * k)));
    bump(1000);
    const s1 = await scrape(col);
    for (const f of FIELDS) {
      const want = new Map([...perFlowSums(s1, f.flow)].map(([k, v]) => [k, v - (perFlowSums(s0, f.flow).get(k) ?? 0)]));
      const got = svc(s1, f.svc);
      expect(got.size).toBe(8);
      for (const [k, v] of want) expect([f.svc, k, got.get(k)]).toEqual([f.svc, k, expect.closeTo(v, 6)]);
    }

    // Flow 0 moves more and closes before the next scrape: what it did after s1 is lost (no dump sees it),
    // what it added up to s1 stays in its bucket's counter, which never goes back.
    const closed = flows[0];
    const closedBucket = [...perFlowSums(s1, 'flowpath_flow_info')].length; // (info has one series per flow)
    expect(closedBucket).toBe(8);
    src.msgs = msgs.filter((p) => p !== closed.p);
    bump(7);
    const s2 = await scrape(col);
    for (const f of FIELDS) {
      const before = svc(s1, f.svc);
      const after = svc(s2, f.svc);
      const perFlow = (s: Scrape) => perFlowSums(s, f.flow);
      for (const [k, v] of after) {
        const delta = (perFlow(s2).get(k) ?? 0) - (perFlow(s1).get(k) ?? 0) + (k === bucketOf(s1, closed.port) ? valueOf(s1, f.flow, closed.port) : 0);
        expect([f.svc, k, v - before.get(k)!]).toEqual([f.svc, k, expect.closeTo(delta, 6)]);
        expect(v).toBeGreaterThanOrEqual(before.get(k)!);
      }
    }
    expect(svc(s2, 'flowpath_flows_open').get(bucketOf(s1, closed.port))).toBe(0);
  });

  /** The "role/service_port" bucket of the exported flow with this local port. */
  function bucketOf(s: Scrape, localPort: number): string {
    const l = s.text.split('\n').find((x) => x.startsWith('flowpath_flow_info{') && x.includes(`local_port="${localPort}"`))!;
    return `${/role="(\w+)"/.exec(l)![1]}/${/service_port="(\w+)"/.exec(l)![1]}`;
  }
  function valueOf(s: Scrape, name: string, localPort: number): number {
    const l = s.text.split('\n').find((x) => x.startsWith(name + '{') && x.includes(`local_port="${localPort}"`))!;
    return Number(l.slice(l.lastIndexOf(' ') + 1));
  }

  it('give --flows.service-ports pairs a bucket of their own, the busiest first, and sum the rest per role into "other"', async () => {
    const msgs = payloads('dump-a.bin');
    const flows = flowsOf(msgs);
    flows.forEach((f, i) => setAcked(f.p, 0));
    let now = 0;
    const src = new Replay(msgs);
    const col = new FlowsCollector(settings({ 'flows.select': '', 'flows.max': '0', 'flows.service-ports': '3' }), nullLogger, {
      source: src,
      addrs: fakeAddrs,
      now: () => now,
    });
    await scrape(col); // baseline
    flows.forEach((f, i) => setAcked(f.p, (i + 1) * 1000));
    const s = await scrape(col);
    // No per-flow series at --flows.max=0, yet every flow is counted.
    expect(infoPorts(s.text)).toEqual([]);
    const acked = svc(s, 'flowpath_flows_acked_bytes_total');
    const open = svc(s, 'flowpath_flows_open');
    expect([...open.values()].reduce((a, b) => a + b, 0)).toBe(8);
    expect([...acked.values()].reduce((a, b) => a + b, 0)).toBe(36000);
    // Buckets were assigned at the baseline scrape (nothing moved yet: by flow count, then identity), 3 own + other per role.
    const own = [...open.keys()].filter((k) => !k.endsWith('/other'));
    expect(own.length).toBe(3);
    expect([...open.keys()].filter((k) => k.endsWith('/other')).sort()).toEqual(['client/other', 'server/other']);

    // Buckets stay while their flows live; released after SERVICE_IDLE_MS without a flow; the place goes to the busiest pair.
    src.msgs = [];
    now += SERVICE_IDLE_MS + 1;
    await scrape(col);
    src.msgs = msgs;
    flows.forEach((f, i) => setAcked(f.p, (i + 1) * 1000 + (i === 5 ? 50000 : 0)));
    const s2 = await scrape(col);
    const v5 = new SockView().attach(flows[5].p, 0, flows[5].p.length);
    const fixtureListeners = listening(...msgs.map((p) => new SockView().attach(p, 0, p.length)).filter((v) => v.state === 10).map((v) => v.sport));
    const busiest = identityLabels(identify(v5.sport, v5.dport, fixtureListeners, DEFAULT_PORT_RANGE)).join('/');
    expect([...svc(s2, 'flowpath_flows_open').keys()]).toContain(busiest);
    // Flows first seen after the baseline count whole.
    expect(svc(s2, 'flowpath_flows_acked_bytes_total').get(busiest)).toBe(56000);
  });
});
