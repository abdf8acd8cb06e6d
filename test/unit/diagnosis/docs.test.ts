// docs/diagnosis.md documents every reason, rule, hop, threshold, flag and metric of the code.

import * as fs from 'fs';
import * as path from 'path';
import { RULES, T } from '../../../src/diagnosis/rules';
import { HOPS, REASONS } from '../../../src/diagnosis/types';
import { COMMAND_FLAGS, DIAGNOSIS_FLAGS } from '../../../src/diagnosis/flags';
import { DIAGNOSIS_METRICS } from '../../../src/collectors/diagnosis';

const doc = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'docs', 'diagnosis.md'), 'utf8');

describe('docs/diagnosis.md', () => {
  it.each(REASONS.map((r) => [r]))('documents reason %s', (r) => expect(doc).toContain(`| \`${r}\` |`));
  it.each(RULES.map((r) => [r.id, r.hop]))('documents rule %s (hop %s)', (id, hop) => {
    const rules = doc.slice(doc.indexOf('### The rules'), doc.indexOf('### Thresholds'));
    const row = rules.split('\n').find((l) => l.startsWith('| `') && l.split('|')[1].includes(`\`${id}\``));
    expect(row).toBeDefined();
    expect(row).toContain(hop);
  });
  it.each(HOPS.map((h) => [h]))('names hop %s', (h) => expect(doc).toContain(h));
  it.each(Object.keys(T).map((k) => [k]))('lists threshold %s', (k) => expect(doc).toContain(`\`${k}\``));
  it.each([...DIAGNOSIS_FLAGS, ...COMMAND_FLAGS].map((f) => [f.name]))('describes flag --%s', (n) => expect(doc).toContain(`--${n}`));
  it.each(DIAGNOSIS_METRICS.map((m) => [m.name]))('mentions metric %s', (n) => {
    const short = n.replace(/^flowpath_diagnosis/, '');
    expect(doc.includes(n) || doc.includes(`\`${short}\``)).toBe(true);
  });
});
