// The repository stands alone: no tracked file refers to a markdown file that is not in it (in
// particular notes kept outside it), to a "../shared" directory, or to a section ("§N.M") of a document
// that does not have that section. A "§" reference names its document on the same line
// ("docs/kernel-sources.md §3.4", "docs/kernel-sources.md §1.1 and §7.1").

import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '../..');

/** Tracked text files, repository-relative. */
function trackedFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' });
  return out
    .split('\0')
    .filter((f) => f !== '' && !/\.(png|jpg|gif|hex|bin|gz|ico|lock)$/.test(f) && f !== 'package-lock.json')
    .filter((f) => fs.lstatSync(path.join(ROOT, f), { throwIfNoEntry: false })?.isFile() === true); // not symlinks
}

export interface Problem {
  file: string;
  line: number;
  what: string;
}

/**
 * Problems in one file's text. `exists(p)` says whether a repository-relative path is a tracked file,
 * `byBase(name)` which tracked files have that base name, `sections(p)` the section numbers of a
 * markdown file ("3", "3.4", ...).
 */
export function problemsIn(
  file: string,
  text: string,
  exists: (p: string) => boolean,
  byBase: (name: string) => string[],
  sections: (p: string) => ReadonlySet<string>,
): Problem[] {
  const out: Problem[] = [];
  const resolve = (ref: string): string | undefined => {
    const clean = ref.replace(/^\.\//, '');
    const candidates = [path.posix.normalize(path.posix.join(path.posix.dirname(file), clean)), path.posix.normalize(clean)];
    const hit = candidates.find((c) => !c.startsWith('..') && exists(c));
    if (hit) return hit;
    // A bare or partial name ("diagnosis.md", "docs/metrics.md" seen from a subdirectory): unique suffix match.
    const base = path.posix.basename(clean);
    const same = byBase(base).filter((f) => f === clean || f.endsWith('/' + clean));
    return same.length === 1 ? same[0] : undefined;
  };
  text.split('\n').forEach((lineText, i) => {
    const line = i + 1;
    if (/(^|[^.\w])\.\.\/shared\b|\/work\/shared\b/.test(lineText)) out.push({ file, line, what: 'refers to a "shared" directory outside the repository' });
    const refs: Array<{ at: number; doc?: string }> = [];
    for (const m of lineText.matchAll(/[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b/g)) {
      const ref = m[0];
      const lead = lineText.slice(Math.max(0, (m.index ?? 0) - 200), m.index).split(/\s/).pop() ?? '';
      if (/^https?:|:\/\/|https?:$/.test(lead)) continue; // part of a URL
      const doc = resolve(ref);
      if (!doc) out.push({ file, line, what: `refers to ${ref}, which is not in the repository` });
      refs.push({ at: m.index ?? 0, doc });
    }
    // Notes kept outside the repository, named without their extension ("lab-recipe section 3").
    for (const m of lineText.matchAll(/\b(kernel-interfaces|lab-recipe|seed-case|prior-art)\b(?!\.md)/g)) {
      if (byBase(`${m[1]}.md`).length === 0) out.push({ file, line, what: `refers to "${m[1]}", a note that is not in the repository` });
    }
    for (const m of lineText.matchAll(/§\s?(\d+(?:\.\d+)*)/g)) {
      // A section of a public standard ("RFC 9110 §12.4.2") names its document too.
      if (/\bRFC\s?\d+\s*$/.test(lineText.slice(0, m.index))) continue;
      const before = refs.filter((r) => r.at < (m.index ?? 0));
      const doc = before.length > 0 ? before[before.length - 1].doc : undefined;
      if (before.length === 0) out.push({ file, line, what: `"${m[0]}" does not name its document on the same line` });
      else if (doc && !sections(doc).has(m[1])) out.push({ file, line, what: `${doc} has no section ${m[1]}` });
    }
  });
  return out;
}

/** Section numbers of a markdown file: headings like "## 3. Title" or "### 3.4 Title". */
export function sectionNumbers(markdown: string): Set<string> {
  const s = new Set<string>();
  for (const m of markdown.matchAll(/^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s/gm)) s.add(m[1]);
  return s;
}

describe('the repository is self-contained', () => {
  it('no tracked file refers to a missing markdown file, a "../shared" directory or a missing section', () => {
    const files = trackedFiles();
    const set = new Set(files);
    const bases = new Map<string, string[]>();
    for (const f of files) {
      const b = path.posix.basename(f);
      bases.set(b, [...(bases.get(b) ?? []), f]);
    }
    const secCache = new Map<string, Set<string>>();
    const sections = (p: string) => {
      let s = secCache.get(p);
      if (!s) secCache.set(p, (s = sectionNumbers(fs.readFileSync(path.join(ROOT, p), 'utf8'))));
      return s;
    };
    expect(files).toContain('docs/kernel-sources.md');
    const problems = files
      .filter((f) => f !== 'test/unit/self-contained.test.ts')
      .flatMap((f) => problemsIn(f, fs.readFileSync(path.join(ROOT, f), 'utf8'), (p) => set.has(p), (b) => bases.get(b) ?? [], sections));
    expect(problems.map((p) => `${p.file}:${p.line}: ${p.what}`)).toEqual([]);
  });

  it('the checker finds each kind of problem', () => {
    const files = new Set(['docs/a.md', 'docs/b.md', 'lab/README.md', 'README.md', 'src/x.ts']);
    const byBase = (b: string) => [...files].filter((f) => path.posix.basename(f) === b);
    const sections = (p: string) => (p === 'docs/a.md' ? new Set(['1', '3', '3.4']) : new Set<string>());
    const check = (file: string, text: string) => problemsIn(file, text, (p) => files.has(p), byBase, sections).map((p) => p.what);
    expect(check('src/x.ts', '// see docs/a.md §3.4 and §1, lab/README.md')).toEqual([]);
    expect(check('docs/b.md', 'see a.md §3 and ../README.md')).toEqual([]);
    expect(check('src/x.ts', '// kernel-interfaces.md §2.5')).toEqual(['refers to kernel-interfaces.md, which is not in the repository']);
    expect(check('src/x.ts', '// See ../shared/docs/notes.md §0.')).toEqual([
      'refers to a "shared" directory outside the repository',
      'refers to ../shared/docs/notes.md, which is not in the repository',
    ]);
    expect(check('src/x.ts', '// docs/a.md §2.1')).toEqual(['docs/a.md has no section 2.1']);
    // URLs and public standards are not files of this repository.
    expect(check('README.md', '[toolkit](https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md)')).toEqual([]);
    expect(check('src/x.ts', '// q-values (RFC 9110 §12.4.2)')).toEqual([]);
    expect(check('src/x.ts', '// the rule of §4.1')).toEqual(['"§4.1" does not name its document on the same line']);
    expect(check('lab/README.md', 'style.md, seed-case.md, prior-art.md, lab-recipe.md')).toHaveLength(4);
    expect(check('lab/flow', '# Conditions (lab-recipe section 3)')).toEqual(['refers to "lab-recipe", a note that is not in the repository']);
  });

  it('section numbers come from numbered headings', () => {
    expect([...sectionNumbers('# T\n## 0. The path\n### 2.4 Exact lookups\n## Not numbered\n#### 10.11 x\n')].sort()).toEqual(['0', '10.11', '2.4']);
  });
});
