// The subset of Prometheus's alert templating the annotations use ({{ $labels.x }}, {{ $value }} with
// humanize / humanizePercentage), rendered the way Prometheus does (Go's %.4g). The unit tests under
// prometheus/tests/ state the annotations they expect; promtool checks them against the real renderer.

/** Go's fmt "%.4g". */
export function goG4(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  if (v === 0) return '0';
  const [mant, expStr] = v.toExponential(3).split('e');
  const exp = Number(expStr);
  const trim = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (exp < -4 || exp >= 4) {
    const e = Math.abs(exp);
    return `${trim(mant)}e${exp < 0 ? '-' : '+'}${e < 10 ? '0' : ''}${e}`;
  }
  return trim(v.toFixed(3 - exp));
}

export function humanize(v: number): string {
  if (v === 0 || !Number.isFinite(v)) return goG4(v);
  let prefix = '';
  if (Math.abs(v) >= 1) {
    for (const p of ['k', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y']) {
      if (Math.abs(v) < 1000) break;
      prefix = p;
      v /= 1000;
    }
    return goG4(v) + prefix;
  }
  for (const p of ['m', 'u', 'n', 'p', 'f', 'a', 'z', 'y']) {
    if (Math.abs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return goG4(v) + prefix;
}

export function humanizePercentage(v: number): string {
  return `${goG4(v * 100)}%`;
}

/** Render a template of the supported subset; anything else is an error (keeps the tests honest). */
export function renderTemplate(tpl: string, labels: Record<string, string>, value: number): string {
  return tpl.replace(/\{\{\s*([^}]*?)\s*\}\}/g, (_, expr: string) => {
    const lm = /^\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)$/.exec(expr);
    if (lm) return labels[lm[1]] ?? '';
    if (expr === '$value') return String(value);
    if (expr === '$value | humanize') return humanize(value);
    if (expr === '$value | humanizePercentage') return humanizePercentage(value);
    throw new Error(`template construct not supported by the test renderer: {{ ${expr} }}`);
  });
}
