// Child processes for end-to-end tests: free loopback ports, the built exporter, waiting for HTTP.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';

export const REPO = path.join(__dirname, '../..');
export const CLI = path.join(REPO, 'dist/src/cli.js');

export function requireBuild(): void {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} missing: run \`npm run build\` (scripts/test does) before this test`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** GET a URL; `via` sends it over a unix socket (socketPath) with extra headers instead. */
export function httpGet(
  url: string,
  timeoutMs = 5000,
  via: { socketPath?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs, ...via }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout fetching ${url}`)));
    req.on('error', reject);
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20000, stepMs = 200): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export interface Proc {
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

export function startProc(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
  const child = spawn(cmd, args, { cwd: opts.cwd ?? REPO, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}

/** Start the built exporter on a free loopback port and wait until /healthz answers. */
export async function startExporter(args: string[] = []): Promise<Proc & { url: string }> {
  requireBuild();
  const port = await freePort();
  const p = startProc(process.execPath, [CLI, `--web.listen-address=127.0.0.1:${port}`, ...args]);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor('exporter /healthz', async () => ((await httpGet(`${url}/healthz`)).status === 200 ? true : undefined), 15000);
  } catch (e) {
    await p.stop();
    throw new Error(`${(e as Error).message}\nexporter output:\n${p.output()}`);
  }
  return { ...p, url };
}
