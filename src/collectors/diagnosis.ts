// The diagnosis sampler as a collector: start() runs the background sampling loop (src/diagnosis/
// sampler.ts); collect() exports, per sampled flow, the seconds spent held by each reason (the reasons
// sum to wall time, so rate() is the fraction of time), the current verdict, and the sampler's own cost.
// The JSON API (/api/flows, /api/diagnosis) reads the same Sampler through samplerFromRegistry().

import { counter, gauge } from '../core/metrics';
import type { Logger } from '../core/log';
import { collectorFlag } from './registry';
import type { Collector, CollectorDef, Registry } from './registry';
import { ovsCollector } from './ovs';
import { OVS_READER_FLAGS } from '../sources/ovs/flags';
import { sharedOvsReader } from '../sources/ovs/shared';
import type { OvsReader } from '../sources/ovs/snapshot';
import { nullLogger } from '../core/log';
import { DIAGNOSIS_FLAGS, sampleRateFlag, windowFlag } from '../diagnosis/flags';
import { buildSampler } from '../diagnosis/setup';
import type { Sampler } from '../diagnosis/sampler';
import { REASONS } from '../diagnosis/types';
import type { FlagDef } from '../core/flags';
import { procfsFlag } from '../core/paths';
import { FLOW_LABELS } from './flows';
import { DEFAULT_PORT_RANGE, ListeningPorts, PackedIdentity, SockDumper, dumpListening, identify, identityLabels, readPortRange } from '../sources/flow-identity';
import { SockDiag } from '../sources/netlink/sockdiag';
import type { FlowKey } from '../diagnosis/types';

/** The same identifying labels as the flows collector's per-flow series. */
const LABELS = [...FLOW_LABELS];

export const flowLimitedSeconds = counter(
  'flowpath_flow_limited_seconds_total',
  'Seconds the sampled flow spent held by each reason (idle, app, sndbuf, rwnd, cwnd, pacing, pacing_capped, tsq, unclassified); the reasons of a flow sum to wall time since it was first sampled, so rate() is the fraction of time. docs/diagnosis.md defines each.',
  [...LABELS, 'reason'],
  'seconds',
);
export const flowVerdictInfo = gauge(
  'flowpath_flow_verdict_info',
  'Value 1 for a sampled flow whose verdict over the last --diagnosis.window names a limiting hop: the hop and the limit (docs/diagnosis.md).',
  [...LABELS, 'hop', 'limit', 'rule'],
);
export const sampledFlows = gauge('flowpath_diagnosis_sampled_flows', 'Flows the diagnosis sampler is polling now (watched, top and pinned).');
export const sampleRate = gauge('flowpath_diagnosis_sample_rate_hertz', 'Configured polling rate of each sampled flow (--diagnosis.sample-rate).');
export const ticksTotal = counter('flowpath_diagnosis_ticks_total', 'Sampling rounds run (one exact-lookup datagram for all sampled flows per round).');
export const lookupsTotal = counter('flowpath_diagnosis_lookups_total', 'Single-socket sock_diag lookups done by the sampler.');
export const samplingSeconds = counter('flowpath_diagnosis_sampling_seconds_total', 'Wall time spent in sampling rounds (lookups and classification); its rate() is the sampler cost as a fraction of one CPU at most.', [], 'seconds');
export const overrunsTotal = counter('flowpath_diagnosis_overruns_total', 'Sampling rounds skipped because the previous one was still running or the process was late.');
export const discoveriesTotal = counter('flowpath_diagnosis_discoveries_total', 'Filtered sock_diag dumps done to find watched and top flows.');
export const discoverySeconds = counter('flowpath_diagnosis_discovery_seconds_total', 'Wall time spent in discovery dumps.', [], 'seconds');
export const nodeSnapshotsTotal = counter('flowpath_diagnosis_node_snapshots_total', 'Node evidence snapshots taken by the sampler.');
export const nodeSnapshotSeconds = counter('flowpath_diagnosis_node_snapshot_seconds_total', 'Wall time spent reading node evidence.', [], 'seconds');
export const errorsTotal = counter('flowpath_diagnosis_errors_total', 'Sampler failures by stage (lookup, discover, node, path, tick: a sampling round that failed outside its lookup).', ['stage']);

export const DIAGNOSIS_METRICS = [
  flowLimitedSeconds,
  flowVerdictInfo,
  sampledFlows,
  sampleRate,
  ticksTotal,
  lookupsTotal,
  samplingSeconds,
  overrunsTotal,
  discoveriesTotal,
  discoverySeconds,
  nodeSnapshotsTotal,
  nodeSnapshotSeconds,
  errorsTotal,
];

/**
 * Role and service port of the sampled flows (src/sources/flow-identity.ts), decided once per flow: a
 * LISTEN dump is made only in a scrape that meets a flow not seen before.
 */
export class FlowIdentities {
  private readonly known = new Map<string, PackedIdentity>();
  private readonly listening = new ListeningPorts();

  constructor(
    private readonly source: SockDumper & { close?(): void },
    private readonly procfs: string,
  ) {}

  private static id(k: FlowKey): string {
    return `${k.localIp}|${k.localPort}|${k.peerIp}|${k.peerPort}|${k.cookie ?? ''}`;
  }

  /** Decide the identity of every flow in `keys` not known yet, and forget flows no longer listed. */
  async update(keys: readonly FlowKey[]): Promise<void> {
    const ids = keys.map(FlowIdentities.id);
    const live = new Set(ids);
    for (const k of this.known.keys()) if (!live.has(k)) this.known.delete(k);
    const missing = keys.filter((_, i) => !this.known.has(ids[i]));
    if (missing.length === 0) return;
    let range = DEFAULT_PORT_RANGE;
    try {
      range = readPortRange(this.procfs);
    } catch {
      /* the kernel default; the flows collector logs an unreadable range */
    }
    await dumpListening(this.source, this.listening);
    for (const k of missing) this.known.set(FlowIdentities.id(k), identify(k.localPort, k.peerPort, this.listening, range));
  }

  labels(k: FlowKey): [string, string] {
    const id = this.known.get(FlowIdentities.id(k));
    return id === undefined ? ['', ''] : identityLabels(id);
  }

  close(): void {
    this.source.close?.();
  }
}

/** The collector instance; `sampler` is what the API reads. */
export class DiagnosisCollector implements Collector {
  private started = false;
  constructor(
    readonly sampler: Sampler,
    private readonly windowSeconds: number,
    private readonly rateHz: number,
    private readonly identities: FlowIdentities,
  ) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    this.sampler.start();
  }

  async collect(out: import('../core/metrics').Emitter): Promise<void> {
    // Works without start() too (one-shot use): the first scrape starts the loop.
    this.start();
    const s = this.sampler;
    const flows = s.flows();
    await this.identities.update(flows.map((f) => f.key));
    let active = 0;
    for (const f of flows) {
      if (f.goneAt === undefined) active++;
      const k = f.key;
      const labels = [k.localIp, String(k.localPort), k.peerIp, String(k.peerPort), ...this.identities.labels(k)];
      for (const r of REASONS) out.add(flowLimitedSeconds, [...labels, r], f.classifier.total[r]);
      if (f.goneAt === undefined && f.history.length >= 2) {
        const v = s.diagnose(k, this.windowSeconds);
        if (v.top) out.add(flowVerdictInfo, [...labels, v.top.hop, v.top.limit ?? '', v.top.rule], 1);
      }
    }
    out.add(sampledFlows, [], active);
    out.add(sampleRate, [], this.rateHz);
    const st = s.stats;
    out.add(ticksTotal, [], st.ticks);
    out.add(lookupsTotal, [], st.lookups);
    out.add(samplingSeconds, [], st.samplingSeconds);
    out.add(overrunsTotal, [], st.overruns);
    out.add(discoveriesTotal, [], st.discoveries);
    out.add(discoverySeconds, [], st.discoverySeconds);
    out.add(nodeSnapshotsTotal, [], st.nodeSnapshots);
    out.add(nodeSnapshotSeconds, [], st.nodeSeconds);
    for (const [stage, n] of Object.entries(st.errors)) out.add(errorsTotal, [stage], n);
  }

  close(): void {
    this.sampler.close();
    this.identities.close();
  }
}

/**
 * The OVS reader of the sampler: the ovs collector's (one connection, one read per interval; that collector
 * closes it) when it runs, none when it is disabled, and one of the sampler's own when the ovs collector is
 * not registered at all.
 */
function ovsReaderFor(config: import('../core/flags').Config): Pick<OvsReader, 'read' | 'close' | 'client'> | null | undefined {
  let enabled: boolean;
  try {
    enabled = config.get(collectorFlag(ovsCollector));
  } catch {
    return undefined;
  }
  if (!enabled) return null;
  const shared = sharedOvsReader(config, nullLogger);
  return { read: (maxAgeMs?: number) => shared.read(maxAgeMs), close: () => undefined, client: shared.client };
}

export const diagnosisCollector: CollectorDef = {
  name: 'diagnosis',
  description:
    'Per-flow limit attribution: polls watched and top flows at --diagnosis.sample-rate with exact sock_diag lookups and says what held each (app, sndbuf, rwnd, cwnd, pacing, TSQ, idle) and which hop limits it; also serves /api/flows and /api/diagnosis.',
  defaultEnabled: true,
  metrics: DIAGNOSIS_METRICS,
  // The OVS flags are shared with the ovs collector (same FlagDef objects; declared once).
  flags: [...DIAGNOSIS_FLAGS, ...OVS_READER_FLAGS] as FlagDef<unknown>[],
  create({ config, log }: { config: import('../core/flags').Config; log: Logger }) {
    const sampler = buildSampler(config, log, { ovs: ovsReaderFor(config) });
    return new DiagnosisCollector(sampler, config.get(windowFlag), config.get(sampleRateFlag), new FlowIdentities(new SockDiag(), config.get(procfsFlag)));
  },
};

/** The sampler of the registry's diagnosis collector (undefined when the collector is disabled). */
export function samplerFromRegistry(registry: Pick<Registry, 'collector'>): Sampler | undefined {
  const c = registry.collector('diagnosis');
  return c instanceof DiagnosisCollector ? c.sampler : undefined;
}
