// Xception-k as a list of operations over named tensors (Keras Xception,
// Chollet 2017, then the paper's embedding heads). The ONNX exporter, the
// test reference and the training engine all walk this one list.
import { native, type NativeOpTable } from '../native.js';
import { scaled, type XceptionConfig } from './config.js';
import type { Op, Padding, ParamSpec } from './ops.js';

export type { Op, Padding, ParamSpec } from './ops.js';

let constants: NativeOpTable['constants'] | undefined;

/**
 * The ops' constants (inputEps: the per-image standardisation's, bnEps, l2Eps, the pooling window), from the op
 * table (native/engine/op_table.h) through the addon, read when first needed: importing this module loads no
 * addon (inference imports it without one and reads a model file's own constants).
 */
export function opConstants(): NativeOpTable['constants'] {
  constants ??= native().opTable().constants;
  return constants;
}

export interface Architecture {
  config: XceptionConfig;
  ops: Op[];
  params: ParamSpec[];
  /** the images [N, C, S, S] in [0, 1]: the program's input, read by the standardize op */
  image: string;
  /** the network's input: the standardised images */
  input: string;
  /** [N, k*d] concatenated normalised embeddings; [N, C] logits; [N, C] probabilities */
  embeddings: string;
  logits: string;
  probs: string;
}

export function buildArchitecture(config: XceptionConfig): Architecture {
  const ops: Op[] = [];
  const params: ParamSpec[] = [];
  const w = (c: number) => scaled(c, config.width);
  let counter = 0;
  const fresh = (stem: string) => `${stem}_${counter++}`;

  const conv = (
    name: string,
    input: string,
    inC: number,
    outC: number,
    kernel: number,
    stride: 1 | 2,
    padding: Padding,
    depthwise = false,
  ) => {
    const output = fresh(name);
    ops.push({ op: 'conv', name, input, output, inC, outC, kernel, stride, padding, depthwise });
    params.push({
      name: `${name}.weight`,
      shape: [outC, depthwise ? 1 : inC, kernel, kernel],
      init: 'he',
      trainable: true,
    });
    return output;
  };
  const bn = (name: string, input: string, channels: number) => {
    const output = fresh(name);
    ops.push({ op: 'bn', name, input, output, channels });
    params.push(
      { name: `${name}.gamma`, shape: [channels], init: 'one', trainable: true },
      { name: `${name}.beta`, shape: [channels], init: 'zero', trainable: true },
      { name: `${name}.mean`, shape: [channels], init: 'zero', trainable: false },
      { name: `${name}.var`, shape: [channels], init: 'one', trainable: false },
    );
    return output;
  };
  const relu = (input: string) => {
    const output = fresh('relu');
    ops.push({ op: 'relu', input, output });
    return output;
  };
  // Keras SeparableConv2D(no bias) + BatchNormalization
  const sepconvBn = (name: string, input: string, inC: number, outC: number) =>
    bn(
      `${name}.bn`,
      conv(
        `${name}.pointwise`,
        conv(`${name}.depthwise`, input, inC, inC, 3, 1, 'same', true),
        inC,
        outC,
        1,
        1,
        'valid',
      ),
      outC,
    );
  const maxpool = (input: string) => {
    const output = fresh('pool');
    ops.push({ op: 'maxpool', input, output });
    return output;
  };
  const add = (a: string, b: string) => {
    const output = fresh('add');
    ops.push({ op: 'add', inputs: [a, b], output });
    return output;
  };

  // The input pipeline: each image standardised on its own (the exporter and
  // the engine both read this op).
  ops.push({
    op: 'standardize',
    name: 'input.standardize',
    input: 'image',
    output: 'input',
    eps: opConstants().inputEps,
  });
  // Entry flow
  let x = 'input';
  x = relu(bn('entry.bn1', conv('entry.conv1', x, config.channels, w(32), 3, 2, 'valid'), w(32)));
  x = relu(bn('entry.bn2', conv('entry.conv2', x, w(32), w(64), 3, 1, 'valid'), w(64)));
  let c = w(64);
  for (const [i, outC] of [w(128), w(256), w(728)].entries()) {
    const name = `entry.block${i + 1}`;
    const residual = bn(`${name}.shortcut.bn`, conv(`${name}.shortcut`, x, c, outC, 1, 2, 'same'), outC);
    let y = i === 0 ? x : relu(x); // block 1 follows a ReLU already
    y = sepconvBn(`${name}.sep1`, y, c, outC);
    y = sepconvBn(`${name}.sep2`, relu(y), outC, outC);
    x = add(maxpool(y), residual);
    c = outC;
  }
  // Middle flow
  for (let b = 0; b < config.middleBlocks; b++) {
    let y = x;
    for (let s = 1; s <= 3; s++) y = sepconvBn(`middle.block${b + 1}.sep${s}`, relu(y), c, c);
    x = add(y, x);
  }
  // Exit flow
  {
    const outC = w(1024);
    const residual = bn('exit.shortcut.bn', conv('exit.shortcut', x, c, outC, 1, 2, 'same'), outC);
    let y = sepconvBn('exit.sep1', relu(x), c, w(728));
    y = sepconvBn('exit.sep2', relu(y), w(728), outC);
    x = add(maxpool(y), residual);
    x = relu(sepconvBn('exit.sep3', x, outC, w(1536)));
    x = relu(sepconvBn('exit.sep4', x, w(1536), w(2048)));
  }
  const features = fresh('gap');
  ops.push({ op: 'gap', input: x, output: features });
  const F = w(2048);

  // The paper's embedding space: k heads Dense(F -> d) + L2 normalisation.
  const heads: string[] = [];
  for (let j = 0; j < config.k; j++) {
    const name = `head${j}`;
    const dense = fresh(name);
    ops.push({ op: 'dense', name, input: features, output: dense, inF: F, outF: config.d });
    params.push(
      { name: `${name}.weight`, shape: [config.d, F], init: 'glorot', trainable: true },
      { name: `${name}.bias`, shape: [config.d], init: 'zero', trainable: true },
    );
    const normed = fresh(`${name}.l2`);
    ops.push({ op: 'l2norm', input: dense, output: normed });
    heads.push(normed);
  }
  ops.push({ op: 'concat', inputs: heads, output: 'embeddings' });
  ops.push({ op: 'dropout', input: 'embeddings', output: 'embeddings_dropped', rate: 0.5 });
  ops.push({
    op: 'dense',
    name: 'classifier',
    input: 'embeddings_dropped',
    output: 'logits',
    inF: config.k * config.d,
    outF: config.classes,
  });
  params.push(
    { name: 'classifier.weight', shape: [config.classes, config.k * config.d], init: 'glorot', trainable: true },
    { name: 'classifier.bias', shape: [config.classes], init: 'zero', trainable: true },
  );
  ops.push({ op: 'softmax', input: 'logits', output: 'probs' });
  return {
    config,
    ops,
    params,
    image: 'image',
    input: 'input',
    embeddings: 'embeddings',
    logits: 'logits',
    probs: 'probs',
  };
}

/** Output side of a convolution or pooling along one axis (TensorFlow's 'valid' and 'same'): the op table's window rule. */
export function outputSize(n: number, kernel: number, stride: number, padding: Padding): number {
  return native().windowGeometry(n, kernel, stride, padding === 'same').out;
}

/** TensorFlow 'same' padding: [before, after] (the odd pixel goes after), by the op table's window rule. */
export function samePadding(n: number, kernel: number, stride: number): [number, number] {
  const { before, after } = native().windowGeometry(n, kernel, stride, true);
  return [before, after];
}

export function parameterCount(arch: Architecture): number {
  return arch.params.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
}
