// Shared pieces of the Grafana dashboards (src/dashboards/*.ts -> grafana/dashboards/*.json, `npm run
// dashboards`): the datasource variable, panel factories that always set a unit and a description,
// thresholds, links between the three dashboards and the alert annotation.

import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import type { MixinConfig } from '../mixin/config';
import { type RecordNames, recordNames } from '../mixin/rules';

/** Every panel and variable queries the datasource picked in the `datasource` variable. */
export const DS: common.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };
/** uid of the provisioned datasource (grafana/provisioning/datasources/flowpath.yaml). */
export const PROVISIONED_DS_UID = 'prometheus';

export const UID = { fleet: 'flowpath-fleet', flow: 'flowpath-flow-path', node: 'flowpath-node-path' } as const;
export const TAG = 'flowpath';

/**
 * What a dashboard takes from the mixin config (src/mixin/config.ts) the rules were generated from, so the
 * panels query the rules Prometheus has and turn red where the alerts fire. `RULES`: the recording rules
 * by name; a panel that shows what a rule records queries the rule, so the dashboards, the alerts and
 * Prometheus agree on one number and a renamed rule fails the build instead of leaving a blank panel (the
 * names carry the rate window: "rate5m"). `RULE_WINDOW`: the rules' rate window; a raw rate drawn next to
 * a recorded one uses it, so the two lines compare. `T`: the alerts' thresholds. `npm run dashboards`
 * uses DEFAULT_CONFIG; `flowpath dashboards --config` the same overrides as `flowpath rules --config`.
 */
export interface MixinView {
  RULES: RecordNames;
  RULE_WINDOW: string;
  T: MixinConfig['thresholds'];
}
export function mixinView(cfg: MixinConfig): MixinView {
  return { RULES: recordNames(cfg), RULE_WINDOW: cfg.rateWindow, T: cfg.thresholds };
}
/** 0.5 -> "50 %". */
export const pct = (x: number): string => `${Math.round(x * 1000) / 10} %`;

/** A recorded series narrowed by label matchers (without braces). */
export const rec = (name: string, sel: string): string => `${name}{${sel}}`;

/** Alerts of the flowpath rules (prometheus/): their names all start with this. */
export const ALERT_PREFIX = 'Flowpath';

export interface Query {
  expr: string;
  legend?: string;
  /** Instant query (tables, stats of "now"). */
  instant?: boolean;
  /** Table format (one row per series, labels as columns). */
  table?: boolean;
}

export function target(q: Query, refId: string): prometheus.DataqueryBuilder {
  const t = new prometheus.DataqueryBuilder().datasource(DS).refId(refId).expr(q.expr).legendFormat(q.legend ?? '__auto');
  if (q.instant) t.instant();
  else t.range();
  if (q.table) t.format(prometheus.PromQueryFormat.Table);
  return t;
}

const REF = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
function targets(qs: readonly Query[]): prometheus.DataqueryBuilder[] {
  return qs.map((q, i) => target(q, REF[i]));
}

export type Steps = ReadonlyArray<readonly [number | null, string]>;

export function thresholds(steps: Steps): dashboard.ThresholdsConfigBuilder {
  return new dashboard.ThresholdsConfigBuilder()
    .mode(dashboard.ThresholdsMode.Absolute)
    .steps(steps.map(([value, color]) => ({ value, color })));
}

/** Green below `warn`, orange from `warn`, red from `bad`; without orange when a configured `bad` (an alert
 *  threshold) is below `warn`, so the steps stay ascending. */
export const badAbove = (warn: number, bad: number): Steps =>
  warn <= bad ? [[null, 'green'], [warn, 'orange'], [bad, 'red']] : [[null, 'green'], [bad, 'red']];
/** Any value above 0 is bad (drops, errors, lost upcalls). */
export const anyIsBad: Steps = [[null, 'green'], [1e-9, 'red']];

export interface PanelCommon {
  title: string;
  /** What the panel shows and what a bad value means. */
  description: string;
  unit: string;
  queries: readonly Query[];
  thresholds?: Steps;
  width?: number;
  height?: number;
  min?: number;
  max?: number;
  links?: cog.Builder<dashboard.DashboardLink>[];
}

export interface TimeSeriesOptions extends PanelCommon {
  stack?: 'normal' | 'percent';
  /** Draw the thresholds as dashed lines. */
  showThresholds?: boolean;
  /** Series (by regexp on the display name) drawn on a right axis with this unit. */
  rightAxis?: { match: string; unit: string };
  fill?: number;
}

function legend(): common.VizLegendOptionsBuilder {
  return new common.VizLegendOptionsBuilder()
    .showLegend(true)
    .displayMode(common.LegendDisplayMode.Table)
    .placement(common.LegendPlacement.Bottom)
    .calcs(['lastNotNull', 'max']);
}

/** The settings every panel gets: title, description, the datasource variable, unit, queries, size. */
interface AnyPanelBuilder<T> {
  title(t: string): T;
  description(d: string): T;
  datasource(d: common.DataSourceRef): T;
  unit(u: string): T;
  targets(t: cog.Builder<cog.Dataquery>[]): T;
  span(w: number): T;
  height(h: number): T;
}
function base<T extends AnyPanelBuilder<T>>(p: T, o: PanelCommon, qs: readonly Query[], width: number, height: number): T {
  return p.title(o.title).description(o.description).datasource(DS).unit(o.unit).targets(targets(qs)).span(o.width ?? width).height(o.height ?? height);
}

export function timeSeries(o: TimeSeriesOptions): timeseries.PanelBuilder {
  const p = base(new timeseries.PanelBuilder(), o, o.queries, 12, 8)
    .legend(legend())
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending))
    .lineWidth(1)
    .fillOpacity(o.fill ?? (o.stack ? 60 : 10))
    .showPoints(common.VisibilityMode.Never);
  if (o.stack) p.stacking(new common.StackingConfigBuilder().mode(o.stack === 'percent' ? common.StackingMode.Percent : common.StackingMode.Normal));
  if (o.thresholds) {
    p.thresholds(thresholds(o.thresholds));
    if (o.showThresholds !== false) p.thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed));
  }
  if (o.min !== undefined) p.min(o.min);
  if (o.max !== undefined) p.max(o.max);
  if (o.rightAxis) {
    p.overrideByRegexp(o.rightAxis.match, [
      { id: 'unit', value: o.rightAxis.unit },
      { id: 'custom.axisPlacement', value: 'right' },
      { id: 'custom.fillOpacity', value: 0 },
    ]);
  }
  if (o.links) p.dataLinks(o.links);
  return p;
}

export interface StatOptions extends PanelCommon {
  mappings?: dashboard.ValueMapping[];
  noValue?: string;
  textMode?: common.BigValueTextMode;
  colorMode?: common.BigValueColorMode;
}

export function statPanel(o: StatOptions): stat.PanelBuilder {
  const p = base(new stat.PanelBuilder(), o, o.queries, 4, 4)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
    .graphMode(common.BigValueGraphMode.None)
    .colorMode(o.colorMode ?? common.BigValueColorMode.Background)
    .textMode(o.textMode ?? common.BigValueTextMode.Auto)
    .justifyMode(common.BigValueJustifyMode.Center)
    .orientation(common.VizOrientation.Auto)
    .thresholds(thresholds(o.thresholds ?? [[null, 'green']]));
  if (o.mappings) p.mappings(o.mappings);
  if (o.noValue) p.noValue(o.noValue);
  if (o.min !== undefined) p.min(o.min);
  if (o.max !== undefined) p.max(o.max);
  if (o.links) p.dataLinks(o.links);
  return p;
}

export interface TableOptions extends PanelCommon {
  /** Columns to hide (Time, __name__, job, ...) and to rename. */
  hide?: readonly string[];
  rename?: Readonly<Record<string, string>>;
  /** Per-column overrides: unit, gauge cells, thresholds. A column is named as shown (after `rename`): Grafana
   *  matches overrides by the display name the transformations leave; a name `rename` maps is mapped too. */
  columns?: ReadonlyArray<{ name: string; unit?: string; thresholds?: Steps; gauge?: boolean; max?: number }>;
  sortBy?: { field: string; desc: boolean };
}

export function tablePanel(o: TableOptions): table.PanelBuilder {
  const qs = o.queries.map((q) => ({ ...q, instant: true, table: true }));
  const p = base(new table.PanelBuilder(), o, qs, 24, 8).cellHeight(common.TableCellHeight.Sm).showHeader(true);
  if (o.thresholds) p.thresholds(thresholds(o.thresholds));
  const hide = new Set(['Time', 'job', '__name__', ...(o.hide ?? [])]);
  const excludeByName: Record<string, boolean> = {};
  for (const h of hide) excludeByName[h] = true;
  // Several instant queries: one row per label set shared by their results (e.g. per device).
  if (qs.length > 1) p.withTransformation({ id: 'merge', options: {} });
  p.withTransformation({ id: 'organize', options: { excludeByName, renameByName: { ...(o.rename ?? {}) }, indexByName: {} } });
  for (const c of o.columns ?? []) {
    const props: dashboard.DynamicConfigValue[] = [];
    if (c.unit) props.push({ id: 'unit', value: c.unit });
    if (c.thresholds) props.push({ id: 'thresholds', value: thresholds(c.thresholds).build() });
    if (c.max !== undefined) props.push({ id: 'max', value: c.max });
    if (c.gauge) props.push({ id: 'custom.cellOptions', value: { type: 'gauge', mode: 'basic' } });
    else if (c.thresholds) props.push({ id: 'custom.cellOptions', value: { type: 'color-text' } });
    p.overrideByName(o.rename?.[c.name] ?? c.name, props);
  }
  if (o.sortBy) p.sortBy([new common.TableSortByFieldStateBuilder().displayName(o.sortBy.field).desc(o.sortBy.desc)]);
  if (o.links) p.dataLinks(o.links);
  return p;
}

/** Horizontal bars, one per series (a hot CPU or queue stands out). */
export function barGauge(o: PanelCommon): bargauge.PanelBuilder {
  const p = base(new bargauge.PanelBuilder(), o, o.queries.map((q) => ({ ...q, instant: true })), 12, 8)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
    .displayMode(common.BarGaugeDisplayMode.Gradient)
    .orientation(common.VizOrientation.Horizontal)
    .showUnfilled(true)
    .thresholds(thresholds(o.thresholds ?? [[null, 'green']]));
  if (o.min !== undefined) p.min(o.min);
  if (o.max !== undefined) p.max(o.max);
  return p;
}

// -------------------------------------------------------------------------------------------------
// Variables, links, annotations

export function datasourceVariable(): dashboard.DatasourceVariableBuilder {
  return new dashboard.DatasourceVariableBuilder('datasource')
    .label('Data source')
    .type('prometheus')
    .current({ text: 'Prometheus', value: PROVISIONED_DS_UID, selected: true });
}

export function queryVariable(
  name: string,
  label: string,
  query: string,
  o: { multi?: boolean; all?: boolean; hide?: boolean; description?: string } = {},
): dashboard.QueryVariableBuilder {
  const v = new dashboard.QueryVariableBuilder(name)
    .label(label)
    .datasource(DS)
    .query({ query, refId: 'PrometheusVariableQueryEditor-VariableQuery', qryType: 1 })
    .definition(query)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.AlphabeticalAsc);
  if (o.description) v.description(o.description);
  if (o.multi) v.multi(true);
  if (o.all) v.includeAll(true).allValue('.*');
  if (o.hide) v.hide(dashboard.VariableHide.HideVariable);
  return v;
}

/** The dashboard list of all three, keeping time and the variables of the same name. */
export function dashboardLinks(): dashboard.DashboardLinkBuilder[] {
  return [
    new dashboard.DashboardLinkBuilder('flowpath')
      .type(dashboard.DashboardLinkType.Dashboards)
      .tags([TAG])
      .asDropdown(false)
      .includeVars(true)
      .keepTime(true)
      .targetBlank(false),
  ];
}

/** A data link to another dashboard; `vars` maps variable names to values (field refs or $vars). */
export function linkTo(title: string, uid: string, vars: Readonly<Record<string, string>>): dashboard.DashboardLinkBuilder {
  const q = Object.entries(vars)
    .map(([k, v]) => `var-${k}=${v}`)
    .join('&');
  return new dashboard.DashboardLinkBuilder(title)
    .type(dashboard.DashboardLinkType.Link)
    .url(`/d/${uid}?\${__url_time_range}&var-datasource=\${datasource}&${q}`)
    .targetBlank(false);
}

/** Firing flowpath alerts as annotations, optionally narrowed to one node. */
export function alertAnnotation(instanceMatcher?: string): dashboard.AnnotationQueryBuilder {
  const sel = [`alertstate="firing"`, `alertname=~"${ALERT_PREFIX}.*"`];
  if (instanceMatcher) sel.push(instanceMatcher);
  return new dashboard.AnnotationQueryBuilder()
    .name('flowpath alerts')
    .datasource(DS)
    .enable(true)
    .iconColor('red')
    .expr(`ALERTS{${sel.join(', ')}}`)
    .step('60s')
    .titleFormat('{{alertname}}')
    .textFormat('{{instance}} {{severity}}')
    .tagKeys('alertname,severity,instance');
}

export function baseDashboard(uid: string, title: string, description: string): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags([TAG])
    .editable()
    .timezone('browser')
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .time({ from: 'now-1h', to: 'now' })
    .refresh('30s')
    .links(dashboardLinks());
}

/** A value mapping: value -> text and color. */
export function valueText(map: Readonly<Record<string, [string, string]>>): dashboard.ValueMapping {
  const options: Record<string, dashboard.ValueMappingResult> = {};
  let i = 0;
  for (const [v, [text, color]] of Object.entries(map)) options[v] = { text, color, index: i++ };
  return { type: dashboard.MappingType.ValueToText, options };
}
