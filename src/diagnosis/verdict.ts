// Assemble the path verdict: run the rules, rank the findings, give every hop a status.

import { RULES, Rule, rankFindings, runRules } from './rules';
import type { DiagnosisInput, FlowKey, Hop, HopStatus, PathDevices, Status, Verdict } from './types';
import { HOPS, HOP_TITLES } from './types';

const WORST: Status[] = ['limiting', 'suspect', 'ok'];

const OVS_HOPS: Partial<Record<Hop, 'sender' | 'receiver'>> = { 'ovs-tx': 'sender', 'ovs-rx': 'receiver', 'internal-rx': 'receiver' };
const RX_HOPS = new Set<Hop>(['nic-rx', 'ovs-rx', 'internal-rx', 'tcp-rx', 'socket-rx']);

export function reverseKey(k: FlowKey): FlowKey {
  return { localIp: k.peerIp, localPort: k.peerPort, peerIp: k.localIp, peerPort: k.localPort };
}

const internalPort = (p: PathDevices | undefined) => (p?.ipDevice && p.viaOvs ? `${p.ipDevice} (OVS internal port)` : undefined);

/** The device or datapath a hop stands for on this flow's path (undefined when the evidence has none). */
export function hopWhere(hop: Hop, input: DiagnosisInput): string | undefined {
  const tx = input.sender?.nodeSummary?.path;
  const rx = input.receiver?.nodeSummary?.path;
  switch (hop) {
    case 'qdisc-tx':
      return internalPort(tx) ?? tx?.ipDevice;
    case 'ovs-tx':
      return tx?.viaOvs ? tx.datapath : undefined;
    case 'nic-tx':
      return tx?.nicDevice;
    case 'nic-rx':
      return rx?.nicDevice;
    case 'ovs-rx':
      return rx?.viaOvs ? rx.datapath : undefined;
    case 'internal-rx':
      return internalPort(rx);
    default:
      return undefined;
  }
}

export function diagnose(input: DiagnosisInput, rules: readonly Rule[] = RULES): Verdict {
  const findings = rankFindings(runRules(input, rules));
  const top = findings.find((f) => f.status === 'limiting');
  const hops: HopStatus[] = HOPS.map((hop) => {
    const h = hopStatus(hop, findings, input);
    const where = hopWhere(hop, input);
    return where && h.status !== 'n/a' ? { ...h, where } : h;
  });
  const flow = input.sender?.flow?.key ?? (input.receiver?.flow ? reverseKey(input.receiver.flow.key) : undefined);
  return { flow, top, findings, hops, sender: input.sender, receiver: input.receiver };
}

function hopStatus(hop: Hop, findings: Verdict['findings'], input: DiagnosisInput): HopStatus {
  const at = findings.filter((f) => f.hop === hop);
  const title = HOP_TITLES[hop];
  if (at.length > 0) {
    const status = WORST.find((s) => at.some((f) => f.status === s)) as Status;
    return { hop, title, status, findings: at.filter((f) => f.status === status).map((f) => f.rule) };
  }
  const side = OVS_HOPS[hop];
  if (side) {
    const n = side === 'sender' ? input.sender?.nodeSummary : input.receiver?.nodeSummary;
    if (n && !n.path.viaOvs && !n.ovs) return { hop, title, status: 'n/a', findings: [], note: 'no OVS on this path' };
  }
  if (RX_HOPS.has(hop) && !input.receiver?.nodeSummary) {
    return { hop, title, status: 'no data', findings: [], note: 'receiver not observed (use --peer)' };
  }
  return { hop, title, status: 'no data', findings: [] };
}
