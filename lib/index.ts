export { adCorreLoss, adCorreLossAsync } from './loss.js';
export type { AdCorreOptions, AdCorreResult, AdCorreWeights } from './loss.js';
export { backendInfo } from './backend.js';
export type { BackendInfo, CudaDeviceInfo } from './backend.js';
export { deviceChoices, parseDevice } from './device.js';
export type { Device, DeviceUse, ParsedDevice } from './device.js';
export { ConfusionTracker } from './confusion.js';
export type { ConfusionTrackerState } from './confusion.js';
export * from './data/index.js';
export { FER, NoModelError, DEFAULT_MODEL, BUNDLED_MODELS, type BundledModel } from './infer/fer.js';
export type {
  FaceResult,
  LoadOptions,
  PredictBatchOptions,
  PredictOptions,
  PredictResult,
  PredictTimings,
  PredictVideoOptions,
  TrackerOptions,
} from './infer/fer.js';
export { VideoAnalysis, VIDEO_DEFAULTS } from './video/predict-video.js';
export type { AnalysedFrame, VideoOptions } from './video/predict-video.js';
export { FaceTracker } from './video/face-tracker.js';
export { VideoError } from './video/probe.js';
export type { VideoInfo } from './video/probe.js';
export { FfmpegMissingError } from './video/ffmpeg.js';
export type { TrackSummary, VideoFace, VideoFrameRecord } from './video/types.js';
export { PREDICTION_DEFAULTS } from './infer/defaults.js';
export { InputError } from './infer/image.js';
export type { ImageInput, RawPixels } from './infer/image.js';
export { FaceDetector } from './infer/detect.js';
export type { DetectorModel, FaceBox } from './infer/detect.js';
export type { InferDevice } from './infer/session.js';
export { PRESETS, PAPER, validateConfig } from './model/config.js';
export type { XceptionConfig } from './model/config.js';
export { buildArchitecture, parameterCount } from './model/architecture.js';
export { initWeights } from './model/weights.js';
export type { Weights } from './model/weights.js';
export { exportOnnx } from './model/onnx.js';
export { readMetadata } from './model/onnx-metadata.js';
export { readOnnxMembers, readOnnxWeights } from './model/onnx-weights.js';
export type { ModelMetadata } from './model/onnx-metadata.js';
export { Engine } from './engine/engine.js';
export type { EngineState, Precision, StepStats, TrainStepOptions } from './engine/engine.js';
export { VERSION } from './version.js';
