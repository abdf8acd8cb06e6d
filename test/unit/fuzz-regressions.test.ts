// Regression tests for the bugs the decoder fuzzing (test/fuzz) found, one focused case each.
import { parseCpuList as procCpuList } from '../../src/sources/procfs/cpuinfo';
import { ProcParseError } from '../../src/sources/procfs/read';
import { SysfsFormatError, parseCpuList as sysfsCpuList } from '../../src/sources/sysfs/netdev';
import { MAX_CONDITIONS, MAX_NESTING, SelectorError, compileSelector } from '../../src/sources/flowselect';
import { OvsParseError } from '../../src/sources/ovs/parse-dpctl';
import { parseReadCounter } from '../../src/sources/ovs/parse-coverage';
import { parseVersion } from '../../src/sources/ovs/parse-version';

describe('CPU lists are bounded (a malformed file used to end the process)', () => {
  it.each(['0-4294967295', '99999999999999999999-99999999999999999999', '9007199254740993', Array(40).fill('0-65535').join(',')])('%s', (text) => {
    expect(() => procCpuList(text, 'online')).toThrow(ProcParseError);
    expect(() => sysfsCpuList(text, 'smp_affinity_list')).toThrow(SysfsFormatError);
  });
  it('the largest real lists still parse', () => {
    expect(procCpuList('0-8191')).toHaveLength(8192);
    expect(sysfsCpuList('0-8191', 'x')).toHaveLength(8192);
  });
});

describe('selectors too deep or too long are SelectorError, not RangeError or a bytecode Error', () => {
  it('nesting', () => {
    expect(() => compileSelector(`${'('.repeat(5000)}port = 1${')'.repeat(5000)}`)).toThrow(SelectorError);
    expect(() => compileSelector(`${'not '.repeat(5000)}port = 1`)).toThrow(SelectorError);
    expect(() => compileSelector(`${'('.repeat(MAX_NESTING)}port = 1${')'.repeat(MAX_NESTING)}`)).not.toThrow();
  });
  it('length', () => {
    const chain = (n: number) => Array.from({ length: n }, (_, i) => `dst 10.${(i >> 8) & 255}.${i & 255}.0/24`).join(' or ');
    expect(() => compileSelector(chain(5000))).toThrow(/more than 1000 conditions/);
    expect(compileSelector(chain(MAX_CONDITIONS)).plans).toHaveLength(2);
  });
});

it('OVS read-counter and version replies fail with OvsParseError', () => {
  expect(() => parseReadCounter('No such counter\n', 'x')).toThrow(OvsParseError);
  expect(() => parseVersion('hello')).toThrow(OvsParseError);
});
