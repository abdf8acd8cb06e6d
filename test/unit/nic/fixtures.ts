// Helpers for the nic/irq tests: read the binary netlink fixtures of test/fixtures/nic/genl and replay
// them through the real decoders behind fake clients.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { forEachMessage, NLMSG_DONE } from '../../../src/sources/netlink/attrs';
import {
  EthtoolChannels,
  EthtoolCoalesce,
  EthtoolFeatures,
  EthtoolPause,
  EthtoolRings,
  EthtoolStatGroup,
  StringSet,
  decodeChannels,
  decodeCoalesce,
  decodeFeatures,
  decodePause,
  decodeRings,
  decodeStats,
  decodeStrsets,
} from '../../../src/sources/netlink/ethtool';
import { NapiInfo, QueueInfo, QueueStats, decodeNapi, decodeQstats, decodeQueue } from '../../../src/sources/netlink/netdev-genl';
import { NetlinkError } from '../../../src/sources/netlink/socket';
import type { NicDeps } from '../../../src/collectors/nic';
import type { LinkLookup, LinkRecord } from '../../../src/sources/netlink/rtnl-link';

export const NIC_FIXTURES = path.join(__dirname, '../../fixtures/nic');
export const GENL = path.join(NIC_FIXTURES, 'genl');
export const HOST_MQ = path.join(NIC_FIXTURES, 'host-mq');

/** Run fn on a private copy of the host-mq tree (for tests that edit fixture files), removed after. */
export async function withHostMqCopy<T>(fn: (root: string) => Promise<T>): Promise<T> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-host-mq-'));
  try {
    fs.cpSync(HOST_MQ, tmp, { recursive: true, verbatimSymlinks: true });
    return await fn(tmp);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export interface Msg {
  type: number;
  flags: number;
  buf: Buffer;
  start: number;
  end: number;
}

/** The data messages of a fixture stream (NLMSG_DONE dropped), each with its own buffer. */
export function messages(file: string): Msg[] {
  const b = fs.readFileSync(path.join(GENL, file));
  const out: Msg[] = [];
  forEachMessage(b, (m) => {
    if (m.type === NLMSG_DONE) return;
    out.push({ type: m.type, flags: m.flags, buf: b, start: m.start, end: m.end });
  });
  return out;
}

export function single<T>(file: string, decode: (b: Buffer, s: number, e: number) => T): T {
  const ms = messages(file);
  if (ms.length !== 1) throw new Error(`${file}: ${ms.length} messages`);
  return decode(ms[0].buf, ms[0].start, ms[0].end);
}

export function strsets(): Map<number, StringSet> {
  const out = new Map<number, StringSet>();
  for (const f of ['kernel-6.18.strset-stats.bin', 'kernel-6.18.strset-features.bin']) {
    for (const [id, s] of single(f, decodeStrsets)) out.set(id, s);
  }
  return out;
}

/** Stats groups of a fixture, names resolved like EthtoolClient.stats() does. */
export function statsWithNames(file: string): Array<EthtoolStatGroup & { group: string; names: StringSet }> {
  const sets = strsets();
  const groups = [...sets.get(16)!.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
  return single(file, decodeStats).map((g) => ({ ...g, group: groups[g.id], names: sets.get(g.ssId!) ?? new Map() }));
}

export const eopnotsupp = () => new NetlinkError(-95, 'fixture');
export const eperm = () => new NetlinkError(-1, 'fixture');

type Answer<T> = T | (() => never);

/** A fake ethtool client answering per device name from fixtures; counts calls. */
export class FakeEthtool {
  calls: string[] = [];
  constructor(
    private readonly answers: Record<
      string,
      Partial<{
        rings: Answer<EthtoolRings>;
        channels: Answer<EthtoolChannels>;
        coalesce: Answer<EthtoolCoalesce>;
        features: Answer<EthtoolFeatures>;
        pause: Answer<EthtoolPause>;
        stats: Answer<Array<EthtoolStatGroup & { group: string; names: StringSet }>>;
      }>
    >,
    private readonly fallback: () => never = () => {
      throw eopnotsupp();
    },
  ) {}
  private async answer<T>(what: string, dev: string): Promise<T> {
    this.calls.push(`${what} ${dev}`);
    const a = (this.answers[dev] as Record<string, unknown> | undefined)?.[what];
    if (a === undefined) return this.fallback();
    if (typeof a === 'function') return (a as () => never)();
    return a as T;
  }
  rings = (_i: number, dev = '') => this.answer<EthtoolRings>('rings', dev);
  channels = (_i: number, dev = '') => this.answer<EthtoolChannels>('channels', dev);
  coalesce = (_i: number, dev = '') => this.answer<EthtoolCoalesce>('coalesce', dev);
  features = (_i: number, dev = '') => this.answer<EthtoolFeatures>('features', dev);
  pause = (_i: number, dev = '') => this.answer<EthtoolPause>('pause', dev);
  stats = (_i: number, dev = '') => this.answer<Array<EthtoolStatGroup & { group: string; names: StringSet }>>('stats', dev);
}

export class FakeNetdev {
  calls: string[] = [];
  constructor(private readonly answers: Record<string, Partial<{ qstats: Answer<QueueStats[]>; queues: Answer<QueueInfo[]>; napis: Answer<NapiInfo[]> }>>) {}
  private async answer<T>(what: string, dev: string): Promise<T> {
    this.calls.push(`${what} ${dev}`);
    const a = (this.answers[dev] as Record<string, unknown> | undefined)?.[what];
    if (a === undefined) throw eopnotsupp();
    if (typeof a === 'function') return (a as () => never)();
    return a as T;
  }
  qstats = (_i: number, dev = '') => this.answer<QueueStats[]>('qstats', dev);
  queues = (_i: number, dev = '') => this.answer<QueueInfo[]>('queues', dev);
  napis = (_i: number, dev = '') => this.answer<NapiInfo[]>('napis', dev);
}

export const mlx5 = {
  rings: () => single('mlx5-eth0.rings.bin', decodeRings),
  channels: () => single('mlx5-eth0.channels.bin', decodeChannels),
  coalesce: () => single('mlx5-eth0.coalesce.bin', decodeCoalesce),
  features: () => single('mlx5-eth0.features.bin', (b, s, e) => decodeFeatures(b, s, e)),
  pause: () => single('mlx5-eth0.pause.bin', decodePause),
  stats: () => statsWithNames('mlx5-eth0.stats.bin'),
  qstats: () => messages('mlx5-eth0.qstats.bin').map((m) => decodeQstats(m.buf, m.start, m.end)),
  queues: () => messages('mlx5-eth0.queues.bin').map((m) => decodeQueue(m.buf, m.start, m.end)),
  napis: () => messages('mlx5-eth0.napis.bin').map((m) => decodeNapi(m.buf, m.start, m.end)),
};

export const virtio = {
  rings: () => single('virtio-eth0.rings.bin', decodeRings),
  channels: () => single('virtio-eth0.channels.bin', decodeChannels),
  coalesce: () => single('virtio-eth0.coalesce.bin', decodeCoalesce),
  features: () => single('virtio-eth0.features.bin', (b, s, e) => decodeFeatures(b, s, e)),
  stats: () => statsWithNames('virtio-eth0.stats.bin'),
  qstats: () => messages('virtio-eth0.qstats.bin').map((m) => decodeQstats(m.buf, m.start, m.end)),
  queues: () => messages('virtio-eth0.queues.bin').map((m) => decodeQueue(m.buf, m.start, m.end)),
  napis: () => messages('virtio-eth0.napis.bin').map((m) => decodeNapi(m.buf, m.start, m.end)),
};

/** Link kinds of the host-mq virtual devices (what rtnetlink IFLA_INFO_KIND would say). */
export const HOST_MQ_KINDS: Record<number, string | null> = { 7: 'bond', 8: 'vlan', 9: 'bridge', 10: 'veth', 11: 'tun', 12: 'openvswitch', 13: 'openvswitch', 1: null };

/**
 * A link lookup over a fixture tree: what an rtnetlink dump in that namespace would list (names and
 * indexes from class/net/DEV/uevent, kinds from the map), without statistics, so the nic collector
 * reads the tree's statistics files. `dumps` counts calls.
 */
export function fakeLinks(sysRoot = path.join(HOST_MQ, 'sys'), kinds: Record<number, string | null> = HOST_MQ_KINDS): LinkLookup & { dumps: number } {
  const base = path.join(sysRoot, 'class/net');
  const self = {
    dumps: 0,
    async links(): Promise<LinkRecord[]> {
      self.dumps++;
      return fs.readdirSync(base).map((name) => {
        const ifindex = Number(/^IFINDEX=(\d+)$/m.exec(fs.readFileSync(path.join(base, name, 'uevent'), 'utf8'))![1]);
        const kind = kinds[ifindex];
        return kind ? { ifindex, name, kind, type: 1, flags: 0 } : { ifindex, name, type: 1, flags: 0 };
      });
    },
  };
  return self;
}

export type { NicDeps };
