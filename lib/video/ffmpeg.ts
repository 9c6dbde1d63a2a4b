// The system's ffmpeg and ffprobe (Debian package `ffmpeg`): found through
// ADCORRE_FFMPEG / ADCORRE_FFPROBE or on PATH, and always spawned without a
// shell, from an argument array. Inputs reach them only as an open file
// descriptor of a regular file checked here (lib/input-file.ts's rules: never
// a device or a named pipe, never a file swapped in after the check), read
// through the `file` protocol alone: -protocol_whitelist file,pipe keeps a
// crafted playlist or concat list from making ffmpeg open URLs.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, closeSync, constants, fstatSync, openSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { errnoText } from '../errno.js';
import { checkInputFile, InputFileProblem } from '../input-file.js';
import { printable } from '../terminal.js';

export type VideoTool = 'ffmpeg' | 'ffprobe';

const ENV: Record<VideoTool, string> = { ffmpeg: 'ADCORRE_FFMPEG', ffprobe: 'ADCORRE_FFPROBE' };

/** The arguments every run starts with: quiet but for errors, never reading the terminal, local files and pipes only. */
export const COMMON_ARGS = ['-hide_banner', '-loglevel', 'error', '-protocol_whitelist', 'file,pipe'];

/** ffmpeg or ffprobe cannot be found or run: what was looked for, where, and how to install it. */
export class FfmpegMissingError extends Error {
  constructor(
    readonly tool: VideoTool,
    detail: string,
  ) {
    super(
      `${tool} is needed for video and ${detail}. Install it (Debian, Ubuntu: apt-get install ffmpeg; macOS: ` +
        `brew install ffmpeg), or name the program with ${ENV[tool]}=/path/to/${tool}`,
    );
    this.name = 'FfmpegMissingError';
  }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The path of ffmpeg or ffprobe: the environment variable's when set (it must name an executable
 * file), else, for ffprobe, the one beside ADCORRE_FFMPEG, else the first on PATH.
 * An FfmpegMissingError otherwise.
 */
export function findTool(tool: VideoTool, env: NodeJS.ProcessEnv = process.env): string {
  const named = env[ENV[tool]];
  if (named) {
    if (executable(named)) return named;
    throw new FfmpegMissingError(tool, `${ENV[tool]} names ${printable(named)}, which is not an executable file`);
  }
  if (tool === 'ffprobe' && env.ADCORRE_FFMPEG) {
    const beside = join(dirname(env.ADCORRE_FFMPEG), 'ffprobe');
    if (executable(beside)) return beside;
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, tool);
    if (executable(candidate)) return candidate;
  }
  throw new FfmpegMissingError(tool, 'was not found on PATH');
}

/** Both tools, or the FfmpegMissingError of the first missing: checked before any video is opened. */
export function findTools(env: NodeJS.ProcessEnv = process.env): Record<VideoTool, string> {
  return { ffmpeg: findTool('ffmpeg', env), ffprobe: findTool('ffprobe', env) };
}

/**
 * A video file opened for a child process: a regular file (an InputFileProblem otherwise), its
 * descriptor checked to be the file checked, and the name the child reads it by (`file:/dev/fd/3`,
 * the descriptor passed as the child's fd 3, so the child reads exactly what was checked).
 */
export function openVideoFile(path: string): { fd: number; input: string; close: () => void } {
  const st = checkInputFile(path, Number.MAX_SAFE_INTEGER, 'a video file');
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new InputFileProblem(path, 'unreadable', `cannot read it: ${errnoText(err)}`);
  }
  const now = fstatSync(fd);
  if (!now.isFile() || now.dev !== st.dev || now.ino !== st.ino) {
    closeSync(fd);
    throw new InputFileProblem(path, 'not regular', 'it was replaced by something else while being opened');
  }
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    closeSync(fd);
  };
  return { fd, input: 'file:/dev/fd/3', close };
}

/** Spawns a tool (no shell) with the file's descriptor as its fd 3. A spawn failure ends as an FfmpegMissingError. */
export function spawnTool(path: string, args: string[], fd?: number): ChildProcess {
  const stdio: ('pipe' | 'ignore' | number)[] = ['pipe', 'pipe', 'pipe'];
  if (fd !== undefined) stdio.push(fd);
  return spawn(path, args, { stdio, shell: false, windowsHide: true });
}

/** The spawn error of a tool that could not be started, as an FfmpegMissingError naming it. */
export function spawnFailure(tool: VideoTool, path: string, err: Error): FfmpegMissingError {
  return new FfmpegMissingError(tool, `${printable(path)} cannot be run (${printable(errnoText(err))})`);
}

/** Runs a tool to its end: exit code, stdout and stderr as text. */
export function runTool(
  tool: VideoTool,
  path: string,
  args: string[],
  fd?: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnTool(path, args, fd);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.stdin!.end();
    child.on('error', (e) => reject(spawnFailure(tool, path, e)));
    child.on('close', (code) =>
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
    );
  });
}

/** A tool's error output as one line (its distinct lines, in order), for a message. */
export function toolMessage(stderr: string): string {
  const lines = [
    ...new Set(
      stderr
        .split('\n')
        .map((l) => l.replace(/^\[[^\]]* @ 0x[0-9a-f]+\]\s*/, '').trim()) // '[h264 @ 0x55bc...] ' says nothing to a user
        .filter(Boolean),
    ),
  ];
  const text = lines.slice(0, 4).join('; ');
  return lines.length > 4 ? `${text}; ...` : text;
}

/**
 * Ends a child process and waits for its exit (no zombie: 'exit' comes once it is reaped): SIGTERM,
 * then SIGKILL after `graceMs`. Its output pipe is dropped, as a reader that stopped reading would
 * keep ffmpeg blocked on a full pipe. Resolves at once for a child that has already exited.
 */
export function stopChild(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
    child.stdout?.destroy();
  });
}
