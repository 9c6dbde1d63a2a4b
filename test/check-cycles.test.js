// scripts/check-cycles.js (part of npm run lint): finds a cycle, type-only imports and re-exports included, and
// passes lib/ as it is.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { tempDir } from './helpers/fixtures.js';

const run = (dir) =>
  promisify(execFile)(process.execPath, ['scripts/check-cycles.js', ...(dir ? [dir] : [])]).then(
    (r) => ({ code: 0, ...r }),
    (err) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
  );

test('check-cycles: a type-only import and a re-export that close a circle are reported, naming the modules', async (t) => {
  const dir = tempDir('adcorre-cycles-');
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'a.ts'), "import type { B } from './sub/b.js';\nexport type A = B;\n");
  writeFileSync(join(dir, 'sub', 'b.ts'), "export { c } from '../c.js';\nexport type B = number;\n");
  writeFileSync(join(dir, 'c.ts'), "import './a.js';\nexport const c = 1;\n");
  writeFileSync(join(dir, 'leaf.ts'), "import { c } from './c.js';\nexport const d = c;\n");
  const r = await run(dir);
  t.is(r.code, 1);
  t.regex(r.stderr, /import cycle among 3 modules/);
  t.regex(r.stderr, /a\.ts -> sub\/b\.ts/);
  t.regex(r.stderr, /sub\/b\.ts -> c\.ts/);
  t.regex(r.stderr, /c\.ts -> a\.ts/);
  t.notRegex(r.stderr, /leaf/);
  writeFileSync(join(dir, 'c.ts'), 'export const c = 1;\n');
  const fixed = await run(dir);
  t.is(fixed.code, 0, fixed.stderr);
});

test('check-cycles: lib/ has no import cycle', async (t) => {
  const r = await run();
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /no import cycle/);
});
