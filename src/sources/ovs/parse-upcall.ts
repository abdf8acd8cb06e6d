// Parser for `upcall/show` (upcall_unixctl_show() in ofproto/ofproto-dpif-upcall.c). Pure.
//
//   netdev@ovs-netdev:
//     flows         : (current 4) (avg 7) (max 28) (limit 28000)
//     offloaded flows : 0                 (only with hardware offload enabled)
//     dump duration : 1ms
//     ufid enabled : true
//
//     5: (keys 4)                         (one line per revalidator thread)
//
// `current` close to `limit` means flow-limit evictions and more upcalls; a long dump duration makes OVS
// shrink the limit.

export interface UpcallDatapath {
  datapath: string;
  flowsCurrent?: number;
  flowsAverage?: number;
  flowsMax?: number;
  flowLimit?: number;
  offloadedFlows?: number;
  dumpDurationMs?: number;
  ufidEnabled?: boolean;
  /** Revalidator id -> ukeys held. */
  revalidatorKeys: Record<string, number>;
  unparsed: string[];
}

export function parseUpcallShow(text: string): UpcallDatapath[] {
  const out: UpcallDatapath[] = [];
  let dp: UpcallDatapath | null = null;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    let m: RegExpExecArray | null;
    if ((m = /^(\S+@\S+):$/.exec(raw))) {
      dp = { datapath: m[1], revalidatorKeys: {}, unparsed: [] };
      out.push(dp);
      return;
    }
    if (!dp) return; // nothing before the first datapath carries data
    const d: UpcallDatapath = dp;
    if ((m = /^flows\s*: \(current (\d+)\) \(avg (\d+)\) \(max (\d+)\) \(limit (\d+)\)$/.exec(line))) {
      d.flowsCurrent = Number(m[1]);
      d.flowsAverage = Number(m[2]);
      d.flowsMax = Number(m[3]);
      d.flowLimit = Number(m[4]);
    } else if ((m = /^offloaded flows\s*: (\d+)$/.exec(line))) {
      d.offloadedFlows = Number(m[1]);
    } else if ((m = /^dump duration\s*: (\d+)ms$/.exec(line))) {
      d.dumpDurationMs = Number(m[1]);
    } else if ((m = /^ufid enabled\s*: (true|false)$/.exec(line))) {
      d.ufidEnabled = m[1] === 'true';
    } else if ((m = /^(\d+): \(keys (\d+)\)$/.exec(line))) {
      d.revalidatorKeys[m[1]] = Number(m[2]);
    } else {
      d.unparsed.push(`line ${i + 1}: ${raw}`);
    }
  });
  return out;
}
