// `flowpath dashboards [fleet|flow|node] [--config overrides.yaml] [--out DIR]`: the Grafana dashboards
// for the rules `flowpath rules` generates from the same overrides (same --config file and loader), so
// the panels query recording rules of the names that config gives them (the rate window is part of the
// name) and turn red at its alert thresholds. --out writes every dashboard's JSON file into DIR; a name
// prints that one dashboard's JSON.

import * as fs from 'fs';
import * as path from 'path';
import type { Command } from '../core/command';
import { FlagDef, UsageError, stringFlag } from '../core/flags';
import { loadConfig, rulesConfigFlag } from '../mixin/command';
import { UID } from './common';

export const dashboardsOutFlag = stringFlag('out', '', 'Write the dashboards (grafana/dashboards/*.json) into this directory instead of printing one.', '<dir>');

const NAMES: Record<string, string> = { fleet: `${UID.fleet}.json`, flow: `${UID.flow}.json`, node: `${UID.node}.json` };

export const dashboardsCommand: Command = {
  summary: 'Print a Grafana dashboard for the rules of --config overrides (as `flowpath rules`); --out writes all of them.',
  usage: 'flowpath dashboards [fleet|flow|node] [--config overrides.yaml] [--out DIR]',
  flags: [rulesConfigFlag, dashboardsOutFlag] as FlagDef<unknown>[],
  async run(args, io) {
    const names = Object.keys(NAMES);
    const which = args.positional[0];
    if (args.positional.length > 1 || (which !== undefined && !names.includes(which))) {
      throw new UsageError(`expected one of ${names.join(', ')} (got "${args.positional.join(' ')}")`);
    }
    const out = args.config.get(dashboardsOutFlag);
    if (!out && which === undefined) throw new UsageError(`name a dashboard to print (${names.join(', ')}) or give --out DIR`);
    const cfg = loadConfig(args.config.get(rulesConfigFlag));
    // Loaded here, not at start-up: the Grafana SDK is only needed by this command.
    const { renderDashboards } = await import('./generate');
    let files = renderDashboards(cfg);
    if (which !== undefined) files = new Map([[NAMES[which], files.get(NAMES[which]) as string]]);
    if (!out) {
      io.stdout(files.get(NAMES[which as string]) as string);
      return 0;
    }
    fs.mkdirSync(out, { recursive: true });
    for (const [name, text] of files) fs.writeFileSync(path.join(out, name), text);
    io.stderr(`flowpath dashboards: wrote ${[...files.keys()].join(', ')} to ${out}\n`);
    return 0;
  },
};
