// The device include/exclude regexes (--collector.nic.device-include/-exclude, shared by the nic, irq and
// qdisc collectors) are anchored like Prometheus relabel regexes: --help says so, and a regex that matches
// no device is logged as a warning naming the flag and the regex, once, not at every scrape.
import * as path from 'path';
import { Config } from '../../../src/core/flags';
import { Emitter } from '../../../src/core/metrics';
import { LogFields, Logger, nullLogger } from '../../../src/core/log';
import { allFlags } from '../../../src/exporter';
import { main } from '../../../src/cli';
import { createNicCollector } from '../../../src/collectors/nic';
import { createIrqCollector } from '../../../src/collectors/irq';
import { cachedDeviceNames } from '../../../src/collectors/qdisc';
import { SelectOptions, deviceIncludeFlag, selectDevices, warnUnmatchedDeviceRegexes } from '../../../src/sources/devices';
import { FakeEthtool, FakeNetdev, HOST_MQ, fakeLinks } from './fixtures';

const ctx = { signal: new AbortController().signal, now: 0 };

interface Line {
  level: 'warn' | 'info';
  msg: string;
  fields: LogFields;
}
function capture(): { log: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const log: Logger = {
    ...nullLogger,
    warn: (msg, fields = {}) => lines.push({ level: 'warn', msg, fields }),
    info: (msg, fields = {}) => lines.push({ level: 'info', msg, fields }),
    child: () => log,
  };
  return { log, lines };
}

const config = (flags: Record<string, string>) =>
  Config.from(allFlags(), { 'path.sysfs': path.join(HOST_MQ, 'sys'), 'path.procfs': path.join(HOST_MQ, 'proc'), ...flags });

const nic = (flags: Record<string, string>, log: Logger) =>
  createNicCollector(
    { config: config(flags), log },
    { ethtool: new FakeEthtool({}), netdev: new FakeNetdev({}), driverStats: { get: async () => ({ kind: 'unsupported', reason: 'none' }), retain: () => undefined }, links: fakeLinks() } as never,
  );
const irq = (flags: Record<string, string>, log: Logger) => createIrqCollector({ config: config(flags), log }, { netdev: new FakeNetdev({}), links: fakeLinks() });

async function scrape(c: { collect(out: Emitter, x: typeof ctx): Promise<void> }): Promise<string> {
  const out = new Emitter();
  await c.collect(out, ctx);
  return out.render();
}

describe('device include/exclude regexes', () => {
  it('--help says every regex flag is anchored and shows an anchored device example', async () => {
    let out = '';
    expect(await main(['--help'], { stdout: (s) => (out += s), stderr: () => undefined })).toBe(0);
    const lines = out.split('\n');
    const helpOf = (flag: string) => lines[lines.findIndex((l) => l.trim() === `--${flag}=<regex>`) + 1] ?? '';
    for (const flag of ['collector.nic.device-include', 'collector.nic.device-exclude']) {
      expect(helpOf(flag)).toMatch(/Anchored at both ends like Prometheus relabel regexes: it must match the whole name\./);
      expect(helpOf(flag)).toMatch(/matches no device is logged as a warning/);
    }
    expect(helpOf('collector.nic.device-include')).toContain('"eth.*|ens[0-9]+" (not "^eth"');
    const regexFlags = allFlags().filter((f) => f.placeholder === '<regex>');
    expect(regexFlags.length).toBeGreaterThanOrEqual(5);
    for (const f of regexFlags) expect(helpOf(f.name)).toContain('Anchored at both ends');
  });

  it('an include regex that matches no device: one warning naming flag and regex across scrapes and collectors', async () => {
    const { log, lines } = capture();
    const n = nic({ 'collector.nic.device-include': '^barq' }, log);
    const text = await scrape(n); // succeeds, with no device
    expect(text).not.toContain('flowpath_nic_info{');
    await scrape(n);
    await scrape(irq({ 'collector.nic.device-include': '^barq' }, log));
    // the qdisc collector's cached selection, with the same regex
    const qdiscNames = cachedDeviceNames((root, inc, exc, o: SelectOptions = {}) => selectDevices(root, inc, exc, { ...o, links: fakeLinks() }), log);
    expect((await qdiscNames(config({ 'collector.nic.device-include': '^barq' }), [1, 2, 3])).size).toBe(0);
    expect(lines).toHaveLength(1);
    expect(lines[0].level).toBe('warn');
    expect(lines[0].msg).toContain('--collector.nic.device-include="^barq" matches no network device');
    expect(lines[0].msg).toContain('anchored');
    expect(lines[0].fields).toMatchObject({ flag: 'collector.nic.device-include', regex: '^barq' });
    expect(String(lines[0].fields.devices)).toContain('eth0');
  });

  it('the qdisc collector warns through its own logger too', async () => {
    const { log, lines } = capture();
    const qdiscNames = cachedDeviceNames((root, inc, exc, o: SelectOptions = {}) => selectDevices(root, inc, exc, { ...o, links: fakeLinks() }), log);
    await qdiscNames(config({ 'collector.nic.device-include': 'qdisc-none[0-9]' }), [1]);
    expect(lines.map((l) => [l.level, l.fields.flag, l.fields.regex])).toEqual([['warn', 'collector.nic.device-include', 'qdisc-none[0-9]']]);
  });

  it('an exclude regex that matches no device is warned about; regexes that match are not', async () => {
    const { log, lines } = capture();
    await scrape(nic({ 'collector.nic.device-include': 'eth.*', 'collector.nic.device-exclude': 'eth9' }, log));
    expect(lines.map((l) => [l.level, l.fields.flag, l.fields.regex])).toEqual([['warn', 'collector.nic.device-exclude', 'eth9']]);
    await scrape(nic({ 'collector.nic.device-include': 'eth0|lo', 'collector.nic.device-exclude': 'lo' }, log));
    await scrape(nic({}, log)); // automatic selection, no regex
    expect(lines).toHaveLength(1);
  });

  it('says so when the regex matches a device again, and warns again if it stops', () => {
    const { log, lines } = capture();
    const inc = config({ 'collector.nic.device-include': 'barq[0-9]+' }).get(deviceIncludeFlag);
    warnUnmatchedDeviceRegexes([{ name: 'eth0' }], inc, null, log);
    warnUnmatchedDeviceRegexes([{ name: 'eth0' }], inc, null, log);
    warnUnmatchedDeviceRegexes([{ name: 'eth0' }, { name: 'barq0' }], inc, null, log);
    warnUnmatchedDeviceRegexes([{ name: 'eth0' }, { name: 'barq0' }], inc, null, log);
    warnUnmatchedDeviceRegexes([{ name: 'eth0' }], inc, null, log);
    expect(lines.map((l) => l.level)).toEqual(['warn', 'info', 'warn']);
    expect(lines[1].msg).toBe('--collector.nic.device-include="barq[0-9]+" matches a network device again');
  });
});
