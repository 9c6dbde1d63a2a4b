// The Xception-k model as ONNX (opset 17): evaluation-mode graph with every
// parameter as a named initializer, depthwise convolutions as grouped Conv,
// the input normalisation inside the graph (input `image`: float32 NCHW in
// [0, 1]), outputs `probs` [N, C] and `embeddings` [N, k, d], and everything
// needed to use the file in its metadata (labels, configuration, input,
// normalisation, training summary). Protobuf via onnx-proto.
import onnxProto from 'onnx-proto';
import { type Architecture, buildArchitecture, type Op } from './architecture.js';
import { architectureOf, priorWeights, sameArchitecture, validateConfig, type XceptionConfig } from './config.js';
import { architectureShapes, opTable } from './program.js';
import { opParamNames } from './ops.js';
import { firstNonFiniteParameter } from './finite.js';
import { checkWeights, type Weights } from './weights.js';
import type { NativeOpTable } from '../native.js';
import { VERSION } from '../version.js';
import { Float16Array } from '@petamoriken/float16';
import { attr, GraphBuilder, tensor, valueInfo } from './onnx-graph.js';
import {
  type EnsembleMember,
  META,
  type ModelMetadata,
  NORMALIZATION_TYPE,
  OPSET,
  FORMAT_VERSION,
  HALF_SUFFIX,
} from './onnx-metadata.js';
import { addViewNodes, type ViewedImages } from './views.js';

const { onnx } = onnxProto;

export { FORMAT_VERSION, OPSET } from './onnx-metadata.js';

export interface ExportOptions {
  labels: string[];
  training?: Record<string, unknown>;
  producer?: string;
  /**
   * How the convolution and dense weights are stored: 'float32' (default,
   * exact) or 'float16' (half the file; a Cast to float32 in the graph, which
   * ONNX Runtime folds at load, so inference still runs in float32 on the
   * rounded weights). Batch-norm parameters and biases stay float32.
   */
  storage?: 'float32' | 'float16';
}

/**
 * A single NaN or infinite weight makes every prediction NaN (a diverged or
 * broken run): such a model is refused here rather than shipped.
 */
function checkFinite(arch: Architecture, weights: Weights, owner?: string): void {
  const bad = firstNonFiniteParameter(
    weights,
    arch.params.map((p) => p.name),
  );
  if (bad)
    throw new RangeError(
      `Expected finite weights${owner ? ` for ${owner}` : ''} but received ${bad.bad} NaN or infinite values of ${bad.length} in parameter ${bad.name}: such a model predicts NaN`,
    );
}

/** A model's member: its configuration, architecture and checked weights. */
interface Member {
  config: XceptionConfig;
  arch: Architecture;
  weights: Weights;
}

/**
 * The members of an export, checked: one set of weights of `cfg`'s
 * architecture, or an ensemble whose members share cfg's input and classes
 * and whose member 0 has cfg's architecture.
 */
function checkedMembers(cfg: XceptionConfig, weights: Weights | readonly (Weights | EnsembleMember)[]): Member[] {
  const list = Array.isArray(weights) ? (weights as readonly (Weights | EnsembleMember)[]) : [weights as Weights];
  if (list.length < 1) throw new RangeError('Expected at least one set of weights but received an empty list');
  return list.map((m, i) => {
    const name = list.length > 1 ? `ensemble member ${i}` : undefined;
    const own =
      m instanceof Map ? cfg : validateConfig((m as EnsembleMember).config, `${name ?? 'the member'}'s config`);
    for (const key of ['inputSize', 'channels', 'classes'] as const)
      if (own[key] !== cfg[key])
        throw new RangeError(
          `Expected ${cfg[key]} (the ensemble's) for ${name ?? 'the member'}'s config.${key} but received ${own[key]}: an ensemble's members share one input and one label list`,
        );
    if (i === 0 && !sameArchitecture(own, cfg))
      throw new RangeError(
        `Expected ensemble member 0 to have the configuration's architecture (the model's embeddings are its) but received ${JSON.stringify(architectureOf(own))} for ${JSON.stringify(architectureOf(cfg))}`,
      );
    const arch: Architecture = buildArchitecture(own);
    const w = m instanceof Map ? m : (m as EnsembleMember).weights;
    checkWeights(arch, w, name);
    checkFinite(arch, w, name);
    return { config: own, arch, weights: w };
  });
}

/**
 * The input pipeline: the program's standardize op, once for all members and
 * views (each image standardised on its own), writing `input`. Returns its eps.
 */
function addStandardize(g: GraphBuilder, arch: Architecture, viewed: string): number {
  const pipeline = arch.ops.find((op) => op.op === 'standardize');
  if (!pipeline || pipeline.input !== arch.image || pipeline.output !== arch.input)
    throw new Error('the architecture has no standardize op from its image to its input');
  g.node('ReduceMean', [viewed], ['image_mean'], [attr('axes', [1, 2, 3]), attr('keepdims', 1)]);
  g.node('Sub', [viewed, 'image_mean'], ['image_centred']);
  g.node('Mul', ['image_centred', 'image_centred'], ['image_sq']);
  g.node('ReduceMean', ['image_sq'], ['image_var'], [attr('axes', [1, 2, 3]), attr('keepdims', 1)]);
  g.node('Add', ['image_var', g.constant([], Float32Array.of(pipeline.eps))], ['image_var_eps']);
  g.node('Sqrt', ['image_var_eps'], ['image_std']);
  g.node('Div', ['image_centred', 'image_std'], ['input']);
  return pipeline.eps;
}

/** What an op's nodes are written with: one member's network being added to the graph. */
interface NetworkContext {
  g: GraphBuilder;
  /** the graph's name of an architecture tensor (the member's prefix, dropout's alias) */
  name(tensor: string): string;
  /** the architecture tensor a removed op (dropout in evaluation) passes on */
  alias(output: string, input: string): void;
  /** the initializer (or its float16 Cast) of parameter `param`; returns its graph name */
  parameter(param: string): string;
  /** padding [top, left, bottom, right] of the op being written (the op table's, through the addon) */
  pads: [number, number, number, number];
  /** the op table's constants */
  constants: NativeOpTable['constants'];
  /** the tensor the softmax writes */
  probs: string;
}

type OpOf<K extends Op['op']> = Extract<Op, { op: K }>;
type OpNodes = { [K in Op['op']]: (ctx: NetworkContext, op: OpOf<K>) => void };

// Window ops: their padding is the op table's.
const windowNodes: Pick<OpNodes, 'conv' | 'maxpool'> = {
  conv: ({ g, name, parameter, pads: [top, left, bottom, right] }, op) =>
    g.node(
      'Conv',
      [name(op.input), ...opParamNames(op).map(parameter)],
      [name(op.output)],
      [
        attr('kernel_shape', [op.kernel, op.kernel]),
        attr('strides', [op.stride, op.stride]),
        attr('pads', [top, left, bottom, right]),
        attr('group', op.depthwise ? op.inC : 1),
      ],
    ),
  maxpool: ({ g, name, pads, constants: { poolKernel: k, poolStride: s } }, op) =>
    g.node(
      'MaxPool',
      [name(op.input)],
      [name(op.output)],
      [attr('kernel_shape', [k, k]), attr('strides', [s, s]), attr('pads', pads)],
    ),
};

// Normalisations, with the op table's epsilons (standardize is the graph's head, addStandardize).
const normalisationNodes: Pick<OpNodes, 'standardize' | 'bn' | 'l2norm'> = {
  standardize: () => {},
  bn: ({ g, name, parameter, constants }, op) =>
    g.node(
      'BatchNormalization',
      [name(op.input), ...opParamNames(op).map(parameter)],
      [name(op.output)],
      [
        onnx.AttributeProto.create({
          name: 'epsilon',
          f: constants.bnEps,
          type: onnx.AttributeProto.AttributeType.FLOAT,
        }),
      ],
    ),
  l2norm: ({ g, name, constants }, op) => {
    const o = name(op.output);
    g.node('ReduceSumSquare', [name(op.input)], [`${o}_ss`], [attr('axes', [1]), attr('keepdims', 1)]);
    g.node('Max', [`${o}_ss`, g.constant([], Float32Array.of(constants.l2Eps))], [`${o}_clamped`]);
    g.node('Sqrt', [`${o}_clamped`], [`${o}_norm`]);
    g.node('Div', [name(op.input), `${o}_norm`], [o]);
  },
};

// Elementwise ops and data movement.
const elementwiseNodes: Pick<OpNodes, 'relu' | 'add' | 'concat' | 'dropout'> = {
  relu: ({ g, name }, op) => g.node('Relu', [name(op.input)], [name(op.output)]),
  add: ({ g, name }, op) => g.node('Add', op.inputs.map(name), [name(op.output)]),
  concat: ({ g, name }, op) => g.node('Concat', op.inputs.map(name), [name(op.output)], [attr('axis', 1)]),
  dropout: ({ alias }, op) => alias(op.output, op.input), // evaluation mode: identity
};

// The head: features, dense layers, probabilities.
const headNodes: Pick<OpNodes, 'gap' | 'dense' | 'softmax'> = {
  gap: ({ g, name }, op) => {
    const pooled = `${name(op.output)}_pooled`;
    g.node('GlobalAveragePool', [name(op.input)], [pooled]);
    g.node('Flatten', [pooled], [name(op.output)], [attr('axis', 1)]);
  },
  dense: ({ g, name, parameter }, op) =>
    g.node('Gemm', [name(op.input), ...opParamNames(op).map(parameter)], [name(op.output)], [attr('transB', 1)]),
  softmax: ({ g, name, probs }, op) => g.node('Softmax', [name(op.input)], [probs], [attr('axis', 1)]),
};

/** The nodes of every op of the op table, by its name there. */
const OP_NODES: OpNodes = { ...windowNodes, ...normalisationNodes, ...elementwiseNodes, ...headNodes };

/** Every op of the op table has its nodes here (an op added to the table and not to the exporter fails here). */
function checkOpNodes(table: NativeOpTable): void {
  const missing = table.ops.map((op) => op.name).filter((name) => !(name in OP_NODES));
  if (missing.length) throw new Error(`the ONNX exporter has no nodes for the op table's ${missing.join(', ')}`);
}

/**
 * One member's network on the shared standardised input. A single model
 * keeps plain tensor and parameter names; ensemble member i prefixes its own
 * with `member{i}/`. The softmax writes the tensor named by `probs`. Every
 * parameter is stored under its own name, batch norm unfolded: readOnnxWeights
 * recovers the exact weights (--init model.onnx), and ONNX Runtime folds the
 * batch norms into the convolutions itself when it loads the model.
 */
function addNetwork(
  g: GraphBuilder,
  { arch, weights }: Member,
  prefix: string,
  probs: string,
  storage: 'float32' | 'float16',
  constants: NativeOpTable['constants'],
): void {
  const paramShapes = new Map(arch.params.map((p) => [p.name, p.shape]));
  const shapes = architectureShapes(arch);
  const aliases = new Map<string, string>(); // tensor renamed by a removed op (dropout in evaluation)
  const base = (t: string) => aliases.get(t) ?? (t === 'embeddings' ? 'embeddings_concat' : t);
  const ctx: NetworkContext = {
    g,
    name: (t) => (t === 'input' ? t : prefix + base(t)),
    alias: (output, input) => aliases.set(output, base(input)),
    parameter: (n) => {
      if (storage === 'float16' && n.endsWith('.weight')) {
        g.initializers.push(tensor(prefix + n + HALF_SUFFIX, paramShapes.get(n)!, new Float16Array(weights.get(n)!)));
        g.node('Cast', [prefix + n + HALF_SUFFIX], [prefix + n], [attr('to', onnx.TensorProto.DataType.FLOAT)]);
      } else {
        g.initializers.push(tensor(prefix + n, paramShapes.get(n)!, weights.get(n)!));
      }
      return prefix + n;
    },
    pads: [0, 0, 0, 0],
    constants,
    probs,
  };
  arch.ops.forEach((op, i) => {
    ctx.pads = shapes.pads(i);
    (OP_NODES[op.op] as (ctx: NetworkContext, op: Op) => void)(ctx, op);
  });
}

/**
 * The outputs from the members' probabilities: the ensemble's average, the
 * views' average (probabilities; the embeddings are the first pass's, the
 * image itself), the prior correction last, and the embeddings as [N, k, d].
 */
function addOutputs(
  g: GraphBuilder,
  cfg: XceptionConfig,
  members: Member[],
  views: ViewedImages,
  storage: 'float32' | 'float16',
  constants: NativeOpTable['constants'],
): void {
  const single = members.length === 1;
  const prior = priorWeights(cfg);
  const probsMean = prior ? 'probs_before_prior' : 'probs';
  const probsOut = views.passes > 1 ? 'probs_views' : probsMean;
  const memberProbs = members.map((m, i) => {
    const prefix = single ? '' : `member${i}/`;
    addNetwork(g, m, prefix, single ? probsOut : `${prefix}probs`, storage, constants);
    return `${prefix}probs`;
  });
  // an ensemble averages its members' probabilities; the embeddings are member 0's
  if (!single) {
    g.node('Sum', memberProbs, ['probs_sum']);
    g.node('Div', ['probs_sum', g.constant([], Float32Array.of(members.length))], [probsOut]);
  }
  const embeddings = single ? 'embeddings_concat' : 'member0/embeddings_concat';
  if (views.passes > 1) addViewAverage(g, cfg, views, probsMean, embeddings);
  else
    g.node(
      'Reshape',
      [embeddings, g.constant([3], BigInt64Array.of(0n, BigInt(cfg.k), BigInt(cfg.d)))],
      ['embeddings'],
    );
  if (prior) {
    // p_c w_c / sum_j p_j w_j, w_c = (min prior / prior_c)^t (priorWeights)
    g.node('Mul', [probsMean, g.constant([1, cfg.classes], prior)], ['probs_weighted']);
    g.node(
      'ReduceSum',
      ['probs_weighted', g.constant([1], BigInt64Array.of(1n))],
      ['probs_weighted_sum'],
      [attr('keepdims', 1)],
    );
    g.node('Div', ['probs_weighted', 'probs_weighted_sum'], ['probs']);
  }
}

/** [V N, ...] -> [V, N, ...]: probabilities averaged over the views, embeddings of the first (the image itself). */
function addViewAverage(
  g: GraphBuilder,
  cfg: XceptionConfig,
  { passes, withImage }: ViewedImages,
  probsMean: string,
  embeddings: string,
): void {
  const V = BigInt(passes);
  g.node('Reshape', ['probs_views', g.constant([3], BigInt64Array.of(V, -1n, BigInt(cfg.classes)))], ['probs_by_view']);
  if (withImage) g.node('ReduceMean', ['probs_by_view'], [probsMean], [attr('axes', [0]), attr('keepdims', 0)]);
  else {
    // the image itself (first) is not a crop view: its probabilities are left out
    g.node(
      'Slice',
      [
        'probs_by_view',
        g.constant([1], BigInt64Array.of(1n)),
        g.constant([1], BigInt64Array.of(V)),
        g.constant([1], BigInt64Array.of(0n)),
      ],
      ['probs_by_crop'],
    );
    g.node('ReduceMean', ['probs_by_crop'], [probsMean], [attr('axes', [0]), attr('keepdims', 0)]);
  }
  g.node(
    'Reshape',
    [embeddings, g.constant([4], BigInt64Array.of(V, -1n, BigInt(cfg.k), BigInt(cfg.d)))],
    ['embeddings_by_view'],
  );
  g.node('Gather', ['embeddings_by_view', g.constant([], BigInt64Array.of(0n))], ['embeddings'], [attr('axis', 0)]);
}

/** The model around the graph: its input and outputs, opset, producer and metadata. */
function modelBytes(g: GraphBuilder, cfg: XceptionConfig, metadata: ModelMetadata, options: ExportOptions): Uint8Array {
  const graph = onnx.GraphProto.create({
    name: 'xception_k',
    node: g.nodes,
    initializer: g.initializers,
    input: [valueInfo('image', ['N', cfg.channels, cfg.inputSize, cfg.inputSize])],
    output: [valueInfo('probs', ['N', cfg.classes]), valueInfo('embeddings', ['N', cfg.k, cfg.d])],
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: options.producer ?? 'adcorre-native',
    producerVersion: VERSION,
    docString:
      'Xception-k facial expression model trained with the Ad-Corre loss. Input image: float32 NCHW in [0, 1].',
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: OPSET })],
    graph,
    metadataProps: Object.entries(metadata).map(([key, value]) =>
      onnx.StringStringEntryProto.create({
        key: META(key),
        value: typeof value === 'string' ? value : JSON.stringify(value),
      }),
    ),
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * The ONNX bytes of a model: one set of weights of `config`'s architecture, or
 * an ensemble that averages its members' probabilities (weights of `config`'s
 * architecture, or EnsembleMembers with their own; member 0's is `config`'s).
 */
export function exportOnnx(
  config: XceptionConfig,
  weights: Weights | readonly (Weights | EnsembleMember)[],
  options: ExportOptions,
): Uint8Array {
  const cfg = validateConfig(config);
  if (!Array.isArray(options.labels) || options.labels.length !== cfg.classes) {
    throw new RangeError(`Expected ${cfg.classes} labels (config.classes) but received ${options.labels?.length}`);
  }
  const members = checkedMembers(cfg, weights);
  const storage = options.storage ?? 'float32';
  if (storage !== 'float32' && storage !== 'float16')
    throw new RangeError(`Expected 'float32' or 'float16' for storage but received ${JSON.stringify(storage)}`);
  const table = opTable();
  checkOpNodes(table);
  const g = new GraphBuilder();
  const arch = members[0].arch;
  const views = addViewNodes(g, cfg, arch.image);
  const eps = addStandardize(g, arch, views.viewed);
  addOutputs(g, cfg, members, views, storage, table.constants);
  const single = members.length === 1;
  const mixed = members.some((m) => !sameArchitecture(m.config, cfg));
  const metadata: ModelMetadata = {
    format: FORMAT_VERSION,
    labels: options.labels,
    config: cfg,
    input: { name: 'image', layout: 'NCHW', size: cfg.inputSize, channels: cfg.channels, range: [0, 1] },
    normalization: { type: NORMALIZATION_TYPE, eps },
    ...(options.training ? { training: options.training } : {}),
    ...(single ? {} : { members: members.length }),
    ...(mixed ? { memberConfigs: members.map((m) => architectureOf(m.config)) } : {}),
  };
  return modelBytes(g, cfg, metadata, options);
}
