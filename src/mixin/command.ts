// `flowpath rules [all|recording|alerts] [--config overrides.yaml] [--out DIR]`: print the Prometheus
// recording and alerting rules generated from src/mixin/config.ts, with a user's overrides (JSON or
// YAML, a partial copy of the config) merged in; --out writes the whole prometheus/ directory (rule
// files, promtool unit tests, example configurations).

import * as fs from 'fs';
import * as path from 'path';
import { parse } from 'yaml';
import type { Command } from '../core/command';
import { FlagDef, UsageError, stringFlag } from '../core/flags';
import { ConfigError, DEFAULT_CONFIG, MixinConfig, mergeConfig } from './config';
import { renderAlerts, renderAll, renderFiles, renderRules } from './render';

export const rulesConfigFlag = stringFlag('config', '', 'Overrides of the rules config (JSON or YAML file; a partial copy of DEFAULT_CONFIG in src/mixin/config.ts).', '<file>');
export const rulesOutFlag = stringFlag('out', '', 'Write rules.yml, alerts.yml, tests/*.yml and the example prometheus*.yml into this directory instead of printing.', '<dir>');

export function loadConfig(file: string): MixinConfig {
  if (!file) return DEFAULT_CONFIG;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`--config: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new UsageError(`--config ${file}: not JSON or YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  try {
    return mergeConfig(DEFAULT_CONFIG, doc ?? {}, path.basename(file));
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(`--config ${e.message}`);
    throw e;
  }
}

export const rulesCommand: Command = {
  summary: 'Print the Prometheus recording rules and alerts (thresholds from --config overrides); --out writes prometheus/.',
  usage: 'flowpath rules [all|recording|alerts] [--config overrides.yaml] [--out DIR]',
  flags: [rulesConfigFlag, rulesOutFlag] as FlagDef<unknown>[],
  async run(args, io) {
    const what = args.positional[0] ?? 'all';
    if (args.positional.length > 1 || !['all', 'recording', 'alerts'].includes(what)) {
      throw new UsageError(`expected one of all, recording, alerts (got "${args.positional.join(' ')}")`);
    }
    const cfg = loadConfig(args.config.get(rulesConfigFlag));
    const out = args.config.get(rulesOutFlag);
    if (out) {
      let files: Map<string, string>;
      try {
        files = renderFiles(cfg);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      for (const [rel, text] of files) {
        const p = path.join(out, rel);
        fs.mkdirSync(path.dirname(p), { recursive: true });
        fs.writeFileSync(p, text);
      }
      io.stderr(`flowpath rules: wrote ${files.size} files to ${out}\n`);
      return 0;
    }
    io.stdout(what === 'recording' ? renderRules(cfg) : what === 'alerts' ? renderAlerts(cfg) : renderAll(cfg));
    return 0;
  },
};
