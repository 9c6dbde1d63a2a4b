// Prediction's defaults, in one place. The API applies them (FER.load,
// predict, predictBatch, FaceDetector); adcorre-predict shows them in its
// --help and leaves an option it was not given to the API.
// A leaf module: the modules whose defaults these are import it, not the other way round.

/** 'multi' (both models, and tiles on large photos), or one model on the whole image (lib/infer/detect.ts). */
export type DetectorModel = 'multi' | 'full' | 'short';
export const DETECTOR_MODELS: readonly DetectorModel[] = ['multi', 'full', 'short'];

/** The box-based framing (align: false): the box's longer side times margin (lib/infer/align.ts). */
export const BOX_MARGIN = 1.35;

export const PREDICTION_DEFAULTS = {
  /** the face detector set-up (FER.load's `detector`, --detector) */
  detector: 'multi' as DetectorModel,
  /** the detector's score threshold (`threshold`, --threshold) */
  threshold: 0.5,
  /** labels listed per face, best first (`top`, --top) */
  top: 3,
  /** without alignment: crop side per detected box side (`margin`, --margin) */
  margin: BOX_MARGIN,
  /**
   * faces classified together in one ONNX Runtime run (predictBatch's `faceBatch`): the faces of all
   * the images of one call, in runs of this many
   */
  faceBatch: 32,
  /**
   * adcorre-predict's --batch: images decoded, searched and classified per predictBatch call (each held
   * decoded, at up to MAX_WORKING_SIDE on its longer side, until its call ends)
   */
  imageBatch: 16,
  /**
   * predictBatch: images decoded at once (its memory holds about this many decoded images, however many
   * inputs the call has)
   */
  decodeConcurrency: 4,
} as const;
