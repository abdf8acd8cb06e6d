// The diagnosis sampler's flow reader (src/sources/flow-reader.ts) against loopback connections opened
// by this test: discovery finds the established sockets the candidate or watch selector matches and marks
// the watched ones; exact lookups (4-tuple + cookie) find them and answer null once a socket is closed.
import * as net from 'net';
import { FlowId, FlowReader } from '../../src/sources/flow-reader';
import { TCPI } from '../../src/sources/netlink/tcpinfo';

let server: net.Server;
const sockets: net.Socket[] = [];
let port = 0;

beforeAll(async () => {
  server = net.createServer((c) => {
    c.on('error', () => undefined);
    sockets.push(c);
  });
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  port = (server.address() as net.AddressInfo).port;
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve, reject) => {
      const c = net.connect({ host: '127.0.0.1', port }, () => resolve());
      c.on('error', reject);
      sockets.push(c);
    });
  }
  await new Promise((r) => setTimeout(r, 100));
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

describe('FlowReader (live, loopback)', () => {
  it('discovers the matching established sockets, marks the watched ones, and looks them up exactly', async () => {
    const reader = new FlowReader({ watch: `dport = ${port}`, candidates: `sport = ${port} and state established` });
    try {
      const seen: Array<FlowId & { watched: boolean; hasInfo: boolean }> = [];
      await reader.discover((v, watched) =>
        seen.push({ localIp: v.localIp(), localPort: v.sport, peerIp: v.peerIp(), peerPort: v.dport, cookie: String(v.cookie()), watched, hasInfo: v.tcp(TCPI.sndCwnd) !== undefined }),
      );
      // 3 client ends (watched: dport = port) and 3 server ends (candidates: sport = port); no listener.
      expect(seen.filter((s) => s.watched).map((s) => s.peerPort)).toEqual([port, port, port]);
      expect(seen.filter((s) => !s.watched).map((s) => s.localPort)).toEqual([port, port, port]);
      expect(seen.every((s) => s.hasInfo)).toBe(true);

      const views = await reader.lookup(seen);
      expect(views.map((v) => (v ? `${v.sport}-${v.dport}` : null))).toEqual(seen.map((s) => `${s.localPort}-${s.peerPort}`));

      // Close one connection: its ends are gone or no longer established (the active closer's end may
      // linger in TIME_WAIT, a socket without tcp_info); the other connections still resolve.
      const client = seen.find((s) => s.watched) as FlowId;
      const server = seen.find((s) => !s.watched && s.peerPort === client.localPort) as FlowId;
      sockets.find((s) => s.localPort === client.localPort && s.remotePort === port)!.destroy();
      const closed = new Set([seen.indexOf(client as never), seen.indexOf(server as never)]);
      // The close happens on the next event-loop turn; wait for it (bounded), not for a fixed time.
      let after = await reader.lookup(seen);
      for (let i = 0; i < 100 && [...closed].some((j) => after[j]?.state === 1); i++) {
        await new Promise((r) => setTimeout(r, 20));
        after = await reader.lookup(seen);
      }
      after.forEach((v, i) => {
        if (closed.has(i)) expect(v === null || v.state !== 1).toBe(true);
        else expect(v?.state).toBe(1);
      });
    } finally {
      reader.close();
    }
  });

  it('a watch selector that does not compile is refused when the reader is built', () => {
    expect(() => new FlowReader({ watch: 'dport = = 1' })).toThrow();
  });
});
