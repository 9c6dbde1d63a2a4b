// Memory estimates, so that a batch too large for the machine is refused up
// front with the sizes instead of growing until the kernel kills the process.
import { freemem, totalmem } from 'node:os';
import { type Architecture, buildArchitecture } from './model/architecture.js';
import { evaluationViews, type XceptionConfig } from './model/config.js';
import { architectureShapes } from './model/program.js';

/** The memory this process may use: the machine's, or its cgroup limit when lower. */
export function memoryLimit(): number {
  const constrained = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : undefined;
  const total = totalmem();
  return constrained && constrained > 0 && constrained < total ? constrained : total;
}

/** Floats of every op's output for one image (the network's activations), input included, at the engine's shapes. */
export function activationFloats(config: XceptionConfig, arch: Architecture = buildArchitecture(config)): number {
  const shapes = architectureShapes(arch);
  const floats = (tensor: string) => {
    const { c, h, w } = shapes.of(tensor);
    return c * h * w;
  };
  return arch.ops.reduce((total, op) => total + floats(op.output), floats(arch.image));
}

/**
 * Bytes the CPU training engine holds for batches of `batch`: activations and
 * their gradients (2.3x the activations' floats, measured on the mini and
 * compact presets; 2.5 here), plus weights, gradients and two Adam moments.
 */
export function trainingMemory(
  config: XceptionConfig,
  batch: number,
): { perImage: number; fixed: number; total: number } {
  const arch = buildArchitecture(config);
  const perImage = activationFloats(config, arch) * 4 * 2.5;
  const params = arch.params.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  const fixed = params * 4 * 4 + (256 << 20); // + the runtime, the data loader, the cache's bookkeeping
  return { perImage, fixed, total: fixed + perImage * batch };
}

/**
 * Bytes ONNX Runtime may hold to run one batch of `batch` images (an upper
 * bound: every activation of every evaluation view and ensemble member kept).
 * `members`: an ensemble's architectures (default: the one model's).
 */
export function inferenceMemory(
  config: XceptionConfig,
  batch: number,
  members: readonly XceptionConfig[] = [config],
): { perImage: number; fixed: number; total: number } {
  const activations = members.reduce((sum, m) => sum + activationFloats(m), 0);
  const perImage = activations * 4 * evaluationViews(config).length;
  const fixed = 256 << 20; // the runtime, the weights, the data loader
  return { perImage, fixed, total: perImage * batch + fixed };
}

export const formatBytes = (bytes: number): string =>
  bytes >= 2 ** 30
    ? `${(bytes / 2 ** 30).toFixed(1)} GiB`
    : `${(bytes / 2 ** 20).toFixed(bytes >= 2 ** 24 ? 0 : 1)} MiB`;

/** "this machine has 23.5 GiB (21.0 GiB free)" */
export function describeMemory(): string {
  return `this machine allows ${formatBytes(memoryLimit())} (${formatBytes(freemem())} free now)`;
}
