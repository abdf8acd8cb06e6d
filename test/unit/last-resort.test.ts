// A promise rejected where nothing handles it is logged and the process goes on (Node 20 would exit).
import { spawnSync } from 'child_process';
import * as path from 'path';

const root = path.join(__dirname, '../..');

function run(install: boolean) {
  const script = `
    const { createLogger } = require('./src/core/log.ts');
    const { installRejectionHandler } = require('./src/core/last-resort.ts');
    if (${install}) installRejectionHandler(createLogger('info'));
    void Promise.resolve().then(() => { throw new Error('boom in a background loop'); });
    setTimeout(() => process.stdout.write('still serving\\n'), 100);
  `;
  return spawnSync(process.execPath, ['-r', './test/support/ts-register.js', '-e', script], { cwd: root, encoding: 'utf8' });
}

describe('installRejectionHandler', () => {
  it('logs an unhandled rejection and keeps the process running', () => {
    const r = run(true);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('still serving\n');
    expect(r.stderr).toMatch(/level=error err=".*boom in a background loop.*" msg="unhandled promise rejection/);
  });

  it('without it the same rejection ends the process (what the handler prevents)', () => {
    const r = run(false);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
  });
});
