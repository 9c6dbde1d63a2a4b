// The plain words for a failed file system call, one table for the output
// (lib/io.ts) and input (lib/input-file.ts) rules.

/** What went wrong, in words, with the code: 'permission denied (EACCES)'; the error's message for other codes. */
export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const why: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
    EFBIG: 'the file is too large for the file system',
    EIO: 'input/output error',
    EISDIR: 'it is a folder',
    ENOTDIR: 'a part of the path is a file, not a folder',
    ELOOP: 'too many symbolic links (a link loop)',
    ENAMETOOLONG: 'the name is too long',
    ENOENT: 'a part of the path cannot be created',
  };
  return e?.code ? `${why[e.code] ?? e.message} (${e.code})` : String((err as Error)?.message ?? err);
}
