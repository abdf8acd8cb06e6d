// sysctl: the kernel settings that bound one TCP flow's throughput (docs/kernel-sources.md §8.6), read at
// every scrape (they can change at any time; never assume defaults).
//
// Design: two families with the sysctl name as a label, not one family per sysctl.
//   flowpath_sysctl_value{name="net.ipv4.tcp_rmem",index="2"} 33554432   numeric values; a triple is
//                                                                        three series, index 0..2
//   flowpath_sysctl_info{name="net.ipv4.tcp_congestion_control",value="bbr"} 1   string values
// Why: the set is open-ended (--collector.sysctl.include adds any sysctl), and every family must be
// declared for the catalogue, so a per-sysctl family could not exist for user-added names; the name label
// is the exact sysctl(8) name, so a value can be compared with `sysctl -n` and grepped in the kernel
// documentation. Values are exported as the kernel prints them (bytes, packets, microseconds, percent,
// pages for tcp_mem) — the unit belongs to the sysctl, see Documentation/networking/ip-sysctl.rst.
// A sysctl this kernel (or network namespace) does not have is skipped; any other read error fails
// the collector.

import { Emitter, gauge } from '../core/metrics';
import { FlagDef, UsageError, listFlag } from '../core/flags';
import { procfsFlag } from '../core/paths';
import { SysctlValue, readSysctl, sysctlPath } from '../sources/procfs/sysctl';
import { CollectorDef } from './registry';

/** Sysctls read by default: what bounds a single flow (sender buffers, pacing, qdisc, RX budget). */
export const DEFAULT_SYSCTLS: readonly string[] = [
  // congestion control and pacing
  'net.ipv4.tcp_congestion_control',
  'net.ipv4.tcp_available_congestion_control',
  'net.ipv4.tcp_pacing_ss_ratio',
  'net.ipv4.tcp_pacing_ca_ratio',
  'net.core.default_qdisc',
  // socket buffers and autotuning
  'net.ipv4.tcp_wmem',
  'net.ipv4.tcp_rmem',
  'net.ipv4.tcp_mem',
  'net.core.wmem_max',
  'net.core.rmem_max',
  'net.core.wmem_default',
  'net.core.rmem_default',
  'net.ipv4.tcp_moderate_rcvbuf',
  'net.ipv4.tcp_adv_win_scale',
  'net.ipv4.tcp_window_scaling',
  // how much the sender keeps below TCP
  'net.ipv4.tcp_limit_output_bytes',
  'net.ipv4.tcp_notsent_lowat',
  'net.ipv4.tcp_autocorking',
  'net.ipv4.tcp_min_tso_segs',
  'net.ipv4.tcp_tso_rtt_log',
  'net.ipv4.tcp_tso_win_divisor',
  // loss recovery and idle behaviour
  'net.ipv4.tcp_slow_start_after_idle',
  'net.ipv4.tcp_sack',
  'net.ipv4.tcp_timestamps',
  'net.ipv4.tcp_ecn',
  'net.ipv4.tcp_mtu_probing',
  'net.ipv4.tcp_no_metrics_save',
  // receive path budget
  'net.core.netdev_budget',
  'net.core.netdev_budget_usecs',
  'net.core.netdev_max_backlog',
  'net.core.dev_weight',
  'net.core.flow_limit_table_len',
  'net.core.rps_sock_flow_entries',
];

const includeList = listFlag(
  'collector.sysctl.include',
  'Additional sysctl to export, by its sysctl(8) name (e.g. net.ipv4.tcp_reordering)',
  '<name>',
);
export const sysctlIncludeFlag: FlagDef<readonly string[]> = {
  ...includeList,
  parse(raw, prev) {
    try {
      sysctlPath(raw);
    } catch (e) {
      throw new UsageError(`--collector.sysctl.include: ${(e as Error).message}`);
    }
    return includeList.parse(raw, prev);
  },
};

export const sysctlValue = gauge(
  'flowpath_sysctl_value',
  'Numeric sysctl value as the kernel prints it (unit of the sysctl: bytes, packets, µs, %, pages for tcp_mem); multi-value sysctls such as tcp_rmem have one series per index (0 = min, 1 = default, 2 = max).',
  ['name', 'index'],
);
export const sysctlInfo = gauge('flowpath_sysctl_info', 'String sysctl value (e.g. the default congestion control); value 1.', ['name', 'value']);

export function emitSysctls(out: Emitter, values: readonly SysctlValue[]): void {
  for (const v of values) {
    if ('numbers' in v) v.numbers.forEach((n, i) => out.add(sysctlValue, [v.name, String(i)], n));
    else out.add(sysctlInfo, [v.name, v.text], 1);
  }
}

export const sysctlCollector: CollectorDef = {
  name: 'sysctl',
  description: 'Sysctls that bound single-flow throughput (buffers, pacing, congestion control, default qdisc, netdev budget), plus --collector.sysctl.include.',
  defaultEnabled: true,
  metrics: [sysctlValue, sysctlInfo],
  flags: [sysctlIncludeFlag],
  create({ config }) {
    const procfs = config.get(procfsFlag);
    const names = [...new Set([...DEFAULT_SYSCTLS, ...config.get(sysctlIncludeFlag)])];
    return {
      async collect(out: Emitter) {
        const values: SysctlValue[] = [];
        for (const n of names) {
          const v = readSysctl(procfs, n);
          if (v) values.push(v);
        }
        if (values.length === 0) throw new Error(`none of ${names.length} sysctls exists under ${procfs}/sys`);
        emitSysctls(out, values);
      },
    };
  },
};
