// Build a live Sampler from the parsed flags (used by the `diagnosis` collector and `flowpath diagnose`).

import type { Config, FlagDef } from '../core/flags';
import type { Logger } from '../core/log';
import { nullLogger } from '../core/log';
import { procfsFlag, sysfsFlag } from '../core/paths';
import { ovsReaderOptions, ovsRefreshFlag } from '../sources/ovs/flags';
import { OvsReader } from '../sources/ovs/snapshot';
import { LiveNodeSource, SockDiagFlowSource } from './adapters';
import { discoverIntervalFlag, historyFlag, maxFlowsFlag, nodeIntervalFlag, sampleRateFlag, topFlag, watchFlag } from './flags';
import { Sampler, SamplerOptions, DEFAULT_SAMPLER_OPTIONS } from './sampler';

/** Read a flag that belongs to another collector; undefined when that collector is not registered. */
function maybe<T>(config: Config, f: FlagDef<T>): T | undefined {
  try {
    return config.get(f);
  } catch {
    return undefined;
  }
}

export interface BuildOptions {
  /** Override the watch selector (the diagnose command's --flow). */
  watch?: string;
  top?: number;
  /** Read OVS at this interval (ms); default max(--ovs.refresh-interval, node interval). */
  ovsIntervalMs?: number;
  /**
   * The OVS reader to use: the exporter's shared one (the diagnosis collector passes it when the ovs
   * collector runs), null = do not read OVS (e.g. --no-collector.ovs); undefined = a reader of its own
   * from the OVS flags.
   */
  ovs?: Pick<OvsReader, 'read' | 'close' | 'client'> | null;
}

export function samplerOptionsFrom(config: Config, o: BuildOptions = {}): SamplerOptions {
  return {
    ...DEFAULT_SAMPLER_OPTIONS,
    rateHz: config.get(sampleRateFlag),
    top: o.top ?? config.get(topFlag),
    maxFlows: config.get(maxFlowsFlag),
    discoverIntervalMs: config.get(discoverIntervalFlag) * 1000,
    nodeIntervalMs: config.get(nodeIntervalFlag) * 1000,
    historySeconds: config.get(historyFlag),
  };
}

export function buildSampler(config: Config, log: Logger, o: BuildOptions = {}): Sampler {
  const opts = samplerOptionsFrom(config, o);
  const flows = new SockDiagFlowSource({ watch: o.watch ?? config.get(watchFlag) });
  const ovs = o.ovs !== undefined ? o.ovs : new OvsReader(ovsReaderOptions(config, nullLogger));
  const refresh = (maybe(config, ovsRefreshFlag) ?? 5) * 1000;
  const node = new LiveNodeSource({
    procfs: config.get(procfsFlag),
    sysfs: config.get(sysfsFlag),
    ovs,
    ovsIntervalMs: o.ovsIntervalMs ?? Math.max(refresh, opts.nodeIntervalMs),
  });
  return new Sampler(opts, flows, node, log);
}
