// The dashboards and how they are written to grafana/dashboards/ (`npm run dashboards`;
// test/unit/dashboards.test.ts fails when the committed JSON is not what this generates).

import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import type { MixinConfig } from '../mixin/config';
import { UID } from './common';
import { fleetDashboard } from './fleet';
import { flowDashboard } from './flow';
import { nodeDashboard } from './node';

export interface DashboardDef {
  /** File name under grafana/dashboards/. */
  file: string;
  uid: string;
  /** The dashboard for the rules generated from `cfg` (their names, rate window and alert thresholds). */
  build: (cfg: MixinConfig) => dashboard.Dashboard;
}

/** Grafana wants unique panel ids; the builders leave them unset. */
function withIds(d: dashboard.Dashboard): dashboard.Dashboard {
  let id = 1;
  for (const p of d.panels ?? []) {
    p.id = id++;
    if ('panels' in p) for (const c of p.panels ?? []) c.id = id++;
  }
  return d;
}

export const DASHBOARDS: readonly DashboardDef[] = [
  { file: `${UID.fleet}.json`, uid: UID.fleet, build: (cfg) => withIds(fleetDashboard(cfg).build()) },
  { file: `${UID.flow}.json`, uid: UID.flow, build: (cfg) => withIds(flowDashboard(cfg).build()) },
  { file: `${UID.node}.json`, uid: UID.node, build: (cfg) => withIds(nodeDashboard(cfg).build()) },
];

export function renderDashboard(d: dashboard.Dashboard): string {
  return JSON.stringify(d, null, 2) + '\n';
}
