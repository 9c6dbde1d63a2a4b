// Every reader on fixtures generated here, with deliberately bad items: each is
// skipped and counted (or, in strict mode, stops the read with its file and line).
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { DataError, DataLoader, detectFormat, openDataset } from 'adcorre-native';
import { fer2013Csv, ferPixels, tempDir, writeBrokenImages, writeImage } from './helpers/fixtures.js';

const hist = (split, classes = 7) => {
  const h = new Array(classes).fill(0);
  for (const s of split.samples) h[s.label]++;
  return h;
};

async function loadAll(split, options = {}) {
  const loader = new DataLoader(split, { batchSize: 4, size: 32, channels: 1, workers: 0, ...options });
  let count = 0;
  for await (const b of loader.epoch(0)) count += b.count;
  return { count, report: loader.report.summary() };
}

test('FER-2013 CSV: splits by Usage, codes mapped, malformed rows counted', async (t) => {
  const dir = tempDir();
  const csv = join(dir, 'fer2013.csv');
  writeFileSync(
    csv,
    fer2013Csv([
      [0, ferPixels(1), 'Training'], // anger
      [3, ferPixels(2), 'Training'], // happy
      [6, ferPixels(3), 'PublicTest'], // neutral
      [5, ferPixels(4), 'PrivateTest'], // surprise
      [3, ferPixels(5).slice(1), 'Training'], // 2303 pixels
      [3, [...ferPixels(6).slice(1), 256], 'Training'], // value out of range
      [9, ferPixels(7), 'Training'], // unknown code
      [2, ferPixels(8), 'Elsewhere'], // unknown usage
    ]) + '4,"unterminated\n',
  );
  t.is(detectFormat(csv), 'fer2013');
  const ds = await openDataset(csv);
  t.deepEqual([...ds.splits.keys()], ['train', 'val', 'test']);
  t.deepEqual(hist(ds.splits.get('train')), [0, 1, 0, 0, 0, 0, 1]);
  t.deepEqual(hist(ds.splits.get('val')), [1, 0, 0, 0, 0, 0, 0]);
  t.deepEqual(hist(ds.splits.get('test')), [0, 0, 0, 1, 0, 0, 0]);
  const { skipped, examples } = ds.report.summary();
  t.is(skipped['malformed row'], 4);
  t.is(skipped['unknown label'], 1);
  t.regex(examples['unknown label'][0], /fer2013\.csv:8: unknown label \(FER-2013 code 9\)/);
  // pixels come back exactly
  const { count } = await loadAll(ds.splits.get('train'), { size: 48 });
  t.is(count, 2);
});

test('FER-2013 CSV strict mode stops at the first bad row with file and line', async (t) => {
  const dir = tempDir();
  const csv = join(dir, 'fer2013.csv');
  writeFileSync(
    csv,
    fer2013Csv([
      [0, ferPixels(1), 'Training'],
      [1, ferPixels(2).slice(3), 'Training'],
    ]),
  );
  await t.throwsAsync(() => openDataset(csv, { strict: true }), {
    instanceOf: DataError,
    message: /fer2013\.csv:3: malformed row/,
  });
});

test('FER+: majority labels joined by row with the FER-2013 pixels', async (t) => {
  const dir = tempDir();
  writeFileSync(
    join(dir, 'fer2013.csv'),
    fer2013Csv([0, 1, 2, 3, 4, 5].map((i) => [0, ferPixels(i), i < 4 ? 'Training' : 'PublicTest'])),
  );
  writeFileSync(
    join(dir, 'fer2013new.csv'),
    [
      'Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF',
      'Training,fer0000000.png,0,10,0,0,0,0,0,0,0,0', // happy
      'Training,fer0000001.png,5,5,0,0,0,0,0,0,0,0', // tie
      'Training,,0,0,0,0,0,0,0,0,0,10', // no image (excluded by FER+)
      'Training,fer0000003.png,0,0,0,0,0,0,0,6,4,0', // contempt
      'PublicTest,fer0000004.png,0,0,0,0,0,0,1,0,0,9', // not a face
      'PublicTest,fer0000005.png,7,0,0,3,0,0,0,0,0,0', // neutral
    ].join('\n'),
  );
  t.is(detectFormat(dir), 'ferplus');
  const ds8 = await openDataset(dir);
  t.is(ds8.classes, 8);
  t.deepEqual(hist(ds8.splits.get('train'), 8), [0, 1, 0, 0, 0, 0, 0, 1]);
  t.deepEqual(hist(ds8.splits.get('val'), 8), [1, 0, 0, 0, 0, 0, 0, 0]);
  t.is(ds8.splits.get('val').samples[0].source, 5); // row 6 of the FER-2013 CSV
  const { excluded } = ds8.report.summary();
  t.is(excluded['FER+ tie'], 1);
  t.is(excluded['FER+ majority NF'], 1);
  const ds7 = await openDataset(dir, { classes: 7 });
  t.deepEqual(hist(ds7.splits.get('train')), [0, 1, 0, 0, 0, 0, 0]);
  await t.throwsAsync(
    () => openDataset(join(dir, 'fer2013new.csv'), { format: 'ferplus', fer2013: join(dir, 'nope.csv') }),
    { message: /needs the FER-2013 CSV.*nope\.csv not found/ },
  );
});

test('image folders: split/class layout, spellings, broken files skipped at load', async (t) => {
  const dir = tempDir();
  await writeImage(join(dir, 'train', 'Angry', 'a.jpg'), { seed: 1 });
  await writeImage(join(dir, 'train', 'happiness', 'b.png'), { seed: 2, format: 'png', channels: 3 });
  await writeImage(join(dir, 'train', 'happiness', 'c.jpg'), { seed: 3, w: 300, h: 200, channels: 3 });
  await writeBrokenImages(join(dir, 'train', 'sad'));
  writeFileSync(join(dir, 'train', 'sad', 'notes.txt'), 'not an image');
  await writeImage(join(dir, 'val', 'neutral', 'd.jpg'), { seed: 4 });
  t.is(detectFormat(dir), 'folder');
  const ds = await openDataset(dir);
  t.deepEqual([...ds.splits.keys()], ['train', 'val']);
  t.deepEqual(hist(ds.splits.get('train')), [0, 2, 3, 0, 0, 0, 1]);
  t.is(ds.report.summary().excluded['not an image file (by extension)'], 1);
  const { count, report } = await loadAll(ds.splits.get('train'), { channels: 3, cache: false });
  t.is(count, 3);
  t.is(report.skipped['empty file'], 1);
  t.is(report.skipped['corrupt image'], 2);
  t.true(report.examples['corrupt image'].some((e) => e.includes('truncated.jpg')));
});

test('image folders: symbolic links to split folders, class folders and files are followed; dangling ones are not', async (t) => {
  const store = tempDir();
  await writeImage(join(store, 'train', 'happy', 'a.jpg'), { seed: 1 });
  await writeImage(join(store, 'val', 'sad', 'b.jpg'), { seed: 2 });
  await writeImage(join(store, 'c.jpg'), { seed: 3 });
  const dir = tempDir();
  symlinkSync(join(store, 'train'), join(dir, 'train')); // a split folder
  mkdirSync(join(dir, 'val'));
  symlinkSync(join(store, 'val', 'sad'), join(dir, 'val', 'sad')); // a class folder
  mkdirSync(join(dir, 'val', 'angry'));
  symlinkSync(join(store, 'c.jpg'), join(dir, 'val', 'angry', 'c.jpg')); // a file
  symlinkSync(join(store, 'missing.jpg'), join(dir, 'val', 'angry', 'gone.jpg')); // dangling
  const ds = await openDataset(dir);
  t.deepEqual([...ds.splits.keys()], ['train', 'val']);
  t.deepEqual(hist(ds.splits.get('train')), [0, 1, 0, 0, 0, 0, 0]);
  t.deepEqual(hist(ds.splits.get('val')), [0, 0, 1, 0, 0, 0, 1]);
});

test('image folders: unknown class names are an error listing what was found', async (t) => {
  const dir = tempDir();
  await writeImage(join(dir, 'happy', 'a.jpg'));
  await writeImage(join(dir, 'joy', 'b.jpg'));
  await t.throwsAsync(() => openDataset(join(dir)), {
    instanceOf: DataError,
    message: /found happy, joy \(unknown: joy\)/,
  });
  const empty = tempDir();
  mkdirSync(join(empty, 'happy'));
  await t.throwsAsync(() => openDataset(empty), { instanceOf: DataError, message: /no images found/ });
});

test('CSV manifest: path,label[,split] with names or indices', async (t) => {
  const dir = tempDir();
  await writeImage(join(dir, 'img', 'a.jpg'), { seed: 1 });
  await writeImage(join(dir, 'img', 'b.jpg'), { seed: 2 });
  writeFileSync(
    join(dir, 'list.csv'),
    'path,label,split\nimg/a.jpg,happy,train\nimg/b.jpg,6,val\nimg/missing.jpg,sad,train\nimg/a.jpg,smile,train\n',
  );
  t.is(detectFormat(join(dir, 'list.csv')), 'csv');
  const ds = await openDataset(join(dir, 'list.csv'));
  t.deepEqual(hist(ds.splits.get('train')), [0, 1, 1, 0, 0, 0, 0]);
  t.deepEqual(hist(ds.splits.get('val')), [0, 0, 0, 0, 0, 0, 1]);
  t.is(ds.report.summary().skipped['unknown label'], 1);
  const { count, report } = await loadAll(ds.splits.get('train'), { cache: false });
  t.is(count, 1);
  t.is(report.skipped['missing file'], 1);
});

test('RAF-DB: aligned crops, and originals cropped by their boxes', async (t) => {
  const dir = tempDir();
  mkdirSync(join(dir, 'EmoLabel'), { recursive: true });
  writeFileSync(
    join(dir, 'EmoLabel', 'list_patition_label.txt'),
    'train_00001.jpg 4\ntrain_00002.jpg 1\ntest_0001.jpg 7\ntest_0002.jpg 9\nbroken line\n',
  );
  await writeImage(join(dir, 'Image', 'aligned', 'train_00001_aligned.jpg'), { channels: 3, w: 100, h: 100 });
  await writeImage(join(dir, 'Image', 'aligned', 'train_00002_aligned.jpg'), { channels: 3, w: 100, h: 100, seed: 2 });
  await writeImage(join(dir, 'Image', 'aligned', 'test_0001_aligned.jpg'), { channels: 3, w: 100, h: 100, seed: 3 });
  t.is(detectFormat(dir), 'rafdb');
  const ds = await openDataset(dir);
  t.deepEqual(hist(ds.splits.get('train')), [0, 1, 0, 1, 0, 0, 0]);
  t.deepEqual(hist(ds.splits.get('test')), [1, 0, 0, 0, 0, 0, 0]);
  t.is(ds.report.summary().skipped['unknown label'], 1);
  t.is(ds.report.summary().skipped['malformed row'], 1);
  t.is((await loadAll(ds.splits.get('train'))).count, 2);

  const orig = tempDir();
  mkdirSync(join(orig, 'EmoLabel'), { recursive: true });
  writeFileSync(join(orig, 'EmoLabel', 'list_patition_label.txt'), 'train_00001.jpg 5\n');
  await writeImage(join(orig, 'Image', 'original', 'train_00001.jpg'), { channels: 3, w: 200, h: 150 });
  mkdirSync(join(orig, 'Annotation', 'boundingbox'), { recursive: true });
  writeFileSync(join(orig, 'Annotation', 'boundingbox', 'train_00001_boundingbox.txt'), '40.5 20.0 140.5 120.0\n');
  const ds2 = await openDataset(orig);
  t.deepEqual(ds2.splits.get('train').samples[0].box, [41, 20, 100, 100]);
  t.is((await loadAll(ds2.splits.get('train'))).count, 1);
});

test('AffectNet: manifests, face boxes, codes 8..10 excluded, boxes outside the image skipped', async (t) => {
  const dir = tempDir();
  await writeImage(join(dir, 'Manually_Annotated_Images', '1', 'a.jpg'), { channels: 3, w: 120, h: 120 });
  await writeImage(join(dir, 'Manually_Annotated_Images', '1', 'b.jpg'), { channels: 3, w: 120, h: 120, seed: 5 });
  const header =
    'subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal';
  writeFileSync(
    join(dir, 'training.csv'),
    [
      header,
      '1/a.jpg,10,10,100,100,"1;2",1,0.5,0.5',
      '1/b.jpg,20,20,80,80,"1;2",7,0.1,0.2', // contempt: 8-class only
      '1/a.jpg,10,10,100,100,"1;2",9,0,0', // uncertain
      '1/b.jpg,500,500,50,50,"1;2",2,0,0', // box outside the image
      '1/a.jpg,x,10,100,100,"1;2",3,0,0', // malformed box
      '1/gone.jpg,0,0,50,50,"1;2",4,0,0', // missing file
    ].join('\n'),
  );
  writeFileSync(join(dir, 'validation.csv'), `${header}\n1/b.jpg,0,0,120,120,"",6,0,0\n`);
  t.is(detectFormat(dir), 'affectnet');
  const ds = await openDataset(dir);
  t.deepEqual(hist(ds.splits.get('train')), [0, 1, 1, 0, 1, 0, 0]);
  t.deepEqual(hist(ds.splits.get('val')), [0, 0, 0, 0, 0, 0, 1]);
  const summary = ds.report.summary();
  t.is(summary.excluded['AffectNet code 9 (uncertain)'], 1);
  t.is(summary.excluded['contempt (not in the 7-class label space)'], 1);
  t.is(summary.skipped['malformed row'], 1);
  const { count, report } = await loadAll(ds.splits.get('train'), { channels: 3, cache: false });
  t.is(count, 1);
  t.is(report.skipped['box outside image'], 1);
  t.is(report.skipped['missing file'], 1);
  const ds8 = await openDataset(dir, { classes: 8 });
  t.is(hist(ds8.splits.get('train'), 8)[7], 1);
});

test('detectFormat and openDataset explain what they could not use', async (t) => {
  const dir = tempDir();
  writeFileSync(join(dir, 'odd.csv'), 'a,b\n1,2\n');
  t.throws(() => detectFormat(join(dir, 'odd.csv')), {
    instanceOf: DataError,
    message: /unrecognised CSV header \(a, b\)/,
  });
  t.throws(() => detectFormat(join(dir, 'none')), { instanceOf: DataError, message: /not found/ });
  await t.throwsAsync(() => openDataset(dir, { format: 'nope' }), {
    instanceOf: RangeError,
    message: /for format but received 'nope'/,
  });
  await t.throwsAsync(() => openDataset(dir, { classes: 6 }), {
    instanceOf: RangeError,
    message: /7 or 8 for classes/,
  });
  writeFileSync(join(dir, 'empty.csv'), 'emotion,pixels,Usage\n');
  await t.throwsAsync(() => openDataset(join(dir, 'empty.csv')), { instanceOf: DataError, message: /no usable rows/ });
});
