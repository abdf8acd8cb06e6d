// HTTP content negotiation for /metrics: the exposition format from Accept, the content coding from
// Accept-Encoding, both honouring q-values (RFC 9110 §12.4.2: q=0 means "not acceptable").

import type { ExpositionFormat } from './core/metrics';

export interface QualityItem {
  /** Lower-cased value without parameters ("gzip", "text/plain"). */
  value: string;
  params: Record<string, string>;
  q: number;
}

/** "a;q=0.5, b;x=y" → items; a malformed q counts as 0, so a garbled entry never wins. */
export function parseQualityList(header: string | string[] | undefined): QualityItem[] {
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  const out: QualityItem[] = [];
  for (const part of text.split(',')) {
    const [head, ...rest] = part.split(';');
    const value = head.trim().toLowerCase();
    if (value === '') continue;
    const params: Record<string, string> = {};
    let q = 1;
    for (const p of rest) {
      const eq = p.indexOf('=');
      if (eq < 0) continue;
      const k = p.slice(0, eq).trim().toLowerCase();
      const v = p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
      if (k === 'q') q = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(v) ? Number(v) : 0;
      else params[k] = v;
    }
    out.push({ value, params, q });
  }
  return out;
}

/** The q a list gives `value`, through the first of `wildcards` when the value itself is not listed. */
function qualityOf(items: readonly QualityItem[], value: string, wildcards: readonly string[]): number | undefined {
  const exact = items.filter((i) => i.value === value);
  if (exact.length) return Math.max(...exact.map((i) => i.q));
  for (const w of wildcards) {
    const hit = items.filter((i) => i.value === w);
    if (hit.length) return Math.max(...hit.map((i) => i.q));
  }
  return undefined;
}

/** gzip when the client accepts it at least as much as the identity coding, else identity. */
export function chooseEncoding(acceptEncoding: string | string[] | undefined): 'gzip' | 'identity' {
  const items = parseQualityList(acceptEncoding);
  const gzip = qualityOf(items, 'gzip', ['*']) ?? 0;
  // identity not named (directly or by *) is acceptable, but preferred to nothing that is named
  const identity = qualityOf(items, 'identity', ['*']) ?? 0;
  return gzip > 0 && gzip >= identity ? 'gzip' : 'identity';
}

/** OpenMetrics when the client lists it with a q above 0 and at least that of the text format. */
export function chooseFormat(accept: string | string[] | undefined): ExpositionFormat {
  const items = parseQualityList(accept);
  const om = qualityOf(items, 'application/openmetrics-text', []) ?? 0;
  const text = qualityOf(items, 'text/plain', ['text/*', '*/*']) ?? 0;
  return om > 0 && om >= text ? 'openmetrics' : 'text';
}

export const CONTENT_TYPES: Record<ExpositionFormat, string> = {
  text: 'text/plain; version=0.0.4; charset=utf-8',
  openmetrics: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
};
