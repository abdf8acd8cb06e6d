// Run `promtool check metrics` on an exposition; returns its exit code and output.
import { spawnSync } from 'child_process';

export function promtoolAvailable(): boolean {
  return spawnSync('promtool', ['--version']).status === 0;
}

export function promtoolCheckMetrics(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, output: (r.stdout ?? '') + (r.stderr ?? '') };
}

/**
 * prom-client's default metrics include three gauges named *_total (nodejs_active_handles_total,
 * ..._requests_total, ..._resources_total); promtool's linter flags them. They keep prom-client's
 * names (dashboards read them), so these lines, and only these, are expected.
 */
const PROM_CLIENT_LINT = /^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;

/** promtool's parse errors and lint problems other than prom-client's known names; [] when clean. */
export function promtoolProblems(text: string): string[] {
  const r = promtoolCheckMetrics(text);
  const lines = r.output.split('\n').filter((l) => l.trim() !== '' && !PROM_CLIENT_LINT.test(l));
  if (r.status !== 0 && r.status !== 3) lines.push(`promtool exited with ${r.status}`); // 3: lint problems only
  return lines;
}
