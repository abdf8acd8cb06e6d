// `node -r ./test/support/ts-register.js script.ts`: run TypeScript sources in a child process without a
// build step (used by live tests that must run code inside a network namespace via `ip netns exec`,
// and by fixture generators). Type-only transpilation with the repo's TypeScript; type checking is
// tsc's job, not this hook's.
'use strict';
const fs = require('fs');
const path = require('path');
const ts = require(path.join(__dirname, '../../node_modules/typescript'));

require.extensions['.ts'] = function compileTs(module, filename) {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, sourceMap: false },
  });
  module._compile(out.outputText, filename);
};
