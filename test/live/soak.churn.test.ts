// The churn soak of `npm run soak` (scripts/soak, test/soak/soak.ts) for 2 minutes: 100 flows/s opened and
// closed between two private namespaces while the real exporter (bin/flowpath, default flags) in the
// sender namespace is scraped every second. The soak itself checks retention of closed flows' series, memory
// growth after warm-up, the fd count and the diagnosis sampler's ticks, and exits 1 with FAIL lines.
// Needs root and a built tree (scripts/test builds before jest). Run it under the shared lock.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { canCreateNetns } from '../support/qdisc-topology';

const REPO = path.join(__dirname, '../..');
const DURATION = Number(process.env.FLOWPATH_SOAK_SECONDS ?? 120);

(canCreateNetns() ? it : it.skip)(`churn soak (${DURATION} s at 100 flows/s): retention, memory, fds, sampler`, () => {
  expect(fs.existsSync(path.join(REPO, 'dist/src/cli.js'))).toBe(true);
  const report = path.join(os.tmpdir(), `flowpath-soak-${process.pid}.json`);
  try {
    const r = spawnSync('bash', [path.join(REPO, 'scripts/soak'), '--duration', String(DURATION), '--report', report], { cwd: REPO, encoding: 'utf8', timeout: (DURATION + 90) * 1000 });
    process.stdout.write(r.stdout + r.stderr);
    expect(fs.existsSync(report)).toBe(true);
    const rep = JSON.parse(fs.readFileSync(report, 'utf8')) as { failures: string[]; scrapes: number; retentionViolations: number };
    expect(rep.failures).toEqual([]);
    expect(rep.retentionViolations).toBe(0);
    expect(rep.scrapes).toBeGreaterThanOrEqual(DURATION * 0.8);
    expect(r.status).toBe(0);
  } finally {
    fs.rmSync(report, { force: true });
  }
}, (DURATION + 120) * 1000);
