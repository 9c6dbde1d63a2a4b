// The Xception-k model as ONNX (opset 17): evaluation-mode graph with every
// parameter as a named initializer, depthwise convolutions as grouped Conv,
// the input normalisation inside the graph (input `image`: float32 NCHW in
// [0, 1]), outputs `probs` [N, C] and `embeddings` [N, k, d], and everything
// needed to use the file in its metadata (labels, configuration, input,
// normalisation, training summary). Protobuf via onnx-proto.
import { Float16Array } from '@petamoriken/float16';
import onnxProto from 'onnx-proto';
import { type Architecture, buildArchitecture, INPUT_EPS, type Op } from './architecture.js';
import {
  architectureOf,
  evaluationViews,
  imageInViews,
  priorWeights,
  sameArchitecture,
  validateConfig,
  type XceptionConfig,
} from './config.js';
import { architectureShapes, opTable } from './program.js';
import { opParamNames } from './ops.js';
import { firstNonFiniteParameter } from './finite.js';
import { checkWeights, type Weights } from './weights.js';
import type { NativeOpTable } from '../native.js';
import { VERSION } from '../version.js';

const { onnx } = onnxProto;

export const OPSET = 17;
export const FORMAT_VERSION = '1';
/**
 * Before the first convolution each image is standardised on its own:
 * (x - mean(x)) / sqrt(var(x) + eps) over all its pixels and channels (the
 * architecture's standardize op, whose eps the exporter reads). A model that
 * sees intensities only relative to the face's own brightness and contrast is
 * not thrown by a camera's exposure.
 */
export const NORMALIZATION = { type: 'standardize' as const, eps: INPUT_EPS };

export interface ModelMetadata {
  format: string;
  labels: string[];
  config: XceptionConfig;
  input: { name: 'image'; layout: 'NCHW'; size: number; channels: 1 | 3; range: [number, number] };
  normalization: { type: 'standardize'; eps: number };
  /** what the trainer recorded (data, accuracy, epochs, ...) */
  training?: Record<string, unknown>;
  /** an ensemble's member count (absent: one model) */
  members?: number;
  /**
   * each member's own architecture, when an ensemble's members differ (absent:
   * all are `config`'s); they share `config`'s input, classes and evaluation
   * views, and the embeddings are member 0's, whose architecture is `config`'s
   */
  memberConfigs?: XceptionConfig[];
}

/**
 * An ensemble member with an architecture of its own (another width, depth or
 * embedding size); it takes the ensemble's input and classes, and the
 * ensemble's evaluation views apply to it.
 */
export interface EnsembleMember {
  config: XceptionConfig;
  weights: Weights;
}

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

/** The initializer of a float16-stored parameter is its name with this suffix (then a Cast to the name). */
const HALF_SUFFIX = '_float16';

const META = (key: string) => `adcorre.${key}`;

function tensor(name: string, dims: number[], data: Float32Array | BigInt64Array | Float16Array) {
  const { DataType } = onnx.TensorProto;
  const dataType =
    data instanceof Float32Array ? DataType.FLOAT : data instanceof BigInt64Array ? DataType.INT64 : DataType.FLOAT16;
  return onnx.TensorProto.create({
    name,
    dims,
    dataType,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}

function attr(name: string, value: number | number[] | string) {
  if (typeof value === 'string') {
    return onnx.AttributeProto.create({
      name,
      s: new TextEncoder().encode(value),
      type: onnx.AttributeProto.AttributeType.STRING,
    });
  }
  return Array.isArray(value)
    ? onnx.AttributeProto.create({ name, ints: value, type: onnx.AttributeProto.AttributeType.INTS })
    : onnx.AttributeProto.create({ name, i: value, type: onnx.AttributeProto.AttributeType.INT });
}

function valueInfo(name: string, dims: (number | string)[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) =>
            onnx.TensorShapeProto.Dimension.create(typeof d === 'string' ? { dimParam: d } : { dimValue: d }),
          ),
        }),
      }),
    }),
  });
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

/** The graph's nodes and initializers in the order they are added (a node's name counts the nodes before it). */
class GraphBuilder {
  readonly nodes: ReturnType<typeof onnx.NodeProto.create>[] = [];
  readonly initializers: ReturnType<typeof onnx.TensorProto.create>[] = [];
  private constants = 0;

  /** A constant initializer, named const_<i>. */
  constant(dims: number[], data: Float32Array | BigInt64Array): string {
    const n = `const_${this.constants++}`;
    this.initializers.push(tensor(n, dims, data));
    return n;
  }

  node(opType: string, inputs: string[], outputs: string[], attributes: ReturnType<typeof attr>[] = []): void {
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        input: inputs,
        output: outputs,
        attribute: attributes,
        name: `${opType}_${this.nodes.length}`,
      }),
    );
  }

  /** `${source}_mirrored`: the last axis backwards, the mirror images */
  mirror(source: string): void {
    this.node(
      'Slice',
      [
        source,
        this.constant([1], BigInt64Array.of(-1n)),
        this.constant([1], BigInt64Array.of(-(2n ** 63n))),
        this.constant([1], BigInt64Array.of(3n)),
        this.constant([1], BigInt64Array.of(-1n)),
      ],
      [`${source}_mirrored`],
    );
  }

  /** `output`: the size x size square of `source`'s planes from (left, top) */
  square(source: string, top: number, left: number, size: number, output: string): string {
    const [y, x] = [BigInt(top), BigInt(left)];
    this.node(
      'Slice',
      [
        source,
        this.constant([2], BigInt64Array.of(y, x)),
        this.constant([2], BigInt64Array.of(y + BigInt(size), x + BigInt(size))),
        this.constant([2], BigInt64Array.of(2n, 3n)),
      ],
      [output],
    );
    return output;
  }
}

/** How the evaluation views enter the graph: the batch they make and how many passes of the images it holds. */
interface ViewedImages {
  /** the tensor of V x N images the networks run on */
  viewed: string;
  /** V: the views, and the image itself first where the views are crops */
  passes: number;
  /** whether the image itself is a view (else crop views: its probabilities are left out) */
  withImage: boolean;
}

/**
 * The evaluation views (evaluationViews: the image, then its mirror image and
 * moved copies) as one batch of V x N, view by view; the moves repeat the edge
 * pixels (Pad 'edge', then a Slice). Crop views: squares of the (mirrored)
 * image resized back to the input size together (linear, half-pixel centres,
 * edge pixels repeated), after the image itself, which gives the embeddings.
 */
function addViews(g: GraphBuilder, cfg: XceptionConfig, image: string): ViewedImages {
  const views = evaluationViews(cfg);
  const withImage = imageInViews(views);
  const passes = views.length + (withImage ? 0 : 1);
  const S = cfg.inputSize;
  if (!withImage) {
    if (views.some((v) => v.flip)) g.mirror(image);
    const crops = views.map((v, i) => {
      const { left, top, size } = v.crop!;
      return g.square(v.flip ? `${image}_mirrored` : image, top, left, size, `image_crop${i}`);
    });
    g.node('Concat', crops, ['image_crops'], [attr('axis', 0)]);
    g.node('Shape', ['image_crops'], ['image_crops_nc'], [attr('end', 2)]);
    g.node(
      'Concat',
      ['image_crops_nc', g.constant([2], BigInt64Array.of(BigInt(S), BigInt(S)))],
      ['image_crops_size'],
      [attr('axis', 0)],
    );
    g.node(
      'Resize',
      ['image_crops', '', '', 'image_crops_size'],
      ['image_crops_resized'],
      [attr('mode', 'linear'), attr('coordinate_transformation_mode', 'half_pixel')],
    );
    g.node('Concat', [image, 'image_crops_resized'], ['image_views'], [attr('axis', 0)]);
    return { viewed: 'image_views', passes, withImage };
  }
  if (views.length === 1) return { viewed: image, passes, withImage };
  const s = cfg.shiftAverage ?? 0;
  const padded = s ? 'image_padded' : image;
  if (s) {
    const p = BigInt(s);
    g.node(
      'Pad',
      [image, g.constant([8], BigInt64Array.of(0n, 0n, p, p, 0n, 0n, p, p))],
      [padded],
      [attr('mode', 'edge')],
    );
  }
  if (views.some((v) => v.flip)) g.mirror(padded);
  const viewNames = views.map((v, i) => {
    const source = v.flip ? `${padded}_mirrored` : padded;
    if (!s) return source;
    // output pixel (x, y) is the source's (x - dx, y - dy), at (x - dx + s, y - dy + s) in the padded plane
    return g.square(source, s - v.dy, s - v.dx, S, `image_view${i}`);
  });
  g.node('Concat', viewNames, ['image_views'], [attr('axis', 0)]);
  return { viewed: 'image_views', passes, withImage };
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
  const views = addViews(g, cfg, arch.image);
  const eps = addStandardize(g, arch, views.viewed);
  addOutputs(g, cfg, members, views, storage, table.constants);
  const single = members.length === 1;
  const mixed = members.some((m) => !sameArchitecture(m.config, cfg));
  const metadata: ModelMetadata = {
    format: FORMAT_VERSION,
    labels: options.labels,
    config: cfg,
    input: { name: 'image', layout: 'NCHW', size: cfg.inputSize, channels: cfg.channels, range: [0, 1] },
    normalization: { type: 'standardize', eps },
    ...(options.training ? { training: options.training } : {}),
    ...(single ? {} : { members: members.length }),
    ...(mixed ? { memberConfigs: members.map((m) => architectureOf(m.config)) } : {}),
  };
  return modelBytes(g, cfg, metadata, options);
}

/** Reads and checks the metadata of an ONNX file made by exportOnnx. */
export function readMetadata(bytes: Uint8Array, file = 'model'): ModelMetadata {
  return metadataOf(decodeModel(bytes, file), file);
}

type ModelProto = ReturnType<typeof onnx.ModelProto.decode>;

function decodeModel(bytes: Uint8Array, file: string): ModelProto {
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new Error(`${file} is not an ONNX model (${(err as Error).message})`);
  }
}

/** readMetadata on a decoded model (the weights' readers decode a file once for both). */
function metadataOf(model: ModelProto, file: string): ModelMetadata {
  const props = new Map((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
  let meta: ModelMetadata;
  const get = (key: string) => {
    const v = props.get(META(key));
    if (v === undefined) {
      throw new Error(
        `${file} has no '${META(key)}' metadata: it was not exported by adcorre-native (export it with adcorre-export)`,
      );
    }
    return v;
  };
  try {
    // Models exported before the input blur was removed (0.1.0's default model) name it in their
    // configuration; their graph holds the blur itself, so ONNX Runtime runs them as they were.
    const { inputBlur: _legacyBlur, ...saved } = JSON.parse(get('config')) as Record<string, unknown>;
    const config = validateConfig(saved, `${file} metadata config`);
    const labels = JSON.parse(get('labels')) as string[];
    if (!Array.isArray(labels) || labels.length !== config.classes || labels.some((l) => typeof l !== 'string')) {
      throw new Error(`labels must be ${config.classes} strings`);
    }
    const input = JSON.parse(get('input')) as ModelMetadata['input'];
    const normalization = JSON.parse(get('normalization')) as ModelMetadata['normalization'];
    if (normalization?.type !== NORMALIZATION.type) {
      throw new Error(
        `normalization ${JSON.stringify(normalization)} is not '${NORMALIZATION.type}' (exported by an older adcorre-native?)`,
      );
    }
    const training = props.has(META('training')) ? (JSON.parse(get('training')) as Record<string, unknown>) : undefined;
    const members = props.has(META('members')) ? (JSON.parse(get('members')) as number) : undefined;
    if (members !== undefined && !(Number.isInteger(members) && members >= 2))
      throw new Error(`members ${JSON.stringify(members)} is not an integer >= 2`);
    const memberConfigs = props.has(META('memberConfigs'))
      ? (JSON.parse(get('memberConfigs')) as unknown[]).map((c, i) => validateConfig(c, `memberConfigs[${i}]`))
      : undefined;
    if (memberConfigs && memberConfigs.length !== members)
      throw new Error(`memberConfigs has ${memberConfigs.length} entries for ${members} members`);
    meta = {
      format: get('format'),
      labels,
      config,
      input,
      normalization,
      ...(training ? { training } : {}),
      ...(members ? { members } : {}),
      ...(memberConfigs ? { memberConfigs } : {}),
    };
  } catch (err) {
    if ((err as Error).message.includes('metadata: it was not exported')) throw err;
    throw new Error(`${file} has malformed adcorre metadata: ${(err as Error).message}`);
  }
  const mismatch = graphMismatch(model, meta);
  if (mismatch)
    throw new Error(`${file}: the model's graph does not match its metadata: ${mismatch} (export the model again)`);
  return meta;
}

type Dim = number | string;

/** The declared shape of a graph input or output (a string for a symbolic dimension), or null. */
function declaredShape(info: {
  type?: { tensorType?: { shape?: { dim?: unknown[] } | null } | null } | null;
}): Dim[] | null {
  const dims = info.type?.tensorType?.shape?.dim as
    { dimValue?: number | { toNumber(): number } | null; dimParam?: string | null }[] | undefined;
  if (!dims) return null;
  return dims.map((d) =>
    d.dimParam ? d.dimParam : d.dimValue === null || d.dimValue === undefined ? '?' : Number(d.dimValue),
  );
}

/**
 * What the graph's declared input and outputs contradict in the metadata
 * (names, and the shapes image [N, channels, size, size], probs [N, classes],
 * embeddings [N, k, d]), or null when they agree. ONNX Runtime would
 * otherwise fail at the first prediction ("input 'image' is missing in
 * 'feeds'", "Got invalid dimensions for input").
 */
function graphMismatch(model: ModelProto, meta: ModelMetadata): string | null {
  const { config, input } = meta;
  if (!input || input.name !== 'image')
    return `the metadata's input is ${JSON.stringify(input?.name)}, expected 'image'`;
  if (input.size !== config.inputSize || input.channels !== config.channels)
    return `the metadata's input is ${input.size}x${input.size}x${input.channels} but its configuration says ${config.inputSize}x${config.inputSize}x${config.channels}`;
  const graph = model.graph;
  const initializers = new Set((graph?.initializer ?? []).map((t) => t.name ?? ''));
  const inputs = (graph?.input ?? []).filter((i) => !initializers.has(i.name ?? ''));
  const outputs = graph?.output ?? [];
  const expect: [string, Dim[], typeof inputs][] = [
    ['image', ['N', config.channels, config.inputSize, config.inputSize], inputs],
    ['probs', ['N', config.classes], outputs],
    ['embeddings', ['N', config.k, config.d], outputs],
  ];
  for (const [name, dims, list] of expect) {
    const kind = list === inputs ? 'input' : 'output';
    const found = list.find((v) => v.name === name);
    if (!found)
      return `it has no ${kind} '${name}' (its ${kind}s: ${list.map((v) => `'${v.name}'`).join(', ') || 'none'})`;
    const shape = declaredShape(found as never);
    if (!shape) continue; // no declared shape: nothing to contradict
    const text = (d: Dim[]) => `[${d.join(', ')}]`;
    const agrees =
      shape.length === dims.length &&
      dims.every((d, i) => typeof d === 'string' || typeof shape[i] === 'string' || shape[i] === d);
    if (!agrees)
      return `${kind} '${name}' has shape ${text(shape)} but the metadata (${config.inputSize}x${config.inputSize}x${config.channels}, ${config.classes} classes, k = ${config.k}, d = ${config.d}) needs ${text(dims)}`;
  }
  if (inputs.length !== 1)
    return `it has ${inputs.length} inputs (${inputs.map((v) => `'${v.name}'`).join(', ')}); an adcorre-native model has one, 'image'`;
  return null;
}

/**
 * The configuration, labels and exact weights of an ONNX file made by
 * exportOnnx (to start training from it: adcorre-train --init model.onnx).
 */
export function readOnnxWeights(bytes: Uint8Array, file = 'model'): { meta: ModelMetadata; weights: Weights } {
  const model = decodeModel(bytes, file);
  const meta = metadataOf(model, file);
  if (meta.members) {
    throw new Error(
      `${file} is an ensemble of ${meta.members} models, which training cannot start from: start from one member's ` +
        `checkpoint (.ckpt), or from one member exported alone (adcorre-export ${file} --member 0 -o member0.onnx)`,
    );
  }
  return { meta, weights: readParams(initializersOf(model), meta.config, '', file) };
}

/**
 * Every member of an ONNX file made by exportOnnx, with its own architecture
 * and exact weights: one for a single model, each member of an ensemble
 * (member i's parameters under the prefix `member{i}/`). With the ensemble's
 * views and prior in each member's configuration, exportOnnx rebuilds the
 * same graph (adcorre-export re-exports or extends an ensemble this way).
 */
export function readOnnxMembers(bytes: Uint8Array, file = 'model'): { meta: ModelMetadata; members: EnsembleMember[] } {
  const model = decodeModel(bytes, file);
  const meta = metadataOf(model, file);
  const byName = initializersOf(model);
  if (!meta.members)
    return { meta, members: [{ config: meta.config, weights: readParams(byName, meta.config, '', file) }] };
  const members = Array.from({ length: meta.members }, (_, i) => {
    // a member's own architecture; the ensemble's input, classes and views are config's
    const config = validateConfig(
      { ...meta.config, ...architectureOf(meta.memberConfigs?.[i] ?? meta.config) },
      `${file} member ${i} config`,
    );
    return { config, weights: readParams(byName, config, `member${i}/`, file) };
  });
  return { meta, members };
}

function initializersOf(model: ModelProto) {
  return new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
}

/** The parameters of `config`'s architecture stored under `prefix` (float32, or float16 with a Cast), checked. */
function readParams(
  byName: ReturnType<typeof initializersOf>,
  config: XceptionConfig,
  prefix: string,
  file: string,
): Weights {
  const weights: Weights = new Map();
  for (const p of buildArchitecture(config).params) {
    const name = prefix + p.name;
    const expected = p.shape.reduce((a, b) => a * b, 1);
    const half = byName.get(name + HALF_SUFFIX);
    if (half) {
      const raw = half.rawData ?? new Uint8Array(0);
      if (half.dataType !== onnx.TensorProto.DataType.FLOAT16 || raw.byteLength !== 2 * expected) {
        throw new Error(
          `${file}: initializer '${name + HALF_SUFFIX}' is not ${expected} float16 values (shape ${p.shape.join('x')})`,
        );
      }
      weights.set(p.name, Float32Array.from(new Float16Array(new Uint8Array(raw).buffer))); // the stored (rounded) weights
      continue;
    }
    const t = byName.get(name);
    if (!t) {
      throw new Error(
        `${file} has no initializer '${name}': it was exported by an older adcorre-native with batch norm folded; ` +
          'start from its training checkpoint (.ckpt) instead, or export that checkpoint again',
      );
    }
    const raw = t.rawData ?? new Uint8Array(0);
    if (t.dataType !== onnx.TensorProto.DataType.FLOAT || raw.byteLength !== 4 * expected) {
      throw new Error(`${file}: initializer '${name}' is not ${expected} float32 values (shape ${p.shape.join('x')})`);
    }
    weights.set(p.name, new Float32Array(new Uint8Array(raw).buffer)); // a copy: raw may view the whole file (Buffer)
  }
  return weights;
}

export { buildArchitecture };
