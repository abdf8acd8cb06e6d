// Run some collectors once and print the exposition (used by live tests inside `ip netns exec`, where the
// test process itself cannot go). Usage:
//   node -r ./test/support/ts-register.js test/support/collect-once.ts <collector,...> [--flag=value ...]
// Exit status 0; a collector that throws prints "# FAILED <name>: <message>" and exits 3.

import { Config } from '../../src/core/flags';
import { Emitter } from '../../src/core/metrics';
import { nullLogger } from '../../src/core/log';
import { ALL_COLLECTORS } from '../../src/collectors';
import { allFlags } from '../../src/exporter';

async function main(): Promise<number> {
  const [names, ...flags] = process.argv.slice(2);
  const wanted = (names ?? '').split(',').filter((n) => n !== '');
  const defs = ALL_COLLECTORS.filter((d) => wanted.includes(d.name));
  if (defs.length !== wanted.length) throw new Error(`unknown collector in "${names}"`);
  const overrides: Record<string, string> = {};
  for (const f of flags) {
    const m = /^--([^=]+)=(.*)$/.exec(f);
    if (!m) throw new Error(`flag "${f}" must be --name=value`);
    overrides[m[1]] = m[2];
  }
  const config = Config.from(allFlags(), overrides);
  let status = 0;
  for (const d of defs) {
    const c = d.create({ config, log: nullLogger });
    const out = new Emitter();
    try {
      await c.collect(out, { signal: new AbortController().signal, now: Date.now() });
      process.stdout.write(out.render());
    } catch (e) {
      process.stdout.write(`# FAILED ${d.name}: ${(e as Error).message}\n`);
      status = 3;
    } finally {
      await c.close?.();
    }
  }
  return status;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
