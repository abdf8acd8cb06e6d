// Preloaded into the exporter by the churn soak only (NODE_OPTIONS="-r test/soak/gc-on-signal.js"): on
// SIGUSR2, run a full garbage collection and print the process's memory right after it on stderr as
//   flowpath-soak-gc {"heapUsed":...,"heapTotal":...,"external":...,"arrayBuffers":...,"rss":...}
// so the soak can tell live-heap growth (a leak) from memory the allocators keep. Not part of the exporter.
'use strict';
const v8 = require('v8');
const vm = require('vm');

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
process.on('SIGUSR2', () => {
  gc();
  const m = process.memoryUsage();
  process.stderr.write(`flowpath-soak-gc ${JSON.stringify({ heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss })}\n`);
});
