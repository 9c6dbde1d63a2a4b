export { EXPRESSIONS, labelNames, FER2013_CODES, RAFDB_CODES, AFFECTNET_CODES, FOLDER_ALIASES } from './labels.js';
export type { ClassCount, Expression } from './labels.js';
export { openDataset, detectFormat } from './open.js';
export type { OpenOptions } from './open.js';
export { DATASET_FORMATS, getSplit } from './dataset.js';
export type { Box, Dataset, DatasetFormat, PixelStore, SampleRef, Split } from './dataset.js';
export {
  FERPLUS_LABEL_MODES,
  FERPLUS_PROTOCOLS,
  ferPlusDistribution,
  ferPlusLabel,
  ferPlusReferenceKeeps,
} from './readers/ferplus.js';
export type { FerPlusLabels, FerPlusProtocol } from './readers/ferplus.js';
export { DataLoader } from './loader.js';
export type { Batch, LoaderOptions } from './loader.js';
export { DEFAULT_AUGMENT } from './augment.js';
export type { AugmentOptions } from './augment.js';
export { DataError, SkipReport } from './skips.js';
export type { SkipReason, SkipSummary } from './skips.js';
export { datasetStats, formatStats } from './stats.js';
export type { DatasetStats, SplitStats } from './stats.js';
