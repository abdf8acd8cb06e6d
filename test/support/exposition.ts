// The Prometheus text exposition read back into series, for tests that count and compare what a scrape
// exported. `key` is the series' identity (name and labels as written), the rest its parsed parts.

export interface Series {
  key: string;
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseExposition(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ key: line.slice(0, line.lastIndexOf(' ')), name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}
