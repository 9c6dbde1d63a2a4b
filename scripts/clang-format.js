// clang-format over native/ with the repository's .clang-format, from the
// clang-format npm package (its binary, so no system install is needed).
//   node scripts/clang-format.js           rewrite the files in place
//   node scripts/clang-format.js --check   list unformatted files, exit 1 if any
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import fg from 'fast-glob';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const binary = require('clang-format').getNativeBinary();
const check = process.argv.includes('--check');
const files = fg.sync('native/**/*.{h,cpp,cu,cuh}', { cwd: root, absolute: true }).sort();

let unformatted = 0;
for (const file of files) {
  const args = check ? ['--dry-run', '--Werror', '--style=file', file] : ['-i', '--style=file', file];
  const result = spawnSync(binary, args, { cwd: root, encoding: 'utf8' });
  if (result.status !== 0) {
    unformatted++;
    console.error(`${relative(root, file)}: ${check ? 'not formatted (npm run format)' : result.stderr.trim()}`);
  }
}
if (check && unformatted === 0) console.log(`clang-format: ${files.length} native files formatted`);
process.exit(unformatted ? 1 : 0);
