// scripts/run-tests.mjs: run the compiled test files with node's test runner.
//   node scripts/run-tests.mjs [unit|e2e|interop|all] [FILTER]
// unit: dist/src/**/*.test.js (memory ports, no root needed); e2e/interop: dist/test/{e2e,interop}/*.test.js
// (root, network namespaces). e2e and interop files run one at a time: they share the machine's two cores.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const which = process.argv[2] ?? 'all';
const filter = process.argv[3] ?? '';
function walk(dir) {
  let out = [];
  let names = [];
  try { names = readdirSync(dir); } catch { return out; }
  for (const n of names.sort()) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out = out.concat(walk(p));
    else if (n.endsWith('.test.js')) out.push(p);
  }
  return out;
}
const groups = {
  unit: walk('dist/src'),
  e2e: walk('dist/test/e2e'),
  interop: walk('dist/test/interop'),
};
const files = (which === 'all' ? [...groups.unit, ...groups.e2e, ...groups.interop] : groups[which] ?? [])
  .filter((f) => f.includes(filter));
if (files.length === 0) { console.error(`no test files for ${which} ${filter}`); process.exit(1); }
const unit = files.filter((f) => f.startsWith('dist/src'));
const rest = files.filter((f) => !f.startsWith('dist/src'));
let code = 0;
// One runner invocation so node prints one summary; e2e files serialised with --test-concurrency=1.
const args = ['--test', '--test-concurrency=1', '--test-reporter=spec', ...unit, ...rest];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
code = r.status ?? 1;
process.exit(code);
