// The exporter's landing page (`/`): the flows the diagnosis samples, each with its row of hops
// socket → TCP → qdisc/internal port → OVS → NIC → link → NIC → OVS → internal port → TCP → socket (the
// hops, statuses and top finding of GET /api/diagnosis), and the collectors' last status. Plain HTML with
// inline CSS; a few lines of inline JavaScript poll api/diagnosis and redraw the flows with the same
// function that drew them on the server (without JavaScript a meta refresh reloads the page).

import type { Express } from 'express';
import * as os from 'os';
import type { Exporter } from '../exporter';
import { telemetryPathFlag } from '../exporter';
import { samplerFromRegistry } from '../collectors/diagnosis';
import { diagnosisOverview } from '../diagnosis/api';
import { windowFlag } from '../diagnosis/flags';
import type { Sampler } from '../diagnosis/sampler';
import { VERSION } from '../version';

/** The subset of GET /api/diagnosis the page draws. */
export interface OverviewJson {
  node?: string;
  window_seconds?: number;
  error?: string;
  flows?: Array<{
    id: string;
    closed?: boolean;
    top?: { hop: string; limit?: string; rule: string; summary: string; next?: string } | null;
    hops: Array<{ hop: string; title: string; status: string; findings: string[]; note?: string }>;
    findings: Array<{ rule: string; hop: string; status: string; limit?: string; summary: string }>;
  }>;
}

/**
 * HTML of the flows section. Self-contained on purpose (no imports, no outer variables): the page ships
 * its source to the browser, which calls it on each api/diagnosis answer.
 */
export function renderFlows(d: OverviewJson): string {
  const esc = (s: unknown): string =>
    String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
  if (d.error) return `<p class="empty">${esc(d.error)}</p>`;
  const flows = d.flows ?? [];
  if (flows.length === 0) {
    return '<p class="empty">No flow is being sampled yet. The sampler picks the busiest flows (--diagnosis.top) and those matching --diagnosis.watch; a flow needs two samples before it has a verdict.</p>';
  }
  return flows
    .map((f) => {
      const byRule = new Map(f.findings.map((x) => [x.rule, x]));
      const cells = f.hops
        .map((h) => {
          const first = h.findings.length > 0 ? byRule.get(h.findings[0]) : undefined;
          const word = h.status === 'limiting' ? 'LIMITING' : h.status;
          const detail = first ? first.limit ?? first.rule : h.note ?? '';
          const tip = first ? first.summary : h.note ?? '';
          const cls = h.status.replace(/[^a-z]/g, '-');
          return (
            `<li class="hop ${cls}${h.hop === 'link' ? ' link' : ''}" data-hop="${esc(h.hop)}" data-status="${esc(h.status)}" title="${esc(tip)}">` +
            `<span class="t">${esc(h.title)}</span><span class="s">${esc(word)}</span><span class="d">${esc(detail)}</span></li>`
          );
        })
        .join('');
      const title = h3(f.id, f.closed === true);
      let verdict: string;
      if (f.top) {
        const at = f.hops.find((h) => h.hop === f.top?.hop)?.title ?? f.top.hop;
        verdict =
          `<p class="verdict limiting" data-top-hop="${esc(f.top.hop)}">Limited at <b>${esc(at)}</b> (${esc(f.top.limit ?? f.top.rule)}): ${esc(f.top.summary)}` +
          (f.top.next ? `<br><span class="next">Next: ${esc(f.top.next)}</span>` : '') +
          '</p>';
      } else {
        const s = f.findings.find((x) => x.status === 'suspect');
        verdict = `<p class="verdict ok">No hop limits this flow${s ? `; most suspect: ${esc(s.hop)}: ${esc(s.summary)}` : ''}.</p>`;
      }
      return `<section class="flow" data-flow="${esc(f.id)}">${title}<div class="sides"><span>sender</span><span>receiver</span></div><ol class="hops">${cells}</ol>${verdict}</section>`;
    })
    .join('\n');

  function h3(id: string, closed: boolean): string {
    const m = /^(\[[^\]]*\]:\d+|[^:\[]+:\d+)-(.+)$/.exec(id);
    const pretty = m ? `${m[1]} → ${m[2]}` : id;
    return `<h3>${esc(pretty)}${closed ? ' <small>(closed)</small>' : ''}</h3>`;
  }
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

const STYLE = `
body{font-family:system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:1.5em;color:#1d2330;max-width:1400px}
h1{margin:0 0 .2em}h2{margin-top:1.4em;border-bottom:1px solid #ccd;padding-bottom:.2em}
h3{margin:.2em 0;font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:1em}
.flow{border:1px solid #ccd;border-radius:6px;padding:.6em .8em;margin:.8em 0;background:#fafbfd}
.sides{display:flex;justify-content:space-between;font-size:.75em;color:#667;text-transform:uppercase;letter-spacing:.08em}
ol.hops{display:flex;gap:4px;list-style:none;padding:0;margin:.2em 0 .4em}
.hop{flex:1 1 0;min-width:0;border-radius:4px;padding:5px 6px;font-size:12px;display:flex;flex-direction:column;border:1px solid transparent}
.hop .t{font-weight:600}.hop .s{text-transform:uppercase;font-size:11px;letter-spacing:.04em}.hop .d{font-size:11px;color:#444;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.hop.ok{background:#d9f2df}.hop.suspect{background:#ffedb8}.hop.limiting{background:#f7c1c1;border-color:#b3261e}.hop.limiting .s{color:#b3261e;font-weight:700}
.hop.n-a,.hop.no-data{background:#eceef2;color:#556}.hop.link{border-left:3px double #556;border-right:3px double #556}
.verdict{margin:.2em 0}.verdict.limiting{color:#8c1d18}.verdict.ok{color:#1e6b34}.next{color:#1d2330}
.empty{color:#556}#status{color:#667;font-size:.85em}
table{border-collapse:collapse}td,th{border:1px solid #ccd;padding:3px 8px;text-align:left}
`;

export interface LandingOptions {
  /** Poll interval of the page's script (ms). */
  refreshMs?: number;
  node?: string;
  /** Where the sampled flows come from (default: the registry's diagnosis collector). */
  sampler?: () => Sampler | undefined;
}

export function mountLandingPage(app: Express, exporter: Exporter, opts: LandingOptions = {}): void {
  const telemetryPath = exporter.config.get(telemetryPathFlag);
  const node = opts.node ?? os.hostname();
  const refreshMs = opts.refreshMs ?? 2000;
  let windowSeconds = 10;
  try {
    windowSeconds = exporter.config.get(windowFlag);
  } catch {
    // the diagnosis flags are not registered: keep the default
  }

  app.get('/', (_req, res) => {
    const sampler = opts.sampler ? opts.sampler() : samplerFromRegistry(exporter.registry);
    let data: OverviewJson;
    try {
      data = sampler
        ? (JSON.parse(JSON.stringify(diagnosisOverview(sampler, windowSeconds, node))) as OverviewJson)
        : { error: 'The diagnosis collector is disabled (--no-collector.diagnosis): no flow is sampled.' };
    } catch (e) {
      data = { error: `diagnosis failed: ${(e as Error).message}` };
    }
    const rows = exporter.registry
      .statuses()
      .map((s) => {
        const state = !s.enabled ? 'disabled' : s.lastSuccess === undefined ? 'not scraped yet' : s.lastSuccess ? 'ok' : `failed: ${s.lastError ?? ''}`;
        const dur = s.lastDurationSeconds === undefined ? '' : `${(s.lastDurationSeconds * 1000).toFixed(1)} ms`;
        return `<tr><td>${escapeHtml(s.name)}</td><td>${escapeHtml(state)}</td><td>${dur}</td></tr>`;
      })
      .join('\n');
    res.set('Cache-Control', 'no-store');
    res.type('html').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flowpath exporter</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<noscript><meta http-equiv="refresh" content="10"></noscript>
<style>${STYLE}</style></head>
<body>
<h1>flowpath ${escapeHtml(VERSION)}</h1>
<p>Why can't this single TCP flow reach line rate? Node <b>${escapeHtml(node)}</b>.
<a href="${escapeHtml(telemetryPath.replace(/^\//, ''))}">Metrics</a> ·
<a href="healthz">Health</a> · <a href="readyz">Readiness</a> ·
<a href="api/flows">Flows (JSON)</a> · <a href="api/diagnosis">Diagnosis (JSON)</a></p>
<h2>Flows being sampled</h2>
<p id="status">Verdicts over the last ${windowSeconds} s; hover a hop for its finding.</p>
<div id="flows">${renderFlows(data)}</div>
<h2>Collectors</h2>
<table><tr><th>collector</th><th>last status</th><th>last duration</th></tr>
${rows}
</table>
<script>
(function () {
  var renderFlows = ${renderFlows.toString()};
  var box = document.getElementById('flows'), status = document.getElementById('status');
  function tick() {
    fetch('api/diagnosis', { cache: 'no-store' })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        box.innerHTML = renderFlows(d);
        status.textContent = 'Verdicts over the last ' + (d.window_seconds || ${windowSeconds}) + ' s; updated ' + new Date().toLocaleTimeString() + '; hover a hop for its finding.';
      })
      .catch(function (e) { status.textContent = 'refresh failed: ' + e; })
      .finally(function () { setTimeout(tick, ${refreshMs}); });
  }
  setTimeout(tick, ${refreshMs});
})();
</script>
</body></html>
`);
  });
}
