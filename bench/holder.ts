// Holds idle loopback TCP connections open for the benchmarks (compiled to dist/bench/holder.js).
//   node holder.js server           listen on 127.0.0.1:0, accept and keep everything; prints {"port":P}
//   node holder.js client P N       open N connections to 127.0.0.1:P; prints {"open":N}
// Two processes, because each end is one file descriptor and the per-process limit here is 20000.
// Exits when stdin closes.
import * as net from 'net';

const [mode, portArg, nArg] = process.argv.slice(2);
const keep: net.Socket[] = [];

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));

if (mode === 'server') {
  const srv = net.createServer((s) => {
    s.on('error', () => undefined);
    keep.push(s);
  });
  srv.maxConnections = 1 << 20;
  srv.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
    process.stdout.write(JSON.stringify({ port: (srv.address() as net.AddressInfo).port }) + '\n');
  });
} else if (mode === 'client') {
  const port = Number(portArg);
  const n = Number(nArg);
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const c = net.connect({ host: '127.0.0.1', port }, () => resolve());
      c.on('error', reject);
      keep.push(c);
    });
  (async () => {
    for (let i = 0; i < n; i += 250) {
      await Promise.all(Array.from({ length: Math.min(250, n - i) }, one));
    }
    process.stdout.write(JSON.stringify({ open: keep.length }) + '\n');
  })().catch((e: Error) => {
    process.stderr.write(`holder client: ${e.message}\n`);
    process.exit(1);
  });
} else {
  process.stderr.write('usage: holder.js server | client <port> <n>\n');
  process.exit(2);
}
