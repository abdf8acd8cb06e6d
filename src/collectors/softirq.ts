// softirq: per-CPU receive-side load — the signals of "receiver softirq saturation"
// (docs/kernel-sources.md §8.1–8.3): how often each softirq ran (/proc/softirqs), CPU time by mode including
// irq and softirq (/proc/stat), every softnet_stat column (/proc/net/softnet_stat) and the CPU time of
// the ksoftirqd/N threads that softirq work spills into.
//
// Per-CPU softirq share: rate(flowpath_cpu_seconds_total{mode="softirq"}[1m])
//                        / on(cpu) sum by (cpu) (rate(flowpath_cpu_seconds_total[1m]))
// The eight modes exported (user..steal) add up to the CPU's time; guest and guest_nice are already
// inside user and nice, so they are not exported.

import { Emitter, MetricTable } from '../core/metrics';
import { procfsFlag, sysfsFlag } from '../core/paths';
import { readOnlineCpus, userHz } from '../sources/procfs/cpuinfo';
import { KsoftirqdTime, KsoftirqdTracker } from '../sources/procfs/ksoftirqd';
import { Softirqs, readSoftirqs } from '../sources/procfs/softirqs';
import { SoftnetRow, readSoftnet } from '../sources/procfs/softnet';
import { CPU_MODES, CpuTicks, readProcStatCpus } from '../sources/procfs/stat';
import { CollectorDef } from './registry';

const softnet = new MetricTable<SoftnetRow>(['cpu'], [
  ['flowpath_softnet_processed_packets_total', 'counter', 'Packets taken off the input path by this CPU (softnet_stat column 1; a GRO super-packet counts once; u32, wraps).', (r) => r.processed],
  ['flowpath_softnet_dropped_packets_total', 'counter', 'Packets dropped because the per-CPU backlog was full (netdev_max_backlog) or flow-limited (column 2).', (r) => r.dropped],
  ['flowpath_softnet_time_squeeze_total', 'counter', 'Times net_rx_action ran out of netdev_budget packets or netdev_budget_usecs with work left (column 3). Rising = RX softirq saturated.', (r) => r.timeSqueeze],
  ['flowpath_softnet_cpu_collision_total', 'counter', 'TX lock collisions (column 9; always 0 on current kernels).', (r) => r.cpuCollision],
  ['flowpath_softnet_received_rps_total', 'counter', 'RPS inter-processor interrupts received: this CPU was woken to process packets steered to it (column 10).', (r) => r.receivedRps],
  ['flowpath_softnet_flow_limit_count_total', 'counter', 'Packets dropped by the per-CPU flow limit (column 11).', (r) => r.flowLimitCount],
  ['flowpath_softnet_backlog_packets', 'gauge', 'Packets in the per-CPU backlog now, input_pkt_queue + process_queue (column 12, Linux ≈5.10+).', (r) => r.backlogLen],
  ['flowpath_softnet_input_queue_packets', 'gauge', 'Packets in input_pkt_queue now (column 14, Linux 6.4+).', (r) => r.inputQueueLen],
  ['flowpath_softnet_process_queue_packets', 'gauge', 'Packets in process_queue now (column 15, Linux 6.4+).', (r) => r.processQueueLen],
]);

interface Count {
  value: number;
}
const softirqRuns = new MetricTable<Count>(['cpu', 'vector'], [
  ['flowpath_softirqs_total', 'counter', 'Times each softirq vector ran on each CPU (/proc/softirqs; counts, not time). NET_RX rising on one CPU only = one RX queue does all the work.', (c) => c.value],
]);

const EXPORTED_MODES = CPU_MODES.slice(0, 8); // user nice system idle iowait irq softirq steal
const cpuSeconds = new MetricTable<Count>(['cpu', 'mode'], [
  ['flowpath_cpu_seconds_total', 'counter', 'CPU time by mode from /proc/stat (user, nice, system, idle, iowait, irq, softirq, steal; guest time is inside user/nice). irq/softirq are tick-sampled unless CONFIG_IRQ_TIME_ACCOUNTING.', (c) => c.value],
]);

const ksoftirqd = new MetricTable<KsoftirqdTime & { seconds: number }>(['cpu'], [
  ['flowpath_ksoftirqd_cpu_seconds_total', 'counter', 'CPU time (user+system) of the ksoftirqd/N thread: softirq work deferred out of interrupt context on this CPU.', (k) => k.seconds],
]);

export function emitSoftnet(out: Emitter, rows: readonly SoftnetRow[]): void {
  for (const r of rows) softnet.emit(out, r, [String(r.cpu)]);
}

export function emitSoftirqs(out: Emitter, s: Softirqs): void {
  const cpus = s.cpus.map(String);
  const c: Count = { value: 0 };
  for (const v of s.vectors) {
    for (let i = 0; i < cpus.length; i++) {
      c.value = v.counts[i];
      softirqRuns.emit(out, c, [cpus[i], v.name]);
    }
  }
}

export function emitCpuSeconds(out: Emitter, cpus: readonly CpuTicks[], hz: number): void {
  const c: Count = { value: 0 };
  for (const t of cpus) {
    const cpu = String(t.cpu);
    for (let m = 0; m < EXPORTED_MODES.length && m < t.ticks.length; m++) {
      c.value = t.ticks[m] / hz;
      cpuSeconds.emit(out, c, [cpu, EXPORTED_MODES[m]]);
    }
  }
}

export function emitKsoftirqd(out: Emitter, threads: readonly KsoftirqdTime[], hz: number): void {
  for (const k of threads) ksoftirqd.emit(out, { ...k, seconds: k.ticks / hz }, [String(k.cpu)]);
}

export interface SoftirqOptions {
  /** USER_HZ; default: this kernel's (auxv AT_CLKTCK). */
  userHz?: number;
}

export function makeSoftirqCollector(opts: SoftirqOptions = {}): CollectorDef {
  return {
    name: 'softirq',
    description:
      'Per-CPU softirq load: /proc/softirqs run counts, /proc/stat CPU seconds by mode (irq, softirq, ...), every /proc/net/softnet_stat column, and ksoftirqd/N CPU seconds.',
    defaultEnabled: true,
    metrics: [...softnet.descs, ...softirqRuns.descs, ...cpuSeconds.descs, ...ksoftirqd.descs],
    create({ config }) {
      const procfs = config.get(procfsFlag);
      const sysfs = config.get(sysfsFlag);
      const tracker = new KsoftirqdTracker(procfs);
      const hz = opts.userHz ?? userHz();
      return {
        async collect(out: Emitter, ctx) {
          const stat = readProcStatCpus(procfs);
          const softirqs = readSoftirqs(procfs);
          const sn = readSoftnet(procfs, sysfs);
          const online = readOnlineCpus(sysfs) ?? stat.map((c) => c.cpu);
          const threads = tracker.read(ctx.now, online);
          emitSoftnet(out, sn);
          emitSoftirqs(out, softirqs);
          emitCpuSeconds(out, stat, hz);
          emitKsoftirqd(out, threads, hz);
        },
      };
    },
  };
}

export const softirqCollector = makeSoftirqCollector();
