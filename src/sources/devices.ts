// Which network devices the per-device collectors (nic, irq, qdisc) look at.
//
// One place, one pair of flags (--collector.nic.device-include / -exclude), shared by every collector
// that reports per device, so the same devices show up in all of them.
//
// Default selection (no include regex given): physical NICs, bonds/teams, VLANs and Open vSwitch
// internal ports; everything else (veth, tap/tun, bridges, ifb, dummy, vxlan, ...) is left out, which
// keeps a Kubernetes node with hundreds of pod veths at a handful of devices. How a device is classified,
// first match wins (pure function classifyDevice below):
//   loopback      /sys/class/net/DEV/type = 772 (ARPHRD_LOOPBACK) or IFF_LOOPBACK in flags
//   bond          bonding/ directory, or uevent DEVTYPE=bond, or link kind "bond"
//   team          link kind "team"
//   vlan          uevent DEVTYPE=vlan, or link kind "vlan"
//   bridge        bridge/ directory, or uevent DEVTYPE=bridge
//   tun           tun_flags attribute (tap and tun devices)
//   ovs-internal  link kind "openvswitch" (what `ethtool -i` shows as driver "openvswitch"), except
//   ovs-datapath  ... the datapath device itself (ovs-system)
//   physical      a device/ link (a bus device: PCI, virtio, USB, ...) and none of the above
//   other kinds   veth, ifb, dummy, vxlan, ... : class "virtual"
// sysfs cannot tell an OVS internal port from a veth or a dummy (no DEVTYPE, no device/, no marker
// attribute), so for devices without a bus device the rtnetlink link kind (IFLA_LINKINFO/IFLA_INFO_KIND,
// what `ip -d link` prints and what `ethtool -i` calls the driver of a virtual device) is asked once per
// device (one RTM_GETLINK dump when an unknown ifindex shows up; cached by ifindex, which is not reused
// while a device exists).
//
// With an include regex, the classification is ignored: every device whose name matches is selected
// (loopback too, if the regex says so). The exclude regex then removes names from either selection.

import { promises as fs, readFileSync, readdirSync } from 'fs';
import { regexFlag } from '../core/flags';
import { under } from '../core/paths';
import { dumpLinks } from './netlink/rtnl-addr';
import { NETLINK_ROUTE, NetlinkSocket } from './netlink/socket';

export const deviceIncludeFlag = regexFlag(
  'collector.nic.device-include',
  '',
  'Regexp of network devices to include in the per-device collectors (nic, irq, qdisc). Empty = automatic: ' +
    'physical NICs (a /sys/class/net/DEV/device link), bonds (bonding/ or DEVTYPE=bond), teams, VLANs ' +
    '(uevent DEVTYPE=vlan) and Open vSwitch internal ports (rtnetlink link kind "openvswitch", the ' +
    'driver ethtool -i reports); loopback, veth, tap/tun, bridges and other virtual devices are left ' +
    'out. A non-empty regexp replaces the automatic choice.',
);
export const deviceExcludeFlag = regexFlag(
  'collector.nic.device-exclude',
  '',
  'Regexp of network devices to exclude from the per-device collectors (nic, irq, qdisc); applied after ' +
    'the include choice.',
);
/** Put these in the `flags` of every collector that calls selectDevices (shared FlagDef objects). */
export const DEVICE_FLAGS = [deviceIncludeFlag, deviceExcludeFlag] as const;

export type DeviceClass =
  | 'loopback'
  | 'physical'
  | 'bond'
  | 'team'
  | 'vlan'
  | 'bridge'
  | 'tun'
  | 'ovs-internal'
  | 'ovs-datapath'
  | 'virtual';

/** Classes selected when no include regex is given. */
export const DEFAULT_DEVICE_CLASSES: ReadonlySet<DeviceClass> = new Set<DeviceClass>(['physical', 'bond', 'team', 'vlan', 'ovs-internal']);

export interface NetDevice {
  name: string;
  ifindex: number;
  class: DeviceClass;
  /** rtnetlink link kind ("veth", "vlan", "openvswitch", ...) when it was looked up; undefined if not. */
  kind?: string;
  /** Bound driver of the bus device (basename of device/driver), physical devices only. */
  driver?: string;
}

/** What sysfs (and optionally rtnetlink) says about one device: the input of classifyDevice. */
export interface DeviceFacts {
  name: string;
  /** ARPHRD_* from the type attribute. */
  type?: number;
  /** dev->flags from the flags attribute. */
  flags?: number;
  devtype?: string;
  hasDevice: boolean;
  hasBonding: boolean;
  hasBridge: boolean;
  hasTunFlags: boolean;
  kind?: string;
}

const ARPHRD_LOOPBACK = 772;
const IFF_LOOPBACK = 0x8;

/** Pure classification, see the table at the top of this file. */
export function classifyDevice(f: DeviceFacts): DeviceClass {
  if (f.type === ARPHRD_LOOPBACK || (f.flags !== undefined && (f.flags & IFF_LOOPBACK) !== 0)) return 'loopback';
  if (f.hasBonding || f.devtype === 'bond' || f.kind === 'bond') return 'bond';
  if (f.kind === 'team') return 'team';
  if (f.devtype === 'vlan' || f.kind === 'vlan') return 'vlan';
  if (f.hasBridge || f.devtype === 'bridge' || f.kind === 'bridge') return 'bridge';
  if (f.hasTunFlags || f.kind === 'tun') return 'tun';
  if (f.kind === 'openvswitch') return f.name === 'ovs-system' ? 'ovs-datapath' : 'ovs-internal';
  if (f.hasDevice) return 'physical';
  return 'virtual';
}

/** Parse a sysfs uevent file ("KEY=VALUE" lines). */
export function parseUevent(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) m.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return m;
}

/** Looks up rtnetlink link kinds by ifindex. Injected so fixture tests do not ask the live kernel. */
export interface LinkKindLookup {
  /** Kinds for the given ifindexes (missing key = no IFLA_INFO_KIND, i.e. a plain device). */
  kinds(ifindexes: readonly number[]): Promise<Map<number, string | null>>;
}

/** Live lookup over rtnetlink, with a per-ifindex cache (a device's kind never changes). */
export class RtnlLinkKinds implements LinkKindLookup {
  private sock: NetlinkSocket | null = null;
  private readonly cache = new Map<number, string | null>();

  async kinds(ifindexes: readonly number[]): Promise<Map<number, string | null>> {
    const missing = ifindexes.filter((i) => !this.cache.has(i));
    if (missing.length > 0) {
      this.sock ??= new NetlinkSocket(NETLINK_ROUTE);
      const seen = new Map<number, string | null>();
      // One dump (stats skipped) is cheaper than N single GETs once there are more than a few misses.
      for (const l of await dumpLinks(this.sock)) seen.set(l.ifindex, l.kind ?? null);
      // Forget devices that are gone, remember the rest.
      this.cache.clear();
      for (const [i, k] of seen) this.cache.set(i, k);
    }
    const out = new Map<number, string | null>();
    for (const i of ifindexes) if (this.cache.has(i)) out.set(i, this.cache.get(i) ?? null);
    return out;
  }

  close(): void {
    this.sock?.close();
    this.sock = null;
  }
}

let sharedKinds: RtnlLinkKinds | null = null;
/** The process-wide live lookup (one rtnetlink socket, unref'd while idle). */
export function liveLinkKinds(): RtnlLinkKinds {
  sharedKinds ??= new RtnlLinkKinds();
  return sharedKinds;
}

export interface SelectOptions {
  /**
   * Where link kinds come from for devices sysfs cannot classify. Default: rtnetlink in the exporter's
   * own network namespace when sysfsRoot is "/sys", none otherwise (a fixture tree is not the live
   * kernel). null = never look (such devices are "virtual").
   */
  linkKinds?: LinkKindLookup | null;
}

interface CachedFacts {
  ifindex: number;
  facts: DeviceFacts;
  driver?: string;
}
// Per sysfs root: device name -> facts of the device instance with that ifindex.
const factsCache = new Map<string, Map<string, CachedFacts>>();

async function readOpt(p: string): Promise<string | undefined> {
  try {
    return await fs.readFile(p, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new Error(`reading ${p}: ${(e as Error).message}`);
  }
}

/** uevent show() takes no lock: read synchronously (see readAttrSync in sysfs/netdev.ts). */
function readUeventSync(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENODEV') return undefined;
    throw new Error(`reading ${p}: ${(e as Error).message}`);
  }
}

function intOrUndef(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const t = s.trim();
  const n = t.startsWith('0x') ? parseInt(t, 16) : Number(t);
  return Number.isFinite(n) && t !== '' ? n : undefined;
}

async function gatherFacts(dir: string, name: string): Promise<{ facts: DeviceFacts; driver?: string }> {
  const [entries, type, flags, uevent] = await Promise.all([
    fs.readdir(dir),
    readOpt(under(dir, 'type')),
    readOpt(under(dir, 'flags')),
    readOpt(under(dir, 'uevent')),
  ]);
  const ents = new Set(entries);
  const ue = uevent ? parseUevent(uevent) : new Map<string, string>();
  const facts: DeviceFacts = {
    name,
    type: intOrUndef(type),
    flags: intOrUndef(flags),
    devtype: ue.get('DEVTYPE'),
    hasDevice: ents.has('device'),
    hasBonding: ents.has('bonding'),
    hasBridge: ents.has('bridge'),
    hasTunFlags: ents.has('tun_flags'),
  };
  let driver: string | undefined;
  if (facts.hasDevice) {
    try {
      const target = await fs.readlink(under(dir, 'device', 'driver'));
      driver = target.split('/').pop();
    } catch {
      driver = undefined; // unbound device
    }
  }
  return { facts, driver };
}

/**
 * Every device under SYSFS/class/net with its class. Reads the uevent file of each device per call
 * (for the ifindex); the rest is cached per device instance.
 */
export async function listDevices(sysfsRoot: string, opts: SelectOptions = {}): Promise<NetDevice[]> {
  const base = under(sysfsRoot, 'class', 'net');
  let names: string[];
  try {
    names = readdirSync(base).sort(); // kernfs readdir, no networking lock: synchronous
  } catch (e) {
    throw new Error(`listing network devices in ${base}: ${(e as Error).message}`);
  }
  let cache = factsCache.get(base);
  if (!cache) factsCache.set(base, (cache = new Map()));
  const c = cache;

  const rows = await Promise.all(
    names.map(async (name) => {
      const dir = under(base, name);
      const uevent = readUeventSync(under(dir, 'uevent'));
      if (uevent === undefined) return null; // vanished between readdir and read, or not a device
      const ifindex = intOrUndef(parseUevent(uevent).get('IFINDEX'));
      if (ifindex === undefined) throw new Error(`${under(dir, 'uevent')}: no IFINDEX line`);
      let hit = c.get(name);
      if (!hit || hit.ifindex !== ifindex) {
        const g = await gatherFacts(dir, name);
        hit = { ifindex, facts: g.facts, driver: g.driver };
        c.set(name, hit);
      }
      return { name, ifindex, hit };
    }),
  );
  const present = rows.filter((r): r is NonNullable<typeof r> => r !== null);
  for (const k of [...c.keys()]) if (!present.some((r) => r.name === k)) c.delete(k);

  // Link kinds are asked of the lookup on every call (the live lookup caches them per ifindex), so the
  // answer always comes from the lookup the caller chose.
  const lookup = opts.linkKinds === undefined ? (sysfsRoot === '/sys' ? liveLinkKinds() : null) : opts.linkKinds;
  // Every device without a bus device (except loopback) gets its kind: needed to classify the ones sysfs
  // leaves open, and reported as a label for the others (bridge, tun, vlan, ...).
  const open = present.filter((r) => !r.hit.facts.hasDevice && classifyDevice(r.hit.facts) !== 'loopback');
  const kinds = lookup && open.length > 0 ? await lookup.kinds(open.map((r) => r.ifindex)) : new Map<number, string | null>();
  return present.map((r) => {
    const kind = kinds.get(r.ifindex) ?? undefined;
    const facts = kind === undefined ? r.hit.facts : { ...r.hit.facts, kind };
    return { name: r.name, ifindex: r.ifindex, class: classifyDevice(facts), kind, driver: r.hit.driver };
  });
}

/** Pure selection rule (see the header of this file). */
export function isSelected(d: Pick<NetDevice, 'name' | 'class'>, include: RegExp | null, exclude: RegExp | null): boolean {
  const inc = include ? include.test(d.name) : DEFAULT_DEVICE_CLASSES.has(d.class);
  return inc && !(exclude && exclude.test(d.name));
}

/** The devices a per-device collector should report, sorted by name. */
export async function selectDevices(
  sysfsRoot: string,
  include: RegExp | null,
  exclude: RegExp | null,
  opts: SelectOptions = {},
): Promise<NetDevice[]> {
  const all = await listDevices(sysfsRoot, opts);
  return all.filter((d) => isSelected(d, include, exclude));
}
