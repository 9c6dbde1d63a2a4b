// What the addon was built with and what this machine can run now.
import { type BackendInfo, native } from './native.js';

export type { BackendInfo, CudaDeviceInfo } from './native.js';

let cached: BackendInfo | undefined;

/** What was built (CUDA compiled in? which archs) and what is usable now (devices, CPU threads). */
export function backendInfo(): BackendInfo {
  cached ??= native().backendInfo();
  return structuredClone(cached);
}
