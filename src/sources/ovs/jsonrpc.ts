// JSON-RPC 1.0 framing as ovs-vswitchd's unixctl server speaks it (lib/jsonrpc.c, lib/unixctl.c).
// docs/kernel-sources.md §7.2.
//
// Messages on the stream socket have NO delimiter: one JSON value follows another ("}{"), possibly split
// across reads, possibly several in one read. JsonStreamSplitter finds where each top-level value ends by
// counting braces/brackets outside strings (honouring backslash escapes). Its state (depth, inside a
// string, after a backslash) carries over between chunks, so each byte is scanned once however a large
// reply is split. Pure: bytes in, values out.

import { StringDecoder } from 'string_decoder';

/** Thrown for framing/protocol violations; the connection must be dropped (its stream state is unknown). */
export class JsonRpcProtocolError extends Error {
  override readonly name = 'JsonRpcProtocolError';
}

export interface SplitterOptions {
  /** Largest single message accepted, in characters (default 64 MiB). */
  maxMessageChars?: number;
}

export class JsonStreamSplitter {
  private readonly decoder = new StringDecoder('utf8');
  /** Pieces of the value being read (only while inside a value). */
  private parts: string[] = [];
  private partsLen = 0;
  private inValue = false;
  private depth = 0;
  private inString = false;
  private escape = false;
  private readonly max: number;

  constructor(opts: SplitterOptions = {}) {
    this.max = opts.maxMessageChars ?? 64 * 1024 * 1024;
  }

  /** Feed one chunk; returns the complete top-level values it finished, parsed. Throws JsonRpcProtocolError. */
  push(chunk: Buffer | string): unknown[] {
    // Each chunk is scanned once; a value spanning chunks is kept as a list of pieces and joined once.
    const s = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const out: unknown[] = [];
    let start = this.inValue ? 0 : -1;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (!this.inValue) {
        // Between values: skip whitespace; a value must be an object or array.
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
        if (c !== 0x7b /* { */ && c !== 0x5b /* [ */) {
          throw new JsonRpcProtocolError(`unexpected character ${JSON.stringify(s[i])} between JSON-RPC messages`);
        }
        this.inValue = true;
        this.depth = 1;
        start = i;
        continue;
      }
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (c === 0x5c /* \ */) this.escape = true;
        else if (c === 0x22 /* " */) this.inString = false;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) this.depth++;
      else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
        this.depth--;
        if (this.depth === 0) {
          this.parts.push(s.slice(start, i + 1));
          const text = this.parts.length === 1 ? this.parts[0] : this.parts.join('');
          this.parts = [];
          this.partsLen = 0;
          this.inValue = false;
          start = -1;
          try {
            out.push(JSON.parse(text));
          } catch (e) {
            throw new JsonRpcProtocolError(`malformed JSON-RPC message (${(e as Error).message}): ${text.slice(0, 120)}`);
          }
        }
      }
    }
    if (this.inValue && start >= 0 && start < s.length) {
      const piece = s.slice(start);
      this.parts.push(piece);
      this.partsLen += piece.length;
      if (this.partsLen > this.max) throw new JsonRpcProtocolError(`JSON-RPC message larger than ${this.max} characters`);
    }
    return out;
  }

  /** Characters of an unfinished value held so far (0 between values). */
  get pending(): number {
    return this.inValue ? this.partsLen : 0;
  }
}

/** A request as ovs-appctl sends it: params MUST be strings (a number gets an error from OVS). */
export function encodeRequest(id: number, method: string, params: readonly string[]): string {
  for (const p of params) {
    if (typeof p !== 'string') throw new TypeError(`unixctl "${method}": params must be strings`);
  }
  return JSON.stringify({ method, params, id });
}

export type UnixctlReply = { id: unknown; ok: true; text: string } | { id: unknown; ok: false; error: string };

/**
 * Interpret one reply object. Success: {"id":N,"result":"<text>","error":null}. Failure: OVS 3.1 sends
 * {"id":N,"error":"<text>"} without "result"; newer versions add "result":null. A reply with a non-null
 * error is a failure whatever "result" holds. Anything else (a notification, a request from the server,
 * a non-string result) is a protocol error.
 */
export function interpretReply(msg: unknown): UnixctlReply {
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    throw new JsonRpcProtocolError(`JSON-RPC reply is not an object: ${JSON.stringify(msg)?.slice(0, 80)}`);
  }
  const o = msg as Record<string, unknown>;
  if (!('id' in o) || o.id === null) {
    throw new JsonRpcProtocolError(`JSON-RPC message without id (notification or request?): ${JSON.stringify(o).slice(0, 120)}`);
  }
  if ('method' in o) throw new JsonRpcProtocolError(`unexpected JSON-RPC request from the server: ${String(o.method)}`);
  const err = o.error;
  if (err !== undefined && err !== null) {
    return { id: o.id, ok: false, error: (typeof err === 'string' ? err : JSON.stringify(err)).replace(/\n+$/, '') };
  }
  const result = o.result;
  if (typeof result === 'string') return { id: o.id, ok: true, text: result };
  // OVS >= 3.4 with "set-options --format json" can answer with JSON values; we never ask for that.
  throw new JsonRpcProtocolError(`JSON-RPC reply ${String(o.id)} has neither a string result nor an error`);
}
