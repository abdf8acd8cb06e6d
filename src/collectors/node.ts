// node: what machine this is — kernel release and version, CPU model, CPU count. The identity is read
// once (on the first scrape, retried until it succeeds) and then served from memory, so /proc/cpuinfo
// (large on big machines) stays out of the scrape path; only the online CPU count (a one-line sysfs
// file) is read per scrape, since CPUs can be hot-plugged.

import * as os from 'os';
import { Emitter, gauge } from '../core/metrics';
import { procfsFlag, sysfsFlag } from '../core/paths';
import { readCpuinfo, readKernelInfo, readOnlineCpus, readPossibleCpus } from '../sources/procfs/cpuinfo';
import { CollectorDef } from './registry';

export const nodeInfo = gauge(
  'flowpath_node_info',
  'Kernel and CPU identity of the node; value 1. cpu_model lists distinct models joined by "; ".',
  ['kernel_release', 'kernel_version', 'machine', 'cpu_model'],
);
export const nodeCpus = gauge('flowpath_node_cpus', 'Number of CPUs by state: online (running now) and possible (including offline/hot-pluggable).', ['state']);

interface Identity {
  labels: string[];
  cpuinfoProcessors: number;
}

export const nodeCollector: CollectorDef = {
  name: 'node',
  description: 'Node identity: kernel release/version, machine, CPU model and CPU count.',
  defaultEnabled: true,
  metrics: [nodeInfo, nodeCpus],
  create({ config }) {
    const procfs = config.get(procfsFlag);
    const sysfs = config.get(sysfsFlag);
    let ident: Identity | null = null;
    const load = (): Identity => {
      const k = readKernelInfo(procfs);
      const c = readCpuinfo(procfs);
      return { labels: [k.release, k.version, os.machine(), c.models.join('; ')], cpuinfoProcessors: c.processors };
    };
    return {
      async collect(out: Emitter) {
        ident ??= load();
        out.add(nodeInfo, ident.labels, 1);
        const online = readOnlineCpus(sysfs);
        out.add(nodeCpus, ['online'], online ? online.length : ident.cpuinfoProcessors);
        const possible = readPossibleCpus(sysfs);
        if (possible) out.add(nodeCpus, ['possible'], possible.length);
      },
    };
  },
};
