// One trainer per run folder. Two trainers writing the same checkpoints and
// metrics would each overwrite the other's last.ckpt and interleave their
// epochs in metrics.jsonl, and both would report success. A trainer holds
// <out>/train.lock while it uses the folder: created exclusively (O_EXCL, so
// of two trainers starting at once exactly one gets it), holding the owner's
// PID, host name and start time, and removed on every way out (return,
// error, Ctrl-C, process.exit). A lock whose owner is gone (killed, crashed,
// the machine restarted) is stale and taken over; one held by a process on
// another host cannot be checked from here and is left to the user.
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { InputFileProblem, readInputFileSync } from '../input-file.js';
import { printable } from '../terminal.js';
import { OptionError } from '../validate.js';

export const LOCK_FILE = 'train.lock';

/** What train.lock holds. */
export interface LockOwner {
  pid: number;
  hostname: string;
  /** when the lock was taken (ISO 8601) */
  started: string;
  /** tells this lock from a later one of the same PID (PIDs are reused, often within a container) */
  token: string;
}

export interface RunLock {
  readonly path: string;
  readonly owner: LockOwner;
  /** Removes the lock if it is still this one; safe to call more than once. */
  release(): void;
}

// the tokens of the locks this process holds: a lock with our own PID but another token is a dead predecessor's
const held = new Set<string>();

// a lock file younger than this that cannot be read yet may be one being written (between its creation and its write)
const WRITING_GRACE_MS = 5000;

/** Whether a process of this PID exists (EPERM: it does, under another user). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * When the process of this PID started, in ms since the epoch, from Linux's /proc (undefined elsewhere): a
 * process that started after the lock was taken reuses a dead owner's PID.
 */
function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count fields after its closing parenthesis
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]); // field 22, starttime, in clock ticks since boot
    const boot = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    if (!boot || !Number.isFinite(ticks)) return undefined;
    return (Number(boot[1]) + ticks / 100) * 1000; // USER_HZ is 100 on every Linux that Node runs on
  } catch {
    return undefined;
  }
}

/** A lock file's text, read only when a regular file of at most 64 kB (one is some 150 bytes). */
const readLock = (path: string) => readInputFileSync(path, 2 ** 16, 'a lock file').toString('utf8');

function readOwner(path: string): { text: string; owner: LockOwner | null; ageMs: number } | null {
  let text: string, ageMs: number;
  try {
    ageMs = Date.now() - statSync(path).mtimeMs;
    text = readLock(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null; // released meanwhile
    if (err instanceof InputFileProblem) {
      if (err.kind === 'missing') return null;
      // a named pipe or a device put there would be waited on or read forever
      throw new Error(`The run folder's lock ${printable(path)} is ${err.found}, not a lock file: remove it`);
    }
    throw err;
  }
  try {
    const o = JSON.parse(text) as LockOwner;
    if (Number.isInteger(o.pid) && o.pid > 0 && typeof o.hostname === 'string') return { text, owner: o, ageMs };
  } catch {
    // not JSON: being written, or damaged
  }
  return { text, owner: null, ageMs };
}

/** Why this lock is stale, or null while its owner may still be running. */
function staleReason(found: { owner: LockOwner | null; ageMs: number }): string | null {
  const o = found.owner;
  if (!o) return found.ageMs > WRITING_GRACE_MS ? 'it is damaged (not a lock this package wrote)' : null;
  if (o.hostname !== hostname()) return null; // another machine's process: cannot be checked from here
  if (o.pid === process.pid) return held.has(o.token) ? null : 'its owner was an earlier process with this PID';
  if (!processExists(o.pid)) return `process ${o.pid} is gone`;
  const start = processStart(o.pid);
  const taken = Date.parse(o.started);
  // 2 s of slack: the start time is rounded to clock ticks and the clock may have been adjusted
  if (start !== undefined && Number.isFinite(taken) && start > taken + 2000)
    return `process ${o.pid} is another program that started after the lock was taken`;
  return null;
}

function describeOwner(o: LockOwner | null, path: string): string {
  if (!o) return `${printable(path)} is being created by another trainer`;
  const where = o.hostname === hostname() ? '' : ` on ${printable(o.hostname)}`;
  const what = o.pid === process.pid ? 'another Trainer in this process' : `process ${o.pid}${where}`;
  return `${what} has been training there since ${printable(String(o.started))} (${printable(path)})`;
}

/** Creates the lock file exclusively; false when one exists. */
function create(path: string, owner: LockOwner): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new Error(`Cannot create the run folder's lock ${printable(path)}: ${(err as Error).message}`);
  }
  try {
    writeSync(fd, `${JSON.stringify(owner)}\n`);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw new Error(`Cannot write the run folder's lock ${printable(path)}: ${(err as Error).message}`);
  }
  closeSync(fd);
  return true;
}

/**
 * Removes a stale lock, unless another trainer replaced it meanwhile: it is first renamed aside (atomic, so two
 * trainers cannot both take the same stale lock), then deleted if it is still the stale one, else put back.
 */
function removeStale(path: string, staleText: string): void {
  const aside = `${path}.stale-${process.pid}-${randomUUID()}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // someone else removed it
    throw err;
  }
  let text = '';
  try {
    text = readLock(aside);
  } catch {
    // unreadable: treated as not the stale one, put back below
  }
  if (text !== staleText) {
    try {
      linkSync(aside, path); // put back; fails if a third trainer has taken the name meanwhile, which then owns it
    } catch {
      // keep the third trainer's lock
    }
  }
  rmSync(aside, { force: true });
}

/**
 * Takes `dir`'s lock, or throws an OptionError naming `option` (the run folder's parameter or flag) with who holds
 * it. A stale lock (its process gone) is taken over.
 */
export function acquireRunLock(dir: string, option = 'out'): RunLock {
  const path = join(dir, LOCK_FILE);
  const owner: LockOwner = {
    pid: process.pid,
    hostname: hostname(),
    started: new Date().toISOString(),
    token: randomUUID(),
  };
  for (let attempt = 0; attempt < 10; attempt++) {
    if (create(path, owner)) return holding(path, owner);
    const found = readOwner(path);
    if (!found) continue; // released between our attempt and the read: try again
    if (!staleReason(found))
      throw new OptionError(
        option,
        'a run folder that no other trainer is using',
        printable(dir),
        `${describeOwner(found.owner, path)}; wait for it to finish or stop it, or choose another run folder` +
          (found.owner && found.owner.hostname !== hostname()
            ? ` (if that trainer no longer runs, delete ${printable(path)})`
            : ''),
      );
    removeStale(path, found.text);
  }
  throw new OptionError(
    option,
    'a run folder that no other trainer is using',
    printable(dir),
    `its lock ${printable(path)} keeps changing hands`,
  );
}

function holding(path: string, owner: LockOwner): RunLock {
  held.add(owner.token);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.removeListener('exit', release);
    held.delete(owner.token);
    try {
      // only our own lock: never one a later trainer took over
      if (readOwner(path)?.owner?.token === owner.token) rmSync(path, { force: true });
    } catch {
      // nothing more can be done on the way out; a lock left behind is found stale next time
    }
  };
  // process.exit() (a second Ctrl-C) skips every finally: the 'exit' event still runs, synchronously
  process.on('exit', release);
  return { path, owner, release };
}
