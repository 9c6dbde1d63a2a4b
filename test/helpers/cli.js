// Running the command-line tools from the tests: every run has a deadline, so a regression to a hang (or to
// reading /dev/zero) fails the test instead of stalling the suite, and the result is data, never a rejection.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/** The path of bin/<name>.js. */
export const bin = (name) => new URL(`../../bin/${name}.js`, import.meta.url).pathname;

/**
 * Runs `file` with `args`, killed (SIGKILL) after `timeout` ms: { code, stdout, stderr }, code 0 on success, the
 * exit code or signal otherwise, 'killed (timeout)' at the deadline. `env`: the environment (default: this one's).
 */
export const run = (file, args, timeout = 60_000, env = process.env) =>
  promisify(execFile)(file, args, { timeout, killSignal: 'SIGKILL', env, maxBuffer: 64 * 2 ** 20 }).then(
    (r) => ({ code: 0, ...r }),
    (e) => ({ code: e.killed ? 'killed (timeout)' : (e.code ?? e.signal), stdout: e.stdout, stderr: e.stderr }),
  );

/** Runs bin/<name>.js under Node.js as `run` does. */
export const cli = (name, args, timeout = 60_000, env = process.env) =>
  run(process.execPath, [bin(name), ...args], timeout, env);

/** Fails when `stderr` holds a stack trace (a tool's errors are messages, never traces). */
export const noStack = (t, stderr) => t.notRegex(stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
