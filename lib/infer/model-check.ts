// A model file is untrusted input, as much as a photo: its metadata's label
// names reach the terminal (adcorre-predict's rows, adcorre-eval's table), key
// the probabilities of every prediction, and its graph computes whatever it
// computes. FER.load() and adcorre-eval read models through here, so that a
// model with labels that would clear the screen, forge result rows or lose a
// class in `probabilities` is refused when it is loaded, and a model that
// answers NaN is reported as broken instead of printing `neutral NaN%`.
import { readOptionFileSync } from '../input-file.js';
import { isPrintable, printable } from '../terminal.js';

/** ONNX files are protocol buffers, which hold at most 2 GiB. */
export const MAX_MODEL_FILE_BYTES = 2 ** 31 - 1;

/** A label name longer than this is not a class name (and would break every table). */
export const MAX_LABEL_LENGTH = 64;

/**
 * The bytes of a model file the user named with `option` ('model' in the API,
 * '--model' on the command line): a regular file of at most 2 GiB, else an
 * OptionError naming the option and what the path holds (a folder, a device, a
 * named pipe). A missing file is left to the caller, whose message knows the
 * bundled models.
 */
export function readModelFile(path: string, option: string): Buffer {
  return readOptionFileSync(path, MAX_MODEL_FILE_BYTES, option, 'an ONNX model file');
}

/** Thrown when a model's metadata or output cannot be used: the model is broken, not the input. */
export class ModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelError';
  }
}

/**
 * Refuses label names that cannot be shown or told apart: each must be a
 * non-empty string of at most MAX_LABEL_LENGTH printable characters (no
 * control, escape or bidirectional-override characters: see lib/terminal.ts),
 * not blank, with no space at either end, and no two the same (a duplicate
 * silently drops a class from `probabilities`).
 */
export function checkLabels(labels: readonly unknown[], model: string): void {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  labels.forEach((label, i) => {
    if (typeof label !== 'string') {
      problems.push(`label ${i} is not a string`);
      return;
    }
    const shown = `label ${i} "${printable(label.length > MAX_LABEL_LENGTH ? `${label.slice(0, MAX_LABEL_LENGTH)}...` : label)}"`;
    if (label.trim() === '') problems.push(`label ${i} is empty or blank`);
    else if (!isPrintable(label)) problems.push(`${shown} holds control or text-direction characters`);
    else if (label.length > MAX_LABEL_LENGTH) problems.push(`${shown} is longer than ${MAX_LABEL_LENGTH} characters`);
    else if (label !== label.trim()) problems.push(`${shown} begins or ends with a space`);
    const first = seen.get(label);
    if (first !== undefined) problems.push(`${shown} is also label ${first}'s name`);
    else seen.set(label, i);
  });
  if (problems.length)
    throw new ModelError(
      `${printable(model)}: the model's metadata names classes that cannot be used: ${problems.join('; ')} ` +
        '(label names must be distinct, printable, at most 64 characters; export the model again with usable labels)',
    );
}

/**
 * Refuses a model's output that is not a probability (NaN, infinity, outside
 * [0, 1]): a model whose weights or graph are broken answers so for every
 * image, and a NaN compares false with everything, so it would print as
 * `neutral NaN%` or count as class 0 in an evaluation.
 */
export function checkProbabilities(
  probs: Float32Array,
  count: number,
  labels: readonly string[],
  model: string,
  output = 'probs',
): void {
  const C = labels.length;
  for (let i = 0; i < count * C; i++) {
    const p = probs[i];
    if (Number.isFinite(p) && p >= -1e-3 && p <= 1 + 1e-3) continue;
    throw new ModelError(
      `${printable(model)}: the model output ${p} as the probability of '${printable(labels[i % C])}' ` +
        `(image ${Math.floor(i / C) + 1} of ${count} in its batch); a probability is a number in [0, 1], so the ` +
        `model is broken (its '${output}' output holds ${Number.isNaN(p) ? 'NaN' : Number.isFinite(p) ? 'values outside [0, 1]' : 'infinity'}): ` +
        'export it again from a checkpoint whose training did not diverge',
    );
  }
}

/** Refuses embeddings that are not finite numbers (with `embeddings: true`), as checkProbabilities. */
export function checkEmbeddings(emb: Float32Array, model: string): void {
  for (let i = 0; i < emb.length; i++)
    if (!Number.isFinite(emb[i]))
      throw new ModelError(
        `${printable(model)}: the model output ${emb[i]} in its 'embeddings' (value ${i}); the model is broken: ` +
          'export it again from a checkpoint whose training did not diverge',
      );
}
