// Many small netlink requests in one datagram, answers matched by sequence number.
//
// The kernel's netlink_rcv_skb() walks every message of a received datagram and answers each one in
// turn; an error on one message (NLMSG_ERROR) does not stop the others. sock_diag's exact lookup
// (inet_diag_cmd_exact, docs/kernel-sources.md §2.4) answers one message per request, or ENOENT when the
// socket is gone or its cookie differs. So polling N known flows costs one sendmsg and N hash lookups
// in the kernel, instead of a dump that walks every socket.
//
// NetlinkSocket (socket.ts) runs one request and one sequence number at a time; this class is the
// batched counterpart, with the same rules: one batch in flight per socket (queued), replies are
// views valid only during the callback, truncated datagrams and malformed messages fail the batch.

import { RawNetlinkSocket } from 'netlink';
import { DecodeError, forEachMessage, NLMSG_DONE, NLMSG_ERROR, NLM_F_REQUEST, type NlMsgView } from './attrs';

/** Called once per request: with the reply message, or with the (negative) errno of an NLMSG_ERROR. */
export type BatchReply = (index: number, reply: NlMsgView | null, errno: number) => void;

export interface BatchOptions {
  /** Receive buffer per datagram (default 16 KiB: exact sock_diag answers are ~0.5 KiB each). */
  msgBufferSize?: number;
  recvBufferSize?: number;
  timeoutMs?: number;
}

const MAX_DATAGRAM = 32 * 1024;

export class NetlinkBatchSocket {
  private sock: RawNetlinkSocket | null;
  private seq = Math.floor(Math.random() * 0x3fffffff);
  private busy: Promise<unknown> = Promise.resolve();
  private onDatagram: ((buf: Buffer) => void) | null = null;
  private onFailure: ((e: Error) => void) | null = null;
  private readonly timeoutMs: number;

  constructor(
    readonly protocol: number,
    opts: BatchOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.sock = new RawNetlinkSocket(protocol, {
      messagePeeking: false,
      msgBufferSize: opts.msgBufferSize ?? 16384,
      recvBufferSize: opts.recvBufferSize ?? 1 << 20,
      sendBufferSize: 1 << 18,
    });
    this.sock.on('message', (buf) => this.onDatagram?.(buf));
    this.sock.on('truncatedMessage', (msg, info) =>
      this.onFailure?.(new DecodeError('netlink datagram', 0, `truncated: ${info.truncated ?? '?'} bytes did not fit a ${msg.length}-byte buffer`)),
    );
    this.sock.on('error', (err) => this.onFailure?.(new Error(`netlink socket error: ${err.message}`)));
    this.sock.unref();
  }

  /**
   * Send `bodies` as messages of `type` (flags | NLM_F_REQUEST), packed into as few datagrams as fit,
   * and call `onReply` once per body. Resolves when every request has its answer.
   */
  exchange(type: number, flags: number, bodies: readonly Buffer[], context: string, onReply: BatchReply): Promise<void> {
    const run = this.busy.then(() => this.run(type, flags, bodies, context, onReply));
    this.busy = run.catch(() => undefined);
    return run;
  }

  close(): void {
    const s = this.sock;
    this.sock = null;
    this.onFailure?.(new Error('netlink socket closed'));
    try {
      s?.close();
    } catch {
      /* already closed */
    }
  }

  private run(type: number, flags: number, bodies: readonly Buffer[], context: string, onReply: BatchReply): Promise<void> {
    if (bodies.length === 0) return Promise.resolve();
    const sock = this.sock;
    if (!sock) return Promise.reject(new Error(`${context}: netlink socket closed`));
    return new Promise<void>((resolve, reject) => {
      const base = (this.seq = (this.seq + bodies.length + 1) & 0x3fffffff);
      const answered = new Uint8Array(bodies.length);
      let pending = bodies.length;
      let done = false;
      const finish = (err: Error | null) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.onDatagram = null;
        this.onFailure = null;
        sock.unref();
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(
        () => finish(new Error(`${context}: ${pending} of ${bodies.length} answers missing after ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      this.onFailure = (e) => finish(e);
      this.onDatagram = (buf) => {
        try {
          forEachMessage(buf, (m) => {
            if (done) return;
            const i = (m.seq - base) >>> 0;
            if (i >= bodies.length || answered[i]) return; // stale answer of an earlier batch
            if (m.type === NLMSG_DONE) return;
            let errno = 0;
            if (m.type === NLMSG_ERROR) {
              if (m.end - m.start < 4) throw new DecodeError(`${context} NLMSG_ERROR`, m.start, 'payload shorter than 4 bytes');
              errno = m.buf.readInt32LE(m.start);
              if (errno === 0) return; // an ACK after a reply (not requested, but harmless)
            }
            answered[i] = 1;
            pending--;
            onReply(i, errno === 0 ? m : null, errno);
          });
        } catch (e) {
          finish(e as Error);
          return;
        }
        if (pending === 0) finish(null);
      };
      sock.ref();
      // Pack the requests into datagrams of at most 32 KiB, each written in place into one buffer.
      let first = 0;
      while (first < bodies.length) {
        let size = 0;
        let end = first;
        while (end < bodies.length) {
          const len = (16 + bodies[end].length + 3) & ~3;
          if (end > first && size + len > MAX_DATAGRAM) break;
          size += len;
          end++;
        }
        const dgram = Buffer.alloc(size);
        let off = 0;
        for (let i = first; i < end; i++) {
          const len = 16 + bodies[i].length;
          dgram.writeUInt32LE(len, off);
          dgram.writeUInt16LE(type, off + 4);
          dgram.writeUInt16LE(flags | NLM_F_REQUEST, off + 6);
          dgram.writeUInt32LE((base + i) >>> 0, off + 8);
          bodies[i].copy(dgram, off + 16);
          off += (len + 3) & ~3;
        }
        first = end;
        sock.send(dgram, { port: 0 }, (err) => {
          if (err) finish(new Error(`${context}: send failed: ${err.message}`));
        });
      }
    });
  }
}
