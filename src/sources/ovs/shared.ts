// The one OvsReader of an exporter, keyed by its Config: the ovs collector's background refresh and the
// diagnosis sampler share it, so ovs-vswitchd sees one control connection and one read per interval.

import type { Config } from '../../core/flags';
import type { Logger } from '../../core/log';
import type { GenlRequester } from '../netlink/ovs';
import { ovsReaderOptions } from './flags';
import { OvsReader } from './snapshot';

export interface OvsReaderTestHooks {
  genlSocket?: () => GenlRequester & { close?: () => void };
}

/** Test hook: how the shared reader builds its genetlink socket (undefined = a real NETLINK_GENERIC socket). */
export const ovsTestHooks: OvsReaderTestHooks = {};

const readers = new WeakMap<Config, OvsReader>();

/** The exporter's shared reader, created on first use from the OVS flags (src/sources/ovs/flags.ts). */
export function sharedOvsReader(config: Config, log: Logger): OvsReader {
  let r = readers.get(config);
  if (!r) {
    r = new OvsReader(ovsReaderOptions(config, log, ovsTestHooks.genlSocket));
    readers.set(config, r);
  }
  return r;
}

/** Forget the shared reader of this Config (its owner closed it). */
export function forgetSharedOvsReader(config: Config): void {
  readers.delete(config);
}
