// Reads the deployment artifacts under deploy/ (and scripts/image-test) for the deploy tests: the
// capability set each one grants the exporter, so that one test can hold all of them to the measured
// least-privilege matrix.
import * as fs from 'fs';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';

export const REPO = path.join(__dirname, '../..');
export const DEPLOY = path.join(REPO, 'deploy');

const read = (rel: string) => fs.readFileSync(path.join(REPO, rel), 'utf8');
const norm = (caps: readonly string[]) => [...new Set(caps.map((c) => c.toUpperCase().replace(/^CAP_/, '')))].sort();

export function yamlDocs(text: string): Record<string, unknown>[] {
  return parseAllDocuments(text).map((d) => {
    if (d.errors.length) throw new Error(d.errors.map((e) => e.message).join('; '));
    return d.toJS() as Record<string, unknown>;
  }).filter((o) => o !== null);
}

interface Container {
  name: string;
  securityContext?: { capabilities?: { add?: string[]; drop?: string[] } };
}

/** Capabilities each deployment adds, without the CAP_ prefix, sorted. */
export function grantedCapabilities(): Record<string, string[]> {
  const ds = yamlDocs(read('deploy/kubernetes/base/daemonset.yaml')).find((o) => o.kind === 'DaemonSet') as
    | { spec: { template: { spec: { containers: Container[] } } } }
    | undefined;
  if (!ds) throw new Error('deploy/kubernetes/base/daemonset.yaml has no DaemonSet');
  const c = ds.spec.template.spec.containers.find((x) => x.name === 'flowpath');
  const compose = yamlDocs(read('deploy/compose/compose.yaml'))[0] as { services: Record<string, { cap_add?: string[] }> };
  const unit = read('deploy/systemd/flowpath.service');
  const unitCaps = (key: string) =>
    unit
      .split('\n')
      .filter((l) => l.startsWith(`${key}=`))
      .flatMap((l) => l.slice(key.length + 1).trim().split(/\s+/).filter(Boolean));
  const imageTest = /^CAP_ADD=\(([^)]*)\)/m.exec(read('scripts/image-test'));
  if (!imageTest) throw new Error('scripts/image-test has no CAP_ADD=(...) line');
  return {
    'kubernetes DaemonSet': norm(c?.securityContext?.capabilities?.add ?? []),
    'compose exporter': norm(compose.services.flowpath.cap_add ?? []),
    'systemd AmbientCapabilities': norm(unitCaps('AmbientCapabilities')),
    'systemd CapabilityBoundingSet': norm(unitCaps('CapabilityBoundingSet')),
    'scripts/image-test': norm(imageTest[1].split(/\s+/).filter(Boolean)),
  };
}

export const normalizeCaps = norm;

/** `--name=value` arguments as flag overrides; throws on an argument of another form. */
export function flagOverrides(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of args) {
    const m = /^--([^=]+)=(.*)$/.exec(a);
    if (!m) throw new Error(`argument "${a}" is not --name=value`);
    out[m[1]] = m[2];
  }
  return out;
}

/** How scripts/image-test runs the container: its exporter flags and its bind mounts (source -> destination). */
export function imageTestRun(): { flags: string[]; mounts: Map<string, { destination: string; ro: boolean }> } {
  const text = read('scripts/image-test');
  const run = /^podman run "\$\{run_args\[@\]\}" "\$image" \\\n((?:.*\\\n)*.*)$/m.exec(text);
  if (!run) throw new Error('scripts/image-test: no `podman run "${run_args[@]}" "$image"` command');
  const flags = [...run[1].matchAll(/--[a-z.-]+=("[^"]*"|\S+)/g)].map((m) => m[0].replace(/"/g, ''));
  const mounts = new Map<string, { destination: string; ro: boolean }>();
  for (const m of text.matchAll(/--mount "?type=bind,source=([^,]+),destination=([^,"]+)(,ro=true)?/g)) mounts.set(m[1], { destination: m[2], ro: !!m[3] });
  return { flags, mounts };
}
