// Write grafana/dashboards/*.json from the TypeScript definitions: `npm run dashboards` (after a build),
// or `node dist/src/dashboards/generate.js [OUT_DIR]`.

import * as fs from 'fs';
import * as path from 'path';
import { DASHBOARDS, renderDashboard } from './index';

export function generate(outDir: string): string[] {
  fs.mkdirSync(outDir, { recursive: true });
  return DASHBOARDS.map((d) => {
    const file = path.join(outDir, d.file);
    fs.writeFileSync(file, renderDashboard(d.build()));
    return file;
  });
}

if (require.main === module) {
  const out = process.argv[2] ?? path.resolve(__dirname, '..', '..', '..', 'grafana', 'dashboards');
  for (const f of generate(out)) console.log(`wrote ${f}`);
}
