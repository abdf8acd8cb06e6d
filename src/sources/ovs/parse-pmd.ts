// Parser for the userspace datapath's per-thread statistics. Pure. docs/kernel-sources.md §7.3.
//
// Two formats, parsed by label so either works (and an OVS that mixes them):
//
// 1. `dpif-netdev/pmd-stats-show` up to OVS 3.x (pmd_info_show_stats() in lib/dpif-netdev.c):
//      pmd thread numa_id 0 core_id 1:        or   main thread:
//        packets received: 20
//        packet recirculations: 0
//        avg. datapath passes per packet: 1.00
//        phwol hits: 0 / mfex opt hits: 0 / simple match hits: 0 (3.x)
//        emc hits: 0 / smc hits: 0 / megaflow hits: 19
//        avg. subtable lookups per megaflow hit: 1.00
//        miss with success upcall: 1
//        miss with failed upcall: 0
//        avg. packets per output batch: 1.00
//        idle cycles: 191082698 (96.55%)         only when cycles were counted (PMD threads)
//        processing cycles: 6828770 (3.45%)
//        avg cycles per packet: 9895573.40 (197911468/20)
//        avg processing cycles per packet: 341438.50 (6828770/20)
//    Older releases indent with a tab instead of two spaces.
//
// 2. `dpif-netdev/pmd-perf-show` (pmd_perf_format_overall_stats() in lib/dpif-netdev-perf.c). In OVS 4.0
//    `pmd-stats-show` became an alias of it:
//      Time: 06:57:13.242 / Measurement duration: 46.253 s
//      pmd thread numa_id 0 core_id 1:
//        Iterations:                 5076  (539.27 us/it)
//        - Used TSC cycles:     198124357  (  2.7 % of total cycles)
//        ...
//        Rx packets:                   20  (0 Kpps, 341438 cycles/pkt)
//        Datapath passes:              20  (1.00 passes/pkt)
//        - PHWOL hits: / - MFEX Opt hits: / - Simple Match hits: / - EMC hits: / - SMC hits:
//        - Megaflow hits:              19  ( 95.0 %, 1.00 subtbl lookups/hit)
//        - Upcalls:                     1  (  5.0 %, 0.0 us/upcall)
//        - Lost upcalls:                0  (  0.0 %)
//        Tx packets:                   40  (0 Kpps)
//        Tx batches:                   40  (1.00 pkts/batch)
//    Percentages there are rounded, so cycles split into idle/busy are not derived from them.

export type PmdFormat = 'stats-show' | 'perf-show';

export interface PmdThreadStats {
  /** "main" (the non-PMD thread, which also forwards for non-PMD ports) or "pmd". */
  thread: 'main' | 'pmd';
  numaId?: number;
  coreId?: number;
  format: PmdFormat;
  packetsReceived?: number;
  recirculations?: number;
  datapathPasses?: number;
  phwolHits?: number;
  mfexOptHits?: number;
  simpleMatchHits?: number;
  emcHits?: number;
  smcHits?: number;
  megaflowHits?: number;
  /** Average subtable lookups per megaflow hit (as printed, 2 decimals). */
  subtableLookupsPerMegaflowHit?: number;
  /** Misses that became an upcall that succeeded ("miss with success upcall" / "Upcalls"). */
  upcalls?: number;
  /** Misses whose upcall failed: packet dropped ("miss with failed upcall" / "Lost upcalls"). */
  lostUpcalls?: number;
  /** Average packets per output batch (stats-show, as printed). */
  packetsPerOutputBatch?: number;
  txPackets?: number;
  txBatches?: number;
  idleCycles?: number;
  processingCycles?: number;
  /** Idle + processing cycles (stats-show: their sum; perf-show: "Used TSC cycles" / "Cycles"). */
  usedCycles?: number;
  iterations?: number;
  unparsed: string[];
}

const HEADER_RE = /^(?:pmd thread numa_id (-?\d+) core_id (-?\d+)|main thread):$/;

type Setter = (t: PmdThreadStats, n: number) => void;
const int = (s: string) => (/^\d+$/.test(s) ? Number(s) : undefined);
const real = (s: string) => (/^\d+(?:\.\d+)?$/.test(s) ? Number(s) : undefined);

// stats-show: "label: <value>[ (...)]"
const STATS_LABELS: Record<string, [Setter, 'int' | 'real']> = {
  'packets received': [(t, n) => (t.packetsReceived = n), 'int'],
  'packet recirculations': [(t, n) => (t.recirculations = n), 'int'],
  'phwol hits': [(t, n) => (t.phwolHits = n), 'int'],
  'mfex opt hits': [(t, n) => (t.mfexOptHits = n), 'int'],
  'simple match hits': [(t, n) => (t.simpleMatchHits = n), 'int'],
  'emc hits': [(t, n) => (t.emcHits = n), 'int'],
  'smc hits': [(t, n) => (t.smcHits = n), 'int'],
  'megaflow hits': [(t, n) => (t.megaflowHits = n), 'int'],
  'avg. subtable lookups per megaflow hit': [(t, n) => (t.subtableLookupsPerMegaflowHit = n), 'real'],
  'miss with success upcall': [(t, n) => (t.upcalls = n), 'int'],
  'miss with failed upcall': [(t, n) => (t.lostUpcalls = n), 'int'],
  'avg. packets per output batch': [(t, n) => (t.packetsPerOutputBatch = n), 'real'],
  'idle cycles': [(t, n) => (t.idleCycles = n), 'int'],
  'processing cycles': [(t, n) => (t.processingCycles = n), 'int'],
  // Derived averages carried for completeness of recognition; not stored (computable from counters).
  'avg. datapath passes per packet': [() => undefined, 'real'],
  'avg cycles per packet': [() => undefined, 'real'],
  'avg processing cycles per packet': [() => undefined, 'real'],
};

// perf-show: "[- ]Label:<spaces><int>[  (...)]"
const PERF_LABELS: Record<string, Setter> = {
  Iterations: (t, n) => (t.iterations = n),
  'Used TSC cycles': (t, n) => (t.usedCycles = n),
  Cycles: (t, n) => (t.usedCycles = n), // OVS 2.x perf-show: total cycles (idle + busy)
  'Rx packets': (t, n) => (t.packetsReceived = n),
  'Datapath passes': (t, n) => (t.datapathPasses = n),
  'PHWOL hits': (t, n) => (t.phwolHits = n),
  'MFEX Opt hits': (t, n) => (t.mfexOptHits = n),
  'Simple Match hits': (t, n) => (t.simpleMatchHits = n),
  'EMC hits': (t, n) => (t.emcHits = n),
  'SMC hits': (t, n) => (t.smcHits = n),
  'Megaflow hits': (t, n) => (t.megaflowHits = n),
  Upcalls: (t, n) => (t.upcalls = n),
  'Lost upcalls': (t, n) => (t.lostUpcalls = n),
  'Tx packets': (t, n) => (t.txPackets = n),
  'Tx batches': (t, n) => (t.txBatches = n),
};
// perf-show lines that carry nothing exported (iteration split, sleep time, histogram headers).
const PERF_IGNORED = new Set(['idle iterations', 'busy iterations', 'sleep iterations', 'Sleep time (us)', 'idle', 'busy']);

export function parsePmdStats(text: string): PmdThreadStats[] {
  const out: PmdThreadStats[] = [];
  let cur: PmdThreadStats | null = null;
  let inHistograms = false;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const h = HEADER_RE.exec(line);
    if (h) {
      cur = h[1] === undefined
        ? { thread: 'main', format: 'stats-show', unparsed: [] }
        : { thread: 'pmd', numaId: Number(h[1]), coreId: Number(h[2]), format: 'stats-show', unparsed: [] };
      out.push(cur);
      inHistograms = false;
      return;
    }
    if (/^(Time: |Measurement duration: )/.test(line)) return; // perf-show preamble of the next block
    if (!cur) return;
    const t: PmdThreadStats = cur;
    if (line === 'Histograms' || /^-{20,}$/.test(line)) inHistograms = true;
    if (inHistograms) return;
    let m = /^([a-z][a-z. ]*[a-z]): (\d+(?:\.\d+)?)(?: \(.*\))?$/.exec(line);
    if (m && STATS_LABELS[m[1]]) {
      const [set, kind] = STATS_LABELS[m[1]];
      const n = kind === 'int' ? int(m[2]) : real(m[2]);
      if (n === undefined) t.unparsed.push(`line ${i + 1}: ${raw}`);
      else set(t, n);
      return;
    }
    m = /^(?:- )?([A-Za-z][A-Za-z ()]*?):\s*(\d+(?:\.\d+)?)(?:\s+\(.*\))?$/.exec(line);
    if (m && (PERF_LABELS[m[1]] || PERF_IGNORED.has(m[1]))) {
      t.format = 'perf-show';
      const set = PERF_LABELS[m[1]];
      if (set) {
        const n = int(m[2]);
        if (n === undefined) t.unparsed.push(`line ${i + 1}: ${raw}`);
        else set(t, n);
      }
      return;
    }
    t.unparsed.push(`line ${i + 1}: ${raw}`);
  });
  for (const t of out) {
    if (t.idleCycles !== undefined && t.processingCycles !== undefined && t.usedCycles === undefined) {
      t.usedCycles = t.idleCycles + t.processingCycles;
    }
    // perf-show prints passes = received + recirculated; the difference is exact.
    if (t.recirculations === undefined && t.datapathPasses !== undefined && t.packetsReceived !== undefined) {
      t.recirculations = t.datapathPasses - t.packetsReceived;
    }
    if (t.datapathPasses === undefined && t.recirculations !== undefined && t.packetsReceived !== undefined) {
      t.datapathPasses = t.packetsReceived + t.recirculations;
    }
  }
  return out;
}
