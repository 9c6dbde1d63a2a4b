import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { tempDir, writeBrokenImages, writeImage } from './helpers/fixtures.js';

const run = (args) =>
  promisify(execFile)(process.execPath, [new URL('../bin/adcorre-data.js', import.meta.url).pathname, ...args]).then(
    (r) => ({ code: 0, ...r }),
    (e) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

test('adcorre-data stats: table, skipped files, JSON, exit codes', async (t) => {
  const dir = tempDir();
  await writeImage(join(dir, 'train', 'happy', 'a.jpg'));
  await writeImage(join(dir, 'train', 'angry', 'b.jpg'));
  await writeBrokenImages(join(dir, 'train', 'sad'));
  await writeImage(join(dir, 'val', 'sad', 'c.jpg'));
  const table = await run(['stats', dir]);
  t.is(table.code, 0);
  t.regex(table.stdout, /split\s+samples\s+neutral\s+happy\s+sad/);
  t.regex(table.stdout, /train\s+2\s+0\s+1\s+0\s+0\s+0\s+0\s+1/);
  t.regex(table.stdout, /skipped 2: corrupt image/);
  t.regex(table.stdout, /skipped 1: empty file/);
  const json = JSON.parse((await run(['stats', dir, '--json'])).stdout);
  t.deepEqual(
    json.splits.map((s) => [s.name, s.samples]),
    [
      ['train', 2],
      ['val', 1],
    ],
  );
  const quick = JSON.parse((await run(['stats', dir, '--json', '--no-verify'])).stdout);
  t.is(quick.splits[0].samples, 5);
  t.is((await run(['stats', join(dir, 'missing')])).code, 1);
  t.is((await run(['stats'])).code, 2);
  t.is((await run(['stats', dir, '--classes', '9'])).code, 2);
  t.is((await run(['frobnicate'])).code, 2);
});
