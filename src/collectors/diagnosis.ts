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

const FLOW_LABELS = ['local_ip', 'local_port', 'peer_ip', 'peer_port'];

export const flowLimitedSeconds = counter(
  'flowpath_flow_limited_seconds_total',
  'Seconds the sampled flow spent held by each reason (idle, app, sndbuf, rwnd, cwnd, pacing, pacing_capped, tsq, unclassified); the reasons of a flow sum to wall time since it was first sampled, so rate() is the fraction of time. docs/diagnosis.md defines each.',
  [...FLOW_LABELS, 'reason'],
  'seconds',
);
export const flowVerdictInfo = gauge(
  'flowpath_flow_verdict_info',
  'Value 1 for a sampled flow whose verdict over the last --diagnosis.window names a limiting hop: the hop and the limit (docs/diagnosis.md).',
  [...FLOW_LABELS, 'hop', 'limit', 'rule'],
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
export const errorsTotal = counter('flowpath_diagnosis_errors_total', 'Sampler failures by stage (lookup, discover, node, path).', ['stage']);

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

/** The collector instance; `sampler` is what the API reads. */
export class DiagnosisCollector implements Collector {
  private started = false;
  constructor(
    readonly sampler: Sampler,
    private readonly windowSeconds: number,
    private readonly rateHz: number,
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
    let active = 0;
    for (const f of s.flows()) {
      if (f.goneAt === undefined) active++;
      const k = f.key;
      const labels = [k.localIp, String(k.localPort), k.peerIp, String(k.peerPort)];
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
    return new DiagnosisCollector(sampler, config.get(windowFlag), config.get(sampleRateFlag));
  },
};

/** The sampler of the registry's diagnosis collector (undefined when the collector is disabled). */
export function samplerFromRegistry(registry: Pick<Registry, 'collector'>): Sampler | undefined {
  const c = registry.collector('diagnosis');
  return c instanceof DiagnosisCollector ? c.sampler : undefined;
}
