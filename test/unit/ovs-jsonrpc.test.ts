import * as fs from 'fs';
import * as path from 'path';
import { JsonRpcProtocolError, JsonStreamSplitter, encodeRequest, interpretReply } from '../../src/sources/ovs/jsonrpc';

const fx = (name: string) => fs.readFileSync(path.join(__dirname, '../fixtures/ovs', name));

/** Feed `data` in chunks of the given sizes (cycled) and collect every value. */
function feed(data: Buffer, sizes: number[]): unknown[] {
  const s = new JsonStreamSplitter();
  const out: unknown[] = [];
  let off = 0;
  let i = 0;
  while (off < data.length) {
    const n = sizes[i++ % sizes.length];
    out.push(...s.push(data.subarray(off, off + n)));
    off += n;
  }
  expect(s.pending).toBe(0);
  return out;
}

describe('JsonStreamSplitter', () => {
  const tricky = { id: 3, result: 'a } { ] [ "quoted" \\ back\\slash \u00e9\u4e2d \n}', error: null };

  it('splits values glued together without a delimiter', () => {
    const text = '{"id":1,"result":"x\\n","error":null}{"id":2,"error":"No such counter\\n"}{"id":3,"result":"y","error":null}';
    const s = new JsonStreamSplitter();
    expect(s.push(text)).toEqual([
      { id: 1, result: 'x\n', error: null },
      { id: 2, error: 'No such counter\n' },
      { id: 3, result: 'y', error: null },
    ]);
  });

  it('reassembles values split at every possible byte boundary, braces and quotes inside strings included', () => {
    const one = Buffer.from(JSON.stringify(tricky) + JSON.stringify({ id: 4, result: '}', error: null }));
    for (let cut = 1; cut < one.length; cut++) {
      const s = new JsonStreamSplitter();
      const got = [...s.push(one.subarray(0, cut)), ...s.push(one.subarray(cut))];
      expect(got).toEqual([tricky, { id: 4, result: '}', error: null }]);
    }
  });

  it('handles one-byte chunks (multi-byte UTF-8 split across reads)', () => {
    const data = Buffer.from(JSON.stringify(tricky));
    expect(feed(data, [1])).toEqual([tricky]);
  });

  it('parses a real OVS 3.1 dpctl/show reply fed in odd chunk sizes', () => {
    const raw = fx('jsonrpc-reply.dpctl-show-3.1.json');
    const [msg] = feed(raw, [7, 300, 1, 4096]) as Array<{ id: number; result: string; error: null }>;
    expect(msg.id).toBe(7);
    expect(msg.error).toBeNull();
    expect(msg.result).toContain(', could not retrieve stats (No such device)  port 4: br1 (tap)\n');
    expect(interpretReply(msg)).toEqual({ id: 7, ok: true, text: msg.result });
  });

  it('tolerates whitespace between values', () => {
    expect(new JsonStreamSplitter().push(' {"id":1,"result":"a","error":null}\n\t{"id":2,"result":"b","error":null} ')).toHaveLength(2);
  });

  it('rejects garbage between values and malformed JSON', () => {
    expect(() => new JsonStreamSplitter().push('{"id":1,"result":"a","error":null}x')).toThrow(JsonRpcProtocolError);
    expect(() => new JsonStreamSplitter().push('{"id":1,,}')).toThrow(/malformed JSON-RPC message/);
  });

  it('refuses a message larger than the limit', () => {
    const s = new JsonStreamSplitter({ maxMessageChars: 100 });
    expect(() => s.push('{"id":1,"result":"' + 'x'.repeat(200))).toThrow(/larger than 100/);
  });

  it('holds an unfinished value across many chunks and reports its size', () => {
    const big = JSON.stringify({ id: 1, result: 'port 1: x\n'.repeat(50000), error: null });
    const s = new JsonStreamSplitter();
    expect(s.push(big.slice(0, 1000))).toEqual([]);
    expect(s.pending).toBe(1000);
    expect(s.push(big.slice(1000, 200000))).toEqual([]);
    expect(s.pending).toBe(200000);
    const [v] = s.push(big.slice(200000) + '{"id":2') as Array<{ result: string }>;
    expect(v.result).toBe('port 1: x\n'.repeat(50000));
    expect(s.pending).toBe(7);
  });
});

describe('interpretReply', () => {
  it('accepts success replies', () => {
    expect(interpretReply({ id: 1, result: 'ovs-vswitchd (Open vSwitch) 3.1.0\n', error: null })).toEqual({
      id: 1,
      ok: true,
      text: 'ovs-vswitchd (Open vSwitch) 3.1.0\n',
    });
  });

  it('reads errors from OVS 3.1 (no "result") and newer OVS ("result": null)', () => {
    const real = JSON.parse(fx('jsonrpc-error.read-counter-3.1.json').toString());
    expect('result' in real).toBe(false);
    expect(interpretReply(real)).toEqual({ id: 7, ok: false, error: 'No such counter' });
    expect(interpretReply({ id: 2, result: null, error: 'No such counter\n' })).toEqual({ id: 2, ok: false, error: 'No such counter' });
  });

  it('rejects notifications, requests and non-string results', () => {
    expect(() => interpretReply({ id: null, method: 'echo', params: [] })).toThrow(/without id/);
    expect(() => interpretReply({ id: 5, method: 'echo', params: [] })).toThrow(/unexpected JSON-RPC request/);
    expect(() => interpretReply({ id: 5, result: { a: 1 }, error: null })).toThrow(/neither a string result nor an error/);
    expect(() => interpretReply([1])).toThrow(/not an object/);
  });
});

describe('encodeRequest', () => {
  it('encodes like ovs-appctl, params as strings', () => {
    expect(encodeRequest(1, 'dpctl/show', ['-s'])).toBe('{"method":"dpctl/show","params":["-s"],"id":1}');
    expect(() => encodeRequest(1, 'x', [5 as unknown as string])).toThrow(/must be strings/);
  });
});
