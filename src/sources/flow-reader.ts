// The sock_diag reading of sampled flows (the diagnosis sampler's flow source; the flows collector dumps
// through the same SockDiag class and selector compiler): a filtered dump of the established TCP sockets
// that a "candidates" or a "watch" selector may match, and exact single-socket lookups of the flows being
// sampled, with their request bodies built once per flow and reused on every round.

import * as path from 'path';
import { CompiledSelector, compileSelector } from './flowselect';
import { parseNetstat } from './procfs/netstat';
import { readProcText } from './procfs/read';
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
  /** procfs mount (default /proc): /proc/net/snmp of this network namespace gives openedConnections(). */
  procfs?: string;
}

const bodyId = (k: FlowId) => `${k.localIp}|${k.localPort}|${k.peerIp}|${k.peerPort}|${k.cookie ?? ''}`;

export class FlowReader {
  private readonly sd: SockDiag;
  private readonly candidates: CompiledSelector;
  private readonly watch: CompiledSelector | null;
  private readonly bodies = new Map<string, Buffer>();

  private readonly snmpFile: string;

  /** Throws SelectorError on a selector that does not compile. */
  constructor(opts: FlowReaderOptions) {
    this.snmpFile = path.join(opts.procfs ?? '/proc', 'net', 'snmp');
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
   * TCP connections established so far in this network namespace (Tcp ActiveOpens + PassiveOpens of
   * /proc/net/snmp), or undefined when unreadable. While it does not change no new established socket
   * exists, so a dump that found no candidate would find none again.
   */
  openedConnections(): number | undefined {
    try {
      const tcp = parseNetstat(readProcText(this.snmpFile), this.snmpFile).get('Tcp');
      const a = tcp?.get('ActiveOpens');
      const p = tcp?.get('PassiveOpens');
      return a === undefined || p === undefined ? undefined : a + p;
    } catch {
      return undefined;
    }
  }

  /**
   * Exact lookups of these flows, in one batch; null where the socket is gone, and where no socket can
   * have the key (not an address, mixed families): such a key never fails the others' lookups. A closed
   * socket is gone even though the kernel still answers for it: its exact lookup finds the TIME-WAIT
   * socket (same 4-tuple and cookie, no tcp_info) until the TIME-WAIT timer ends, 60 s later; kept, it
   * would be sampled for that minute and its series kept that much longer than the documented grace period.
   */
  async lookup(keys: readonly FlowId[]): Promise<Array<SockView | null>> {
    const out = new Array<SockView | null>(keys.length).fill(null);
    await this.lookupEach(keys, (i, v) => {
      out[i] = v.copy();
    });
    return out;
  }

  /**
   * lookup() without copies: `onFound(i, view)` for each key whose socket is alive (the view is valid
   * only during the call); keys of gone sockets get no call. One datagram of prepared requests per call.
   */
  async lookupEach(keys: readonly FlowId[], onFound: (index: number, v: SockView) => void): Promise<void> {
    await this.lookupEachNow(keys, onFound);
  }

  /**
   * lookupEach(), finished within this call when it can be (SockDiag.lookupEachNow): undefined when every
   * answer was handled, else a promise of the rest.
   */
  lookupEachNow(keys: readonly FlowId[], onFound: (index: number, v: SockView) => void): Promise<void> | undefined {
    const at: number[] = [];
    const bodies: Buffer[] = [];
    for (let i = 0; i < keys.length; i++) {
      const b = this.body(keys[i]);
      if (b === null) continue;
      at.push(i);
      bodies.push(b);
    }
    if (this.bodies.size > 4 * keys.length + 64) {
      // Forget request bodies of flows no longer sampled.
      const keep = new Set(keys.map(bodyId));
      for (const k of [...this.bodies.keys()]) if (!keep.has(k)) this.bodies.delete(k);
    }
    if (bodies.length === 0) return undefined;
    return this.sd.lookupEachNow(bodies, (j, v) => {
      if (v.hasInfo) onFound(at[j], v);
    });
  }

  /** The prepared exact request of a key (built once); null when no socket can have the key. */
  private body(k: FlowId): Buffer | null {
    const id = bodyId(k);
    let b = this.bodies.get(id);
    if (b === undefined) {
      try {
        b = buildExactRequest(sockKeyOf(k), EXT_FLOWS);
      } catch {
        return null;
      }
      this.bodies.set(id, b);
    }
    return b;
  }

  close(): void {
    this.sd.close();
  }
}
