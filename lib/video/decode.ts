// Frames of a video as raw RGB, decoded by ffmpeg in its own process and read
// from its stdout: sampled at the analysed rate (-vf fps=N) and scaled there
// (area averaging) to the size the detector needs, so that a 1080p video at
// 10 fps costs the decoder little and Node.js copies small frames only. The
// stream is read with back-pressure (ffmpeg waits while frames are analysed).
// Whatever decodes is yielded; a truncated or corrupt file then ends in a
// VideoError naming it (ffmpeg reports "partial file" and the like but may
// still exit with 0, so any error it prints counts).
import type { ChildProcess } from 'node:child_process';
import { COMMON_ARGS, openVideoFile, spawnFailure, spawnTool, stopChild, toolMessage } from './ffmpeg.js';
import { type VideoInfo, VideoError } from './probe.js';
import { printable } from '../terminal.js';

export interface DecodedFrame {
  /** 0, 1, 2, ... in the analysed sequence */
  index: number;
  /** seconds from the start of the video */
  time: number;
  /** RGB, interleaved, width x height */
  rgb: Uint8Array;
  width: number;
  height: number;
}

export interface DecodeOptions {
  /** frames per second analysed (default: the video's own rate) */
  fps?: number;
  /** the longer side of the decoded frames, at most (default 1280); smaller videos keep their size */
  maxSide?: number;
  /** ends the decoding: ffmpeg is stopped and the iteration ends without an error */
  signal?: AbortSignal;
  /** called with the ffmpeg process once started (to stop it from elsewhere) */
  onStart?: (child: ChildProcess) => void;
}

/** The decoded frame size for a video: its displayed size, the longer side at most maxSide, even sides. */
export function frameSize(info: Pick<VideoInfo, 'width' | 'height'>, maxSide: number): [number, number] {
  const scale = Math.min(1, maxSide / Math.max(info.width, info.height));
  const even = (v: number) => Math.max(2, 2 * Math.round((v * scale) / 2));
  return [even(info.width), even(info.height)];
}

function decoderArgs(input: string, width: number, height: number, fps: number | undefined): string[] {
  const filters = [...(fps ? [`fps=${fps}`] : []), `scale=${width}:${height}:flags=area`];
  return [
    ...COMMON_ARGS,
    '-nostdin',
    '-i',
    input,
    '-map',
    '0:v:0',
    '-an',
    '-sn',
    '-dn',
    '-vf',
    filters.join(','),
    '-pix_fmt',
    'rgb24',
    '-f',
    'rawvideo',
    'pipe:1',
  ];
}

/**
 * The frames of `info.file`, decoded by `ffmpeg`. Breaking out of the loop, or the signal, stops
 * ffmpeg and waits for it to exit. Frames that decode are yielded; then a VideoError naming the file
 * when ffmpeg reported an error (truncated, corrupt), with how many frames came before it.
 */
export async function* decodeFrames(
  ffmpeg: string,
  info: VideoInfo,
  options: DecodeOptions = {},
): AsyncGenerator<DecodedFrame> {
  const [width, height] = frameSize(info, options.maxSide ?? 1280);
  const fps = options.fps;
  const rate = fps ?? (info.fps || 25);
  const opened = openVideoFile(info.file);
  let child: ChildProcess;
  try {
    child = spawnTool(ffmpeg, decoderArgs(opened.input, width, height, fps), opened.fd);
  } finally {
    opened.close(); // the child holds its own copy of the descriptor
  }
  options.onStart?.(child);
  let spawnError: Error | undefined;
  child.on('error', (err) => (spawnError = spawnFailure('ffmpeg', ffmpeg, err)));
  const errors: Buffer[] = [];
  child.stderr!.on('data', (b: Buffer) => errors.length < 64 && errors.push(b));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const stop = () => void stopChild(child);
  options.signal?.addEventListener('abort', stop, { once: true });
  const bytes = width * height * 3;
  let frame = new Uint8Array(bytes);
  let filled = 0;
  let index = 0;
  try {
    for await (const chunk of child.stdout! as AsyncIterable<Buffer>) {
      let at = 0;
      while (at < chunk.length) {
        const n = Math.min(bytes - filled, chunk.length - at);
        frame.set(chunk.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled === bytes) {
          yield { index, time: index / rate, rgb: frame, width, height };
          index++;
          frame = new Uint8Array(bytes);
          filled = 0;
        }
      }
      if (options.signal?.aborted) return;
    }
    const code = await exited;
    if (spawnError) throw spawnError;
    if (options.signal?.aborted) return;
    const message = toolMessage(Buffer.concat(errors).toString('utf8'));
    if (code !== 0 || message) {
      const what = index === 0 ? 'no frame could be decoded' : `decoding stopped after ${index} frames`;
      throw new VideoError(
        info.file,
        `${what} (${printable(message || `ffmpeg exit code ${code}`)}); the file may be truncated or corrupt`,
        index,
      );
    }
  } catch (err) {
    if (!options.signal?.aborted) throw err; // stopped: its pipe closed under the loop
  } finally {
    options.signal?.removeEventListener('abort', stop);
    await stopChild(child);
  }
}
