// Write grafana/dashboards/*.json from the TypeScript definitions: `npm run dashboards` (after a build),
// or `node dist/src/dashboards/generate.js [OUT_DIR]`, for the rules of DEFAULT_CONFIG. For the rules of a
// user's overrides: `flowpath dashboards --config overrides.yaml --out DIR` (src/dashboards/command.ts).

import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_CONFIG, type MixinConfig } from '../mixin/config';
import { DASHBOARDS, renderDashboard } from './index';

/** File name under grafana/dashboards/ -> its JSON, for the rules generated from `cfg`. */
export function renderDashboards(cfg: MixinConfig): Map<string, string> {
  return new Map(DASHBOARDS.map((d) => [d.file, renderDashboard(d.build(cfg))]));
}

export function generate(outDir: string, cfg: MixinConfig): string[] {
  fs.mkdirSync(outDir, { recursive: true });
  return [...renderDashboards(cfg)].map(([name, text]) => {
    const file = path.join(outDir, name);
    fs.writeFileSync(file, text);
    return file;
  });
}

if (require.main === module) {
  const out = process.argv[2] ?? path.resolve(__dirname, '..', '..', '..', 'grafana', 'dashboards');
  for (const f of generate(out, DEFAULT_CONFIG)) console.log(`wrote ${f}`);
}
