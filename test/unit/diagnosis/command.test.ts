// `flowpath diagnose` end to end with fake sources: flow selection, sampling for the duration, the peer
// join over HTTP (a fake fetch), JSON and text output, and the failure when no flow matches.

import { Config, UsageError, parseArgs } from '../../../src/core/flags';
import { allFlags } from '../../../src/exporter';
import { diagnoseCommand, runDiagnose } from '../../../src/diagnosis/command';
import { DEFAULT_SAMPLER_OPTIONS, Sampler, realClock } from '../../../src/diagnosis/sampler';
import { nullLogger } from '../../../src/core/log';
import { FakeFlows, FakeNode } from './fakes';
import { SIG, node } from './synth';

function config(args: string[]): Config {
  return parseArgs([...allFlags(), ...(diagnoseCommand.flags ?? [])], args).config;
}

function io() {
  const out = { stdout: '', stderr: '' };
  return { out, io: { stdout: (s: string) => (out.stdout += s), stderr: (s: string) => (out.stderr += s) } };
}

function fakes(withFlow = true) {
  const flows = new FakeFlows();
  if (withFlow) {
    flows.flows.set(40000, { bytes: 0, watched: true, cookie: '5', sig: SIG.rwnd, rate: 14e6 });
    flows.flows.set(40001, { bytes: 0, watched: true, cookie: '6', sig: SIG.app, rate: 1 });
  }
  // The fake flows advance bytes by rate over the sampler clock; discovery sees them grow.
  const discover = async () => {
    for (const f of flows.flows.values()) f.bytes += f.rate / 10;
    return flows.discover({ busiest: 100, keep: new Set(), seconds: 0.1 });
  };
  return {
    flows,
    makeSampler: () => ({
      sampler: new Sampler({ ...DEFAULT_SAMPLER_OPTIONS, top: 0, discoverIntervalMs: 0, nodeIntervalMs: 100 }, flows, new FakeNode(), nullLogger, realClock),
      discover,
    }),
  };
}

describe('flowpath diagnose', () => {
  it('picks the busiest matching flow, samples it, joins the peer, prints JSON', async () => {
    const f = fakes();
    const calls: string[] = [];
    const peerEvidence = { node: 'b', nodeSummary: { ...node({ rxCpu: { cpu: 1, softirqShare: 0.2, timeSqueeze: 0, softnetDropped: 0 } }), tcpExt: { TCPRcvQDrop: 0 } } };
    const fetchFn = (async (u: URL) => {
      calls.push(String(u));
      return { ok: true, status: 200, json: async () => ({ evidence: peerEvidence }) };
    }) as unknown as typeof fetch;
    const { out, io: cio } = io();
    const code = await runDiagnose(config(['--flow', 'dport = 5201', '--duration', '600ms', '--json', '--peer', 'http://10.0.0.2:9632']), cio, {
      makeSampler: f.makeSampler,
      fetch: fetchFn,
      isTTY: false,
    });
    expect(out.stderr).toBe('');
    expect(code).toBe(0);
    const j = JSON.parse(out.stdout);
    expect(j.id).toBe('10.0.0.1:40000-10.0.0.2:5201');
    expect(j.peer_error).toBeNull();
    expect(j.top).toMatchObject({ hop: 'socket-rx', limit: 'rwnd' });
    expect(j.receiver.node).toBe('b');
    expect(j.sender.flow.samples).toBeGreaterThan(5);
    expect(j.hops.find((h: { hop: string }) => h.hop === 'nic-rx').status).toBe('ok');
    // The reversed 4-tuple, pinned at the start, fetched with our window at the end.
    expect(calls).toHaveLength(2);
    expect(calls[0]).toContain('flow=10.0.0.2%3A5201-10.0.0.1%3A40000');
    expect(calls[0]).toMatch(/pin=\d+/);
    expect(calls[1]).toMatch(/window=1&pin=0/);
  });

  it('prints the path diagram and the verdict as text, with a progress bar on a TTY', async () => {
    const f = fakes();
    const { out, io: cio } = io();
    const code = await runDiagnose(config(['--flow', '10.0.0.1:40000-10.0.0.2:5201', '--duration', '400ms']), cio, { makeSampler: f.makeSampler, isTTY: true });
    expect(code).toBe(0);
    expect(out.stdout).toContain('flow 10.0.0.1:40000 → 10.0.0.2:5201');
    expect(out.stdout).toMatch(/receiver socket\s+.*LIMITING/);
    expect(out.stdout).toContain('RECEIVER (not observed, use --peer)');
    expect(out.stderr).toMatch(/\r\[█*░*\] \d\.\d\/0\.4 s/);
  });

  it('a peer that does not answer is reported, the local verdict still printed', async () => {
    const f = fakes();
    const fetchFn = (async () => {
      throw new Error('connect ECONNREFUSED');
    }) as unknown as typeof fetch;
    const { out, io: cio } = io();
    const code = await runDiagnose(config(['--duration', '300ms', '--json', '--peer', 'http://10.0.0.2:9632']), cio, { makeSampler: f.makeSampler, fetch: fetchFn, isTTY: false });
    expect(code).toBe(0);
    const j = JSON.parse(out.stdout);
    expect(j.peer_error).toMatch(/ECONNREFUSED/);
    expect(j.receiver).toBeNull();
  });

  it('--peer.timeout bounds each peer request: a peer that never answers is reported as a timeout', async () => {
    const f = fakes();
    const signals: Array<AbortSignal | undefined> = [];
    const fetchFn = ((_u: URL, init?: { signal?: AbortSignal }) => {
      signals.push(init?.signal ?? undefined);
      return new Promise((_r, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)));
    }) as unknown as typeof fetch;
    const { out, io: cio } = io();
    const code = await runDiagnose(config(['--duration', '300ms', '--json', '--peer', 'http://10.0.0.2:9632', '--peer.timeout=200ms']), cio, { makeSampler: f.makeSampler, fetch: fetchFn, isTTY: false });
    expect(code).toBe(0);
    expect(signals.length).toBe(1); // the pin timed out: the end of the run does not ask again
    const j = JSON.parse(out.stdout);
    expect(j.peer_error).toMatch(/^peer: .*timeout/i);
    expect(j.receiver).toBeNull();
  });

  it('no matching flow: exit 1 with a reason; a bad --peer is a usage error', async () => {
    const { out, io: cio } = io();
    expect(await runDiagnose(config(['--flow', 'dport = 9', '--duration', '300ms']), cio, { makeSampler: fakes(false).makeSampler })).toBe(1);
    expect(out.stderr).toContain('no established TCP flow matches "dport = 9"');
    await expect(runDiagnose(config(['--peer', 'not a url']), cio, { makeSampler: fakes().makeSampler })).rejects.toBeInstanceOf(UsageError);
  });
});

describe('CLI integration (what src/cli.ts gets: COMMANDS.diagnose = diagnoseCommand)', () => {
  it('help, and a bad flag value exits 2 with a one-line reason', async () => {
    const cli = await import('../../../src/cli');
    const had = 'diagnose' in cli.COMMANDS;
    if (!had) cli.COMMANDS.diagnose = diagnoseCommand;
    try {
      const a = io();
      expect(await cli.main(['diagnose', '--help'], a.io)).toBe(0);
      expect(a.out.stdout).toContain('usage: flowpath diagnose [--flow SELECTOR|ID] [--duration 10s] [--peer URL] [--json]');
      expect(a.out.stdout).toContain('--peer=<url>');
      const b = io();
      expect(await cli.main(['diagnose', '--duration', 'soon'], b.io)).toBe(2);
      expect(b.out.stderr).toMatch(/^flowpath: --duration: expected a duration/);
      const c = io();
      expect(await cli.main(['diagnose', '--peer', 'nope'], c.io)).toBe(2);
      expect(c.out.stderr).toBe('flowpath diagnose: --peer: not a URL: "nope"\n');
    } finally {
      if (!had) delete (cli.COMMANDS as Record<string, unknown>).diagnose;
    }
  });
});
