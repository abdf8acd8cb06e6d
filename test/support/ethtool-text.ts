// Parsers for the text of the ethtool CLI, used by the live cross-checks (test/live, test/lab). They read
// ethtool's own output so the collector can be compared with the reference tool on the same device.

/** `ethtool -k DEV`: kernel feature name → state. Legacy group labels are mapped to their single bit. */
export interface EthtoolKState {
  on: boolean;
  fixed: boolean;
  /** From "[requested on|off]" (printed when a changeable feature's wanted state differs). */
  requested?: boolean;
}
const LEGACY: Record<string, string> = {
  'rx-checksumming': 'rx-checksum',
  'generic-segmentation-offload': 'tx-generic-segmentation',
  'generic-receive-offload': 'rx-gro',
  'large-receive-offload': 'rx-lro',
  'ntuple-filters': 'rx-ntuple-filter',
  'receive-hashing': 'rx-hashing',
  'highdma': 'highdma',
};
export function parseEthtoolK(text: string): Map<string, EthtoolKState> {
  const out = new Map<string, EthtoolKState>();
  for (const line of text.split('\n')) {
    const m = /^\t?([a-z0-9_-]+): (on|off)( \[fixed\])?(?: \[requested (on|off)\])?\s*$/.exec(line);
    if (!m) continue;
    const name = LEGACY[m[1]] ?? m[1];
    out.set(name, { on: m[2] === 'on', fixed: m[3] !== undefined, requested: m[4] === undefined ? undefined : m[4] === 'on' });
  }
  return out;
}

/** `ethtool -g DEV` / `ethtool -l DEV`: section ("max" | "current") → field → number (n/a omitted). */
export function parseEthtoolSections(text: string): { max: Map<string, number>; current: Map<string, number> } {
  const max = new Map<string, number>();
  const current = new Map<string, number>();
  let sec: Map<string, number> | null = null;
  for (const line of text.split('\n')) {
    if (/^Pre-set maximums:/.test(line)) sec = max;
    else if (/^Current hardware settings:/.test(line)) sec = current;
    else if (sec) {
      const m = /^([A-Za-z ]+):\s+(\d+)\s*$/.exec(line);
      if (m) sec.set(m[1].trim(), Number(m[2]));
    }
  }
  return { max, current };
}

/** `ethtool -i DEV` → key → value. */
export function parseEthtoolI(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(': ');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 2).trim());
    else if (line.endsWith(':')) m.set(line.slice(0, -1), '');
  }
  return m;
}

/** Samples of an exposition: "name{labels}" → value. */
export function samples(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}
