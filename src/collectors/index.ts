// Every collector flowpath knows, in --help and catalogue order: along the packet path of docs/kernel-sources.md §0
// (socket/TCP, NIC, IRQ, qdisc, softirq, TCP stack counters, sysctls, OVS), then node identity.
// One import and one array entry each.

import type { CollectorDef } from './registry';
import { qdiscCollector } from './qdisc';
import { softirqCollector } from './softirq';
import { sysctlCollector } from './sysctl';
import { netstatCollector } from './netstat';
import { nodeCollector } from './node';
import { nicCollector } from './nic';
import { irqCollector } from './irq';
import { flowsCollector } from './flows';
import { ovsCollector } from './ovs';
import { diagnosisCollector } from './diagnosis';

export const ALL_COLLECTORS: readonly CollectorDef[] = [
  flowsCollector,
  diagnosisCollector,
  nicCollector,
  irqCollector,
  qdiscCollector,
  softirqCollector,
  netstatCollector,
  sysctlCollector,
  ovsCollector,
  nodeCollector,
];
