// Parsers for `coverage/show` and `coverage/read-counter NAME` (lib/coverage.c). Pure.
//
//   Event coverage, avg rate over last: 5 seconds, last minute, last hour,  hash=dbcfb9f3:
//   bridge_reconfigure         0.6/sec     0.383/sec        0.0064/sec   total: 23
//   ...
//   104 events never hit
//
// coverage/show lists only counters whose total is non-zero; the others are summed up in the "N events
// never hit" line. So for a counter that exists in this build, "absent from coverage/show" means 0 (OVS
// says so); for a counter this build does not have, absence means nothing. `coverage/read-counter NAME`
// tells the two apart: it answers the total (e.g. "0\n") or the error "No such counter".

import { OvsParseError } from './parse-dpctl';

export interface CoverageShow {
  /** Counter name -> total since ovs-vswitchd started. Only counters that fired. */
  totals: Map<string, number>;
  /** "N events never hit". */
  neverHit?: number;
  unparsed: string[];
}

export function parseCoverageShow(text: string): CoverageShow {
  const totals = new Map<string, number>();
  const out: CoverageShow = { totals, unparsed: [] };
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('Event coverage')) return;
    let m = /^(\w+)\s+[\d.]+\/sec\s+[\d.]+\/sec\s+[\d.]+\/sec\s+total: (\d+)$/.exec(line);
    if (m) {
      totals.set(m[1], Number(m[2]));
      return;
    }
    m = /^(\d+) events never hit$/.exec(line);
    if (m) {
      out.neverHit = Number(m[1]);
      return;
    }
    out.unparsed.push(`line ${i + 1}: ${raw}`);
  });
  return out;
}

/** The reply of coverage/read-counter: one unsigned integer. */
export function parseReadCounter(text: string, name: string): number {
  const m = /^\s*(\d+)\s*$/.exec(text);
  if (!m) throw new OvsParseError(`coverage/read-counter ${name}`, 1, 'not a number', text);
  return Number(m[1]);
}

/**
 * Coverage counters that explain slow paths and drops. Exported as flowpath_ovs_coverage_events_total
 * {event}. Names are OVS's own (COVERAGE_DEFINE in ofproto/ofproto-dpif-upcall.c, ofproto-dpif-xlate.c,
 * lib/dpif.c, lib/netlink-socket.c, lib/dpif-netdev.c, lib/odp-execute.c). A counter this OVS build does
 * not define is not exported.
 */
export const CURATED_COVERAGE: readonly string[] = [
  // Upcalls and the flow limit (ofproto-dpif-upcall.c)
  'upcall_flow_limit_hit',
  'upcall_flow_limit_kill',
  'upcall_flow_limit_grew',
  'upcall_flow_limit_reduced',
  'upcall_flow_limit_scaled',
  'upcall_ukey_contention',
  'upcall_ukey_replace',
  'handler_duplicate_upcall',
  'revalidate_missed_dp_flow',
  'dumped_duplicate_flow',
  'dumped_new_flow',
  // Translation (ofproto-dpif-xlate.c)
  'xlate_actions',
  'xlate_actions_oversize',
  'xlate_actions_too_many_output',
  // Datapath interface (dpif.c)
  'dpif_flow_put',
  'dpif_flow_put_error',
  'dpif_flow_del',
  'dpif_execute',
  'dpif_execute_error',
  'dpif_execute_with_help',
  // Netlink to the kernel datapath (netlink-socket.c)
  'netlink_overflow',
  'netlink_received',
  'netlink_recv_jumbo',
  'netlink_sent',
  // Userspace datapath drops (dpif-netdev.c)
  'datapath_drop_meter',
  'datapath_drop_upcall_error',
  'datapath_drop_lock_error',
  'datapath_drop_userspace_action_error',
  'datapath_drop_tunnel_push_error',
  'datapath_drop_tunnel_pop_error',
  'datapath_drop_recirc_error',
  'datapath_drop_invalid_port',
  'datapath_drop_invalid_bond',
  'datapath_drop_invalid_tnl_port',
  'datapath_drop_rx_invalid_packet',
  'datapath_drop_hw_miss_recover',
  'datapath_drop_sample_error',
  'datapath_drop_nsh_decap_error',
  // Explicit drop actions (odp-execute.c / xlate drop reasons)
  'drop_action_of_pipeline',
  'drop_action_bridge_not_found',
  'drop_action_recursion_too_deep',
  'drop_action_too_many_resubmit',
  'drop_action_stack_too_deep',
  'drop_action_no_recirculation_context',
  'drop_action_recirculation_conflict',
  'drop_action_too_many_mpls_labels',
  'drop_action_invalid_tunnel_metadata',
  'drop_action_unsupported_packet_type',
  'drop_action_congestion',
  'drop_action_forwarding_disabled',
  'drop_action_tunnel_routing_failed',
  'drop_action_tunnel_output_no_ethernet',
  'drop_action_tunnel_neigh_cache_miss',
  'drop_action_tunnel_header_build_failed',
  // Packets through the netdev layer (netdev.c): sent/received totals for context
  'netdev_received',
  'netdev_sent',
];
