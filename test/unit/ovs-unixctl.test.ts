import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { NotFoundError, discoverUnixctl } from '../../src/sources/ovs/discover';
import { UnixctlClient, UnixctlCommandError, UnixctlTransportError } from '../../src/sources/ovs/unixctl';
import { FakeVswitchd } from '../support/fake-vswitchd';

const fakes: FakeVswitchd[] = [];
const clients: UnixctlClient[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const f of fakes.splice(0)) await f.cleanup();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function setup(answers: ConstructorParameters<typeof FakeVswitchd>[0]['answers'], timeoutMs = 500, chunkBytes?: number) {
  const f = new FakeVswitchd({ answers, chunkBytes });
  fakes.push(f);
  await f.start();
  const c = new UnixctlClient({ resolve: () => discoverUnixctl({ rundir: f.rundir }), timeoutMs });
  clients.push(c);
  return { f, c };
}

describe('UnixctlClient', () => {
  it('runs commands over one connection; an error reply keeps the connection', async () => {
    const { f, c } = await setup({ version: 'ovs-vswitchd (Open vSwitch) 3.1.0\n', 'coverage/read-counter': (p) => (p[0] === 'x' ? '7\n' : { error: 'No such counter\n' }) });
    expect(await c.call('version')).toBe('ovs-vswitchd (Open vSwitch) 3.1.0\n');
    await expect(c.call('coverage/read-counter', ['nope'])).rejects.toThrow(UnixctlCommandError);
    await expect(c.call('coverage/read-counter', ['nope'])).rejects.toThrow(/ovs-vswitchd answered with an error: No such counter$/);
    expect(await c.call('coverage/read-counter', ['x'])).toBe('7\n');
    await expect(c.call('nosuch')).rejects.toThrow(/"nosuch" is not a valid command/);
    expect(c.connects).toBe(1);
    expect(c.endpoint?.how).toBe(`${f.rundir}/ovs-vswitchd.pid (pid ${f.pid})`);
    expect(f.calls).toEqual([['version'], ['coverage/read-counter', 'nope'], ['coverage/read-counter', 'nope'], ['coverage/read-counter', 'x'], ['nosuch']]);
  });

  it('sends one request at a time, matching replies to calls', async () => {
    // Replies trickle out in 3-byte chunks, so a pipelining client would have several requests pending.
    const { f, c } = await setup({ echo: (p) => `${p[0]}\n` }, 2000, 3);
    const got = await Promise.all(['a', 'b', 'c', 'd'].map((x) => c.call('echo', [x])));
    expect(got).toEqual(['a\n', 'b\n', 'c\n', 'd\n']);
    expect(f.calls.map((x) => x[1])).toEqual(['a', 'b', 'c', 'd']);
    expect(f.maxOutstanding).toBe(1);
  });

  it('times out on a hung daemon, drops that connection and reconnects on the next call', async () => {
    const { f, c } = await setup({ version: 'v\n' }, 200);
    expect(await c.call('version')).toBe('v\n');
    f.hang = true;
    await expect(c.call('version')).rejects.toThrow(UnixctlTransportError);
    expect(c.connected).toBe(false);
    f.hang = false;
    expect(await c.call('version')).toBe('v\n');
    expect(c.connects).toBe(2);
  });

  it('follows ovs-vswitchd to its new socket after a restart (new pid)', async () => {
    const { f, c } = await setup({ version: 'v\n' });
    await c.call('version');
    const first = c.endpoint!.path;
    await f.stop();
    await expect(c.call('version')).rejects.toThrow(UnixctlTransportError);
    f.pid++; // a restarted daemon has a new pid, so a new socket name
    await f.start();
    expect(await c.call('version')).toBe('v\n');
    expect(c.endpoint!.path).not.toBe(first);
    expect(c.connects).toBe(2);
  });

  it('drops the connection on a garbled stream', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-garble-'));
    dirs.push(dir);
    const sock = path.join(dir, 'x.ctl');
    const srv = net.createServer((s) => s.on('data', () => s.write('hello')));
    await new Promise<void>((r) => srv.listen(sock, () => r()));
    try {
      const c = new UnixctlClient({ resolve: async () => ({ path: sock, how: 'test' }), timeoutMs: 500 });
      clients.push(c);
      await expect(c.call('version')).rejects.toThrow(/protocol error.*unexpected character "h"/);
      expect(c.connected).toBe(false);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});

describe('discoverUnixctl', () => {
  it('explains every place it looked', async () => {
    const a = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-rundir-'));
    const b = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-rundir-'));
    const c = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-rundir-'));
    dirs.push(a, b, c);
    fs.writeFileSync(path.join(b, 'ovs-vswitchd.pid'), '123\n'); // pid file, socket missing (crashed daemon)
    fs.writeFileSync(path.join(c, 'ovs-vswitchd.pid'), '77\n');
    fs.writeFileSync(path.join(c, 'ovs-vswitchd.77.ctl'), ''); // a regular file, not a socket
    const err = await discoverUnixctl({ envRundir: a, defaults: [b, c] }).catch((e) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).tried).toEqual([
      `${a}/ovs-vswitchd.pid: ENOENT`,
      `${b}/ovs-vswitchd.123.ctl: ENOENT`,
      `${c}/ovs-vswitchd.77.ctl: not a socket`,
    ]);
  });

  it('uses the first run directory with a live socket, and an explicit path as is', async () => {
    const f = new FakeVswitchd({ answers: {} });
    fakes.push(f);
    await f.start();
    expect(await discoverUnixctl({ envRundir: '/nonexistent-rundir', defaults: [f.rundir] })).toEqual({
      path: f.socketPath,
      how: `${f.rundir}/ovs-vswitchd.pid (pid ${f.pid})`,
      pid: f.pid,
    });
    expect(await discoverUnixctl({ unixctl: '/some/where.ctl', rundir: f.rundir })).toEqual({ path: '/some/where.ctl', how: '--ovs.unixctl' });
  });
});
