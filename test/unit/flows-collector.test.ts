// The flows collector on replayed sock_diag fixtures: the cap (most bytes acked since the previous
// scrape), --flows.watch, aggregates, absent fields, unit conversions, DUMP_INTR retry, flags, promtool.
import { Config, UsageError } from '../../src/core/flags';
import { Emitter } from '../../src/core/metrics';
import { nullLogger } from '../../src/core/log';
import { CookieTable, FLOW_METRICS, FlowsCollector, flowsCollector } from '../../src/collectors/flows';
import { allFlags } from '../../src/exporter';
import { compileSelector } from '../../src/sources/flowselect';
import { SockView } from '../../src/sources/netlink/sockdiag';
import { promtoolAvailable, promtoolCheckMetrics } from '../support/promtool';
import { Replay, fakeAddrs, flowsOf, infoPorts, payloads, scrape, setAcked, settings } from '../support/flows-replay';

describe('flows collector', () => {
  it('exports the flows with the most bytes acked since the previous scrape, and counts the rest', async () => {
    const msgs = payloads('dump-a.bin');
    const flows = flowsOf(msgs);
    expect(flows.length).toBe(8);
    const first = [100, 500, 300, 900, 0, 50, 700, 10];
    flows.forEach((f, i) => setAcked(f.p, first[i]));
    const c = new FlowsCollector(settings({ 'flows.select': '', 'flows.max': '3' }), nullLogger, { source: new Replay(msgs), addrs: fakeAddrs });
    let s = await scrape(c);
    // First scrape: nothing known before, so the whole lifetime counts.
    const exportedPorts = (x: typeof s) => new Set(infoPorts(x.text));
    expect(exportedPorts(s)).toEqual(new Set([flows[3].port, flows[6].port, flows[1].port]));
    expect(s.get('flowpath_flows_seen')).toEqual([8]);
    expect(s.get('flowpath_flows_exported')).toEqual([3]);
    expect(s.get('flowpath_flows_omitted')).toEqual([5]);
    expect(s.get('flowpath_flows_sockets', { state: 'established' })).toEqual([8]);
    expect(s.get('flowpath_flows_sockets', { state: 'listen' })).toEqual([4]);
    // TIME_WAIT and request mini-sockets are never dumped (no tcp_info), so they have no series.
    expect(s.get('flowpath_flows_sockets', { state: 'time-wait' })).toEqual([]);
    expect(s.get('flowpath_flows_sockets', { state: 'close-wait' })).toEqual([0]);

    // Second scrape: rank by the delta, not the lifetime total.
    const delta = [1000, 0, 0, 0, 0, 2000, 0, 5];
    flows.forEach((f, i) => setAcked(f.p, first[i] + delta[i]));
    s = await scrape(c);
    expect(exportedPorts(s)).toEqual(new Set([flows[5].port, flows[0].port, flows[7].port]));
    expect(s.get('flowpath_flow_acked_bytes_total', { local_port: String(flows[5].port) })).toEqual([2050]);

    // A closed flow vanishes at once.
    const closed = flows[5];
    (c as unknown as { source: Replay }).source.msgs = msgs.filter((p) => p !== closed.p);
    s = await scrape(c);
    expect(s.text).not.toContain(`local_port="${closed.port}"`);
    expect(s.get('flowpath_flows_seen')).toEqual([7]);
  });

  it('always exports --flows.watch flows, beyond --flows.max', async () => {
    const msgs = payloads('dump-a.bin');
    const flows = flowsOf(msgs);
    flows.forEach((f, i) => setAcked(f.p, 1000 * (i + 1)));
    const watched = flows[0].port; // the smallest acked count
    const c = new FlowsCollector(settings({ 'flows.select': '', 'flows.max': '1', 'flows.watch': `sport = ${watched}` }), nullLogger, {
      source: new Replay(msgs),
      addrs: fakeAddrs,
    });
    const s = await scrape(c);
    expect(new Set(infoPorts(s.text))).toEqual(new Set([watched, flows[7].port]));
    expect(s.get('flowpath_flows_exported')).toEqual([2]);
    expect(s.get('flowpath_flows_omitted')).toEqual([6]);
  });

  it('hands the kernel the compiled --flows.select OR --flows.watch', async () => {
    const src = new Replay([]);
    const c = new FlowsCollector(settings({ 'flows.select': 'dport = 5201', 'flows.watch': 'src 10.0.0.0/8' }), nullLogger, { source: src, addrs: fakeAddrs });
    await scrape(c);
    const withoutMini = (sel: string) => compileSelector(sel).plans.map((p) => ({ ...p, states: p.states & ~((1 << 6) | (1 << 12)) }));
    expect(src.plans[0]).toEqual(withoutMini('(dport = 5201) or (src 10.0.0.0/8)'));
    const d = new Replay([]);
    await scrape(new FlowsCollector(settings({}), nullLogger, { source: d, addrs: fakeAddrs }));
    expect(d.plans[0]).toEqual(withoutMini('not loopback'));
    // A selector that only wants TIME_WAIT sockets dumps nothing.
    const tw = new Replay([]);
    await scrape(new FlowsCollector(settings({ 'flows.select': 'state time-wait' }), nullLogger, { source: tw, addrs: fakeAddrs }));
    expect(tw.plans[0]).toEqual([]);
  });

  it('converts units and labels each flow (identity, info: cc, local_device; state and CA state as values)', async () => {
    const msgs = payloads('dump-a.bin');
    const c = new FlowsCollector(settings({ 'flows.select': '', 'flows.max': '100' }), nullLogger, { source: new Replay(msgs), addrs: fakeAddrs });
    const s = await scrape(c);
    const all = msgs.map((p) => new SockView().attach(p, 0, p.length));
    const listening = new Set(all.filter((v) => v.state === 10).map((v) => v.sport));
    expect(listening.size).toBeGreaterThan(0);
    const views = all.filter((v) => v.state === 1);
    let servers = 0;
    for (const v of views) {
      const r = v.record();
      const t = r.tcpInfo!;
      const server = listening.has(r.localPort);
      if (server) servers++;
      const l = {
        local_ip: r.localIp,
        local_port: String(r.localPort),
        peer_ip: r.peerIp,
        peer_port: String(r.peerPort),
        role: server ? 'server' : 'client',
        service_port: String(server ? r.localPort : r.peerPort),
      };
      expect(s.get('flowpath_flow_info', { ...l, cc: r.cc!, local_device: r.localIp.endsWith('127.0.0.1') ? 'lo' : '' })).toEqual([1]);
      expect(s.get('flowpath_flow_tcp_state', l)).toEqual([1]);
      expect(s.get('flowpath_flow_ca_state', l)).toEqual([t.caState]);
      expect(s.get('flowpath_flow_rtt_seconds', l)).toEqual([t.rtt / 1e6]);
      expect(s.get('flowpath_flow_cwnd_packets', l)).toEqual([t.sndCwnd]);
      expect(s.get('flowpath_flow_busy_seconds_total', l)).toEqual([t.busyTime / 1e6]);
      expect(s.get('flowpath_flow_rwnd_limited_seconds_total', l)).toEqual([t.rwndLimited / 1e6]);
      expect(s.get('flowpath_flow_notsent_bytes', l)).toEqual([t.notsentBytes]);
      expect(s.get('flowpath_flow_skmem_wmem_queued_bytes', l)).toEqual([r.skmem!.wmemQueued]);
      expect(s.get('flowpath_flow_send_queue_bytes', l)).toEqual([r.wqueue]);
      expect(s.get('flowpath_flow_delivery_rate_app_limited', l)).toEqual([t.deliveryRateAppLimited]);
      // Absent when unlimited / not set / never measured.
      expect(s.get('flowpath_flow_max_pacing_rate_bytes_per_second', l)).toEqual(t.maxPacingRate === Infinity ? [] : [t.maxPacingRate]);
      expect(s.get('flowpath_flow_ssthresh_packets', l)).toEqual(t.sndSsthresh === 0x7fffffff ? [] : [t.sndSsthresh]);
      expect(s.get('flowpath_flow_bbr_pacing_gain_ratio', l)).toEqual(r.bbr ? [r.bbr.pacingGain] : []);
      expect(s.get('flowpath_flow_bbr_bandwidth_bytes_per_second', l)).toEqual(r.bbr ? [r.bbr.bw] : []);
    }
    expect(s.get('flowpath_flow_max_pacing_rate_bytes_per_second')).toEqual([4_000_000]);
    // Both ends of the fixture's loopback connections: the accepted ends are servers.
    expect(servers).toBeGreaterThan(0);
    expect(servers).toBeLessThan(views.length);
    // Listeners are counted, never exported; state and CA state are never labels.
    expect(s.get('flowpath_flow_tcp_state').filter((x) => x === 10)).toEqual([]);
    expect(s.text).not.toMatch(/flowpath_flow_info\{[^}]*state=/);
  });

  it('omits what an older kernel does not send instead of exporting 0', async () => {
    const c = new FlowsCollector(settings({ 'flows.select': '' }), nullLogger, { source: new Replay(payloads('short-3.14.bin')), addrs: fakeAddrs });
    const s = await scrape(c);
    expect(s.get('flowpath_flows_exported')).toEqual([8]);
    expect(s.get('flowpath_flow_rtt_seconds').length).toBe(8);
    for (const absent of [
      'flowpath_flow_pacing_rate_bytes_per_second',
      'flowpath_flow_acked_bytes_total',
      'flowpath_flow_notsent_bytes',
      'flowpath_flow_busy_seconds_total',
      'flowpath_flow_snd_wnd_bytes',
      'flowpath_flow_skmem_backlog_bytes',
      'flowpath_flow_skmem_dropped_packets_total',
      'flowpath_flow_bbr_bandwidth_bytes_per_second',
    ]) {
      expect([absent, s.get(absent)]).toEqual([absent, []]);
    }
  });

  it('retries a dump the kernel flagged NLM_F_DUMP_INTR once, without double counting', async () => {
    const src = new Replay(payloads('dump-a.bin'));
    src.interruptNext = 1;
    const c = new FlowsCollector(settings({ 'flows.select': '' }), nullLogger, { source: src, addrs: fakeAddrs });
    const s = await scrape(c);
    expect(src.plans.length).toBe(2);
    expect(s.get('flowpath_flows_dump_interrupted_total')).toEqual([1]);
    expect(s.get('flowpath_flows_seen')).toEqual([8]);
    expect(s.get('flowpath_flows_sockets', { state: 'listen' })).toEqual([4]);
  });

  it('declares every family it emits, and the exposition passes promtool', async () => {
    const c = new FlowsCollector(settings({ 'flows.select': '', 'flows.watch': 'all' }), nullLogger, { source: new Replay(payloads('dump-a.bin')), addrs: fakeAddrs });
    const out = new Emitter();
    await c.collect(out);
    const declared = new Set(FLOW_METRICS.map((d) => d.name));
    for (const n of out.familyNames()) expect(declared.has(n)).toBe(true);
    expect(out.familyNames().length).toBeGreaterThan(50);
    if (promtoolAvailable()) {
      const r = promtoolCheckMetrics(out.render());
      expect(r.output).toBe('');
      expect(r.status).toBe(0);
    }
  });

  it('keeps the previous sample per cookie in a table that grows and clears', () => {
    const t = new CookieTable(1, 4);
    const keys = Array.from({ length: 5000 }, (_, i) => (i % 7 === 0 ? 2 ** 40 + i : i + 1));
    keys.forEach((k, i) => t.set(k, i * 3));
    expect(t.size).toBe(5000);
    keys.forEach((k, i) => expect(t.get(k)).toBe(i * 3));
    expect(t.get(999999)).toBeUndefined();
    t.set(keys[10], 1);
    expect(t.get(keys[10])).toBe(1);
    expect(t.size).toBe(5000);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.get(keys[10])).toBeUndefined();
  });

  it('sweeps the rows a generation did not touch, keeping every other row findable (against a Map)', () => {
    const t = new CookieTable(2, 16);
    const model = new Map<number, number>();
    let seed = 7;
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    for (let gen = 1; gen <= 60; gen++) {
      const touched = new Set<number>();
      // Touch a random subset of the live keys and add new ones (clustered keys make long probe chains).
      for (const k of [...model.keys()]) {
        if (rnd(3) === 0) continue;
        const r = t.find(k);
        expect(r).toBeGreaterThanOrEqual(0);
        t.gens[r] = gen;
        touched.add(k);
      }
      for (let i = 0; i < rnd(400); i++) {
        const k = rnd(5) === 0 ? 2 ** 40 + rnd(100000) : 1 + rnd(3000);
        const r = t.insert(k);
        t.gens[r] = gen;
        if (!touched.has(k)) t.vals[r * 2 + 1] = k * 3;
        model.set(k, k * 3);
        touched.add(k);
      }
      t.sweep(gen);
      for (const k of [...model.keys()]) if (!touched.has(k)) model.delete(k);
      // Nothing untouched survives, nothing touched is lost, values move with their rows.
      expect(t.size).toBe(model.size);
      for (const [k, v] of model) {
        const r = t.find(k);
        expect([k, t.gens[r], t.vals[r * 2 + 1]]).toEqual([k, gen, v]);
      }
    }
  });

  it('refuses a bad selector at flag parsing, naming the column', () => {
    const parse = () => Config.from(allFlags([flowsCollector]), { 'flows.select': 'dport = 5201 and dst 10.0.0.0/33' });
    expect(parse).toThrow(UsageError);
    expect(parse).toThrow(/--flows.select: .* at column 22/);
    expect(() => Config.from(allFlags([flowsCollector]), { 'flows.max': '-1' })).toThrow(UsageError);
  });
});
