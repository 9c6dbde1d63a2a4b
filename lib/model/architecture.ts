// Xception-k as a list of operations over named tensors (Keras Xception,
// Chollet 2017, then the paper's embedding heads). The ONNX exporter, the
// test reference and the training engine all walk this one list.
import { native } from '../native.js';
import { scaled, type XceptionConfig } from './config.js';
import { type Op, OP_TABLE, opParams, type Padding, type ParamSpec } from './ops.js';

export type { Op, Padding, ParamSpec } from './ops.js';

/**
 * The ops' constants (inputEps: the per-image standardisation's, bnEps, l2Eps, the pooling window), from the op
 * table (native/engine/op_table.h) as ops.generated.ts has it: no addon needed.
 */
export function opConstants(): typeof OP_TABLE.constants {
  return OP_TABLE.constants;
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
  // an op and its parameter tensors (the op table's list: names, order, shapes, initialisation)
  const emit = (op: Op) => {
    ops.push(op);
    params.push(...opParams(op));
    return op.output;
  };

  const conv = (
    name: string,
    input: string,
    inC: number,
    outC: number,
    kernel: number,
    stride: 1 | 2,
    padding: Padding,
    depthwise = false,
  ) => emit({ op: 'conv', name, input, output: fresh(name), inC, outC, kernel, stride, padding, depthwise });
  const bn = (name: string, input: string, channels: number) =>
    emit({ op: 'bn', name, input, output: fresh(name), channels });
  const relu = (input: string) => emit({ op: 'relu', input, output: fresh('relu') });
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
  const maxpool = (input: string) => emit({ op: 'maxpool', input, output: fresh('pool') });
  const add = (a: string, b: string) => emit({ op: 'add', inputs: [a, b], output: fresh('add') });

  // The input pipeline: each image standardised on its own (the exporter and
  // the engine both read this op).
  emit({ op: 'standardize', name: 'input.standardize', input: 'image', output: 'input', eps: opConstants().inputEps });
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
  const features = emit({ op: 'gap', input: x, output: fresh('gap') });
  const F = w(2048);

  // The paper's embedding space: k heads Dense(F -> d) + L2 normalisation.
  const heads: string[] = [];
  for (let j = 0; j < config.k; j++) {
    const name = `head${j}`;
    const dense = emit({ op: 'dense', name, input: features, output: fresh(name), inF: F, outF: config.d });
    heads.push(emit({ op: 'l2norm', input: dense, output: fresh(`${name}.l2`) }));
  }
  emit({ op: 'concat', inputs: heads, output: 'embeddings' });
  emit({ op: 'dropout', input: 'embeddings', output: 'embeddings_dropped', rate: 0.5 });
  emit({
    op: 'dense',
    name: 'classifier',
    input: 'embeddings_dropped',
    output: 'logits',
    inF: config.k * config.d,
    outF: config.classes,
  });
  emit({ op: 'softmax', input: 'logits', output: 'probs' });
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
