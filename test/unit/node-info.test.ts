// node collector and /proc/cpuinfo parser on fixture trees.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Config } from '../../src/core/flags';
import { nullLogger } from '../../src/core/log';
import { Emitter } from '../../src/core/metrics';
import { parseCpuinfo } from '../../src/sources/procfs/cpuinfo';
import { nodeCollector } from '../../src/collectors/node';
import { allFlags } from '../../src/exporter';
import { promtoolAvailable, promtoolCheckMetrics } from '../support/promtool';

const FIX = path.join(__dirname, '../fixtures/procfs');

function create(tree: string) {
  const config = Config.from(allFlags(), { 'path.procfs': path.join(tree, 'proc'), 'path.sysfs': path.join(tree, 'sys') });
  return nodeCollector.create({ config, log: nullLogger });
}
async function once(c: ReturnType<typeof create>): Promise<string> {
  const out = new Emitter();
  await c.collect(out, { signal: new AbortController().signal, now: 0 });
  return out.render();
}

describe('parseCpuinfo', () => {
  it('counts processors and finds the model on x86, arm64 and powerpc layouts', () => {
    expect(parseCpuinfo(fs.readFileSync(path.join(FIX, 'old-4.9-offline/proc/cpuinfo'), 'latin1'))).toEqual({ processors: 3, models: ['Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz'] });
    expect(parseCpuinfo('processor\t: 0\nBogoMIPS\t: 50.00\nCPU part\t: 0xd0c\n\nprocessor\t: 1\nCPU part\t: 0xd0c\nHardware\t: Ampere Altra\n').processors).toBe(2);
    expect(parseCpuinfo('processor\t: 0\ncpu\t\t: POWER9 (raw), altivec supported\n').models).toEqual(['POWER9 (raw), altivec supported']);
    expect(() => parseCpuinfo('vendor_id: x\n', 'cpuinfo')).toThrow(/cpuinfo:1: no "processor" entries/);
  });
});

describe('node collector', () => {
  it('old tree: kernel release/version, model, online vs possible CPUs', async () => {
    const text = await once(create(path.join(FIX, 'old-4.9-offline')));
    expect(text).toContain(`flowpath_node_info{kernel_release="4.9.0-19-amd64",kernel_version="#1 SMP Debian 4.9.320-2 (2022-06-30)",machine="${os.machine()}",cpu_model="Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"} 1`);
    expect(text).toContain('flowpath_node_cpus{state="online"} 3');
    expect(text).toContain('flowpath_node_cpus{state="possible"} 4');
    if (promtoolAvailable()) expect(promtoolCheckMetrics(text)).toEqual({ status: 0, output: '' });
  });

  it('reads cpuinfo once: a later change of cpuinfo is not re-read, the online count is', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-node-'));
    try {
      fs.cpSync(path.join(FIX, 'old-4.9-offline'), dir, { recursive: true });
      const c = create(dir);
      await once(c);
      fs.writeFileSync(path.join(dir, 'proc/cpuinfo'), 'garbage\n');
      fs.writeFileSync(path.join(dir, 'sys/devices/system/cpu/online'), '0-3\n');
      const text = await once(c);
      expect(text).toContain('cpu_model="Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"');
      expect(text).toContain('flowpath_node_cpus{state="online"} 4');
      // A fresh instance on the broken cpuinfo fails with the file and reason.
      await expect(once(create(dir))).rejects.toThrow(/cpuinfo:1: no "processor" entries/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
