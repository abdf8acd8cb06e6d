// Least privilege, measured: the exporter runs as uid 65534 with no capabilities, with each candidate
// capability alone, and with the OVS control socket's group (test/support/privileges.ts). The README's
// table must be what this run measured (scripts/privilege-matrix rewrites it), and every deployment
// (DaemonSet, compose, systemd unit, the image test) must add exactly the capabilities the matrix needs.
// Needs root (network namespace, setpriv, a private ovs-vswitchd).
import * as fs from 'fs';
import * as path from 'path';
import { MatrixLab, measure, renderTable, TABLE_BEGIN, TABLE_END, REPO, type Matrix } from '../support/privileges';
import { missingTools } from '../support/private-ovs';
import { grantedCapabilities, normalizeCaps } from '../support/deploy-files';

function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespace, setpriv, ovs-vswitchd)';
  const m = missingTools();
  return m.length ? `missing tools: ${m.join(', ')}` : null;
}
const reason = skipReason();
if (reason && process.env.CI) throw new Error(`privileges test cannot run in CI: ${reason}`);
const d = reason ? describe.skip : describe;

d('least privilege matrix (root)', () => {
  const lab = new MatrixLab();
  let matrix: Matrix;

  beforeAll(async () => {
    await lab.setup();
    matrix = await measure(lab);
  }, 240_000);

  afterAll(async () => {
    await lab.cleanup();
  }, 60_000);

  it('works as root for every probe (the probes can see what they look for)', () => {
    expect(matrix.rows.filter((r) => !r.root).map((r) => r.what)).toEqual([]);
  });

  it('finds the unprivileged failures that the matrix is about (the runs really were unprivileged)', () => {
    // The OVS control socket as OVS creates it (0750, root) cannot be opened by uid 65534: if this passed
    // unprivileged, setpriv did not drop anything.
    const ovs = matrix.rows.find((r) => r.what.startsWith('ovs-vswitchd control socket'))!;
    expect(ovs.unprivileged).toBe(false);
  });

  it('is the table in the README', () => {
    const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
    const a = readme.indexOf(TABLE_BEGIN);
    const b = readme.indexOf(TABLE_END);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(readme.slice(a, b + TABLE_END.length)).toBe(renderTable(matrix));
  });

  it('is exactly the capability set every deployment adds', () => {
    const granted = grantedCapabilities();
    const needed = normalizeCaps(matrix.needed);
    for (const [where, caps] of Object.entries(granted)) expect({ where, caps }).toEqual({ where, caps: needed });
  });
});
