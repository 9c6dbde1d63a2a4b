// Bad input tried on the CLIs and the API as a careless or unlucky user
// would. Each test reproduces one reported failure and checks the fix:
// fail fast with an error naming the flag (usage errors exit 2), skip and
// count bad data, never hang, never exhaust memory, never a stack trace.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import onnxProto from 'onnx-proto';
import sharp from 'sharp';
import { FER, NoModelError, openDataset, PRESETS } from 'adcorre-native';
import { ensureDir, OutputFolderError } from 'adcorre-native/internal';
import { DEFAULT_MODEL, MIN_INPUT_SIDE } from 'adcorre-native/internal';
import { decodeInput } from 'adcorre-native/internal';
import { checkBatchMemory, Trainer } from 'adcorre-native/internal';
import { OptionError } from 'adcorre-native/internal';
import { bin, cli, noStack } from './helpers/cli.js';
import { fer2013Csv, ferPixels, tempDir, writeImage, writeImageFolder } from './helpers/fixtures.js';
import { editedModel, tiny, untrainedModel } from './helpers/models.js';

const { onnx } = onnxProto;

const dir = tempDir('adcorre-hardening-');
const config = { ...tiny, inputSize: 48 };
const modelPath = join(dir, 'tiny.onnx');
writeFileSync(modelPath, untrainedModel(config));

// 3 training and 1 validation image per class (21 + 7)
const data = await writeImageFolder(join(dir, 'folder'), [
  ['train', 3],
  ['val', 1],
]);
const face = join(dir, 'face.png');
await writeImage(face, { seed: 9, format: 'png' });
const base = { data, arch: tiny, batch: 8, epochs: 1, seed: 3, workers: 0 };

// --- 1. output folders on virtual file systems fail fast (Node 20's recursive mkdirSync hangs there) ---

const procIsProc = (() => {
  try {
    return Number(statfsSync('/proc').type) === 0x9fa0;
  } catch {
    return false;
  }
})();

(procIsProc ? test : test.skip)('1. ensureDir refuses /proc, also behind a symbolic link, at once', (t) => {
  const start = Date.now();
  t.throws(() => ensureDir('/proc/x', 'out'), {
    instanceOf: OutputFolderError,
    message: /Expected a folder that can hold files for out but received \/proc\/x: \/proc is a virtual file system/,
  });
  t.throws(() => ensureDir('/sys/kernel/adcorre/run', '--out'), { message: /\/sys is a virtual file system/ });
  // a link into /proc: found by the file system's type (statfs), not the path; mkdirSync(recursive) hangs on this one too
  const link = join(tempDir(), 'proc-link');
  symlinkSync('/proc', link);
  t.throws(() => ensureDir(join(link, 'run', 'deeper'), 'out'), {
    message: /proc-link is on a virtual file system \(proc\), not storage/,
  });
  t.true(Date.now() - start < 2000);
});

test('ensureDir creates missing levels and names a file in the way', (t) => {
  const root = tempDir();
  const deep = join(root, 'a', 'b', 'c');
  t.is(ensureDir(deep), deep);
  t.true(existsSync(deep));
  t.is(ensureDir(deep), deep, 'an existing folder is fine');
  writeFileSync(join(root, 'file'), 'x');
  t.throws(() => ensureDir(join(root, 'file', 'run'), '--annotate'), {
    message: /for --annotate but received .*file\/run: .*file is a file, not a folder/,
  });
  t.throws(() => ensureDir(join(root, 'file'), 'out'), { message: /: it is a file$/ });
});

(procIsProc ? test : test.skip)(
  '1. adcorre-train --out /proc/x and adcorre-predict --annotate /proc/x exit 2 at once',
  async (t) => {
    const train = await cli(
      'adcorre-train',
      ['--data', data, '--arch', 'mini', '--epochs', '2', '--batch', '16', '--out', '/proc/x'],
      20_000,
    );
    t.is(train.code, 2, train.stderr);
    t.regex(train.stderr, /for --out but received \/proc\/x: \/proc is a virtual file system/);
    const link = join(tempDir(), 'proc-link');
    symlinkSync('/proc', link);
    const predict = await cli('adcorre-predict', ['--model', modelPath, '--annotate', join(link, 'x'), face], 20_000);
    t.is(predict.code, 2, predict.stderr);
    t.regex(predict.stderr, /for --annotate but received .*proc-link\/x: .*virtual file system \(proc\)/);
    const exported = await cli('adcorre-export', [join(dir, 'none.ckpt'), '-o', '/proc/x/model.onnx'], 20_000);
    t.is(exported.code, 2, exported.stderr);
    t.regex(exported.stderr, /for --output but received \/proc\/x/);
    const evaluated = await cli(
      'adcorre-eval',
      ['--model', modelPath, '--data', data, '--confusion', '/proc/x/c.png'],
      20_000,
    );
    t.is(evaluated.code, 2, evaluated.stderr);
    t.regex(evaluated.stderr, /for --confusion but received \/proc\/x/);
  },
);

// --- 2. a batch larger than the dataset, or than memory allows, is refused up front with the sizes ---

test('a batch too large for memory is refused with the sizes, without allocating it', (t) => {
  const error = t.throws(() => checkBatchMemory(PRESETS.mini, 100_000, 24 * 2 ** 30), { instanceOf: OptionError });
  t.is(error.option, 'batch');
  t.regex(
    error.message,
    /Expected a batch size that fits in memory \(at most \d+ images of 48x48x1 for this model here\) for batch but received 100000: batches of 100000 need about \d+\.\d GiB \(\d\.\d MiB per image/,
  );
  t.notThrows(() => checkBatchMemory(PRESETS.mini, 64, 24 * 2 ** 30));
  t.throws(() => checkBatchMemory(PRESETS.mini, 64, 2 ** 28), { message: /at most 0 images|at most \d+ images/ });
  // the Trainer checks against this machine before reading any data
  t.throws(() => new Trainer({ ...base, arch: 'mini', batch: 100_000_000, out: tempDir(), device: 'cpu' }), {
    instanceOf: OptionError,
    message: /fits in memory .* for batch but received 100000000/,
  });
});

test('adcorre-train --batch 100000 and a batch larger than the dataset exit 2 with the sizes', async (t) => {
  const huge = await cli(
    'adcorre-train',
    [
      '--data',
      data,
      '--arch',
      'mini',
      '--epochs',
      '2',
      '--batch',
      '100000',
      '--device',
      'cpu',
      '--out',
      join(tempDir(), 'run'),
    ],
    20_000,
  );
  t.is(huge.code, 2, huge.stderr);
  t.regex(
    huge.stderr,
    /for --batch but received 100000: batches of 100000 need about [\d.]+ GiB .* this machine allows/,
  );
  const out = join(tempDir(), 'run');
  const larger = await cli(
    'adcorre-train',
    ['--data', data, '--arch', 'mini', '--epochs', '2', '--batch', '50', '--out', out],
    30_000,
  );
  t.is(larger.code, 2, larger.stderr);
  t.regex(larger.stderr, /Expected at most the number of training images \(21 in .*\) for --batch but received 50/);
  t.false(existsSync(join(out, 'last.ckpt')));
});

// --- 3. every numeric option's range, with messages naming the option ---

test('adcorre-train --lr -1 is refused (exit 2) and writes no model', async (t) => {
  const out = join(tempDir(), 'run');
  const r = await cli('adcorre-train', [
    '--data',
    data,
    '--arch',
    'mini',
    '--epochs',
    '2',
    '--batch',
    '16',
    '--out',
    out,
    '--lr',
    '-1',
  ]);
  t.is(r.code, 2);
  t.regex(r.stderr, /^adcorre-train: Expected positive number \(at most 10\) for --lr but received -1\n$/);
  t.false(existsSync(join(out, 'model.onnx')));
  // the Trainer's own checks are tested one by one below; here, that the CLI reports them under their flags
  const cases = [
    ['--weight-decay', '-0.1', /number in \[0, 1\) for --weight-decay but received -0.1/],
    ['--warmup', '5', /number of epochs in \[0, 2\] \(--epochs\) for --warmup but received 5/],
    ['--lambda-ce', '-50', /non-negative number \(a loss weight\) for --lambda-ce but received -50/],
    ['--label-smoothing', '1', /number in \[0, 1\) for --label-smoothing but received 1/],
    ['--random-erasing', '1.5', /probability in \[0, 1\] for --random-erasing but received 1.5/],
    ['--low-res', '-0.5', /probability in \[0, 1\] for --low-res but received -0.5/],
    ['--blur', '2', /probability in \[0, 1\] for --blur but received 2/],
    ['--jpeg', '-1', /probability in \[0, 1\] for --jpeg but received -1/],
    ['--w-md', 'NaN', /option '--w-md <w>' argument 'NaN' is invalid/],
    ['--epochs', '0', /option '--epochs <n>' argument '0' is invalid\. Expected a positive integer/],
  ];
  const runs = await Promise.all(
    cases.map(([flag, value]) =>
      cli('adcorre-train', ['--data', data, '--arch', 'mini', '--epochs', '2', '--out', out, flag, value]),
    ),
  );
  for (const [i, [flag, value, message]] of cases.entries()) {
    t.is(runs[i].code, 2, `${flag} ${value}: ${runs[i].stderr}`);
    t.regex(runs[i].stderr, message, `${flag} ${value}`);
  }
});

test('the Trainer API checks every numeric option and names it', (t) => {
  const out = tempDir();
  for (const [option, value, expected] of [
    ['lr', -1, 'positive number'],
    ['lr', Number.NaN, 'positive number'],
    ['momentum', 1.5, 'number in [0, 1)'],
    ['bnMomentum', -0.1, 'number in [0, 1)'],
    ['weightDecay', 2, 'number in [0, 1)'],
    ['warmup', -1, 'number of epochs'],
    ['decay', -1, 'non-negative number'],
    ['stepGamma', 0, 'number in (0, 1]'],
    ['stepEvery', 0, 'positive number of epochs'],
    ['lambdaCE', -1, 'loss weight'],
    ['wED', -2, 'loss weight'],
    ['valFraction', 1, 'number in (0, 1)'],
    ['history', 0, 'positive integer'],
    ['workers', -1, 'integer in [0, 256]'],
    ['seed', 1.5, 'non-negative integer'],
  ]) {
    const error = t.throws(() => new Trainer({ ...base, out, [option]: value }), { instanceOf: RangeError });
    t.is(error.option, option);
    t.true(
      error.message.startsWith('Expected ') &&
        error.message.includes(expected) &&
        error.message.includes(` for ${option} but received ${value}`),
      error.message,
    );
  }
  t.throws(() => new Trainer({ ...base, out, lambdaCE: 0, adcorre: false }), {
    message: /every term of the loss is off/,
  });
  t.throws(() => new Trainer({ ...base, out, schedule: 'linear' }), {
    message: /one of 'decay', 'cosine', 'step', 'plateau' for schedule/,
  });
});

// --- 4. a model whose metadata does not match its graph is refused by FER.load ---

test('FER.load refuses a graph whose input or shapes contradict the metadata; the CLI exits 2', async (t) => {
  const renamed = editedModel(untrainedModel(config), (m) => {
    m.graph.input[0].name = 'input:0';
    for (const n of m.graph.node) n.input = n.input.map((i) => (i === 'image' ? 'input:0' : i));
  });
  await t.throwsAsync(() => FER.load({ model: renamed, device: 'cpu' }), {
    message:
      /model buffer: the model's graph does not match its metadata: it has no input 'image' \(its inputs: 'input:0'\)/,
  });
  // metadata saying 48 px on a 96 px graph
  const meta48 = onnx.ModelProto.decode(untrainedModel(config)).metadataProps;
  const lying = editedModel(untrainedModel({ ...config, inputSize: 96 }), (m) => {
    m.metadataProps = meta48;
  });
  const file = join(dir, 'lying.onnx');
  writeFileSync(file, lying);
  await t.throwsAsync(() => FER.load({ model: file, device: 'cpu' }), {
    message:
      /lying\.onnx: the model's graph does not match its metadata: input 'image' has shape \[N, 1, 96, 96\] but the metadata \(48x48x1, .*\) needs \[N, 1, 48, 48\]/,
  });
  const wrongClasses = editedModel(untrainedModel(config), (m) => {
    m.graph.output[0].type.tensorType.shape.dim[1].dimValue = 8;
  });
  await t.throwsAsync(() => FER.load({ model: wrongClasses, device: 'cpu' }), {
    message: /output 'probs' has shape \[N, 8\]/,
  });
  for (const bad of [file, join(dir, 'renamed.onnx')]) {
    if (bad !== file) writeFileSync(bad, renamed);
    const r = await cli('adcorre-predict', ['--model', bad, face]);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, /^adcorre-predict: .*graph does not match its metadata/);
    noStack(t, r.stderr);
    const e = await cli('adcorre-eval', ['--model', bad, '--data', data]);
    t.is(e.code, 2, e.stderr);
    noStack(t, e.stderr);
  }
});

// --- 5 and 7. the same skip counts from every tool; an unterminated quote costs its row only ---

function badCsv() {
  const good = Array.from({ length: 20 }, (_, i) => [i % 7, ferPixels(i), 'PublicTest']);
  return (
    fer2013Csv(good.slice(0, 10)) +
    `3,${ferPixels(30).slice(1).join(' ')},PublicTest\n` + // 2303 pixels
    `3,${ferPixels(31).slice(1).join(' ')},PublicTest\n` +
    `9,${ferPixels(32).join(' ')},PublicTest\n` + // unknown codes
    `7,${ferPixels(33).join(' ')},PublicTest\n` +
    `-1,${ferPixels(34).join(' ')},PublicTest\n` +
    `2,${ferPixels(35).join(' ')},Elsewhere\n` + // unknown usage
    `2,${ferPixels(36).join(' ')}\n` + // a field missing
    `2,${ferPixels(37).join(' ')},PublicTest,extra\n` + // a field too many
    `4,"${ferPixels(38).join(' ')},PublicTest\n` + // an unterminated quote
    fer2013Csv(good.slice(10)).replace(/^emotion,pixels,Usage\n/, '')
  );
}

test('adcorre-eval reports the skipped rows, the same counts as adcorre-data stats', async (t) => {
  const csv = join(tempDir(), 'fer2013.csv');
  writeFileSync(csv, badCsv());
  const stats = await cli('adcorre-data', ['stats', csv, '--json']);
  t.is(stats.code, 0, stats.stderr);
  const statsReport = JSON.parse(stats.stdout).report;
  t.deepEqual(statsReport.skipped, { 'malformed row': 6, 'unknown label': 3 });
  const json = await cli('adcorre-eval', ['--model', modelPath, '--data', csv, '--json']);
  t.is(json.code, 0, json.stderr);
  const result = JSON.parse(json.stdout);
  t.is(result.samples, 20);
  t.deepEqual(result.skipped.skipped, statsReport.skipped);
  const text = await cli('adcorre-eval', ['--model', modelPath, '--data', csv]);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /\(20 samples\)/);
  t.regex(text.stdout, /skipped 6 \(malformed row\)/);
  t.regex(text.stdout, /skipped 3 \(unknown label\)/);
});

test('the trainer reports what reading the dataset skipped', async (t) => {
  const csv = join(tempDir(), 'fer2013.csv');
  writeFileSync(csv, badCsv().replace(/PublicTest/g, 'Training'));
  const events = [];
  const summary = await new Trainer({
    ...base,
    data: csv,
    arch: { ...tiny, inputSize: 48 },
    maxSteps: 1,
    out: tempDir(),
  }).train((e) => e.phase === 'start' && events.push(e.start));
  t.deepEqual(events[0].skipped.skipped, { 'malformed row': 6, 'unknown label': 3 });
  t.deepEqual(summary.skipped.skipped, { 'malformed row': 6, 'unknown label': 3 });
});

test('an unterminated quote costs that row only, reported at its line', async (t) => {
  const csv = join(tempDir(), 'fer2013.csv');
  const rows = (from, n) =>
    Array.from({ length: n }, (_, i) => `${(from + i) % 7},${ferPixels(from + i).join(' ')},Training`);
  writeFileSync(
    csv,
    ['emotion,pixels,Usage', ...rows(0, 1), `4,"${ferPixels(1).join(' ')},Training`, ...rows(2, 11)].join('\n') + '\n',
  );
  const ds = await openDataset(csv);
  t.is(ds.splits.get('train').samples.length, 12, 'the 11 good rows after the quote are kept');
  const { skipped, examples } = ds.report.summary();
  t.deepEqual(skipped, { 'malformed row': 1 });
  t.regex(examples['malformed row'][0], /fer2013\.csv:3: malformed row \(.*[Qq]uote/);
  t.is(ds.splits.get('train').samples[1].where, `${csv}:4`);
  // the same in a manifest; strict mode stops at that line
  const manifest = join(tempDir(), 'list.csv');
  await writeImage(join(manifest, '..', 'a.png'), { format: 'png' });
  writeFileSync(manifest, 'path,label\na.png,happy\n"a.png,sad\na.png,neutral\n');
  const m = await openDataset(manifest);
  t.is(m.splits.get('all').samples.length, 2);
  t.regex(m.report.summary().examples['malformed row'][0], /list\.csv:3: malformed row/);
  await t.throwsAsync(() => openDataset(manifest, { strict: true }), { message: /list\.csv:3: malformed row/ });
});

// --- 6. a looping or dangling symbolic link is skipped and counted ---

test('link loops and dangling links are skipped and counted, not fatal', async (t) => {
  const root = tempDir();
  await writeImage(join(root, 'train', 'happy', 'a.png'), { format: 'png' });
  await writeImage(join(root, 'train', 'sad', 'b.png'), { seed: 2, format: 'png' });
  symlinkSync('loop.jpg', join(root, 'train', 'happy', 'loop.jpg')); // itself: ELOOP
  symlinkSync(join(root, 'nowhere.jpg'), join(root, 'train', 'sad', 'gone.jpg')); // dangling
  symlinkSync('angry', join(root, 'train', 'angry')); // a class folder that is a loop
  const ds = await openDataset(root);
  t.is(ds.splits.get('train').samples.length, 2);
  const { skipped, examples } = ds.report.summary();
  t.is(skipped['broken link'], 3);
  t.true(examples['broken link'].some((e) => /loop\.jpg: broken link \(a loop of symbolic links \(ELOOP\)\)/.test(e)));
  t.true(
    examples['broken link'].some((e) =>
      /gone\.jpg: broken link \(dangling: its target .*nowhere\.jpg does not exist\)/.test(e),
    ),
  );
  const stats = await cli('adcorre-data', ['stats', root]);
  t.is(stats.code, 0, stats.stderr);
  t.regex(stats.stdout, /skipped 3: broken link/);
  await t.throwsAsync(() => openDataset(root, { strict: true }), { message: /broken link/ });
});

// --- 8. images too small to hold a readable face are refused ---

test('a 1x1 image is refused with the minimum and why; 16 px is accepted', async (t) => {
  const fer = await FER.load({ model: modelPath, device: 'cpu' });
  t.teardown(() => fer.close());
  const px = (w, h) => ({ data: new Uint8Array(w * h * 3).fill(128), width: w, height: h, channels: 3 });
  await t.throwsAsync(() => fer.predict(px(1, 1)), {
    message: new RegExp(
      `image is 1x1 px; at least ${MIN_INPUT_SIDE} px on each side is needed \\(a smaller image holds too little of a face`,
    ),
  });
  await t.throwsAsync(() => fer.predict(px(400, MIN_INPUT_SIDE - 1), { detect: false }), { message: /400x15 px/ });
  const ok = await fer.predict(px(MIN_INPUT_SIDE, MIN_INPUT_SIDE));
  t.is(ok.faces.length, 1);
  const one = join(dir, 'one.png');
  await sharp({ create: { width: 1, height: 1, channels: 3, background: '#808080' } })
    .png()
    .toFile(one);
  const r = await cli('adcorre-predict', ['--model', modelPath, one, face]);
  t.is(r.code, 1);
  t.regex(r.stderr, /one\.png: image is 1x1 px/);
  t.notRegex(r.stdout, /one\.png/);
  t.regex(r.stdout, /face\.png\twhole image/);
});

// --- 9. the smaller ones ---

test("predict after close() gives the package's message; close() twice is fine", async (t) => {
  const fer = await FER.load({ model: modelPath, device: 'cpu' });
  await fer.close();
  await t.notThrowsAsync(() => fer.close());
  await t.throwsAsync(() => fer.predict(face), { message: /This FER instance is closed \(close\(\) was called\)/ });
  await t.throwsAsync(() => fer.predictBatch([face]), { message: /closed/ });
});

test('--arch with bad JSON names the file', async (t) => {
  const bad = join(tempDir(), 'arch.json');
  writeFileSync(bad, '{ "inputSize": 48, ');
  t.throws(() => new Trainer({ ...base, arch: bad, out: tempDir() }), {
    message: new RegExp(`The configuration file ${bad} given as arch is not valid JSON`),
  });
  const r = await cli('adcorre-train', ['--data', data, '--arch', bad, '--out', join(tempDir(), 'run')]);
  t.is(r.code, 2);
  t.regex(r.stderr, /arch\.json given as arch is not valid JSON/);
});

test('adcorre-eval usage errors exit 2 and name the flag', async (t) => {
  for (const [args, message] of [
    [['--batch', '0'], /option '--batch <n>' argument '0' is invalid\. Expected a positive integer/],
    [['--batch', 'many'], /option '--batch <n>' argument 'many' is invalid/],
    [['--batch', '1e12'], /option '--batch <n>' argument '1e12' is invalid/],
    [['--device', 'tpu'], /option '--device <device>' argument 'tpu' is invalid/],
    [['--model', join(dir, 'absent.onnx')], /Model file not found: .*absent\.onnx/],
  ]) {
    const r = await cli('adcorre-eval', ['--model', modelPath, '--data', data, ...args]);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, message);
  }
  const missing = await cli('adcorre-eval', ['--model', modelPath, '--data', join(dir, 'no-such-data')]);
  t.is(missing.code, 1, 'a dataset that cannot be read is not a usage error');
  t.regex(missing.stderr, /Dataset path not found/);
});

(existsSync('/dev/nvidia0') ? test.skip : test)(
  "9. --device cuda without a GPU: only the package's message, no line from onnxruntime",
  async (t) => {
    const r = await cli('adcorre-predict', ['--model', modelPath, '--device', 'cuda', face]);
    t.is(r.code, 2);
    t.regex(
      r.stderr,
      /^adcorre-predict: The cuda execution provider cannot run here: .* Use --device cpu or auto\.\n$/,
    );
    t.notRegex(r.stderr, /onnxruntime:/);
    t.false(r.stderr.includes('\u001b['), 'no terminal colour codes');
  },
);

test("image errors keep the decoder's whole message (the cause may be on a later line)", async (t) => {
  // libvips reports this truncated JPEG over five lines: 'corrupt header: premature end' first, 'Bogus marker length' later
  const jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#888888' } })
    .jpeg()
    .toBuffer();
  const error = await decodeInput(jpeg.subarray(0, jpeg.length / 2), 'half.jpg').catch((e) => e);
  t.regex(
    error.message,
    /^half\.jpg: cannot decode image \(.*premature end of JPEG image; VipsJpeg: Bogus marker length.*\)$/,
    'the later line kept',
  );
  t.false(error.message.includes('\n'));
  const parts = error.message.slice(error.message.indexOf('(') + 1, -1).split('; ');
  t.is(new Set(parts).size, parts.length, 'repeated lines once');
});

test("after a mid-epoch resume the epoch's training loss covers all its steps", async (t) => {
  const straight = tempDir('adcorre-run-');
  await new Trainer({ ...base, epochs: 2, out: straight }).train();
  const resumed = tempDir('adcorre-run-');
  await new Trainer({ ...base, epochs: 2, out: resumed, maxSteps: 3 }).train(); // stops inside epoch 2 (2 steps an epoch)
  await new Trainer({ ...base, epochs: 2, out: resumed, resume: true }).train();
  const train = (d) =>
    readFileSync(join(d, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const { samplesPerSecond, ...rest } = JSON.parse(l).train;
        t.true(samplesPerSecond > 0);
        return rest;
      });
  t.deepEqual(train(resumed), train(straight));
});

// --- issue #12: adcorre-eval uses the bundled default model without --model ---

(existsSync(DEFAULT_MODEL) ? test : test.skip)(
  'adcorre-eval without --model evaluates the default model and says so',
  async (t) => {
    const text = await cli('adcorre-eval', ['--data', data]);
    t.is(text.code, 0, text.stderr);
    t.regex(text.stderr, /no --model given: evaluating the default model .*models\/adcorre-fer2013\.onnx/);
    t.regex(text.stdout, /adcorre-fer2013\.onnx \(the default model\) on .* \(val, cpu\)\naccuracy [\d.]+%/);
    const json = await cli('adcorre-eval', ['--data', data, '--json']);
    t.is(json.code, 0, json.stderr);
    const result = JSON.parse(json.stdout); // exactly one JSON document
    t.is(result.model, DEFAULT_MODEL);
    t.true(result.defaultModel);
    t.is(result.samples, 7);
  },
);

test('the NoModelError text says the default model ships with the package', (t) => {
  const { message } = new NoModelError('/x/models/adcorre-fer2013.onnx');
  t.notRegex(message, /later release/);
  t.regex(
    message,
    /No trained model is installed \(looked for \/x\/models\/adcorre-fer2013\.onnx\)\..* reinstall the package, which ships the trained default model/,
  );
});

// --- more of the same kind, found while fixing the above ---

test('FER predict options are checked and named; a folder as the model is refused', async (t) => {
  const fer = await FER.load({ model: modelPath, device: 'cpu' });
  t.teardown(() => fer.close());
  for (const [options, message] of [
    [{ top: 0 }, /Expected positive integer for options\.top but received 0/],
    [{ threshold: 1.5 }, /Expected number in \(0, 1\) for options\.threshold but received 1\.5/],
    [{ batch: 0 }, /Expected integer in \[1, 4096\] for options\.batch but received 0/],
    [{ margin: Number.NaN }, /for options\.margin but received NaN/],
    [{ detect: 'yes' }, /Expected true, false or 'auto' for options\.detect/],
  ])
    await t.throwsAsync(() => fer.predictBatch([face], options), { message }, JSON.stringify(options));
  await t.throwsAsync(() => fer.predict(face, { top: 0 }), { message: /options\.top/ });
  await t.throwsAsync(() => FER.load({ model: dir, device: 'cpu' }), {
    message: /Expected an ONNX model file for model but received a folder/,
  });
  const r = await cli('adcorre-eval', ['--model', dir, '--data', data]);
  t.is(r.code, 2);
  t.regex(r.stderr, /for --model but received a folder/);
});

test('adcorre-eval --split that does not exist, and the removed --input-blur: exit 2', async (t) => {
  const split = await cli('adcorre-eval', ['--model', modelPath, '--data', data, '--split', 'test']);
  t.is(split.code, 2, split.stderr);
  t.regex(split.stderr, /Expected one of the dataset's splits \(train, val\) for --split but received 'test'/);
  for (const [tool, args] of [
    ['adcorre-export', [modelPath, '-o', join(tempDir(), 'm.onnx')]],
    ['adcorre-train', ['--data', data, '--out', tempDir()]],
  ]) {
    const r = await cli(tool, [...args, '--input-blur', '3']);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, /unknown option '--input-blur'/);
  }
});

test('--resume with another batch size or seed than the run is refused, naming it', async (t) => {
  const out = tempDir('adcorre-run-');
  await new Trainer({ ...base, epochs: 2, out, maxSteps: 1 }).train();
  await t.throwsAsync(() => new Trainer({ ...base, epochs: 2, out, batch: 4, resume: true }).train(), {
    instanceOf: OptionError,
    message: /Expected the run's batch size, 8, to resume .* for batch but received 4/,
  });
  await t.throwsAsync(() => new Trainer({ ...base, epochs: 2, out, seed: 4, resume: true }).train(), {
    message: /the run's seed, 3, .* for seed but received 4/,
  });
  await t.throwsAsync(() => new Trainer({ ...base, arch: { ...tiny, k: 3 }, epochs: 2, out, resume: true }).train(), {
    message: /Expected the run's configuration, .* for arch but received/,
  });
  const arch = join(tempDir(), 'tiny.json');
  writeFileSync(arch, JSON.stringify(tiny));
  const r = await cli('adcorre-train', [
    '--data',
    data,
    '--arch',
    arch,
    '--seed',
    '3',
    '--workers',
    '0',
    '--out',
    out,
    '--resume',
    '--batch',
    '16',
  ]);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /Expected the run's batch size, 8, .* for --batch but received 16/);
});

test('a reader that goes away (stdout closed: `| head -1`) does not crash a command: exit 0, no EPIPE trace', async (t) => {
  for (const name of ['adcorre-train', 'adcorre-eval', 'adcorre-export', 'adcorre-predict', 'adcorre-data']) {
    const child = spawn(process.execPath, [bin(name), '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // closed before the command writes: its first write meets EPIPE
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((done) => child.on('close', done));
    t.is(code, 0, `${name}: ${stderr}`);
    t.notRegex(stderr, /EPIPE|Unhandled/, name);
  }
});
