// The collector registry: which collectors exist, which are enabled, and one scrape over all of them.
//
// Each collector runs concurrently under a per-scrape deadline. A collector that throws or misses the
// deadline is reported as flowpath_scrape_collector_success{collector}=0 and its partial output is
// discarded; the scrape itself still succeeds.
//
// Concurrent scrapes (an HA Prometheus pair, a curl) share the collection in flight: a scrape that
// arrives while one runs joins it and gets the same data, so no collector is ever called twice at once.
// A collect() still running when its round ends (hung source) is joined by the next round too, not
// started again; a collector is reported failed only when it misses the deadline of the scrape.

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

interface Call {
  /** Settles when collect() returns; never rejects (the error is kept in `error`). */
  done: Promise<void>;
  emitter: Emitter;
  error: unknown;
  t0: bigint;
}

interface Entry {
  def: CollectorDef;
  collector: Collector;
  /** The collect() call still running, shared by every scrape that arrives while it runs. */
  call: Call | null;
  status: CollectorStatus;
}

interface Outcome {
  name: string;
  /** The collector's output, or null when it failed or missed the deadline. */
  emitter: Emitter | null;
  seconds: number;
  error: unknown;
}

/** One collection of every enabled collector, shared by the scrapes that arrive while it runs. */
interface Round {
  outcomes: Promise<Outcome>[];
  deadlineSeconds: number;
}

export interface ScrapeOptions {
  /** This scrape's deadline in seconds; the registry's timeout when not given or larger. */
  timeoutSeconds?: number;
}

export class Registry {
  private readonly entries: Entry[];
  private readonly disabled: CollectorDef[];
  private readonly states: StateLogger;
  private round: Round | null = null;
  private rounds = 0;

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
      call: null,
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

  /** Collections completed so far (readiness: at least one). */
  get completedRounds(): number {
    return this.rounds;
  }

  /**
   * One scrape: every enabled collector's families plus the per-collector status. A scrape that arrives
   * while a collection is in flight joins it (same data, no second collect() of any collector); it
   * waits at most its own deadline, and a collector not done by then is reported failed in its answer.
   */
  async scrape(opts: ScrapeOptions = {}): Promise<Emitter> {
    const own = Math.min(opts.timeoutSeconds ?? this.timeoutSeconds, this.timeoutSeconds);
    const round = this.round ?? this.startRound(own);
    const outcomes =
      own < round.deadlineSeconds
        ? await withDeadline(round.outcomes, this.entries.map((e) => e.def.name), own)
        : await Promise.all(round.outcomes);
    const out = new Emitter();
    for (const r of outcomes) if (r.emitter) out.absorb(r.emitter);
    for (const r of outcomes) {
      out.add(scrapeSuccess, [r.name], r.emitter ? 1 : 0);
      out.add(scrapeDuration, [r.name], r.seconds);
    }
    return out;
  }

  private startRound(deadlineSeconds: number): Round {
    const now = Date.now();
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), deadlineSeconds * 1000);
    const outcomes = this.entries.map((e) => this.runOne(e, ac.signal, now, deadlineSeconds));
    const round: Round = { outcomes, deadlineSeconds };
    this.round = round;
    void Promise.all(outcomes).then(() => {
      clearTimeout(timer);
      this.rounds++;
      if (this.round === round) this.round = null;
    });
    return round;
  }

  /**
   * The outcome of one collector in a round: a new collect() call, or the one still running from an
   * earlier round (a slow source is never called twice at once), raced against this round's deadline.
   */
  private async runOne(e: Entry, signal: AbortSignal, now: number, deadlineSeconds: number): Promise<Outcome> {
    const name = e.def.name;
    const call = e.call ?? this.startCall(e, signal, now);
    let err: unknown = null;
    try {
      await raceDeadline(call.done, signal, deadlineSeconds);
      err = call.error;
    } catch (x) {
      err = x;
    }
    const seconds = Number(process.hrtime.bigint() - call.t0) / 1e9;
    this.states.report(`collector ${name}`, err, { collector: name });
    e.status = {
      name,
      enabled: true,
      lastSuccess: err === null,
      lastDurationSeconds: seconds,
      lastError: err === null ? undefined : err instanceof Error ? err.message : String(err),
      lastScrape: now,
    };
    return { name, emitter: err === null ? call.emitter : null, seconds, error: err };
  }

  private startCall(e: Entry, signal: AbortSignal, now: number): Call {
    const call: Call = { done: Promise.resolve(), emitter: new Emitter(), error: null, t0: process.hrtime.bigint() };
    let run: Promise<void>;
    try {
      run = e.collector.collect(call.emitter, { signal, now });
    } catch (x) {
      run = Promise.reject(x); // a collect() that throws before its first await
    }
    call.done = run.then(
      () => {
        if (e.call === call) e.call = null;
      },
      (x: unknown) => {
        call.error = x ?? new Error('collector failed');
        if (e.call === call) e.call = null;
      },
    );
    e.call = call;
    return call;
  }
}

/** The outcomes settled within `seconds`; the others as failed by the deadline. */
function withDeadline(outcomes: readonly Promise<Outcome>[], names: readonly string[], seconds: number): Promise<Outcome[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), seconds * 1000);
  const t0 = process.hrtime.bigint();
  return Promise.all(
    outcomes.map((p, i) =>
      raceDeadline(p, ac.signal, seconds).catch((err: unknown) => ({
        name: names[i],
        emitter: null,
        seconds: Number(process.hrtime.bigint() - t0) / 1e9,
        error: err,
      })),
    ),
  ).finally(() => clearTimeout(timer));
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
