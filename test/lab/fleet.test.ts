// Fleet scale, live (root, the lab's veth topology): with default flags a node with more than 1,000
// established flows exports at most 2,000 series in all and less than 2% of them change between two
// scrapes 5 s apart while the flows are steady; each flow says which end is the server and the service
// port on both ends (an iperf3 flow, and a client bound to a fixed low port); the per-service counters
// equal the sum of the per-flow deltas, a flow closed between two scrapes included.
import { ChildProcessWithoutNullStreams, spawn } from 'child_process';
import * as path from 'path';
import { Series, parseExposition as parse } from '../support/exposition';
import { A_IP, B_IP, IPERF_PORT, NS_A, NS_B, labDown, labSkipReason, labUp, startExporter, startFlow, type Exporter, type Flow } from './lab';

const reason = labSkipReason();
const d = reason ? describe.skip : describe;

const MANY = path.join(__dirname, '../support/many-flows.py');
const SERVICE = 7000;
const FLOWS = 1200;
const BUDGET = 2000;

const find = (s: Series[], name: string, labels: Record<string, string>) =>
  s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));

/** A many-flows.py process in a namespace; resolves with its first JSON line. */
function startMany(ns: string, args: string[]): Promise<{ proc: ChildProcessWithoutNullStreams; first: Record<string, unknown>; lines: string[] }> {
  const proc = spawn('ip', ['netns', 'exec', ns, 'python3', MANY, ...args]);
  const lines: string[] = [];
  let buf = '';
  let err = '';
  proc.stderr.setEncoding('utf8').on('data', (x: string) => (err += x));
  return new Promise((resolve, reject) => {
    proc.stdout.setEncoding('utf8').on('data', (x: string) => {
      buf += x;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
        if (lines.length === 1) resolve({ proc, first: JSON.parse(lines[0]) as Record<string, unknown>, lines });
      }
    });
    proc.on('close', (code) => reject(new Error(`many-flows.py ${args.join(' ')} exited ${code}: ${err}`)));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

d('fleet scale in the veth lab (root)', () => {
  const procs: ChildProcessWithoutNullStreams[] = [];
  let exporters: Exporter[] = [];
  let flow: Flow | null = null;

  const stopExporters = async () => {
    for (const e of exporters) await e.stop().catch(() => undefined);
    exporters = [];
  };

  beforeAll(async () => {
    await labUp({ topo: 'veth' });
    const server = await startMany(NS_B, ['serve', String(SERVICE)]);
    procs.push(server.proc);
  }, 120_000);

  // Each test's exporters, flows and load generators end with it, also when an assertion fails.
  afterEach(async () => {
    await stopExporters();
    await flow?.stop().catch(() => undefined);
    flow = null;
    for (const p of procs.splice(1)) p.kill('SIGKILL');
  }, 60_000);

  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await labDown();
  }, 120_000);

  it(`${FLOWS} steady flows: at most ${BUDGET} series with default flags, < 2% change in 5 s`, async () => {
    const many = await startMany(NS_A, ['connect', B_IP, String(SERVICE), String(FLOWS)]);
    procs.push(many.proc);
    expect((many.first.ports as number[]).length).toBe(FLOWS);
    exporters = [await startExporter('a')];
    const [a] = exporters;
    await a.scrape(); // the first scrape is the baseline of the per-flow deltas
    await sleep(2000);
    const s1 = parse(await a.scrape());
    await sleep(5000);
    const s2 = parse(await a.scrape());

    const seen = find(s1, 'flowpath_flows_seen', {})[0].value;
    expect(seen).toBeGreaterThanOrEqual(FLOWS);
    expect(find(s1, 'flowpath_flows_exported', {})[0].value).toBe(10);
    for (const s of [s1, s2]) expect(s.length).toBeLessThanOrEqual(BUDGET);
    const k1 = new Set(s1.map((x) => x.key));
    const k2 = new Set(s2.map((x) => x.key));
    const changedKeys = [...[...k1].filter((k) => !k2.has(k)).map((k) => `-${k}`), ...[...k2].filter((k) => !k1.has(k)).map((k) => `+${k}`)];
    const changed = changedKeys.length;
    const byPrefix = new Map<string, number>();
    for (const x of s1) {
      const p = /^(flowpath_flows?_|flowpath_[a-z]+_|[a-z]+_)/.exec(x.name)![1];
      byPrefix.set(p, (byPrefix.get(p) ?? 0) + 1);
    }
    console.log(
      `fleet: ${seen} flows, ${s1.length} / ${s2.length} series, ${changed} changed (${((100 * changed) / s1.length).toFixed(2)}%); ` +
        [...byPrefix].sort((x, y) => y[1] - x[1]).map(([p, n]) => `${p}* ${n}`).join(', ') +
        (changed ? `; changed: ${changedKeys.slice(0, 20).join(' ')}` : ''),
    );
    expect(changed / s1.length).toBeLessThan(0.02);
    // Every flow is in its service's counters; none of them is left out.
    expect(find(s2, 'flowpath_flows_open', { role: 'client', service_port: String(SERVICE) })[0].value).toBe(FLOWS);
  }, 120_000);

  it('says which end is the server, on both ends: an iperf3 flow and a client bound to port 700', async () => {
    const low = await startMany(NS_A, ['connect', B_IP, String(SERVICE), '1', '--bind-port', '700']);
    procs.push(low.proc);
    const watch = `--flows.watch=port = 700 or port = ${IPERF_PORT}`;
    exporters = [await startExporter('a', [watch]), await startExporter('b', [watch])];
    flow = await startFlow('pace', { seconds: 15 });
    await sleep(1500);
    const [a, b] = (await Promise.all(exporters.map((e) => e.scrape()))).map(parse);

    const infos = (s: Series[], l: Record<string, string>) => find(s, 'flowpath_flow_info', l).map((x) => x.labels);
    // iperf3: a control and a data connection, client on A and server on B, service port 5201 on both.
    const sender = infos(a, { local_ip: A_IP, peer_port: String(IPERF_PORT) });
    const receiver = infos(b, { local_ip: B_IP, local_port: String(IPERF_PORT) });
    expect(sender.length).toBeGreaterThanOrEqual(2);
    expect(receiver.length).toBe(sender.length);
    for (const f of sender) expect([f.role, f.service_port]).toEqual(['client', String(IPERF_PORT)]);
    for (const f of receiver) expect([f.role, f.service_port]).toEqual(['server', String(IPERF_PORT)]);
    // The port-700 client: no listener on 700, so a client of 7000 on A; B's accepted end is the server.
    expect(infos(a, { local_port: '700' }).map((f) => [f.role, f.service_port])).toEqual([['client', String(SERVICE)]]);
    expect(infos(b, { peer_port: '700' }).map((f) => [f.role, f.service_port])).toEqual([['server', String(SERVICE)]]);
    // The identity is on every per-flow series, so the receiver's series join the sender's by
    // (peer_ip, service_port) across runs whatever the ephemeral port.
    const rtt = find(a, 'flowpath_flow_rtt_seconds', { peer_ip: B_IP, role: 'client', service_port: String(IPERF_PORT) });
    expect(rtt.length).toBe(sender.length);
  }, 120_000);

  it('per-service counters equal the sum of per-flow deltas, a flow closed between scrapes included', async () => {
    const PORT = SERVICE + 1;
    const srv = await startMany(NS_B, ['serve', String(PORT)]);
    procs.push(srv.proc);
    const few = await startMany(NS_A, ['connect', B_IP, String(PORT), '5', '--bytes', '20000', '--interval', '0.05']);
    procs.push(few.proc);
    // Only these five flows are selected, so every one of them is exported too.
    exporters = [await startExporter('a', [`--flows.select=dport = ${PORT}`])];
    const [a] = exporters;
    const scrape = async () => parse(await a.scrape());
    const perFlow = (s: Series[], name: string) => {
      const m = new Map<string, number>();
      for (const x of find(s, name, { role: 'client', service_port: String(PORT) })) m.set(x.labels.local_port, x.value);
      return m;
    };
    const svc = (s: Series[], name: string) => find(s, name, { role: 'client', service_port: String(PORT) })[0]?.value;
    const PAIRS = [
      ['flowpath_flow_acked_bytes_total', 'flowpath_flows_acked_bytes_total'],
      ['flowpath_flow_busy_seconds_total', 'flowpath_flows_busy_seconds_total'],
      ['flowpath_flow_retransmitted_packets_total', 'flowpath_flows_retransmitted_packets_total'],
    ];
    const s0 = await scrape();
    await sleep(1000);
    const s1 = await scrape();
    expect(perFlow(s1, 'flowpath_flow_acked_bytes_total').size).toBe(5);
    few.proc.stdin.write('close 0\n');
    await sleep(1000);
    const s2 = await scrape();
    expect(perFlow(s2, 'flowpath_flow_acked_bytes_total').size).toBe(4);
    for (const [flowName, svcName] of PAIRS) {
      for (const [from, to] of [
        [s0, s1],
        [s1, s2],
      ]) {
        const before = perFlow(from, flowName);
        let sum = 0;
        for (const [port, v] of perFlow(to, flowName)) sum += v - (before.get(port) ?? 0);
        expect([svcName, svc(to, svcName)! - svc(from, svcName)!]).toEqual([svcName, expect.closeTo(sum, 6)]);
      }
    }
    // Bytes moved in both intervals: a real check, not 0 = 0.
    expect(svc(s2, 'flowpath_flows_acked_bytes_total')! - svc(s0, 'flowpath_flows_acked_bytes_total')!).toBeGreaterThan(100_000);
    expect(svc(s2, 'flowpath_flows_open')).toBe(4);
  }, 120_000);
});
