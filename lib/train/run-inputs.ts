// The files a run reads that the user named (--data, --fer2013, --init, --teacher), checked when the trainer is
// made: before the run folder is locked, the data read or anything written, a named pipe (which would be waited on
// with the lock held), a device or a folder where a file belongs is a usage error naming the option. Each is read
// later through lib/input-file.ts, which checks again.
import { checkCsvPath, checkDatasetPath } from '../data/readers/files.js';
import { MAX_MODEL_FILE_BYTES } from '../infer/model-check.js';
import { checkInputFile, InputFileProblem, inputOptionError } from '../input-file.js';
import { MAX_CHECKPOINT_BYTES } from './checkpoint.js';

/** What --init must be, for its messages. */
export const INIT_FILE = 'a checkpoint (.ckpt) or model (.onnx) file';

/** A file named by `option` that must be a regular file of at most maxBytes: else an OptionError under it. */
function checkFileOption(path: string, option: string, expected: string, maxBytes: number): void {
  try {
    checkInputFile(path, maxBytes, expected);
  } catch (err) {
    throw err instanceof InputFileProblem ? inputOptionError(err, option, expected) : err;
  }
}

/** Checks --data, --fer2013, --init and --teacher (see the top of this file). */
export function checkRunInputs(o: { data: string; fer2013?: string; init?: string; teacher?: string }): void {
  checkDatasetPath(o.data, 'data');
  if (o.fer2013 !== undefined) checkCsvPath(o.fer2013, 'fer2013');
  if (o.init !== undefined) checkFileOption(o.init, 'init', INIT_FILE, MAX_CHECKPOINT_BYTES);
  if (typeof o.teacher === 'string') checkFileOption(o.teacher, 'teacher', 'an ONNX model file', MAX_MODEL_FILE_BYTES);
}
