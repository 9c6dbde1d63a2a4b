// A video file analysed frame by frame: FER's predictVideo() returns one of
// these, to be read with `for await`. It finds ffmpeg, probes the file,
// decodes it at the analysed rate and size (decode.ts), and hands each frame
// to a FaceTracker. stop() (which FER's close() calls) ends ffmpeg and waits
// for the frame being predicted, so the model is never released under it.
import type { ChildProcess } from 'node:child_process';
import { invalidType, isPlainObject, numberIn } from '../validate.js';
import { decodeFrames, type DecodedFrame } from './decode.js';
import { FaceTracker, type FaceTrackerOptions } from './face-tracker.js';
import { findTools, stopChild } from './ffmpeg.js';
import { probeVideo, type VideoInfo } from './probe.js';
import type { FramePredictor, TrackSummary, VideoFrameRecord } from './types.js';

export const VIDEO_DEFAULTS = {
  /** frames analysed per second */
  fps: 5,
  /** the longer side of the analysed frames, at most (the detector's tiles start above 768 px) */
  maxSide: 1280,
} as const;

export interface VideoOptions extends FaceTrackerOptions {
  /** frames analysed per second, in (0, 240] (default VIDEO_DEFAULTS.fps, 5) */
  fps?: number;
  /** longer side of the analysed frames, at most, in [64, 4096] (default VIDEO_DEFAULTS.maxSide); boxes are given in the video's pixels */
  maxSide?: number;
}

/** A frame's record with the decoded frame it came from (for drawing on it). */
export interface AnalysedFrame {
  record: VideoFrameRecord;
  frame: DecodedFrame;
}

/** The options' types and ranges, each error naming the option. */
export function checkVideoOptions(options: VideoOptions): void {
  if (!isPlainObject(options)) throw invalidType('options', 'object', options);
  if (options.fps !== undefined)
    numberIn('options.fps', options.fps, { min: 0, max: 240, minExclusive: true }, 'frames per second in (0, 240]');
  if (options.maxSide !== undefined)
    numberIn('options.maxSide', options.maxSide, { min: 64, max: 4096, integer: true }, 'integer in [64, 4096]');
  if (options.smooth !== undefined) numberIn('options.smooth', options.smooth, { min: 0 }, 'number of seconds >= 0');
}

export class VideoAnalysis implements AsyncIterable<VideoFrameRecord> {
  private readonly abort = new AbortController();
  private decoder?: ChildProcess;
  private inFlight: Promise<unknown> = Promise.resolve();
  private tracker?: FaceTracker;
  private started = false;
  /** The video as ffprobe describes it, once the iteration has started. */
  info?: VideoInfo;

  constructor(
    private readonly file: string,
    private readonly predict: FramePredictor,
    private readonly labels: readonly string[],
    private readonly options: VideoOptions,
    private readonly onEnd: (analysis: VideoAnalysis) => void = () => {},
  ) {
    checkVideoOptions(options);
  }

  [Symbol.asyncIterator](): AsyncIterator<VideoFrameRecord> {
    const frames = this.frames();
    return {
      next: async () => {
        const step = await frames.next();
        return step.done ? { done: true, value: undefined } : { done: false, value: step.value.record };
      },
      return: async () => {
        await frames.return(undefined);
        return { done: true, value: undefined };
      },
    };
  }

  /** Each frame's record with its decoded frame; read once (a second iteration is an error). */
  async *frames(): AsyncGenerator<AnalysedFrame> {
    if (this.started) throw new Error(`${this.file}: this video analysis was already read; call predictVideo() again`);
    this.started = true;
    try {
      const tools = findTools();
      const info = await probeVideo(tools.ffprobe, this.file);
      this.info = info;
      const fps = this.options.fps ?? VIDEO_DEFAULTS.fps;
      this.tracker = new FaceTracker(this.predict, this.labels, this.options, this.file, 1 / fps);
      const frames = decodeFrames(tools.ffmpeg, info, {
        fps,
        maxSide: this.options.maxSide ?? VIDEO_DEFAULTS.maxSide,
        signal: this.abort.signal,
        onStart: (child) => (this.decoder = child),
      });
      for await (const frame of frames) {
        if (this.abort.signal.aborted) break;
        const sx = info.width / frame.width,
          sy = info.height / frame.height;
        const pending = this.tracker.push(
          { data: frame.rgb, width: frame.width, height: frame.height, channels: 3 },
          frame.time,
          (b) => ({
            x: b.x * sx,
            y: b.y * sy,
            width: b.width * sx,
            height: b.height * sy,
          }),
        );
        this.inFlight = pending.catch(() => {});
        yield { record: await pending, frame };
      }
    } finally {
      this.onEnd(this);
    }
  }

  /** One summary per track so far (all of them once the iteration has ended). */
  summary(): TrackSummary[] {
    return this.tracker?.summary() ?? [];
  }

  /** Ends the video: ffmpeg stopped (and waited for), the frame being predicted finished; the iteration then ends. */
  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all([this.decoder ? stopChild(this.decoder) : undefined, this.inFlight]);
  }
}
