import { Config } from '../../src/core/flags';
import { createLogger } from '../../src/core/log';
import { Registry } from '../../src/collectors/registry';
import { allFlags } from '../../src/exporter';
import { fakeDefs } from '../support/fake-collectors';

function setup(overrides: Record<string, string | boolean> = {}, timeout = 0.2) {
  const state: { okCalls: number; hang?: Promise<void>; fail?: string } = { okCalls: 0 };
  const defs = fakeDefs(state);
  const logs: string[] = [];
  const log = createLogger('info', (l) => logs.push(l));
  const reg = new Registry(defs, { config: Config.from(allFlags(defs), overrides), log }, timeout);
  return { state, reg, logs };
}

describe('Registry', () => {
  it('runs enabled collectors, reports success and duration per collector', async () => {
    const { reg } = setup();
    expect(reg.enabledNames()).toEqual(['fakeok', 'fakefail', 'fakeslow']);
    const text = (await reg.scrape()).render();
    expect(text).toContain('flowpath_fake_value{device="eth0"} 1\n');
    expect(text).toContain('flowpath_scrape_collector_success{collector="fakeok"} 1\n');
    expect(text).toContain('flowpath_scrape_collector_success{collector="fakefail"} 1\n');
    expect(text).toMatch(/flowpath_scrape_collector_duration_seconds\{collector="fakeslow"\} \d/);
    expect(text).not.toContain('fakeoff');
  });

  it('a failing collector is reported, its partial output dropped, the others unaffected; logs once per state change', async () => {
    const { reg, state, logs } = setup();
    state.fail = 'boom: /proc/net/softnet_stat line 3';
    for (let i = 0; i < 3; i++) {
      const text = (await reg.scrape()).render();
      expect(text).toContain('flowpath_scrape_collector_success{collector="fakefail"} 0\n');
      expect(text).not.toContain('flowpath_fakefail_partial');
      expect(text).toContain('flowpath_scrape_collector_success{collector="fakeok"} 1\n');
    }
    expect(logs.filter((l) => l.includes('boom'))).toHaveLength(1);
    expect(logs[0]).toMatch(/level=warn collector=fakefail/);
    state.fail = undefined;
    const text = (await reg.scrape()).render();
    expect(text).toContain('flowpath_scrape_collector_success{collector="fakefail"} 1\n');
    expect(logs.filter((l) => l.includes('recovered'))).toHaveLength(1);
    const st = reg.statuses().find((s) => s.name === 'fakefail')!;
    expect(st.lastSuccess).toBe(true);
  });

  it('a collector that misses the deadline is failed and not restarted while still hung', async () => {
    const { reg, state } = setup({}, 0.05);
    let release!: () => void;
    state.hang = new Promise<void>((r) => (release = r));
    const first = (await reg.scrape()).render();
    expect(first).toContain('flowpath_scrape_collector_success{collector="fakeslow"} 0\n');
    expect(first).toContain('flowpath_scrape_collector_success{collector="fakeok"} 1\n');
    const second = (await reg.scrape()).render();
    expect(second).toContain('flowpath_scrape_collector_success{collector="fakeslow"} 0\n');
    expect(reg.statuses().find((s) => s.name === 'fakeslow')!.lastError).toMatch(/still running/);
    state.hang = undefined;
    release();
    await new Promise((r) => setImmediate(r));
    const third = (await reg.scrape()).render();
    expect(third).toContain('flowpath_scrape_collector_success{collector="fakeslow"} 1\n');
    expect(third).toContain('flowpath_fakeslow_value 3\n');
  });

  it('honours --collector.<name> and --no-collector.<name>', async () => {
    const { reg } = setup({ 'collector.fakeok': false, 'collector.fakeoff': true });
    expect(reg.enabledNames()).toEqual(['fakefail', 'fakeslow', 'fakeoff']);
    const text = (await reg.scrape()).render();
    expect(text).toContain('flowpath_scrape_collector_success{collector="fakeoff"} 0\n');
    expect(text).not.toContain('flowpath_fake_value');
    expect(reg.statuses().find((s) => s.name === 'fakeok')!.enabled).toBe(false);
  });
});
