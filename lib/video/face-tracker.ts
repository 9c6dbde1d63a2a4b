// Frames in, per-frame records out: each frame's faces predicted, given track
// ids (tracker.ts), their probabilities smoothed over time when asked
// (smooth.ts), and counted into per-track summaries (summary.ts). FER's
// tracker() hands one to a caller with frames of their own (a webcam's);
// predictVideo() feeds one with a file's decoded frames.
import type { RawPixels } from '../infer/image.js';
import { invalidRange, numberIn } from '../validate.js';
import { ProbabilitySmoother } from './smooth.js';
import { TrackSummaries } from './summary.js';
import { Tracker, type TrackerOptions } from './tracker.js';
import type { FramePredictor, PredictedFace, TrackSummary, VideoFace, VideoFrameRecord } from './types.js';

export interface FaceTrackerOptions extends TrackerOptions {
  /** seconds over which each track's probabilities are smoothed (exponentially); 0 or absent: raw answers */
  smooth?: number;
}

/** Maps a box from the analysed frame's pixels to the video's. */
export type BoxMapping = (box: VideoFace['box']) => VideoFace['box'];

/** One vector per face for the tracker: its k embeddings end to end. */
function appearance(face: PredictedFace): Float32Array | undefined {
  if (!face.embeddings?.length) return undefined;
  const out = new Float32Array(face.embeddings.reduce((n, e) => n + e.length, 0));
  let at = 0;
  for (const e of face.embeddings) {
    out.set(e, at);
    at += e.length;
  }
  return out;
}

function best(probabilities: Record<string, number>): { label: string; confidence: number } {
  let label = '',
    confidence = -1;
  for (const [l, p] of Object.entries(probabilities))
    if (p > confidence) {
      label = l;
      confidence = p;
    }
  return { label, confidence };
}

export class FaceTracker {
  private readonly tracker: Tracker;
  private readonly smoother: ProbabilitySmoother;
  private readonly summaries: TrackSummaries;
  private frame = 0;
  private firstTime = NaN;
  private lastTime = NaN;

  /**
   * `labels`: the model's, for the summaries; `interval`: the seconds one frame stands for (a video's
   * 1 / fps), else the mean gap between the frames given.
   */
  constructor(
    private readonly predict: FramePredictor,
    labels: readonly string[],
    options: FaceTrackerOptions = {},
    private readonly file = 'frames',
    interval?: number,
  ) {
    const smooth = options.smooth ?? 0;
    numberIn('options.smooth', smooth, { min: 0 }, 'number of seconds >= 0');
    this.tracker = new Tracker(options);
    this.smoother = new ProbabilitySmoother(smooth);
    this.summaries = new TrackSummaries(labels, () => interval ?? this.meanGap());
  }

  private meanGap(): number {
    return this.frame > 1 ? (this.lastTime - this.firstTime) / (this.frame - 1) : 0;
  }

  /** The record of one frame at `time` seconds (times must not go back). */
  async push(pixels: RawPixels, time: number, toVideo?: BoxMapping): Promise<VideoFrameRecord> {
    if (typeof time !== 'number' || !Number.isFinite(time))
      throw invalidRange('time', 'a finite number of seconds', String(time));
    if (time < this.lastTime)
      throw invalidRange('time', `seconds at or after the previous frame's (${this.lastTime})`, String(time));
    const { faces } = await this.predict(pixels);
    const boxes = faces.map((f) => (toVideo ? toVideo(f.box) : f.box));
    const ids = this.tracker.update(
      faces.map((f, i) => ({ box: boxes[i], embedding: appearance(f) })),
      time,
    );
    const record: VideoFrameRecord = {
      file: this.file,
      frame: this.frame++,
      time,
      faces: faces.map((f, i) => {
        const probabilities = this.smoother.next(ids[i], time, f.probabilities);
        return { track: ids[i], box: boxes[i], ...best(probabilities), probabilities };
      }),
    };
    if (Number.isNaN(this.firstTime)) this.firstTime = time;
    this.lastTime = time;
    this.summaries.add(record);
    return record;
  }

  /** One summary per track seen so far, by id. */
  summary(): TrackSummary[] {
    return this.summaries.summaries();
  }
}
