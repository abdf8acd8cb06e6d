// JSON API of the diagnosis: GET /api/flows and GET /api/diagnosis[?flow=...][&window=10s][&pin=SECONDS].
//
// /api/diagnosis?flow=ID is also what `flowpath diagnose --peer` calls on the other node (with the
// reversed 4-tuple): a flow that is not sampled yet is pinned (sampled for `pin` seconds, default 300),
// and the answer's `evidence` is this node's view of it (flow summary + node summary).
//
// Parameters are checked before anything changes: a malformed flow id, a window longer than the kept
// history (--diagnosis.history) or a pin that is not 0..MAX_PIN_SECONDS answers 400; more than
// maxPinnedFlows() pinned flows at once answers 429.

import type { Express, Request, Response } from 'express';
import { SelectorError, compileSelector } from '../sources/flowselect';
import { addrToSockid } from '../sources/netlink/sockdiag';
import { parseDuration } from '../core/flags';
import type { FlowKey, Verdict } from './types';
import { REASONS } from './types';
import { Sampler, flowId, parseFlowId } from './sampler';

export interface DiagnosisApiDeps {
  /** The running sampler (the diagnosis collector's), or undefined when it is disabled. */
  sampler: () => Sampler | undefined;
  /** Name of this node in the answers (default: the hostname). */
  node?: string;
  /** Window when ?window= is not given (seconds). */
  defaultWindowSeconds?: number;
}

/** inet_diag_msg-like facts for a FlowKey, so selectors can be evaluated on keys (state established). */
export function keyMatcher(selector: string): (k: FlowKey) => boolean {
  const c = compileSelector(selector);
  return (k) => {
    let src: ReturnType<typeof addrToSockid>;
    let dst: ReturnType<typeof addrToSockid>;
    try {
      src = addrToSockid(k.localIp);
      dst = addrToSockid(k.peerIp);
    } catch {
      return false;
    }
    const buf = Buffer.concat([src.bytes, dst.bytes]);
    return c.matches({ family: src.family, state: 1, sport: k.localPort, dport: k.peerPort, buf, srcOff: 0, dstOff: 16 });
  };
}

/** The parts of a verdict the API returns (the evidence is returned once, separately). */
export function verdictJson(v: Verdict): object {
  return { flow: v.flow ? flowId(v.flow) : null, top: v.top ?? null, hops: v.hops, findings: v.findings };
}

/** GET /api/diagnosis without ?flow: the verdict of every sampled flow with enough history (also the landing page's data). */
export function diagnosisOverview(s: Sampler, windowSeconds: number, node: string): { node: string; window_seconds: number; flows: object[] } {
  const flows = s
    .flows()
    .filter((f) => f.history.length >= 2)
    .map((f) => {
      const v = s.diagnose(f.key, windowSeconds, undefined, node);
      return { id: f.id, closed: f.goneAt !== undefined, ...verdictJson(v) };
    });
  return { node, window_seconds: windowSeconds, flows };
}

class BadRequest extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** The longest pin the API grants (the diagnose command pins its duration plus a minute). */
export const MAX_PIN_SECONDS = 3600;
/** Pinned flows at once: half of --diagnosis.max-flows, so that pins never crowd out watched and top flows. */
export const maxPinnedFlows = (s: Sampler) => Math.max(1, Math.floor(s.opts.maxFlows / 2));

const clip = (v: string) => (v.length > 64 ? v.slice(0, 64) + '…' : v);

function windowOf(req: Request, def: number, maxSeconds: number): number {
  const w = req.query.window;
  if (w === undefined) return Math.min(def, maxSeconds);
  if (typeof w !== 'string') throw new BadRequest('window must be a duration like 10s');
  let s: number;
  try {
    s = /^\d+(\.\d+)?$/.test(w) ? Number(w) : parseDuration(w);
  } catch (e) {
    throw new BadRequest(`bad window "${clip(w)}": ${(e as Error).message}`);
  }
  if (!(s > 0)) throw new BadRequest(`bad window "${clip(w)}": must be positive`);
  if (s > maxSeconds) throw new BadRequest(`bad window "${clip(w)}": longer than the kept history (--diagnosis.history=${maxSeconds}s)`);
  return s;
}

function pinOf(req: Request): number {
  const p = req.query.pin;
  if (p === undefined) return 300;
  if (typeof p !== 'string' || !/^\d{1,7}(\.\d+)?$/.test(p)) throw new BadRequest('pin must be a number of seconds');
  const s = Number(p);
  if (s > MAX_PIN_SECONDS) throw new BadRequest(`pin must be at most ${MAX_PIN_SECONDS} seconds`);
  return s;
}

export function mountDiagnosisApi(app: Express, deps: DiagnosisApiDeps): void {
  const node = deps.node ?? require('os').hostname();
  const defWindow = deps.defaultWindowSeconds ?? 10;
  const noSampler = (res: Response) =>
    res.status(503).json({ error: 'the diagnosis collector is disabled (--no-collector.diagnosis)' });

  app.get('/api/flows', (_req, res) => {
    const s = deps.sampler();
    if (!s) return void noSampler(res);
    const rows = new Map<string, Record<string, unknown>>();
    for (const d of s.lastDiscovered) {
      const id = flowId(d.key);
      rows.set(id, {
        id,
        local_ip: d.key.localIp,
        local_port: d.key.localPort,
        peer_ip: d.key.peerIp,
        peer_port: d.key.peerPort,
        cookie: d.key.cookie ?? null,
        watched: d.watched,
        bytes_acked: d.bytesAcked,
        bytes_received: d.bytesReceived,
        bytes_per_second: d.bytesPerSecond,
        sampled: false,
      });
    }
    for (const f of s.flows()) {
      const id = f.id;
      const row = rows.get(id) ?? { id, local_ip: f.key.localIp, local_port: f.key.localPort, peer_ip: f.key.peerIp, peer_port: f.key.peerPort, cookie: f.key.cookie ?? null };
      const total = REASONS.reduce((a, r) => a + f.classifier.total[r], 0);
      Object.assign(row, {
        sampled: f.goneAt === undefined,
        closed: f.goneAt !== undefined,
        sampled_because: [...f.reasons],
        limited_seconds: f.classifier.total,
        limited_share: Object.fromEntries(REASONS.map((r) => [r, total > 0 ? f.classifier.total[r] / total : 0])),
        path: f.path ?? null,
      });
      rows.set(id, row);
    }
    res.json({ node, sample_rate_hz: s.opts.rateHz, sampler: s.stats, flows: [...rows.values()] });
  });

  app.get('/api/diagnosis', (req, res) => {
    const s = deps.sampler();
    if (!s) return void noSampler(res);
    try {
      const win = windowOf(req, defWindow, s.opts.historySeconds);
      const flowQ = req.query.flow;
      if (flowQ !== undefined && typeof flowQ !== 'string') throw new BadRequest('flow must be a selector or a flow id');
      const pinSeconds = pinOf(req);
      const pin = (k: FlowKey): boolean => {
        if (pinSeconds === 0) return false;
        const already = s.find(k)?.reasons.has('pinned') ?? false;
        const pinned = s.flows().filter((f) => f.goneAt === undefined && f.reasons.has('pinned')).length;
        if (!already && pinned >= maxPinnedFlows(s)) throw new BadRequest(`${pinned} flows are pinned already (at most ${maxPinnedFlows(s)})`, 429);
        return s.pin(k, pinSeconds);
      };
      if (!flowQ) {
        res.json(diagnosisOverview(s, win, node));
        return;
      }
      const exact = parseFlowId(flowQ);
      let key: FlowKey | undefined;
      let pinned = false;
      if (exact) {
        const known = s.find(exact);
        key = known?.key ?? exact;
        if (!known || known.goneAt === undefined) pinned = pin(key);
      } else {
        let match: (k: FlowKey) => boolean;
        try {
          match = keyMatcher(flowQ);
        } catch (e) {
          if (e instanceof SelectorError) throw new BadRequest(e.message);
          throw e;
        }
        // The sampled flow with the most history that matches, else the busiest discovered one.
        const sampled = s.flows().filter((f) => match(f.key)).sort((a, b) => b.history.length - a.history.length);
        key = sampled[0]?.key;
        if (!key) {
          const d = s.lastDiscovered.filter((x) => match(x.key)).sort((a, b) => b.bytesPerSecond - a.bytesPerSecond)[0];
          if (d) {
            key = d.key;
            pinned = pin(key);
          }
        }
        if (!key) {
          res.status(404).json({ error: `no flow matches "${clip(flowQ)}"` });
          return;
        }
      }
      const evidence = s.evidence(key, win, node);
      const v = s.diagnose(key, win, undefined, node);
      res.json({ node, id: flowId(key), window_seconds: win, pinned, ...verdictJson(v), evidence });
    } catch (e) {
      if (e instanceof BadRequest) res.status(e.status).json({ error: e.message });
      else res.status(500).json({ error: (e as Error).message });
    }
  });
}
