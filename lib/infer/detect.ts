// Face detection with MediaPipe BlazeFace (models/blazeface, vendored).
// One pass: a square window of the image, resized to the detector's input
// (black where it leaves the image), anchors and regressors decoded,
// overlapping detections blended (MediaPipe's weighted non-maximum
// suppression), boxes mapped back to the image. The default set-up ('multi')
// runs several passes and merges them: the full-range model on the whole
// image, the short-range model on the whole image (large close-up faces), and
// the full-range model on overlapping tiles of large photos (small, distant
// faces); see planPasses() and mergeDetections().
import { fileURLToPath } from 'node:url';
import { type InferDevice, openSession, ort } from './session.js';
import { resampleWindow } from '../pixels.js';
import { DETECTOR_MODELS, type DetectorModel, PREDICTION_DEFAULTS } from './defaults.js';

export { DETECTOR_MODELS, type DetectorModel } from './defaults.js';

type Network = 'short' | 'full';

export const DETECTOR_FILES: Record<Network, { file: string; size: number }> = {
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
  /** minimum score (default PREDICTION_DEFAULTS.threshold, 0.5) */
  threshold?: number;
  /** overlap above which detections are blended (default 0.3) */
  iou?: number;
}

/** What a detector runs: which models on the whole image, and how finely large photos are tiled. */
export interface DetectorPlan {
  /** the full-range model on the whole image */
  full: boolean;
  /** the short-range model on the whole image (faces filling much of it) */
  short: boolean;
  /** tile levels: level k cuts the image into tiles of (longer side) / 2^k, overlapping by `overlap` */
  tileLevels: number;
  /** a tile level is used only while its tiles are at least this many image pixels (default 384) */
  minTile: number;
  /** fraction of a tile shared with its neighbour (default 0.25) */
  overlap: number;
  /** score threshold for the tiles' detections (they see more texture, so more false faces) */
  tileThreshold: number;
  /**
   * tiles are skipped when the whole-image passes found one or two faces, each at least this
   * fraction of the longer side (a portrait; 0: tiles always run)
   */
  skipTilesFor: number;
  /**
   * detections scoring below this are looked at again (0: never), by both
   * networks: the full-range one on a window `verifyZoom` face sizes wide, the
   * short-range one on a window two face sizes wide; faces cut by the border
   * are not (the closer window would show less of them)
   */
  verifyBelow: number;
  verifyZoom: number;
  /** the mean score of the two second looks that a doubtful detection needs to be kept */
  verifyMin: number;
  /**
   * a whole-image pass of the full-range model on the image extended by its
   * mirror image on each side, by this fraction of the longer side (0: none):
   * a face cut by the left or right border gets its other half back
   */
  mirrorPad: number;
  /** the network of the mirrored pass ('short': it replaces the plain short-range pass) */
  mirrorNetwork: Network;
}

const SINGLE = {
  tileLevels: 0,
  minTile: 384,
  overlap: 0.25,
  tileThreshold: 0.5,
  skipTilesFor: 0.06,
  verifyBelow: 0,
  verifyZoom: 5,
  verifyMin: 0.45,
  mirrorPad: 0,
  mirrorNetwork: 'short',
} as const;

/** The set-ups: 'multi' was chosen by measurement on real photographs and synthetic scenes (docs/inference.md). */
export const PLANS: Record<DetectorModel, DetectorPlan> = {
  multi: { ...SINGLE, full: true, short: true, tileLevels: 1, verifyBelow: 0.85, mirrorPad: 0.25 },
  full: { ...SINGLE, full: true, short: false },
  short: { ...SINGLE, full: false, short: true },
};

/** One detector run: a square window (image pixels; may reach outside the image) seen by one network. */
export interface Pass {
  network: Network;
  /** scale level: 0 for the whole image, k for tiles of (longer side) / 2^k */
  level: number;
  x: number;
  y: number;
  side: number;
  /** outside the image, its mirror image (else black) */
  mirror?: boolean;
}

/**
 * The passes of a plan on a width x height image: whole-image passes first,
 * then tiles row by row. Level k has 2^k tiles along the longer side, each
 * sharing `overlap` of its side with its neighbour, and as many along the
 * shorter side as cover it with at least that overlap.
 */
export function planPasses(width: number, height: number, plan: DetectorPlan): Pass[] {
  const long = Math.max(width, height);
  const passes: Pass[] = [];
  const whole = { level: 0, x: (width - long) / 2, y: (height - long) / 2, side: long };
  if (plan.full) passes.push({ network: 'full', ...whole });
  if (plan.short && !(plan.mirrorPad > 0 && plan.mirrorNetwork === 'short'))
    passes.push({ network: 'short', ...whole });
  if (plan.mirrorPad > 0) {
    const side = long * (1 + 2 * plan.mirrorPad);
    passes.push({
      network: plan.mirrorNetwork,
      level: 0,
      x: (width - side) / 2,
      y: (height - side) / 2,
      side,
      mirror: true,
    });
  }
  for (let level = 1; level <= plan.tileLevels; level++) {
    const n = 2 ** level;
    const side = long / (n - (n - 1) * plan.overlap);
    if (side < plan.minTile) break;
    const starts = (extent: number): number[] => {
      if (extent <= side) return [(extent - side) / 2];
      const count = Math.ceil((extent - side) / (side * (1 - plan.overlap)) - 1e-9) + 1;
      return Array.from({ length: count }, (_, i) => ((extent - side) * i) / (count - 1));
    };
    for (const y of starts(height)) for (const x of starts(width)) passes.push({ network: 'full', level, x, y, side });
  }
  return passes;
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

/** Overlap of two boxes: intersection over union, and intersection over the smaller box. */
export function boxOverlap(
  a: { x: number; y: number; width: number; height: number },
  b: { x: number; y: number; width: number; height: number },
): { iou: number; ios: number } {
  const w = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const h = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const inter = w * h;
  const areaA = a.width * a.height,
    areaB = b.width * b.height;
  return { iou: inter / (areaA + areaB - inter || 1), ios: inter / (Math.min(areaA, areaB) || 1) };
}

export interface MergeOptions {
  /** boxes overlapping the group's best by at least this IoU join it (default 0.3) */
  iou?: number;
  /** or whose intersection covers at least this fraction of the smaller box (default 0.65) */
  contain?: number;
}

/**
 * Merges detections of the same faces from several passes: greedy, best score
 * first; a box joins the group of the best remaining box when they overlap by
 * `iou`, or when one lies mostly inside the other (`contain`: the same face seen
 * whole and as a part, at two scales). Each group becomes one box: the boxes
 * like its largest one, averaged by score (coordinates and key points); its
 * score is the group's best.
 */
export function mergeDetections(boxes: FaceBox[], options: MergeOptions = {}): FaceBox[] {
  const iouMin = options.iou ?? 0.3,
    containMin = options.contain ?? 0.65;
  const sorted = [...boxes].sort((a, b) => b.score - a.score);
  const used = new Uint8Array(sorted.length);
  const out: FaceBox[] = [];
  for (let i = 0; i < sorted.length; i++) {
    if (used[i]) continue;
    const group = [sorted[i]];
    for (let j = i + 1; j < sorted.length; j++) {
      if (used[j]) continue;
      const o = boxOverlap(sorted[i], sorted[j]);
      if (o.iou >= iouMin || o.ios >= containMin) {
        used[j] = 1;
        group.push(sorted[j]);
      }
    }
    // the group's largest box gives its extent: a box lying inside it is a part of the face seen by a
    // tile, or a closer look; it counts in the group's score but not in the average
    const anchor = group.reduce((a, b) => (b.width * b.height > a.width * a.height ? b : a));
    const similar = group.filter((b) => boxOverlap(anchor, b).iou >= iouMin);
    const total = similar.reduce((s, b) => s + b.score, 0);
    const avg = (f: (b: FaceBox) => number) => similar.reduce((s, b) => s + f(b) * b.score, 0) / total;
    out.push({
      x: avg((b) => b.x),
      y: avg((b) => b.y),
      width: avg((b) => b.width),
      height: avg((b) => b.height),
      score: sorted[i].score,
      keypoints: anchor.keypoints.map((_, k) => [avg((b) => b.keypoints[k][0]), avg((b) => b.keypoints[k][1])]),
    });
  }
  return out;
}

export class FaceDetector {
  private constructor(
    private readonly sessions: Partial<Record<Network, ort.InferenceSession>>,
    readonly model: DetectorModel,
    readonly provider: string,
    readonly plan: DetectorPlan,
  ) {}

  static async create(
    options: { model?: DetectorModel; device?: InferDevice; plan?: Partial<DetectorPlan> } = {},
  ): Promise<FaceDetector> {
    const model = options.model ?? PREDICTION_DEFAULTS.detector;
    if (!DETECTOR_MODELS.includes(model)) {
      throw new RangeError(
        `Expected one of ${DETECTOR_MODELS.join(', ')} for detector but received '${String(model)}'`,
      );
    }
    const plan = { ...PLANS[model], ...options.plan };
    const needed: Network[] = [];
    if (plan.full || plan.tileLevels > 0 || (plan.mirrorPad > 0 && plan.mirrorNetwork === 'full')) needed.push('full');
    if (plan.short || (plan.mirrorPad > 0 && plan.mirrorNetwork === 'short')) needed.push('short');
    if (plan.verifyBelow > 0) for (const n of ['full', 'short'] as const) if (!needed.includes(n)) needed.push(n);
    const sessions: Partial<Record<Network, ort.InferenceSession>> = {};
    let provider = 'cpu';
    for (const network of needed) {
      const path = fileURLToPath(new URL(`../../models/blazeface/${DETECTOR_FILES[network].file}`, import.meta.url));
      // One intra-op thread: BlazeFace runs one small image at a time, and ORT's threads cost more than they
      // give there (2 vCPU Xeon, 2026-12-01, alternated: the full-range pass 12.3-13.2 ms against
      // 17.5-18.5 ms with ORT's default; the classifier was the same either way).
      const opened = await openSession(path, options.device ?? 'cpu', { cpuThreads: 1 });
      sessions[network] = opened.session;
      provider = opened.provider;
    }
    return new FaceDetector(sessions, model, provider, plan);
  }

  /** Faces in an RGB image (interleaved bytes), best first. */
  async detect(rgb: Uint8Array, width: number, height: number, options: DetectOptions = {}): Promise<FaceBox[]> {
    const threshold = options.threshold ?? PREDICTION_DEFAULTS.threshold;
    const blendIou = options.iou ?? 0.3;
    const passes = planPasses(width, height, this.plan);
    const image: SourceImage = { rgb, width, height, outputs: new Map() };
    const found: FaceBox[] = [];
    const long = Math.max(width, height);
    for (const pass of passes) {
      if (
        pass.level === 1 &&
        this.plan.skipTilesFor > 0 &&
        passes.indexOf(pass) === passes.findIndex((p) => p.level > 0)
      ) {
        // a portrait (one or two faces, each large) has nothing left for the tiles to find
        const faces = mergeDetections(found, { iou: blendIou });
        if (
          faces.length >= 1 &&
          faces.length <= 2 &&
          faces.every((f) => Math.max(f.width, f.height) >= this.plan.skipTilesFor * long)
        )
          break;
      }
      const min = pass.level > 0 ? Math.max(threshold, this.plan.tileThreshold) : threshold;
      for (const box of await this.runPass(image, pass, min, blendIou)) {
        if (pass.level > 0 && cutByTileEdge(box, pass, width, height)) continue;
        if (pass.mirror && !centreInside(box, width, height)) continue; // a reflection of a face near the border
        found.push(box);
      }
    }
    const merged = passes.length > 1 ? mergeDetections(found, { iou: blendIou }) : found;
    if (!(this.plan.verifyBelow > 0)) return merged;
    // a second look at the doubtful ones (textures, animals)
    const kept: FaceBox[] = [];
    for (const box of merged) {
      // a face cut by the border is not looked at again: the closer window would show less of it
      const edge = 0.02 * Math.max(width, height);
      const cut =
        box.x < edge || box.y < edge || box.x + box.width > width - edge || box.y + box.height > height - edge;
      if (box.score >= this.plan.verifyBelow || cut) {
        kept.push(box);
        continue;
      }
      // two second looks, averaged: the full-range model on a wide window, the short-range one on a close one
      let second = 0;
      for (const [network, zoom] of [
        ['full', this.plan.verifyZoom],
        ['short', 2],
      ] as const) {
        const side = Math.max(box.width, box.height) * zoom;
        // centred on the face, but moved into the image where it fits
        const place = (centre: number, extent: number) =>
          side >= extent ? (extent - side) / 2 : Math.min(Math.max(centre - side / 2, 0), extent - side);
        const pass: Pass = {
          network,
          level: -1,
          x: place(box.x + box.width / 2, width),
          y: place(box.y + box.height / 2, height),
          side,
        };
        const again = (await this.runPass(image, pass, 0.05, blendIou)).filter((b) => boxOverlap(b, box).iou >= 0.3);
        second += again.reduce((m, b) => Math.max(m, b.score), 0) / 2;
      }
      if (second >= this.plan.verifyMin) kept.push(box);
    }
    return kept;
  }

  /** One pass: its window resampled to the network's input, detections above `min` in image pixels. */
  private async runPass(image: SourceImage, pass: Pass, min: number, blendIou: number): Promise<FaceBox[]> {
    const S = DETECTOR_FILES[pass.network].size;
    const key = `${pass.network} ${pass.x} ${pass.y} ${pass.side} ${pass.mirror ? 'm' : ''}`;
    let outputs = image.outputs.get(key);
    if (!outputs) {
      outputs = await this.infer(pass, image);
      image.outputs.set(key, outputs);
    }
    const [s1, s2, b1, b2] = outputs;
    const blended = blendOverlaps(decodeDetections([s1, s2], [b1, b2], S, min), blendIou);
    const toX = (u: number) => pass.x + u * pass.side,
      toY = (v: number) => pass.y + v * pass.side;
    return blended.map((c) => ({
      x: toX(c.cx - c.w / 2),
      y: toY(c.cy - c.h / 2),
      width: c.w * pass.side,
      height: c.h * pass.side,
      score: c.score,
      keypoints: Array.from({ length: 6 }, (_, k) => [toX(c.kp[2 * k]), toY(c.kp[2 * k + 1])] as [number, number]),
    }));
  }

  /**
   * The network's four outputs for a pass: its window of the image resampled straight to the
   * network's input in [-1, 1] (black outside the image, or its mirror image for mirrored passes).
   */
  private async infer(pass: Pass, image: SourceImage): Promise<Float32Array[]> {
    const S = DETECTOR_FILES[pass.network].size;
    const input = resampleWindow(
      image.rgb,
      image.width,
      image.height,
      { x: pass.x, y: pass.y, width: pass.side, height: pass.side },
      S,
      S,
      { border: pass.mirror ? 'reflect' : 'constant', constant: 0, scale: 1 / 127.5, bias: -1 },
    ) as Float32Array;
    const session = this.sessions[pass.network]!;
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input, [1, S, S, 3]) });
    return session.outputNames.map((n) => out[n].data as Float32Array);
  }

  async close(): Promise<void> {
    for (const session of Object.values(this.sessions)) await session?.release();
  }
}

/** A tile's detection that reaches a tile edge inside the image: a neighbouring tile sees that face whole. */
function cutByTileEdge(box: FaceBox, pass: Pass, width: number, height: number): boolean {
  const margin = pass.side * 0.02;
  const x1 = pass.x + pass.side,
    y1 = pass.y + pass.side;
  return (
    (pass.x > 0 && box.x < pass.x + margin) ||
    (pass.y > 0 && box.y < pass.y + margin) ||
    (x1 < width && box.x + box.width > x1 - margin) ||
    (y1 < height && box.y + box.height > y1 - margin)
  );
}

/** The image a detection works on, and each window's network outputs (reused when a pass asks again). */
interface SourceImage {
  rgb: Uint8Array;
  width: number;
  height: number;
  outputs: Map<string, Float32Array[]>;
}

function centreInside(box: FaceBox, width: number, height: number): boolean {
  const cx = box.x + box.width / 2,
    cy = box.y + box.height / 2;
  return cx >= 0 && cy >= 0 && cx < width && cy < height;
}
