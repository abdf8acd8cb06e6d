// One read of everything OVS tells us, as a typed snapshot (no metric names here).
//
// Sources:
// - unixctl (ovs-vswitchd's control socket): version, dpctl/show -s, dpif/show, upcall/show,
//   dpif-netdev/pmd-stats-show (only when a userspace "netdev@" datapath exists), coverage/show plus
//   coverage/read-counter for curated counters (see parse-coverage.ts);
// - generic netlink (kernel datapath), only when openvswitch.ko is loaded (../netlink/ovs.ts).
// The two are independent: either can be up while the other is not.
//
// A transport failure in the middle of a unixctl read (ovs-vswitchd killed, hung, socket gone) discards
// that read's unixctl data: a snapshot never mixes numbers from before and after a restart. A command that
// ovs-vswitchd rejects, or whose reply does not parse, only loses that command's data (recorded in
// `commands`).

import { Logger, StateLogger } from '../../core/log';
import { NETLINK_GENERIC, NetlinkSocket } from '../netlink/socket';
import { KernelOvsState, ovsModuleLoaded, readKernelOvs, type GenlRequester } from '../netlink/ovs';
import { DiscoverOptions, discoverUnixctl } from './discover';
import { UnixctlClient, UnixctlCommandError } from './unixctl';
import { OvsDatapathStats, parseDpctlShow } from './parse-dpctl';
import { DpifBacker, OFPP_LOCAL, isInternalType, parseDpifShow } from './parse-dpif';
import { UpcallDatapath, parseUpcallShow } from './parse-upcall';
import { PmdThreadStats, parsePmdStats } from './parse-pmd';
import { CURATED_COVERAGE, parseCoverageShow, parseReadCounter } from './parse-coverage';
import { OvsVersion, parseVersion } from './parse-version';

export interface CommandResult {
  command: string;
  ok: boolean;
  error?: string;
}

export interface UnixctlSnapshot {
  up: boolean;
  /** Why ovs-vswitchd could not be read (when !up). */
  error?: string;
  /** Socket path of the connection used. */
  endpoint?: string;
  /** Connections opened so far (grows by one after each ovs-vswitchd restart). */
  connects: number;
  version?: OvsVersion;
  commands: CommandResult[];
  datapaths?: OvsDatapathStats[];
  dpif?: DpifBacker[];
  upcall?: UpcallDatapath[];
  pmd?: PmdThreadStats[];
  /** The userspace datapath pmd-stats-show describes. */
  pmdDatapath?: string;
  /** Curated coverage counter -> total; only counters this build defines. */
  coverage?: Map<string, number>;
  /** Lines of known commands that no parser recognised ("command: line N: ..."). */
  unparsed: string[];
}

export interface KernelSnapshot {
  /** /sys/module/openvswitch exists. */
  moduleLoaded: boolean;
  /** Read attempted and succeeded (undefined when the module is not loaded). */
  ok?: boolean;
  error?: string;
  state?: KernelOvsState;
}

export interface InternalPort {
  /** Netdev name of the internal port (same as the OVS port name). */
  device: string;
  /** Bridge it belongs to; "" when only the kernel datapath was readable (genl does not know bridges). */
  bridge: string;
  /** "netdev@ovs-netdev", "system@ovs-system". */
  datapath: string;
  /** The bridge's own port (OpenFlow LOCAL, 65534). */
  local: boolean;
  /** OVS port type as listed: "internal" (kernel dp) or "tap" (userspace dp). */
  type: string;
  source: 'unixctl' | 'genl';
}

export interface OvsSnapshot {
  /** When this read finished (ms since epoch). */
  takenAt: number;
  durationSeconds: number;
  /** Last time ovs-vswitchd answered (ms since epoch), carried over from earlier snapshots. */
  lastUnixctlSuccessAt?: number;
  unixctl: UnixctlSnapshot;
  kernel: KernelSnapshot;
  internalPorts: InternalPort[];
}

export interface OvsReaderOptions {
  discover: DiscoverOptions;
  /** Deadline per unixctl call / netlink request. */
  timeoutMs: number;
  sysfs: string;
  log: Logger;
  /** For tests: a replaying genetlink socket. */
  genlSocket?: () => GenlRequester & { close?: () => void };
  /** Clock (ms); tests may fix it. */
  now?: () => number;
}

export class OvsReader {
  readonly client: UnixctlClient;
  private genl: (GenlRequester & { close?: () => void }) | null = null;
  private readonly states: StateLogger;
  private versionFor = -1;
  private version?: OvsVersion;
  /** Outcome of `version` on this connection, repeated in every read of it (a stable series). */
  private versionResult?: CommandResult;
  /** Per connection: curated coverage counters known to exist (true) or not (false) in this build. */
  private coverageExists = new Map<string, boolean>();
  private coverageFor = -1;
  private readCounterSupported = true;
  private lastSuccessAt?: number;

  constructor(private readonly opts: OvsReaderOptions) {
    this.client = new UnixctlClient({ resolve: () => discoverUnixctl(opts.discover), timeoutMs: opts.timeoutMs });
    this.states = new StateLogger(opts.log);
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  private inFlight: Promise<OvsSnapshot> | null = null;
  private last: OvsSnapshot | null = null;

  /**
   * Read OVS. Concurrent callers share one read; with maxAgeMs > 0 a snapshot taken at most that long
   * ago is returned instead of asking ovs-vswitchd again (the ovs collector and the diagnosis sampler
   * share one reader this way, so vswitchd is asked once per interval).
   */
  read(maxAgeMs = 0): Promise<OvsSnapshot> {
    if (this.inFlight) return this.inFlight;
    if (this.last && maxAgeMs > 0 && this.now() - this.last.takenAt <= maxAgeMs) return Promise.resolve(this.last);
    const p = this.readFresh().then(
      (snap) => {
        this.last = snap;
        this.inFlight = null;
        return snap;
      },
      (e: unknown) => {
        this.inFlight = null;
        throw e;
      },
    );
    this.inFlight = p;
    return p;
  }

  private async readFresh(): Promise<OvsSnapshot> {
    const t0 = process.hrtime.bigint();
    const [unixctl, kernel] = await Promise.all([this.readUnixctl(), this.readKernel()]);
    const takenAt = this.now();
    if (unixctl.up) this.lastSuccessAt = takenAt;
    return {
      takenAt,
      durationSeconds: Number(process.hrtime.bigint() - t0) / 1e9,
      lastUnixctlSuccessAt: this.lastSuccessAt,
      unixctl,
      kernel,
      internalPorts: internalPortsOf(unixctl, kernel),
    };
  }

  close(): void {
    this.client.close();
    this.genl?.close?.();
    this.genl = null;
  }

  private async readUnixctl(): Promise<UnixctlSnapshot> {
    const snap: UnixctlSnapshot = { up: false, connects: this.client.connects, commands: [], unparsed: [] };
    try {
      await this.unixctlBody(snap);
      snap.up = true;
      this.states.report('ovs-vswitchd unixctl', null);
    } catch (e) {
      // Transport failure: drop everything read in this round.
      const err = e as Error;
      this.states.report('ovs-vswitchd unixctl', err.message);
      return { up: false, error: err.message, connects: this.client.connects, commands: [], unparsed: [] };
    }
    snap.connects = this.client.connects;
    snap.endpoint = this.client.endpoint?.path;
    for (const c of snap.commands) this.states.report(`unixctl ${c.command}`, c.ok ? null : c.error);
    this.states.report('unixctl unparsed lines', snap.unparsed.length ? `lines not understood: ${snap.unparsed.slice(0, 3).join(' | ')}` : null);
    return snap;
  }

  /** Runs a command; command errors and parse errors are recorded, transport errors propagate. */
  private async cmd<T>(snap: UnixctlSnapshot, method: string, params: string[], parse: (text: string) => T): Promise<T | undefined> {
    const command = [method, ...params].join(' ');
    let text: string;
    try {
      text = await this.client.call(method, params);
    } catch (e) {
      if (e instanceof UnixctlCommandError) {
        snap.commands.push({ command, ok: false, error: e.message });
        return undefined;
      }
      throw e;
    }
    try {
      const v = parse(text);
      snap.commands.push({ command, ok: true });
      return v;
    } catch (e) {
      snap.commands.push({ command, ok: false, error: `${command}: reply not understood: ${(e as Error).message}` });
      return undefined;
    }
  }

  private async unixctlBody(snap: UnixctlSnapshot): Promise<void> {
    // `version` once per connection (it also proves the connection works before the bigger replies).
    // Later reads on the same connection (the same ovs-vswitchd process: a restart means a new
    // connection) repeat that outcome, so flowpath_ovs_unixctl_command_success{command="version"}
    // does not come and go between refreshes.
    if (this.versionFor !== this.client.connects || !this.client.connected) {
      this.versionResult = undefined;
      const v = await this.cmd(snap, 'version', [], parseVersion);
      this.version = v;
      this.versionResult = snap.commands.find((c) => c.command === 'version');
      this.versionFor = this.client.connects;
    } else if (this.versionResult) snap.commands.push(this.versionResult);
    snap.version = this.version;
    if (this.coverageFor !== this.client.connects) {
      // A new connection may be a new ovs-vswitchd (another build): forget what we learnt.
      this.coverageExists = new Map();
      this.readCounterSupported = true;
      this.coverageFor = this.client.connects;
    }

    const collectUnparsed = (command: string, lines: string[]) => {
      for (const l of lines) snap.unparsed.push(`${command}: ${l}`);
    };

    snap.datapaths = await this.cmd(snap, 'dpctl/show', ['-s'], (t) => {
      const r = parseDpctlShow(t);
      for (const dp of r) collectUnparsed('dpctl/show', dp.unparsed);
      return r;
    });
    snap.dpif = await this.cmd(snap, 'dpif/show', [], parseDpifShow);
    snap.upcall = await this.cmd(snap, 'upcall/show', [], (t) => {
      const r = parseUpcallShow(t);
      for (const dp of r) collectUnparsed('upcall/show', dp.unparsed);
      return r;
    });
    const netdevDp = snap.datapaths?.find((d) => d.type === 'netdev');
    if (netdevDp) {
      snap.pmd = await this.cmd(snap, 'dpif-netdev/pmd-stats-show', [], (t) => {
        const r = parsePmdStats(t);
        for (const th of r) collectUnparsed('dpif-netdev/pmd-stats-show', th.unparsed);
        return r;
      });
      if (snap.pmd) snap.pmdDatapath = netdevDp.name;
    }
    const cov = await this.cmd(snap, 'coverage/show', [], parseCoverageShow);
    if (cov) snap.coverage = await this.curatedCoverage(snap, cov.totals);
  }

  /**
   * Totals of the curated counters. coverage/show omits counters that never fired; for each such name
   * coverage/read-counter is asked once per connection whether this build defines it (it answers the total
   * or "No such counter"). Defined and absent => 0, as OVS's "N events never hit" says; not defined =>
   * not exported. Without read-counter (older OVS) absent counters are not exported.
   */
  private async curatedCoverage(snap: UnixctlSnapshot, totals: Map<string, number>): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const name of CURATED_COVERAGE) {
      const t = totals.get(name);
      if (t !== undefined) {
        out.set(name, t);
        this.coverageExists.set(name, true);
        continue;
      }
      let exists = this.coverageExists.get(name);
      if (exists === undefined && this.readCounterSupported) {
        try {
          const v = parseReadCounter(await this.client.call('coverage/read-counter', [name]), name);
          exists = true;
          // It may have fired between the two calls; the read-counter total is as good as show's.
          out.set(name, v);
          this.coverageExists.set(name, true);
          continue;
        } catch (e) {
          if (!(e instanceof UnixctlCommandError)) throw e;
          if (/not a valid command/i.test(e.serverMessage)) {
            this.readCounterSupported = false;
            snap.commands.push({ command: 'coverage/read-counter', ok: false, error: e.message });
          } else {
            exists = false;
            this.coverageExists.set(name, false);
          }
        }
      }
      if (exists) out.set(name, 0);
    }
    return out;
  }

  private async readKernel(): Promise<KernelSnapshot> {
    if (!(await ovsModuleLoaded(this.opts.sysfs))) {
      this.states.report('ovs kernel datapath (genetlink)', null);
      if (this.genl) {
        this.genl.close?.();
        this.genl = null;
      }
      return { moduleLoaded: false };
    }
    try {
      this.genl ??= this.opts.genlSocket?.() ?? new NetlinkSocket(NETLINK_GENERIC, { timeoutMs: this.opts.timeoutMs });
      const state = await readKernelOvs(this.genl, this.opts.sysfs, this.opts.timeoutMs);
      if (!state) {
        const error = 'openvswitch module loaded but the ovs_datapath/ovs_vport genetlink families are not registered';
        this.states.report('ovs kernel datapath (genetlink)', error);
        return { moduleLoaded: true, ok: false, error };
      }
      this.states.report('ovs kernel datapath (genetlink)', null);
      return { moduleLoaded: true, ok: true, state };
    } catch (e) {
      // Reopen the socket next time (a timed-out request may leave late replies behind).
      this.genl?.close?.();
      this.genl = null;
      const error = (e as Error).message;
      this.states.report('ovs kernel datapath (genetlink)', error);
      return { moduleLoaded: true, ok: false, error };
    }
  }
}

/**
 * Internal ports and their bridges. unixctl's dpif/show knows bridges; for a kernel datapath that only
 * genetlink could read, internal vports are listed with bridge "" (the datapath's own port excluded).
 */
export function internalPortsOf(unixctl: UnixctlSnapshot, kernel: KernelSnapshot): InternalPort[] {
  const out: InternalPort[] = [];
  const seenDp = new Set<string>();
  for (const backer of unixctl.up ? (unixctl.dpif ?? []) : []) {
    seenDp.add(backer.datapath);
    for (const br of backer.bridges) {
      for (const p of br.ports) {
        if (!isInternalType(p.type)) continue;
        out.push({ device: p.name, bridge: br.name, datapath: backer.datapath, local: p.ofPort === OFPP_LOCAL, type: p.type, source: 'unixctl' });
      }
    }
  }
  for (const dp of kernel.state?.datapaths ?? []) {
    const dpName = `system@${dp.name}`;
    if (seenDp.has(dpName)) continue;
    for (const v of dp.vports) {
      if (v.type !== 'internal' || v.name === undefined || v.portNo === 0) continue;
      out.push({ device: v.name, bridge: '', datapath: dpName, local: false, type: v.type, source: 'genl' });
    }
  }
  return out;
}
