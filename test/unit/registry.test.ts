import { Config } from '../../src/core/flags';
import { createLogger } from '../../src/core/log';
import { Registry } from '../../src/collectors/registry';
import { allFlags } from '../../src/exporter';
import { FakeState, fakeDefs } from '../support/fake-collectors';

function setup(overrides: Record<string, string | boolean> = {}, timeout = 0.2) {
  const state: FakeState = { okCalls: 0 };
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

  it('a collector that misses the deadline is failed; the next scrape joins its still-running call instead of calling it again', async () => {
    const { reg, state } = setup({}, 0.05);
    let release!: () => void;
    state.hang = new Promise<void>((r) => (release = r));
    const first = (await reg.scrape()).render();
    expect(first).toContain('flowpath_scrape_collector_success{collector="fakeslow"} 0\n');
    expect(first).toContain('flowpath_scrape_collector_success{collector="fakeok"} 1\n');
    const second = (await reg.scrape()).render();
    expect(second).toContain('flowpath_scrape_collector_success{collector="fakeslow"} 0\n');
    // failed by the deadline of the scrape, not because a call was still running
    expect(reg.statuses().find((s) => s.name === 'fakeslow')!.lastError).toMatch(/deadline of 0.05s exceeded/);
    expect(state.slowCalls).toBe(1);
    expect(state.okCalls).toBe(2);
    // The hung call returns while the third scrape waits on it: that scrape gets its output.
    state.hang = undefined;
    const third = reg.scrape();
    release();
    const text = (await third).render();
    expect(text).toContain('flowpath_scrape_collector_success{collector="fakeslow"} 1\n');
    expect(text).toContain('flowpath_fakeslow_value 3\n');
    expect(state.slowCalls).toBe(1);
    const fourth = (await reg.scrape()).render();
    expect(fourth).toContain('flowpath_scrape_collector_success{collector="fakeslow"} 1\n');
    expect(state.slowCalls).toBe(2);
  });

  it('parallel scrapes share the collection in flight: all succeed with the same data, each collector called once', async () => {
    const { reg, state } = setup({}, 5);
    let release!: () => void;
    state.hang = new Promise<void>((r) => (release = r));
    const scrapes = Array.from({ length: 12 }, () => reg.scrape());
    await new Promise((r) => setImmediate(r));
    release();
    const texts = (await Promise.all(scrapes)).map((e) => e.render());
    for (const t of texts) {
      expect(t).toBe(texts[0]);
      for (const c of ['fakeok', 'fakefail', 'fakeslow']) expect(t).toContain(`flowpath_scrape_collector_success{collector="${c}"} 1\n`);
    }
    expect(state.okCalls).toBe(1);
    expect(state.slowCalls).toBe(1);
    expect(reg.completedRounds).toBe(1);
    // the shared output is not changed by the scrapes that absorbed it: a new round has its own data
    const next = (await reg.scrape()).render();
    expect(next).toContain('flowpath_fake_value{device="eth0"} 2\n');
    expect(next.match(/flowpath_fake_value/g)).toHaveLength(3); // HELP, TYPE, one sample
  });

  it('a scrape with a shorter deadline that joins a collection fails only the collectors not done by its deadline', async () => {
    const { reg, state } = setup({}, 5);
    let release!: () => void;
    state.hang = new Promise<void>((r) => (release = r));
    const long = reg.scrape();
    const short = (await reg.scrape({ timeoutSeconds: 0.05 })).render();
    expect(short).toContain('flowpath_scrape_collector_success{collector="fakeslow"} 0\n');
    expect(short).toContain('flowpath_scrape_collector_success{collector="fakeok"} 1\n');
    release();
    const text = (await long).render();
    expect(text).toContain('flowpath_scrape_collector_success{collector="fakeslow"} 1\n');
    expect(state.slowCalls).toBe(1);
    expect(state.okCalls).toBe(1);
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
