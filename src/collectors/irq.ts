// irq: where the packets of a NIC are processed (docs/kernel-sources.md §0, receive step 1: "hard IRQ on CPU X (queue
// affinity). No RPS: the flow is always processed on the same CPU"). For each selected NIC: its
// interrupts, the queue each one serves, the CPUs it is delivered to, interrupt counts, and the RPS / XPS
// steering of each queue.
//
// Which CPU handles RX queue Q of eth0, and is RPS off for it?
//   flowpath_irq_rx_queue_cpu_info{device="eth0"}
//     * on(instance, device, queue) group_left() (flowpath_rps_cpus{device="eth0"} == bool 0)
// one series per RX queue and CPU, labelled {device, queue, irq, cpu}; value 1 = RPS off (the packets of
// that queue are processed on that CPU), 0 = RPS spreads them (see flowpath_rps_info{cpus}).
//
// IRQ → queue, most robust first: netdev genl NAPI_GET/QUEUE_GET (drivers that register the NAPI IRQ),
// else the handler name (irqQueueRole in sources/procfs/interrupts.ts). A NIC's IRQs are its PCI
// function's MSI vectors (msi_irqs/); devices without MSI are matched by device name in the handler names.
// That topology (bus device, MSI vectors, NAPI/queue roles) is cached per ifindex for
// --collector.irq.topology-ttl (30 s), and so are the RPS/XPS settings of its queues (configuration, a
// few files per queue: on a 64-queue NIC ~250 reads a scrape); counts and affinities are read on every
// scrape.
//
// Interrupt counts per CPU: an IRQ × CPU matrix is unbounded on large machines (64 vectors × 256 CPUs), so
// by default (--collector.irq.per-cpu=nonzero) only CPUs that have handled the IRQ at least once since
// boot get a series: with pinned affinity that is one or two CPUs per vector, at most the online CPUs if
// irqbalance moves it around. The per-IRQ total is always exported.

import { durationFlag, enumFlag } from '../core/flags';
import { Emitter, counter, gauge } from '../core/metrics';
import { StateLogger } from '../core/log';
import { procfsFlag, sysfsFlag } from '../core/paths';
import { DEVICE_FLAGS, NetDevice, deviceExcludeFlag, deviceIncludeFlag, selectDevices } from '../sources/devices';
import { LinkLookup } from '../sources/netlink/rtnl-link';
import { NetdevGenlClient, NapiInfo, QueueInfo } from '../sources/netlink/netdev-genl';
import { NetlinkError } from '../sources/netlink/socket';
import {
  IrqDetails,
  IrqQueueRole,
  ProcInterrupts,
  irqQueueRole,
  readIrq,
  readPossibleCpus,
  readProcInterrupts,
} from '../sources/procfs/interrupts';
import { NetdevQueues, formatCpuList, readDeviceIrqs, readNetdevQueues, readRpsSockFlowEntries } from '../sources/sysfs/netdev';
import { Collector, CollectorContext, CollectorDef } from './registry';

export type PerCpuMode = 'nonzero' | 'all' | 'none';
export const irqPerCpuFlag = enumFlag<PerCpuMode>(
  'collector.irq.per-cpu',
  'nonzero',
  ['nonzero', 'all', 'none'],
  'Per-CPU interrupt counts of NIC IRQs: only CPUs with a non-zero count since boot (bounded by the CPUs that ever handled the IRQ), every online/possible CPU, or none (per-IRQ totals only).',
);

export const irqTopologyTtlFlag = durationFlag(
  'collector.irq.topology-ttl',
  30,
  'How long the interrupt topology of a device (its bus device and MSI vectors, msi_irqs/; the IRQ → queue mapping from netdev genl QUEUE_GET/NAPI_GET) is reused before it is read again. The RPS/XPS settings of its queues (rps_cpus, rps_flow_cnt, xps_cpus, xps_rxqs) are reused for as long. A device with a new ifindex is always read at once; interrupt counts and affinities are read every scrape. 0 = every scrape.',
);

const irqInfo = gauge('flowpath_irq_info', 'A NIC interrupt and what it serves; value 1. role: rx, tx, combined (rx+tx of the same queue number) or other (config, async, link); queue: queue index ("" for other); action: handler name.', [
  'device',
  'irq',
  'action',
  'role',
  'queue',
]);
const irqEffective = gauge('flowpath_irq_effective_cpu_info', 'CPU the IRQ is actually delivered to (/proc/irq/N/effective_affinity_list); value 1, one series per CPU.', ['device', 'irq', 'cpu']);
const irqAffinity = gauge('flowpath_irq_affinity_info', 'Allowed CPUs of the IRQ (/proc/irq/N/smp_affinity_list) as a CPU list in the cpus label; value 1.', ['device', 'irq', 'cpus']);
const irqTotal = counter('flowpath_irq_interrupts_total', 'Interrupts of this IRQ summed over CPUs (drops back if a CPU that handled it goes offline).', ['device', 'irq']);
const irqPerCpu = counter('flowpath_irq_cpu_interrupts_total', 'Interrupts of this IRQ on this CPU (see --collector.irq.per-cpu for which CPUs are listed).', ['device', 'irq', 'cpu']);
const rxQueueCpu = gauge(
  'flowpath_irq_rx_queue_cpu_info',
  'RX queue → the CPU its interrupt (and so its NAPI softirq) runs on: one series per RX queue and effective CPU; value 1. Join with flowpath_rps_cpus on (device, queue).',
  ['device', 'queue', 'irq', 'cpu'],
);
const rpsCpus = gauge('flowpath_rps_cpus', 'Number of CPUs in queues/rx-N/rps_cpus; 0 = RPS off for this RX queue.', ['device', 'queue']);
const rpsInfo = gauge('flowpath_rps_info', 'RPS CPU list of this RX queue (cpus="" when off); value 1.', ['device', 'queue', 'cpus']);
const rpsFlowCnt = gauge('flowpath_rps_flow_entries', 'RFS flow table size of this RX queue (queues/rx-N/rps_flow_cnt); 0 = RFS off for the queue.', ['device', 'queue']);
const rpsSockFlow = gauge('flowpath_rps_sock_flow_entries', 'Global RFS socket flow table size (net.core.rps_sock_flow_entries); 0 = RFS off.', []);
const xpsCpus = gauge('flowpath_xps_cpus', 'Number of CPUs in queues/tx-N/xps_cpus; 0 = no XPS CPU map for this TX queue. Absent on single-queue devices.', ['device', 'queue']);
const xpsInfo = gauge('flowpath_xps_info', 'XPS maps of this TX queue as lists: cpus (xps_cpus), rxqs (xps_rxqs); value 1.', ['device', 'queue', 'cpus', 'rxqs']);

export const IRQ_METRICS = [irqInfo, irqEffective, irqAffinity, irqTotal, irqPerCpu, rxQueueCpu, rpsCpus, rpsInfo, rpsFlowCnt, rpsSockFlow, xpsCpus, xpsInfo];

export interface IrqRole {
  role: IrqQueueRole;
  queue?: number;
}

/**
 * IRQ → roles from the netdev genl queue and NAPI lists (pure). Queues sharing a NAPI with the same index
 * in both directions are "combined". Returns an empty map when no NAPI carries an IRQ.
 */
export function rolesFromNapi(queues: readonly QueueInfo[], napis: readonly NapiInfo[]): Map<number, IrqRole[]> {
  const irqOfNapi = new Map<number, number>();
  for (const n of napis) if (n.irq !== undefined) irqOfNapi.set(n.id, n.irq);
  const byIrq = new Map<number, { rx: Set<number>; tx: Set<number> }>();
  for (const q of queues) {
    if (q.napiId === undefined) continue;
    const irq = irqOfNapi.get(q.napiId);
    if (irq === undefined) continue;
    let e = byIrq.get(irq);
    if (!e) byIrq.set(irq, (e = { rx: new Set(), tx: new Set() }));
    e[q.type].add(q.id);
  }
  const out = new Map<number, IrqRole[]>();
  for (const [irq, { rx, tx }] of byIrq) {
    const roles: IrqRole[] = [];
    for (const q of [...new Set([...rx, ...tx])].sort((a, b) => a - b)) {
      roles.push({ role: rx.has(q) && tx.has(q) ? 'combined' : rx.has(q) ? 'rx' : 'tx', queue: q });
    }
    out.set(irq, roles);
  }
  return out;
}

/** Word-boundary match of a device name inside a handler name ("eth0" in "eth0-TxRx-0", not in "eth01"). */
export function actionMentions(action: string, dev: string): boolean {
  const esc = dev.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^A-Za-z0-9])${esc}([^A-Za-z0-9]|$)`).test(action);
}

export interface DeviceIrqs {
  device: string;
  irqs: Array<IrqDetails & { roles: IrqRole[] }>;
}

/** Emit one device's IRQ series (pure). */
export function emitDeviceIrqs(out: Emitter, d: DeviceIrqs, mode: PerCpuMode): void {
  for (const q of d.irqs) {
    const irq = String(q.irq);
    const action = q.actions.join(',');
    for (const r of q.roles) out.add(irqInfo, [d.device, irq, action, r.role, r.queue === undefined ? '' : String(r.queue)], 1);
    for (const c of q.effectiveAffinity ?? []) out.add(irqEffective, [d.device, irq, String(c)], 1);
    if (q.affinity) out.add(irqAffinity, [d.device, irq, formatCpuList(q.affinity)], 1);
    let total = 0;
    for (const v of q.perCpu.values()) total += v;
    out.add(irqTotal, [d.device, irq], total);
    if (mode !== 'none') {
      for (const [cpu, v] of [...q.perCpu].sort((a, b) => a[0] - b[0])) {
        if (mode === 'nonzero' && v === 0) continue;
        out.add(irqPerCpu, [d.device, irq, String(cpu)], v);
      }
    }
  }
  // RX queue → CPU convenience series.
  const rows: Array<[number, number, number]> = [];
  for (const q of d.irqs) {
    for (const r of q.roles) {
      if ((r.role === 'rx' || r.role === 'combined') && r.queue !== undefined) {
        for (const c of q.effectiveAffinity ?? []) rows.push([r.queue, q.irq, c]);
      }
    }
  }
  rows.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  for (const [queue, irq, cpu] of rows) out.add(rxQueueCpu, [d.device, String(queue), String(irq), String(cpu)], 1);
}

export interface IrqDeps {
  netdev: Pick<NetdevGenlClient, 'queues' | 'napis'> & { close?(): void };
  /** Where devices come from (default: see SelectOptions.links). */
  links?: LinkLookup | null;
}

export function createIrqCollector(ctx: CollectorContext, deps?: Partial<IrqDeps>): Collector {
  const { config, log } = ctx;
  const sysfs = config.get(sysfsFlag);
  const procfs = config.get(procfsFlag);
  const include = config.get(deviceIncludeFlag);
  const exclude = config.get(deviceExcludeFlag);
  const mode = config.get(irqPerCpuFlag);
  const topologyTtlMs = config.get(irqTopologyTtlFlag) * 1000;
  let netdev = deps?.netdev;
  const states = new StateLogger(log);
  const napiUnsupported = new Set<number>();
  let napiFamilyMissing = false;

  /** IRQ → roles from netdev genl; `final` is false when the answer was a transient failure (ask again). */
  async function napiRoles(d: NetDevice): Promise<{ roles: Map<number, IrqRole[]>; final: boolean }> {
    if (napiFamilyMissing || napiUnsupported.has(d.ifindex)) return { roles: new Map(), final: true };
    netdev ??= new NetdevGenlClient();
    try {
      const [queues, napis] = await Promise.all([netdev.queues(d.ifindex, d.name), netdev.napis(d.ifindex, d.name)]);
      states.report(`${d.name}/napi`, null);
      return { roles: rolesFromNapi(queues, napis), final: true };
    } catch (e) {
      const code = e instanceof NetlinkError ? e.code : undefined;
      if (code === 'EOPNOTSUPP' || code === 'EINVAL') napiUnsupported.add(d.ifindex);
      else if (code === 'ENOENT' && /family lookup/.test((e as Error).message)) napiFamilyMissing = true;
      else if (code !== 'ENODEV') states.report(`${d.name}/napi`, e, { device: d.name }); // fall back to handler names
      return { roles: new Map(), final: code === 'EOPNOTSUPP' || code === 'EINVAL' };
    }
  }

  // Interrupt topology per ifindex (bus device + MSI vectors, IRQ → queue roles), reused for
  // --collector.irq.topology-ttl: it only changes when the driver re-allocates its vectors or queues.
  interface Topology {
    at: number;
    bus: Awaited<ReturnType<typeof readDeviceIrqs>>;
    roles: Map<number, IrqRole[]>;
    queues: NetdevQueues | null;
  }
  const topologies = new Map<number, Topology>();
  async function topology(d: NetDevice): Promise<Omit<Topology, 'at'>> {
    const now = Date.now();
    const hit = topologies.get(d.ifindex);
    if (hit && now - hit.at < topologyTtlMs) return hit;
    const [bus, napi, queues] = await Promise.all([readDeviceIrqs(sysfs, d.name), napiRoles(d), readNetdevQueues(sysfs, d.name)]);
    if (topologyTtlMs > 0 && napi.final && queues) topologies.set(d.ifindex, { at: now, bus, roles: napi.roles, queues });
    else topologies.delete(d.ifindex);
    return { bus, roles: napi.roles, queues };
  }

  return {
    async collect(out) {
      const devices = await selectDevices(sysfs, include, exclude, deps?.links === undefined ? { log } : { links: deps.links, log });
      const live = new Set(devices.map((d) => d.ifindex));
      for (const i of [...napiUnsupported]) if (!live.has(i)) napiUnsupported.delete(i);
      for (const i of [...topologies.keys()]) if (!live.has(i)) topologies.delete(i);

      const possibleCpus = await readPossibleCpus(sysfs);
      let proc: Promise<ProcInterrupts> | undefined;
      const procInterrupts = () => (proc ??= readProcInterrupts(procfs));
      const irqCtx = { procfs, sysfs, possibleCpus, procInterrupts };

      const perDevice = await Promise.all(
        devices.map(async (d) => {
          const { bus, roles, queues } = await topology(d);
          let irqNumbers: number[] = bus?.msiIrqs ?? [];
          if (bus && irqNumbers.length === 0) {
            // No MSI: legacy INTx or platform device; find its lines by name.
            irqNumbers = (await procInterrupts()).rows.filter((r) => r.actions.some((a) => actionMentions(a, d.name))).map((r) => r.irq);
          }
          const details = (await Promise.all(irqNumbers.map((n) => readIrq(irqCtx, n)))).filter((x): x is IrqDetails => x !== undefined);
          const irqs = details.map((q) => {
            const fromNapi = roles.get(q.irq);
            if (fromNapi && fromNapi.length) return { ...q, roles: fromNapi };
            const byName = q.actions.map(irqQueueRole).filter((r) => r.role !== 'other');
            return { ...q, roles: byName.length ? byName : [{ role: 'other' as const }] };
          });
          return { d, irqs, queues };
        }),
      );

      for (const { d, irqs } of perDevice) emitDeviceIrqs(out, { device: d.name, irqs }, mode);
      for (const { d, queues } of perDevice) {
        for (const q of queues?.rx ?? []) {
          const qs = String(q.queue);
          if (q.rpsCpus !== undefined) {
            out.add(rpsCpus, [d.name, qs], q.rpsCpus.length);
            out.add(rpsInfo, [d.name, qs, formatCpuList(q.rpsCpus)], 1);
          }
          out.add(rpsFlowCnt, [d.name, qs], q.rpsFlowCnt);
        }
      }
      for (const { d, queues } of perDevice) {
        for (const q of queues?.tx ?? []) {
          const qs = String(q.queue);
          if (q.xpsCpus !== undefined) out.add(xpsCpus, [d.name, qs], q.xpsCpus.length);
          if (q.xpsCpus !== undefined || q.xpsRxqs !== undefined) {
            out.add(xpsInfo, [d.name, qs, q.xpsCpus ? formatCpuList(q.xpsCpus) : '', q.xpsRxqs ? formatCpuList(q.xpsRxqs) : ''], 1);
          }
        }
      }
      out.add(rpsSockFlow, [], await readRpsSockFlowEntries(procfs));
    },
    close() {
      netdev?.close?.();
    },
  };
}

export const irqCollector: CollectorDef = {
  name: 'irq',
  description:
    'For each selected NIC: its interrupts, the queue each serves, effective CPU affinity and interrupt counts; RPS (rps_cpus, rps_flow_cnt, rps_sock_flow_entries) and XPS per queue.',
  defaultEnabled: true,
  metrics: IRQ_METRICS,
  flags: [...DEVICE_FLAGS, irqPerCpuFlag, irqTopologyTtlFlag],
  create: (ctx) => createIrqCollector(ctx),
};
