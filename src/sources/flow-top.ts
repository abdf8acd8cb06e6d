// Keeping the busiest flows of one sock_diag dump without materialising the others: a bounded min-heap
// of (amount, lifetime bytes) over copies of the kept sockets' messages. Shared by the flows collector
// (amount = bytes moved since the last scrape) and the diagnosis discovery (bytes per second since the
// last discovery); the choice among the kept ones (hysteresis) is src/core/ranking.ts.

import { SockView } from './netlink/sockdiag';

export interface Candidate {
  delta: number;
  total: number;
  view: SockView;
}

const worse = (a: Candidate, b: Candidate) => a.delta < b.delta || (a.delta === b.delta && a.total < b.total);
export const byRank = (a: Candidate, b: Candidate) => b.delta - a.delta || b.total - a.total;

/**
 * Keeps the `cap` best candidates of one dump. The candidates and their message copies are reused from
 * scrape to scrape (reset() makes them free again), and an entering socket is copied over the evicted
 * one, so selection allocates nothing in steady state (kept objects would also make V8 grow its young
 * generation). Views handed out stay valid until the next reset().
 */
export class TopFlows {
  private readonly heap: Candidate[] = [];
  private readonly spare: Candidate[] = [];
  constructor(readonly cap: number) {}

  get items(): readonly Candidate[] {
    return this.heap;
  }

  /** Forget the previous dump's candidates (their storage is reused). */
  reset(): void {
    this.spare.push(...this.heap);
    this.heap.length = 0;
  }

  private fresh(delta: number, total: number, v: SockView): Candidate {
    const c = this.spare.pop() ?? { delta: 0, total: 0, view: new SockView(v.layout) };
    c.delta = delta;
    c.total = total;
    v.copyInto(c.view);
    return c;
  }

  /** Add unconditionally (watched flows, last scrape's exported flows). */
  keep(delta: number, total: number, v: SockView): Candidate {
    const c = this.fresh(delta, total, v);
    this.heap.push(c);
    return c;
  }

  offer(delta: number, total: number, v: SockView): void {
    const h = this.heap;
    if (this.cap <= 0) return;
    if (h.length < this.cap) {
      h.push(this.fresh(delta, total, v));
      let i = h.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!worse(h[i], h[p])) break;
        [h[i], h[p]] = [h[p], h[i]];
        i = p;
      }
      return;
    }
    const min = h[0];
    if (!(min.delta < delta || (min.delta === delta && min.total < total))) return;
    min.delta = delta;
    min.total = total;
    v.copyInto(min.view);
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && worse(h[l], h[m])) m = l;
      if (r < h.length && worse(h[r], h[m])) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }
}
