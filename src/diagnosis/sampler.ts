// The sampler: polls a few flows at --diagnosis.sample-rate with exact sock_diag lookups (one datagram
// for all of them), classifies every interval (classify.ts), keeps a short history per flow and a ring
// of node snapshots, and answers "what held this flow over the last N seconds, and where" (verdict.ts).
//
// Which flows: those matching --diagnosis.watch, plus the top --diagnosis.top flows by throughput
// (found by a filtered full dump every --diagnosis.discover-interval), plus flows pinned by the API or
// the diagnose command. Sources are interfaces so tests drive the sampler with fakes and a fake clock.

import { isIP } from 'net';
import { FlowClassifier } from './classify';
import { FlowHistory } from './history';
import { summarizeFlow, summarizeNode } from './summarize';
import type { ClassifyContext, DiagnosisInput, FlowKey, FlowSample, NodeSnapshot, PathDevices, ReasonSeconds, SideEvidence, Verdict } from './types';
import { diagnose } from './verdict';
import type { Logger } from '../core/log';
import { StateLogger, nullLogger } from '../core/log';
import { chooseWithHysteresis } from '../core/ranking';

export interface DiscoveredFlow {
  key: FlowKey;
  bytesAcked: number;
  bytesReceived: number;
  /** Matches --diagnosis.watch. */
  watched: boolean;
}

/** A discovered flow with its rate (FlowSource.discover(want) rates every flow it returns). */
export interface RatedFlow extends DiscoveredFlow {
  /** Bytes moved (acked + received) per second since the source's previous discovery: discoveryRate(). */
  bytesPerSecond: number;
}

/**
 * The one definition of a discovered flow's rate: bytes moved since the previous discovery over the
 * discovery interval. A flow seen for the first time (`previous` undefined) is ranked by its bytes so far
 * over one interval, a lower bound of its rate when it is new, so that a fresh bulk flow is picked up by
 * the first discovery that sees it.
 */
export function discoveryRate(total: number, previous: number | undefined, seconds: number): number {
  return Math.max(0, total - (previous ?? 0)) / seconds;
}

/** What a discovery must return besides the watched flows (a source may return more). */
export interface DiscoverWant {
  /** The busiest other flows, by bytes moved per second since the previous discovery. */
  busiest: number;
  /** Cookies of flows to return whatever their rate (those holding a top place: the hysteresis needs them). */
  keep: ReadonlySet<string>;
  /** The discovery interval that rates are computed over (seconds). */
  seconds: number;
}

/** Flows a discovery keeps besides the watched ones (ranked for the top N, listed by /api/flows). */
export const DISCOVER_BUSIEST = 100;

export interface FlowSource {
  /**
   * Candidate flows (established TCP), with the watch selector applied: every watched flow, every flow
   * of `want.keep`, and at least the `want.busiest` busiest others, each rated by discoveryRate() against
   * the source's own previous discovery. A node with 50k flows costs one dump, not 50k records.
   */
  discover(want: DiscoverWant): Promise<RatedFlow[]>;
  /**
   * A count that grows whenever a TCP connection is established in the namespace the source reads
   * (undefined: unknown). Unchanged since a discovery = no new candidate since then.
   */
  openedConnections?(): number | undefined;
  /**
   * Exact lookups; null where the socket is gone. `t`/`wallMs` stamp the samples. The samples may come
   * back within the call (a lookup that finished in it) or as a promise.
   */
  lookup(keys: readonly FlowKey[], t: number, wallMs: number): Array<FlowSample | null> | Promise<Array<FlowSample | null>>;
  close(): void;
}

export interface NodeSource {
  /**
   * `t` is the sampler clock to stamp the snapshot with; `inodes` are the socket inodes of the sampled
   * flows, whose owning processes and threads the snapshot reads.
   */
  snapshot(t: number, inodes?: readonly number[]): Promise<NodeSnapshot>;
  pathFor(key: FlowKey): Promise<PathDevices>;
  close(): void;
}

export interface SamplerOptions {
  rateHz: number;
  top: number;
  maxFlows: number;
  /** 0 = no discovery loop (only pinned flows are sampled). */
  discoverIntervalMs: number;
  nodeIntervalMs: number;
  historySeconds: number;
  /** How long a flow that left the top N keeps being sampled. */
  topHoldMs: number;
  /** How long the counters of a closed flow stay exported. */
  goneGraceMs: number;
}

export const DEFAULT_SAMPLER_OPTIONS: SamplerOptions = {
  rateHz: 20,
  top: 3,
  maxFlows: 16,
  discoverIntervalMs: 2000,
  nodeIntervalMs: 1000,
  historySeconds: 120,
  topHoldMs: 30000,
  goneGraceMs: 120000,
};

/**
 * How early a timer may fire and still count as on time (ms). Node's timers run on libuv's loop clock,
 * which is whole milliseconds taken when the timer was set, so a timeout of 49.7 ms fires up to 1 ms
 * before `performance.now()` reaches its due time. Without this slack such a wake-up found nothing due
 * and set a second timer for the remaining fraction: 519 timer wake-ups for 301 sampling rounds at 20 Hz
 * (measured; 310 with it).
 */
export const TIMER_SLACK_MS = 1;

export type WatchReason = 'watch' | 'top' | 'pinned';

export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  wall(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(h: unknown): void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  wall: () => Date.now(),
  setTimeout: (fn, ms) => {
    const h = setTimeout(fn, ms);
    h.unref?.();
    return h;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export function flowId(k: FlowKey): string {
  const h = (ip: string) => (ip.includes(':') ? `[${ip}]` : ip);
  return `${h(k.localIp)}:${k.localPort}-${h(k.peerIp)}:${k.peerPort}`;
}

/** Parse a flow id ("1.1.1.3:40000-1.1.1.2:5201", IPv6 in brackets); undefined if it is not one. */
export function parseFlowId(s: string): FlowKey | undefined {
  const m = /^(\[[^\]]+\]|[^:[\]-]+):(\d{1,5})-(\[[^\]]+\]|[^:[\]-]+):(\d{1,5})$/.exec(s.trim());
  if (!m) return undefined;
  const ip = (x: string) => (x.startsWith('[') ? x.slice(1, -1) : x);
  const lp = Number(m[2]);
  const pp = Number(m[4]);
  if (lp > 65535 || pp > 65535) return undefined;
  // Only addresses a socket can have: "foo:1-bar:2" is no flow (and a lookup of it could not be built).
  const v4 = (x: string) => isIP(x) === 4 && !x.startsWith('[');
  const v6 = (x: string) => x.startsWith('[') && isIP(ip(x)) === 6;
  if (!(v4(m[1]) || v6(m[1])) || !(v4(m[3]) || v6(m[3]))) return undefined;
  return { localIp: ip(m[1]), localPort: lp, peerIp: ip(m[3]), peerPort: pp };
}

const sameTuple = (a: FlowKey, b: FlowKey) =>
  a.localPort === b.localPort && a.peerPort === b.peerPort && a.localIp === b.localIp && a.peerIp === b.peerIp;

/**
 * A time-bounded list of objects (the node snapshots, one a second; a flow's samples are rows of a
 * FlowHistory): push() drops the oldest entries that `keep` rejects. Dropped entries advance a start
 * index and the array is compacted only when more than half of it is dead, so a push costs O(1) amortised.
 * A dropped entry's slot is cleared at once, so that it is not kept alive until the compaction.
 */
export class Ring<T> {
  private items: Array<T | undefined> = [];
  private head = 0;
  constructor(private readonly keep: (x: T, newest: T) => boolean) {}
  push(x: T): void {
    this.items.push(x);
    while (this.head < this.items.length - 1 && !this.keep(this.items[this.head] as T, x)) this.items[this.head++] = undefined;
    if (this.head > 64 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
  all(): readonly T[] {
    return (this.head === 0 ? this.items : this.items.slice(this.head)) as readonly T[];
  }
  get last(): T | undefined {
    return this.items.length > this.head ? this.items[this.items.length - 1] : undefined;
  }
  get length(): number {
    return this.items.length - this.head;
  }
}

export interface WatchedFlow {
  key: FlowKey;
  id: string;
  reasons: Set<WatchReason>;
  classifier: FlowClassifier;
  history: FlowHistory;
  path?: PathDevices;
  /** Resolves when `path` has been looked up (or the lookup failed). */
  pathReady?: Promise<void>;
  /** Holds one of the --diagnosis.top places now (kept with hysteresis by the next discovery). */
  topPlace?: boolean;
  /** Sampler time the flow was last in the top N / pinned until. */
  topUntil: number;
  pinnedUntil: number;
  /** Sampler time the socket was found gone. */
  goneAt?: number;
}

export interface SamplerStats {
  ticks: number;
  lookups: number;
  samplingSeconds: number;
  overruns: number;
  discoveries: number;
  /** Discoveries skipped: no connection opened since a dump that had nothing to rank. */
  discoveriesSkipped: number;
  discoverySeconds: number;
  nodeSnapshots: number;
  nodeSeconds: number;
  /** tick: a sampling round that failed outside its lookup (e.g. classification). */
  errors: Record<'lookup' | 'discover' | 'node' | 'path' | 'tick', number>;
}

export class Sampler {
  private readonly flowsById = new Map<string, WatchedFlow>();
  private readonly nodeRing: Ring<NodeSnapshot>;
  private readonly states: StateLogger;
  /** The one pending timer of all three loops, and the sampler time it fires at. */
  private timer: unknown;
  private timerAt = Infinity;
  /** Sampler time each loop's next round is due. */
  private readonly due = { tick: 0, node: 0, discover: 0 };
  /** Discovery and node rounds in flight (a tick in flight is tickBusy: a tick due meanwhile is an overrun). */
  private readonly inFlight = { discover: false, node: false };
  private running = false;
  private tickBusy = false;
  readonly stats: SamplerStats = {
    ticks: 0,
    lookups: 0,
    samplingSeconds: 0,
    overruns: 0,
    discoveries: 0,
    discoveriesSkipped: 0,
    discoverySeconds: 0,
    nodeSnapshots: 0,
    nodeSeconds: 0,
    errors: { lookup: 0, discover: 0, node: 0, path: 0, tick: 0 },
  };
  /** Most recent discovery (for /api/flows). */
  lastDiscovered: RatedFlow[] = [];
  lastError: Partial<Record<keyof SamplerStats['errors'], string>> = {};

  constructor(
    readonly opts: SamplerOptions,
    private readonly flowSource: FlowSource,
    private readonly nodeSource: NodeSource | null,
    private readonly log: Logger = nullLogger,
    private readonly clock: Clock = realClock,
  ) {
    const keepMs = opts.historySeconds * 1000;
    this.nodeRing = new Ring<NodeSnapshot>((x, newest) => newest.t - x.t <= keepMs);
    this.states = new StateLogger(log);
  }

  get intervalMs(): number {
    return 1000 / this.opts.rateHz;
  }

  // ------------------------------------------------------------------------------------------------
  // Loops

  private hasActive(): boolean {
    for (const f of this.flowsById.values()) if (f.goneAt === undefined) return true;
    return false;
  }

  /** The flows being sampled (not found gone). */
  private activeFlows(): WatchedFlow[] {
    const out: WatchedFlow[] = [];
    for (const f of this.flowsById.values()) if (f.goneAt === undefined) out.push(f);
    return out;
  }

  /** A flow was added: sampling and node evidence start now (they are parked while none is sampled). */
  private wake(): void {
    if (!this.running) return;
    const now = this.clock.now();
    this.due.tick = this.due.node = now;
    this.schedule();
  }

  /**
   * All three loops share one timer: each wake-up runs the sampling round and, when they are due, the
   * node snapshot and the discovery in the same event-loop turn (one wake-up per sampling round, not
   * three timers). The sampling and node loops only run while a flow is sampled: with none they park
   * (no wake-ups at the sample rate on an idle node) and ensure() wakes them. Discovery always runs.
   * The rounds are started, not awaited, by the wake-up: a slow discovery dump does not delay sampling.
   */
  start(): void {
    if (this.running) return;
    this.running = true;
    const now = this.clock.now();
    this.due.tick = this.due.node = this.due.discover = now;
    this.schedule();
  }

  /** Set the timer to the earliest round due (discovery always; sampling and node while a flow is sampled). */
  private schedule(): void {
    if (!this.running) return;
    let at = this.opts.discoverIntervalMs > 0 ? this.due.discover : Infinity;
    if (this.hasActive()) {
      at = Math.min(at, this.due.tick);
      if (this.nodeSource) at = Math.min(at, this.due.node);
    }
    if (this.timer !== undefined) {
      if (this.timerAt <= at) return;
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (at === Infinity) return;
    this.timerAt = at;
    this.timer = this.clock.setTimeout(this.onTimer, Math.max(0, at - this.clock.now()));
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (!this.running) return;
    // A loop within TIMER_SLACK_MS of its due time runs now: see TIMER_SLACK_MS.
    const now = this.clock.now();
    const dueBy = now + TIMER_SLACK_MS;
    if (this.hasActive()) {
      if (dueBy >= this.due.tick) {
        this.due.tick = this.advance(this.due.tick, this.intervalMs, now, true);
        this.round('tick', () => this.tick());
      }
      if (this.nodeSource && dueBy >= this.due.node) {
        this.due.node = this.advance(this.due.node, this.opts.nodeIntervalMs, now, false);
        if (!this.inFlight.node) this.round('node', () => this.snapshotNode(), 'node');
      }
    }
    if (this.opts.discoverIntervalMs > 0 && dueBy >= this.due.discover) {
      this.due.discover = this.advance(this.due.discover, this.opts.discoverIntervalMs, now, false);
      if (!this.inFlight.discover) this.round('discover', () => this.discover(), 'discover');
    }
    this.schedule();
  };

  /** The next due time after a round at `due`; rounds missed (a slow round, a paused process) are skipped. */
  private advance(due: number, everyMs: number, now: number, countOverruns: boolean): number {
    let next = due + everyMs;
    if (next <= now) {
      const missed = Math.floor((now - next) / everyMs) + 1;
      if (countOverruns) this.stats.overruns += missed;
      next += missed * everyMs;
    }
    return next;
  }

  /**
   * Start a round; one that throws outside its own error handling is counted and logged, and the loop goes
   * on. A round that finished within the call (a sampling round whose lookup did) returns undefined.
   */
  private round(stage: keyof SamplerStats['errors'], fn: () => Promise<void> | undefined, busy?: keyof Sampler['inFlight']): void {
    let p: Promise<void> | undefined;
    try {
      p = fn();
    } catch (e) {
      p = Promise.reject(e);
    }
    if (!p) return;
    if (busy) this.inFlight[busy] = true;
    void p
      .catch((e: unknown) => this.unexpected(stage, e))
      .finally(() => {
        if (busy) this.inFlight[busy] = false;
      });
  }

  /** An error no stage handled: counted under its stage (flowpath_diagnosis_errors_total) and logged. */
  private unexpected(stage: keyof SamplerStats['errors'], e: unknown): void {
    this.stats.errors[stage]++;
    this.lastError[stage] = e instanceof Error ? e.message : String(e);
    this.log.error('diagnosis sampler round failed', { stage, err: this.lastError[stage] });
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  close(): void {
    void this.stop();
    this.flowSource.close();
    this.nodeSource?.close();
  }

  // ------------------------------------------------------------------------------------------------
  // One round of each loop (public: tests and the diagnose command call them directly)

  /**
   * Sample every active flow once. Returns undefined when the round finished within the call (the
   * lookup answered in it: the path from the timer to the last kept sample has no promise), else a
   * promise of the round; an error outside the lookup's own handling is thrown, or rejects.
   */
  tick(): Promise<void> | undefined {
    if (this.tickBusy) {
      this.stats.overruns++;
      return undefined;
    }
    const t0 = process.hrtime.bigint();
    const active = this.activeFlows();
    if (active.length === 0) {
      this.endTick(t0);
      return undefined;
    }
    this.tickBusy = true;
    const t = this.clock.now();
    let samples: Array<FlowSample | null> | Promise<Array<FlowSample | null>>;
    try {
      samples = this.flowSource.lookup(
        active.map((f) => f.key),
        t,
        this.clock.wall(),
      );
    } catch (e) {
      this.lookupFailed(e);
      this.endTick(t0);
      return undefined;
    }
    if (!Array.isArray(samples)) {
      return samples.then(
        (s) => this.keep(active, s, t),
        (e: unknown) => this.lookupFailed(e),
      ).finally(() => this.endTick(t0));
    }
    try {
      this.keep(active, samples, t);
    } finally {
      this.endTick(t0);
    }
    return undefined;
  }

  /** A round's samples: classified and kept; a flow without one is gone. */
  private keep(active: readonly WatchedFlow[], samples: ReadonlyArray<FlowSample | null>, t: number): void {
    this.states.report('diagnosis lookup', null);
    this.stats.lookups += active.length;
    for (let i = 0; i < active.length; i++) {
      const f = active[i];
      const s = samples[i];
      if (!s) {
        f.goneAt = t;
        continue;
      }
      f.classifier.add(s);
      f.history.push(s, f.classifier);
    }
  }

  private lookupFailed(e: unknown): void {
    this.stats.errors.lookup++;
    this.lastError.lookup = (e as Error).message;
    this.states.report('diagnosis lookup', e);
  }

  private endTick(t0: bigint): void {
    this.stats.ticks++;
    this.stats.samplingSeconds += Number(process.hrtime.bigint() - t0) / 1e9;
    this.tickBusy = false;
  }

  /** Opened-connection count at the last dump, when that dump left nothing to rank for the top N. */
  private quietAtOpens: number | undefined;

  /** Find watched and top flows; update the active set. */
  async discover(): Promise<void> {
    const now = this.clock.now();
    // A dump walks every socket of the kernel's hash (TIME-WAIT ones too), whatever the filter. When the
    // last dump found no candidate outside the watched flows (nothing to rank for the top N) and no
    // connection was established since, a new dump would find the same set: skip it.
    const opens = this.flowSource.openedConnections?.();
    if (opens !== undefined && opens === this.quietAtOpens) {
      this.stats.discoveriesSkipped++;
      this.expire(now);
      return;
    }
    this.quietAtOpens = undefined;
    const t0 = process.hrtime.bigint();
    try {
      let rated: RatedFlow[];
      const seconds = this.opts.discoverIntervalMs / 1000;
      const keep = new Set<string>();
      for (const f of this.flowsById.values()) if (f.topPlace && f.goneAt === undefined && f.key.cookie !== undefined) keep.add(f.key.cookie);
      try {
        rated = await this.flowSource.discover({ busiest: Math.max(this.opts.top, DISCOVER_BUSIEST), keep, seconds });
        this.states.report('diagnosis discovery', null);
      } catch (e) {
        this.stats.errors.discover++;
        this.lastError.discover = (e as Error).message;
        this.states.report('diagnosis discovery', e);
        return;
      }
      if (opens !== undefined && (this.opts.top === 0 || rated.every((d) => d.watched))) this.quietAtOpens = opens;
      this.lastDiscovered = rated;

      for (const d of rated) if (d.watched) this.ensure(d.key, 'watch', now);
      // The top N with hysteresis (core/ranking.ts): among many similar flows the choice stays put.
      const placed = (d: (typeof rated)[number]) => {
        const f = this.flowsById.get(flowId(d.key));
        return f?.topPlace === true && f.goneAt === undefined && f.key.cookie === d.key.cookie;
      };
      const top = chooseWithHysteresis(
        rated.filter((d) => !d.watched && d.bytesPerSecond > 0).sort((a, b) => b.bytesPerSecond - a.bytesPerSecond),
        (d) => d.bytesPerSecond,
        placed,
        this.opts.top,
      );
      for (const f of this.flowsById.values()) f.topPlace = false;
      for (const d of top) {
        const f = this.ensure(d.key, 'top', now);
        if (f) {
          f.topUntil = now + this.opts.topHoldMs;
          f.topPlace = true;
        }
      }
      // A socket that reappears with a new cookie on the same 4-tuple is a new flow.
      for (const f of this.flowsById.values()) {
        const still = rated.find((d) => sameTuple(d.key, f.key));
        if (still && f.key.cookie !== undefined && still.key.cookie !== undefined && still.key.cookie !== f.key.cookie) f.goneAt ??= now;
        if (f.reasons.has('watch') && !rated.some((d) => d.watched && sameTuple(d.key, f.key))) f.reasons.delete('watch');
      }
      this.expire(now);
    } finally {
      this.stats.discoveries++;
      this.stats.discoverySeconds += Number(process.hrtime.bigint() - t0) / 1e9;
    }
  }

  async snapshotNode(): Promise<void> {
    if (!this.nodeSource) return;
    // Node evidence only matters for sampled flows: a node without them costs one dump per discovery.
    const active = this.activeFlows();
    if (active.length === 0) return;
    const inodes = active.map((f) => f.classifier.last?.inode).filter((i): i is number => i !== undefined && i > 0);
    const t0 = process.hrtime.bigint();
    try {
      const snap = await this.nodeSource.snapshot(this.clock.now(), inodes);
      this.nodeRing.push(snap);
      this.states.report('diagnosis node snapshot', null);
    } catch (e) {
      this.stats.errors.node++;
      this.lastError.node = (e as Error).message;
      this.states.report('diagnosis node snapshot', e);
    } finally {
      this.stats.nodeSnapshots++;
      this.stats.nodeSeconds += Number(process.hrtime.bigint() - t0) / 1e9;
    }
  }

  // ------------------------------------------------------------------------------------------------
  // The active set

  private ensure(key: FlowKey, why: WatchReason, now: number): WatchedFlow | undefined {
    const id = flowId(key);
    let f = this.flowsById.get(id);
    if (f && f.goneAt !== undefined) {
      // Discovery found the 4-tuple alive again, or a pin names another cookie: a new socket. Start over
      // (its counters restart, as a Prometheus counter may). A pin of the closed flow itself keeps it, so
      // its history can still be diagnosed.
      const newSocket = why !== 'pinned' || (key.cookie !== undefined && key.cookie !== f.key.cookie);
      if (!newSocket) return f;
      this.flowsById.delete(id);
      f = undefined;
    }
    if (!f) {
      if (this.activeFlows().length >= this.opts.maxFlows) {
        this.states.report('diagnosis max flows', new Error(`more than --diagnosis.max-flows=${this.opts.maxFlows} flows to sample; ${flowId(key)} left out`));
        return undefined;
      }
      const keepMs = this.opts.historySeconds * 1000;
      f = {
        key,
        id,
        reasons: new Set(),
        classifier: new FlowClassifier(() => this.classifyContext(id)),
        history: new FlowHistory(keepMs, Math.ceil(this.opts.historySeconds * this.opts.rateHz) + 2),
        topUntil: 0,
        pinnedUntil: 0,
      };
      this.flowsById.set(id, f);
      f.pathReady = this.resolvePath(f);
      this.wake();
    } else if (key.cookie !== undefined && f.key.cookie === undefined) {
      f.key = key;
    }
    f.reasons.add(why);
    return f;
  }

  private async resolvePath(f: WatchedFlow): Promise<void> {
    if (!this.nodeSource) return;
    try {
      f.path = await this.nodeSource.pathFor(f.key);
    } catch (e) {
      this.stats.errors.path++;
      this.lastError.path = (e as Error).message;
      this.states.report('diagnosis path lookup', e);
    }
  }

  /** Drop flows that are no longer watched, top or pinned, and closed flows after the grace period. */
  private expire(now: number): void {
    for (const [id, f] of this.flowsById) {
      if (f.reasons.has('top') && f.topUntil < now) f.reasons.delete('top');
      if (f.reasons.has('pinned') && f.pinnedUntil < now) f.reasons.delete('pinned');
      if (f.goneAt !== undefined ? now - f.goneAt > this.opts.goneGraceMs : f.reasons.size === 0) this.flowsById.delete(id);
    }
  }

  /** Sample this flow for the next `seconds` (API / diagnose). Returns false when over --max-flows. */
  pin(key: FlowKey, seconds: number): boolean {
    const now = this.clock.now();
    const f = this.ensure(key, 'pinned', now);
    if (!f) return false;
    f.pinnedUntil = Math.max(f.pinnedUntil, now + seconds * 1000);
    return true;
  }

  flows(): WatchedFlow[] {
    return [...this.flowsById.values()];
  }

  find(key: FlowKey): WatchedFlow | undefined {
    return this.flowsById.get(flowId(key));
  }

  latestNode(): NodeSnapshot | undefined {
    return this.nodeRing.last;
  }

  private classifyContext(id?: string): ClassifyContext {
    const n = this.nodeRing.last;
    if (!n) return {};
    const lob = Number(n.sysctl?.['net.ipv4.tcp_limit_output_bytes']);
    const f = id ? this.flowsById.get(id) : undefined;
    const egress = f?.path?.nicDevice ?? f?.path?.ipDevice;
    const q = egress ? n.qdiscs.find((x) => x.device === egress && x.root) : undefined;
    return { tcpLimitOutputBytes: Number.isFinite(lob) && lob > 0 ? lob : undefined, fqOnEgress: q?.kind === 'fq' };
  }

  // ------------------------------------------------------------------------------------------------
  // Answers

  /** Cumulative limited seconds per reason of every exported flow. */
  totals(): Array<{ key: FlowKey; reasons: ReasonSeconds }> {
    return this.flows().map((f) => ({ key: f.key, reasons: f.classifier.total }));
  }

  /** This node's evidence about a flow over the last `windowSeconds`. */
  evidence(key: FlowKey, windowSeconds: number, nodeName?: string): SideEvidence {
    const f = this.find(key);
    const out: SideEvidence = { node: nodeName };
    const now = this.clock.now();
    let fromT = now - windowSeconds * 1000;
    if (f) {
      const h = f.history;
      const start = h.windowStart(fromT);
      if (h.length - start >= 2) {
        out.flow = summarizeFlow(f.key, h, start);
        fromT = h.t(start);
      }
    }
    const snaps = this.nodeRing.all();
    if (snaps.length >= 2) {
      let i = 0;
      snaps.forEach((s, j) => {
        if (s.t <= fromT) i = j;
      });
      // The flow's devices are read from the first snapshot after its path was known: start there.
      const dev = f?.path?.ipDevice;
      while (dev && i < snaps.length - 2 && !snaps[i].devices.some((d) => d.name === dev)) i++;
      const from = snaps[i];
      const to = snaps[snaps.length - 1];
      if (to !== from) out.nodeSummary = summarizeNode(from, to, f?.path ?? {}, snaps.slice(i));
    }
    return out;
  }

  /** The verdict for a flow from this node's evidence, joined with the peer's when given. */
  diagnose(key: FlowKey, windowSeconds: number, peer?: SideEvidence, nodeName?: string): Verdict {
    const local = this.evidence(key, windowSeconds, nodeName);
    return diagnose(joinEvidence(local, peer));
  }
}

/** Put local and peer evidence on the sender/receiver sides by which end sent the bytes. */
export function joinEvidence(local: SideEvidence, peer?: SideEvidence): DiagnosisInput {
  const localIsSender = local.flow ? local.flow.role === 'sender' : peer?.flow ? peer.flow.role !== 'sender' : true;
  return localIsSender ? { sender: local, receiver: peer } : { sender: peer, receiver: local };
}
