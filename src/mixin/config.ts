// The one configuration of the Prometheus rules and alerts (prometheus/*.yml are generated from it by
// `flowpath rules --out prometheus`): selectors, rate windows, thresholds, `for:` durations and
// severities. A user changes any of it without forking: `flowpath rules --config overrides.yaml`
// deep-merges a partial copy of this object over the defaults.

export type Severity = 'info' | 'warning' | 'critical';

export interface AlertSettings {
  /** How long the condition must hold before the alert fires (Prometheus duration). */
  for: string;
  severity: Severity;
}

/** Every alert of the mixin, in the order of the generated file. */
export const ALERT_NAMES = [
  'FlowpathFlowPacingLimited',
  'FlowpathFlowPacingLimitedRegression',
  'FlowpathFlowRwndLimited',
  'FlowpathFlowSndbufLimited',
  'FlowpathFlowCwndLimitedWithLoss',
  'FlowpathFlowSpuriousRetransmits',
  'FlowpathFlowNotsentBacklog',
  'FlowpathNicRxOverflow',
  'FlowpathNicTxQueueStopped',
  'FlowpathNicOffloadDisabled',
  'FlowpathNicLinkSpeedBelowExpected',
  'FlowpathQdiscDrops',
  'FlowpathSoftnetBacklogDrops',
  'FlowpathSoftnetTimeSqueeze',
  'FlowpathSoftirqCpuSaturatedWithoutRps',
  'FlowpathOvsDatapathLost',
  'FlowpathOvsMissRate',
  'FlowpathOvsUpcallFlowLimit',
  'FlowpathCollectorFailing',
  'FlowpathExporterDown',
] as const;
export type AlertName = (typeof ALERT_NAMES)[number];

export interface ExpectedLinkSpeed {
  /** Anchored regular expression over the device name, e.g. "ens.*f[01]". */
  device: string;
  /** The speed this device must negotiate, bits per second (25e9 for 25 Gbit/s). */
  bitsPerSecond: number;
}

export interface MixinConfig {
  /** Label matchers that select flowpath's series (the scrape job), without braces. */
  selector: string;
  /** Labels that tell exporters apart besides `instance` (e.g. ["cluster"]); kept by every aggregation. */
  groupLabels: string[];
  /** Window of rate() / avg_over_time() in the recording rules; it is part of their names ("rate5m"). */
  rateWindow: string;
  /** Evaluation interval of the rule groups ("" = Prometheus's global evaluation_interval). */
  interval: string;
  /** Base of every alert's runbook_url; the alert name and ".md" are appended. The default is the path in this
   * repository; point it at the URL where you publish docs/runbooks/ (a wiki, your git forge). */
  runbookUrlBase: string;
  /** Device classes (flowpath_nic_info{class}) whose speed is a real link speed (not veth/tap/internal). */
  linkSpeedClasses: string;
  /** Offload features (flowpath_nic_offload_active{feature}) that must be on for a fast link. */
  offloadFeatures: string;
  /** Links at or above this speed need the offloads (bytes/s; 10 Gbit/s = 1.25e9). */
  offloadMinSpeedBytesPerSecond: number;
  /** A link slower than the fastest it negotiated over this look-back counts as below expected. */
  linkSpeedLookback: string;
  /** Fixed expectations, in addition to the look-back (empty by default). */
  expectedLinkSpeeds: ExpectedLinkSpeed[];
  thresholds: {
    /** Share of wall time held by pacing (pacing + pacing_capped) above which a flow is pacing-limited. */
    pacingLimitedShare: number;
    /** A flow whose goodput reaches this share of its link speed is not alerted on (the link is full). */
    linkFullShare: number;
    /** The regression alert: the pacing-limited share rose by at least this much over its baseline. */
    pacingRegressionIncrease: number;
    /** Baselines the regression alert compares with (offsets), e.g. ["1d", "1w"]. */
    pacingRegressionOffsets: string[];
    rwndLimitedShare: number;
    sndbufLimitedShare: number;
    cwndLimitedShare: number;
    /** Non-spurious retransmitted segments / data segments sent counted as a lossy flow. */
    lossRatio: number;
    /** Share of retransmits that DSACKs showed to be spurious. */
    spuriousRetransmitShare: number;
    /** ... with at least this many retransmits per second (else the share means nothing) ... */
    spuriousRetransmitsMinPerSecond: number;
    /** ... and retransmitted segments at least this share of the data segments sent (a tail loss probe
     *  now and then on a window-limited flow is spurious too, and harmless). */
    spuriousRetransmitsMinRatio: number;
    /** notsent / send queue (averaged over the window) counted as a backlog ... */
    notsentShareOfSendQueue: number;
    /** ... when at least this many bytes wait on average. */
    notsentMinBytes: number;
    /** NIC RX overflow (missed + fifo + over errors) / received packets. */
    nicRxOverflowRatio: number;
    /** TX queue stops per second (netdev qstats tx-stop) of a device. */
    nicTxStopsPerSecond: number;
    qdiscDropsPerSecond: number;
    softnetDropsPerSecond: number;
    timeSqueezesPerSecond: number;
    /** Share of a CPU's time spent in softirq. */
    softirqCpuShare: number;
    ovsLostPerSecond: number;
    /** Datapath missed / (hit + missed) ... */
    ovsMissRatio: number;
    /** ... with at least this many misses (upcalls) per second. */
    ovsMissesMinPerSecond: number;
    /** Datapath flows / flow limit. */
    ovsFlowLimitShare: number;
  };
  alerts: Record<AlertName, AlertSettings>;
}

const warn = (forDuration: string): AlertSettings => ({ for: forDuration, severity: 'warning' });

export const DEFAULT_CONFIG: MixinConfig = {
  selector: 'job="flowpath"',
  groupLabels: ['job'],
  rateWindow: '5m',
  interval: '',
  runbookUrlBase: 'docs/runbooks/',
  linkSpeedClasses: 'physical|bond|team|vlan',
  offloadFeatures: 'tx-tcp-segmentation|tx-generic-segmentation|rx-gro',
  offloadMinSpeedBytesPerSecond: 1.25e9,
  linkSpeedLookback: '1d',
  expectedLinkSpeeds: [],
  thresholds: {
    pacingLimitedShare: 0.5,
    linkFullShare: 0.9,
    pacingRegressionIncrease: 0.3,
    pacingRegressionOffsets: ['1d', '1w'],
    rwndLimitedShare: 0.5,
    sndbufLimitedShare: 0.3,
    cwndLimitedShare: 0.5,
    lossRatio: 0.002,
    spuriousRetransmitShare: 0.5,
    spuriousRetransmitsMinPerSecond: 1,
    spuriousRetransmitsMinRatio: 0.002,
    notsentShareOfSendQueue: 0.9,
    notsentMinBytes: 1048576,
    nicRxOverflowRatio: 0.001,
    nicTxStopsPerSecond: 10,
    qdiscDropsPerSecond: 1,
    softnetDropsPerSecond: 1,
    timeSqueezesPerSecond: 10,
    softirqCpuShare: 0.9,
    ovsLostPerSecond: 0,
    ovsMissRatio: 0.1,
    ovsMissesMinPerSecond: 100,
    ovsFlowLimitShare: 0.9,
  },
  alerts: {
    FlowpathFlowPacingLimited: warn('15m'),
    FlowpathFlowPacingLimitedRegression: warn('30m'),
    FlowpathFlowRwndLimited: warn('15m'),
    FlowpathFlowSndbufLimited: warn('15m'),
    FlowpathFlowCwndLimitedWithLoss: warn('15m'),
    FlowpathFlowSpuriousRetransmits: { for: '15m', severity: 'info' },
    FlowpathFlowNotsentBacklog: { for: '15m', severity: 'info' },
    FlowpathNicRxOverflow: warn('10m'),
    FlowpathNicTxQueueStopped: warn('15m'),
    FlowpathNicOffloadDisabled: warn('30m'),
    FlowpathNicLinkSpeedBelowExpected: warn('5m'),
    FlowpathQdiscDrops: warn('10m'),
    FlowpathSoftnetBacklogDrops: warn('10m'),
    FlowpathSoftnetTimeSqueeze: warn('15m'),
    FlowpathSoftirqCpuSaturatedWithoutRps: warn('15m'),
    FlowpathOvsDatapathLost: warn('10m'),
    FlowpathOvsMissRate: warn('15m'),
    FlowpathOvsUpcallFlowLimit: warn('15m'),
    FlowpathCollectorFailing: warn('15m'),
    FlowpathExporterDown: { for: '5m', severity: 'critical' },
  },
};

// ---------------------------------------------------------------------------------------------------
// Overrides

export class ConfigError extends Error {}

const DURATION = /^(\d+(ms|s|m|h|d|w|y))+$/;

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * Deep-merge `overrides` over `base`. Keys must exist in the base (a typo is an error, not a silent
 * no-op), values keep the base's type; arrays are replaced as a whole.
 */
export function mergeConfig(base: MixinConfig, overrides: unknown, where = 'config'): MixinConfig {
  const out = structuredClone(base) as unknown as Record<string, unknown>;
  mergeInto(out, overrides, where);
  const cfg = out as unknown as MixinConfig;
  validateConfig(cfg);
  return cfg;
}

function mergeInto(target: Record<string, unknown>, src: unknown, path: string): void {
  if (!isObject(src)) throw new ConfigError(`${path}: expected an object`);
  for (const [k, v] of Object.entries(src)) {
    const p = `${path}.${k}`;
    if (!(k in target)) throw new ConfigError(`${p}: unknown key (known: ${Object.keys(target).join(', ')})`);
    const cur = target[k];
    if (isObject(cur)) {
      mergeInto(cur, v, p);
    } else if (Array.isArray(cur)) {
      if (!Array.isArray(v)) throw new ConfigError(`${p}: expected a list`);
      target[k] = structuredClone(v);
    } else {
      if (typeof v !== typeof cur) throw new ConfigError(`${p}: expected a ${typeof cur}, got ${JSON.stringify(v)}`);
      target[k] = v;
    }
  }
}

export function validateConfig(c: MixinConfig): void {
  const dur = (p: string, v: string, allowEmpty = false) => {
    if (allowEmpty && v === '') return;
    if (!DURATION.test(v)) throw new ConfigError(`${p}: not a Prometheus duration: ${JSON.stringify(v)}`);
  };
  dur('rateWindow', c.rateWindow);
  dur('interval', c.interval, true);
  dur('linkSpeedLookback', c.linkSpeedLookback);
  for (const o of c.thresholds.pacingRegressionOffsets) dur('thresholds.pacingRegressionOffsets[]', o);
  for (const n of ALERT_NAMES) {
    const a = c.alerts[n];
    dur(`alerts.${n}.for`, a.for);
    if (!['info', 'warning', 'critical'].includes(a.severity)) throw new ConfigError(`alerts.${n}.severity: info, warning or critical`);
  }
  for (const [k, v] of Object.entries(c.thresholds)) {
    if (k === 'pacingRegressionOffsets') continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(`thresholds.${k}: a number ≥ 0`);
  }
  if (!/^[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"/.test(c.selector.trim())) {
    throw new ConfigError(`selector: label matchers without braces, e.g. job="flowpath" (got ${JSON.stringify(c.selector)})`);
  }
  for (const l of c.groupLabels) if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(l)) throw new ConfigError(`groupLabels: not a label name: ${l}`);
  for (const e of c.expectedLinkSpeeds) {
    if (typeof e.device !== 'string' || typeof e.bitsPerSecond !== 'number' || e.bitsPerSecond <= 0) {
      throw new ConfigError('expectedLinkSpeeds[]: {device: "<regex>", bitsPerSecond: <number>}');
    }
  }
}
