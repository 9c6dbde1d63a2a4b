// adcorre-predict, adcorre-eval,
// adcorre-data and the readers against long command lines, hostile names and
// labels, special files and broken models. Each test reproduces one reported
// failure and checks the fix; every CLI run has a deadline and its stderr is
// checked for stack traces. Device nodes are made in a temporary folder with
// mknod (root only; skipped with a message otherwise), never a system one.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { FER, InputError, labelNames, PREDICTION_DEFAULTS } from 'adcorre-native';
import { annotatedNames } from 'adcorre-native/internal';
import { ModelError } from 'adcorre-native/internal';
import { decodedInOrder, decodeInput } from 'adcorre-native/internal';
import { openDataset } from 'adcorre-native/internal';
import { datasetStats } from 'adcorre-native/internal';
import { bin, cli, noStack, run } from './helpers/cli.js';
import { tempDir, writeImage } from './helpers/fixtures.js';
import { editedModel, tiny, untrainedModel } from './helpers/models.js';

// the terminal must never receive a raw escape (ESC), bell or carriage return from a name or a label
const noControls = (t, text, what) =>
  // eslint-disable-next-line no-control-regex
  t.notRegex(text, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/, `${what} holds no control character`);

const root = process.getuid?.() === 0;
const dir = tempDir('adcorre-hardening-predict-');
const config = { ...tiny, inputSize: 48 };
const modelBytes = () => untrainedModel(config);
const modelPath = join(dir, 'tiny.onnx');
writeFileSync(modelPath, modelBytes());
const face = join(dir, 'face.png');
await writeImage(face, { seed: 9, format: 'png' });

const withLabels = (labels) =>
  editedModel(modelBytes(), (m) => {
    for (const p of m.metadataProps) if (p.key === 'adcorre.labels') p.value = JSON.stringify(labels);
  });

/** A device node in a temporary folder (mknod: root only), or null. */
function device(name, major = 1, minor = 5) {
  if (!root) return null;
  const path = join(tempDir(), name);
  try {
    execFileSync('mknod', [path, 'c', String(major), String(minor)]);
    return path;
  } catch {
    return null;
  }
}
function fifo(name) {
  const path = join(tempDir(), name);
  execFileSync('mkfifo', [path]);
  return path;
}
const noDevice = 'skipped: making a device node (mknod) needs root';

// --- 0. a long command line (a shell glob of a few hundred photos) crashed ONNX Runtime with SIGSEGV ---

test('5,000 photos named on the command line (330,000 characters) are all predicted, no SIGSEGV', async (t) => {
  // ONNX Runtime's telemetry matched /proc/self/cmdline against a std::regex that recurses once per
  // character on the main thread's stack: about 28,000 characters were enough. The child gets no
  // ORT_DISABLE_TELEMETRY of its own, as a user's shell would not.
  const folder = join(tempDir(), 'a-folder-with-a-name-as-long-as-a-real-photo-library-has');
  const photo = join(folder, 'PublicTest_10130075-face-crop.png');
  await writeImage(photo, { seed: 4, format: 'png' });
  const args = Array.from({ length: 5000 }, () => photo);
  t.true(args.join(' ').length > 300_000);
  const env = { ...process.env };
  delete env.ORT_DISABLE_TELEMETRY;
  const r = await cli('adcorre-predict', ['--model', modelPath, '--no-detect', '--json', ...args], 240_000, env);
  t.is(r.code, 0, r.stderr);
  const rows = r.stdout.trim().split('\n');
  t.is(rows.length, 5000);
  t.is(JSON.parse(rows[4999]).source, photo);
  noStack(t, r.stderr);
});

test('the telemetry that reads the command line is off unless the user chose otherwise', async (t) => {
  const fer = await FER.load({ model: modelPath, device: 'cpu' });
  await fer.close();
  t.is(process.env.ORT_DISABLE_TELEMETRY, '1');
});

// --- 2. escape sequences, newlines and tabs from model labels and file names ---

test('a model whose labels hold escapes, newlines, tabs or duplicates is refused at load; the CLIs exit 2', async (t) => {
  const hostile = [
    'neutral\u001b[2J', // clears the screen
    'happy\u001b]0;pwned\u0007', // retitles the window
    'sad\nfake.jpg\twhole image\thappy 99.9%', // a forged result row
    'surprise',
    'fear',
    'surprise', // a duplicate: one class would vanish from `probabilities`
    'anger',
  ];
  const file = join(dir, 'hostile-labels.onnx');
  writeFileSync(file, withLabels(hostile));
  const error = await t.throwsAsync(() => FER.load({ model: file, device: 'cpu' }), { instanceOf: ModelError });
  t.regex(error.message, /hostile-labels\.onnx: the model's metadata names classes that cannot be used/);
  t.regex(error.message, /label 0 "neutral\\e\[2J" holds control/);
  t.regex(error.message, /label 2 "sad\\nfake\.jpg\\twhole image\\thappy 99\.9%" holds control/);
  t.regex(error.message, /label 5 "surprise" is also label 3's name/);
  noControls(t, error.message, 'the message');
  await t.throwsAsync(() => FER.load({ model: withLabels(['a', 'b', 'c', 'd', 'e', 'f', ' ']), device: 'cpu' }), {
    message: /label 6 is empty or blank/,
  });
  for (const [name, args] of [
    ['adcorre-predict', ['--model', file, face]],
    ['adcorre-eval', ['--model', file, '--data', dir]],
  ]) {
    const r = await cli(name, args);
    t.is(r.code, 2, `${name}: ${r.stderr}`);
    t.regex(r.stderr, /cannot be used: label 0 "neutral\\e\[2J"/);
    t.is(r.stdout, '');
    noControls(t, r.stderr, `${name}'s stderr`);
    noStack(t, r.stderr);
  }
});

test('file names with escapes, newlines and tabs are shown escaped; rows stay one per face; --json is exact', async (t) => {
  const folder = tempDir();
  const names = ['clear\u001b[2J.png', 'two\nlines.png', 'tab\there.png', 'bidi\u202eGNP.png'];
  for (const [i, name] of names.entries()) await writeImage(join(folder, name), { seed: i, format: 'png' });
  const bad = join(folder, 'red\u001b[31m.jpg');
  writeFileSync(bad, 'not an image');
  const paths = [...names.map((n) => join(folder, n)), bad];
  const text = await cli('adcorre-predict', ['--model', modelPath, '--no-detect', ...paths]);
  t.is(text.code, 1, text.stderr);
  const rows = text.stdout.trim().split('\n');
  t.is(rows.length, 4, text.stdout);
  for (const row of rows) t.is(row.split('\t').length, 4, `four columns: ${row}`);
  t.true(rows.some((r) => r.startsWith(`${folder}/clear\\e[2J.png\t`)));
  t.true(rows.some((r) => r.startsWith(`${folder}/two\\nlines.png\t`)));
  t.true(rows.some((r) => r.startsWith(`${folder}/tab\\there.png\t`)));
  t.true(rows.some((r) => r.startsWith(`${folder}/bidi\\u{202e}GNP.png\t`)));
  t.regex(text.stderr, /red\\e\[31m\.jpg: not an image/);
  noControls(t, text.stdout.replaceAll('\t', ' '), 'stdout');
  noControls(t, text.stderr, 'stderr');
  noStack(t, text.stderr);
  const json = await cli('adcorre-predict', ['--model', modelPath, '--no-detect', '--json', ...paths]);
  const records = json.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.deepEqual(
    records.map((r) => r.source),
    paths,
    'the names exactly',
  );
  t.is(
    records[4].error,
    `${bad}: not an image, or an unsupported format (JPEG, PNG, WebP, GIF, TIFF, AVIF, HEIF, SVG are read)`,
  );
  // the API: the source exactly, the message escaped
  const fer = await FER.load({ model: modelPath, device: 'cpu' });
  const [result] = await fer.predictBatch([bad]);
  await fer.close();
  t.true(result instanceof InputError);
  t.is(result.source, bad);
  t.regex(result.message, /red\\e\[31m\.jpg: not an image/);
});

test('adcorre-data and adcorre-eval show dataset file names escaped, --json exactly', async (t) => {
  const data = tempDir();
  for (const [c, name] of labelNames(7).entries())
    await writeImage(join(data, 'val', name, `${c}.png`), { w: 40, h: 40, seed: c, format: 'png' });
  const evil = join(data, 'val', 'happy', 'x\u001b]0;pwned\u0007\nskipped 0: nothing.png');
  writeFileSync(evil, 'not an image');
  const stats = await cli('adcorre-data', ['stats', data]);
  t.is(stats.code, 0, stats.stderr);
  t.regex(stats.stdout, /skipped 1: corrupt image, e\.g\. .*x\\e\]0;pwned\\x07\\nskipped 0: nothing\.png/);
  noControls(t, stats.stdout, 'stdout');
  const statsJson = JSON.parse((await cli('adcorre-data', ['stats', data, '--json'])).stdout);
  t.true(statsJson.report.examples['corrupt image'][0].startsWith(`${evil}: corrupt image`));
  const evaluated = await cli('adcorre-eval', ['--model', modelPath, '--data', data]);
  t.is(evaluated.code, 0, evaluated.stderr);
  t.regex(evaluated.stdout, /x\\e\]0;pwned\\x07\\nskipped 0: nothing\.png/);
  noControls(t, evaluated.stdout, 'stdout');
  noStack(t, evaluated.stderr);
  // a folder of the wrong shape: the error names the folder escaped
  const odd = join(tempDir(), 'evil\u001b[2J');
  mkdirSync(join(odd, 'strange\nname'), { recursive: true });
  const refused = await cli('adcorre-data', ['stats', odd]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /evil\\e\[2J.*strange\\nname/);
  noControls(t, refused.stderr, 'stderr');
});

// --- 6. annotated copies of inputs with the same name ---

test('--annotate writes one copy per input, also for a/x.jpg, b/x.jpg and c/x.jpeg', async (t) => {
  const base = tempDir();
  const inputs = [join(base, 'a', 'x.jpg'), join(base, 'b', 'x.jpg'), join(base, 'c', 'x.jpeg')];
  for (const [i, p] of inputs.entries()) await writeImage(p, { w: 40 + 8 * i, h: 40, seed: i });
  const out = join(base, 'out');
  const r = await cli('adcorre-predict', ['--model', modelPath, '--no-detect', '--json', '--annotate', out, ...inputs]);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(readdirSync(out).sort(), ['x-2.annotated.jpg', 'x-3.annotated.jpg', 'x.annotated.jpg']);
  const written = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).annotated);
  t.deepEqual(written, [join(out, 'x.annotated.jpg'), join(out, 'x-2.annotated.jpg'), join(out, 'x-3.annotated.jpg')]);
  // each copy is its own input's: the widths differ
  const sharp = (await import('sharp')).default;
  const widths = await Promise.all(written.map(async (p) => (await sharp(p).metadata()).width));
  t.deepEqual(widths, [40, 48, 56]);
  t.regex(r.stderr, /b\/x\.jpg: annotated copy written as .*x-2\.annotated\.jpg/);
  noStack(t, r.stderr);
});

test('annotatedNames: distinct names, case-insensitively, never an input of the folder', (t) => {
  t.deepEqual(annotatedNames(['a/x.jpg', 'b/X.JPG', 'c/x-2.png', 'd/x.png'], 'out'), [
    'x.annotated.jpg',
    'X-2.annotated.jpg',
    'x-2.annotated.png',
    'x.annotated.png',
  ]);
  // x.jpg's copy would replace x.annotated.jpg, an input in the output folder itself
  t.deepEqual(annotatedNames(['out/x.annotated.jpg', 'out/x.jpg'], 'out'), [
    'x.annotated.annotated.jpg',
    'x-2.annotated.jpg',
  ]);
});

// --- 9. special files: devices, named pipes, folders ---

test('a device or a named pipe as a photo is refused by name at once, not read forever', async (t) => {
  const pipe = fifo('photo.jpg');
  const zero = device('zero.jpg');
  if (!zero) t.log(noDevice);
  const start = Date.now();
  const r = await cli('adcorre-predict', ['--model', modelPath, pipe, ...(zero ? [zero] : []), face], 30_000);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /photo\.jpg: a named pipe \(FIFO\), not a regular file/);
  if (zero) t.regex(r.stderr, /zero\.jpg: a character device, not a regular file/);
  t.regex(r.stdout, /face\.png\t/, 'the other inputs go on');
  t.true(Date.now() - start < 30_000);
  noStack(t, r.stderr);
  await t.throwsAsync(() => decodeInput(pipe), { instanceOf: InputError, message: /a named pipe \(FIFO\)/ });
});

test('a device, a named pipe or a folder as --model, --data or --fer2013 is a usage error naming it', async (t) => {
  const pipe = fifo('model.onnx');
  const zero = device('zero.onnx');
  if (!zero) t.log(noDevice);
  const cases = [
    ['adcorre-predict', ['--model', pipe, face], /for --model but received a named pipe \(FIFO\): .*model\.onnx$/m],
    ['adcorre-predict', ['--model', dir, face], /Expected an ONNX model file for --model but received a folder: /],
    ['adcorre-eval', ['--model', pipe, '--data', dir], /for --model but received a named pipe/],
    [
      'adcorre-eval',
      ['--model', modelPath, '--data', pipe],
      /Expected a dataset folder or CSV file for --data but received a named pipe \(FIFO\): /,
    ],
    [
      'adcorre-eval',
      ['--model', modelPath, '--data', dir, '--dataset', 'ferplus', '--fer2013', pipe],
      /Expected a CSV file for --fer2013 but received a named pipe/,
    ],
    ['adcorre-data', ['stats', pipe], /for <path> but received a named pipe/],
    ['adcorre-data', ['stats', dir, '--fer2013', pipe], /Expected a CSV file for --fer2013/],
  ];
  if (zero) {
    cases.push([
      'adcorre-predict',
      ['--model', zero, face],
      /for --model but received a character device: .*zero\.onnx$/m,
    ]);
    cases.push(['adcorre-eval', ['--model', zero, '--data', dir], /for --model but received a character device/]);
    cases.push(['adcorre-eval', ['--model', modelPath, '--data', zero], /for --data but received a character device/]);
  }
  await Promise.all(
    cases.map(async ([name, args, message]) => {
      const r = await cli(name, args, 30_000);
      t.is(r.code, 2, `${name} ${args.join(' ')}: ${r.stderr}`);
      t.regex(r.stderr, message);
      noStack(t, r.stderr);
    }),
  );
  await t.throwsAsync(() => FER.load({ model: pipe, device: 'cpu' }), {
    message: /Expected an ONNX model file for model but received a named pipe \(FIFO\): /,
  });
});

test('a dataset whose manifest names a device or a named pipe skips them as not regular files', async (t) => {
  const data = tempDir();
  await writeImage(join(data, 'a.png'), { w: 40, h: 40, seed: 1, format: 'png' });
  const pipe = fifo('b.png');
  const zero = device('c.png');
  if (!zero) t.log(noDevice);
  writeFileSync(
    join(data, 'manifest.csv'),
    `path,label\na.png,happy\n${pipe},sad\n${zero ? `${zero},fear\n` : ''}${data},anger\n`,
  );
  const dataset = await openDataset(join(data, 'manifest.csv'));
  const stats = await datasetStats(dataset, { verify: true });
  t.is(stats.report.skipped['not a regular file'], zero ? 3 : 2);
  t.is(stats.splits[0].samples, 1);
});

// --- 11. names that are not UTF-8; empty slots in predictBatch ---

test('a file name that is not valid UTF-8 is reported as such, not as a missing file', async (t) => {
  const data = tempDir();
  for (const [c, name] of labelNames(7).entries())
    await writeImage(join(data, name, `${c}.png`), { w: 40, h: 40, seed: c, format: 'png' });
  const raw = Buffer.concat([Buffer.from(join(data, 'happy', 'b')), Buffer.from([0xff]), Buffer.from('.png')]);
  writeFileSync(raw, readFileSync(join(data, 'happy', '1.png')));
  const stats = await cli('adcorre-data', ['stats', data]);
  t.is(stats.code, 0, stats.stderr);
  t.regex(
    stats.stdout,
    /skipped 1: unusable file name, e\.g\. .*happy\/b\\xff\.png: unusable file name \(the name is not valid UTF-8/,
  );
  t.notRegex(stats.stdout, /missing file/);
  // adcorre-predict: named on the command line (through a shell: Node.js passes arguments as UTF-8) and in a folder
  const r = await run(
    '/bin/sh',
    [
      '-c',
      `exec "$0" "$1" --model "$2" --no-detect "$3" "$(printf '%s/happy/b\\377.png' "$3")"`,
      process.execPath,
      bin('adcorre-predict'),
      modelPath,
      data,
    ],
    60_000,
  );
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /b\ufffd\.png: file not found: its name is not valid UTF-8/);
  t.regex(r.stderr, /b\ufffd\.png: no such file, folder or matching files: its name is not valid UTF-8/);
  t.is(r.stdout.trim().split('\n').length, 7, 'the other photos are predicted');
  noStack(t, r.stderr);
});

test('predictBatch with an empty slot or null is a TypeError naming it', async (t) => {
  const fer = await FER.load({ model: modelPath, device: 'cpu' });
  // eslint-disable-next-line no-sparse-arrays
  await t.throwsAsync(() => fer.predictBatch([face, , face]), {
    instanceOf: TypeError,
    message:
      /Expected a file path, a Buffer or \{ data, width, height, channels \} for inputs\[1\] but received an empty slot/,
  });
  await t.throwsAsync(() => fer.predictBatch([null]), {
    instanceOf: TypeError,
    message: /for inputs\[0\] but received null/,
  });
  await t.throwsAsync(() => fer.predict(undefined), {
    instanceOf: TypeError,
    message: /for input but received undefined/,
  });
  t.is((await fer.predictBatch([face])).length, 1);
  await fer.close();
});

// --- 10. a model that outputs NaN ---

test('a model that outputs NaN is an error naming it, never `neutral NaN%`', async (t) => {
  const nan = editedModel(modelBytes(), (m) => {
    const bias = m.graph.initializer.find((i) => i.name === 'classifier.bias');
    const raw = new Float32Array(bias.rawData.length / 4).fill(NaN);
    bias.rawData = new Uint8Array(raw.buffer);
  });
  const file = join(dir, 'nan.onnx');
  writeFileSync(file, nan);
  const fer = await FER.load({ model: file, device: 'cpu' });
  await t.throwsAsync(() => fer.predict(face, { detect: false }), {
    instanceOf: ModelError,
    message: /nan\.onnx: the model output NaN as the probability of 'neutral' .*the model is broken/,
  });
  await fer.close();
  const r = await cli('adcorre-predict', ['--model', file, '--no-detect', face]);
  t.is(r.code, 2, r.stderr);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^adcorre-predict: .*nan\.onnx: the model output NaN/);
  noStack(t, r.stderr);
  const data = tempDir();
  for (const [c, name] of labelNames(7).entries())
    await writeImage(join(data, name, `${c}.png`), { w: 40, h: 40, seed: c, format: 'png' });
  const e = await cli('adcorre-eval', ['--model', file, '--data', data]);
  t.is(e.code, 2, e.stderr);
  t.regex(e.stderr, /nan\.onnx: the model output NaN/);
  noStack(t, e.stderr);
});

// --- Issue #43 (round three): one bad input never costs the others, decoding bounded ---

test('predictBatch: a raw image the resampler cannot take is shrunk, a bad one is its own error', async (t) => {
  const fer = await FER.load({ model: modelPath, device: 'cpu' });
  try {
    const strip = { data: new Uint8Array(100000 * 16 * 3).fill(128), width: 100000, height: 16, channels: 3 };
    const short = { data: new Uint8Array(10), width: 100, height: 16, channels: 3 };
    const results = await fer.predictBatch([face, strip, short, join(dir, 'missing.png')]);
    t.false(results[0] instanceof Error, 'the good photo keeps its result');
    t.is(results[0].faces.length, 1);
    t.false(
      results[1] instanceof Error,
      `a 100000 px wide strip is predicted as a PNG of that size is: ${results[1].message}`,
    );
    t.is(results[1].width, 100000);
    t.true(results[2] instanceof InputError);
    t.regex(results[2].message, /raw pixels: expected 4800 bytes/);
    t.true(results[3] instanceof InputError);
  } finally {
    await fer.close();
  }
});

test('predictBatch decodes a few inputs at a time, in order, whatever their number', async (t) => {
  let read = 0;
  const inputs = new Proxy(
    Array.from({ length: 40 }, () => face),
    {
      get(target, key) {
        if (typeof key === 'string' && /^\d+$/.test(key)) read = Math.max(read, Number(key) + 1);
        return target[key];
      },
    },
  );
  let yielded = 0;
  for await (const { image } of decodedInOrder(inputs, PREDICTION_DEFAULTS.decodeConcurrency)) {
    yielded++;
    t.false(image instanceof Error);
    t.true(read <= yielded + PREDICTION_DEFAULTS.decodeConcurrency, `${read} started for ${yielded} done`);
  }
  t.is(yielded, 40);
  // and predictBatch over many inputs answers each, in order
  const fer = await FER.load({ model: modelPath, device: 'cpu' });
  try {
    const many = await fer.predictBatch(Array.from({ length: 70 }, (_, i) => (i % 7 === 3 ? 'nothing.png' : face)));
    t.is(many.length, 70);
    many.forEach((r, i) => t.is(r instanceof InputError, i % 7 === 3));
  } finally {
    await fer.close();
  }
});

test('adcorre-predict good.png deepdir: good.png is predicted, the deep folder reported', async (t) => {
  const work = tempDir();
  const deep = join(work, 'deep');
  mkdirSync(deep);
  // 2,500 levels made relative to each other: a path that long cannot be named whole
  execFileSync(process.execPath, [
    '-e',
    "const fs=require('fs');process.chdir(process.argv[1]);for(let i=0;i<2500;i++){fs.mkdirSync('d');process.chdir('d')}",
    deep,
  ]);
  const r = await cli('adcorre-predict', ['--model', modelPath, face, deep]);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stdout, /face\.png\t/, 'the good photo is predicted');
  t.regex(
    r.stderr,
    /deep: cannot list the folder: it holds folders nested deeper than a path may be long \(ENAMETOOLONG\)/,
  );
  noStack(t, r.stderr);
});
