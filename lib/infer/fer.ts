// The prediction API: FER.load() opens a model exported by adcorre-native
// (its metadata says everything needed to run it) and the face detector;
// predict() finds faces, crops them as the model was trained (aligned by the
// eyes and mouth onto the training crops' framing: align.ts), and classifies
// them in batches on ONNX Runtime.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type ModelMetadata, readMetadata } from '../model/onnx-metadata.js';
import { DETECTOR_MODELS, type DetectorModel, type FaceBox, FaceDetector } from './detect.js';
import { type DecodedImage, decodedInOrder, type ImageInput, InputError } from './image.js';
import { parseDevice } from '../device.js';
import { type InferDevice, type OpenedSession, openSession, ort, type SessionSettings } from './session.js';
import { checkEmbeddings, checkLabels, checkProbabilities, readModelFile } from './model-check.js';
import { notUtf8Hint } from '../input-file.js';
import { printable } from '../terminal.js';
import { invalidType, isPlainObject, numberIn } from '../validate.js';
import { PREDICTION_DEFAULTS } from './defaults.js';
import { boxSquare, type FaceSquare, faceSquare, faceTensor } from './align.js';
import { VideoAnalysis, type VideoOptions } from '../video/predict-video.js';
import { FaceTracker, type FaceTrackerOptions } from '../video/face-tracker.js';
import type { FramePredictor } from '../video/types.js';

/** The models that ship with the package, by name (`--model ferplus`, `FER.load({ model: 'ferplus' })`). */
export const BUNDLED_MODELS = {
  /** 7 classes, trained on FER-2013 (the default) */
  fer2013: fileURLToPath(new URL('../../models/adcorre-fer2013.onnx', import.meta.url)),
  /** 8 classes (with contempt), trained on the FER+ crowd votes */
  ferplus: fileURLToPath(new URL('../../models/adcorre-ferplus.onnx', import.meta.url)),
} as const;
export type BundledModel = keyof typeof BUNDLED_MODELS;

/** Where the CLI and FER.load() look for the trained default model. */
export const DEFAULT_MODEL = BUNDLED_MODELS.fer2013;

/**
 * A model option as a file: a bundled model's name (see BUNDLED_MODELS), else the path itself.
 * `bundled` says which name it was, so that a missing file gets the reinstall hint.
 */
export function resolveModel(model: string | undefined): { path: string; bundled?: BundledModel } {
  if (model === undefined) return { path: DEFAULT_MODEL, bundled: 'fer2013' };
  if (Object.hasOwn(BUNDLED_MODELS, model))
    return { path: BUNDLED_MODELS[model as BundledModel], bundled: model as BundledModel };
  return { path: model };
}

export class NoModelError extends Error {
  constructor(path: string, name: BundledModel = 'fer2013') {
    const what = name === 'fer2013' ? 'default model' : `'${name}' model`;
    super(
      `No trained model is installed (looked for ${path}). Pass a model exported by adcorre-native ` +
        `(--model file.onnx, or FER.load({ model })), or reinstall the package, which ships the trained ${what}` +
        ` (models/adcorre-${name}.onnx); models you train with adcorre-train can be exported with adcorre-export.`,
    );
    this.name = 'NoModelError';
  }
}

/**
 * A model option read into memory: bytes as given, else a bundled model's name or a path (a regular
 * file of at most 2 GiB). `source` names it in messages. A missing bundled model is a NoModelError with
 * the reinstall hint, a missing path an error naming it. adcorre-eval and FER.load() both read models here.
 */
export function readModel(model: string | Uint8Array | undefined): { bytes: Uint8Array; source: string } {
  if (model instanceof Uint8Array) return { bytes: model, source: 'model buffer' };
  const resolved = resolveModel(model);
  const source = resolved.path;
  if (!existsSync(source)) {
    if (resolved.bundled) throw new NoModelError(source, resolved.bundled);
    throw new Error(
      `Model file not found: ${printable(source)}${notUtf8Hint(source)} (expected a path to an ONNX model or a bundled model's name: ${Object.keys(BUNDLED_MODELS).join(', ')})`,
    );
  }
  // a regular file only: a device or a named pipe is named as what it is, never read
  return { bytes: readModelFile(source, 'model'), source };
}

export interface OpenedModel extends OpenedSession {
  metadata: ModelMetadata;
}

/**
 * A model's bytes (from readModel) ready to run: its metadata read, its labels checked (they reach
 * terminals and key every prediction's probabilities: refused now, not shown later), an ONNX Runtime
 * session on the device. A model ONNX Runtime cannot load is an error naming `source`.
 */
export async function openModel(
  bytes: Uint8Array,
  source: string,
  device: InferDevice,
  settings: SessionSettings = {},
): Promise<OpenedModel> {
  const metadata = readMetadata(bytes, printable(source));
  checkLabels(metadata.labels, source);
  try {
    return { ...(await openSession(bytes, device, settings)), metadata };
  } catch (err) {
    if ((err as Error).message.includes('execution provider')) throw err;
    throw new Error(
      `${printable(source)}: ONNX Runtime cannot load the model (${printable((err as Error).message.split('\n')[0])})`,
    );
  }
}

export interface LoadOptions {
  /**
   * path or bytes of a model exported by adcorre-native, or a bundled model's name: 'fer2013'
   * (the default, models/adcorre-fer2013.onnx) or 'ferplus' (8 classes, models/adcorre-ferplus.onnx)
   */
  model?: string | Uint8Array;
  device?: InferDevice;
  /**
   * face detector: 'multi' (default: BlazeFace's full-range and short-range models on the whole image,
   * overlapping tiles of large photos, merged, doubtful detections looked at again), or one model
   * alone on the whole image: 'full' range or 'short' range (close-ups); see docs/inference.md
   */
  detector?: DetectorModel;
}

export interface PredictOptions {
  /** find faces first: true, false (each input is a face crop) or 'auto' (default: images of 64 px or less are crops) */
  detect?: boolean | 'auto';
  /** how many labels to list per face, best first (default PREDICTION_DEFAULTS.top, 3) */
  top?: number;
  /** include the k embeddings of each face */
  embeddings?: boolean;
  /** detector score threshold (default PREDICTION_DEFAULTS.threshold, 0.5) */
  threshold?: number;
  /**
   * align each face by its eyes and mouth onto the training crops' framing (lib/infer/align.ts): level
   * eyes, measured centre and scale (default true; false, or a `margin`, crops the detector's box instead;
   * `align: true` beside a `margin` is an error, as the margin applies only to the box)
   */
  align?: boolean;
  /**
   * crop the detector's box, its side this multiple of the box's longer side, in [1, 4], instead of
   * aligning (implies `align: false`, as adcorre-predict's --margin implies --no-align; with `align: false`
   * alone the margin is PREDICTION_DEFAULTS.margin, 1.35)
   */
  margin?: number;
  /** when no face is found, classify the whole image (flagged wholeImage) */
  wholeImageFallback?: boolean;
  /** report where the time went (PredictResult.timings) */
  timings?: boolean;
}

/** Wall-clock milliseconds of one image's prediction, stage by stage (with `timings: true`). */
export interface PredictTimings {
  /** reading the file and decoding it (the images of one call decode concurrently) */
  decode: number;
  /** the face detector's passes */
  detect: number;
  /** the face crops and the classifier, for the batch(es) holding this image's faces (shared by their images) */
  classify: number;
}

export interface FaceResult {
  /** the detected face (the whole image for crops) in input pixels */
  box: { x: number; y: number; width: number; height: number };
  /** the square region classified, in input pixels, before its turn by `angle` degrees about its centre */
  crop: { x: number; y: number; width: number; height: number; angle: number };
  /** detector confidence; null when the input was taken as a crop */
  detectorScore: number | null;
  label: string;
  confidence: number;
  probabilities: Record<string, number>;
  top: { label: string; probability: number }[];
  embeddings?: Float32Array[];
}

export interface PredictResult {
  source: string;
  width: number;
  height: number;
  faces: FaceResult[];
  /** false when the input was taken as a face crop */
  detected: boolean;
  /** no face was found (faces is empty, or holds the whole image when wholeImageFallback) */
  noFace: boolean;
  /** the whole image was classified because no face was found */
  wholeImage: boolean;
  /** with `timings: true` */
  timings?: PredictTimings;
}

const SMALL_IMAGE = 64;
/**
 * The smallest side of an input that is classified (or searched for faces).
 * Below it an image holds too little of a face to read an expression from: the
 * model sees every face at its input size (48 px for the default model, as in
 * FER-2013), so a 16 px crop is already blown up three times, and a 1x1 image
 * would get a confident answer from nothing.
 */
export const MIN_INPUT_SIDE = 16;

interface Region {
  /** the face's crop as the model takes it (channels x size x size): the image itself is not kept */
  crop: Float32Array;
  /** the input's pixels per decoded (possibly shrunk) image pixel, across and down */
  sx: number;
  sy: number;
  /** the square classified, in the decoded image's pixels */
  square: FaceSquare;
  box: FaceResult['box'];
  score: number | null;
}

/** predictBatch's options: a prediction's, and how many faces one classifier run takes. */
export interface PredictBatchOptions extends PredictOptions {
  /**
   * faces classified together in one ONNX Runtime run, in [1, 4096] (default PREDICTION_DEFAULTS.faceBatch, 32):
   * the faces of all the call's images, in runs of this many. Not adcorre-predict's --batch, which counts
   * images per call.
   */
  faceBatch?: number;
  /** @deprecated the former name of `faceBatch` (the same number of faces per run) */
  batch?: number;
}

/** The options' types and ranges, each error naming the option. */
function checkPredictOptions(options: PredictBatchOptions): void {
  if (!isPlainObject(options)) throw invalidType('options', 'object', options);
  const { detect, top, threshold, margin, faceBatch, batch, timings } = options;
  if (timings !== undefined && typeof timings !== 'boolean') throw invalidType('options.timings', 'boolean', timings);
  if (options.align !== undefined && typeof options.align !== 'boolean')
    throw invalidType('options.align', 'boolean', options.align);
  if (detect !== undefined && detect !== true && detect !== false && detect !== 'auto')
    throw invalidType('options.detect', "true, false or 'auto'", detect);
  if (top !== undefined) numberIn('options.top', top, { min: 1, integer: true }, 'positive integer');
  if (faceBatch !== undefined)
    numberIn('options.faceBatch', faceBatch, { min: 1, integer: true, max: 4096 }, 'integer in [1, 4096]');
  if (batch !== undefined)
    numberIn('options.batch', batch, { min: 1, integer: true, max: 4096 }, 'integer in [1, 4096]');
  if (faceBatch !== undefined && batch !== undefined)
    throw new TypeError('Expected options.faceBatch or options.batch (its former name), not both');
  if (threshold !== undefined)
    numberIn(
      'options.threshold',
      threshold,
      { min: 0, max: 1, minExclusive: true, maxExclusive: true },
      'number in (0, 1)',
    );
  if (margin !== undefined)
    numberIn('options.margin', margin, { min: 1, max: 4 }, 'number in [1, 4] (crop side per face box side)');
  // the margin frames the detector's box, which alignment does not use: asking for both would silently drop one
  if (margin !== undefined && options.align === true)
    throw new TypeError(
      "Expected options.align true or options.margin, not both: a margin crops the detector's box without " +
        'alignment (leave align out or pass align: false with margin, as --margin implies --no-align)',
    );
}

/**
 * An input's kind, before anything is read: a path, encoded bytes or raw pixels. An empty slot of a
 * sparse array (`[, 'a.jpg']`) or null is a TypeError naming it, as in any other API call.
 */
function checkInput(name: string, input: unknown, present: boolean): void {
  if (typeof input === 'string' || input instanceof Uint8Array) return;
  if (isPlainObject(input) && input.data instanceof Uint8Array) return;
  const expected = 'a file path, a Buffer or { data, width, height, channels }';
  if (!present) throw new TypeError(`Expected ${expected} for ${name} but received an empty slot`);
  throw invalidType(name, expected, input);
}

/** predictVideo's options: the video's (rate, size, smoothing, tracking) and a prediction's. */
export type PredictVideoOptions = VideoOptions & Omit<PredictOptions, 'embeddings' | 'timings'>;
/** tracker()'s options: smoothing and tracking, and a prediction's. */
export type TrackerOptions = FaceTrackerOptions & Omit<PredictOptions, 'embeddings' | 'timings'>;

export class FER {
  private closed = false;
  private readonly videos = new Set<VideoAnalysis>();

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly metadata: ModelMetadata,
    readonly provider: string,
    private readonly detector: FaceDetector,
    readonly modelSource: string,
  ) {}

  static async load(options: LoadOptions = {}): Promise<FER> {
    const device = parseDevice('options.device', options.device ?? 'auto', 'inference').kind as InferDevice;
    if (options.detector !== undefined && !DETECTOR_MODELS.includes(options.detector)) {
      throw new RangeError(
        `Expected one of ${DETECTOR_MODELS.map((m) => `'${m}'`).join(', ')} for detector but received '${String(options.detector)}'`,
      );
    }
    const { bytes, source } = readModel(options.model);
    // No spinning between runs: in a photo's prediction the classifier runs once, between the decode and
    // the detector, and its spinning threads took a core from them (2 vCPU Xeon, 2026-12-01, alternated:
    // CPU per photo 54-57 -> 29-31 ms; a 12-megapixel photo 156-169 -> 118-148 ms wall; one face
    // alone 4-5 -> 6 ms; 32 faces at once the same).
    const opened = await openModel(bytes, source, device, { cpuSpin: false });
    const detector = await FaceDetector.create({
      model: options.detector ?? PREDICTION_DEFAULTS.detector,
      device: 'cpu',
    });
    return new FER(opened.session, opened.metadata, opened.provider, detector, source);
  }

  /** The model's metadata, the execution provider in use and the detector. */
  info(): {
    model: string;
    provider: string;
    detector: string;
    labels: string[];
    config: ModelMetadata['config'];
    training?: Record<string, unknown>;
    members?: number;
  } {
    const { training, members } = this.metadata;
    return {
      model: this.modelSource,
      provider: this.provider,
      detector: this.detector.model,
      labels: this.metadata.labels,
      config: this.metadata.config,
      ...(training ? { training } : {}),
      ...(members ? { members } : {}),
    };
  }

  /** Faces and their expressions in one image. */
  async predict(input: ImageInput, options: PredictOptions = {}): Promise<PredictResult> {
    checkInput('input', input, true);
    const [result] = await this.predictBatch([input], options);
    if (result instanceof Error) throw result;
    return result;
  }

  /**
   * Several images; the faces of all of them are classified together, `faceBatch` faces per ONNX Runtime run.
   * A failing input gives its InputError in its place; the others go on.
   */
  async predictBatch(inputs: ImageInput[], options: PredictBatchOptions = {}): Promise<(PredictResult | InputError)[]> {
    if (this.closed)
      throw new Error('This FER instance is closed (close() was called); load the model again with FER.load()');
    if (!Array.isArray(inputs)) throw invalidType('inputs', 'an array of images', inputs);
    for (let i = 0; i < inputs.length; i++) checkInput(`inputs[${i}]`, inputs[i], i in inputs);
    checkPredictOptions(options);
    const results: (PredictResult | InputError)[] = [];
    // faces wait here for a full classifier run; each carries its crop, not its image, so an image is released
    // once searched, and memory stays that of a few images however many the call has
    const waiting: { result: PredictResult; region: Region }[] = [];
    const runs = async (all: boolean) => {
      const faceBatch = options.faceBatch ?? options.batch ?? PREDICTION_DEFAULTS.faceBatch;
      while (waiting.length >= faceBatch || (all && waiting.length > 0))
        await this.classifyRun(waiting.splice(0, faceBatch), options);
    };
    for await (const { image, ms } of decodedInOrder(inputs, PREDICTION_DEFAULTS.decodeConcurrency)) {
      results.push(image instanceof InputError ? image : await this.searched(image, ms, options, waiting));
      await runs(false);
    }
    await runs(true);
    return results;
  }

  /** An image's result, its faces (or whole image) added to `waiting` for classification; an InputError when too small. */
  private async searched(
    image: DecodedImage,
    decodeMs: number,
    options: PredictBatchOptions,
    waiting: { result: PredictResult; region: Region }[],
  ): Promise<PredictResult | InputError> {
    const shorter = Math.min(image.originalWidth, image.originalHeight);
    if (shorter < MIN_INPUT_SIDE)
      return new InputError(
        image.source,
        `image is ${image.originalWidth}x${image.originalHeight} px; at least ${MIN_INPUT_SIDE} px on each side is needed ` +
          `(a smaller image holds too little of a face to read an expression from; the model sees faces at ${this.metadata.input.size} px)`,
      );
    const result: PredictResult = {
      source: image.source,
      width: image.originalWidth,
      height: image.originalHeight,
      faces: [],
      detected: false,
      noFace: false,
      wholeImage: false,
    };
    const start = performance.now();
    for (const region of await this.regions(image, options, result)) waiting.push({ result, region });
    if (options.timings) result.timings = { decode: decodeMs, detect: performance.now() - start, classify: 0 };
    return result;
  }

  /** One classifier run: its faces' answers added to their results, its time to theirs (with timings). */
  private async classifyRun(part: { result: PredictResult; region: Region }[], options: PredictOptions): Promise<void> {
    const start = performance.now();
    const faces = await this.classify(
      part.map((p) => p.region),
      options,
    );
    const ms = performance.now() - start;
    part.forEach((p, j) => p.result.faces.push(faces[j]));
    if (options.timings) for (const r of new Set(part.map((p) => p.result))) r.timings!.classify += ms;
  }

  private async regions(image: DecodedImage, options: PredictOptions, result: PredictResult): Promise<Region[]> {
    const sx = image.originalWidth / image.width,
      sy = image.originalHeight / image.height;
    const { size, channels } = this.metadata.input;
    const region = (square: FaceSquare, box: Region['box'], score: number | null): Region => {
      const crop = new Float32Array(channels * size * size);
      faceTensor(image, square, size, channels, crop, 0);
      return { crop, sx, sy, square, box, score };
    };
    const whole = (): Region =>
      region(
        { cx: image.width / 2, cy: image.height / 2, side: Math.max(image.width, image.height), angle: 0 },
        { x: 0, y: 0, width: image.originalWidth, height: image.originalHeight },
        null,
      );
    const detect = options.detect ?? 'auto';
    if (detect === false || (detect === 'auto' && Math.max(image.originalWidth, image.originalHeight) <= SMALL_IMAGE))
      return [whole()];
    result.detected = true;
    const faces: FaceBox[] = await this.detector.detect(image.rgb, image.width, image.height, {
      threshold: options.threshold,
    });
    if (faces.length === 0) {
      result.noFace = true;
      if (!options.wholeImageFallback) return [];
      result.wholeImage = true;
      return [whole()];
    }
    const align = options.align ?? options.margin === undefined;
    return faces.map((f) =>
      region(
        align ? faceSquare(f) : boxSquare(f, options.margin ?? PREDICTION_DEFAULTS.margin),
        { x: f.x * sx, y: f.y * sy, width: f.width * sx, height: f.height * sy },
        f.score,
      ),
    );
  }

  private async classify(regions: Region[], options: PredictOptions): Promise<FaceResult[]> {
    const { size, channels } = this.metadata.input;
    const per = channels * size * size;
    const images = new Float32Array(regions.length * per);
    regions.forEach((r, i) => images.set(r.crop, i * per));
    const out = await this.session.run({
      image: new ort.Tensor('float32', images, [regions.length, channels, size, size]),
    });
    const probs = out.probs.data as Float32Array;
    const emb = out.embeddings.data as Float32Array;
    // a broken model (diverged weights) answers NaN for every image: an error naming it, never `neutral NaN%`
    checkProbabilities(probs, regions.length, this.metadata.labels, this.modelSource);
    if (options.embeddings) checkEmbeddings(emb, this.modelSource);
    const { labels, config } = this.metadata;
    const C = labels.length;
    const topN = Math.max(1, Math.min(options.top ?? PREDICTION_DEFAULTS.top, C));
    return regions.map((r, i) => {
      const p = probs.subarray(i * C, (i + 1) * C);
      const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a]);
      const { sx, sy } = r;
      const face: FaceResult = {
        box: r.box,
        crop: {
          x: (r.square.cx - r.square.side / 2) * sx,
          y: (r.square.cy - r.square.side / 2) * sy,
          width: r.square.side * sx,
          height: r.square.side * sy,
          angle: (r.square.angle * 180) / Math.PI,
        },
        detectorScore: r.score,
        label: labels[order[0]],
        confidence: p[order[0]],
        probabilities: Object.fromEntries(labels.map((l, c) => [l, p[c]])),
        top: order.slice(0, topN).map((c) => ({ label: labels[c], probability: p[c] })),
      };
      if (options.embeddings) {
        const base = i * config.k * config.d;
        face.embeddings = Array.from({ length: config.k }, (_, j) =>
          emb.slice(base + j * config.d, base + (j + 1) * config.d),
        );
      }
      return face;
    });
  }

  /**
   * The faces of a video file, frame by frame with track ids (`for await (const f of fer.predictVideo(file))`);
   * needs ffmpeg (lib/video/ffmpeg.ts). Frames are analysed at `fps` (default 5); see VideoOptions.
   */
  predictVideo(file: string, options: PredictVideoOptions = {}): VideoAnalysis {
    this.checkOpen();
    if (typeof file !== 'string' || file === '') throw invalidType('file', 'a video file path', file);
    const analysis = new VideoAnalysis(file, this.framePredictor(options), this.metadata.labels, options, (a) =>
      this.videos.delete(a),
    );
    this.videos.add(analysis);
    return analysis;
  }

  /** A tracker for the caller's own frames (a webcam's): `await t.push({ data, width, height, channels }, seconds)`. */
  tracker(options: TrackerOptions = {}): FaceTracker {
    this.checkOpen();
    return new FaceTracker(this.framePredictor(options), this.metadata.labels, options);
  }

  /** predict() bound to a video's prediction options (faces always searched for, embeddings for the tracker). */
  private framePredictor(options: PredictOptions): FramePredictor {
    const { threshold, align, margin, top, wholeImageFallback } = options;
    const predictOptions: PredictOptions = {
      threshold,
      align,
      margin,
      top,
      wholeImageFallback,
      detect: options.detect ?? true,
    };
    for (const key of Object.keys(predictOptions) as (keyof PredictOptions)[])
      if (predictOptions[key] === undefined) delete predictOptions[key];
    checkPredictOptions(predictOptions);
    return (pixels) => this.predict(pixels, { ...predictOptions, embeddings: true });
  }

  private checkOpen(): void {
    if (this.closed)
      throw new Error('This FER instance is closed (close() was called); load the model again with FER.load()');
  }

  /** Releases the model and the detector, after ending any video being read; calling it again does nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.videos].map((v) => v.stop()));
    await this.session.release();
    await this.detector.close();
  }
}
