// adcorre-eval and adcorre-predict --no-detect see the same pixels and give the same labels, image by
// image (issue #30, point 4): both decode through lib/image.ts, take grey as lib/pixels.ts's luma and
// bring an image to the input size by lib/pixels.ts's resampler. Eval's side runs the loader and the
// batches exactly as adcorre-eval does (evaluationLoader, classifyBatches); predict's side runs
// FER.predictBatch as adcorre-predict does.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { classifyBatches, evaluationLoader } from 'adcorre-native/internal';
import { evaluationSplit } from 'adcorre-native/internal';
import { openDataset } from 'adcorre-native/internal';
import { faceTensor } from 'adcorre-native/internal';
import { DEFAULT_MODEL, FER, openModel, readModel } from 'adcorre-native/internal';
import { decodeInput } from 'adcorre-native/internal';
import { argmaxRow } from 'adcorre-native/internal';
import { labelNames } from 'adcorre-native/internal';
import { tempDir, writeImage } from './helpers/fixtures.js';
import { sharedDir } from './helpers/shared.js';

const haveModel = existsSync(DEFAULT_MODEL);
const withModel = haveModel ? test.serial : test.serial.skip;
const noModel = haveModel ? '' : ` (skipped: ${DEFAULT_MODEL} is absent)`;

/** Eval's label and input tensor for each sample of the split, keyed by file, through adcorre-eval's own path. */
async function evalSide(split) {
  const { bytes, source } = readModel(undefined);
  const { session, metadata } = await openModel(bytes, source, 'cpu');
  const loader = evaluationLoader(split, metadata, 32);
  const per = metadata.input.channels * metadata.input.size ** 2;
  const out = new Map();
  try {
    for await (const { batch, probs } of classifyBatches(session, metadata, loader, source)) {
      for (let i = 0; i < batch.count; i++) {
        out.set(split.samples[batch.indices[i]].source, {
          label: metadata.labels[argmaxRow(probs, i, metadata.labels.length)],
          tensor: batch.images.slice(i * per, (i + 1) * per),
        });
      }
    }
  } finally {
    await loader.close();
    await session.release();
  }
  return { out, input: metadata.input };
}

/** Predict's label for each file, as adcorre-predict --no-detect runs it. */
async function predictSide(files) {
  const fer = await FER.load({ device: 'cpu' });
  try {
    const results = await fer.predictBatch(files, { detect: false });
    return new Map(
      results.map((r, i) => {
        if (r instanceof Error) throw r;
        return [files[i], r.faces[0].label];
      }),
    );
  } finally {
    await fer.close();
  }
}

/** Square images of the kinds a dataset holds: at, under, between 1x and 2x, and over twice the input size. */
async function writeFixtures(root) {
  const kinds = [
    { w: 48, channels: 1, format: 'jpeg' }, // FER-2013's crops: jpeg-js in both
    { w: 48, channels: 3, format: 'jpeg' },
    { w: 48, channels: 3, format: 'png' },
    { w: 40, channels: 1, format: 'png' }, // enlarged
    { w: 72, channels: 3, format: 'jpeg' }, // shrunk by evaluation's resample
    { w: 160, channels: 3, format: 'jpeg' }, // shrunk on decoding
    { w: 200, channels: 1, format: 'png' },
  ];
  for (const [c, label] of labelNames(7).entries())
    for (const [k, kind] of kinds.entries()) {
      const file = join(root, 'val', label, `${k}.${kind.format === 'png' ? 'png' : 'jpg'}`);
      await writeImage(file, { ...kind, h: kind.w, seed: c * 13 + k });
    }
  return root;
}

withModel(`eval and predict --no-detect agree image by image on generated crops${noModel}`, async (t) => {
  const root = await writeFixtures(tempDir());
  const dataset = await openDataset(root, { format: 'folder', classes: 7 });
  const { split } = evaluationSplit(dataset, 'val');
  const { out: evaluated, input } = await evalSide(split);
  const files = split.samples.map((s) => s.source);
  t.is(evaluated.size, files.length);
  const predicted = await predictSide(files);
  for (const file of files) {
    // the input tensors: the same for a grey image at the input size (up to float rounding: the warp scales by
    // 1/255 in another order); else within the loader's roundings to bytes, of the grey and of the resampled
    // pixels (half a grey level each)
    const image = await decodeInput(file);
    const side = Math.max(image.width, image.height);
    const expected = new Float32Array(input.channels * input.size ** 2);
    faceTensor(
      image,
      { cx: image.width / 2, cy: image.height / 2, side, angle: 0 },
      input.size,
      input.channels,
      expected,
      0,
    );
    const { tensor, label } = evaluated.get(file);
    let worst = 0;
    for (let i = 0; i < tensor.length; i++) worst = Math.max(worst, Math.abs(tensor[i] - expected[i]));
    const grey = image.rgb.every((v, i) => i % 3 !== 0 || (v === image.rgb[i + 1] && v === image.rgb[i + 2]));
    const bound = grey && image.width === input.size ? 1e-6 : 1 / 255 + 1e-6;
    t.true(worst <= bound, `${file}: input differs by ${worst * 255} grey levels`);
    t.is(label, predicted.get(file), file);
  }
});

const valRoot = join(sharedDir, 'data', 'fer2013', 'val');
const haveVal = haveModel && existsSync(valRoot);
(haveVal ? test.serial : test.serial.skip)(
  `eval and predict --no-detect agree on a sample of FER-2013's held-out crops${haveVal ? '' : ` (skipped: ${existsSync(valRoot) ? DEFAULT_MODEL : valRoot} is absent)`}`,
  async (t) => {
    const dataset = await openDataset(join(sharedDir, 'data', 'fer2013'), { format: 'folder', classes: 7 });
    const { split: val } = evaluationSplit(dataset, 'val');
    // every 12th crop: about 300 of the 3,589, every class
    const split = { ...val, samples: val.samples.filter((_, i) => i % 12 === 0) };
    const { out: evaluated } = await evalSide(split);
    const files = split.samples.map((s) => s.source);
    const predicted = await predictSide(files);
    const differ = files.filter((f) => evaluated.get(f).label !== predicted.get(f));
    t.deepEqual(differ, [], `${differ.length} of ${files.length} crops labelled differently`);
  },
);
