// A configuration file given as arch (adcorre-train --arch my.json), read as every user-named file is.
import { readOptionFileSync } from '../input-file.js';
import { printable } from '../terminal.js';

/** The most bytes a configuration file may have (one is some 200 bytes of JSON). */
const MAX_CONFIG_FILE_BYTES = 2 ** 20;

/**
 * The JSON in a configuration file given as arch: read only when a regular file of at most 1 MiB (a named pipe
 * or /dev/zero would hang the trainer or fill its memory), else an OptionError under arch; a SyntaxError naming
 * the file when it is not JSON.
 */
export function readConfigFile(path: string): unknown {
  const bytes = readOptionFileSync(path, MAX_CONFIG_FILE_BYTES, 'arch', 'a preset or a JSON configuration file');
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new SyntaxError(
      `The configuration file ${printable(path)} given as arch is not valid JSON: ${(err as Error).message}`,
    );
  }
}
