// Test-only collectors with controllable behaviour, to exercise the registry and the HTTP server.
import { counter, gauge } from '../../src/core/metrics';
import type { CollectorDef } from '../../src/collectors/registry';

export const okValue = gauge('flowpath_fake_value', 'A value from the fake collector.', ['device']);
export const okCount = counter('flowpath_fake_events_total', 'Events from the fake collector.', []);

export interface FakeState {
  okCalls: number;
  /** collect() calls of fakeslow. */
  slowCalls?: number;
  hang?: Promise<void>;
  fail?: string;
}

export function fakeDefs(state: FakeState): CollectorDef[] {
  return [
    {
      name: 'fakeok',
      description: 'always succeeds',
      defaultEnabled: true,
      metrics: [okValue, okCount],
      create: () => ({
        async collect(out) {
          state.okCalls++;
          out.add(okValue, ['eth0'], state.okCalls);
          out.add(okCount, [], 42);
        },
      }),
    },
    {
      name: 'fakefail',
      description: 'throws (or not) as told',
      defaultEnabled: true,
      metrics: [gauge('flowpath_fakefail_partial', 'Emitted before failing; must not leak.', [])],
      create: ({}) => ({
        async collect(out) {
          out.add(gauge('flowpath_fakefail_partial', 'Emitted before failing; must not leak.', []), [], 1);
          if (state.fail) throw new Error(state.fail);
        },
      }),
    },
    {
      name: 'fakeslow',
      description: 'waits on a promise the test controls',
      defaultEnabled: true,
      metrics: [gauge('flowpath_fakeslow_value', 'Value.', [])],
      create: () => ({
        async collect(out) {
          state.slowCalls = (state.slowCalls ?? 0) + 1;
          if (state.hang) await state.hang;
          out.add(gauge('flowpath_fakeslow_value', 'Value.', []), [], 3);
        },
      }),
    },
    {
      name: 'fakeoff',
      description: 'disabled by default',
      defaultEnabled: false,
      metrics: [],
      create: () => ({
        async collect() {
          throw new Error('must not run');
        },
      }),
    },
  ];
}
