// Flags shared by every collector that reads /proc or /sys. Declared once here; collectors read them
// with config.get(procfsFlag) and never hard-code a path, so tests point them at fixtures.

import * as path from 'path';
import { stringFlag } from './flags';

export const procfsFlag = stringFlag('path.procfs', '/proc', 'procfs mountpoint.', '<path>');
export const sysfsFlag = stringFlag(
  'path.sysfs',
  '/sys',
  'sysfs mountpoint. When it shows the exporter\'s own network namespace (/sys always does; another path is compared once with an rtnetlink link dump), device state and counters come from rtnetlink, else from the files.',
  '<path>',
);

/** Join under a root, refusing ".." escapes from names that came from the kernel (device names). */
export function under(root: string, ...parts: string[]): string {
  for (const p of parts) {
    if (p.split('/').includes('..')) throw new Error(`refusing path component "${p}"`);
  }
  return path.join(root, ...parts);
}
