// Every collector flowpath knows, in --help and catalogue order. One import and one array entry each.

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
  qdiscCollector,
  softirqCollector,
  sysctlCollector,
  netstatCollector,
  nodeCollector,
  nicCollector,
  irqCollector,
  flowsCollector,
  ovsCollector,
  diagnosisCollector,
];
