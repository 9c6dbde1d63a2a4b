// Loads the compiled addon: a prebuilt binary from prebuilds/ when one matches
// this platform, else the local build in build/Release (node-gyp-build decides).
// When neither loads, the error says what to run.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeStepOptions } from './engine/step-options.js';
import type { HasParams, OpFields, OpName, OpTable } from './model/ops.js';

export interface NativeLossRequest {
  embeddings: Float32Array;
  labels: Int32Array;
  classAccuracy: Float32Array | null;
  k: number;
  n: number;
  d: number;
  numClasses: number;
  weights: Float64Array;
  grad: boolean;
  device: 'cpu' | 'cuda';
  gradOut?: Float32Array;
}

export interface NativeLossResult {
  loss: number;
  fd: number;
  md: number;
  ed: number;
  grad?: Float32Array;
}

/** One training step's outcome. */
export interface NativeStepResult {
  loss: number;
  ce: number;
  fd: number;
  md: number;
  ed: number;
  /** correct predictions in the batch */
  correct: number;
  predictions: Int32Array;
  /** false when the loss or a gradient was NaN or infinite: the update was skipped */
  finite: boolean;
  /** the first layer whose output was not finite */
  badLayer?: string;
}

/** What the addon was built with and what this machine can run now (lib/backend.ts's backendInfo()). */
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
  cpu: {
    threads: number;
    /** the fp32 GEMM kernel chosen on this CPU (native/engine/gemm_cpu.cpp) */
    gemm: 'avx512' | 'avx2' | 'portable';
    /** the CPU has bf16 multiply-add instructions (AVX512-BF16 or AMX-BF16) */
    bf16: boolean;
    /**
     * what precision 'bf16' runs here: 'avx512bf16' (vdpbf16ps), or 'emulated' (the fp32 kernels on bf16-rounded
     * operands; native/KERNELS.md); 'reference' under ADCORRE_BF16_KERNEL=reference (tests)
     */
    bf16Kernel: 'avx512bf16' | 'emulated' | 'reference';
  };
}

/**
 * One op of the engine's program (parse_program in native/napi/program_binding.cpp): its kind in the op
 * table (native/engine/op_table.h), its tensors by id, the index of its first parameter tensor (the
 * others follow in the table's order) and its fields by the table's names.
 */
export type NativeOp = {
  [K in OpName]: { kind: K; name: string; inputs: number[]; output: number } & (HasParams<K> extends true
    ? { param: number }
    : unknown) &
    OpFields<K>;
}[OpName];

/** The op table (native/engine/op_table.h): lib/model/ops.ts documents its form. */
export type NativeOpTable = OpTable;

/** Every tensor's channels, height and width by id, and every op's padding [top, left, bottom, right] (4 per op). */
export interface NativeProgramShapes {
  c: Int32Array;
  h: Int32Array;
  w: Int32Array;
  pads: Int32Array;
}

/** The program the engine executes: tensors by id, ops in order, parameters by index. */
export interface NativeProgram {
  ops: NativeOp[];
  tensors: number;
  input: number;
  embeddings: number;
  logits: number;
  probs: number;
  channels: number;
  size: number;
  k: number;
  d: number;
  classes: number;
  paramSizes: number[];
  trainable: boolean[];
  decay: boolean[];
}

/** The training engine (native/napi/engine_binding.cpp); lib/engine/engine.ts validates every call. */
export interface NativeEngine {
  /** options: every one given (engine_binding.cpp has no defaults; a missing one is an error naming it) */
  trainStep(images: Float32Array, labels: Int32Array, options: NativeStepOptions): NativeStepResult;
  /** the step on a worker thread; the inputs copied at the call; refused while one runs on the engine */
  trainStepAsync(images: Float32Array, labels: Int32Array, options: NativeStepOptions): Promise<NativeStepResult>;
  predict(
    images: Float32Array,
    n: number,
    classes: number,
    embeddingSize: number,
  ): { probs: Float32Array; embeddings: Float32Array };
  paramCount(): number;
  getParam(i: number): Float32Array;
  setParam(i: number, data: Float32Array): void;
  getGrad(i: number): Float32Array;
  getMoments(i: number): { m: Float32Array; v: Float32Array };
  setMoments(i: number, m: Float32Array, v: Float32Array): void;
  steps: number;
  /** what the GEMM-based ops compute in, 'auto' resolved (fixed at construction) */
  readonly precision: 'fp32' | 'bf16';
}

/** Every binding of the addon, declared once (native/napi/*.cpp). */
export interface NativeBinding {
  /**
   * program: lib/engine/engine.ts buildProgram(); device: -1 for the CPU, else a CUDA device index; precision:
   * 'fp32' (default), 'bf16' (the CPU only) or 'auto' (native/engine/precision.h)
   */
  Engine: new (program: NativeProgram, maxBatch: number, device: number, precision?: string) => NativeEngine;
  loss(request: NativeLossRequest): NativeLossResult;
  /** copies embeddings and labels at the call; writes gradOut when done (rejects if it was detached meanwhile) */
  lossAsync(request: NativeLossRequest): Promise<NativeLossResult>;
  findNonFinite(values: Float32Array): number;
  /** the op table (native/engine/op_table.h); scripts/gen-ops.js writes it to lib/model/ops.generated.ts */
  opTable(): NativeOpTable;
  /** the shapes the engine would give `program`'s tensors (the program checked as the Engine checks it) */
  programShapes(program: NativeProgram): NativeProgramShapes;
  /** along one axis: a window op's output side and 'same' padding (the op table's window rule) */
  windowGeometry(
    side: number,
    kernel: number,
    stride: number,
    same: boolean,
  ): { out: number; before: number; after: number };
  /** what lib/backend.ts's backendInfo() returns (its BackendInfo documents the fields) */
  backendInfo(): BackendInfo;
  /** one augmentation warp: native/data/augment.h */
  warpAffine(
    src: Uint8Array,
    w: number,
    h: number,
    srcChannels: number,
    dst: Float32Array,
    dstOffset: number,
    outW: number,
    outH: number,
    dstChannels: number,
    matrix: Float64Array,
    contrast: number,
    brightness: number,
  ): void;
  /** a window of an RGB image resampled: native/data/resample.h (lib/pixels.ts calls it) */
  resampleRgb(
    src: Uint8Array,
    sw: number,
    sh: number,
    x: number,
    y: number,
    width: number,
    height: number,
    dst: Float32Array,
    dw: number,
    dh: number,
    border: 0 | 1 | 2,
    constant: number,
    scale: number,
    bias: number,
  ): void;
  /** GPU microseconds of `reps` runs, inputs already on the device (benchmarks) */
  cudaTime(request: NativeLossRequest, reps: number, graph: boolean): Float64Array;
}

export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Every export of NativeBinding, checked at load: a build from older sources lacks some. */
const BINDINGS = [
  'Engine',
  'loss',
  'lossAsync',
  'findNonFinite',
  'opTable',
  'programShapes',
  'windowGeometry',
  'backendInfo',
  'warpAffine',
  'resampleRgb',
  'cudaTime',
] as const satisfies readonly (keyof NativeBinding)[];
// a compile error here names a binding added to NativeBinding but not to BINDINGS
const everyBindingListed: Exclude<keyof NativeBinding, (typeof BINDINGS)[number]> extends never ? true : never = true;
void everyBindingListed;

/** Every method of NativeEngine (its prototype's), checked at load as the bindings are. */
const ENGINE_METHODS = [
  'trainStep',
  'trainStepAsync',
  'predict',
  'paramCount',
  'getParam',
  'setParam',
  'getGrad',
  'getMoments',
  'setMoments',
] as const satisfies readonly (keyof NativeEngine)[];
const everyMethodListed: Exclude<
  keyof NativeEngine,
  (typeof ENGINE_METHODS)[number] | 'steps' | 'precision'
> extends never
  ? true
  : never = true;
void everyMethodListed;

/**
 * The exports `binding` lacks. An addon left from older sources (a clone
 * pulled but not rebuilt) loads, then fails later with "x is not a function";
 * this turns that into an error saying what to run.
 */
export function missingBindings(binding: Record<string, unknown>): string[] {
  const missing: string[] = BINDINGS.filter((name) => typeof binding[name] !== 'function');
  const engine = (binding.Engine as { prototype?: Record<string, unknown> } | undefined)?.prototype;
  if (engine) missing.push(...ENGINE_METHODS.filter((m) => typeof engine[m] !== 'function').map((m) => `Engine.${m}`));
  return missing;
}

function load(): NativeBinding {
  const require = createRequire(import.meta.url);
  let loaded: NativeBinding;
  try {
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeBinding;
    loaded = nodeGypBuild(packageRoot);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    // scripts/install.js leaves the reason it could not build the addon here
    const failureNote = join(packageRoot, 'install-failure.txt');
    const atInstall = existsSync(failureNote) ? readFileSync(failureNote, 'utf8').trim() : '';
    throw new Error(
      `adcorre-native could not load its native addon (the Ad-Corre loss and the training engine) for ` +
        `${process.platform}-${process.arch} (Node ${process.versions.node}).\n` +
        (atInstall ? `When it was installed, it could not be built: ${atInstall}.\n` : '') +
        `The package ships a prebuilt binary for linux-x64 with glibc; elsewhere it is compiled when installed.\n` +
        `Possible solutions:\n` +
        `- Install cmake >= 3.18 and a C++17 compiler (Debian/Ubuntu: sudo apt-get install cmake g++; ` +
        `macOS: xcode-select --install && brew install cmake), then run:\n    npm rebuild adcorre-native\n` +
        `  (the CUDA kernels are compiled too when the CUDA toolkit's nvcc is found).\n` +
        `- In a clone of the repository: npm run compile:native\n` +
        `Inference (FER, adcorre-predict) does not need the addon.\n` +
        `Cause: ${reason.split('\n')[0]}`,
    );
  }
  const missing = missingBindings(loaded as unknown as Record<string, unknown>);
  if (missing.length > 0)
    throw new Error(
      `adcorre-native's native addon is out of date: it was built from older sources and lacks ` +
        `${missing.join(', ')}.\n` +
        `Rebuild it: in a clone of the repository, npm run compile:native; in an installed package, ` +
        `npm rebuild adcorre-native.\nInference (FER, adcorre-predict) does not need the addon.`,
    );
  return loaded;
}

let binding: NativeBinding | undefined;

/** The native addon, loaded on first use. */
export function native(): NativeBinding {
  binding ??= load();
  return binding;
}

let unavailable = false;

/**
 * The addon where it loads, else null (inference runs without it, in JavaScript):
 * the load is tried once.
 */
export function optionalNative(): NativeBinding | null {
  if (binding) return binding;
  if (unavailable) return null;
  try {
    return native();
  } catch {
    unavailable = true;
    return null;
  }
}
