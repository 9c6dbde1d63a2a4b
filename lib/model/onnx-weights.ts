// The weights of an ONNX file made by adcorre-native, read back exactly (float32, or float16 with a Cast):
// training starts from them (adcorre-train --init model.onnx) and adcorre-export re-exports or extends an
// ensemble from its members.
import { Float16Array } from '@petamoriken/float16';
import onnxProto from 'onnx-proto';
import { buildArchitecture } from './architecture.js';
import { architectureOf, validateConfig, type XceptionConfig } from './config.js';
import {
  decodeModel,
  type EnsembleMember,
  HALF_SUFFIX,
  metadataOf,
  type ModelMetadata,
  type ModelProto,
} from './onnx-metadata.js';
import type { Weights } from './weights.js';

const { onnx } = onnxProto;

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
