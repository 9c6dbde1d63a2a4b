// Knowledge distillation (Hinton et al. 2015; --teacher <model.onnx>): a teacher model (an exported model or
// ensemble, run by ONNX Runtime) sees the same augmented and mixed batch as the student, on the fly; the student's
// cross-entropy target becomes (1 - weight) x its own target + weight x softmax(log(p_teacher) / T). The model's
// output is post-softmax: log p is the logits up to a per-image constant, which softmax ignores, so this is the
// teacher's logits / T. The temperature applies to the teacher only: the student's soft-target cross-entropy stays
// at T = 1 (a common simplification; Hinton's T^2 gradient scale is therefore not needed).
import { readModelFile } from '../infer/model-check.js';
import { openSession, ort } from '../infer/session.js';
import { readMetadata } from '../model/onnx-metadata.js';
import type { XceptionConfig } from '../model/config.js';
import { printable } from '../terminal.js';
import { OptionError } from '../validate.js';
import { blendedTargets } from './targets.js';

/** softmax(log(p) / T) of each row of probabilities (n x classes); a probability of 0 stays 0. */
export function temperatureScaled(probs: Float32Array, classes: number, temperature: number): Float32Array {
  const out = new Float32Array(probs.length);
  const row = new Float64Array(classes);
  for (let i = 0; i < probs.length / classes; i++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) {
      const p = probs[i * classes + c];
      row[c] = p > 0 ? Math.log(p) / temperature : -Infinity;
      if (row[c] > max) max = row[c];
    }
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += row[c] = Math.exp(row[c] - max);
    for (let c = 0; c < classes; c++) out[i * classes + c] = row[c] / sum;
  }
  return out;
}

/** (1 - weight) x the target (one-hot labels, or the rows of `targets`) + weight x the teacher's soft target. */
export function distilledTargets(
  labels: Int32Array,
  targets: Float32Array | undefined,
  teacher: Float32Array,
  classes: number,
  weight: number,
): Float32Array {
  return blendedTargets(labels, targets, classes, weight, (i, c) => weight * teacher[i * classes + c]);
}

export class Teacher {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly path: string,
    private readonly size: number,
    private readonly channels: number,
    readonly classes: number,
  ) {}

  /**
   * Opens `path` (an adcorre-native .onnx model or ensemble) on the CPU, refusing, under the option 'teacher', a
   * model whose input size, channels or labels differ from the student's.
   */
  static async open(path: string, config: XceptionConfig, labels: string[]): Promise<Teacher> {
    // a regular file only, as every model read (a named pipe or /dev/zero would hang the trainer): OptionError under teacher
    const bytes = readModelFile(path, 'teacher');
    let meta;
    try {
      meta = readMetadata(bytes, path);
    } catch (err) {
      throw new OptionError('teacher', 'an adcorre-native .onnx model', printable(path), (err as Error).message);
    }
    const { size, channels } = meta.input;
    if (size !== config.inputSize || channels !== config.channels)
      throw new OptionError(
        'teacher',
        `a model of the student's input, ${config.inputSize}x${config.inputSize}x${config.channels}`,
        `${printable(path)} (${size}x${size}x${channels})`,
      );
    if (JSON.stringify(meta.labels) !== JSON.stringify(labels))
      throw new OptionError(
        'teacher',
        `a model of the dataset's labels (${labels.join(', ')})`,
        `${printable(path)} (${meta.labels.join(', ')})`,
      );
    const { session } = await openSession(bytes, 'cpu');
    return new Teacher(session, path, size, channels, labels.length);
  }

  /** The teacher's probabilities for n images (n x channels x size x size, as the student's batch). */
  async probs(images: Float32Array, n: number): Promise<Float32Array> {
    const out = await this.session.run({
      image: new ort.Tensor('float32', images, [n, this.channels, this.size, this.size]),
    });
    return Float32Array.from(out.probs.data as Float32Array);
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
