// An annotated copy of a video: raw RGB frames piped into ffmpeg, encoded as
// H.264 into a temporary file beside the output (the same folder, so the
// final rename is atomic), renamed over the output only once ffmpeg has
// finished cleanly. abort() (an interrupt, an error) kills ffmpeg and removes
// the temporary file: the output is complete or untouched, never partial.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { checkOutputFile } from '../io.js';
import { printable } from '../terminal.js';
import { COMMON_ARGS, spawnFailure, spawnTool, stopChild, toolMessage } from './ffmpeg.js';

/** Output extensions and their ffmpeg muxers (all take H.264). */
export const VIDEO_OUTPUTS: Record<string, string> = {
  '.mp4': 'mp4',
  '.m4v': 'mp4',
  '.mov': 'mov',
  '.mkv': 'matroska',
};

export function isVideoOutputName(path: string): boolean {
  return Object.hasOwn(VIDEO_OUTPUTS, extname(path).toLowerCase());
}

export class VideoEncoder {
  private error?: Error;
  private readonly exited: Promise<number | null>;
  private readonly stderr: Buffer[] = [];

  private constructor(
    private readonly child: ChildProcess,
    ffmpeg: string,
    private readonly tmp: string,
    private readonly target: string,
    private readonly option: string,
  ) {
    child.on('error', (err) => (this.error = spawnFailure('ffmpeg', ffmpeg, err)));
    child.stderr!.on('data', (b: Buffer) => this.stderr.length < 32 && this.stderr.push(b));
    child.stdin!.on('error', () => {}); // ffmpeg gone: reported by finish() from its exit
    this.exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  }

  /**
   * Starts encoding `width` x `height` frames at `fps` into `out` (checked as an output named by
   * `option`, never one of `inputs`).
   */
  static start(
    ffmpeg: string,
    out: string,
    size: { width: number; height: number; fps: number },
    option: string,
    inputs: readonly string[],
  ): VideoEncoder {
    const target = checkOutputFile(out, option, inputs);
    const muxer = VIDEO_OUTPUTS[extname(out).toLowerCase()] ?? 'mp4';
    const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    const args = [
      ...COMMON_ARGS,
      '-nostdin',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      '-s',
      `${size.width}x${size.height}`,
      '-r',
      String(size.fps),
      '-i',
      'pipe:0',
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-pix_fmt',
      'yuv420p',
      ...(muxer === 'mp4' || muxer === 'mov' ? ['-movflags', '+faststart'] : []),
      '-f',
      muxer,
      '-n', // never over a file: the temporary name is new
      `file:${tmp}`,
    ];
    return new VideoEncoder(spawnTool(ffmpeg, args), ffmpeg, tmp, target, option);
  }

  /** Writes one frame, waiting while ffmpeg's input is full. */
  async write(rgb: Uint8Array): Promise<void> {
    if (this.error) throw this.error;
    if (this.child.exitCode !== null || this.child.signalCode !== null)
      throw new Error(`Cannot write ${printable(this.target)} (${this.option}): ffmpeg has ended`);
    const stdin = this.child.stdin!;
    if (!stdin.write(rgb))
      await new Promise<void>((resolve) => {
        const done = () => {
          stdin.off('drain', done);
          this.child.off('close', done);
          resolve();
        };
        stdin.on('drain', done);
        this.child.on('close', done);
      });
  }

  /** Ends the input, waits for ffmpeg, and renames the file into place; on failure the output is untouched. */
  async finish(): Promise<string> {
    this.child.stdin!.end();
    const code = await this.exited;
    if (this.error || code !== 0) {
      rmSync(this.tmp, { force: true });
      throw (
        this.error ??
        new Error(
          `Cannot write ${printable(this.target)} (${this.option}): ffmpeg failed (${printable(toolMessage(Buffer.concat(this.stderr).toString('utf8')) || `exit code ${code}`)})`,
        )
      );
    }
    checkOutputFile(this.target, this.option); // still a file (or nothing) there, right before the rename
    renameSync(this.tmp, this.target);
    return this.target;
  }

  /** Stops ffmpeg and removes the temporary file (the output stays as it was). */
  async abort(): Promise<void> {
    await stopChild(this.child);
    rmSync(this.tmp, { force: true });
  }
}
