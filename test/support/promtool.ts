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
