// The sock_diag reading of sampled flows (the diagnosis sampler's flow source; the flows collector dumps
// through the same SockDiag class and selector compiler): a filtered dump of the established TCP sockets
// that a "candidates" or a "watch" selector may match, and exact single-socket lookups of the flows being
// sampled, with their request bodies built once per flow and reused on every round.

import { CompiledSelector, compileSelector } from './flowselect';
import { EXT_FLOWS, EXT_INFO, SockDiag, SockView, buildExactRequest, sockKeyOf } from './netlink/sockdiag';

const TCP_ESTABLISHED = 1;

/** A flow's 4-tuple and, optionally, its socket cookie (decimal), which pins a lookup to one socket. */
export interface FlowId {
  localIp: string;
  localPort: number;
  peerIp: string;
  peerPort: number;
  cookie?: string;
}

export interface FlowReaderOptions {
  /** Flows always of interest (flow selector source); "" = none, only the candidates. */
  watch: string;
  /** Selector of the candidate flows (default: established TCP). */
  candidates?: string;
  kernelRelease?: string;
}

export class FlowReader {
  private readonly sd: SockDiag;
  private readonly candidates: CompiledSelector;
  private readonly watch: CompiledSelector | null;
  private readonly bodies = new Map<string, Buffer>();

  /** Throws SelectorError on a selector that does not compile. */
  constructor(opts: FlowReaderOptions) {
    this.sd = new SockDiag({ kernelRelease: opts.kernelRelease });
    const cand = opts.candidates ?? 'state established';
    this.watch = opts.watch.trim() === '' ? null : compileSelector(opts.watch);
    // Dump what either selector may match; the JS predicates decide exactly.
    this.candidates = compileSelector(this.watch ? `(${cand}) or (${opts.watch})` : cand);
  }

  /**
   * One dump: calls `onFlow` for every established socket either selector matches, with whether the
   * watch selector matches it. The view is only valid during the call.
   */
  async discover(onFlow: (v: SockView, watched: boolean) => void): Promise<void> {
    await this.sd.dump(this.candidates.plans, EXT_INFO, (v) => {
      if (!this.candidates.exact && !this.candidates.matches(v)) return;
      if (v.state !== TCP_ESTABLISHED) return; // only established flows carry data worth sampling
      onFlow(v, this.watch !== null && this.watch.matches(v));
    });
  }

  /**
   * Exact lookups of these flows, in one batch; null where the socket is gone, and where no socket can
   * have the key (not an address, mixed families): such a key never fails the others' lookups. A closed
   * socket is gone even though the kernel still answers for it: its exact lookup finds the TIME-WAIT
   * socket (same 4-tuple and cookie, no tcp_info) until the TIME-WAIT timer ends, 60 s later; kept, it
   * would be sampled for that minute and its series kept that much longer than the documented grace period.
   */
  async lookup(keys: readonly FlowId[]): Promise<Array<SockView | null>> {
    const id = (k: FlowId) => `${k.localIp}|${k.localPort}|${k.peerIp}|${k.peerPort}|${k.cookie ?? ''}`;
    const built = keys.map((k) => {
      let b = this.bodies.get(id(k));
      if (!b) {
        try {
          b = buildExactRequest(sockKeyOf(k), EXT_FLOWS);
        } catch {
          return null;
        }
        this.bodies.set(id(k), b);
      }
      return b;
    });
    if (this.bodies.size > 4 * keys.length + 64) {
      // Forget request bodies of flows no longer sampled.
      const keep = new Set(keys.map(id));
      for (const k of [...this.bodies.keys()]) if (!keep.has(k)) this.bodies.delete(k);
    }
    const bodies = built.filter((b): b is Buffer => b !== null);
    const views = bodies.length ? await this.sd.lookupPrepared(bodies) : [];
    let i = 0;
    return built.map((b) => {
      const v = b === null ? null : views[i++];
      return v !== null && v.hasInfo ? v : null;
    });
  }

  close(): void {
    this.sd.close();
  }
}
