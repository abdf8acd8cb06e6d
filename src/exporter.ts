// Assembles the exporter: global flags, the collector registry, and the /metrics body (collector
// families rendered by the Emitter + the exporter's own process_*/nodejs_* families from prom-client,
// src/runtime-metrics.ts), in the text format or OpenMetrics.

import { Config, FlagDef, durationFlag, intFlag, stringFlag } from './core/flags';
import { Emitter, ExpositionFormat, MetricDesc, gauge } from './core/metrics';
import { Logger, logLevelFlag } from './core/log';
import { procfsFlag, sysfsFlag } from './core/paths';
import { ALL_COLLECTORS } from './collectors';
import { CollectorDef, REGISTRY_METRICS, Registry, collectorFlag } from './collectors/registry';
import { RuntimeFamily, runtimeFamilies, runtimeMetricsText } from './runtime-metrics';
import { VERSION } from './version';

export const listenFlag = stringFlag('web.listen-address', ':9632', 'Address on which to expose metrics and the web interface.', '<addr>');
export const telemetryPathFlag = stringFlag('web.telemetry-path', '/metrics', 'Path under which to expose metrics.', '<path>');
export const maxRequestsFlag = intFlag('web.max-requests', 40, 'Maximum number of parallel scrape requests. 0 disables the limit.', 0);
export const scrapeTimeoutFlag = durationFlag('scrape.timeout', 10, 'Deadline for one scrape; collectors still running then are reported as failed.', 0.01);
export const webConfigFlag = stringFlag(
  'web.config.file',
  '',
  'Path to a web configuration file (exporter-toolkit format) enabling TLS and/or basic authentication; see README "TLS and authentication".',
  '<file>',
);

export const GLOBAL_FLAGS: readonly FlagDef<unknown>[] = [
  listenFlag,
  telemetryPathFlag,
  maxRequestsFlag,
  scrapeTimeoutFlag,
  webConfigFlag,
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
export const EXPORTER_METRICS: readonly MetricDesc[] = [buildInfo, ...REGISTRY_METRICS];

/** The exporter section of the catalogue: its own families, then prom-client's runtime ones. */
export function exporterFamilies(): Array<MetricDesc | RuntimeFamily> {
  return [...EXPORTER_METRICS, ...runtimeFamilies()];
}

export interface MetricsOptions {
  format?: ExpositionFormat;
  /** Deadline of this scrape in seconds (at most --scrape.timeout). */
  timeoutSeconds?: number;
}

export class Exporter {
  readonly registry: Registry;

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
    return this.registry.close();
  }

  /**
   * One scrape: every collector plus the exporter's own families, in the text format (default) or
   * OpenMetrics (ending with "# EOF").
   */
  async metricsText(opts: MetricsOptions = {}): Promise<string> {
    const format = opts.format ?? 'text';
    const [out, runtime]: [Emitter, string] = await Promise.all([
      this.registry.scrape({ timeoutSeconds: opts.timeoutSeconds }),
      runtimeMetricsText(format),
    ]);
    out.add(buildInfo, [VERSION, process.versions.node], 1);
    return out.render(format) + runtime;
  }
}
