// The run folder's files: their paths, the checks before a run starts writing there (room, a run already there),
// and one way to write each of them, whose failure says which file, why, and that the last checkpoint is intact.
import { existsSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDir, OutputFolderError, writeFileAtomic } from '../io.js';
import { printable } from '../terminal.js';
import { OptionError } from '../validate.js';
import type { EpochRecord } from './options.js';

/** Where a run keeps its files in its folder `out`. */
export interface RunPaths {
  out: string;
  last: string;
  best: string;
  model: string;
  metrics: string;
  config: string;
  summary: string;
}

export function runPaths(out: string): RunPaths {
  return {
    out,
    last: join(out, 'last.ckpt'),
    best: join(out, 'best.ckpt'),
    model: join(out, 'model.onnx'),
    metrics: join(out, 'metrics.jsonl'),
    config: join(out, 'config.json'),
    summary: join(out, 'summary.json'),
  };
}

/** The room a run needs for its checkpoints (weights + two Adam moments, last and best) and its ONNX model, with some spare. */
export const runFolderBytes = (parameters: number): number => parameters * 4 * 3 * 2 + parameters * 4 * 2 + (16 << 20);

/** Checks that `dir` can take `bytes` more, before an hour of training rather than after. */
export function checkWritable(dir: string, bytes: number, option = 'out'): void {
  ensureDir(dir, option); // fails fast (never hangs) on /proc and the like, or a path under a file
  try {
    const probe = join(dir, `.write-test-${process.pid}`);
    writeFileSync(probe, 'ok');
    rmSync(probe);
  } catch (err) {
    throw new OutputFolderError(
      option,
      dir,
      `not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  try {
    const fs = statfsSync(dir);
    const free = fs.bavail * fs.bsize;
    if (free < bytes)
      throw new OutputFolderError(
        option,
        dir,
        `only ${(free / 2 ** 20).toFixed(0)} MiB free; this run needs about ${(bytes / 2 ** 20).toFixed(0)} MiB for checkpoints and models`,
      );
  } catch (err) {
    if (err instanceof OutputFolderError) throw err;
  }
}

// What makes a folder hold a run: a new run there would overwrite its checkpoints and report its model as its own.
const RUN_MARKERS = ['last.ckpt', 'best.ckpt', 'model.onnx', 'metrics.jsonl', 'summary.json'];
// What force deletes, in this order: the checkpoint first, so that a deletion cut short never leaves a folder that a
// resume would continue with part of its metrics gone (what is left still holds a run: a new run is still refused).
const RUN_FILES = [
  'last.ckpt',
  'summary.json',
  'model.onnx',
  'best.ckpt',
  'metrics.jsonl',
  'loss.png',
  'accuracy.png',
  'confusion.png',
  'config.json',
];

/**
 * Refuses a run folder that holds a run, unless the options say what to do with it: resume continues it (its
 * checkpoint is checked where it is read), force deletes its files (only the run's own: nothing else in the folder).
 * The caller holds the folder's lock, so no trainer is writing there meanwhile.
 */
export function prepareRunFolder(out: string, o: { resume?: boolean; force?: boolean }): void {
  if (o.resume) return;
  const found = RUN_MARKERS.filter((f) => existsSync(join(out, f)));
  if (!found.length) return;
  if (!o.force)
    throw new OptionError(
      'out',
      'a run folder that holds no run yet',
      printable(out),
      `it holds a run (${found.join(', ')}); continue it with --resume, or start over with --force, which deletes that run's files`,
    );
  const leftovers = readdirSync(out).filter((f) => RUN_FILES.some((r) => f.startsWith(`.${r}.`) && f.endsWith('.tmp')));
  for (const f of [...RUN_FILES, ...leftovers]) rmSync(join(out, f), { force: true });
}

/**
 * A resumed run's metrics.jsonl is rewritten from its checkpoint's history: a run stopped between an epoch's record
 * and that epoch's checkpoint (a full disk, a crash) would otherwise list the epoch twice once it is run again.
 */
export function restoreMetrics(path: string, history: EpochRecord[], lastPath: string): void {
  if (!Array.isArray(history)) return;
  writing(path, 'metrics', lastPath, () =>
    writeFileAtomic(path, history.map((h) => `${JSON.stringify(h)}\n`).join('')),
  );
}

/**
 * Runs one write of the run's files. A failure (a full disk, a folder made read-only) names the file and the cause,
 * and, as every file is written atomically, that the last checkpoint before it is intact and can be resumed.
 */
export function writing<T>(path: string, what: string, lastPath: string, write: () => T): T {
  const explain = (err: unknown): Error => {
    const e = err as NodeJS.ErrnoException;
    // writeFileAtomic's errors name the path already: said once
    const message = (e?.message ?? String(err)).replace(`Cannot write ${printable(path)}: `, '');
    // a raw errno error (appendFileSync), or writeFileAtomic's own, which names the path and the errno in brackets
    const full = /^(ENOSPC|EDQUOT)$/.test(e?.code ?? '') || /\((ENOSPC|EDQUOT)\)/.test(message);
    const cause =
      e?.code === 'ENOSPC'
        ? 'no space left on the device (ENOSPC)'
        : e?.code === 'EDQUOT'
          ? 'disk quota exceeded (EDQUOT)'
          : message;
    const next = existsSync(lastPath)
      ? `; the last checkpoint, ${printable(lastPath)}, is intact: ${full ? 'free some space' : 'fix that'}, then continue with --resume`
      : '';
    // a plain Error, also for writeFileAtomic's usage errors: a write failing in the middle of a run is no usage error
    return new Error(`Cannot write the ${what} ${printable(path)}: ${cause}${next}`);
  };
  let result: T;
  try {
    result = write();
  } catch (err) {
    throw explain(err);
  }
  if (result instanceof Promise)
    return result.catch((err) => {
      throw explain(err);
    }) as T;
  return result;
}
