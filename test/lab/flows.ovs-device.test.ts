// The flows collector inside the lab's OVS topology (lab/up --topo ovs): each node's address sits on an
// OVS internal port moved into its namespace (a-int, b-int), so an iperf3 flow A -> B must say
// local_device="a-int" on the sender and "b-int" on the receiver, with the same 4-tuple seen from both
// ends and the per-flow series of the watched flow present. Needs root; the lab is torn down in afterAll
// (lab/down), also when an assertion fails.
import { A_IP, B_IP, INT_A, INT_B, IPERF_PORT, labDown, labSkipReason, labUp, startExporter, startFlow, type Exporter, type Flow } from './lab';

const reason = labSkipReason();
const d = reason ? describe.skip : describe;

interface Info {
  labels: Record<string, string>;
}

function flowInfos(text: string): Info[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('flowpath_flow_info{'))
    .map((l) => {
      const labels: Record<string, string> = {};
      for (const m of l.matchAll(/(\w+)="([^"]*)"/g)) labels[m[1]] = m[2];
      return { labels };
    });
}

const value = (text: string, name: string, labels: Record<string, string>) => {
  const line = text.split('\n').find((l) => l.startsWith(name + '{') && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
};

d('flows collector in the OVS lab (root)', () => {
  let flow: Flow | null = null;
  const exporters: Exporter[] = [];

  beforeAll(async () => {
    await labUp({ topo: 'ovs' });
  }, 120_000);

  afterAll(async () => {
    for (const e of exporters) await e.stop().catch(() => undefined);
    await flow?.stop().catch(() => undefined);
    await labDown();
  }, 120_000);

  it('labels the flow with the OVS internal port that holds the local address, on both ends', async () => {
    const watch = `--flows.watch=port = ${IPERF_PORT}`;
    exporters.push(await startExporter('a', [watch]), await startExporter('b', [watch]));
    flow = await startFlow('base', { cc: 'cubic', seconds: 8 });
    await new Promise((r) => setTimeout(r, 1500));
    const [a, b] = await Promise.all(exporters.map((e) => e.scrape()));

    const sender = flowInfos(a).filter((f) => f.labels.peer_port === String(IPERF_PORT) && f.labels.local_ip === A_IP);
    const receiver = flowInfos(b).filter((f) => f.labels.local_port === String(IPERF_PORT) && f.labels.local_ip === B_IP);
    // iperf3 opens a control connection and the data connection.
    expect(sender.length).toBeGreaterThanOrEqual(2);
    for (const f of sender) expect([f.labels.local_device, f.labels.peer_ip, f.labels.role, f.labels.service_port]).toEqual([INT_A, B_IP, 'client', String(IPERF_PORT)]);
    for (const f of receiver) expect([f.labels.local_device, f.labels.peer_ip, f.labels.role, f.labels.service_port]).toEqual([INT_B, A_IP, 'server', String(IPERF_PORT)]);
    // The same connections, seen from both ends.
    const tuple = (f: Info, flip: boolean) =>
      flip ? `${f.labels.peer_ip}:${f.labels.peer_port}-${f.labels.local_ip}:${f.labels.local_port}` : `${f.labels.local_ip}:${f.labels.local_port}-${f.labels.peer_ip}:${f.labels.peer_port}`;
    expect(new Set(sender.map((f) => tuple(f, false)))).toEqual(new Set(receiver.map((f) => tuple(f, true))));

    // The data connection moves bytes: acked on the sender, received on the receiver.
    const acked = sender.map((f) => value(a, 'flowpath_flow_acked_bytes_total', { local_port: f.labels.local_port, peer_port: String(IPERF_PORT) }) ?? 0);
    expect(Math.max(...acked)).toBeGreaterThan(1_000_000);
    expect(value(a, 'flowpath_flows_sockets', { state: 'established' })).toBeGreaterThanOrEqual(2);
  }, 60_000);
});
