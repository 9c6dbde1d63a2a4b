// What the addon was built with and what this machine can run now.
import { native } from './native.js';

export interface CudaDeviceInfo {
  index: number;
  name: string;
  /** e.g. "9.0" for an H100 */
  computeCapability: string;
  /** bytes */
  totalMemory: number;
}

export interface BackendInfo {
  cuda: {
    /** the addon was compiled with nvcc */
    compiled: boolean;
    /** the architectures compiled in, e.g. "75-real,...,90-real,...,120-virtual" */
    archs: string;
    /** CUDA runtime linked into the addon, e.g. 13000 */
    runtimeVersion: number;
    /** the installed driver's CUDA version, 0 when there is none */
    driverVersion: number;
    devices: CudaDeviceInfo[];
    /** a kernel can run now */
    usable: boolean;
    /** why CUDA is not usable, when it is not */
    error?: string;
  };
  cpu: { threads: number };
}

let cached: BackendInfo | undefined;

/** What was built (CUDA compiled in? which archs) and what is usable now (devices, CPU threads). */
export function backendInfo(): BackendInfo {
  cached ??= native().backendInfo();
  return structuredClone(cached);
}
