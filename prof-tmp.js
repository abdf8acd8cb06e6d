const rm = require('./dist/src/runtime-metrics.js');
const { Config } = require('./dist/src/core/flags');
const { nullLogger } = require('./dist/src/core/log');
const { ALL_COLLECTORS } = require('./dist/src/collectors');
const { Exporter, allFlags } = require('./dist/src/exporter');
(async()=>{
  const o={}; for (const d of ALL_COLLECTORS) o[`collector.${d.name}`]=['qdisc','softirq','sysctl','netstat','node'].includes(d.name); const ex = new Exporter(Config.from(allFlags(), o), nullLogger);
  await ex.metricsText();
  const m = { full: () => ex.metricsText({format:'text'}), ref: async () => (await ex.registry.scrape()).render('text'), rt: () => rm.runtimeMetricsText('text') };
  const xs={full:[],ref:[],rt:[]};
  for (let i=0;i<320;i++){ for (const k of Object.keys(m)) { await new Promise(r=>setTimeout(r,12));
    const c0=process.cpuUsage(); await m[k](); const c=process.cpuUsage(c0); if(i>=20) xs[k].push((c.user+c.system)/1000); } }
  const med = a => a.sort((x,y)=>x-y)[a.length>>1];
  console.log('full', med(xs.full), 'ref', med(xs.ref), 'added', (med(xs.full)-med(xs.ref)).toFixed(3), 'runtime alone', med(xs.rt));
  await ex.close(); process.exit(0);
})();
