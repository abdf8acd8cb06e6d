// The node collector against uname(1), nproc and lscpu on the live machine.
import { execFileSync } from 'child_process';
import { nodeCollector } from '../../src/collectors/node';
import { collectLive } from './node-support';

const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' }).trim();

describe('node collector vs uname / nproc / lscpu', () => {
  it('kernel release and version, machine, CPU model and counts', async () => {
    const { series } = await collectLive(nodeCollector);
    const info = [...series.keys()].find((k) => k.startsWith('flowpath_node_info{'))!;
    expect(info).toContain(`kernel_release="${run('uname', '-r')}"`);
    expect(info).toContain(`kernel_version="${run('uname', '-v')}"`);
    expect(info).toContain(`machine="${run('uname', '-m')}"`);
    const lscpu = JSON.parse(run('lscpu', '-J')) as { lscpu: Array<{ field: string; data: string }> };
    const model = lscpu.lscpu.find((f) => f.field === 'Model name:')?.data;
    if (model !== undefined) expect(info).toContain(`cpu_model="${model}"`);
    expect(series.get('flowpath_node_cpus{state="online"}')).toBe(Number(run('getconf', '_NPROCESSORS_ONLN')));
    expect(series.get('flowpath_node_cpus{state="possible"}')).toBeGreaterThanOrEqual(series.get('flowpath_node_cpus{state="online"}')!);
  });
});
