// The records of video analysis (adcorre-predict --json prints them as they
// are), and what the video code needs of a predictor: a function from raw
// pixels to faces, so that lib/video depends on no FER class (no import cycle).
import type { RawPixels } from '../infer/image.js';

export interface VideoFace {
  /** the face's track id: the same person keeps it from frame to frame (1, 2, ...) */
  track: number;
  /** in the video's pixels (as displayed) */
  box: { x: number; y: number; width: number; height: number };
  label: string;
  confidence: number;
  /** raw, or smoothed over time with the `smooth` option */
  probabilities: Record<string, number>;
}

export interface VideoFrameRecord {
  /** the video file, or `frames` for a tracker's own frames */
  file: string;
  /** 0, 1, 2, ... in the analysed sequence */
  frame: number;
  /** seconds from the start */
  time: number;
  faces: VideoFace[];
}

export interface TrackSummary {
  track: number;
  /** seconds on screen: the analysed frames it was in, each standing for one frame interval */
  seconds: number;
  /** when it was first and last seen, in seconds */
  first: number;
  last: number;
  /** analysed frames it was in */
  frames: number;
  /** share of its time under each expression (its per-frame labels), summing to 1 */
  shares: Record<string, number>;
  /** the expression with the largest share */
  dominant: string;
}

/** One face as a predictor answers it. */
export interface PredictedFace {
  box: VideoFace['box'];
  probabilities: Record<string, number>;
  embeddings?: Float32Array[];
}

/** Faces in one frame: FER.predict with `embeddings: true`, bound to its options. */
export type FramePredictor = (pixels: RawPixels) => Promise<{ faces: PredictedFace[] }>;
