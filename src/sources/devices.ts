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
// attribute), so the rtnetlink link kind (IFLA_LINKINFO/IFLA_INFO_KIND, what `ip -d link` prints and
// what `ethtool -i` calls the driver of a virtual device) decides. The device list itself comes from one
// RTM_GETLINK dump per scrape (./netlink/rtnl-link.ts), shared by the nic, qdisc and irq collectors; the
// nic collector takes the device counters from the same records.
//
// With an include regex, the classification is ignored: every device whose name matches is selected
// (loopback too, if the regex says so). The exclude regex then removes names from either selection.

import { promises as fs, readFileSync, readdirSync } from 'fs';
import { FlagDef, regexFlag } from '../core/flags';
import type { Logger } from '../core/log';
import { under } from '../core/paths';
import { LinkLookup, LinkRecord, liveLinks } from './netlink/rtnl-link';
import { forgetHeld } from './procfs/read';

export const deviceIncludeFlag = regexFlag(
  'collector.nic.device-include',
  '',
  'Regexp of network devices to include in the per-device collectors (nic, irq, qdisc). Empty = automatic: ' +
    'physical NICs (a /sys/class/net/DEV/device link), bonds (bonding/ or DEVTYPE=bond), teams, VLANs ' +
    '(uevent DEVTYPE=vlan) and Open vSwitch internal ports (rtnetlink link kind "openvswitch", the ' +
    'driver ethtool -i reports); loopback, veth, tap/tun, bridges and other virtual devices are left ' +
    'out. A non-empty regexp replaces the automatic choice, e.g. "eth.*|ens[0-9]+" (not "^eth": the ' +
    'regexp must match the whole name). A regexp that matches no device is logged as a warning.',
);
export const deviceExcludeFlag = regexFlag(
  'collector.nic.device-exclude',
  '',
  'Regexp of network devices to exclude from the per-device collectors (nic, irq, qdisc); applied after ' +
    'the include choice. A regexp that matches no device is logged as a warning.',
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
  /** The rtnetlink record of this listing (state, statistics), when listed over rtnetlink. */
  link?: LinkRecord;
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

export interface SelectOptions {
  /**
   * Where the device list, link kinds and link records (statistics) come from. Default: rtnetlink in the
   * exporter's own network namespace when the sysfs tree belongs to that namespace (see
   * sysfsMatchesNetns), else none. null = sysfs only: devices from class/net and their uevent IFINDEX,
   * no kinds (devices sysfs cannot classify are "virtual"), no link records.
   */
  links?: LinkLookup | null;
  /**
   * Where to warn that the include or exclude regex matches no device at all (a typo, or an unanchored
   * habit like "^eth"). Warned once per flag value for the process, however many collectors select
   * devices with it; said again only after it matched a device in between.
   */
  log?: Logger;
}

/** Devices of a sysfs tree by readdir of class/net and each uevent's IFINDEX, sorted by name. */
function sysfsIds(base: string): Array<{ name: string; ifindex: number }> {
  let names: string[];
  try {
    names = readdirSync(base).sort(); // kernfs readdir, no networking lock: synchronous
  } catch (e) {
    throw new Error(`listing network devices in ${base}: ${(e as Error).message}`);
  }
  const ids: Array<{ name: string; ifindex: number }> = [];
  for (const name of names) {
    const uevent = readUeventSync(under(base, name, 'uevent'));
    if (uevent === undefined) continue; // vanished between readdir and read, or not a device
    const ifindex = intOrUndef(parseUevent(uevent).get('IFINDEX'));
    if (ifindex === undefined) throw new Error(`${under(base, name, 'uevent')}: no IFINDEX line`);
    ids.push({ name, ifindex });
  }
  return ids;
}

/** Per sysfs root other than /sys: does it show our namespace's devices? Decided once. */
const netnsMatch = new Map<string, Promise<boolean>>();

/**
 * Whether a sysfs tree shows the devices of the exporter's own network namespace, i.e. whether our
 * rtnetlink socket may stand in for it. "/sys" is (a process's own sysfs mount belongs to the namespace
 * it was mounted in: the container's, or the host's with hostNetwork). Any other root (a host /sys
 * mounted at /host/sys, a fixture tree) is compared once: the same device names with the same indexes
 * as one rtnetlink dump. A fixture tree or another namespace's sysfs differs, and is then read from
 * sysfs alone.
 */
export function sysfsMatchesNetns(sysfsRoot: string, live: LinkLookup = liveLinks()): Promise<boolean> {
  if (sysfsRoot === '/sys') return Promise.resolve(true);
  let p = netnsMatch.get(sysfsRoot);
  if (!p) {
    p = (async () => {
      const key = (xs: ReadonlyArray<{ name: string; ifindex: number }>) => xs.map((x) => `${x.name}:${x.ifindex}`).sort().join(' ');
      try {
        return key(sysfsIds(under(sysfsRoot, 'class', 'net'))) === key(await live.links());
      } catch {
        return false; // no class/net, or no rtnetlink: sysfs alone (its own errors are reported there)
      }
    })();
    netnsMatch.set(sysfsRoot, p);
  }
  return p;
}

/** The lookup listDevices uses for these options. */
async function linkLookupFor(sysfsRoot: string, opts: SelectOptions = {}): Promise<LinkLookup | null> {
  if (opts.links !== undefined) return opts.links;
  return (await sysfsMatchesNetns(sysfsRoot)) ? liveLinks() : null;
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

async function gatherFacts(dir: string, name: string): Promise<{ facts: DeviceFacts; driver?: string } | null> {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new Error(`listing ${dir}: ${(e as Error).message}`);
  }
  const [type, flags, uevent] = await Promise.all([
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
 * Every network device with its class. Over rtnetlink (see SelectOptions) the names, indexes and kinds
 * come from one link dump, shared with the other collectors of the scrape; otherwise from a readdir of
 * SYSFS/class/net and each device's uevent. The sysfs facts (bus device, bonding/, bridge/, tun_flags,
 * DEVTYPE, driver) are read once per device instance (name + ifindex) and cached.
 */
export async function listDevices(sysfsRoot: string, opts: SelectOptions = {}): Promise<NetDevice[]> {
  const base = under(sysfsRoot, 'class', 'net');
  const lookup = await linkLookupFor(sysfsRoot, opts);
  let cache = factsCache.get(base);
  if (!cache) factsCache.set(base, (cache = new Map()));
  const c = cache;

  const ids: Array<{ name: string; ifindex: number; link?: LinkRecord }> = lookup
    ? (await lookup.links()).map((l) => ({ name: l.name, ifindex: l.ifindex, link: l })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    : sysfsIds(base);

  const rows = await Promise.all(
    ids.map(async (id) => {
      let hit = c.get(id.name);
      if (hit && hit.ifindex !== id.ifindex) forgetHeld(under(base, id.name) + '/'); // another device took the name
      if (!hit || hit.ifindex !== id.ifindex) {
        const g = await gatherFacts(under(base, id.name), id.name);
        if (!g) return null; // gone from sysfs since the listing
        hit = { ifindex: id.ifindex, facts: g.facts, driver: g.driver };
        c.set(id.name, hit);
      }
      return { ...id, hit };
    }),
  );
  const present = rows.filter((r): r is NonNullable<typeof r> => r !== null);
  const names = new Set(present.map((r) => r.name));
  for (const k of [...c.keys()]) {
    if (names.has(k)) continue;
    c.delete(k);
    forgetHeld(under(base, k) + '/');
  }

  return present.map((r) => {
    const kind = r.link?.kind;
    const facts = kind === undefined ? r.hit.facts : { ...r.hit.facts, kind };
    const d: NetDevice = { name: r.name, ifindex: r.ifindex, class: classifyDevice(facts), kind, driver: r.hit.driver };
    if (r.link) d.link = r.link;
    return d;
  });
}

/** Pure selection rule (see the header of this file). */
export function isSelected(d: Pick<NetDevice, 'name' | 'class'>, include: RegExp | null, exclude: RegExp | null): boolean {
  const inc = include ? include.test(d.name) : DEFAULT_DEVICE_CLASSES.has(d.class);
  return inc && !(exclude && exclude.test(d.name));
}

/** `flag=regex` of the device regexes now matching no device, already warned about. */
const unmatchedWarned = new Set<string>();

/**
 * Warn (once, see SelectOptions.log) about a device include/exclude regex that matches none of these
 * devices, naming the flag and the regex; an info line when such a regex matches a device again.
 */
export function warnUnmatchedDeviceRegexes(devices: ReadonlyArray<Pick<NetDevice, 'name'>>, include: RegExp | null, exclude: RegExp | null, log: Logger): void {
  const check = (flag: FlagDef<RegExp | null>, re: RegExp | null) => {
    if (!re) return;
    const value = flag.show(re); // the flag's text, quoted
    const regex = JSON.parse(value) as string;
    const key = `${flag.name}=${value}`;
    const matches = devices.some((d) => re.test(d.name));
    if (!matches && !unmatchedWarned.has(key)) {
      unmatchedWarned.add(key);
      const names = devices.map((d) => d.name);
      log.warn(`--${flag.name}=${value} matches no network device; the regex is anchored (it must match the whole name, e.g. "eth.*")`, {
        flag: flag.name,
        regex,
        devices: names.length > 12 ? `${names.slice(0, 12).join(',')},...` : names.join(','),
      });
    } else if (matches && unmatchedWarned.delete(key)) {
      log.info(`--${flag.name}=${value} matches a network device again`, { flag: flag.name, regex: value.slice(1, -1) });
    }
  };
  check(deviceIncludeFlag, include);
  check(deviceExcludeFlag, exclude);
}

/** The devices a per-device collector should report, sorted by name. */
export async function selectDevices(
  sysfsRoot: string,
  include: RegExp | null,
  exclude: RegExp | null,
  opts: SelectOptions = {},
): Promise<NetDevice[]> {
  const all = await listDevices(sysfsRoot, opts);
  if (opts.log) warnUnmatchedDeviceRegexes(all, include, exclude, opts.log);
  return all.filter((d) => isSelected(d, include, exclude));
}
