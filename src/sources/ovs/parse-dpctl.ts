// Parser for `dpctl/show [-s]` (show_dpif() in lib/dpctl.c). docs/kernel-sources.md §7.3. Pure.
//
//   <type>@<name>:
//     lookups: hit:<u64> missed:<u64> lost:<u64>
//     flows: <u64>
//     masks: hit:<u64> total:<u32> hit/pkt:<%.2f>      kernel datapath only
//     cache: hit:<u64> hit-rate:<%.2f>%                 kernel datapath, Linux >= 5.9
//     caches:                                           kernel datapath
//       masks-cache: size:<u32>
//     port <n>: <name>[ (<type>[: k=v, ...])]          type omitted for "system" ports
//       RX packets:N errors:N dropped:N overruns:N frame:N   (-s; "?" = the netdev does not count it)
//       TX packets:N errors:N dropped:N aborted:N carrier:N
//       collisions:N
//       RX bytes:N (x.y MiB)  TX bytes:N (x.y GiB)
//       UPCALL packets:N errors:N                       (newer OVS, kernel upcall stats)
//
// Trap: when a port's stats cannot be read OVS prints ", could not retrieve stats (<strerror>)" (or
// ", open failed (<strerror>)") WITHOUT a newline, so the next "  port N:" is glued to that line. The
// text is therefore split on the "port N:" token, not on lines.

export interface OvsPortStats {
  rxPackets?: number;
  rxErrors?: number;
  rxDropped?: number;
  rxOverruns?: number;
  rxFrame?: number;
  txPackets?: number;
  txErrors?: number;
  txDropped?: number;
  txAborted?: number;
  txCarrier?: number;
  collisions?: number;
  rxBytes?: number;
  txBytes?: number;
  upcallPackets?: number;
  upcallErrors?: number;
}

export interface OvsDpPort {
  portNo: number;
  name: string;
  /** OVS port type as printed; "system" when dpctl printed none (show_dpif() omits it for system ports). */
  type: string;
  /** "k=v" options printed after the type (tunnel config, queues, ...). */
  options: Record<string, string>;
  /** Per-port counters (dpctl/show -s only). Undefined values were printed as "?" (not counted). */
  stats?: OvsPortStats;
  /** Why stats were not printed ("could not retrieve stats (No such device)"), with -s. */
  statsError?: string;
  /** "could not retrieve configuration (...)" / "open failed (...)" inside the type parentheses. */
  configError?: string;
}

/**
 * The datapath counters both sources report: dpctl/show's "lookups/flows/masks/cache" lines and the
 * kernel's struct ovs_dp_stats / ovs_dp_megaflow_stats over genetlink. Absent = not reported.
 */
export interface DatapathCounters {
  hit?: number;
  missed?: number;
  lost?: number;
  flows?: number;
  /** Kernel datapath megaflow stats (absent for the userspace datapath). */
  maskHit?: number;
  masks?: number;
  /** Per-CPU masks cache hits (kernel 5.9+). */
  cacheHit?: number;
}

export interface OvsDatapathStats extends DatapathCounters {
  /** Full dpif name as OVS prints it, e.g. "netdev@ovs-netdev" or "system@ovs-system". */
  name: string;
  /** Datapath type: "netdev" (userspace) or "system" (kernel). */
  type: string;
  /** As printed (2 decimals). */
  maskHitPerPacket?: number;
  /** Percent as printed (2 decimals). */
  cacheHitRatePercent?: number;
  /** "caches:" section: cache name -> size. */
  caches: Record<string, number>;
  ports: OvsDpPort[];
  /** Lines this parser does not know (a newer OVS); reported, never guessed at. */
  unparsed: string[];
}

export class OvsParseError extends Error {
  override readonly name = 'OvsParseError';
  constructor(what: string, line: number, detail: string, text?: string) {
    super(`${what} line ${line}: ${detail}${text === undefined ? '' : `: ${JSON.stringify(text.slice(0, 120))}`}`);
  }
}

const DP_HEADER_RE = /^([A-Za-z0-9_-]+)@(\S+):$/;
// "port N: " at the start of a line (after indentation) or right after a glued error text.
const PORT_TOKEN_RE = /(^|\n|\)) *port (\d+): /g;

/** Parse an unsigned decimal that may exceed 2^53 (exact below that); "?" -> undefined. */
export function parseCount(s: string, what: string, line: number): number | undefined {
  if (s === '?') return undefined;
  if (!/^\d+$/.test(s)) throw new OvsParseError(what, line, `not a counter value "${s}"`);
  return Number(s);
}

/**
 * Parse the whole reply. Lines it does not know are kept in `unparsed` (numbers are only taken from lines
 * matched exactly); text that breaks the structure (no datapath header, a port line without a name) throws.
 */
export function parseDpctlShow(text: string): OvsDatapathStats[] {
  const out: OvsDatapathStats[] = [];
  // Split into datapath sections at lines "<type>@<name>:" (not indented).
  const lines = text.split('\n');
  let section: { dp: OvsDatapathStats; body: string[]; firstLine: number } | null = null;
  const flush = () => {
    if (section) parseSection(section.dp, section.body.join('\n'), section.firstLine);
  };
  lines.forEach((raw, idx) => {
    if (raw === '') return;
    const m = DP_HEADER_RE.exec(raw);
    if (m) {
      flush();
      const dp: OvsDatapathStats = { name: `${m[1]}@${m[2]}`, type: m[1], caches: {}, ports: [], unparsed: [] };
      out.push(dp);
      section = { dp, body: [], firstLine: idx + 2 };
      return;
    }
    if (!section) throw new OvsParseError('dpctl/show', idx + 1, 'text before the first datapath header', raw);
    (section as { body: string[] }).body.push(raw);
  });
  flush();
  return out;
}

function parseSection(dp: OvsDatapathStats, body: string, firstLine: number): void {
  // Datapath-level lines come before the first "port N:".
  PORT_TOKEN_RE.lastIndex = 0;
  const starts: Array<{ at: number; bodyAt: number; portNo: number }> = [];
  for (let m = PORT_TOKEN_RE.exec(body); m; m = PORT_TOKEN_RE.exec(body)) {
    // m[1] is the character before "port" (newline or ")" of a glued error); the port text starts after it.
    starts.push({ at: m.index + m[1].length, bodyAt: m.index + m[0].length, portNo: Number(m[2]) });
  }
  const head = starts.length ? body.slice(0, starts[0].at) : body;
  const lineOf = (offset: number) => firstLine + countNewlines(body, offset);
  parseDpHead(dp, head, firstLine);
  for (let i = 0; i < starts.length; i++) {
    const s = starts[i];
    const end = i + 1 < starts.length ? starts[i + 1].at : body.length;
    dp.ports.push(parsePort(s.portNo, body.slice(s.bodyAt, end), lineOf(s.at), dp.unparsed));
  }
}

function countNewlines(s: string, end: number): number {
  let n = 0;
  for (let i = 0; i < end; i++) if (s.charCodeAt(i) === 10) n++;
  return n;
}

function parseDpHead(dp: OvsDatapathStats, head: string, firstLine: number): void {
  let inCaches = false;
  head.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    const ln = firstLine + i;
    if (line === '') return;
    let m: RegExpExecArray | null;
    if ((m = /^lookups: hit:(\S+) missed:(\S+) lost:(\S+)$/.exec(line))) {
      dp.hit = parseCount(m[1], 'dpctl/show', ln);
      dp.missed = parseCount(m[2], 'dpctl/show', ln);
      dp.lost = parseCount(m[3], 'dpctl/show', ln);
    } else if ((m = /^flows: (\S+)$/.exec(line))) {
      dp.flows = parseCount(m[1], 'dpctl/show', ln);
    } else if ((m = /^masks: hit:(\S+) total:(\S+) hit\/pkt:(\d+(?:\.\d+)?)$/.exec(line))) {
      dp.maskHit = parseCount(m[1], 'dpctl/show', ln);
      dp.masks = parseCount(m[2], 'dpctl/show', ln);
      dp.maskHitPerPacket = Number(m[3]);
    } else if ((m = /^cache: hit:(\S+) hit-rate:(\d+(?:\.\d+)?)%$/.exec(line))) {
      dp.cacheHit = parseCount(m[1], 'dpctl/show', ln);
      dp.cacheHitRatePercent = Number(m[2]);
    } else if (line === 'caches:') {
      inCaches = true;
    } else if (inCaches && (m = /^([\w-]+): size:(\d+)$/.exec(line))) {
      dp.caches[m[1]] = Number(m[2]);
    } else {
      dp.unparsed.push(`line ${ln}: ${raw}`);
    }
  });
}

/** `text` starts right after "port N: " and runs to the next port token. */
function parsePort(portNo: number, text: string, ln: number, unparsed: string[]): OvsDpPort {
  const nl = text.indexOf('\n');
  const first = nl < 0 ? text : text.slice(0, nl);
  const rest = nl < 0 ? '' : text.slice(nl + 1);
  const port: OvsDpPort = { portNo, name: '', type: 'system', options: {} };
  // The stats error (printed after the port line's newline) is on the next line; see the trap above.
  const head = /^(\S+)(?: \((.*)\))?$/.exec(first);
  if (!head) throw new OvsParseError('dpctl/show', ln, `cannot parse port ${portNo}`, first);
  port.name = head[1];
  if (head[2] !== undefined) parseTypeAndOptions(port, head[2]);
  const stats: OvsPortStats = {};
  let sawStats = false;
  rest.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    const lno = ln + 1 + i;
    if (line === '') return;
    let mm: RegExpExecArray | null;
    if ((mm = /^, (could not retrieve stats|open failed) \(([^)]*)\)$/.exec(line))) {
      port.statsError = `${mm[1]} (${mm[2]})`;
      return;
    }
    if ((mm = /^RX packets:(\S+) errors:(\S+) dropped:(\S+) overruns:(\S+) frame:(\S+)$/.exec(line))) {
      stats.rxPackets = parseCount(mm[1], 'dpctl/show', lno);
      stats.rxErrors = parseCount(mm[2], 'dpctl/show', lno);
      stats.rxDropped = parseCount(mm[3], 'dpctl/show', lno);
      stats.rxOverruns = parseCount(mm[4], 'dpctl/show', lno);
      stats.rxFrame = parseCount(mm[5], 'dpctl/show', lno);
    } else if ((mm = /^TX packets:(\S+) errors:(\S+) dropped:(\S+) aborted:(\S+) carrier:(\S+)$/.exec(line))) {
      stats.txPackets = parseCount(mm[1], 'dpctl/show', lno);
      stats.txErrors = parseCount(mm[2], 'dpctl/show', lno);
      stats.txDropped = parseCount(mm[3], 'dpctl/show', lno);
      stats.txAborted = parseCount(mm[4], 'dpctl/show', lno);
      stats.txCarrier = parseCount(mm[5], 'dpctl/show', lno);
    } else if ((mm = /^collisions:(\S+)$/.exec(line))) {
      stats.collisions = parseCount(mm[1], 'dpctl/show', lno);
    } else if ((mm = /^RX bytes:(\S+)(?: \([\d.]+ [KMGT]iB\))?  TX bytes:(\S+)(?: \([\d.]+ [KMGT]iB\))?$/.exec(line))) {
      stats.rxBytes = parseCount(mm[1], 'dpctl/show', lno);
      stats.txBytes = parseCount(mm[2], 'dpctl/show', lno);
    } else if ((mm = /^UPCALL packets:(\S+) errors:(\S+)$/.exec(line))) {
      stats.upcallPackets = parseCount(mm[1], 'dpctl/show', lno);
      stats.upcallErrors = parseCount(mm[2], 'dpctl/show', lno);
    } else {
      unparsed.push(`line ${lno}: ${raw}`);
      return;
    }
    sawStats = true;
  });
  if (sawStats) port.stats = stats;
  return port;
}

/** "tap", "vxlan: key=5, remote_ip=10.9.9.9", "internal: open failed (No such device)", ... */
function parseTypeAndOptions(port: OvsDpPort, s: string): void {
  const colon = s.indexOf(':');
  const comma = s.indexOf(',');
  if (colon < 0 && comma < 0) {
    port.type = s;
    return;
  }
  if (comma >= 0 && (colon < 0 || comma < colon)) {
    // "<type>, could not retrieve configuration (<err>)"
    port.type = s.slice(0, comma);
    port.configError = s.slice(comma + 2);
    return;
  }
  port.type = s.slice(0, colon);
  const rest = s.slice(colon + 2);
  const of = /^open failed \((.*)\)$/.exec(rest);
  if (of) {
    port.configError = `open failed (${of[1]})`;
    return;
  }
  for (const kv of rest.split(', ')) {
    const eq = kv.indexOf('=');
    if (eq > 0) port.options[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
}
