// Flags of the diagnosis sampler (collector `diagnosis`) and of `flowpath diagnose`.

import { FlagDef, UsageError, boolFlag, durationFlag, floatFlag, intFlag, stringFlag } from '../core/flags';
import { SelectorError, compileSelector } from '../sources/flowselect';

/** A selector flag whose value is the validated source text ("" = none). */
function selectorText(name: string, help: string): FlagDef<string> {
  return {
    name,
    help,
    default: '',
    boolean: false,
    placeholder: '<selector>',
    parse: (s) => {
      if (s.trim() === '') return '';
      try {
        compileSelector(s);
      } catch (e) {
        if (e instanceof SelectorError) throw new UsageError(`--${name}: ${e.message}`);
        throw e;
      }
      return s;
    },
    show: (v) => JSON.stringify(v),
  };
}

export const watchFlag = selectorText(
  'diagnosis.watch',
  'Flows the diagnosis sampler always polls (flow selector, same grammar as --flows.select; "" = none: only the top flows).',
);
export const sampleRateFlag = floatFlag('diagnosis.sample-rate', 20, 'How often each sampled flow is read (Hz), with exact sock_diag lookups.', 0.1, 1000);
export const topFlag = intFlag('diagnosis.top', 3, 'Also sample this many flows with the highest throughput (found every --diagnosis.discover-interval).', 0, 1000);
export const maxFlowsFlag = intFlag('diagnosis.max-flows', 16, 'Hard cap on flows sampled at once (watched + top + pinned by the API).', 1, 10000);
export const discoverIntervalFlag = durationFlag('diagnosis.discover-interval', 2, 'How often a filtered sock_diag dump looks for watched and top flows.', 0.1);
export const nodeIntervalFlag = durationFlag('diagnosis.node-interval', 1, 'How often the node evidence (softnet, softirq CPU, qdiscs, NIC counters, OVS) is read for the diagnosis.', 0.1);
export const historyFlag = durationFlag('diagnosis.history', 120, 'How much sample history is kept per flow (the longest diagnosis window).', 1);
export const windowFlag = durationFlag('diagnosis.window', 10, 'Window of the verdict exported as flowpath_flow_verdict_info and the default window of /api/diagnosis.', 0.5);

export const DIAGNOSIS_FLAGS: readonly FlagDef<unknown>[] = [
  watchFlag,
  sampleRateFlag,
  topFlag,
  maxFlowsFlag,
  discoverIntervalFlag,
  nodeIntervalFlag,
  historyFlag,
  windowFlag,
] as FlagDef<unknown>[];

// `flowpath diagnose` only
export const flowFlag = stringFlag('flow', '', 'The flow to diagnose: a flow selector (e.g. "dport = 5201") or a flow id "LOCAL_IP:PORT-PEER_IP:PORT". Default: the busiest established flow.', '<selector|id>');
export const durationFlagDef = durationFlag('duration', 10, 'How long to sample.', 0.2);
export const peerFlag = stringFlag('peer', '', "Base URL of the other node's flowpath (e.g. http://10.0.0.2:9632); its /api view of the reversed flow is joined.", '<url>');
export const peerTimeoutFlag = durationFlag('peer.timeout', 5, "How long to wait for each answer of the --peer node's flowpath.", 0.1);
export const jsonFlag = boolFlag('json', false, 'Print the verdict as JSON instead of the path diagram.');
export const allFindingsFlag = boolFlag('all', false, 'Also list the findings of hops that are ok.');

export const COMMAND_FLAGS: readonly FlagDef<unknown>[] = [flowFlag, durationFlagDef, peerFlag, peerTimeoutFlag, jsonFlag, allFindingsFlag] as FlagDef<unknown>[];
