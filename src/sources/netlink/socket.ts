// A request/response netlink socket over the npm `netlink` package's RawNetlinkSocket.
//
// Rules from docs/kernel-sources.md §1 that this class enforces:
// - messagePeeking off and a 64 KiB receive buffer, so the kernel packs dumps into ~32 KiB datagrams and
//   large dump messages do not fail with EMSGSIZE;
// - one request in flight per socket (a second dump would get EBUSY): requests are queued;
// - the s32 error inside NLMSG_DONE is read (a dump that failed part-way ends there, not in NLMSG_ERROR);
// - NLM_F_DUMP_INTR is reported to the caller (the dump may be inconsistent);
// - a truncated datagram fails the request instead of being decoded.
//
// Messages are handed to the caller as views into the received datagram (no copy), so decoders can work
// lazily: sock_diag at 10k sockets decodes only what it exports.

import { RawNetlinkSocket } from 'netlink';
import {
  DecodeError,
  NLMSG_DONE,
  NLMSG_HDRLEN,
  NLMSG_ERROR,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  type NlMsgView,
} from './attrs';
import { errnoName } from './errno';

export const NETLINK_ROUTE = 0;
export const NETLINK_SOCK_DIAG = 4;
export const NETLINK_GENERIC = 16;

/** A negative errno from the kernel (NLMSG_ERROR or the error inside NLMSG_DONE). */
export class NetlinkError extends Error {
  override readonly name = 'NetlinkError';
  readonly code: string;
  constructor(
    readonly errno: number,
    readonly context: string,
  ) {
    const code = errnoName(errno);
    super(`${context}: kernel answered ${code} (${-errno === 0 ? 0 : errno})`);
    this.code = code;
  }
}

export interface RequestOptions {
  /** Send as a dump (NLM_F_DUMP) and collect messages until NLMSG_DONE. */
  dump?: boolean;
  /** Called for each data message (not ERROR/DONE). The view is valid only during the call. */
  onMessage: (m: NlMsgView) => void;
  /** Milliseconds before the request fails with a timeout. */
  timeoutMs?: number;
  /** Name used in error messages, e.g. "sock_diag dump AF_INET". */
  context: string;
  /** For non-dump requests: how many reply messages to wait for (default 1; 0 = until the ACK). */
  expect?: number;
}

export interface RequestResult {
  /** NLM_F_DUMP_INTR was set on some message: the dump raced with a change and may be inconsistent. */
  interrupted: boolean;
  messages: number;
  datagrams: number;
}

interface Pending {
  seq: number;
  opts: RequestOptions;
  result: RequestResult;
  resolve: (r: RequestResult) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
  remaining: number;
  ackRequested: boolean;
}

export interface NetlinkSocketOptions {
  /** Receive buffer per read; 32–64 KiB (default 64 KiB). */
  msgBufferSize?: number;
  /** SO_RCVBUF; default 1 MiB so large dumps are not dropped while JS is busy. */
  recvBufferSize?: number;
  timeoutMs?: number;
}

export class NetlinkSocket {
  private sock: RawNetlinkSocket | null;
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private current: Pending | null = null;
  private readonly queue: Array<() => void> = [];
  private readonly timeoutMs: number;
  private closed = false;

  constructor(
    readonly protocol: number,
    opts: NetlinkSocketOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.sock = new RawNetlinkSocket(protocol, {
      messagePeeking: false,
      msgBufferSize: opts.msgBufferSize ?? 65536,
      recvBufferSize: opts.recvBufferSize ?? 1 << 20,
      sendBufferSize: 1 << 16,
    });
    this.sock.on('message', (msg) => this.onDatagram(msg));
    this.sock.on('truncatedMessage', (msg, info) => {
      this.fail(new DecodeError('netlink datagram', 0, `truncated: ${info.truncated ?? '?'} bytes did not fit a ${msg.length}-byte buffer`));
    });
    this.sock.on('error', (err) => this.fail(new Error(`netlink socket error: ${err.message}`)));
    // Do not keep the process alive just for an idle socket.
    this.sock.unref();
  }

  /** Send one request and process its replies. Requests on one socket run one at a time. */
  request(body: Buffer, type: number, flags: number, opts: RequestOptions): Promise<RequestResult> {
    return new Promise<RequestResult>((resolve, reject) => {
      const start = () => {
        if (this.closed || !this.sock) {
          reject(new Error(`${opts.context}: netlink socket closed`));
          this.next();
          return;
        }
        const seq = (this.seq = (this.seq + 1) >>> 0);
        const dump = opts.dump === true;
        const ackRequested = !dump && opts.expect === 0;
        const f = flags | NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0) | (ackRequested ? NLM_F_ACK : 0);
        const msg = Buffer.alloc(16 + body.length);
        msg.writeUInt32LE(msg.length, 0);
        msg.writeUInt16LE(type, 4);
        msg.writeUInt16LE(f, 6);
        msg.writeUInt32LE(seq, 8);
        msg.writeUInt32LE(0, 12);
        body.copy(msg, 16);
        const p: Pending = {
          seq,
          opts,
          result: { interrupted: false, messages: 0, datagrams: 0 },
          resolve,
          reject,
          remaining: dump ? Infinity : (opts.expect ?? 1),
          ackRequested,
        };
        this.current = p;
        this.sock.ref();
        p.timer = setTimeout(
          () => this.finish(p, new Error(`${opts.context}: no complete answer within ${opts.timeoutMs ?? this.timeoutMs} ms`)),
          opts.timeoutMs ?? this.timeoutMs,
        );
        this.sock.send(msg, { port: 0 }, (err) => {
          if (err) this.finish(p, new Error(`${opts.context}: send failed: ${err.message}`));
        });
      };
      if (this.current) this.queue.push(start);
      else start();
    });
  }

  /** Convenience: collect copies of every reply message's payload. */
  async collect(body: Buffer, type: number, flags: number, opts: Omit<RequestOptions, 'onMessage'>): Promise<{ messages: Array<{ type: number; flags: number; payload: Buffer }>; interrupted: boolean }> {
    const messages: Array<{ type: number; flags: number; payload: Buffer }> = [];
    const r = await this.request(body, type, flags, {
      ...opts,
      onMessage: (m) => messages.push({ type: m.type, flags: m.flags, payload: Buffer.from(m.buf.subarray(m.start, m.end)) }),
    });
    return { messages, interrupted: r.interrupted };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fail(new Error('netlink socket closed'));
    for (const start of this.queue.splice(0)) start();
    try {
      this.sock?.close();
    } catch {
      /* already closed */
    }
    this.sock = null;
  }

  private onDatagram(buf: Buffer): void {
    const p = this.current;
    if (!p) return; // a late answer to a request that timed out
    p.result.datagrams++;
    // The message walk of forEachMessage (attrs.ts), inlined: a dump hands every socket of the system
    // through here, and a shared walker's callback call cannot be inlined. One view object per datagram,
    // valid only during onMessage (the documented contract).
    const m: NlMsgView = { type: 0, flags: 0, seq: 0, pid: 0, buf, start: 0, end: 0 };
    const n = buf.length;
    const seq = p.seq;
    const onMessage = p.opts.onMessage;
    let off = 0;
    try {
      while (off + NLMSG_HDRLEN <= n) {
        const len = (buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16)) + buf[off + 3] * 16777216;
        if (len < NLMSG_HDRLEN || off + len > n) {
          throw new DecodeError('nlmsghdr', off, `message length ${len} does not fit the ${n - off} bytes left`);
        }
        const type = buf[off + 4] | (buf[off + 5] << 8);
        const flags = buf[off + 6] | (buf[off + 7] << 8);
        const mseq = (buf[off + 8] | (buf[off + 9] << 8) | (buf[off + 10] << 16)) + buf[off + 11] * 16777216;
        const start = off + NLMSG_HDRLEN;
        const end = off + len;
        off += (len + 3) & ~3;
        if (this.current !== p) return;
        if (mseq !== seq) continue; // stale reply of an earlier (timed-out) request
        if (flags & NLM_F_DUMP_INTR) p.result.interrupted = true;
        switch (type) {
          case NLMSG_NOOP:
          case NLMSG_OVERRUN:
            continue;
          case NLMSG_ERROR: {
            if (end - start < 4) throw new DecodeError(`${p.opts.context} NLMSG_ERROR`, start, 'payload shorter than 4 bytes');
            const errno = buf.readInt32LE(start);
            if (errno === 0) {
              // ACK
              this.finish(p, null);
              continue;
            }
            this.finish(p, new NetlinkError(errno, p.opts.context));
            continue;
          }
          case NLMSG_DONE: {
            const errno = end - start >= 4 ? buf.readInt32LE(start) : 0;
            this.finish(p, errno < 0 ? new NetlinkError(errno, `${p.opts.context} (error inside NLMSG_DONE)`) : null);
            continue;
          }
          default:
            p.result.messages++;
            m.type = type;
            m.flags = flags;
            m.seq = mseq;
            m.pid = (buf[start - 4] | (buf[start - 3] << 8) | (buf[start - 2] << 16)) + buf[start - 1] * 16777216;
            m.start = start;
            m.end = end;
            onMessage(m);
            if (!(flags & NLM_F_MULTI) && p.remaining !== Infinity) {
              p.remaining--;
              if (p.remaining <= 0 && !p.ackRequested) this.finish(p, null);
            }
        }
      }
    } catch (e) {
      this.finish(p, e as Error);
    }
  }

  private fail(err: Error): void {
    if (this.current) this.finish(this.current, err);
  }

  private finish(p: Pending, err: Error | null): void {
    if (this.current !== p) return;
    this.current = null;
    if (p.timer) clearTimeout(p.timer);
    this.sock?.unref();
    if (err) p.reject(err);
    else p.resolve(p.result);
    this.next();
  }

  private next(): void {
    const start = this.queue.shift();
    if (start) start();
  }
}
