// A unixctl client for ovs-vswitchd: JSON-RPC over its control socket, spoken directly (no ovs-appctl
// process). docs/kernel-sources.md §7.2.
//
// - One request at a time per connection (calls are queued), like ovs-appctl.
// - Every call has a deadline; a call that misses it drops the connection (the stream may still carry the
//   late reply, so it cannot be reused) and fails with UnixctlTransportError.
// - The socket path is resolved again on every connect (discover.ts), so after ovs-vswitchd restarts
//   (new pid, new <rundir>/ovs-vswitchd.<pid>.ctl) the next call reconnects to the new daemon.
// - A command that OVS rejects ({"error": "..."}) fails with UnixctlCommandError and keeps the connection.

import * as net from 'net';
import type { Discovered } from './discover';
import { JsonRpcProtocolError, JsonStreamSplitter, encodeRequest, interpretReply } from './jsonrpc';

/** ovs-vswitchd answered the request with an error (unknown command, bad argument, ...). */
export class UnixctlCommandError extends Error {
  override readonly name = 'UnixctlCommandError';
  constructor(
    readonly method: string,
    readonly serverMessage: string,
  ) {
    super(`unixctl "${method}": ovs-vswitchd answered with an error: ${serverMessage}`);
  }
}

/** Could not talk to ovs-vswitchd at all: not found, connect refused, closed, timed out, garbled stream. */
export class UnixctlTransportError extends Error {
  override readonly name = 'UnixctlTransportError';
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

export interface UnixctlClientOptions {
  /** Finds the socket path; called on every connect. */
  resolve: () => Promise<Discovered>;
  /** Deadline for connect and for each call, in ms. */
  timeoutMs: number;
  /** Largest reply accepted (characters); default 64 MiB. */
  maxReplyChars?: number;
}

interface Pending {
  id: number;
  method: string;
  resolve: (text: string) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class UnixctlClient {
  private sock: net.Socket | null = null;
  private splitter: JsonStreamSplitter | null = null;
  private pending: Pending | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private closed = false;
  /** Successful connects so far (a reconnect after an ovs-vswitchd restart adds one). */
  connects = 0;
  /** Where the current (or last) connection went. */
  endpoint: Discovered | null = null;

  constructor(private readonly opts: UnixctlClientOptions) {}

  get connected(): boolean {
    return this.sock !== null;
  }

  /** Run one command; resolves with the reply text. Calls are serialized. */
  call(method: string, params: readonly string[] = []): Promise<string> {
    const run = this.chain.then(() => this.doCall(method, params));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Drop the connection (the next call reconnects). */
  disconnect(reason = 'disconnected'): void {
    const s = this.sock;
    this.sock = null;
    this.splitter = null;
    if (s) s.destroy();
    this.failPending(new UnixctlTransportError(reason));
  }

  close(): void {
    this.closed = true;
    this.disconnect('unixctl client closed');
  }

  private async doCall(method: string, params: readonly string[]): Promise<string> {
    if (this.closed) throw new UnixctlTransportError('unixctl client closed');
    if (!this.sock) await this.connect();
    const sock = this.sock;
    if (!sock) throw new UnixctlTransportError('not connected');
    const id = this.nextId++;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.disconnect(`unixctl "${method}": no reply from ovs-vswitchd within ${this.opts.timeoutMs} ms`);
      }, this.opts.timeoutMs);
      this.pending = { id, method, resolve, reject, timer };
      sock.write(encodeRequest(id, method, params));
    });
  }

  private async connect(): Promise<void> {
    let where: Discovered;
    try {
      where = await this.opts.resolve();
    } catch (e) {
      throw new UnixctlTransportError((e as Error).message, 'ENOENT');
    }
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection({ path: where.path });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new UnixctlTransportError(`connect to ${where.path}: timed out after ${this.opts.timeoutMs} ms`, 'ETIMEDOUT'));
      }, this.opts.timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        s.destroy();
        const hint = e.code === 'EACCES' ? ' (the socket is root:openvswitch mode 0750: run as root or in that group)' : '';
        reject(new UnixctlTransportError(`connect to ${where.path} (${where.how}): ${e.code ?? e.message}${hint}`, e.code));
      });
    });
    if (this.closed) {
      sock.destroy();
      throw new UnixctlTransportError('unixctl client closed');
    }
    const splitter = new JsonStreamSplitter({ maxMessageChars: this.opts.maxReplyChars });
    this.sock = sock;
    this.splitter = splitter;
    this.endpoint = where;
    this.connects++;
    sock.unref();
    sock.on('data', (chunk: Buffer) => this.onData(sock, splitter, chunk));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (this.sock === sock) this.disconnect(`connection to ${where.path}: ${e.code ?? e.message}`);
    });
    sock.on('close', () => {
      if (this.sock === sock) this.disconnect(`ovs-vswitchd closed the connection (${where.path})`);
    });
  }

  private onData(sock: net.Socket, splitter: JsonStreamSplitter, chunk: Buffer): void {
    if (this.sock !== sock) return;
    try {
      for (const msg of splitter.push(chunk)) {
        const reply = interpretReply(msg);
        const p = this.pending;
        if (!p || reply.id !== p.id) continue; // a stale reply; ids are unique per connection
        this.pending = null;
        clearTimeout(p.timer);
        if (reply.ok) p.resolve(reply.text);
        else p.reject(new UnixctlCommandError(p.method, reply.error));
      }
    } catch (e) {
      const msg = e instanceof JsonRpcProtocolError ? e.message : `bad reply: ${(e as Error).message}`;
      this.disconnect(`protocol error on ${this.endpoint?.path ?? 'unixctl socket'}: ${msg}`);
    }
  }

  private failPending(err: Error): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    clearTimeout(p.timer);
    p.reject(err);
  }
}
