// netstat: the node-wide TCP/IP MIB counters that explain lost throughput (docs/kernel-sources.md §8.7),
// from /proc/net/netstat (TcpExt, IpExt) and /proc/net/snmp (Tcp, Ip), zipped by name because the set
// and order of fields change between kernels. A field this kernel does not print is not exported.
//
// Names: flowpath_netstat_<group>_<field>_total in snake_case (TcpExt TCPBacklogDrop ->
// flowpath_netstat_tcpext_backlog_drop_total); every help text ends with the kernel's exact spelling, as
// `nstat` prints it and include/uapi/linux/snmp.h documents it, so either can be grepped.

import { Emitter, MetricDesc, counter, gauge } from '../core/metrics';
import { procfsFlag } from '../core/paths';
import { NetstatGroups, readNetstat } from '../sources/procfs/netstat';
import { CollectorDef } from './registry';

interface Field {
  group: string;
  field: string;
  desc: MetricDesc;
  /** Multiplier to base units (ms -> s). */
  scale: number;
}

// [group, kernel field, metric name part, help]; all counters (events, packets, segments, bytes). The
// name part is the field in snake_case, without the "TCP" prefix the TcpExt group already implies.
const FIELDS: ReadonlyArray<[string, string, string, string]> = [
  // retransmissions and loss recovery (sender)
  ['Tcp', 'RetransSegs', 'retrans_segs', 'Segments retransmitted.'],
  ['Tcp', 'OutSegs', 'out_segs', 'Segments sent (including retransmissions).'],
  ['Tcp', 'InSegs', 'in_segs', 'Segments received.'],
  ['Tcp', 'InErrs', 'in_errs', 'Segments received with errors (bad checksum, ...).'],
  ['Tcp', 'OutRsts', 'out_rsts', 'RST segments sent.'],
  ['Tcp', 'EstabResets', 'estab_resets', 'Connections reset from ESTABLISHED or CLOSE-WAIT.'],
  ['Tcp', 'InCsumErrors', 'in_csum_errors', 'Segments received with a bad checksum.'],
  ['TcpExt', 'TCPOrigDataSent', 'orig_data_sent', 'Original (not retransmitted) data segments sent; denominator for a retransmit ratio.'],
  ['TcpExt', 'TCPTimeouts', 'timeouts', 'Retransmission timeouts (RTO) fired.'],
  ['TcpExt', 'TCPSpuriousRTOs', 'spurious_rtos', 'RTOs later found spurious by F-RTO: delay spikes, not loss.'],
  ['TcpExt', 'TCPLossProbes', 'loss_probes', 'Tail loss probes sent.'],
  ['TcpExt', 'TCPLossProbeRecovery', 'loss_probe_recovery', 'Losses recovered by a tail loss probe.'],
  ['TcpExt', 'TCPFastRetrans', 'fast_retrans', 'Fast retransmissions.'],
  ['TcpExt', 'TCPSlowStartRetrans', 'slow_start_retrans', 'Retransmissions in slow start (after an RTO).'],
  ['TcpExt', 'TCPLostRetransmit', 'lost_retransmit', 'Retransmissions that were lost again.'],
  ['TcpExt', 'TCPRetransFail', 'retrans_fail', 'Retransmissions refused by the local stack (qdisc or device full).'],
  ['TcpExt', 'TCPSynRetrans', 'syn_retrans', 'SYN and SYN-ACK retransmissions.'],
  ['TcpExt', 'TCPSpuriousRtxHostQueues', 'spurious_rtx_host_queues', 'Retransmissions skipped because the original was still in a host queue (qdisc/NIC): deep host queue or slow TX completion.'],
  ['TcpExt', 'TCPWqueueTooBig', 'wqueue_too_big', 'tcp_fragment() refused to split an skb because the retransmit queue was too big.'],
  ['TcpExt', 'TCPSackRecovery', 'sack_recovery', 'Entries into SACK-based loss recovery.'],
  ['TcpExt', 'TCPRenoRecovery', 'reno_recovery', 'Entries into Reno (no SACK) loss recovery.'],
  ['TcpExt', 'TCPSackRecoveryFail', 'sack_recovery_fail', 'SACK recoveries that ended in an RTO.'],
  ['TcpExt', 'TCPRenoRecoveryFail', 'reno_recovery_fail', 'Reno recoveries that ended in an RTO.'],
  ['TcpExt', 'TCPLossUndo', 'loss_undo', 'Loss recoveries undone (the retransmits were unnecessary).'],
  ['TcpExt', 'TCPFullUndo', 'full_undo', 'Congestion window reductions fully undone.'],
  ['TcpExt', 'TCPPartialUndo', 'partial_undo', 'Congestion window reductions partially undone.'],
  ['TcpExt', 'TCPSACKReorder', 'sack_reorder', 'Reordering detected with SACK.'],
  ['TcpExt', 'TCPTSReorder', 'ts_reorder', 'Reordering detected with timestamps.'],
  ['TcpExt', 'TCPRenoReorder', 'reno_reorder', 'Reordering detected without SACK.'],
  // DSACK: duplicates seen by the receiver, i.e. unnecessary retransmissions
  ['TcpExt', 'TCPDSACKOldSent', 'dsack_old_sent', 'DSACKs sent for old duplicate data.'],
  ['TcpExt', 'TCPDSACKOfoSent', 'dsack_ofo_sent', 'DSACKs sent for out-of-order duplicate data.'],
  ['TcpExt', 'TCPDSACKRecv', 'dsack_recv', 'DSACKs received: the peer got a segment twice (spurious retransmission).'],
  ['TcpExt', 'TCPDSACKRecvSegs', 'dsack_recv_segs', 'Segments covered by received DSACKs.'],
  ['TcpExt', 'TCPDSACKOfoRecv', 'dsack_ofo_recv', 'DSACKs received for out-of-order data.'],
  ['TcpExt', 'TCPDSACKUndo', 'dsack_undo', 'Recoveries undone thanks to DSACK.'],
  ['TcpExt', 'TCPDSACKIgnoredOld', 'dsack_ignored_old', 'DSACKs ignored (old).'],
  ['TcpExt', 'TCPDSACKIgnoredNoUndo', 'dsack_ignored_no_undo', 'DSACKs ignored (nothing to undo).'],
  // receiver: drops and memory squeeze
  ['TcpExt', 'TCPBacklogDrop', 'backlog_drop', 'Packets dropped because the socket backlog (while the application held the socket lock) was full.'],
  ['TcpExt', 'TCPRcvQDrop', 'rcvq_drop', 'Packets dropped because receive memory could not be charged (rcvbuf full or memory pressure).'],
  ['TcpExt', 'TCPZeroWindowDrop', 'zero_window_drop', 'Data dropped because the advertised window was 0.'],
  ['TcpExt', 'TCPOFOQueue', 'ofo_queue', 'Out-of-order segments queued: loss or reordering upstream.'],
  ['TcpExt', 'TCPOFODrop', 'ofo_drop', 'Out-of-order segments dropped for lack of memory.'],
  ['TcpExt', 'TCPOFOMerge', 'ofo_merge', 'Out-of-order segments merged into the queue.'],
  ['TcpExt', 'TCPRcvCollapsed', 'rcv_collapsed', 'Segments collapsed in the receive queue to save memory (CPU-expensive).'],
  ['TcpExt', 'PruneCalled', 'prune_called', 'Receive-queue pruning runs (memory squeeze).'],
  ['TcpExt', 'RcvPruned', 'rcv_pruned', 'Segments dropped from the receive queue by pruning.'],
  ['TcpExt', 'OfoPruned', 'ofo_pruned', 'Segments dropped from the out-of-order queue by pruning.'],
  ['TcpExt', 'TCPRcvCoalesce', 'rcv_coalesce', 'Segments coalesced into the previous one on receive.'],
  ['TcpExt', 'TCPBacklogCoalesce', 'backlog_coalesce', 'Segments coalesced in the socket backlog.'],
  ['TcpExt', 'TCPAbortOnMemory', 'abort_on_memory', 'Connections aborted for lack of memory.'],
  ['TcpExt', 'TCPMemoryPressures', 'memory_pressures', 'Times TCP entered global memory pressure (tcp_mem).'],
  // windows
  ['TcpExt', 'TCPToZeroWindowAdv', 'to_zero_window_adv', 'Times the receive window went from non-zero to zero (slow reader).'],
  ['TcpExt', 'TCPFromZeroWindowAdv', 'from_zero_window_adv', 'Times the receive window reopened from zero.'],
  ['TcpExt', 'TCPWantZeroWindowAdv', 'want_zero_window_adv', 'Times the receiver wanted to advertise a zero window.'],
  ['TcpExt', 'TCPWinProbe', 'win_probe', 'Zero-window probes sent.'],
  // sender behaviour
  ['TcpExt', 'TCPAutoCorking', 'auto_corking', 'Sends delayed by autocorking (small writes while TX was busy).'],
  ['TcpExt', 'TCPDelivered', 'delivered', 'Data segments delivered (acknowledged).'],
  ['TcpExt', 'TCPDeliveredCE', 'delivered_ce', 'Delivered data segments that were CE-marked (ECN).'],
  ['TcpExt', 'TCPHystartTrainDetect', 'hystart_train_detect', 'CUBIC HyStart slow-start exits on ACK-train detection.'],
  ['TcpExt', 'TCPHystartDelayDetect', 'hystart_delay_detect', 'CUBIC HyStart slow-start exits on delay increase.'],
  ['TcpExt', 'TCPMTUPFail', 'mtup_fail', 'MTU probes that failed.'],
  ['TcpExt', 'TCPMTUPSuccess', 'mtup_success', 'MTU probes that succeeded.'],
  // connection setup (not throughput, but drops that look like loss)
  ['TcpExt', 'ListenOverflows', 'listen_overflows', 'Accept queue overflows.'],
  ['TcpExt', 'ListenDrops', 'listen_drops', 'SYNs dropped at a listener.'],
  // IP
  ['IpExt', 'InOctets', 'in_bytes', 'IP bytes received.'],
  ['IpExt', 'OutOctets', 'out_bytes', 'IP bytes sent.'],
  ['IpExt', 'InNoECTPkts', 'in_no_ect_pkts', 'IP packets received without ECN capability.'],
  ['IpExt', 'InECT0Pkts', 'in_ect0_pkts', 'IP packets received with ECT(0).'],
  ['IpExt', 'InECT1Pkts', 'in_ect1_pkts', 'IP packets received with ECT(1).'],
  ['IpExt', 'InCEPkts', 'in_ce_pkts', 'IP packets received with Congestion Experienced.'],
  ['Ip', 'InReceives', 'in_receives', 'IP datagrams received.'],
  ['Ip', 'InDiscards', 'in_discards', 'IP datagrams received and discarded (no buffer, ...).'],
  ['Ip', 'InDelivers', 'in_delivers', 'IP datagrams delivered to upper layers.'],
  ['Ip', 'OutRequests', 'out_requests', 'IP datagrams handed down for sending.'],
  ['Ip', 'OutDiscards', 'out_discards', 'IP datagrams discarded on output (no buffer, qdisc drop).'],
  ['Ip', 'OutNoRoutes', 'out_no_routes', 'IP datagrams discarded for lack of a route.'],
];

const metricName = (group: string, part: string, suffix = '_total') => `flowpath_netstat_${group.toLowerCase()}_${part}${suffix}`;

export const NETSTAT_FIELDS: readonly Field[] = [
  ...FIELDS.map(([group, field, part, help]) => ({
    group,
    field,
    desc: counter(metricName(group, part), `${help} (${group} ${field})`, []),
    scale: 1,
  })),
  {
    group: 'TcpExt',
    field: 'TCPMemoryPressuresChrono',
    desc: counter(metricName('TcpExt', 'memory_pressures', '_seconds_total'), 'Time spent in global TCP memory pressure (TcpExt TCPMemoryPressuresChrono, kernel unit ms).', []),
    scale: 1e-3,
  },
  {
    group: 'Tcp',
    field: 'CurrEstab',
    desc: gauge(metricName('Tcp', 'curr_estab', ''), 'TCP connections in ESTABLISHED or CLOSE-WAIT now (Tcp CurrEstab).', []),
    scale: 1,
  },
];

export function emitNetstat(out: Emitter, groups: NetstatGroups): void {
  for (const f of NETSTAT_FIELDS) {
    const v = groups.get(f.group)?.get(f.field);
    if (v !== undefined) out.add(f.desc, [], f.scale === 1 ? v : v * f.scale);
  }
}

export const netstatCollector: CollectorDef = {
  name: 'netstat',
  description: 'TCP/IP counters that explain throughput loss (retransmits, RTOs, loss probes, DSACKs, backlog/rcvq/OFO/zero-window drops, ...) from /proc/net/netstat and /proc/net/snmp.',
  defaultEnabled: true,
  metrics: NETSTAT_FIELDS.map((f) => f.desc),
  create({ config }) {
    const procfs = config.get(procfsFlag);
    return {
      async collect(out: Emitter) {
        emitNetstat(out, readNetstat(procfs));
      },
    };
  },
};
