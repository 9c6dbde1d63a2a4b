// Input files the user names (photos, models, dataset images) are read only
// when they are regular files, and only up to the size they had when checked.
// readFile() on /dev/zero grows without end (9.3 GB after 110 s), on a named
// pipe it waits for a writer that never comes, and a device given as a model
// used to be reported as "a folder". So: stat first (opening some devices has
// effects of its own), refuse anything that is not a regular file, naming what
// it is, and refuse a file larger than the caller allows; then open without
// blocking, check that the file opened is the one checked (nothing swapped in
// meanwhile), and read at most its checked size.
import { closeSync, constants, fstatSync, openSync, readSync, type Stats, statSync, lstatSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { errnoText } from './errno.js';
import { formatBytes } from './memory.js';
import { printable } from './terminal.js';
import { OptionError } from './validate.js';

/**
 * The most bytes an image file may have: a 120-megapixel photo (the decoder's
 * pixel limit) uncompressed at 4 bytes per pixel is 458 MiB.
 */
export const MAX_IMAGE_FILE_BYTES = 512 * 2 ** 20;

/** What a path holds, in words ('a character device'). */
export function describeKind(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a folder';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Why an input file cannot be read; `kind` lets each caller word it in its own terms. */
export type InputFileProblemKind = 'missing' | 'folder' | 'not regular' | 'too large' | 'unreadable';

/**
 * An input file that cannot be read: its path, what kind of problem, the reason in words, and what
 * is there instead in a few words ('a folder', 'a character device', 'a file of 3.1 GiB'), for
 * messages of the form "Expected an ONNX model file for --model but received a folder: <path>".
 */
export class InputFileProblem extends Error {
  constructor(
    readonly path: string,
    readonly kind: InputFileProblemKind,
    readonly reason: string,
    readonly found = reason,
  ) {
    super(`${printable(path)}: ${reason}`);
    this.name = 'InputFileProblem';
  }
}

/**
 * A hint for a path Node.js cannot open because its name is not valid UTF-8:
 * Node.js decodes such names (from the command line or a folder's listing)
 * with U+FFFD in place of the bad bytes, and the file by that name does not
 * exist. Empty when the path holds no U+FFFD.
 */
export function notUtf8Hint(path: string): string {
  return path.includes('\ufffd')
    ? ': its name is not valid UTF-8 (shown with \ufffd for the bytes that are not), and Node.js cannot open a file by such a name; rename the file'
    : '';
}

/** A file name's bytes for a message: valid UTF-8 as text, every other byte as \xNN, controls escaped. */
export function printableBytes(name: Uint8Array): string {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let out = '';
  let i = 0;
  while (i < name.length) {
    const b = name[i];
    const length = b < 0x80 ? 1 : b >= 0xf0 && b < 0xf5 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b < 0xe0 ? 2 : 0;
    let text: string | undefined;
    if (length > 0 && i + length <= name.length) {
      try {
        text = decoder.decode(name.subarray(i, i + length));
      } catch {
        text = undefined;
      }
    }
    if (text === undefined) {
      out += `\\x${b.toString(16).padStart(2, '0')}`;
      i++;
    } else {
      out += printable(text);
      i += length;
    }
  }
  return out;
}

/** Whether a name's bytes are valid UTF-8 (else Node.js cannot open the file by its string name). */
export function isUtf8Name(name: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(name);
    return true;
  } catch {
    return false;
  }
}

function errnoReason(err: unknown, path: string): { kind: InputFileProblemKind; reason: string } {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') {
    let dangling = false;
    try {
      dangling = lstatSync(path).isSymbolicLink();
    } catch {
      /* not there at all */
    }
    return {
      kind: 'missing',
      reason: dangling ? 'file not found (a symbolic link that leads nowhere)' : `file not found${notUtf8Hint(path)}`,
    };
  }
  return { kind: 'unreadable', reason: `cannot read it: ${errnoText(err)}` };
}

/** The InputFileProblem for a failed file system call on `path` (an InputFileProblem thrown meanwhile as it is). */
function errnoProblem(err: unknown, path: string): InputFileProblem {
  if (err instanceof InputFileProblem) return err;
  const { kind, reason } = errnoReason(err, path);
  return new InputFileProblem(path, kind, reason);
}

/** The problem with what `st` describes as an input of at most maxBytes, or undefined when it can be read. */
function kindProblem(path: string, st: Stats, maxBytes: number, what: string): InputFileProblem | undefined {
  if (st.isDirectory()) return new InputFileProblem(path, 'folder', 'is a folder', 'a folder');
  if (!st.isFile())
    return new InputFileProblem(path, 'not regular', `${describeKind(st)}, not a regular file`, describeKind(st));
  if (st.size > maxBytes)
    return new InputFileProblem(
      path,
      'too large',
      `${formatBytes(st.size)} (${st.size} bytes), more than the ${formatBytes(maxBytes)} ${what} may have`,
      `a file of ${formatBytes(st.size)}, more than the ${formatBytes(maxBytes)} ${what} may have`,
    );
  return undefined;
}

/**
 * Checks, without opening it, that `path` is a regular file of at most
 * maxBytes (also behind symbolic links); returns its status, or throws an
 * InputFileProblem. `what` names the input in the size message ('an image file').
 */
export function checkInputFile(path: string, maxBytes: number, what = 'an input file'): Stats {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (err) {
    throw errnoProblem(err, path);
  }
  const problem = kindProblem(path, st, maxBytes, what);
  if (problem) throw problem;
  return st;
}

const sameFile = (a: Stats, b: Stats) => b.isFile() && a.dev === b.dev && a.ino === b.ino;
const SWAPPED = 'it was replaced by something else while being opened';

/**
 * A regular file of at most maxBytes opened for reading (see the top of this file), with its checked status;
 * an InputFileProblem otherwise. The caller closes the handle; it reads at most `st.size` bytes (a file growing
 * meanwhile, /proc's or a log, is cut there).
 */
export async function openInputFile(
  path: string,
  maxBytes: number,
  what = 'an input file',
): Promise<{ handle: FileHandle; st: Stats }> {
  const st = checkInputFile(path, maxBytes, what);
  let handle: FileHandle;
  try {
    // non-blocking: a named pipe swapped in after the check opens at once (and is refused below)
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw errnoProblem(err, path);
  }
  try {
    if (!sameFile(st, await handle.stat())) throw new InputFileProblem(path, 'not regular', SWAPPED);
  } catch (err) {
    await handle.close();
    throw errnoProblem(err, path);
  }
  return { handle, st };
}

/**
 * The bytes of a regular file of at most maxBytes (see the top of this file);
 * an InputFileProblem otherwise. Reads at most the size the file had when checked.
 */
export async function readInputFile(path: string, maxBytes: number, what = 'an input file'): Promise<Buffer> {
  const { handle, st } = await openInputFile(path, maxBytes, what);
  try {
    const buffer = Buffer.allocUnsafe(st.size);
    let off = 0;
    while (off < buffer.length) {
      const { bytesRead } = await handle.read(buffer, off, buffer.length - off, off);
      if (bytesRead === 0) break; // shorter now: the decoder sees what is there
      off += bytesRead;
    }
    return off === buffer.length ? buffer : buffer.subarray(0, off);
  } catch (err) {
    throw errnoProblem(err, path);
  } finally {
    await handle.close();
  }
}

/** readInputFile, synchronously (for a model file read once at start). */
export function readInputFileSync(path: string, maxBytes: number, what = 'an input file'): Buffer {
  const st = checkInputFile(path, maxBytes, what);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw errnoProblem(err, path);
  }
  try {
    if (!sameFile(st, fstatSync(fd))) throw new InputFileProblem(path, 'not regular', SWAPPED);
    const buffer = Buffer.allocUnsafe(st.size);
    let off = 0;
    while (off < buffer.length) {
      const n = readSync(fd, buffer, off, Math.min(buffer.length - off, 2 ** 30), off);
      if (n === 0) break;
      off += n;
    }
    return off === buffer.length ? buffer : buffer.subarray(0, off);
  } catch (err) {
    throw errnoProblem(err, path);
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks a path the user named that may be a folder or a regular file (a
 * dataset: a folder or a CSV), without reading it; returns its status, or an
 * InputFileProblem for anything else (a device, a named pipe, a socket).
 */
export function checkFolderOrFile(path: string, maxBytes = Number.MAX_SAFE_INTEGER): Stats {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (err) {
    const { kind, reason } = errnoReason(err, path);
    throw new InputFileProblem(path, kind, kind === 'missing' ? reason.replace('file not found', 'not found') : reason);
  }
  if (st.isDirectory()) return st;
  const problem = kindProblem(path, st, maxBytes, 'it');
  if (problem) throw problem;
  return st;
}

/**
 * An InputFileProblem as a usage error under the option that named the file: "Expected a checkpoint file for
 * --init but received a folder: runs/a" for what is there instead (a folder, a device, a pipe, a file too large),
 * "... but received <path>: file not found" for the rest.
 */
export function inputOptionError(problem: InputFileProblem, option: string, expected: string): OptionError {
  if (problem.kind === 'folder' || problem.kind === 'not regular' || problem.kind === 'too large')
    return new OptionError(option, expected, problem.found, printable(problem.path));
  return new OptionError(option, expected, printable(problem.path), problem.reason);
}

/**
 * readInputFileSync for a file the user named with `option` (`expected`: what it should be, for the message):
 * its bytes, or an OptionError under the option (see inputOptionError).
 */
export function readOptionFileSync(path: string, maxBytes: number, option: string, expected: string): Buffer {
  try {
    return readInputFileSync(path, maxBytes, expected);
  } catch (err) {
    throw err instanceof InputFileProblem ? inputOptionError(err, option, expected) : err;
  }
}
