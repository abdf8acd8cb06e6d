// The layers of src/: sources/ are pure readers of kernel interfaces (no Prometheus, no collector, no
// diagnosis); diagnosis/ builds on sources/ and core/ but never on collectors/ or the CLI; collectors/ and
// cli.ts sit on top. Checked on the import graph of the source files, transitively: a diagnosis module
// that imports exporter.ts (which imports every collector) breaks the rule as much as a direct import.

import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '../..');
const SRC = path.join(ROOT, 'src');

/** Module specifiers of `import ... from`, `export ... from`, `import('...')` and `require('...')`. */
export function importSpecifiers(text: string): string[] {
  const out: string[] = [];
  const res = [
    /\bfrom\s+['"]([^'"]+)['"]/g,
    /\bimport\s+['"]([^'"]+)['"]/g, // side-effect import
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of res) for (const m of text.matchAll(re)) out.push(m[1]);
  return out;
}

/** The repository-relative .ts file a relative specifier names, or null for a package import. */
function resolveLocal(fromFile: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const base = path.resolve(path.dirname(fromFile), spec);
  for (const cand of [`${base}.ts`, path.join(base, 'index.ts'), base]) {
    if (fs.existsSync(cand) && fs.statSync(cand).isFile()) return path.relative(ROOT, cand);
  }
  throw new Error(`${path.relative(ROOT, fromFile)}: cannot resolve import "${spec}"`);
}

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** file (repository-relative) -> the local files it imports. */
function importGraph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of walk(SRC)) {
    const deps = importSpecifiers(fs.readFileSync(f, 'utf8'))
      .map((s) => resolveLocal(f, s))
      .filter((x): x is string => x !== null);
    g.set(path.relative(ROOT, f), [...new Set(deps)]);
  }
  return g;
}

/** For each file under `layer`, the first import chain that reaches a forbidden file, if any. */
export function violations(graph: ReadonlyMap<string, readonly string[]>, layer: string, forbidden: (f: string) => boolean): string[] {
  const out: string[] = [];
  for (const start of [...graph.keys()].filter((f) => f.startsWith(layer)).sort()) {
    const prev = new Map<string, string>();
    const queue = [start];
    const seen = new Set(queue);
    let hit: string | undefined;
    while (queue.length > 0 && hit === undefined) {
      const f = queue.shift() as string;
      for (const d of graph.get(f) ?? []) {
        if (seen.has(d)) continue;
        seen.add(d);
        prev.set(d, f);
        if (forbidden(d)) {
          hit = d;
          break;
        }
        queue.push(d);
      }
    }
    if (hit !== undefined) {
      const chain = [hit];
      while (chain[0] !== start) chain.unshift(prev.get(chain[0]) as string);
      out.push(chain.join(' -> '));
    }
  }
  return out;
}

const notDiagnosis = (f: string) => f.startsWith('src/collectors/') || f === 'src/cli.ts';
const notSources = (f: string) => f.startsWith('src/collectors/') || f.startsWith('src/diagnosis/') || f === 'src/core/metrics.ts' || f === 'src/cli.ts';

describe('layering of src/', () => {
  const graph = importGraph();

  it('src/diagnosis/** reaches neither src/collectors/** nor src/cli.ts through its imports', () => {
    expect(graph.has('src/diagnosis/adapters.ts')).toBe(true);
    expect(violations(graph, 'src/diagnosis/', notDiagnosis)).toEqual([]);
  });

  it('src/sources/** (pure readers) reaches no collector, no diagnosis module and no Prometheus metric code', () => {
    expect(graph.has('src/sources/devices.ts')).toBe(true);
    expect(violations(graph, 'src/sources/', notSources)).toEqual([]);
  });

  it('the checker finds direct and transitive violations and names the chain', () => {
    const g = new Map<string, string[]>([
      ['src/diagnosis/a.ts', ['src/diagnosis/b.ts', 'src/core/flags.ts']],
      ['src/diagnosis/b.ts', ['src/exporter.ts']],
      ['src/exporter.ts', ['src/collectors/index.ts']],
      ['src/diagnosis/c.ts', ['src/cli.ts']],
      ['src/diagnosis/d.ts', ['src/core/flags.ts']],
      ['src/sources/x.ts', ['src/core/metrics.ts']],
    ]);
    expect(violations(g, 'src/diagnosis/', notDiagnosis)).toEqual([
      'src/diagnosis/a.ts -> src/diagnosis/b.ts -> src/exporter.ts -> src/collectors/index.ts',
      'src/diagnosis/b.ts -> src/exporter.ts -> src/collectors/index.ts',
      'src/diagnosis/c.ts -> src/cli.ts',
    ]);
    expect(violations(g, 'src/sources/', notSources)).toEqual(['src/sources/x.ts -> src/core/metrics.ts']);
  });

  it('import specifiers: static, re-export, type-only, dynamic and require', () => {
    const text = [
      "import { a } from '../collectors/ovs';",
      "import type { B } from \"./b\";",
      "export { c } from '../c';",
      "import './side-effect';",
      "const d: import('../core/metrics').Emitter = x;",
      "const e = require('os');",
    ].join('\n');
    expect(importSpecifiers(text).sort()).toEqual(['../c', '../collectors/ovs', '../core/metrics', './b', './side-effect', 'os'].sort());
  });
});
