// Where work runs: one device type and one parser for the loss, the training
// engine and inference, so that every API and CLI accepts the same spellings
// and words its errors the same way.
import { backendInfo } from './backend.js';
import { invalidRange, invalidType } from './validate.js';

/**
 * 'auto' (the GPU when one is usable, else the CPU), 'cpu', 'cuda' (GPU 0),
 * 'cuda:N' (the training engine), or 'webgpu' (inference only).
 */
export type Device = 'auto' | 'cpu' | 'cuda' | `cuda:${number}` | 'webgpu';

/** What a device string names. `index` is the CUDA device (0 unless 'cuda:N'). */
export interface ParsedDevice {
  kind: 'auto' | 'cpu' | 'cuda' | 'webgpu';
  index: number;
}

/** The parts of the library that take a device, and the spellings each accepts. */
export type DeviceUse = 'loss' | 'engine' | 'inference';
const ACCEPTED: Record<DeviceUse, readonly string[]> = {
  loss: ['auto', 'cpu', 'cuda'],
  engine: ['auto', 'cpu', 'cuda', 'cuda:N'],
  inference: ['auto', 'cpu', 'cuda', 'webgpu'],
};

/** The accepted spellings for `use`, as the CLIs list them in --help and choices. */
export function deviceChoices(use: DeviceUse): readonly string[] {
  return ACCEPTED[use];
}

function expectedText(use: DeviceUse): string {
  const quoted = ACCEPTED[use].map((d) => `'${d}'`);
  return `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`;
}

/** Parses a device for `use`; `name` is the parameter in the error ("options.device", "--device"). */
export function parseDevice(name: string, value: unknown, use: DeviceUse): ParsedDevice {
  if (typeof value !== 'string') throw invalidType(name, expectedText(use), value);
  const m = /^(auto|cpu|cuda|webgpu)(?::(\d+))?$/.exec(value);
  const kind = m?.[1] as ParsedDevice['kind'] | undefined;
  const indexed = m?.[2] !== undefined;
  const ok = kind !== undefined && ACCEPTED[use].includes(kind) && (!indexed || (kind === 'cuda' && use === 'engine'));
  if (!ok) throw invalidRange(name, expectedText(use), `'${value}'`);
  return { kind: kind!, index: indexed ? Number(m![2]) : 0 };
}

/**
 * The loss and the engine: 'auto' becomes the GPU when one is usable, else
 * the CPU; 'cuda' where none is usable is an error saying why.
 */
export function resolveComputeDevice(device: ParsedDevice): { kind: 'cpu' | 'cuda'; index: number } {
  const { cuda } = backendInfo();
  if (device.kind === 'cpu') return { kind: 'cpu', index: 0 };
  if (device.kind === 'auto') return cuda.usable ? { kind: 'cuda', index: 0 } : { kind: 'cpu', index: 0 };
  if (device.kind !== 'cuda') throw new RangeError(`Expected a CPU or CUDA device but received '${device.kind}'`);
  if (!cuda.usable) {
    throw new RangeError(
      `Expected a usable CUDA GPU for device 'cuda' but received none: ${cuda.error ?? 'no device'}. ` +
        `Use device 'cpu' or 'auto'.`,
    );
  }
  return { kind: 'cuda', index: device.index };
}
