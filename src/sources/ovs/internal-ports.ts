// The latest set of OVS internal ports, for code outside the ovs collector (the flow collector's
// local_device, the diagnosis engine: "this IP sits on an OVS internal port").
//
// The ovs collector's background refresh publishes here after every read; readers call
// latestOvsInternalPorts() and never touch OVS themselves. Before the first read, or when the ovs
// collector is disabled, it returns undefined.

import type { InternalPort, OvsSnapshot } from './snapshot';

export interface OvsInternalPortSet {
  /** When the snapshot was taken (ms since epoch). */
  updatedAt: number;
  /** Whether ovs-vswitchd answered in that snapshot (ports from genetlink alone have bridge ""). */
  vswitchdUp: boolean;
  /** Internal ports by device name. */
  ports: ReadonlyMap<string, InternalPort>;
}

let latest: OvsInternalPortSet | undefined;

/** Called by the ovs collector after each refresh. */
export function publishInternalPorts(snap: OvsSnapshot): void {
  const ports = new Map<string, InternalPort>();
  for (const p of snap.internalPorts) if (!ports.has(p.device)) ports.set(p.device, p);
  latest = { updatedAt: snap.takenAt, vswitchdUp: snap.unixctl.up, ports };
}

/** The latest internal-port set, or undefined if OVS has not been read (yet). */
export function latestOvsInternalPorts(): OvsInternalPortSet | undefined {
  return latest;
}

/** Convenience: the internal port record for a device name, if it is one. */
export function ovsInternalPort(device: string): InternalPort | undefined {
  return latest?.ports.get(device);
}

/** Tests only. */
export function resetInternalPorts(): void {
  latest = undefined;
}
