// The live flow source answers a batch in which one key cannot name a socket (not an address) or names
// no socket: those are null, the others are still looked up; nothing throws. The answer comes back within
// the call (no promise) when the batch is written and read on the socket's descriptor.
import * as net from 'net';
import { SockDiagFlowSource } from '../../src/diagnosis/adapters';

describe('SockDiagFlowSource.lookup with keys no socket can have', () => {
  it('answers null for them and the real socket for the others', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
    const src = new SockDiagFlowSource({ watch: '' });
    try {
      const real = { localIp: '127.0.0.1', localPort: client.localPort as number, peerIp: '127.0.0.1', peerPort: client.remotePort as number };
      const answer = src.lookup(
        [
          { localIp: 'foo', localPort: 1, peerIp: 'bar', peerPort: 2 },
          real,
          { localIp: '127.0.0.1', localPort: 1, peerIp: '127.0.0.1', peerPort: 2 },
        ],
        0,
        Date.now(),
      );
      // On the socket's descriptor the samples come back within the call, without a promise.
      expect(Array.isArray(answer)).toBe(true);
      const got = await answer;
      expect(got[0]).toBeNull();
      expect(got[1]).not.toBeNull();
      expect(got[2]).toBeNull();
    } finally {
      src.close();
      client.destroy();
      server.close();
    }
  });
});
