export { adCorreLoss, adCorreLossAsync } from './loss.js';
export type { AdCorreOptions, AdCorreResult, AdCorreWeights } from './loss.js';
export { backendInfo } from './backend.js';
export type { BackendInfo, CudaDeviceInfo, Device } from './backend.js';
export { ConfusionTracker } from './confusion.js';
export type { ConfusionTrackerState } from './confusion.js';
export * from './data/index.js';
