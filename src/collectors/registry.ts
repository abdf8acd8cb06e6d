// The collector registry: which collectors exist, which are enabled, and one scrape over all of them.
//
// Each collector runs concurrently under a per-scrape deadline. A collector that throws or misses the
// deadline is reported as flowpath_scrape_collector_success{collector}=0 and its partial output is
// discarded; the scrape itself still succeeds. A collector whose previous collect() is still running
// (hung source) is not started again: it fails fast until the old call returns.

import { Config, FlagDef, boolFlag } from '../core/flags';
import { Emitter, MetricDesc, gauge } from '../core/metrics';
import { Logger, StateLogger } from '../core/log';

export interface ScrapeContext {
  /** Aborted when the scrape deadline passes; long reads should check it. */
  signal: AbortSignal;
  /** Wall-clock time of the scrape start, ms since epoch. */
  now: number;
}

/** A running collector instance. */
export interface Collector {
  collect(out: Emitter, ctx: ScrapeContext): Promise<void>;
  /** Start background work (refresh loops). Called once after creation when serving. */
  start?(): void;
  /** Release sockets and timers. */
  close?(): Promise<void> | void;
}

export interface CollectorContext {
  config: Config;
  log: Logger;
}

/** The static description of a collector: everything the CLI, --help and the catalogue need. */
export interface CollectorDef {
  readonly name: string;
  readonly description: string;
  readonly defaultEnabled: boolean;
  /** Every metric family this collector can emit. */
  readonly metrics: readonly MetricDesc[];
  /** Collector-specific flags (besides --collector.<name>). */
  readonly flags?: readonly FlagDef<unknown>[];
  create(ctx: CollectorContext): Collector;
}

export const scrapeSuccess = gauge(
  'flowpath_scrape_collector_success',
  'Whether the collector succeeded in this scrape (1) or failed or timed out (0).',
  ['collector'],
);
export const scrapeDuration = gauge(
  'flowpath_scrape_collector_duration_seconds',
  'How long the collector took in this scrape.',
  ['collector'],
  'seconds',
);
export const REGISTRY_METRICS: readonly MetricDesc[] = [scrapeSuccess, scrapeDuration];

/** The --collector.<name> flag of a collector definition (memoised so the same FlagDef is shared). */
const enableFlags = new Map<string, FlagDef<boolean>>();
export function collectorFlag(def: Pick<CollectorDef, 'name' | 'description' | 'defaultEnabled'>): FlagDef<boolean> {
  let f = enableFlags.get(def.name);
  if (!f) {
    f = boolFlag(`collector.${def.name}`, def.defaultEnabled, `Enable the ${def.name} collector: ${def.description}`);
    enableFlags.set(def.name, f);
  }
  return f;
}

export interface CollectorStatus {
  name: string;
  enabled: boolean;
  lastSuccess?: boolean;
  lastDurationSeconds?: number;
  lastError?: string;
  lastScrape?: number;
}

interface Entry {
  def: CollectorDef;
  collector: Collector;
  inFlight: Promise<void> | null;
  status: CollectorStatus;
}

export class Registry {
  private readonly entries: Entry[];
  private readonly disabled: CollectorDef[];
  private readonly states: StateLogger;

  constructor(
    defs: readonly CollectorDef[],
    private readonly ctx: CollectorContext,
    private readonly timeoutSeconds: number,
  ) {
    this.states = new StateLogger(ctx.log);
    const enabled = defs.filter((d) => ctx.config.get(collectorFlag(d)));
    this.disabled = defs.filter((d) => !enabled.includes(d));
    this.entries = enabled.map((def) => ({
      def,
      collector: def.create({ config: ctx.config, log: ctx.log.child({ collector: def.name }) }),
      inFlight: null,
      status: { name: def.name, enabled: true },
    }));
  }

  start(): void {
    for (const e of this.entries) e.collector.start?.();
  }

  async close(): Promise<void> {
    await Promise.all(this.entries.map((e) => e.collector.close?.()));
  }

  enabledNames(): string[] {
    return this.entries.map((e) => e.def.name);
  }

  collector(name: string): Collector | undefined {
    return this.entries.find((e) => e.def.name === name)?.collector;
  }

  statuses(): CollectorStatus[] {
    return [
      ...this.entries.map((e) => ({ ...e.status })),
      ...this.disabled.map((d) => ({ name: d.name, enabled: false })),
    ];
  }

  /** Run every enabled collector once; returns the merged families including the per-collector status. */
  async scrape(): Promise<Emitter> {
    const out = new Emitter();
    const now = Date.now();
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.timeoutSeconds * 1000);
    try {
      const results = await Promise.all(this.entries.map((e) => this.runOne(e, ac.signal, now)));
      for (const r of results) {
        if (r.emitter) out.absorb(r.emitter);
      }
      for (const r of results) {
        out.add(scrapeSuccess, [r.name], r.emitter ? 1 : 0);
        out.add(scrapeDuration, [r.name], r.seconds);
      }
    } finally {
      clearTimeout(timer);
    }
    return out;
  }

  private async runOne(e: Entry, signal: AbortSignal, now: number): Promise<{ name: string; emitter: Emitter | null; seconds: number }> {
    const t0 = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - t0) / 1e9;
    const name = e.def.name;
    let err: unknown = null;
    let emitter: Emitter | null = null;
    if (e.inFlight) {
      err = new Error('previous collection is still running (source hung?)');
    } else {
      const em = new Emitter();
      const run = e.collector.collect(em, { signal, now });
      e.inFlight = run.then(
        () => undefined,
        () => undefined,
      );
      void e.inFlight.then(() => {
        e.inFlight = null;
      });
      try {
        await raceDeadline(run, signal, this.timeoutSeconds);
        emitter = em;
      } catch (x) {
        err = x;
      }
    }
    const seconds = elapsed();
    this.states.report(`collector ${name}`, err, { collector: name });
    e.status = {
      name,
      enabled: true,
      lastSuccess: err === null,
      lastDurationSeconds: seconds,
      lastError: err === null ? undefined : err instanceof Error ? err.message : String(err),
      lastScrape: now,
    };
    return { name, emitter, seconds };
  }
}

function raceDeadline<T>(p: Promise<T>, signal: AbortSignal, seconds: number): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error(`scrape deadline of ${seconds}s exceeded`));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error(`scrape deadline of ${seconds}s exceeded`));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
