// `flowpath diagnose [--flow SELECTOR|ID] [--duration 10s] [--peer URL] [--json]`: stand-alone on a node
// (no Prometheus, no running exporter needed). Finds the flow, samples it at --diagnosis.sample-rate for
// the duration (a progress bar on a TTY), reads the node evidence at the start and the end, optionally
// fetches the other node's view of the same flow (reversed 4-tuple) from its /api/diagnosis, and prints
// the path with a status per hop and the ranked findings.

import type { Command, CliIO } from '../core/command';
import { Config, FlagDef, UsageError } from '../core/flags';
import { createLogger, logLevelFlag, nullLogger } from '../core/log';
import { procfsFlag, sysfsFlag } from '../core/paths';
import { SelectorError } from '../sources/flowselect';
import { ovsReaderOptions } from '../sources/ovs/flags';
import { OvsReader } from '../sources/ovs/snapshot';
import { LiveNodeSource, SockDiagFlowSource } from './adapters';
import { COMMAND_FLAGS, allFindingsFlag, durationFlagDef, flowFlag, jsonFlag, peerFlag, peerTimeoutFlag, sampleRateFlag } from './flags';
import { renderProgress, renderVerdict } from './render';
import { DEFAULT_SAMPLER_OPTIONS, Sampler, flowId, joinEvidence, parseFlowId } from './sampler';
import type { DiscoveredFlow } from './sampler';
import type { FlowKey, SideEvidence } from './types';
import { diagnose } from './verdict';
import { reverseKey } from './verdict';
import { verdictJson } from './api';
import { PROMETHEUS_FLAGS, prometheusFlag, runPrometheusDiagnose } from './prometheus';

function maybe<T>(config: Config, f: FlagDef<T>, def: T): T {
  try {
    return config.get(f);
  } catch {
    return def;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Every candidate flow, unrated (SockDiagFlowSource.discover() without a want). */
type ListFlows = () => Promise<DiscoveredFlow[]>;

export interface DiagnoseDeps {
  /** For tests: replace the live sources. */
  makeSampler?: (config: Config, rateHz: number) => { sampler: Sampler; discover: ListFlows };
  fetch?: typeof fetch;
  isTTY?: boolean;
  now?: () => number;
}

/** Pick the flow: an exact id, else the busiest established flow matching the selector. */
async function pickFlow(discover: ListFlows, flowArg: string, selector: boolean): Promise<FlowKey | undefined> {
  const exact = parseFlowId(flowArg);
  if (exact) {
    const all = await discover();
    const same = all.find((d) => d.key.localIp === exact.localIp && d.key.localPort === exact.localPort && d.key.peerIp === exact.peerIp && d.key.peerPort === exact.peerPort);
    return same?.key ?? exact;
  }
  // Two dumps 300 ms apart give each candidate a rate; the busiest wins.
  const first = await discover();
  const before = new Map(first.map((d) => [flowId(d.key) + d.key.cookie, d.bytesAcked + d.bytesReceived]));
  await sleep(300);
  const second = (await discover()).filter((d) => !selector || d.watched);
  let best: { key: FlowKey; rate: number } | undefined;
  for (const d of second) {
    const rate = d.bytesAcked + d.bytesReceived - (before.get(flowId(d.key) + d.key.cookie) ?? 0);
    if (!best || rate > best.rate) best = { key: d.key, rate };
  }
  return best?.key;
}

async function fetchPeer(f: typeof fetch, base: string, key: FlowKey, params: Record<string, string>, timeoutMs: number): Promise<SideEvidence> {
  const u = new URL('/api/diagnosis', base);
  u.searchParams.set('flow', flowId(reverseKey(key)));
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  const r = await f(u, { signal: AbortSignal.timeout(timeoutMs) });
  const body = (await r.json()) as { evidence?: SideEvidence; error?: string };
  if (!r.ok) throw new Error(`${u}: HTTP ${r.status}${body?.error ? `: ${body.error}` : ''}`);
  if (!body || typeof body !== 'object' || typeof body.evidence !== 'object') throw new Error(`${u}: no "evidence" in the answer`);
  return body.evidence;
}

export async function runDiagnose(config: Config, io: CliIO, deps: DiagnoseDeps = {}): Promise<number> {
  if (config.get(prometheusFlag).trim()) {
    return runPrometheusDiagnose(config, io, { flow: config.get(flowFlag).trim(), json: config.get(jsonFlag), all: config.get(allFindingsFlag) });
  }
  const flowArg = config.get(flowFlag).trim();
  const duration = config.get(durationFlagDef);
  const peer = config.get(peerFlag).trim();
  const peerTimeoutMs = config.get(peerTimeoutFlag) * 1000;
  const asJson = config.get(jsonFlag);
  const rateHz = maybe(config, sampleRateFlag, 20);
  const isSelector = flowArg !== '' && !parseFlowId(flowArg);
  if (peer) {
    try {
      new URL(peer);
    } catch {
      throw new UsageError(`--peer: not a URL: "${peer}"`);
    }
  }
  const log = createLogger(maybe(config, logLevelFlag, 'info') === 'debug' ? 'debug' : 'warn');

  let sampler: Sampler;
  let discover: ListFlows;
  if (deps.makeSampler) ({ sampler, discover } = deps.makeSampler(config, rateHz));
  else {
    let flows: SockDiagFlowSource;
    try {
      flows = new SockDiagFlowSource({ watch: isSelector ? flowArg : '' });
    } catch (e) {
      if (e instanceof SelectorError) throw new UsageError(`--flow: ${e.message}`);
      throw e;
    }
    // A node without OVS is normal here: say nothing about a missing ovs-vswitchd.
    const ovs = new OvsReader(ovsReaderOptions(config, nullLogger));
    // Node evidence twice a second so that a short run still has a start and an end.
    const nodeMs = Math.min(1000, Math.max(200, (duration * 1000) / 8));
    const node = new LiveNodeSource({ procfs: config.get(procfsFlag), sysfs: config.get(sysfsFlag), log, ovs, ovsIntervalMs: nodeMs });
    sampler = new Sampler(
      { ...DEFAULT_SAMPLER_OPTIONS, rateHz, top: 0, discoverIntervalMs: 0, nodeIntervalMs: nodeMs, historySeconds: duration + 60 },
      flows,
      node,
      log,
    );
    discover = () => flows.discover();
  }
  const fetchFn = deps.fetch ?? fetch;
  const tty = deps.isTTY ?? (process.stderr.isTTY === true && !asJson);
  try {
    const key = await pickFlow(discover, flowArg, isSelector);
    if (!key) {
      io.stderr(`flowpath diagnose: no established TCP flow${flowArg ? ` matches "${flowArg}"` : ''}\n`);
      return 1;
    }
    sampler.pin(key, duration + 60);
    await sampler.find(key)?.pathReady;
    let peerNote = '';
    if (peer) {
      // Ask the peer to start sampling the reversed flow now, so that its window covers ours.
      try {
        await fetchPeer(fetchFn, peer, key, { pin: String(Math.ceil(duration + 60)), window: '1' }, peerTimeoutMs);
      } catch (e) {
        peerNote = `peer: ${(e as Error).message}`;
      }
    }
    const now = deps.now ?? (() => performance.now());
    // One sample first: it gives the socket's inode, so the first node snapshot already reads the
    // threads of the processes that hold it. That snapshot (OVS over unixctl, sysfs, netlink) can take
    // seconds on a loaded or emulated node: the sampling window starts after it, or a short --duration
    // could end with no sample at all.
    await sampler.tick();
    await sampler.snapshotNode();
    const t0 = now();
    sampler.start();
    let closedAfter: number | undefined;
    while (now() - t0 < duration * 1000) {
      await sleep(Math.min(250, Math.max(10, duration * 1000 - (now() - t0))));
      const f = sampler.find(key);
      if (tty) io.stderr('\r' + renderProgress((now() - t0) / 1000, duration, f?.history.length ?? 0));
      if (f?.goneAt !== undefined) {
        closedAfter = (now() - t0) / 1000;
        break;
      }
    }
    await sampler.stop();
    await sampler.snapshotNode();
    if (tty) io.stderr('\n');
    const elapsed = (now() - t0) / 1000;
    let peerEv: SideEvidence | undefined;
    if (peer && !peerNote) {
      try {
        peerEv = await fetchPeer(fetchFn, peer, key, { window: String(Math.max(1, Math.ceil(elapsed))), pin: '0' }, peerTimeoutMs);
      } catch (e) {
        peerNote = `peer: ${(e as Error).message}`;
      }
    }
    const local = sampler.evidence(key, elapsed + 1, 'local');
    if (!local.flow) {
      io.stderr(`flowpath diagnose: flow ${flowId(key)} gave fewer than two samples${closedAfter !== undefined ? ' (it closed)' : ''}\n`);
      return 1;
    }
    const v = diagnose(joinEvidence(local, peerEv));
    if (asJson) {
      io.stdout(
        JSON.stringify(
          {
            id: flowId(key),
            duration_seconds: Math.round(elapsed * 1000) / 1000,
            closed_after_seconds: closedAfter ?? null,
            peer: peer || null,
            peer_error: peerNote || null,
            ...verdictJson(v),
            sender: v.sender ?? null,
            receiver: v.receiver ?? null,
            sampler: { rate_hz: rateHz, ...sampler.stats },
          },
          null,
          2,
        ) + '\n',
      );
    } else {
      const localIsSender = v.sender === local;
      io.stdout(
        renderVerdict(v, {
          color: tty,
          all: config.get(allFindingsFlag),
          senderLabel: localIsSender ? 'this node' : peer ? `peer ${peer}` : 'not observed',
          receiverLabel: localIsSender ? (peer ? `peer ${peer}` : 'not observed, use --peer') : 'this node',
        }),
      );
      if (closedAfter !== undefined) io.stdout(`(the flow closed after ${closedAfter.toFixed(1)} s)\n`);
      if (peerNote) io.stdout(`(${peerNote})\n`);
    }
    return 0;
  } finally {
    sampler.close();
  }
}

export const diagnoseCommand: Command = {
  summary: 'Sample one TCP flow for a while and say which hop limits it (stand-alone; --peer joins the other node).',
  usage: 'flowpath diagnose [--flow SELECTOR|ID] [--duration 10s] [--peer URL] [--json] [--all]\n       flowpath diagnose --prometheus URL [--at TIME] [--window 5m] [--flow SELECTOR|ID] [--json] [--all]',
  flags: [...COMMAND_FLAGS, ...PROMETHEUS_FLAGS],
  run(args, io) {
    return runDiagnose(args.config, io);
  },
};
