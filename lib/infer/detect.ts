// Face detection with MediaPipe BlazeFace (models/blazeface, vendored):
// letterbox the image to the detector's square input, decode anchors and
// regressors, blend overlapping detections (MediaPipe's weighted
// non-maximum suppression), map boxes back to the image.
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { type InferDevice, openSession, ort } from './session.js';

export type DetectorModel = 'short' | 'full';

export const DETECTOR_FILES: Record<DetectorModel, { file: string; size: number }> = {
  short: { file: 'face_detection_short_range_128.onnx', size: 128 },
  full: { file: 'face_detection_full_range_256.onnx', size: 256 },
};

export interface FaceBox {
  x: number;
  y: number;
  width: number;
  height: number;
  /** detector confidence in [0, 1] */
  score: number;
  /** eyes, nose, mouth, ears: [x, y] in image pixels */
  keypoints: [number, number][];
}

export interface DetectOptions {
  /** minimum score (default 0.5) */
  threshold?: number;
  /** overlap above which detections are blended (default 0.3) */
  iou?: number;
}

interface Candidate {
  cx: number;
  cy: number;
  w: number;
  h: number;
  kp: number[];
  score: number;
}

// Two anchor layers: 16x16 cells with 2 anchors, 8x8 cells with 6 (both models).
const LAYERS = [
  { cells: 16, anchors: 2 },
  { cells: 8, anchors: 6 },
];

function iou(a: Candidate, b: Candidate): number {
  const x0 = Math.max(a.cx - a.w / 2, b.cx - b.w / 2),
    y0 = Math.max(a.cy - a.h / 2, b.cy - b.h / 2);
  const x1 = Math.min(a.cx + a.w / 2, b.cx + b.w / 2),
    y1 = Math.min(a.cy + a.h / 2, b.cy + b.h / 2);
  const inner = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
  return inner / (a.w * a.h + b.w * b.h - inner);
}

/** Decodes the four outputs into candidates above threshold (coordinates in [0, 1] of the input). */
export function decodeDetections(
  scores: Float32Array[],
  boxes: Float32Array[],
  size: number,
  threshold: number,
): Candidate[] {
  const out: Candidate[] = [];
  LAYERS.forEach(({ cells, anchors }, layer) => {
    for (let cy = 0; cy < cells; cy++)
      for (let cx = 0; cx < cells; cx++)
        for (let a = 0; a < anchors; a++) {
          const i = (cy * cells + cx) * anchors + a;
          const score = 1 / (1 + Math.exp(-scores[layer][i]));
          if (score < threshold) continue;
          const r = boxes[layer].subarray(i * 16, i * 16 + 16);
          const ax = (cx + 0.5) / cells,
            ay = (cy + 0.5) / cells;
          const kp: number[] = [];
          for (let k = 0; k < 6; k++) kp.push(ax + r[4 + 2 * k] / size, ay + r[5 + 2 * k] / size);
          out.push({ cx: ax + r[0] / size, cy: ay + r[1] / size, w: r[2] / size, h: r[3] / size, kp, score });
        }
  });
  return out;
}

/** MediaPipe's weighted non-maximum suppression: overlapping boxes are averaged by score. */
export function blendOverlaps(candidates: Candidate[], iouThreshold: number): Candidate[] {
  const sorted = [...candidates].sort((a, b) => b.score - a.score);
  const used = new Uint8Array(sorted.length);
  const out: Candidate[] = [];
  for (let i = 0; i < sorted.length; i++) {
    if (used[i]) continue;
    const group = [sorted[i]];
    for (let j = i + 1; j < sorted.length; j++) {
      if (!used[j] && iou(sorted[i], sorted[j]) >= iouThreshold) {
        used[j] = 1;
        group.push(sorted[j]);
      }
    }
    const total = group.reduce((s, c) => s + c.score, 0);
    const avg = (f: (c: Candidate) => number) => group.reduce((s, c) => s + f(c) * c.score, 0) / total;
    out.push({
      cx: avg((c) => c.cx),
      cy: avg((c) => c.cy),
      w: avg((c) => c.w),
      h: avg((c) => c.h),
      kp: sorted[i].kp.map((_, k) => avg((c) => c.kp[k])),
      score: sorted[i].score,
    });
  }
  return out;
}

export class FaceDetector {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly model: DetectorModel,
    readonly provider: string,
  ) {}

  static async create(options: { model?: DetectorModel; device?: InferDevice } = {}): Promise<FaceDetector> {
    const model = options.model ?? 'short';
    const path = fileURLToPath(new URL(`../../models/blazeface/${DETECTOR_FILES[model].file}`, import.meta.url));
    const { session, provider } = await openSession(path, options.device ?? 'cpu');
    return new FaceDetector(session, model, provider);
  }

  /** Faces in an RGB image (interleaved bytes), best first. */
  async detect(rgb: Uint8Array, width: number, height: number, options: DetectOptions = {}): Promise<FaceBox[]> {
    const S = DETECTOR_FILES[this.model].size;
    const side = Math.max(width, height);
    const scale = S / side;
    const w = Math.max(1, Math.round(width * scale)),
      h = Math.max(1, Math.round(height * scale));
    const small = await sharp(rgb, { raw: { width, height, channels: 3 } })
      .resize(w, h, { fit: 'fill' })
      .raw()
      .toBuffer();
    const ox = Math.floor((S - w) / 2),
      oy = Math.floor((S - h) / 2);
    const input = new Float32Array(S * S * 3); // letterbox: black ([-1]) bars
    input.fill(-1);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < 3; c++) {
          input[((y + oy) * S + x + ox) * 3 + c] = small[(y * w + x) * 3 + c] / 127.5 - 1;
        }
    const out = await this.session.run({
      [this.session.inputNames[0]]: new ort.Tensor('float32', input, [1, S, S, 3]),
    });
    const [s1, s2, b1, b2] = this.session.outputNames.map((n) => out[n].data as Float32Array);
    const found = blendOverlaps(decodeDetections([s1, s2], [b1, b2], S, options.threshold ?? 0.5), options.iou ?? 0.3);
    const toX = (u: number) => (u * S - ox) / scale,
      toY = (v: number) => (v * S - oy) / scale;
    return found.map((c) => ({
      x: toX(c.cx - c.w / 2),
      y: toY(c.cy - c.h / 2),
      width: (c.w * S) / scale,
      height: (c.h * S) / scale,
      score: c.score,
      keypoints: Array.from({ length: 6 }, (_, k) => [toX(c.kp[2 * k]), toY(c.kp[2 * k + 1])] as [number, number]),
    }));
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
