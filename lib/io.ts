// File helpers: files written atomically (a temporary file beside the target,
// flushed to disk, then renamed over it, so a crash never leaves a
// half-written file), and output folders checked and created without hanging.
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
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
export class OutputFolderError extends Error {
  constructor(
    readonly option: string,
    readonly path: string,
    readonly reason: string,
  ) {
    super(`Expected a folder that can hold files for ${option} but received ${path}: ${reason}`);
    this.name = 'OutputFolderError';
  }
}

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const why: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on the device',
    ENOTDIR: 'a part of the path is a file, not a folder',
    ELOOP: 'too many symbolic links (a link loop)',
    ENAMETOOLONG: 'the name is too long',
    ENOENT: 'a part of the path cannot be created',
  };
  return e.code ? `${why[e.code] ?? e.message} (${e.code})` : String((err as Error).message ?? err);
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
