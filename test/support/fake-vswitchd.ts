// A fake ovs-vswitchd control socket for tests: a unix stream server in a temp run directory with
// ovs-vswitchd.pid and ovs-vswitchd.<pid>.ctl, answering unixctl JSON-RPC from a table of replies.
// Knobs mimic what the real one does (glued replies, OVS 3.1 error shape) and what can go wrong
// (replies split into tiny chunks, a hung daemon, a restart with a new pid).
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

export type Answer = string | { error: string } | ((params: string[]) => string | { error: string });

export interface FakeVswitchdOptions {
  /** method -> reply text, error, or function of params. Unknown methods get OVS's "not a valid command". */
  answers: Record<string, Answer>;
  /** Split every reply into chunks of this many bytes (sent in separate writes with a pause). */
  chunkBytes?: number;
  /** Error shape: "3.1" omits "result"; "new" sends "result": null. */
  errorStyle?: '3.1' | 'new';
}

export class FakeVswitchd {
  readonly rundir: string;
  pid = 4242;
  /** Every request received: [method, ...params]. */
  readonly calls: string[][] = [];
  /** When true, requests are read but never answered. */
  hang = false;
  /** Most requests that were waiting for a reply at the same time (1 = the client never pipelines). */
  maxOutstanding = 0;
  private outstanding = 0;
  private server: net.Server | null = null;
  private readonly conns = new Set<net.Socket>();

  constructor(readonly opts: FakeVswitchdOptions, rundir?: string) {
    this.rundir = rundir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-fakeovs-'));
  }

  get socketPath(): string {
    return path.join(this.rundir, `ovs-vswitchd.${this.pid}.ctl`);
  }

  callsOf(method: string): string[][] {
    return this.calls.filter((c) => c[0] === method);
  }

  async start(): Promise<void> {
    const server = net.createServer((c) => this.onConn(c));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    this.server = server;
    fs.writeFileSync(path.join(this.rundir, 'ovs-vswitchd.pid'), `${this.pid}\n`);
  }

  /** Like a killed daemon: connections reset, socket and pid file gone. */
  async stop(): Promise<void> {
    for (const c of this.conns) c.destroy();
    this.conns.clear();
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
    fs.rmSync(this.socketPath, { force: true });
    fs.rmSync(path.join(this.rundir, 'ovs-vswitchd.pid'), { force: true });
  }

  /** Stop, then start again with a new pid (new socket name), as after `systemctl restart`. */
  async restart(): Promise<void> {
    await this.stop();
    this.pid++;
    await this.start();
  }

  async cleanup(): Promise<void> {
    await this.stop();
    fs.rmSync(this.rundir, { recursive: true, force: true });
  }

  private onConn(c: net.Socket): void {
    this.conns.add(c);
    c.on('close', () => this.conns.delete(c));
    c.on('error', () => undefined);
    let buf = '';
    c.on('data', (d) => {
      buf += d.toString('utf8');
      // Requests from our client are complete objects; split on "}{" boundaries by parsing greedily.
      for (;;) {
        const end = findEnd(buf);
        if (end < 0) break;
        const req = JSON.parse(buf.slice(0, end)) as { method: string; params: string[]; id: number };
        buf = buf.slice(end);
        this.calls.push([req.method, ...req.params]);
        this.outstanding++;
        this.maxOutstanding = Math.max(this.maxOutstanding, this.outstanding);
        if (this.hang) continue;
        void this.reply(c, req);
      }
    });
  }

  private async reply(c: net.Socket, req: { method: string; params: string[]; id: number }): Promise<void> {
    const a = this.opts.answers[req.method];
    let r: string | { error: string };
    if (a === undefined) r = { error: `"${req.method}" is not a valid command (use "list-commands" to see a list of valid commands)\n` };
    else if (typeof a === 'function') r = a(req.params);
    else r = a;
    let msg: object;
    if (typeof r === 'string') msg = { id: req.id, result: r, error: null };
    else msg = this.opts.errorStyle === 'new' ? { id: req.id, result: null, error: r.error } : { id: req.id, error: r.error };
    const bytes = Buffer.from(JSON.stringify(msg));
    const n = this.opts.chunkBytes;
    if (!n) {
      this.outstanding--;
      c.write(bytes);
      return;
    }
    for (let off = 0; off < bytes.length; off += n) {
      if (c.destroyed) return;
      if (off + n >= bytes.length) this.outstanding--;
      c.write(bytes.subarray(off, off + n));
      await new Promise((r2) => setImmediate(r2));
    }
  }
}

function findEnd(s: string): number {
  let depth = 0;
  let inStr = false;
  let esc = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (inStr) {
      if (esc) esc = false;
      else if (ch === '\\') esc = true;
      else if (ch === '"') inStr = false;
    } else if (ch === '"') inStr = true;
    else if (ch === '{') depth++;
    else if (ch === '}') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

const ovsFixture = (name: string) => fs.readFileSync(path.join(__dirname, '../fixtures/ovs', name), 'utf8');

/** The replies of an OVS 3.1 userspace (netdev) datapath, from the captured fixtures. */
export const OVS31: Record<string, Answer> = {
  version: 'ovs-vswitchd (Open vSwitch) 3.1.0\n',
  'dpctl/show': (p) => (p[0] === '-s' ? ovsFixture('dpctl-show-s.netdev-3.1.txt') : { error: 'want -s\n' }),
  'dpif/show': ovsFixture('dpif-show.netdev-3.1.txt'),
  'upcall/show': ovsFixture('upcall-show.netdev-3.1.txt'),
  'dpif-netdev/pmd-stats-show': ovsFixture('pmd-stats-show.main-thread-3.1.txt'),
  'coverage/show': ovsFixture('coverage-show-3.1.txt'),
  // This build defines the upcall/xlate counters but none of the datapath_drop_* ones.
  'coverage/read-counter': (p) => (/^(datapath_drop_|drop_action_)/.test(p[0]) ? { error: 'No such counter\n' } : '0\n'),
};
