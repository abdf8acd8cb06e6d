// Parse an OpenMetrics exposition with the reference Python parser (Debian's python3-prometheus-client,
// installed by scripts/install-test-deps), which rejects anything the OpenMetrics 1.0 grammar does not
// allow (missing "# EOF", counter samples without _total, a UNIT that is not the name's suffix, ...).
import { spawnSync } from 'child_process';

export interface OmFamily {
  name: string;
  type: string;
  unit: string;
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>;
}

const SCRIPT = `
import sys, json, math
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "unit": f.unit,
                "samples": [{"name": s.name, "labels": s.labels, "value": (None if math.isnan(s.value) else s.value)} for s in f.samples]})
print(json.dumps(out))
`;

/** The families, or throws with the parser's message. */
export function parseOpenMetrics(text: string): OmFamily[] {
  // Debian's python3, not a python3 earlier in PATH (a pyenv one lacks the Debian package).
  const r = spawnSync('/usr/bin/python3', ['-c', SCRIPT], { input: text, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`OpenMetrics parser: ${(r.stderr ?? '').trim().split('\n').pop()}`);
  return JSON.parse(r.stdout) as OmFamily[];
}
