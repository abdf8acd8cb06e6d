// `flowpath diagnose` runs, many in one process (not a test file): started by DiagnoseWorker
// (./support.ts) inside a node's namespace, it reads one JSON array of diagnose arguments per stdin line
// and answers each with one JSON line {code, stdout, stderr}. Under TCG emulation a Node process takes
// tens of seconds to start; this keeps that to once per test file. The diagnose code is the CLI's own
// (runDiagnose with the CLI's flag set).
import * as readline from 'readline';
import { parseArgs } from '../../../src/core/flags';
import { allFlags } from '../../../src/exporter';
import { diagnoseCommand, runDiagnose } from '../../../src/diagnosis/command';

const rl = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
rl.on('line', (line) => {
  queue = queue.then(async () => {
    let stdout = '';
    let stderr = '';
    let code: number;
    try {
      const args = parseArgs([...allFlags(), ...(diagnoseCommand.flags ?? [])], JSON.parse(line) as string[]);
      code = await runDiagnose(args.config, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
    } catch (e) {
      code = 1;
      stderr += (e as Error).stack ?? String(e);
    }
    process.stdout.write(JSON.stringify({ code, stdout, stderr }) + '\n');
  });
});
rl.on('close', () => void queue.then(() => process.exit(0)));
process.stdout.write('ready\n');
