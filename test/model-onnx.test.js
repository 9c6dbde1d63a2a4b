// One model definition, exported to ONNX and run by ONNX Runtime, equals a
// plain float64 forward pass of the same architecture (batch norm unfolded,
// explicit padding) within 1e-4; metadata round trip; bad model files.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { f16round } from '@petamoriken/float16';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import {
  buildArchitecture,
  exportOnnx,
  initWeights,
  labelNames,
  parameterCount,
  PRESETS,
  readMetadata,
  readOnnxMembers,
  readOnnxWeights,
  validateConfig,
} from 'adcorre-native';
import { startingWeights } from 'adcorre-native/internal';
import { tempDir } from './helpers/fixtures.js';
import { rng } from './helpers/random.js';
import { referenceForward } from './helpers/xception-reference.js';

function randomWeights(arch, seed) {
  const w = initWeights(arch, seed);
  const r = rng(seed);
  // non-trivial batch-norm statistics, so their use is really tested
  for (const [name, v] of w) {
    if (/\.(mean|beta)$/.test(name))
      v.forEach((_, i) => {
        v[i] = r.next() - 0.5;
      });
    else if (/\.(var|gamma)$/.test(name))
      v.forEach((_, i) => {
        v[i] = 0.5 + r.next();
      });
  }
  return w;
}

const maxErr = (a, b) => a.reduce((m, v, j) => Math.max(m, Math.abs(v - b[j])), 0);

// ONNX Runtime on N random images of the configuration's shape; returns the images and the outputs.
async function runOnRandomImages(bytes, config, N, seed) {
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  const S = config.inputSize,
    C = config.channels;
  const r = rng(seed);
  const images = Float32Array.from({ length: N * C * S * S }, () => r.next());
  const out = await session.run({ image: new ort.Tensor('float32', images, [N, C, S, S]) });
  await session.release();
  return { images, out };
}

const configs = [
  { inputSize: 35, channels: 1, width: 0.0625, middleBlocks: 1, k: 2, d: 8, classes: 7 },
  { inputSize: 40, channels: 3, width: 0.1, middleBlocks: 2, k: 3, d: 5, classes: 8 },
  { inputSize: 29, channels: 1, width: 0.05, middleBlocks: 0, k: 1, d: 4, classes: 7 },
  { inputSize: 33, channels: 3, width: 0.05, middleBlocks: 1, k: 2, d: 4, classes: 7 },
  { inputSize: 31, channels: 3, width: 0.05, middleBlocks: 1, k: 2, d: 4, classes: 7, flipAverage: true }, // flip averaging
  { inputSize: 30, channels: 1, width: 0.05, middleBlocks: 1, k: 2, d: 4, classes: 8, shiftAverage: 3 }, // shift averaging
  {
    inputSize: 31,
    channels: 3,
    width: 0.05,
    middleBlocks: 1,
    k: 2,
    d: 4,
    classes: 7,
    flipAverage: true,
    shiftAverage: 1,
  },
];

for (const [i, config] of configs.entries()) {
  test(`ONNX Runtime = float64 reference: ${JSON.stringify(config)}`, async (t) => {
    const arch = buildArchitecture(config);
    const weights = randomWeights(arch, 10 + i);
    const bytes = exportOnnx(config, weights, { labels: labelNames(config.classes) });
    const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
    t.deepEqual(session.inputNames, ['image']);
    t.deepEqual([...session.outputNames].sort(), ['embeddings', 'probs']);
    const N = 3,
      S = config.inputSize,
      C = config.channels;
    const r = rng(i);
    const images = Float32Array.from({ length: N * C * S * S }, () => r.next());
    const out = await session.run({ image: new ort.Tensor('float32', images, [N, C, S, S]) });
    t.deepEqual(out.probs.dims, [N, config.classes]);
    t.deepEqual(out.embeddings.dims, [N, config.k, config.d]);
    const ref = referenceForward(arch, weights, images, N);
    t.true(maxErr(out.probs.data, ref.probs) <= 1e-4, `probs ${maxErr(out.probs.data, ref.probs)}`);
    t.true(
      maxErr(out.embeddings.data, ref.embeddings) <= 1e-4,
      `embeddings ${maxErr(out.embeddings.data, ref.embeddings)}`,
    );
    for (let n = 0; n < N; n++) {
      const p = out.probs.data.subarray(n * config.classes, (n + 1) * config.classes);
      t.true(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-5);
      for (let j = 0; j < config.k; j++) {
        const e = out.embeddings.data.subarray((n * config.k + j) * config.d, (n * config.k + j + 1) * config.d);
        t.true(Math.abs(Math.hypot(...e) - 1) < 1e-5, 'each embedding is L2-normalised');
      }
    }
    await session.release();
  });
}

test("an ensemble averages its members' probabilities (float64 reference per member); embeddings are member 0's", async (t) => {
  const config = configs[6]; // with flip and shift averaging, so they compose with the ensemble
  const arch = buildArchitecture(config);
  const members = [randomWeights(arch, 21), randomWeights(arch, 22), randomWeights(arch, 23)];
  const bytes = exportOnnx(config, members, { labels: labelNames(7) });
  t.is(readMetadata(bytes).members, 3);
  const N = 2;
  const { images, out } = await runOnRandomImages(bytes, config, N, 5);
  const refs = members.map((w) => referenceForward(arch, w, images, N));
  const mean = out.probs.data.map((_, j) => refs.reduce((sum, ref) => sum + ref.probs[j], 0) / members.length);
  t.true(maxErr(out.probs.data, mean) <= 1e-4, `probs ${maxErr(out.probs.data, mean)}`);
  t.true(maxErr(out.probs.data, refs[0].probs) > 1e-3, 'the members really differ');
  t.true(
    maxErr(out.embeddings.data, refs[0].embeddings) <= 1e-4,
    `embeddings ${maxErr(out.embeddings.data, refs[0].embeddings)}`,
  );
  t.throws(() => readOnnxWeights(bytes, 'ensemble.onnx'), {
    message: /ensemble\.onnx is an ensemble of 3 models.*start from one member's checkpoint/,
  });
  const broken = randomWeights(arch, 24);
  broken.delete('classifier.bias');
  t.throws(() => exportOnnx(config, [members[0], broken], { labels: labelNames(7) }), {
    message: /Missing parameter classifier\.bias of ensemble member 1/,
  });
  t.throws(() => exportOnnx(config, [], { labels: labelNames(7) }), {
    instanceOf: RangeError,
    message: /at least one set of weights/,
  });
});

test('readOnnxMembers: a single model or each ensemble member (own architecture, the ensemble views), weights exact or float16-rounded; re-exported, the same graph', async (t) => {
  const config = configs[6];
  const other = { ...config, width: 0.1, middleBlocks: 2, k: 3, d: 6 };
  const a = randomWeights(buildArchitecture(config), 41),
    b = randomWeights(buildArchitecture(other), 42);
  const bytes = exportOnnx(config, [a, { config: other, weights: b }], { labels: labelNames(7) });
  const { meta, members } = readOnnxMembers(bytes, 'pair.onnx');
  t.is(meta.members, 2);
  t.deepEqual(
    members.map((m) => m.config),
    [config, other],
  );
  for (const [m, w] of [
    [members[0], a],
    [members[1], b],
  ]) {
    t.deepEqual([...m.weights.keys()].sort(), [...w.keys()].sort());
    for (const [name, v] of w) t.deepEqual(m.weights.get(name), v, name);
  }
  // float16 storage: the rounded weights come back
  const half = readOnnxMembers(exportOnnx(config, [a, a], { labels: labelNames(7), storage: 'float16' })).members;
  const weight = 'classifier.weight';
  t.deepEqual(half[1].weights.get(weight), Float32Array.from(a.get(weight), f16round));
  // a single model: one member, its own config
  const single = readOnnxMembers(exportOnnx(config, a, { labels: labelNames(7) })).members;
  t.is(single.length, 1);
  t.deepEqual(single[0].config, config);
  // the members exported again make the same model
  const again = exportOnnx(members[0].config, members, { labels: labelNames(7) });
  const [x, y] = [await runOnRandomImages(bytes, config, 2, 8), await runOnRandomImages(again, config, 2, 8)];
  t.deepEqual(y.out.probs.data, x.out.probs.data);
  t.throws(() => readOnnxMembers(Uint8Array.of(1, 2, 3), 'junk.onnx'), { message: /junk\.onnx is not an ONNX model/ });
});

test('an ensemble of different architectures: each member against its own float64 reference; the metadata lists them; bad members are clear errors', async (t) => {
  const config = configs[6]; // flip and shift averaging apply to every member
  const other = { ...config, width: 0.1, middleBlocks: 2, k: 3, d: 6, flipAverage: false }; // its own views are ignored
  const a = randomWeights(buildArchitecture(config), 31),
    b = randomWeights(buildArchitecture(other), 32);
  const bytes = exportOnnx(config, [a, { config: other, weights: b }], { labels: labelNames(7) });
  const meta = readMetadata(bytes);
  t.is(meta.members, 2);
  const arch = ({ flipAverage: _f, shiftAverage: _s, ...rest }) => rest;
  t.deepEqual(meta.memberConfigs, [arch(config), arch(other)]);
  const N = 2;
  const { images, out } = await runOnRandomImages(bytes, config, N, 6);
  const refA = referenceForward(buildArchitecture(config), a, images, N);
  const refB = referenceForward(buildArchitecture({ ...other, flipAverage: true, shiftAverage: 1 }), b, images, N);
  const mean = out.probs.data.map((_, j) => (refA.probs[j] + refB.probs[j]) / 2);
  t.true(maxErr(out.probs.data, mean) <= 1e-4, `probs ${maxErr(out.probs.data, mean)}`);
  t.true(maxErr(out.probs.data, refA.probs) > 1e-3, 'the members really differ');
  t.true(maxErr(out.embeddings.data, refA.embeddings) <= 1e-4, "embeddings are member 0's");
  // members of one architecture write no memberConfigs (as before)
  t.is(
    readMetadata(exportOnnx(config, [a, { config, weights: a }], { labels: labelNames(7) })).memberConfigs,
    undefined,
  );
  t.throws(
    () => exportOnnx(config, [a, { config: { ...other, inputSize: 33 }, weights: b }], { labels: labelNames(7) }),
    {
      instanceOf: RangeError,
      message: /Expected 31 \(the ensemble's\) for ensemble member 1's config\.inputSize but received 33/,
    },
  );
  t.throws(() => exportOnnx(config, [{ config: other, weights: b }, a], { labels: labelNames(7) }), {
    instanceOf: RangeError,
    message: /Expected ensemble member 0 to have the configuration's architecture/,
  });
  t.throws(() => exportOnnx(config, [a, { config: other, weights: a }], { labels: labelNames(7) }), {
    message: /ensemble member 1/,
  });
});

test('float16 storage: ONNX Runtime = float64 reference on the rounded weights; half the file; the rounded weights read back', async (t) => {
  const config = configs[1];
  const arch = buildArchitecture(config);
  const weights = randomWeights(arch, 31);
  const full = exportOnnx(config, weights, { labels: labelNames(8) });
  const half = exportOnnx(config, weights, { labels: labelNames(8), storage: 'float16' });
  t.true(half.length < 0.6 * full.length, `${half.length} vs ${full.length} bytes`);
  // what float16 storage means: every conv/dense weight rounded to the nearest float16, the rest exact
  const rounded = new Map(
    [...weights].map(([name, w]) => [name, name.endsWith('.weight') ? Float32Array.from(w, f16round) : w]),
  );
  t.true(
    [...weights].some(([name, w]) => w.some((v, i) => v !== rounded.get(name)[i])),
    'rounding changes some weights',
  );
  const N = 2;
  const { images, out } = await runOnRandomImages(half, config, N, 8);
  const ref = referenceForward(arch, rounded, images, N);
  t.true(maxErr(out.probs.data, ref.probs) <= 1e-4, `probs ${maxErr(out.probs.data, ref.probs)}`);
  t.true(
    maxErr(out.embeddings.data, ref.embeddings) <= 1e-4,
    `embeddings ${maxErr(out.embeddings.data, ref.embeddings)}`,
  );
  const { weights: back } = readOnnxWeights(half, 'half.onnx');
  for (const [name, w] of rounded) t.deepEqual(back.get(name), w, name);
  t.throws(() => exportOnnx(config, weights, { labels: labelNames(8), storage: 'int8' }), {
    instanceOf: RangeError,
    message: /Expected 'float32' or 'float16' for storage but received "int8"/,
  });
});

test('the paper configuration has about 24.5 M parameters; presets are valid', (t) => {
  const count = parameterCount(buildArchitecture(PRESETS.paper)); // batch-norm statistics included, as Keras counts
  t.true(count > 24.4e6 && count < 24.7e6, String(count));
  for (const preset of Object.values(PRESETS)) t.deepEqual(validateConfig(preset), preset);
});

test('metadata round trip: labels, configuration, input, normalisation, training summary', (t) => {
  const config = configs[0];
  const bytes = exportOnnx(config, initWeights(buildArchitecture(config), 1), {
    labels: labelNames(7),
    training: { dataset: 'fer2013', valAccuracy: 0.5 },
  });
  const meta = readMetadata(bytes);
  t.deepEqual(meta.labels, labelNames(7));
  t.deepEqual(meta.config, config);
  t.deepEqual(meta.input, { name: 'image', layout: 'NCHW', size: 35, channels: 1, range: [0, 1] });
  t.deepEqual(meta.normalization, { type: 'standardize', eps: 1e-3 });
  t.deepEqual(meta.training, { dataset: 'fer2013', valAccuracy: 0.5 });
});

test('bad models and configurations are clear errors', (t) => {
  const blazeface = readFileSync(new URL('../models/blazeface/face_detection_short_range_128.onnx', import.meta.url));
  t.throws(() => readMetadata(blazeface, 'blazeface.onnx'), {
    message: /blazeface\.onnx has no 'adcorre\.config' metadata: it was not exported by adcorre-native/,
  });
  t.throws(() => readMetadata(new Uint8Array([1, 2, 3, 250, 251]), 'junk.onnx'), {
    message: /junk\.onnx is not an ONNX model/,
  });
  t.throws(() => validateConfig({ ...configs[0], inputSize: 20 }), {
    instanceOf: RangeError,
    message: /Expected integer >= 29 for config\.inputSize but received 20/,
  });
  t.throws(() => validateConfig({ ...configs[0], inputBlur: 3 }), {
    instanceOf: RangeError,
    message: /no input blur \(the option is gone: .*\) for config\.inputBlur but received 3/,
  });
  t.deepEqual(validateConfig({ ...configs[0], shiftAverage: 0 }), configs[0], 'no shift: no key');
  t.throws(() => validateConfig({ ...configs[0], shiftAverage: 9 }), {
    instanceOf: RangeError,
    message: /Expected integer in \[0, 8\] \(pixels\) for config\.shiftAverage but received 9/,
  });
  t.throws(() => validateConfig({ ...configs[0], shiftAverage: '2' }), {
    instanceOf: TypeError,
    message: /config\.shiftAverage/,
  });
  t.throws(() => validateConfig({ ...configs[0], channels: 2 }), {
    instanceOf: RangeError,
    message: /config\.channels/,
  });
  t.throws(() => validateConfig({ ...configs[0], depth: 3 }), {
    instanceOf: TypeError,
    message: /Unknown option 'depth'/,
  });
  const arch = buildArchitecture(configs[0]);
  const weights = initWeights(arch, 0);
  t.throws(() => exportOnnx(configs[0], weights, { labels: ['a'] }), {
    instanceOf: RangeError,
    message: /Expected 7 labels/,
  });
  weights.delete('classifier.bias');
  t.throws(() => exportOnnx(configs[0], weights, { labels: labelNames(7) }), {
    message: /Missing parameter classifier\.bias/,
  });
});

test('--init model.onnx: the exact weights come back; another class count keeps a fresh classifier; another architecture is refused', (t) => {
  const config = configs[1];
  const weights = randomWeights(buildArchitecture(config), 7);
  const bytes = exportOnnx(config, weights, { labels: labelNames(8) });
  const { meta, weights: back } = readOnnxWeights(bytes, 'm.onnx');
  t.deepEqual(meta.config, config);
  t.deepEqual([...back.keys()], [...weights.keys()]);
  for (const [name, w] of weights) t.deepEqual(back.get(name), w, name);

  const file = join(tempDir(), 'model.onnx');
  writeFileSync(file, bytes);
  const seven = initWeights(buildArchitecture({ ...config, classes: 7 }), 1);
  const { weights: start, fresh } = startingWeights(file, seven);
  t.deepEqual(fresh, ['classifier.weight', 'classifier.bias']);
  t.deepEqual(start.get('classifier.weight'), seven.get('classifier.weight'));
  t.deepEqual(start.get('head0.weight'), weights.get('head0.weight'));
  t.throws(() => startingWeights(file, initWeights(buildArchitecture({ ...config, width: 0.2 }), 1)), {
    message:
      /does not fit this architecture: parameter entry\.conv2\.weight has \d+ values there and \d+ here \(pass the --arch it was trained with\)/,
  });

  // a file from before the initializers were named (batch norm folded)
  const { onnx } = onnxProto;
  const model = onnx.ModelProto.decode(bytes);
  for (const [i, init] of model.graph.initializer.entries()) init.name = `const_${i}`;
  t.throws(() => readOnnxWeights(onnx.ModelProto.encode(model).finish(), 'old.onnx'), {
    message: /old\.onnx has no initializer 'entry\.conv1\.weight'.*start from its training checkpoint/,
  });
});

test('a model exported before the input blur was removed (inputBlur in its metadata config) still reads', async (t) => {
  // as 0.1.0's default model: the blur sat in the graph and its sigma in the configuration
  const config = configs[0];
  const model = onnxProto.onnx.ModelProto.decode(
    exportOnnx(config, randomWeights(buildArchitecture(config), 5), { labels: labelNames(7) }),
  );
  const entry = model.metadataProps.find((p) => p.key === 'adcorre.config');
  entry.value = JSON.stringify({ ...JSON.parse(entry.value), inputBlur: 3 });
  const bytes = onnxProto.onnx.ModelProto.encode(model).finish();
  const meta = readMetadata(bytes, 'legacy.onnx');
  t.deepEqual(meta.config, config);
  t.is(readOnnxWeights(bytes, 'legacy.onnx').meta.config.inputSize, config.inputSize);
});
