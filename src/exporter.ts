// Assembles the exporter: global flags, the collector registry, and the /metrics body (collector
// families + the exporter's own process metrics, src/self-metrics.ts).

import { Config, FlagDef, durationFlag, intFlag, stringFlag } from './core/flags';
import { Emitter, MetricDesc, gauge } from './core/metrics';
import { Logger, logLevelFlag } from './core/log';
import { procfsFlag, sysfsFlag } from './core/paths';
import { ALL_COLLECTORS } from './collectors';
import { CollectorDef, REGISTRY_METRICS, Registry, collectorFlag } from './collectors/registry';
import { SELF_METRICS, SelfMetrics } from './self-metrics';
import { VERSION } from './version';

export const listenFlag = stringFlag('web.listen-address', ':9632', 'Address on which to expose metrics and the web interface.', '<addr>');
export const telemetryPathFlag = stringFlag('web.telemetry-path', '/metrics', 'Path under which to expose metrics.', '<path>');
export const maxRequestsFlag = intFlag('web.max-requests', 40, 'Maximum number of parallel scrape requests. 0 disables the limit.', 0);
export const scrapeTimeoutFlag = durationFlag('scrape.timeout', 10, 'Deadline for one scrape; collectors still running then are reported as failed.', 0.01);

export const GLOBAL_FLAGS: readonly FlagDef<unknown>[] = [
  listenFlag,
  telemetryPathFlag,
  maxRequestsFlag,
  scrapeTimeoutFlag,
  procfsFlag,
  sysfsFlag,
  logLevelFlag,
] as FlagDef<unknown>[];

/** Every flag of the exporter: globals, then per collector its enable flag and its own flags. */
export function allFlags(defs: readonly CollectorDef[] = ALL_COLLECTORS): FlagDef<unknown>[] {
  const out: FlagDef<unknown>[] = [...GLOBAL_FLAGS];
  const seen = new Set(out.map((f) => f.name));
  for (const d of defs) {
    for (const f of [collectorFlag(d) as FlagDef<unknown>, ...(d.flags ?? [])]) {
      if (seen.has(f.name)) continue; // a flag shared by two collectors (same FlagDef) is declared once
      seen.add(f.name);
      out.push(f);
    }
  }
  return out;
}

export const buildInfo = gauge('flowpath_build_info', 'flowpath version and the Node.js runtime it runs on; value 1.', ['version', 'nodejs_version']);
export const EXPORTER_METRICS: readonly MetricDesc[] = [buildInfo, ...REGISTRY_METRICS, ...SELF_METRICS];

export class Exporter {
  readonly registry: Registry;
  private readonly self = new SelfMetrics();

  constructor(
    readonly config: Config,
    readonly log: Logger,
    defs: readonly CollectorDef[] = ALL_COLLECTORS,
  ) {
    this.registry = new Registry(defs, { config, log }, config.get(scrapeTimeoutFlag));
  }

  start(): void {
    this.registry.start();
  }

  close(): Promise<void> {
    this.self.close();
    return this.registry.close();
  }

  /** One scrape: every collector plus the exporter's own families, in text exposition format. */
  async metricsText(): Promise<string> {
    const out: Emitter = await this.registry.scrape();
    out.add(buildInfo, [VERSION, process.versions.node], 1);
    this.self.emit(out);
    return out.render();
  }
}
