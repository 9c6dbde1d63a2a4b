// The real FER-2013 copy in ../shared (never committed): class counts of the
// image folders, and the 560-row Kaggle-format CSV read back with its codes
// mapped into the canonical label space. Skipped with a message when absent.
import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse';
import test from 'ava';
import { FER2013_CODES, labelNames, openDataset } from 'adcorre-native';
import { sharedDir } from './helpers/shared.js';

const root = join(sharedDir, 'data', 'fer2013');
const csv = join(root, 'fer2013-sample.csv');
const present = existsSync(join(root, 'train')) && existsSync(csv);
const maybe = present ? test : test.skip;
const why = present ? '' : ` (skipped: ${root} is absent)`;

maybe(`FER-2013 image folders: 28,709 train and 3,589 val images in 7 classes${why}`, async (t) => {
  const ds = await openDataset(root);
  t.is(ds.format, 'folder');
  t.is((await openDataset(root, { format: 'fer2013' })).splits.get('val').samples.length, 3589); // --dataset fer2013 on the folder layout
  t.is(ds.splits.get('train').samples.length, 28709);
  t.is(ds.splits.get('val').samples.length, 3589);
  const count = (split) => {
    const h = Object.fromEntries(labelNames(7).map((n) => [n, 0]));
    for (const s of ds.splits.get(split).samples) h[labelNames(7)[s.label]]++;
    return h;
  };
  // FER-2013's published Training / PublicTest class counts
  t.deepEqual(count('train'), {
    neutral: 4965,
    happy: 7215,
    sad: 4830,
    surprise: 3171,
    fear: 4097,
    disgust: 436,
    anger: 3995,
  });
  t.deepEqual(count('val'), { neutral: 607, happy: 895, sad: 653, surprise: 415, fear: 496, disgust: 56, anger: 467 });
  t.is(ds.report.total, 0);
});

maybe(`FER-2013 CSV sample: 40 rows per class in each split, codes mapped${why}`, async (t) => {
  const ds = await openDataset(csv);
  t.deepEqual([...ds.splits.keys()], ['train', 'val']);
  // Read the codes independently and check every sample's label against them.
  const codes = new Map();
  for await (const row of createReadStream(csv).pipe(parse({ columns: true, info: true }))) {
    codes.set(row.info.lines, Number(row.record.emotion));
  }
  for (const split of ['train', 'val']) {
    const samples = ds.splits.get(split).samples;
    t.is(samples.length, 280);
    const h = new Array(7).fill(0);
    for (const s of samples) {
      h[s.label]++;
      const line = Number(s.where.split(':').pop());
      t.is(labelNames(7)[s.label], FER2013_CODES[codes.get(line)], s.where);
    }
    t.deepEqual(h, [40, 40, 40, 40, 40, 40, 40]);
  }
});
