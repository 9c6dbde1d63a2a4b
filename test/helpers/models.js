// Models and checkpoints made by the tests themselves, untrained (no model files are committed).
import onnxProto from 'onnx-proto';
import { buildArchitecture, exportOnnx, initWeights, labelNames } from 'adcorre-native';
import { Engine } from 'adcorre-native/internal';
import { encodeCheckpoint } from 'adcorre-native/internal';

/** The tiny network the training and CLI tests use (36 x 36 grey, 7 classes): seconds a run on the CPU. */
export const tiny = { inputSize: 36, channels: 1, width: 0.0625, middleBlocks: 1, k: 2, d: 8, classes: 7 };

/** The .onnx bytes of an untrained model of `config` (weights of seed 3, the 7 labels). */
export function untrainedModel(config = tiny) {
  return exportOnnx(config, initWeights(buildArchitecture(config), 3), {
    labels: labelNames(7),
    training: { note: 'test fixture' },
  });
}

/** `bytes` (an .onnx model) decoded, changed by `edit(model)` and encoded again. */
export function editedModel(bytes, edit) {
  const model = onnxProto.onnx.ModelProto.decode(bytes);
  edit(model);
  return onnxProto.onnx.ModelProto.encode(model).finish();
}

/**
 * A checkpoint as the trainer writes one, without training: a CPU engine's state for `config` (seed 1) and the
 * header of epoch 1's end; `mutate(state, meta)` may change either before they are encoded.
 */
export function untrainedCheckpoint(config = tiny, mutate = () => {}) {
  const state = Engine.create(config, { maxBatch: 2, seed: 1, device: 'cpu' }).getState();
  const meta = {
    options: { config, epochs: 2, batch: 8, seed: 3 },
    epoch: 1,
    batch: 0,
    step: 2,
    tracker: null,
    best: null,
    history: [],
    reason: 'epoch',
  };
  mutate(state, meta);
  return encodeCheckpoint(state, meta);
}
