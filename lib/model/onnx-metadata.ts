// What an ONNX file made by adcorre-native says about itself: its metadata (labels, configuration, input,
// normalisation, training summary, ensemble members), read and checked against the graph's declared input
// and outputs. Inference reads this and nothing else of the file, so this module needs neither the addon
// nor the model definition. The writer is onnx.ts, the weights' reader onnx-weights.ts.
import onnxProto from 'onnx-proto';
import { validateConfig, type XceptionConfig } from './config.js';
import type { Weights } from './weights.js';

const { onnx } = onnxProto;

export const OPSET = 17;
export const FORMAT_VERSION = '1';

/**
 * Before the first convolution each image is standardised on its own:
 * (x - mean(x)) / sqrt(var(x) + eps) over all its pixels and channels (the
 * architecture's standardize op, whose eps the exporter writes). A model that
 * sees intensities only relative to the face's own brightness and contrast is
 * not thrown by a camera's exposure.
 */
export const NORMALIZATION_TYPE = 'standardize' as const;

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

/** The initializer of a float16-stored parameter is its name with this suffix (then a Cast to the name). */
export const HALF_SUFFIX = '_float16';

/** The metadata key of a field. */
export const META = (key: string): string => `adcorre.${key}`;

/** Reads and checks the metadata of an ONNX file made by exportOnnx. */
export function readMetadata(bytes: Uint8Array, file = 'model'): ModelMetadata {
  return metadataOf(decodeModel(bytes, file), file);
}

export type ModelProto = ReturnType<typeof onnx.ModelProto.decode>;

export function decodeModel(bytes: Uint8Array, file: string): ModelProto {
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new Error(`${file} is not an ONNX model (${(err as Error).message})`);
  }
}

/** readMetadata on a decoded model (the weights' readers decode a file once for both). */
export function metadataOf(model: ModelProto, file: string): ModelMetadata {
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
    if (normalization?.type !== NORMALIZATION_TYPE) {
      throw new Error(
        `normalization ${JSON.stringify(normalization)} is not '${NORMALIZATION_TYPE}' (exported by an older adcorre-native?)`,
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
