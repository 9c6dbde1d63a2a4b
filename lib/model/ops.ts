// The model's operations as data: what lib/model/architecture.ts builds, the exporter writes and the
// engine's binding (lib/native.ts) takes, in a module that imports nothing.

export type Padding = 'valid' | 'same';

export type Op =
  | { op: 'standardize'; name: string; input: string; output: string; eps: number } // per image: (x - mean) / sqrt(var + eps)
  | {
      op: 'conv';
      name: string;
      input: string;
      output: string;
      inC: number;
      outC: number;
      kernel: number;
      stride: 1 | 2;
      padding: Padding;
      depthwise: boolean;
    }
  | { op: 'bn'; name: string; input: string; output: string; channels: number }
  | { op: 'relu'; input: string; output: string }
  | { op: 'maxpool'; input: string; output: string } // 3x3, stride 2, same
  | { op: 'add'; inputs: [string, string]; output: string }
  | { op: 'gap'; input: string; output: string } // [N, C, H, W] -> [N, C]
  | { op: 'dense'; name: string; input: string; output: string; inF: number; outF: number }
  | { op: 'l2norm'; input: string; output: string } // x / sqrt(max(|x|^2, L2_EPS)), per row
  | { op: 'concat'; inputs: string[]; output: string } // along features
  | { op: 'dropout'; input: string; output: string; rate: number }
  | { op: 'softmax'; input: string; output: string };

/** Parameters of an op: shapes by parameter name. Conv weights are OIHW, dense [out, in]. */
export interface ParamSpec {
  name: string;
  shape: number[];
  /** how to initialise: He-normal fan-in, Glorot-uniform, ones, zeros */
  init: 'he' | 'glorot' | 'one' | 'zero';
  /** false for fixed parameters (running statistics) */
  trainable: boolean;
}
