// The readers' own files (label lists, CSV files, face boxes) are read only
// when they are regular files, as the images are (lib/input-file.ts): a named
// pipe called label.csv would block the reader forever, a link to /dev/zero
// would be read until memory runs out. And what the readers say about a
// dataset shows its paths through printable(): a file name may hold escape
// sequences or newlines.
import { closeSync, constants, openSync, readSync, type Stats } from 'node:fs';
import { checkFolderOrFile, checkInputFile, InputFileProblem, readInputFileSync } from '../../input-file.js';
import { printable } from '../../terminal.js';
import { OptionError } from '../../validate.js';
import type { SkipReport, SkipSummary } from '../skips.js';
import { DataError } from '../skips.js';

/** The most bytes a label list or box file may have (FER+'s label.csv files are under 2 MB). */
export const MAX_TEXT_FILE_BYTES = 256 * 2 ** 20;

function dataError(err: unknown, what: string): unknown {
  return err instanceof InputFileProblem
    ? new DataError(`${what} ${printable(err.path)}: ${err.reason}`, err.path)
    : err;
}

/** Checks, without reading it, that a dataset file is a regular file; a DataError naming `what` otherwise. */
export function checkDataFile(path: string, what: string): void {
  try {
    checkInputFile(path, Number.MAX_SAFE_INTEGER, what);
  } catch (err) {
    throw dataError(err, what);
  }
}

/** A dataset's text file (a label list), read only when it is a regular file. */
export function readDataText(path: string, what: string): string {
  try {
    return readInputFileSync(path, MAX_TEXT_FILE_BYTES, what).toString('utf8');
  } catch (err) {
    throw dataError(err, what);
  }
}

/**
 * Checks, without reading it, that a dataset path is a folder or a regular file (its status), else a DataError
 * naming it: a named pipe or a device given as a dataset would be waited on or read forever.
 */
export function checkDatasetSource(path: string): Stats {
  try {
    return checkFolderOrFile(path);
  } catch (err) {
    throw dataError(err, 'the dataset');
  }
}

/** The first `bytes` bytes of a regular file as text; '' for anything else (used to recognise a format). */
export function readDataHead(path: string, bytes = 4096): string {
  try {
    checkInputFile(path, Number.MAX_SAFE_INTEGER);
    const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const buffer = Buffer.alloc(bytes);
      return buffer.subarray(0, readSync(fd, buffer, 0, bytes, 0)).toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** A skip report's lines as one line (for an error message), each line through printable(). */
export function reportLine(report: SkipReport): string {
  return report
    .format()
    .split('\n')
    .map((l) => printable(l.trim()))
    .join('; ');
}

/**
 * A dataset path the user named (`option`: '--data', '<path>'): a folder or a
 * regular file (a CSV), checked before any reader opens it; a device or a
 * named pipe (a reader would wait on it or read it forever) is an OptionError
 * naming the option. A path that does not exist is left to openDataset, whose
 * message says what was looked for.
 */
export function checkDatasetPath(path: string, option: string, expected = 'a dataset folder or CSV file'): void {
  try {
    checkFolderOrFile(path);
  } catch (err) {
    if (!(err instanceof InputFileProblem)) throw err;
    if (err.kind === 'missing') return;
    throw new OptionError(option, expected, err.found, printable(path));
  }
}

/** A CSV file the user named (`--fer2013`): as checkDatasetPath, and a folder is refused too. */
export function checkCsvPath(path: string, option: string): void {
  try {
    checkInputFile(path, Number.MAX_SAFE_INTEGER);
  } catch (err) {
    if (!(err instanceof InputFileProblem)) throw err;
    if (err.kind === 'missing') return;
    throw new OptionError(option, 'a CSV file', err.found, printable(path));
  }
}

/**
 * A skip summary for a terminal: its examples (which hold file names, and
 * details that may quote them) and reasons through printable(). --json output
 * keeps the summary as it is.
 */
export function printableSummary(summary: SkipSummary): SkipSummary {
  return {
    skipped: summary.skipped,
    excluded: Object.fromEntries(Object.entries(summary.excluded).map(([what, n]) => [printable(what), n])),
    examples: Object.fromEntries(
      Object.entries(summary.examples).map(([reason, list]) => [reason, (list ?? []).map((e) => printable(e))]),
    ),
  };
}
