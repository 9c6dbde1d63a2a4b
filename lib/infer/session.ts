// ONNX Runtime sessions on the chosen execution provider. onnxruntime-node
// bundles CPU and WebGPU; its CUDA provider is downloaded at install time on
// Linux x64 (absent when the install skipped it, ONNXRUNTIME_NODE_INSTALL=skip).
import { existsSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import type { Device } from '../device.js';

// ONNX Runtime's own logger writes failures (a CUDA provider library that will
// not load) to stderr in red before the error reaches us, next to the clear
// message we give; session options' logSeverityLevel does not cover it. Our
// errors say what failed, so only fatal lines are left to it.
ort.env.logLevel = 'fatal';

// ONNX Runtime's telemetry (the 1DS SDK's system information, on Linux too)
// reads /proc/self/cmdline when the process's first session is created and
// matches it against the std::regex "(.*)[ ]*.*[\n]*". libstdc++'s regex
// executor recurses three frames (about 290 bytes of stack) per character, on
// the main thread, so a command line longer than about 28,000 characters
// overflows its 8 MiB stack: `adcorre-predict photos/*.jpg` with some 430
// FER-2013 paths died with SIGSEGV before printing anything (issue #26; the
// environment's size does not matter, only argv's). ORT_DISABLE_TELEMETRY=1
// skips that code. ONNX Runtime reads the variable when it creates its
// environment, lazily at the first session, so setting it here is in time.
// A value the user chose (0 included) is kept; an empty one is not a choice.
if (!process.env.ORT_DISABLE_TELEMETRY) process.env.ORT_DISABLE_TELEMETRY = '1';

/** Inference devices: the execution providers tried (see lib/device.ts for the one parser). */
export type InferDevice = Extract<Device, 'auto' | 'cpu' | 'cuda' | 'webgpu'>;

/** Session settings beside the device. */
export interface SessionSettings {
  /** ONNX Runtime's intra-op threads on the CPU provider (default: its own choice, one per core) */
  cpuThreads?: number;
  /**
   * whether ONNX Runtime's CPU threads spin between runs waiting for work (its default, true).
   * Spinning saves about 1 ms per face on a lone classification and burns a core meanwhile.
   */
  cpuSpin?: boolean;
}

export interface OpenedSession {
  session: ort.InferenceSession;
  /** the execution provider that runs it */
  provider: 'cpu' | 'cuda' | 'webgpu';
}

function nvidiaGpuPresent(): boolean {
  return existsSync('/dev/nvidia0') || existsSync('/proc/driver/nvidia/version');
}

function hardwareGpuPresent(): boolean {
  return nvidiaGpuPresent() || existsSync('/dev/dri/renderD128');
}

async function tryCreate(
  model: string | Uint8Array,
  provider: OpenedSession['provider'],
  settings: SessionSettings,
): Promise<OpenedSession> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    logSeverityLevel: 3,
    graphOptimizationLevel: 'all',
    ...(settings.cpuThreads ? { intraOpNumThreads: settings.cpuThreads } : {}),
    ...(settings.cpuSpin === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
  };
  const session =
    typeof model === 'string'
      ? await ort.InferenceSession.create(model, options)
      : await ort.InferenceSession.create(model, options);
  return { session, provider };
}

/**
 * A session on `device`. 'auto' tries CUDA where an NVIDIA GPU is present,
 * then WebGPU where a hardware GPU is, then the CPU; an explicit device that
 * cannot be used is an error saying why.
 */
export async function openSession(
  model: string | Uint8Array,
  device: InferDevice = 'auto',
  settings: SessionSettings = {},
): Promise<OpenedSession> {
  if (device === 'cpu') return tryCreate(model, 'cpu', settings);
  if (device === 'cuda' || device === 'webgpu') {
    try {
      return await tryCreate(model, device, settings);
    } catch (err) {
      const hint =
        device === 'cuda'
          ? 'onnxruntime-node installs its CUDA provider at install time on Linux x64 (not when ONNXRUNTIME_NODE_INSTALL=skip or offline); it also needs CUDA 12 and cuDNN 9 libraries'
          : 'WebGPU needs a GPU with Vulkan (Linux), Metal (macOS) or D3D12 (Windows) drivers';
      throw new Error(
        `The ${device} execution provider cannot run here: ${(err as Error).message.split('\n')[0]}. ${hint}. Use --device cpu or auto.`,
      );
    }
  }
  if (nvidiaGpuPresent()) {
    try {
      return await tryCreate(model, 'cuda', settings);
    } catch {
      /* fall through */
    }
  }
  if (hardwareGpuPresent()) {
    try {
      return await tryCreate(model, 'webgpu', settings);
    } catch {
      /* fall through */
    }
  }
  return tryCreate(model, 'cpu', settings);
}

export { ort };
