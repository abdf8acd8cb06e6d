// Every collector flowpath knows, in --help and catalogue order. One import and one array entry each.

import type { CollectorDef } from './registry';

export const ALL_COLLECTORS: readonly CollectorDef[] = [
];
