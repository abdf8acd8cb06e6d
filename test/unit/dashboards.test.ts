// grafana/dashboards/*.json must be what src/dashboards generates (`npm run dashboards`), valid for the
// SDK's dashboard and panel types, and every query must parse and name only catalogue metrics (with
// labels they have) or recording rules defined under prometheus/.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DASHBOARDS, renderDashboard } from '../../src/dashboards';
import { ALERT_PREFIX, PROVISIONED_DS_UID, UID } from '../../src/dashboards/common';
import { DEFAULT_CONFIG } from '../../src/mixin/config';
import { recordNames, recordingGroups } from '../../src/mixin/rules';
import {
  DashQuery, Json, catalogue, checkQuery, committedDashboards, panelsOf, queriesOf, recomputedRules, recordsUsed, rulesDefined,
  simpleRateRules, substitute, typeCheckDashboards, VARS,
} from '../support/dashboards';

const RULES = recordNames(DEFAULT_CONFIG);
const committed = committedDashboards();
const known = catalogue();
const rules = rulesDefined();
const allQueries: DashQuery[] = committed.flatMap((d) => queriesOf(d.file, d.json));

describe('Grafana dashboards', () => {
  it('grafana/dashboards/*.json is current (run `npm run dashboards` after changing src/dashboards)', () => {
    const onDisk = fs.readdirSync(path.join(__dirname, '../../grafana/dashboards')).filter((f) => f.endsWith('.json')).sort();
    expect(onDisk).toEqual(DASHBOARDS.map((d) => d.file).sort());
    for (const d of DASHBOARDS) {
      const file = committed.find((c) => c.file === d.file);
      expect(file?.text).toBe(renderDashboard(d.build(DEFAULT_CONFIG)));
    }
  });

  it('the JSON type-checks against the SDK dashboard and panel types', () => {
    expect(typeCheckDashboards(committed.map((c) => ({ name: c.file, json: c.json })))).toEqual([]);
  }, 60000);

  it('the type check rejects a wrong enum value, an unknown property and a wrong field type', () => {
    const d = JSON.parse(committed[0].text);
    const p = panelsOf(d).find((x: Json) => x.type === 'timeseries');
    p.options.legend.displayMode = 'sideways';
    p.fieldConfig.defaults.custom.lineWidht = 1;
    d.graphTooltip = 'shared';
    p.targets[0].format = 'csv';
    const problems = typeCheckDashboards([{ name: 'broken', json: d }]);
    expect(problems.join('\n')).toMatch(/sideways/);
    expect(problems.join('\n')).toMatch(/lineWidht/);
    expect(problems.join('\n')).toMatch(/graphTooltip|"shared"/);
    expect(problems.join('\n')).toMatch(/target A: .*"csv"|format/);
  }, 60000);

  it('every query parses and names only catalogue metrics (with their labels) or recording rules', () => {
    expect(allQueries.length).toBeGreaterThan(60);
    const problems = allQueries.flatMap((q) => checkQuery(substitute(q.expr, VARS), known, rules.records).map((p) => `${q.dashboard} ${q.where}: ${p}`));
    expect(problems).toEqual([]);
  });

  it('the query check catches a syntax error, an unknown metric and a label the metric does not have', () => {
    expect(checkQuery('sum(rate(flowpath_nic_rx_bytes_total[5m])', known, new Set()).join()).toMatch(/syntax error/);
    expect(checkQuery('flowpath_no_such_metric', known, new Set()).join()).toMatch(/unknown metric flowpath_no_such_metric/);
    expect(checkQuery('flowpath_nic_rx_bytes_total{cpu="0"}', known, new Set()).join()).toMatch(/has no label "cpu"/);
    expect(checkQuery('instance:flowpath_x:rate5m{a="b"}', known, new Set(['instance:flowpath_x:rate5m']))).toEqual([]);
    expect(checkQuery('instance:flowpath_x:rate1m', known, new Set(['instance:flowpath_x:rate5m'])).join()).toMatch(/unknown metric instance:flowpath_x:rate1m/);
  });

  it('panels read the recording rules of prometheus/ (named from src/mixin) instead of recomputing them', () => {
    const used = new Set(allQueries.flatMap((q) => recordsUsed(q.expr)));
    // Every rule a panel reads is one the mixin defines and prometheus/ holds (the check above fails
    // on any other name); and the panels do read them: one per quantity they show that a rule records.
    const named = new Set<string>(Object.values(RULES));
    expect([...used].filter((r) => !named.has(r) || !rules.records.has(r))).toEqual([]);
    expect([...used].sort()).toEqual([
      RULES.bucketAcked, RULES.bucketRetransmits, RULES.bucketRwndShare, RULES.bucketSndbufShare, RULES.cpuSoftirqShare,
      RULES.cpuSoftnetDrops, RULES.cpuTimeSqueeze, RULES.datapathHits, RULES.datapathLost, RULES.datapathMasksPerPacket,
      RULES.datapathMisses, RULES.deviceRxDropped, RULES.deviceRxErrors, RULES.deviceRxOverflow, RULES.deviceTxDropped,
      RULES.deviceTxErrors, RULES.flowAcked, RULES.flowLinkSpeed, RULES.identityAcked, RULES.identityLimitedShare,
      RULES.identityPacingShare, RULES.identityRetransmits, RULES.nodeLimitedShare,
    ].sort());
    // No query aggregates a rate that a rule already records at a level it could use.
    const simple = simpleRateRules(recordingGroups(DEFAULT_CONFIG).flatMap((g) => g.rules), DEFAULT_CONFIG.selector, DEFAULT_CONFIG.rateWindow, DEFAULT_CONFIG.groupLabels);
    expect(simple.length).toBeGreaterThan(10);
    const recomputed = allQueries.flatMap((q) => recomputedRules(substitute(q.expr, VARS), simple).map((r) => `${q.dashboard} ${q.where}: ${r}`));
    expect(recomputed).toEqual([]);
  });

  it('the recomputation check recognises a raw rate a rule records, and leaves finer or filtered ones alone', () => {
    const simple = simpleRateRules(recordingGroups(DEFAULT_CONFIG).flatMap((g) => g.rules), DEFAULT_CONFIG.selector, DEFAULT_CONFIG.rateWindow, DEFAULT_CONFIG.groupLabels);
    expect(recomputedRules('sum by (cpu) (rate(flowpath_softnet_dropped_packets_total{instance="x"}[1m]))', simple).join()).toContain(RULES.cpuSoftnetDrops);
    expect(recomputedRules('sum(rate(flowpath_flow_retransmitted_packets_total{peer_ip="a", role="client"}[1m]))', simple).join()).toContain(RULES.identityRetransmits);
    expect(recomputedRules('sum by (datapath) (rate(flowpath_ovs_datapath_lookups_lost_total[1m]))', simple).join()).toContain(RULES.datapathLost);
    // per TX queue is finer than the per-device rule; local_port is not kept by the identity rule
    expect(recomputedRules('sum by (device, queue) (rate(flowpath_nic_queue_tx_stop_total{instance="x"}[1m]))', simple)).toEqual([]);
    expect(recomputedRules('sum(rate(flowpath_flow_retransmitted_packets_total{local_port="1"}[1m]))', simple)).toEqual([]);
  });

  it('every query is valid for Prometheus itself (promtool check rules, variables substituted)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowpath-dash-'));
    try {
      const rulesYaml = ['groups:', '  - name: dashboards', '    rules:'];
      allQueries.forEach((q, i) => rulesYaml.push(`      - record: dashboard_query_${i}`, `        expr: ${JSON.stringify(substitute(q.expr, VARS))}`));
      const file = path.join(dir, 'rules.yml');
      fs.writeFileSync(file, rulesYaml.join('\n') + '\n');
      const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      if (r.error) throw new Error(`promtool not runnable (${r.error.message}); run scripts/install-test-deps`);
      expect(`${r.stdout}${r.stderr}`).toContain(`SUCCESS: ${allQueries.length} rules found`);
      expect(r.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every panel has a description, a unit and the datasource variable; every dashboard has the links, the variable and the alert annotation', () => {
    for (const { file, json } of committed) {
      const vars = (json.templating.list as Json[]).map((v) => v.name);
      expect(vars[0]).toBe('datasource');
      expect(json.links.some((l: Json) => l.type === 'dashboards' && l.includeVars && l.keepTime)).toBe(true);
      expect(json.annotations.list.some((a: Json) => /ALERTS\{/.test(a.expr) && a.expr.includes(ALERT_PREFIX))).toBe(true);
      for (const p of panelsOf(json)) {
        const where = `${file} "${p.title}"`;
        expect([where, (p.description ?? '').length > 40]).toEqual([where, true]);
        expect([where, typeof p.fieldConfig?.defaults?.unit]).toEqual([where, 'string']);
        expect([where, p.datasource?.uid]).toEqual([where, '${datasource}']);
        for (const t of p.targets) expect([where, t.datasource?.uid]).toEqual([where, '${datasource}']);
      }
      const ids = panelsOf(json).map((p: Json) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
    }
  });

  it('panels colour bad values: stats and bar gauges have thresholds, and what an alert judges turns red at its threshold', () => {
    const steps = (p: Json, column?: string): Json[] => {
      if (!column) return p.fieldConfig?.defaults?.thresholds?.steps ?? [];
      const o = (p.fieldConfig?.overrides ?? []).find((x: Json) => x.matcher?.options === column);
      return o?.properties.find((x: Json) => x.id === 'thresholds')?.value.steps ?? [];
    };
    // Table overrides name the column as shown (after the organize transformation renames it).
    for (const { file, json } of committed) {
      for (const p of panelsOf(json).filter((x: Json) => x.type === 'table')) {
        const shown = new Set<string>(Object.values(p.transformations.find((t: Json) => t.id === 'organize').options.renameByName));
        const renamed = new Set(Object.keys(p.transformations.find((t: Json) => t.id === 'organize').options.renameByName));
        for (const o of p.fieldConfig?.overrides ?? []) expect([`${file} "${p.title}"`, o.matcher.options, renamed.has(o.matcher.options) && !shown.has(o.matcher.options)]).toEqual([`${file} "${p.title}"`, o.matcher.options, false]);
      }
    }
    const informational = new Set(['Goodput']); // a rate with no good or bad value of its own
    for (const { file, json } of committed) {
      for (const p of panelsOf(json).filter((x: Json) => (x.type === 'stat' || x.type === 'bargauge') && !informational.has(x.title))) {
        expect([`${file} "${p.title}"`, steps(p).length >= 2]).toEqual([`${file} "${p.title}"`, true]);
      }
    }
    const panel = (uid: string, title: string): Json => panelsOf(committed.find((c) => c.json.uid === uid)!.json).find((p: Json) => p.title === title);
    const red = (s: Json[]) => s.find((x: Json) => x.color === 'red')?.value;
    const orange = (s: Json[]) => s.find((x: Json) => x.color === 'orange')?.value;
    const T = DEFAULT_CONFIG.thresholds;
    expect(red(steps(panel(UID.node, 'Softirq CPU share per CPU')))).toBe(T.softirqCpuShare);
    expect(red(steps(panel(UID.node, 'Time squeezes per CPU')))).toBe(T.timeSqueezesPerSecond);
    expect(orange(steps(panel(UID.fleet, 'Top pacing-limited flow identities'), 'pacing-limited share'))).toBe(T.pacingLimitedShare);
    expect(red(steps(panel(UID.fleet, 'Pacing-limited share: now vs a day earlier'), 'change'))).toBe(T.pacingRegressionIncrease);
    expect(red(steps(panel(UID.node, 'Softnet drops per CPU')))).toBeLessThan(T.softnetDropsPerSecond);
    expect(red(steps(panel(UID.node, 'NIC drops and errors')))).toBeLessThan(1);
  });

  it('data links point at the other dashboards and carry their variables', () => {
    const uids = new Set(Object.values(UID));
    const byUid = new Map(committed.map((c) => [c.json.uid, c.json]));
    let links = 0;
    for (const { json } of committed) {
      for (const p of panelsOf(json)) {
        for (const l of p.fieldConfig?.defaults?.links ?? []) {
          links++;
          const m = /^\/d\/([a-z-]+)\?(.*)$/.exec(l.url);
          expect(m).not.toBeNull();
          expect(uids.has(m![1] as never)).toBe(true);
          const targetVars = new Set((byUid.get(m![1]).templating.list as Json[]).map((v) => v.name));
          for (const [, name] of m![2].matchAll(/var-([a-z_]+)=/g)) expect([l.url, targetVars.has(name)]).toEqual([l.url, true]);
        }
      }
    }
    expect(links).toBeGreaterThanOrEqual(4);
  });

  it('the Flow path has one cell per hop of the diagnosis, in path order', () => {
    const flow = committed.find((c) => c.json.uid === UID.flow)!.json;
    const cells = panelsOf(flow).filter((p: Json) => /^Hop /.test(p.description ?? ''));
    expect(cells.map((p: Json) => /^Hop ([a-z-]+)\./.exec(p.description)![1])).toEqual(
      ['socket-tx', 'tcp-tx', 'qdisc-tx', 'ovs-tx', 'nic-tx', 'link', 'nic-rx', 'ovs-rx', 'internal-rx', 'tcp-rx', 'socket-rx'],
    );
    for (const c of cells) expect(c.targets[0].expr).toContain('flowpath_flow_verdict_info');
  });
});

describe('Grafana provisioning', () => {
  const read = (f: string) => fs.readFileSync(path.join(__dirname, '../../grafana/provisioning', f), 'utf8');
  it('provisions the Prometheus datasource under the uid the dashboards default to', () => {
    const ds = read('datasources/flowpath.yaml');
    expect(ds).toMatch(/^apiVersion: 1$/m);
    expect(ds).toMatch(new RegExp(`^\\s+uid: ${PROVISIONED_DS_UID}$`, 'm'));
    expect(ds).toMatch(/^\s+type: prometheus$/m);
    for (const { json } of committed) {
      const v = json.templating.list.find((x: Json) => x.name === 'datasource');
      expect(v.current.value).toBe(PROVISIONED_DS_UID);
    }
  });
  it('a file provider loads the dashboards from /var/lib/grafana/dashboards/flowpath', () => {
    const p = read('dashboards/flowpath.yaml');
    expect(p).toMatch(/^\s+type: file$/m);
    expect(p).toMatch(/^\s+path: \/var\/lib\/grafana\/dashboards\/flowpath$/m);
  });
});
