// File helpers: files written atomically (a temporary file beside the target,
// flushed to disk, then renamed over it, so a crash never leaves a
// half-written file), and output files and folders checked before any work and
// created without hanging: the one home for the rules on output paths (input
// files: lib/input-file.ts).
//
// Output files: what exists at the path must be a regular file (it is
// replaced) or nothing (it is created). A folder, device, named pipe or socket
// there is refused: renaming over it would put a file in place of /dev/null
// when run as root. A symbolic link to a regular file is written through: the
// link stays and its target is replaced, atomically, by a temporary file
// written beside the target (the link is how the user named that file). A
// link to anything else, or to nothing, is refused. An output that is one of
// the command's inputs (the same file, by any name or link) is refused, as
// writing it would destroy what is being read.
import {
  accessSync,
  closeSync,
  constants,
  fchmodSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  type Stats,
  statfsSync,
  statSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { errnoText } from './errno.js';
import { describeKind } from './input-file.js';
import { printable } from './terminal.js';

/**
 * An output path refused: the option (parameter or flag) it was given for,
 * the path the user gave, what was expected there and why it does not do.
 */
export class OutputPathError extends Error {
  constructor(
    readonly option: string,
    readonly path: string,
    readonly reason: string,
    private readonly expected: string,
  ) {
    super('');
    this.message = this.messageFor(option);
    this.name = 'OutputPathError';
  }

  /** The message under another name for the option (the flag the user typed). */
  messageFor(option: string): string {
    return `Expected ${this.expected} for ${option} but received ${printable(this.path)}: ${printable(this.reason)}`;
  }
}

/** The error of checkOutputFile and writeFileAtomic: the option, the path the user gave, and why it cannot be written. */
export class OutputFileError extends OutputPathError {
  constructor(option: string, path: string, reason: string) {
    super(option, path, reason, 'a file that can be written');
    this.name = 'OutputFileError';
  }
}

const ONLY_REGULAR = 'only regular files are written: name a new file, or an existing regular file to replace';

/**
 * The file a write to `path` replaces (absolute): `path` itself, or the
 * target of a symbolic link to a regular file (written through, see the top
 * of this file), with what is there now (undefined: nothing, it is created).
 * Anything else there is refused through `fail`.
 */
function outputTarget(path: string, fail: (reason: string) => Error): { target: string; st?: Stats } {
  const abs = resolve(path);
  let st: Stats | undefined;
  try {
    st = lstatSync(abs, { throwIfNoEntry: false });
  } catch (err) {
    throw fail(`cannot inspect it: ${errnoText(err)}`);
  }
  if (!st) {
    // 'out/' names a folder: never create a file called 'out' for it
    if (/[/\\]$/.test(path)) throw fail('it ends with a slash, which names a folder: name a file');
    return { target: abs };
  }
  if (st.isSymbolicLink()) {
    let real: string;
    try {
      real = realpathSync(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw fail(`it is a symbolic link that cannot be followed: ${errnoText(err)}`);
      let to = '';
      try {
        to = ` to ${printable(readlinkSync(abs))}`;
      } catch {
        /* named without its target */
      }
      throw fail(`it is a symbolic link${to}, which does not exist: remove the link, or name the file itself`);
    }
    const target = statSync(real);
    if (!target.isFile())
      throw fail(`it is a symbolic link to ${printable(real)}, ${describeKind(target)}; ${ONLY_REGULAR}`);
    return { target: real, st: target };
  }
  if (st.isDirectory()) throw fail('it is a folder: name a file in it');
  if (!st.isFile()) throw fail(`it is ${describeKind(st)}; ${ONLY_REGULAR}`);
  return { target: abs, st };
}

/**
 * Checks, before any work, an output file the user named with `option`, and
 * returns the absolute path to write (a link's target: links are written
 * through). Creates its folder (ensureDir: OutputFolderError naming the
 * option); refuses with an OutputFileError naming the option what exists there
 * and is not a regular file (a folder, a device, a named pipe, a socket, a
 * link to one or to nothing), the same file as any of `inputs` (by path,
 * through links, or by device and inode: hard links, bind mounts), and a
 * folder that takes no new file (read-only file system, no permission).
 */
export function checkOutputFile(path: string, option: string, inputs: readonly string[] = []): string {
  if (typeof path !== 'string' || path === '')
    throw new OutputFileError(option, JSON.stringify(path) ?? String(path), 'expected a file path');
  const fail = (reason: string) => new OutputFileError(option, path, reason);
  ensureDir(dirname(resolve(path)), option);
  const { target, st } = outputTarget(path, fail);
  if (st) {
    for (const input of inputs) {
      let real: string, same: Stats;
      try {
        real = realpathSync(input);
        same = statSync(real);
      } catch {
        continue; // an input that cannot be read is reported when it is read
      }
      if (real === target || (same.dev === st.dev && same.ino === st.ino)) {
        const alias = resolve(input) === resolve(path) ? '' : ' (the same file under another name)';
        throw fail(
          `it is the input ${printable(input)}${alias}: writing it would destroy what is read; name another file`,
        );
      }
    }
  }
  const folder = dirname(target);
  try {
    accessSync(folder, constants.W_OK);
  } catch (err) {
    throw fail(`its folder ${printable(folder)} takes no files: ${errnoText(err)}`);
  }
  return target;
}

/**
 * Writes `data` to `path` atomically: a temporary file beside the file
 * replaced, flushed, then renamed over it. `path` must hold a regular file, a
 * link to one (written through) or nothing. Every error names `path` (never
 * the temporary file), as an OutputFileError under `option` when given (the
 * flag the user typed: a usage error) and a plain Error otherwise.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string, option?: string): void {
  const fail = (reason: string): Error =>
    option === undefined
      ? new Error(`Cannot write ${printable(path)}: ${reason}`)
      : new OutputFileError(option, path, reason);
  const { target, st } = outputTarget(path, fail);
  const folder = dirname(target);
  const tmp = join(folder, `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number;
  try {
    fd = openSync(tmp, 'wx'); // a new file: never opened through a link planted under the temporary name
  } catch (err) {
    throw fail(`cannot create a file in ${printable(folder)}: ${errnoText(err)}`);
  }
  try {
    if (st) {
      try {
        fchmodSync(fd, st.mode & 0o777); // the replaced file's permissions
      } catch {
        /* file systems without modes (FAT) */
      }
    }
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw fail(`writing failed: ${errnoText(err)}`);
  }
  closeSync(fd);
  // Checked again right before the rename: what is at the path may have
  // changed since (a device node put there meanwhile), and rename(2) replaces
  // any file that is not a folder, a device included.
  let refused: Error | undefined;
  try {
    const now = lstatSync(target, { throwIfNoEntry: false });
    const where = target === resolve(path) ? 'it' : printable(target);
    if (now && !now.isFile()) refused = fail(`${where} is ${describeKind(now)} now; ${ONLY_REGULAR}`);
    else renameSync(tmp, target);
  } catch (err) {
    refused = fail(`cannot replace it: ${errnoText(err)}`);
  }
  if (refused) {
    rmSync(tmp, { force: true });
    throw refused;
  }
}

/**
 * Why `name` cannot be one file or folder name inside an output folder (a manifest's split column used as a
 * folder: '../../escaped' would write outside it), or undefined when it can.
 */
export function unusableName(name: string): string | undefined {
  if (name === '') return 'an empty name';
  if (name === '.' || name === '..') return `'${name}' names a folder itself or the one above, not one inside`;
  if (/[/\\]/.test(name)) return 'it holds a slash (one name, not a path)';
  if (name.includes('\0')) return 'it holds a NUL character';
  if (Buffer.byteLength(name) > 255) return 'it is longer than the 255 bytes a file name may have';
  return undefined;
}

/**
 * `root` joined with `names`, each one name (unusableName): a path inside root, never outside it; an Error
 * naming the name that cannot be used otherwise.
 */
export function pathInside(root: string, ...names: string[]): string {
  for (const name of names) {
    const why = unusableName(name);
    if (why) throw new Error(`'${printable(name)}' cannot be a name in ${printable(root)}: ${why}`);
  }
  return join(root, ...names);
}

// File systems that hold no files: writing under them hangs or fails in odd
// ways (Node 20's recursive mkdirSync never returns for a path under /proc).
const VIRTUAL_FILE_SYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x1cd1, 'devpts'],
  [0x6e736673, 'nsfs'],
  [0xcafe4a11, 'bpf'],
  [0x42494e4d, 'binfmt_misc'],
  [0x19800202, 'mqueue'],
  [0xf97cff8c, 'selinuxfs'],
  [0x65735546, 'fusectl'],
  [0x67596969, 'rpc_pipefs'],
  [0x6165676c, 'pstore'],
  [0xde5e81e4, 'efivarfs'],
  [0x50494646, 'pipefs'],
  [0x534f434b, 'sockfs'],
]);
const VIRTUAL_PREFIXES = ['/proc', '/sys'];

/** The error of ensureDir: names the folder's parameter (or flag), what was expected and what was received. */
export class OutputFolderError extends OutputPathError {
  constructor(option: string, path: string, reason: string) {
    super(option, path, reason, 'a folder that can hold files');
    this.name = 'OutputFolderError';
  }
}

/**
 * Makes sure `dir` is a folder that can take files, creating it (and its
 * missing parents) one level at a time, and returns its absolute path.
 * Fails at once with an OutputFolderError naming `option` for a path on a
 * virtual file system (/proc, /sys, ...: never a recursive mkdir there), under
 * a file, or that cannot be created; never hangs.
 */
export function ensureDir(dir: string, option = 'the output folder'): string {
  if (typeof dir !== 'string' || dir === '')
    throw new OutputFolderError(option, JSON.stringify(dir) ?? String(dir), 'expected a folder path');
  const abs = resolve(dir);
  const fail = (reason: string) => new OutputFolderError(option, dir, reason);
  for (const prefix of VIRTUAL_PREFIXES) {
    if (abs === prefix || abs.startsWith(`${prefix}/`))
      throw fail(`${prefix} is a virtual file system of the kernel, not storage`);
  }
  // the nearest folder that exists, and the levels to create under it
  const missing: string[] = [];
  let existing = abs;
  for (;;) {
    let st;
    try {
      st = statSync(existing, { throwIfNoEntry: false });
    } catch (err) {
      // ENOTDIR: a file further up, which the next level finds and names
      if ((err as NodeJS.ErrnoException).code !== 'ENOTDIR')
        throw fail(`cannot inspect ${existing}: ${errnoText(err)}`);
    }
    if (st) {
      if (!st.isDirectory()) throw fail(existing === abs ? 'it is a file' : `${existing} is a file, not a folder`);
      break;
    }
    const parent = dirname(existing);
    if (parent === existing) throw fail('no part of the path exists');
    missing.unshift(existing);
    existing = parent;
  }
  let type: number | undefined;
  try {
    type = Number(statfsSync(existing).type);
  } catch {
    type = undefined; // statfs unsupported: the mkdir below still fails fast
  }
  const virtual = type === undefined ? undefined : VIRTUAL_FILE_SYSTEMS.get(type);
  if (virtual) throw fail(`${existing} is on a virtual file system (${virtual}), not storage`);
  for (const level of missing) {
    try {
      mkdirSync(level); // one level, never recursive
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && statSync(level, { throwIfNoEntry: false })?.isDirectory())
        continue; // made by someone else meanwhile
      throw fail(`cannot create ${level}: ${errnoText(err)}`);
    }
  }
  return abs;
}
