// softnet_stat / softirqs / stat / ksoftirqd parsers and the softirq collector on fixtures
// (test/fixtures/softnet/README.md, test/fixtures/procfs/README.md).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Config } from '../../src/core/flags';
import { nullLogger } from '../../src/core/log';
import { Emitter } from '../../src/core/metrics';
import { parseSoftnetStat } from '../../src/sources/procfs/softnet';
import { parseSoftirqs } from '../../src/sources/procfs/softirqs';
import { parseProcStatCpus } from '../../src/sources/procfs/stat';
import { KsoftirqdTracker, parsePidStat } from '../../src/sources/procfs/ksoftirqd';
import { parseAuxvClockTicks, parseCpuList } from '../../src/sources/procfs/cpuinfo';
import { ProcParseError } from '../../src/sources/procfs/read';
import { makeSoftirqCollector } from '../../src/collectors/softirq';
import { allFlags } from '../../src/exporter';
import { promtoolAvailable, promtoolCheckMetrics } from '../support/promtool';

const FIX = path.join(__dirname, '../fixtures');
const softnetFile = (n: string) => fs.readFileSync(path.join(FIX, 'softnet', n), 'latin1');

describe('parseSoftnetStat', () => {
  it('9 columns: processed, dropped, time_squeeze, cpu_collision; nothing newer', () => {
    const rows = parseSoftnetStat(softnetFile('softnet-9col.txt'));
    expect(rows).toEqual([
      { cpu: 0, processed: 100, dropped: 1, timeSqueeze: 2, cpuCollision: 3, columns: 9 },
      { cpu: 1, processed: 200, dropped: 0, timeSqueeze: 4, cpuCollision: 0, columns: 9 },
    ]);
  });

  it('10 and 11 columns add received_rps and flow_limit_count', () => {
    const r10 = parseSoftnetStat(softnetFile('softnet-10col.txt'))[1];
    expect(r10.receivedRps).toBe(6);
    expect(r10.flowLimitCount).toBeUndefined();
    const r = parseSoftnetStat(softnetFile('softnet-11col.txt'));
    expect(r[0]).toMatchObject({ receivedRps: 5, flowLimitCount: 7 });
    expect(r[0].backlogLen).toBeUndefined();
  });

  it('without the index column, maps lines to the online CPUs (an offline CPU does not shift them)', () => {
    const r = parseSoftnetStat(softnetFile('softnet-11col.txt'), [0, 3]);
    expect(r.map((x) => x.cpu)).toEqual([0, 3]);
    expect(() => parseSoftnetStat(softnetFile('softnet-11col.txt'), [0, 1, 3])).toThrow(/2 lines without a CPU index column but 3 online CPUs/);
  });

  it('13 columns: backlog length and the CPU index (CPU 1 offline)', () => {
    const r = parseSoftnetStat(softnetFile('softnet-13col.txt'), [0, 1, 2] /* ignored: the index column wins */);
    expect(r.map((x) => [x.cpu, x.backlogLen, x.inputQueueLen])).toEqual([
      [0, 9, undefined],
      [2, 10, undefined],
    ]);
  });

  it('15 columns (captured on 6.18) and 17 columns (extras ignored)', () => {
    const r15 = parseSoftnetStat(softnetFile('softnet-15col-6.18.txt'));
    expect(r15.map((x) => x.cpu)).toEqual([0, 1]);
    expect(r15[0].processed).toBe(0x00fc0444);
    expect(r15[0]).toHaveProperty('processQueueLen', 0);
    const r17 = parseSoftnetStat(softnetFile('softnet-17col.txt'));
    expect(r17[0]).toMatchObject({ cpu: 0, backlogLen: 9, inputQueueLen: 4, processQueueLen: 5, columns: 17 });
  });

  it.each([
    ['bad-8col.txt', /:1: 8 columns, expected at least 9/],
    ['bad-nonhex.txt', /:1: column 2 "0000000g" is not a hex u32/],
    ['bad-overflow.txt', /column 1 "100000064" is not a hex u32/],
    ['bad-duplicate-cpu.txt', /CPU 1 appears twice/],
  ])('%s -> ProcParseError', (file, msg) => {
    expect(() => parseSoftnetStat(softnetFile(file), undefined, file)).toThrow(ProcParseError);
    expect(() => parseSoftnetStat(softnetFile(file), undefined, file)).toThrow(msg);
  });
});

describe('parseSoftirqs', () => {
  it('keeps a column per possible CPU, offline ones included', () => {
    const s = parseSoftirqs(fs.readFileSync(path.join(FIX, 'procfs/old-4.9-offline/proc/softirqs'), 'latin1'));
    expect(s.cpus).toEqual([0, 1, 2, 3]);
    expect(s.vectors.map((v) => v.name)).toEqual(['HI', 'TIMER', 'NET_TX', 'NET_RX', 'BLOCK', 'BLOCK_IOPOLL', 'TASKLET', 'SCHED', 'HRTIMER', 'RCU']);
    expect(s.vectors[3].counts).toEqual([5000000, 4000, 7, 4294967295]);
  });
  it('rejects a row with the wrong number of values, a bad header, a non-number', () => {
    expect(() => parseSoftirqs('   CPU0 CPU1\n HI: 1\n')).toThrow(/:2: 1 values for 2 CPUs/);
    expect(() => parseSoftirqs('   CPU0 XYZ\n HI: 1 2\n')).toThrow(/header field "XYZ"/);
    expect(() => parseSoftirqs('   CPU0\n HI: -1\n')).toThrow(/value "-1" is not a decimal count/);
    expect(() => parseSoftirqs('')).toThrow(/empty file/);
  });
});

describe('parseProcStatCpus', () => {
  it('reads cpuN lines (online CPUs only), skips the total, stops before intr', () => {
    const c = parseProcStatCpus(fs.readFileSync(path.join(FIX, 'procfs/old-4.9-offline/proc/stat'), 'latin1'));
    expect(c.map((x) => x.cpu)).toEqual([0, 1, 3]);
    expect(c[0].ticks).toEqual([10000, 25, 5000, 200000, 125, 100, 6000, 2, 0, 0]);
  });
  it('accepts the shorter lines of old kernels and rejects garbage', () => {
    expect(parseProcStatCpus('cpu  1 2 3 4\ncpu0 1 2 3 4\n')[0].ticks).toEqual([1, 2, 3, 4]);
    expect(() => parseProcStatCpus('cpu0 1 2 x 4 5\n')).toThrow(/:1: value "x" is not a tick count/);
    expect(() => parseProcStatCpus('intr 1 2 3\n')).toThrow(/no cpuN lines/);
    expect(() => parseProcStatCpus('cpu0 1 2\n')).toThrow(/2 time columns/);
  });
});

describe('ksoftirqd', () => {
  it('parsePidStat handles a comm with spaces and parentheses', () => {
    const s = parsePidStat('31 (kworker/0:1 (odd)) S 2 0 0 0 -1 69238848 0 0 0 0 7 11 0 0 20 0 1 0 18\n');
    expect(s).toEqual({ pid: 31, comm: 'kworker/0:1 (odd)', utime: 7, stime: 11 });
    expect(() => parsePidStat('31 (x) S 2\n')).toThrow(/fields, expected at least 15/);
  });

  it('finds the threads via kthreadd children, caches them, and rescans when a pid goes away', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-ksi-'));
    try {
      fs.cpSync(path.join(FIX, 'procfs/vm-6.18/proc'), dir, { recursive: true });
      const t = new KsoftirqdTracker(dir);
      const first = t.read(0, [0, 1]);
      expect(first.map((k) => [k.cpu, k.pid])).toEqual([
        [0, 14],
        [1, 22],
      ]);
      expect(t.scans).toBe(1);
      t.read(1000, [0, 1]);
      expect(t.scans).toBe(1); // cached
      // ksoftirqd/1 "restarts" with another pid
      fs.rmSync(path.join(dir, '22'), { recursive: true });
      fs.mkdirSync(path.join(dir, '99'));
      fs.writeFileSync(path.join(dir, '99/comm'), 'ksoftirqd/1\n');
      fs.writeFileSync(path.join(dir, '99/stat'), '99 (ksoftirqd/1) S 2 0 0 0 -1 69238848 0 0 0 0 3 4 0 0 20 0 1 0 18\n');
      fs.writeFileSync(path.join(dir, '2/task/2/children'), '14 99 ');
      const again = t.read(2000, [0, 1]);
      expect(t.scans).toBe(2);
      expect(again.find((k) => k.cpu === 1)).toEqual({ cpu: 1, pid: 99, ticks: 7 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('scans /proc/<pid> when kthreadd children are not available, and rate-limits rescans for missing CPUs', () => {
    const t = new KsoftirqdTracker(path.join(FIX, 'procfs/old-4.9-offline/proc'));
    const r = t.read(0, [0, 1, 3]);
    expect(r.map((k) => [k.cpu, k.ticks])).toEqual([
      [0, 1234],
      [1, 2350],
      [2, 17],
      [3, 99],
    ]);
    const empty = new KsoftirqdTracker(path.join(FIX, 'softnet')); // no pid directories at all
    expect(empty.read(0, [0])).toEqual([]);
    expect(empty.read(1000, [0])).toEqual([]);
    expect(empty.scans).toBe(1); // not rescanned within a minute
    empty.read(61_000, [0]);
    expect(empty.scans).toBe(2);
  });
});

describe('cpu helpers', () => {
  it('parseCpuList', () => {
    expect(parseCpuList('0-1,3\n')).toEqual([0, 1, 3]);
    expect(parseCpuList('0\n')).toEqual([0]);
    expect(parseCpuList('\n')).toEqual([]);
    expect(() => parseCpuList('0-x')).toThrow(/bad CPU list element/);
    expect(() => parseCpuList('3-1')).toThrow(/bad CPU range/);
  });
  it('parseAuxvClockTicks finds AT_CLKTCK (17)', () => {
    const b = Buffer.alloc(48);
    b.writeBigUInt64LE(6n, 0); // AT_PAGESZ
    b.writeBigUInt64LE(4096n, 8);
    b.writeBigUInt64LE(17n, 16);
    b.writeBigUInt64LE(100n, 24);
    expect(parseAuxvClockTicks(b)).toBe(100);
    expect(parseAuxvClockTicks(Buffer.alloc(32))).toBeUndefined(); // AT_NULL first
  });
});

async function collect(tree: string, userHz = 100): Promise<string> {
  const def = makeSoftirqCollector({ userHz });
  const config = Config.from(allFlags(), { 'path.procfs': path.join(tree, 'proc'), 'path.sysfs': path.join(tree, 'sys') });
  const out = new Emitter();
  await def.create({ config, log: nullLogger }).collect(out, { signal: new AbortController().signal, now: 0 });
  return out.render();
}

const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('softirq collector', () => {
  it('old kernel with an offline CPU: every source keyed by the right CPU', async () => {
    const text = await collect(path.join(FIX, 'procfs/old-4.9-offline'));
    // softnet line 3 is CPU 3 (via the online list), u32 max kept
    expect(value(text, 'flowpath_softnet_processed_packets_total{cpu="3"}')).toBe(0xffffffff);
    expect(value(text, 'flowpath_softnet_received_rps_total{cpu="3"}')).toBe(0xabcd);
    expect(value(text, 'flowpath_softnet_processed_packets_total{cpu="2"}')).toBeUndefined();
    expect(text).not.toContain('flowpath_softnet_backlog_packets'); // 11 columns: not printed by that kernel
    // /proc/softirqs has the offline CPU's column
    expect(value(text, 'flowpath_softirqs_total{cpu="2",vector="NET_RX"}')).toBe(7);
    expect(value(text, 'flowpath_softirqs_total{cpu="3",vector="NET_RX"}')).toBe(4294967295);
    // /proc/stat at USER_HZ 100
    expect(value(text, 'flowpath_cpu_seconds_total{cpu="0",mode="softirq"}')).toBe(60);
    expect(value(text, 'flowpath_cpu_seconds_total{cpu="3",mode="irq"}')).toBe(1);
    expect(value(text, 'flowpath_cpu_seconds_total{cpu="3",mode="steal"}')).toBe(0.02);
    expect(text).not.toContain('mode="guest"');
    expect(value(text, 'flowpath_ksoftirqd_cpu_seconds_total{cpu="1"}')).toBe(23.5);
    if (promtoolAvailable()) expect(promtoolCheckMetrics(text)).toEqual({ status: 0, output: '' });
  });

  it('captured 6.18 tree: all 15 softnet columns present', async () => {
    const text = await collect(path.join(FIX, 'procfs/vm-6.18'));
    for (const fam of ['processed_packets_total', 'time_squeeze_total', 'flow_limit_count_total', 'backlog_packets', 'input_queue_packets', 'process_queue_packets']) {
      expect(value(text, `flowpath_softnet_${fam}{cpu="1"}`)).not.toBeUndefined();
    }
    // the second line's CPU index column says 1; its backlog column is 0
    expect(value(text, 'flowpath_softnet_backlog_packets{cpu="1"}')).toBe(0);
    expect(value(text, 'flowpath_softnet_processed_packets_total{cpu="1"}')).toBe(0x0110dcf7);
    if (promtoolAvailable()) expect(promtoolCheckMetrics(text)).toEqual({ status: 0, output: '' });
  });

  it.each([
    ['a missing /proc/softirqs', (d: string) => fs.rmSync(path.join(d, 'proc/softirqs')), /softirqs: cannot read \(ENOENT\)/],
    ['a malformed softnet_stat', (d: string) => fs.writeFileSync(path.join(d, 'proc/net/softnet_stat'), 'zz\n'), /softnet_stat:1: 1 columns/],
    ['a directory where /proc/stat should be', (d: string) => {
      fs.rmSync(path.join(d, 'proc/stat'));
      fs.mkdirSync(path.join(d, 'proc/stat'));
    }, /stat: cannot read \(EISDIR\)/],
  ])('fails with a clear error on %s', async (_what, breakIt, msg) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-softirq-'));
    try {
      fs.cpSync(path.join(FIX, 'procfs/old-4.9-offline'), dir, { recursive: true });
      breakIt(dir);
      await expect(collect(dir)).rejects.toThrow(msg);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
