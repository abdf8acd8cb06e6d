// A flow's stable identity: which end is the server, and the service port. The 4-tuple of a flow changes
// with every run (the client gets a new ephemeral port each time); (peer address, service port, role) does
// not, so series labelled with it can be compared across runs, days and restarts.
//
// Role, decided once per socket (cookie) when it is first seen:
//   1. a LISTEN socket on the flow's local port (same network namespace, any address) => "server", and
//      the service port is the local port;
//   2. otherwise "client", and the service port is the peer's port; except when the local port lies
//      outside the ephemeral range (net.ipv4.ip_local_port_range) and the peer's port inside it: an
//      accepted connection whose listener has closed since => "server" with the local port.
// A client bound to a fixed low port (e.g. 700 -> 5201) has no listener on 700: rule 2 makes it a client
// of 5201. The identity is packed into one number (server bit 16, port in the low 16 bits) so the flows
// collector can keep it per cookie in its typed-array tables without allocating.

import * as path from 'path';
import { AF_INET, AF_INET6, DumpPlan, DumpResult, SockView, TCP_LISTEN } from './netlink/sockdiag';
import { readProcText } from './procfs/read';

export type FlowRole = 'client' | 'server';

/** Packed identity: bit 16 = server, bits 0-15 = service port. */
export type PackedIdentity = number;

const SERVER = 0x10000;

export interface PortRange {
  lo: number;
  hi: number;
}

/** The kernel's default ip_local_port_range (used when the sysctl cannot be read). */
export const DEFAULT_PORT_RANGE: PortRange = { lo: 32768, hi: 60999 };

/** Parse /proc/sys/net/ipv4/ip_local_port_range ("32768\t60999\n"). */
export function parsePortRange(text: string): PortRange {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  if (!m) throw new Error(`ip_local_port_range: cannot parse ${JSON.stringify(text.slice(0, 40))}`);
  const lo = Number(m[1]);
  const hi = Number(m[2]);
  if (lo > hi || hi > 65535) throw new Error(`ip_local_port_range: bad range ${lo}-${hi}`);
  return { lo, hi };
}

export function readPortRange(procfs: string): PortRange {
  return parsePortRange(readProcText(path.join(procfs, 'sys/net/ipv4/ip_local_port_range')));
}

/** Ports with a LISTEN socket, as a bitmap (refilled in place). */
export class ListeningPorts {
  private readonly bits = new Uint8Array(65536);
  private used: number[] = [];

  clear(): void {
    for (const p of this.used) this.bits[p] = 0;
    this.used = [];
  }

  add(port: number): void {
    if (this.bits[port]) return;
    this.bits[port] = 1;
    this.used.push(port);
  }

  has(port: number): boolean {
    return this.bits[port] === 1;
  }

  get size(): number {
    return this.used.length;
  }
}

export function identify(localPort: number, peerPort: number, listening: ListeningPorts, range: PortRange): PackedIdentity {
  if (listening.has(localPort)) return SERVER | localPort;
  const localEphemeral = localPort >= range.lo && localPort <= range.hi;
  const peerEphemeral = peerPort >= range.lo && peerPort <= range.hi;
  if (!localEphemeral && peerEphemeral) return SERVER | localPort;
  return peerPort;
}

export const roleOf = (id: PackedIdentity): FlowRole => (id & SERVER ? 'server' : 'client');
export const servicePortOf = (id: PackedIdentity): number => id & 0xffff;
export const identityLabels = (id: PackedIdentity): [string, string] => [roleOf(id), String(servicePortOf(id))];

/** Every LISTEN socket, both families, no filter and no attributes. */
export const LISTEN_PLANS: readonly DumpPlan[] = [AF_INET, AF_INET6].map((family) => ({ family, states: 1 << TCP_LISTEN, bytecode: null }));

export interface SockDumper {
  dump(plans: readonly DumpPlan[], ext: number, onSocket: (v: SockView) => void): Promise<DumpResult>;
}

/** Refill `into` with the local ports that have a LISTEN socket (one small sock_diag dump per family). */
export async function dumpListening(source: SockDumper, into: ListeningPorts): Promise<void> {
  into.clear();
  await source.dump(LISTEN_PLANS, 0, (v) => {
    if (v.state === TCP_LISTEN) into.add(v.sport);
  });
}
