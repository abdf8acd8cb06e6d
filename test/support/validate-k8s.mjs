// Validate Kubernetes objects (YAML on stdin, several documents) against the schemas of kubernetes-models
// and, for monitoring.coreos.com, @kubernetes-models/prometheus-operator. Prints a JSON array with one
// entry per object: { apiVersion, kind, name, error } (error null when valid). An apiVersion/kind that
// neither package models is an error: nothing is waved through unvalidated.
// ESM because both packages are ESM-only (jest runs this in a child process).
import { parseAllDocuments } from 'yaml';

const text = await new Promise((resolve) => {
  let s = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (c) => (s += c));
  process.stdin.on('end', () => resolve(s));
});

function modulePath(apiVersion, kind) {
  if (apiVersion.startsWith('monitoring.coreos.com/')) return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

const out = [];
for (const doc of parseAllDocuments(text)) {
  const obj = doc.toJS();
  if (obj === null || obj === undefined) continue;
  const entry = { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata?.name ?? null, error: null };
  try {
    if (doc.errors.length) throw new Error(doc.errors.map((e) => e.message).join('; '));
    const mod = await import(modulePath(obj.apiVersion, obj.kind));
    const Model = mod[obj.kind] ?? mod.default;
    if (typeof Model !== 'function') throw new Error(`no model for ${obj.apiVersion} ${obj.kind}`);
    new Model(obj).validate();
  } catch (e) {
    entry.error = String(e && e.message ? e.message : e);
  }
  out.push(entry);
}
process.stdout.write(JSON.stringify(out));
