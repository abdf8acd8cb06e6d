// Shared helpers for the live cross-checks of the node-level collectors (softirq, netstat, sysctl,
// node): run a collector in-process on the real /proc, parse the exposition, make loopback traffic.
import * as net from 'net';
import { Config } from '../../src/core/flags';
import { nullLogger } from '../../src/core/log';
import { Emitter } from '../../src/core/metrics';
import { CollectorDef } from '../../src/collectors/registry';
import { allFlags } from '../../src/exporter';

export async function collectLive(def: CollectorDef, overrides: Record<string, string> = {}): Promise<{ text: string; series: Map<string, number> }> {
  const c = def.create({ config: Config.from(allFlags(), overrides), log: nullLogger });
  const out = new Emitter();
  try {
    await c.collect(out, { signal: new AbortController().signal, now: Date.now() });
  } finally {
    await c.close?.();
  }
  const text = out.render();
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    series.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return { text, series };
}

/** Push `bytes` through a loopback TCP connection and wait until the receiver has them all. */
export function loopbackTransfer(bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((sock) => {
      let got = 0;
      sock.on('data', (d) => {
        got += d.length;
        if (got >= bytes) {
          sock.end();
          server.close();
          resolve();
        }
      });
      sock.on('error', reject);
    });
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      const c = net.connect(port, '127.0.0.1', () => {
        const chunk = Buffer.alloc(1 << 16, 7);
        let sent = 0;
        const pump = () => {
          while (sent < bytes) {
            sent += chunk.length;
            if (!c.write(chunk)) return void c.once('drain', pump);
          }
          c.end();
        };
        pump();
      });
      c.on('error', reject);
    });
  });
}

/** lo <= x <= hi, with a message naming the series. */
export function expectBracketed(name: string, lo: number, x: number | undefined, hi: number): void {
  expect({ name, ok: x !== undefined && lo <= x && x <= hi, lo, x, hi }).toEqual({ name, ok: true, lo, x, hi });
}
