// Exact sock_diag lookups by 4-tuple + cookie (many per datagram) against a dump of the same sockets:
// IPv4, IPv6 and v4-mapped loopback connections opened by this test (Node sockets, no options needed).
import * as net from 'net';
import { compileSelector } from '../../src/sources/flowselect';
import { NlMsgView } from '../../src/sources/netlink/attrs';
import { NetlinkBatchSocket } from '../../src/sources/netlink/batch';
import { EXT_FLOWS, SOCK_DIAG_BY_FAMILY, SockDiag, SockView, buildExactRequest, sockKeyOf } from '../../src/sources/netlink/sockdiag';
import { NETLINK_SOCK_DIAG } from '../../src/sources/netlink/socket';
import { tupleKey } from '../support/ss';

const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
let sd: SockDiag;
const ports: number[] = [];

function listen(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer((c) => {
      c.on('error', () => undefined);
      sockets.push(c);
    });
    servers.push(s);
    s.on('error', reject);
    s.listen({ host, port: 0, ipv6Only: false }, () => resolve((s.address() as net.AddressInfo).port));
  });
}

function connect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host, port }, () => resolve(c));
    c.on('error', reject);
    sockets.push(c);
  });
}

async function dumpOurs(): Promise<Map<string, SockView>> {
  const sel = compileSelector(`(${ports.map((p) => `port = ${p}`).join(' or ')}) and state established`);
  const out = new Map<string, SockView>();
  await sd.dump(sel.plans, EXT_FLOWS, (v) => out.set(tupleKey(v.localIp(), v.sport, v.peerIp(), v.dport), v.copy()));
  return out;
}

beforeAll(async () => {
  sd = new SockDiag();
  ports.push(await listen('127.0.0.1'), await listen('::1'), await listen('::ffff:127.0.0.1'));
  for (let i = 0; i < 100; i++) await connect('127.0.0.1', ports[0]);
  for (let i = 0; i < 50; i++) await connect('::1', ports[1]);
  for (let i = 0; i < 50; i++) await connect('127.0.0.1', ports[2]);
  await new Promise((r) => setTimeout(r, 200));
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  sd?.close();
});

describe.each([
  ['write/read on the descriptor', false],
  ["the netlink package's send and receive", true],
])('exact lookups vs the dump (live, loopback), %s', (_io, packageIo) => {
  beforeAll(() => {
    sd?.close();
    sd = new SockDiag({ packageIo });
  });

  it('uses the I/O it was asked for', async () => {
    await sd.lookup([sockKeyOf({ localIp: '127.0.0.1', localPort: 1, peerIp: '127.0.0.1', peerPort: 2 })]);
    expect(sd.lookupDirect).toBe(!packageIo);
  });

  it('finishes a batch within the call on the descriptor (no promise), and only there', async () => {
    const dumped = [...(await dumpOurs()).values()].slice(0, 10);
    const bodies = dumped.map((v) => buildExactRequest(v.key(), EXT_FLOWS));
    const seen: number[] = [];
    const pending = sd.lookupEachNow(bodies, (i) => void seen.push(i));
    if (packageIo) {
      expect(pending).toBeInstanceOf(Promise);
      expect(seen).toEqual([]); // the package's receive path answers in a later turn
      await pending;
    } else {
      expect(pending).toBeUndefined();
    }
    expect(seen.sort((a, b) => a - b)).toEqual(dumped.map((_, i) => i));
  });

  it('queues a batch asked for while another is in flight, and answers both in their places, in order', async () => {
    const views = [...(await dumpOurs()).values()];
    const a = views.slice(0, 5).map((v) => buildExactRequest(v.key(), EXT_FLOWS));
    const b = views.slice(5, 12).map((v) => buildExactRequest(v.key(), EXT_FLOWS));
    const sock = new NetlinkBatchSocket(NETLINK_SOCK_DIAG, { packageIo, msgBufferSize: 4096 });
    try {
      const got: Array<[string, number]> = [];
      const view = new SockView(sd.layout);
      const onReply = (batch: string) => (_i: number, m: NlMsgView | null) => {
        if (m) got.push([batch, view.attach(m.buf, m.start, m.end).sport]);
      };
      // exchange() starts its batch behind the socket's chain (a later turn): it is in flight, so the
      // second batch cannot run within its call and is queued after it.
      const first = sock.exchange(SOCK_DIAG_BY_FAMILY, 0, a, 'first', onReply('a'));
      const second = sock.exchangeNow(SOCK_DIAG_BY_FAMILY, 0, b, 'second', onReply('b'));
      expect(second).toBeInstanceOf(Promise);
      expect(got).toEqual([]);
      await Promise.all([first, second]);
      expect(got).toEqual([...views.slice(0, 5).map((v) => ['a', v.sport]), ...views.slice(5, 12).map((v) => ['b', v.sport])]);
      // Nothing in flight any more: on the descriptor the next batch finishes within its call.
      const third = sock.exchangeNow(SOCK_DIAG_BY_FAMILY, 0, a, 'third', onReply('c'));
      if (packageIo) await third;
      else expect(third).toBeUndefined();
      expect(got.filter((g) => g[0] === 'c')).toHaveLength(5);
    } finally {
      sock.close();
    }
  });

  it('fails a round whose answer does not fit the receive buffer, and says so', async () => {
    const small = new SockDiag({ packageIo, lookupBufferSize: 64 });
    try {
      const [v] = [...(await dumpOurs()).values()];
      await expect(small.lookup([v.key()])).rejects.toThrow(/truncated/);
    } finally {
      small.close();
    }
  });

  it('finds 400 sockets (both ends of 200 connections) in one batch, the same as the dump', async () => {
    const dumped = await dumpOurs();
    expect(dumped.size).toBe(400);
    const views = [...dumped.values()];
    const found = await sd.lookup(views.map((v) => v.key()));
    expect(found.length).toBe(400);
    views.forEach((v, i) => {
      const f = found[i];
      expect(f).not.toBeNull();
      const a = v.record();
      const b = f!.record();
      expect([b.localIp, b.localPort, b.peerIp, b.peerPort, b.cookie, b.family, b.state]).toEqual([a.localIp, a.localPort, a.peerIp, a.peerPort, a.cookie, a.family, a.state]);
      // Idle sockets: the tcp_info that does not move with the clock is the same.
      for (const k of ['sndMss', 'sndCwnd', 'bytesAcked', 'bytesReceived', 'segsOut', 'rcvWnd', 'sndWnd']) expect([k, b.tcpInfo![k]]).toEqual([k, a.tcpInfo![k]]);
      expect(b.skmem).toEqual(a.skmem);
      expect(b.cc).toBe(a.cc);
    });
    const mapped = views.filter((v) => v.localIp().startsWith('::ffff:'));
    expect(mapped.length).toBe(50);
  });

  it('answers null where the cookie is wrong or the 4-tuple does not exist, in the right positions', async () => {
    const views = [...(await dumpOurs()).values()].slice(0, 3);
    const keys = views.map((v) => v.key());
    const wrongCookie = { ...keys[1], cookie: [keys[1].cookie![0] + 1, keys[1].cookie![1]] as [number, number] };
    const noSuch = sockKeyOf({ localIp: '127.0.0.1', localPort: 1, peerIp: '127.0.0.1', peerPort: 2 });
    const r = await sd.lookup([keys[0], wrongCookie, noSuch, keys[2]]);
    expect(r.map((x) => x?.cookie() ?? null)).toEqual([views[0].cookie(), null, null, views[2].cookie()]);
    // Without a cookie the 4-tuple alone finds the socket.
    const [any] = await sd.lookup([{ ...keys[1], cookie: undefined }]);
    expect(any!.cookie()).toBe(views[1].cookie());
  });

  it('packs more requests than one datagram holds and answers each in its place, round after round', async () => {
    // 700 requests of 72 bytes do not fit one 32 KiB datagram: two datagrams, the live sockets spread
    // over both, sent twice (new sequence numbers the second time).
    const views = [...(await dumpOurs()).values()].slice(0, 7);
    const bodies: Buffer[] = [];
    const want: Array<string | null> = [];
    for (let i = 0; i < 700; i++) {
      const live = i % 100 === 99 ? views[(i - 99) / 100] : undefined;
      const key = live ? live.key() : sockKeyOf({ localIp: '127.0.0.1', localPort: 1 + i, peerIp: '127.0.0.1', peerPort: 2 });
      bodies.push(buildExactRequest(key, EXT_FLOWS));
      want.push(live ? live.cookie() : null);
    }
    expect(bodies.reduce((n, b) => n + 16 + b.length, 0)).toBeGreaterThan(32 * 1024);
    for (let round = 0; round < 2; round++) {
      const r = await sd.lookupPrepared(bodies);
      expect(r.map((v) => v?.cookie() ?? null)).toEqual(want);
    }
  });

  it('reuses prepared requests (the 20 Hz polling path) and sees a closed connection go away', async () => {
    const client = await connect('127.0.0.1', ports[0]); // its own: the other I/O's tests count 400
    const k = sockKeyOf({ localIp: client.localAddress!, localPort: client.localPort!, peerIp: client.remoteAddress!, peerPort: client.remotePort! });
    const peer = sockKeyOf({ localIp: client.remoteAddress!, localPort: client.remotePort!, peerIp: client.localAddress!, peerPort: client.localPort! });
    const bodies = [buildExactRequest(k, EXT_FLOWS), buildExactRequest(peer, EXT_FLOWS)];
    for (let i = 0; i < 20; i++) {
      const r = await sd.lookupPrepared(bodies);
      expect(r.map((v) => v?.state)).toEqual([1, 1]);
    }
    client.destroy();
    await new Promise((r) => setTimeout(r, 300));
    const after = await sd.lookupPrepared(bodies);
    // The closing end lingers in TIME_WAIT (no tcp_info); the other end is gone or closing.
    expect(after[0] === null || after[0].state === 6).toBe(true);
    expect(after[1] === null || after[1].state !== 1).toBe(true);
    if (after[0]) expect(after[0].hasInfo).toBe(false);
  });
});
