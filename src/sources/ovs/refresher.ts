// Background refresh: OVS is read every --ovs.refresh-interval and a scrape only reads the latest
// snapshot, so a slow or hung ovs-vswitchd never delays /metrics. Reads never overlap: the
// next one is scheduled when the previous finished (at the interval's cadence when reads are fast).

import type { OvsReader, OvsSnapshot } from './snapshot';

export class OvsRefresher {
  private snap: OvsSnapshot | null = null;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<OvsSnapshot> | null = null;
  private started = false;
  private closed = false;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly reader: Pick<OvsReader, 'read' | 'close'>,
    private readonly intervalMs: number,
    private readonly onSnapshot: (s: OvsSnapshot) => void = () => undefined,
  ) {}

  get isStarted(): boolean {
    return this.started;
  }

  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.tick();
  }

  /** The latest completed snapshot (null before the first read finished). */
  latest(): OvsSnapshot | null {
    return this.snap;
  }

  /** Run one read now (joins a read already in flight). */
  refreshNow(): Promise<OvsSnapshot> {
    if (this.inFlight) return this.inFlight;
    const p = this.reader.read().then(
      (s) => {
        this.snap = s;
        try {
          this.onSnapshot(s);
        } finally {
          for (const w of this.waiters) w();
          this.waiters.clear();
        }
        return s;
      },
    );
    this.inFlight = p;
    const clear = () => {
      if (this.inFlight === p) this.inFlight = null;
    };
    p.then(clear, clear);
    return p;
  }

  /** Resolves with the first snapshot, or null after `ms` / when aborted. Never waits once one exists. */
  waitFirst(ms: number, signal?: AbortSignal): Promise<OvsSnapshot | null> {
    if (this.snap || this.closed) return Promise.resolve(this.snap);
    return new Promise((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(t);
        this.waiters.delete(finish);
        signal?.removeEventListener('abort', finish);
        resolve(this.snap);
      };
      const t = setTimeout(finish, ms);
      this.waiters.add(finish);
      signal?.addEventListener('abort', finish, { once: true });
    });
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const w of this.waiters) w();
    this.waiters.clear();
    this.reader.close();
  }

  private tick(): void {
    if (this.closed) return;
    const t0 = Date.now();
    this.refreshNow()
      .catch(() => undefined) // the reader reports failures inside the snapshot; this is a safety net
      .finally(() => {
        if (this.closed) return;
        const wait = Math.max(0, this.intervalMs - (Date.now() - t0));
        this.timer = setTimeout(() => this.tick(), wait);
        this.timer.unref();
      });
  }
}
