// The diagnosis sampler's exact lookups (FlowReader.lookup) on live loopback sockets: a flow closed by
// this end is gone at once, although the kernel's exact lookup still answers for its TIME-WAIT socket
// (found by 4-tuple and cookie, without tcp_info) for another 60 s. Found by the churn soak.
import * as net from 'net';
import { FlowReader } from '../../src/sources/flow-reader';
import { AF_INET, ALL_STATES_MASK, SockDiag } from '../../src/sources/netlink/sockdiag';

it('a flow closed by this end is null at the next lookup, not its TIME-WAIT socket', async () => {
  const srv = net.createServer((c) => {
    c.resume();
    c.on('end', () => c.end());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  const c = net.connect(port, '127.0.0.1');
  await new Promise((r) => c.once('connect', r));
  const lport = c.localPort!;
  const sd = new SockDiag();
  const reader = new FlowReader({ watch: '' });
  try {
    let cookie: string | undefined;
    await sd.dump([{ family: AF_INET, states: ALL_STATES_MASK, bytecode: null }], 0, (v) => {
      if (v.sport === lport && v.dport === port) cookie = v.cookie();
    });
    expect(cookie).toBeDefined();
    const id = { localIp: '127.0.0.1', localPort: lport, peerIp: '127.0.0.1', peerPort: port, cookie };
    const [open] = await reader.lookup([id]);
    expect(open?.state).toBe(1);
    c.end(); // this end closes first: its socket goes to TIME-WAIT once the peer's FIN arrives
    await new Promise((r) => c.once('close', r));
    // the kernel still answers for the 4-tuple and cookie, from the TIME-WAIT socket...
    let tw: number | undefined;
    for (let i = 0; i < 50 && tw !== 6; i++) {
      const [raw] = await sd.lookup([{ family: AF_INET, src: Buffer.from([127, 0, 0, 1, ...new Array(12).fill(0)]), dst: Buffer.from([127, 0, 0, 1, ...new Array(12).fill(0)]), sport: lport, dport: port, ifindex: 0, cookie: [Number(BigInt(cookie!) & 0xffffffffn), Number(BigInt(cookie!) >> 32n)] }]);
      tw = raw?.state;
      if (tw !== 6) await new Promise((r) => setTimeout(r, 20));
    }
    expect(tw).toBe(6);
    // ...and the flow reader reports the flow gone
    expect(await reader.lookup([id])).toEqual([null]);
  } finally {
    reader.close();
    sd.close();
    c.destroy();
    srv.close();
  }
});
