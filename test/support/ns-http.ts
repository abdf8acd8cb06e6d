// HTTP into a network namespace from a test running outside it: a small relay runs inside the namespace
// (`ip netns exec NS node -e ...`) and listens on a unix socket (unix sockets are not per network
// namespace); get() sends the request through it, and the relay fetches the URL from inside.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { httpGet } from './procs';

const RELAY = [
  "const http = require('http');",
  'const sock = process.argv[1];',
  'http.createServer((req, res) => {',
  "  const target = req.headers['x-target'];",
  "  const up = http.get(target, { timeout: 15000 }, (r) => { res.writeHead(r.statusCode || 502, { 'content-type': r.headers['content-type'] || 'text/plain' }); r.pipe(res); });",
  "  up.on('timeout', () => up.destroy(new Error('timeout')));",
  "  up.on('error', (e) => { res.writeHead(599); res.end(String(e.message)); });",
  "}).listen(sock, () => console.log('relay ready'));",
].join('\n');

export class NsHttp {
  private constructor(
    private readonly child: ChildProcess,
    private readonly sock: string,
    private readonly dir: string,
  ) {}

  static async start(ns: string): Promise<NsHttp> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-nshttp-'));
    const sock = path.join(dir, 'relay.sock');
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', RELAY, sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.setEncoding('utf8').on('data', (d: string) => d.includes('relay ready') && resolve());
      child.once('exit', (code) => reject(new Error(`HTTP relay in ${ns} exited (${code}): ${err}`)));
    });
    return new NsHttp(child, sock, dir);
  }

  get(url: string, timeoutMs = 20000): Promise<{ status: number; body: string }> {
    return httpGet('http://relay/', timeoutMs, { socketPath: this.sock, headers: { 'x-target': url } });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
