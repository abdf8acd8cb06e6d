// Socket owners (/proc/PID/fd → socket:[INODE]) and thread counters (/proc/PID/task/TID/{stat,schedstat,
// status}) on fixture trees, and the per-window thread shares the diagnosis derives from them.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SocketOwnerFinder } from '../../src/sources/procfs/sockowners';
import { TaskReader, parseSchedstat, parseTaskStat, readTasks } from '../../src/sources/procfs/tasks';
import { heldCount } from '../../src/sources/procfs/read';
import { summarizeOwners, threadDeltas } from '../../src/diagnosis/summarize';
import type { NodeSnapshot, TaskSnapshot } from '../../src/diagnosis/types';

// The scans' time bound (maxScanMs, 5 ms by default) is the caller's protection, not what these tests
// check: on a loaded machine a scan of the fixture tree can take longer, so they lift it.
const UNTIMED = { maxScanMs: 60_000 };

let root: string;

/** /proc/<pid>/fd/<n> symlinks; targets need not exist ("socket:[N]", "/dev/null", ...). */
function proc(pids: Record<number, Record<string, string>>): void {
  for (const [pid, fds] of Object.entries(pids)) {
    fs.mkdirSync(path.join(root, pid, 'fd'), { recursive: true });
    for (const [fd, target] of Object.entries(fds)) fs.symlinkSync(target, path.join(root, pid, 'fd', fd));
  }
}

const STAT = (tid: number, comm: string, utime: number, stime: number, cpu: number) =>
  `${tid} (${comm}) R 1 ${tid} ${tid} 0 -1 4194560 100 0 0 0 ${utime} ${stime} 0 0 20 0 1 0 100 1000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 ${cpu} 0 0 0 0 0\n`;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-owners-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('SocketOwnerFinder', () => {
  it('finds the processes holding each socket (newest pids first, the scan ends when all are found); re-checks them with one readlink each', () => {
    proc({ 100: { 0: '/dev/null', 3: 'socket:[555]' }, 200: { 4: 'socket:[555]', 5: 'socket:[777]' }, 300: { 1: 'pipe:[9]' }, 400: { 2: 'socket:[888]' } });
    const f = new SocketOwnerFinder(root, UNTIMED);
    expect(f.find([555, 777, 888], 0)).toEqual(
      new Map([
        [555, { pids: [200] }],
        [777, { pids: [200] }],
        [888, { pids: [400] }],
      ]),
    );
    expect(f.linksRead).toBe(4); // 400, 300, 200: pid 100 is never read
    const scans = f.scans;
    expect(f.find([555, 777], 10).get(555)).toEqual({ pids: [200] });
    expect(f.scans).toBe(scans); // no new scan
    expect(f.linksRead).toBe(6); // (200,4) (200,5); 888 is no longer asked for
    // a socket held by two processes, both found when the scan has to go on past the first
    const g = new SocketOwnerFinder(root, UNTIMED);
    expect(g.find([555, 999], 0).get(555)).toEqual({ pids: [100, 200] });
  });

  it('drops an owner that closed the socket; a socket nobody holds is "not found", rescanned at most every rescanMs', () => {
    proc({ 100: { 3: 'socket:[555]' } });
    const f = new SocketOwnerFinder(root, { ...UNTIMED, rescanMs: 5000 });
    expect(f.find([555], 0).get(555)?.pids).toEqual([100]);
    fs.unlinkSync(path.join(root, '100', 'fd', '3'));
    const gone = f.find([555], 100).get(555);
    expect(gone?.pids).toEqual([]);
    expect(gone?.unknown).toMatch(/no process/);
    const scans = f.scans;
    f.find([555], 200);
    expect(f.scans).toBe(scans); // within rescanMs
    f.find([555], 6000);
    expect(f.scans).toBe(scans + 1);
  });

  it('a scan is bounded: it reads at most maxLinksPerScan symlinks per call and resumes, newest pids first', () => {
    const pids: Record<number, Record<string, string>> = {};
    for (let p = 100; p < 110; p++) pids[p] = { 0: '/dev/null', 1: '/dev/null' };
    pids[101] = { 0: '/dev/null', 7: 'socket:[42]' };
    proc(pids);
    const f = new SocketOwnerFinder(root, { ...UNTIMED, maxLinksPerScan: 4 });
    const first = f.find([42], 0).get(42);
    expect(first?.pids).toEqual([]);
    expect(first?.unknown).toMatch(/not reached it yet/);
    expect(f.linksRead).toBe(4);
    let r = f.find([42], 1).get(42);
    for (let i = 0; i < 5 && r?.pids.length === 0; i++) r = f.find([42], 2 + i).get(42);
    expect(r).toEqual({ pids: [101] });
  });

  it('a process with many descriptors is read over several calls without starting over', () => {
    const fds: Record<string, string> = {};
    for (let i = 0; i < 10; i++) fds[String(i)] = i === 9 ? 'socket:[31]' : '/dev/null';
    proc({ 500: fds });
    const f = new SocketOwnerFinder(root, { ...UNTIMED, maxLinksPerScan: 3 });
    const calls: Array<number[]> = [];
    for (let t = 0; t < 4; t++) calls.push(f.find([31], t).get(31)?.pids ?? []);
    expect(calls).toEqual([[], [], [], [500]]);
    expect(f.linksRead).toBe(10);
  });

  it('without permission the owner is unknown, with the reason — never "no owner"', () => {
    proc({ 100: { 3: 'socket:[1]' }, 200: { 3: 'socket:[2]' } });
    const denied = (p: fs.PathLike) => {
      if (String(p).endsWith(`${path.sep}fd`)) {
        const e = new Error('EACCES') as NodeJS.ErrnoException;
        e.code = 'EACCES';
        throw e;
      }
      return fs.readdirSync(p);
    };
    const f = new SocketOwnerFinder(root, { ...UNTIMED, io: { readdirSync: denied as typeof fs.readdirSync, readlinkSync: fs.readlinkSync } });
    const r = f.find([555], 0).get(555);
    expect(r?.pids).toEqual([]);
    expect(r?.unknown).toMatch(/no permission to read \/proc\/PID\/fd of 2 processes \(EACCES/);
  });

  it('ignores inodes that are not positive integers', () => {
    expect(new SocketOwnerFinder(root, UNTIMED).find([0, -1, NaN], 0).size).toBe(0);
  });
});

describe('thread counters', () => {
  it('parses task stat (comm with spaces and parentheses, processor field 39) and schedstat', () => {
    expect(parseTaskStat(STAT(901, 'iperf3 (x) y', 250, 40, 1))).toEqual({ tid: 901, comm: 'iperf3 (x) y', state: 'R', utime: 250, stime: 40, cpuTicks: 290, processor: 1 });
    expect(parseSchedstat('123456789 2000 77\n')).toEqual({ runNs: 123456789, waitNs: 2000 });
    expect(() => parseSchedstat('x y')).toThrow(/expected/);
    expect(() => parseTaskStat('901 iperf3 R')).toThrow(/comm/);
  });

  it('reads the threads of a process (stat, schedstat, status on request); an exited process gives []', () => {
    const t = (tid: number) => path.join(root, '900', 'task', String(tid));
    for (const tid of [900, 901]) {
      fs.mkdirSync(t(tid), { recursive: true });
      fs.writeFileSync(path.join(t(tid), 'stat'), STAT(tid, tid === 900 ? 'main' : 'writer', 10 * tid - 8990, 5, tid - 900));
      fs.writeFileSync(path.join(t(tid), 'schedstat'), `${tid}000000 ${tid} 5\n`);
      fs.writeFileSync(path.join(t(tid), 'status'), `Name:\tx\nvoluntary_ctxt_switches:\t${tid - 800}\nnonvoluntary_ctxt_switches:\t3\n`);
    }
    const ts = readTasks(root, 900, 256, true);
    expect(ts.map((x) => [x.tid, x.comm, x.cpuTicks, x.processor, x.runNs, x.waitNs, x.voluntarySwitches])).toEqual([
      [900, 'main', 15, 0, 900000000, 900, 100],
      [901, 'writer', 25, 1, 901000000, 901, 101],
    ]);
    expect(readTasks(root, 900)[0].voluntarySwitches).toBeUndefined();
    expect(readTasks(root, 12345)).toEqual([]);
  });

  it('a TaskReader reads what readTasks reads, keeps /proc descriptors open and closes them with sweep()', () => {
    const r = new TaskReader('/proc');
    const before = heldCount();
    const tids = (xs: Array<{ tid: number }>) => xs.map((x) => x.tid);
    const a = r.read(process.pid);
    expect(tids(a)).toEqual(tids(readTasks('/proc', process.pid)));
    expect(a.find((x) => x.tid === process.pid)?.comm).toBeTruthy();
    expect(heldCount()).toBe(before + 2 * a.length); // stat and schedstat of each thread
    const b = r.read(process.pid); // read again from the held descriptors: the same threads, time moving on
    expect(tids(b)).toEqual(tids(a));
    expect(b[0].cpuTicks).toBeGreaterThanOrEqual(a[0].cpuTicks);
    r.sweep(); // the process was read this round: kept
    expect(heldCount()).toBe(before + 2 * a.length);
    r.sweep(); // not read since: closed
    expect(heldCount()).toBe(before);
    // Fixtures (not procfs) are never held; an exited process reads as [].
    fs.mkdirSync(path.join(root, '900', 'task', '900'), { recursive: true });
    fs.writeFileSync(path.join(root, '900', 'task', '900', 'stat'), STAT(900, 'main', 10, 5, 0));
    const f = new TaskReader(root);
    expect(f.read(900).map((x) => [x.tid, x.cpuTicks, x.runNs])).toEqual([[900, 15, undefined]]);
    expect(f.read(12345)).toEqual([]);
    expect(heldCount()).toBe(before);
    f.close();
    r.close();
  });
});

describe('thread shares over a window', () => {
  const task = (tid: number, runS: number, waitS: number, vol?: number): TaskSnapshot => ({ pid: 5, tid, comm: `t${tid}`, cpuTicks: Math.round(runS * 100), runNs: runS * 1e9, waitNs: waitS * 1e9, processor: 1, voluntarySwitches: vol });
  it('run, wait, demand and blocks per second; busiest first; a wait that began before the window is clamped', () => {
    const d = threadDeltas([task(1, 10, 1, 100), task(2, 3, 0, 5), task(3, 0, 0)], [task(1, 11.9, 1.05, 110), task(2, 3.1, 0.5, 405), task(4, 9, 9)], 2);
    expect(d.map((x) => [x.tid, +x.runShare.toFixed(3), +(x.waitShare ?? -1).toFixed(3), +x.demand.toFixed(3), x.sleepsPerSecond])).toEqual([
      [1, 0.95, 0.025, 0.975, 5],
      [2, 0.05, 0.25, 0.3, 200],
    ]);
    // schedstat adds a run-queue wait when it ends: clamp to the window
    expect(threadDeltas([task(1, 0, 0)], [task(1, 1.5, 3)], 2)[0].demand).toBe(1);
    // without schedstat: utime + stime ticks
    const noSched = (x: TaskSnapshot): TaskSnapshot => ({ ...x, runNs: undefined, waitNs: undefined });
    expect(threadDeltas([noSched(task(1, 1, 0))], [noSched(task(1, 2, 0))], 2)[0]).toMatchObject({ runShare: 0.5, waitShare: undefined, demand: 0.5 });
  });

  it('owners: the baseline is the earliest snapshot that already knew the owner', () => {
    const snap = (t: number, tasks: TaskSnapshot[] | null): NodeSnapshot => ({ t, devices: [], qdiscs: [], cpus: [], errors: [], owners: tasks ? [{ inode: 9, pids: [5], tasks }] : undefined });
    const a = snap(0, null);
    const b = snap(1000, [task(1, 1, 0)]);
    const c = snap(3000, [task(1, 2.8, 0.1)]);
    const o = summarizeOwners([a, b, c], c);
    expect(o[0].threads[0].runShare).toBeCloseTo(0.9);
    expect(summarizeOwners([c], c)[0].threads).toEqual([]); // read once: no window yet
  });
});

describe('SocketOwnerFinder time bound', () => {
  it('a call with no time left reads no link and finds nothing yet', () => {
    proc({ 100: { 3: 'socket:[555]' } });
    const f = new SocketOwnerFinder(root, { maxScanMs: 0 });
    const r = f.find([555], 0).get(555);
    expect(f.linksRead).toBe(0);
    expect(r?.pids ?? []).toEqual([]);
  });
});
