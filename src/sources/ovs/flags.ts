// Flags of the OVS reader (src/sources/ovs/snapshot.ts): where ovs-vswitchd's control socket is, how long
// to wait for it and how often to read it. Declared here, beside the reader they configure, and shared (the
// same FlagDef objects) by every user of the reader: the ovs collector, the diagnosis collector and
// `flowpath diagnose`.

import { Config, FlagDef, durationFlag, stringFlag } from '../../core/flags';
import type { Logger } from '../../core/log';
import { sysfsFlag } from '../../core/paths';
import type { GenlRequester } from '../netlink/ovs';
import type { OvsReaderOptions } from './snapshot';

export const ovsRundirFlag = stringFlag(
  'ovs.rundir',
  '',
  'OVS run directory holding ovs-vswitchd.pid and ovs-vswitchd.<pid>.ctl. Empty: $OVS_RUNDIR, then /run/openvswitch, then /var/run/openvswitch.',
  '<dir>',
);
export const ovsUnixctlFlag = stringFlag(
  'ovs.unixctl',
  '',
  'Path of the ovs-vswitchd control socket (a daemon started with --unixctl=PATH). Overrides --ovs.rundir.',
  '<path>',
);
export const ovsRefreshFlag = durationFlag('ovs.refresh-interval', 5, 'How often OVS is read in the background; scrapes serve the latest read.', 0.1);
export const ovsTimeoutFlag = durationFlag('ovs.timeout', 2, 'Deadline for connecting to ovs-vswitchd and for each unixctl call or genetlink dump.', 0.01);

/** The flags every user of the OVS reader declares (same FlagDef objects, so each is declared once). */
export const OVS_READER_FLAGS: readonly FlagDef<unknown>[] = [ovsRundirFlag, ovsUnixctlFlag, ovsRefreshFlag, ovsTimeoutFlag] as FlagDef<unknown>[];

/** Read a flag that may not be registered in this Config (a command with fewer flags): the default then. */
function maybe<T>(config: Config, f: FlagDef<T>): T {
  try {
    return config.get(f);
  } catch {
    return f.default;
  }
}

/** OvsReader options from the flags above (and $OVS_RUNDIR, --path.sysfs). */
export function ovsReaderOptions(
  config: Config,
  log: Logger,
  genlSocket?: () => GenlRequester & { close?: () => void },
): OvsReaderOptions {
  return {
    discover: {
      unixctl: maybe(config, ovsUnixctlFlag) || undefined,
      rundir: maybe(config, ovsRundirFlag) || undefined,
      envRundir: process.env.OVS_RUNDIR || undefined,
    },
    timeoutMs: maybe(config, ovsTimeoutFlag) * 1000,
    sysfs: config.get(sysfsFlag),
    log,
    genlSocket,
  };
}
