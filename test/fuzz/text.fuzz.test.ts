// Fuzz: the text parsers: /proc and /sys files, `ethtool -S`, the OVS unixctl replies, and the OVS JSON-RPC
// stream framing. Inputs: the fixtures, mutated line- and character-wise (lines deleted, duplicated,
// swapped; tokens replaced by huge, negative, empty or non-numeric ones; truncation; random characters).
// Property: a value or the module's declared error; no NaN anywhere in a value (a number that did not parse
// must be an error, not a NaN series); plus round trips where a printer exists.
import * as fs from 'fs';
import * as path from 'path';
import { parseCpuList as parseProcCpuList, parseCpuinfo } from '../../src/sources/procfs/cpuinfo';
import { InterruptsFormatError, parsePerCpuCount, parseProcInterrupts } from '../../src/sources/procfs/interrupts';
import { parsePidStat } from '../../src/sources/procfs/ksoftirqd';
import { parseNetstat } from '../../src/sources/procfs/netstat';
import { ProcParseError } from '../../src/sources/procfs/read';
import { parseSoftirqs } from '../../src/sources/procfs/softirqs';
import { parseSoftnetStat } from '../../src/sources/procfs/softnet';
import { parseProcStatCpus } from '../../src/sources/procfs/stat';
import { parseSysctlValue } from '../../src/sources/procfs/sysctl';
import {
  SysfsFormatError,
  formatCpuList,
  parseCpuList as parseSysfsCpuList,
  parseCpuMask,
  parseDuplex,
  parseIntAttr,
  parseOperstate,
  parseQueueDirName,
  parseSpeed,
} from '../../src/sources/sysfs/netdev';
import { parseUevent } from '../../src/sources/devices';
import { EthtoolOutputError, parseEthtoolStats } from '../../src/sources/ethtool-cli';
import { OvsParseError, parseDpctlShow } from '../../src/sources/ovs/parse-dpctl';
import { parseDpifShow } from '../../src/sources/ovs/parse-dpif';
import { parsePmdStats } from '../../src/sources/ovs/parse-pmd';
import { parseUpcallShow } from '../../src/sources/ovs/parse-upcall';
import { parseCoverageShow, parseReadCounter } from '../../src/sources/ovs/parse-coverage';
import { parseVersion } from '../../src/sources/ovs/parse-version';
import { JsonRpcProtocolError, JsonStreamSplitter, encodeRequest, interpretReply } from '../../src/sources/ovs/jsonrpc';
import { FIXTURES, TIMEOUT_MS, assertSame, check, fc, fixtureText, only } from './fuzz';

type Err = abstract new (...a: never[]) => Error;

const TOKENS = ['0', '-1', '', ' ', '18446744073709551615', '99999999999999999999999', '4294967296', '0x1f', '1e9', 'NaN', 'x', ':', '-', '(', ')', ',', '\t', '?', '0-4294967295', '3-1', 'ffffffff'];

type TextMutation = (s: string) => string;
const textMutation: fc.Arbitrary<TextMutation> = fc.oneof(
  fc.nat().map((r): TextMutation => (s) => {
    const ls = s.split('\n');
    ls.splice(r % Math.max(1, ls.length), 1);
    return ls.join('\n');
  }),
  fc.nat().map((r): TextMutation => (s) => {
    const ls = s.split('\n');
    const i = r % Math.max(1, ls.length);
    ls.splice(i, 0, ls[i] ?? '');
    return ls.join('\n');
  }),
  fc.tuple(fc.nat(), fc.nat()).map(([a, b]): TextMutation => (s) => {
    const ls = s.split('\n');
    const i = a % Math.max(1, ls.length);
    const j = b % Math.max(1, ls.length);
    [ls[i], ls[j]] = [ls[j], ls[i]];
    return ls.join('\n');
  }),
  // replace the n-th whitespace-separated token
  fc.tuple(fc.nat(), fc.constantFrom(...TOKENS)).map(([r, tok]): TextMutation => (s) => {
    const parts = s.split(/(\s+)/);
    const words = parts.map((p, i) => (/^\s*$/.test(p) ? -1 : i)).filter((i) => i >= 0);
    if (words.length === 0) return s;
    parts[words[r % words.length]] = tok;
    return parts.join('');
  }),
  fc.nat().map((r): TextMutation => (s) => s.slice(0, s.length === 0 ? 0 : r % s.length)),
  fc.tuple(fc.nat(), fc.string({ maxLength: 8 })).map(([r, ins]): TextMutation => (s) => {
    const i = s.length === 0 ? 0 : r % s.length;
    return s.slice(0, i) + ins + s.slice(i);
  }),
  fc.constant<TextMutation>((s) => s.replace(/\n/g, '\r\n')),
  fc.constant<TextMutation>((s) => s.replace(/ +/g, '\t')),
);

function mutatedText(seeds: readonly string[]): fc.Arbitrary<string> {
  return fc.tuple(fc.constantFrom(...seeds), fc.array(textMutation, { maxLength: 4 })).map(([s, ms]) => ms.reduce((t, m) => m(t), s));
}

function noNaN(v: unknown, where = 'value'): void {
  if (typeof v === 'number') {
    if (Number.isNaN(v)) throw new Error(`NaN at ${where}`);
  } else if (v instanceof Map) {
    for (const [k, x] of v) noNaN(x, `${where}[${String(k)}]`);
  } else if (Array.isArray(v)) {
    v.forEach((x, i) => noNaN(x, `${where}[${i}]`));
  } else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) noNaN(x, `${where}.${k}`);
  }
}

function textSuite(name: string, parse: (t: string) => unknown, errors: Err[], seeds: string[]): void {
  it(`${name}: mutated fixtures give a value without NaN or ${errors.map((e) => e.name).join('/')}`, () => {
    check(mutatedText(seeds), (t) => {
      const r = only(errors, () => parse(t));
      if (r.ok) noNaN(r.value);
    });
  }, TIMEOUT_MS);
}

const procFiles = (rel: string) => ['vm-6.18', 'old-4.9-offline'].map((d) => path.join('procfs', d, 'proc', rel)).filter((f) => fs.existsSync(path.join(FIXTURES, f))).map(fixtureText);
const dir = (rel: string, re = /./) => fs.readdirSync(path.join(FIXTURES, rel)).filter((f) => re.test(f)).map((f) => fixtureText(path.join(rel, f)));

describe('/proc parsers', () => {
  textSuite('parseSoftirqs', (t) => parseSoftirqs(t), [ProcParseError], procFiles('softirqs'));
  textSuite('parseNetstat (netstat, snmp)', (t) => parseNetstat(t), [ProcParseError], [...procFiles('net/netstat'), ...procFiles('net/snmp')]);
  textSuite('parseProcStatCpus', (t) => parseProcStatCpus(t), [ProcParseError], procFiles('stat'));
  textSuite('parseSoftnetStat', (t) => parseSoftnetStat(t), [ProcParseError], [...procFiles('net/softnet_stat'), ...dir('softnet')]);
  textSuite('parseCpuinfo', (t) => parseCpuinfo(t), [ProcParseError], procFiles('cpuinfo'));
  textSuite('parsePidStat', (t) => parsePidStat(t), [ProcParseError], dir('procfs/old-4.9-offline/proc/1', /^stat$/));
  textSuite('parseSysctlValue', (t) => parseSysctlValue('net.ipv4.tcp_rmem', t), [ProcParseError], ['4096 131072 6291456\n', 'bbr\n', 'reno cubic bbr\n', '1\n']);
  textSuite('parseProcInterrupts', (t) => parseProcInterrupts(t), [InterruptsFormatError], [fixtureText('nic/host-mq/proc/interrupts')]);
  textSuite('parsePerCpuCount', (t) => parsePerCpuCount(t, 'per_cpu_count'), [InterruptsFormatError], ['0,3600,0,12\n', '5\n']);
  textSuite('parseCpuList (procfs)', (t) => parseProcCpuList(t), [ProcParseError], ['0-3,8,10-11\n', '0\n', '0-63\n']);
});

describe('/sys parsers', () => {
  const sysfsErr = [SysfsFormatError];
  textSuite('parseIntAttr', (t) => parseIntAttr(t, 'mtu'), sysfsErr, ['1500\n', '-1\n']);
  textSuite('parseSpeed', (t) => parseSpeed(t, 'speed'), sysfsErr, ['10000\n', '-1\n']);
  textSuite('parseDuplex', (t) => parseDuplex(t, 'duplex'), sysfsErr, ['full\n', 'half\n', 'unknown\n']);
  textSuite('parseOperstate', (t) => parseOperstate(t, 'operstate'), sysfsErr, ['up\n', 'down\n', 'lowerlayerdown\n']);
  textSuite('parseCpuMask', (t) => parseCpuMask(t, 'rps_cpus'), sysfsErr, ['00000000,0000000f\n', 'f\n', '0\n']);
  textSuite('parseCpuList (sysfs)', (t) => parseSysfsCpuList(t, 'smp_affinity_list'), sysfsErr, ['0-3,8,10-11\n', '\n', '5\n']);
  textSuite('parseQueueDirName', (t) => parseQueueDirName(t), [], ['rx-0', 'tx-15']);
  textSuite('parseUevent', (t) => parseUevent(t), [], ['INTERFACE=eth0\nIFINDEX=2\n', 'DEVTYPE=vlan\nINTERFACE=eth0.100\nIFINDEX=7\n']);

  it('CPU lists and masks round-trip: formatCpuList → parseCpuList, and the mask of a set', () => {
    check(fc.uniqueArray(fc.integer({ min: 0, max: 511 }), { maxLength: 64 }), (cpus) => {
      const sorted = [...cpus].sort((a, b) => a - b);
      assertSame(parseSysfsCpuList(formatCpuList(cpus), 'list'), sorted, 'sysfs list');
      assertSame(parseProcCpuList(formatCpuList(cpus)), sorted, 'procfs list');
      const words = new Array<number>(16).fill(0);
      for (const c of cpus) words[c >> 5] = (words[c >> 5] | (1 << (c & 31))) >>> 0;
      const mask = words.reverse().map((w) => w.toString(16).padStart(8, '0')).join(',');
      assertSame(parseCpuMask(mask, 'mask'), sorted, 'mask');
    });
  }, TIMEOUT_MS);
});

describe('ethtool -S text', () => {
  textSuite('parseEthtoolStats', (t) => parseEthtoolStats(t, 'eth0'), [EthtoolOutputError], dir('nic/ethtool-S', /\.txt$/));
});

describe('OVS unixctl replies', () => {
  const ovs = (re: RegExp) => dir('ovs', re);
  textSuite('parseDpctlShow', parseDpctlShow, [OvsParseError], ovs(/^dpctl-show/));
  textSuite('parseDpifShow', parseDpifShow, [OvsParseError], ovs(/^dpif-show/));
  textSuite('parsePmdStats', parsePmdStats, [OvsParseError], ovs(/^pmd-/));
  textSuite('parseUpcallShow', parseUpcallShow, [OvsParseError], ovs(/^upcall-show/));
  textSuite('parseCoverageShow', parseCoverageShow, [OvsParseError], ovs(/^coverage-show/));
  textSuite('parseReadCounter', (t) => parseReadCounter(t, 'netdev_sent'), [OvsParseError], ['12345\n', '0\n']);
  textSuite('parseVersion', parseVersion, [OvsParseError], ['ovs-vswitchd (Open vSwitch) 3.1.0\n', 'ovs-vswitchd (Open vSwitch) 3.1.0\nDPDK 22.11.1\n']);
});

describe('OVS JSON-RPC framing (jsonrpc.ts)', () => {
  // JSON values as ovs-vswitchd sends them: objects with strings (any Unicode, escapes, braces inside).
  const reply = fc.record({
    id: fc.integer({ min: 0, max: 1e9 }),
    result: fc.option(fc.string({ unit: 'grapheme', maxLength: 60 }), { nil: null }),
    error: fc.option(fc.string({ unit: 'grapheme', maxLength: 20 }), { nil: null }),
    extra: fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined }),
  });

  it('any split of a stream of replies (also inside multi-byte characters) yields the same values', () => {
    const arb = fc.tuple(fc.array(reply, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 20 }), fc.constantFrom('', ' ', '\n'));
    check(arb, ([msgs, cuts, sep]) => {
      const bytes = Buffer.from(msgs.map((m) => JSON.stringify(m)).join(sep), 'utf8');
      const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      const sp = new JsonStreamSplitter();
      const out: unknown[] = [];
      let at = 0;
      for (const p of [...points, bytes.length]) {
        out.push(...sp.push(bytes.subarray(at, p)));
        at = p;
      }
      assertSame(out, msgs.map((m) => JSON.parse(JSON.stringify(m))), 'messages');
      if (sp.pending !== 0) throw new Error(`pending ${sp.pending} after complete messages`);
      for (const m of out) {
        const r = only([JsonRpcProtocolError], () => interpretReply(m));
        const o = m as { result: unknown; error: unknown };
        if (r.ok !== (o.error !== null || typeof o.result === 'string')) throw new Error(`interpretReply ok=${r.ok} for ${JSON.stringify(m)}`);
        if (r.ok && (r.value.ok ? o.error !== null : o.error === null)) throw new Error('error/result mixed up');
      }
    });
  }, TIMEOUT_MS);

  it('mutated streams and arbitrary bytes: values or JsonRpcProtocolError', () => {
    const seeds = [fixtureText('ovs/jsonrpc-reply.dpctl-show-3.1.json'), fixtureText('ovs/jsonrpc-error.read-counter-3.1.json')];
    check(fc.oneof(mutatedText(seeds), fc.string({ unit: 'binary', maxLength: 80 })), (t) => {
      const sp = new JsonStreamSplitter({ maxMessageChars: 4096 });
      const r = only([JsonRpcProtocolError], () => sp.push(Buffer.from(t, 'utf8')));
      if (r.ok) for (const m of r.value) only([JsonRpcProtocolError], () => interpretReply(m));
    });
  }, TIMEOUT_MS);

  it('interpretReply on any JSON value: a reply or JsonRpcProtocolError', () => {
    check(fc.jsonValue({ maxDepth: 3 }), (v) => {
      only([JsonRpcProtocolError], () => interpretReply(v));
    });
  }, TIMEOUT_MS);

  it('encodeRequest round-trips through the splitter', () => {
    check(fc.tuple(fc.nat(), fc.string({ maxLength: 20 }), fc.array(fc.string({ unit: 'grapheme', maxLength: 20 }), { maxLength: 4 })), ([id, method, params]) => {
      const [v] = new JsonStreamSplitter().push(Buffer.from(encodeRequest(id, method, params)));
      assertSame(v, { method, params, id }, 'request');
    });
  }, TIMEOUT_MS);
});
