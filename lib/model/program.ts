// The native program of an architecture (tensors by id, ops with parameter
// indices), and what the op table (native/engine/op_table.h, through the
// addon) says about it: the ops' constants and every tensor's shape. The
// training engine runs this program; the memory estimate and the ONNX
// exporter read their shapes here, so that no shape rule or constant of an op
// is written outside the op table.
import { native, type NativeOpTable, type NativeProgram } from '../native.js';
import type { Architecture } from './architecture.js';

/** The program and the id of each named tensor. */
function programWithIds(arch: Architecture): { program: NativeProgram; ids: Map<string, number> } {
  const ids = new Map<string, number>();
  const id = (name: string) => {
    if (!ids.has(name)) ids.set(name, ids.size);
    return ids.get(name)!;
  };
  id(arch.image);
  const paramIndex = new Map(arch.params.map((p, i) => [p.name, i]));
  const ops = arch.ops.map((op) => {
    const inputs = ('inputs' in op ? op.inputs : [op.input]).map(id);
    const base = { kind: op.op, name: 'name' in op ? op.name : `${op.op}:${op.output}`, inputs, output: id(op.output) };
    switch (op.op) {
      case 'conv':
        return {
          ...base,
          param: paramIndex.get(`${op.name}.weight`),
          inC: op.inC,
          outC: op.outC,
          kernel: op.kernel,
          stride: op.stride,
          same: op.padding === 'same',
          depthwise: op.depthwise,
        };
      case 'bn':
        return { ...base, param: paramIndex.get(`${op.name}.gamma`), outC: op.channels };
      case 'dense':
        return { ...base, param: paramIndex.get(`${op.name}.weight`), inC: op.inF, outC: op.outF };
      case 'dropout':
        return { ...base, rate: op.rate };
      default:
        return base;
    }
  });
  const c = arch.config;
  const program: NativeProgram = {
    ops,
    tensors: ids.size,
    input: id(arch.image),
    embeddings: id(arch.embeddings),
    logits: id(arch.logits),
    probs: id(arch.probs),
    channels: c.channels,
    size: c.inputSize,
    k: c.k,
    d: c.d,
    classes: c.classes,
    paramSizes: arch.params.map((p) => p.shape.reduce((a, b) => a * b, 1)),
    trainable: arch.params.map((p) => p.trainable),
    decay: arch.params.map((p) => p.trainable && p.name.endsWith('.weight')),
  };
  return { program, ids };
}

/** The native program: tensors by id, ops with parameter indices. */
export function buildProgram(arch: Architecture): NativeProgram {
  return programWithIds(arch).program;
}

let table: NativeOpTable | undefined;

/** The op table: each op's input and parameter counts, and the ops' constants (needs the addon). */
export function opTable(): NativeOpTable {
  table ??= native().opTable();
  return table;
}

/** Channels, height and width of one sample of a tensor (features: c x 1 x 1). */
export interface TensorShape {
  c: number;
  h: number;
  w: number;
}

export interface ArchitectureShapes {
  /** the shape of the named tensor */
  of(tensor: string): TensorShape;
  /** the padding of op `index` of arch.ops, [top, left, bottom, right] (0 but for 'same' windows) */
  pads(index: number): [number, number, number, number];
}

/** Every tensor's shape as the training engine gives it (needs the addon). */
export function architectureShapes(arch: Architecture): ArchitectureShapes {
  const { program, ids } = programWithIds(arch);
  const { c, h, w, pads } = native().programShapes(program);
  const idOf = (tensor: string) => {
    const id = ids.get(tensor);
    if (id === undefined) throw new RangeError(`Expected a tensor of the architecture but received '${tensor}'`);
    return id;
  };
  return {
    of(tensor) {
      const id = idOf(tensor);
      return { c: c[id], h: h[id], w: w[id] };
    },
    pads(index) {
      const [top, left, bottom, right] = pads.subarray(4 * index, 4 * index + 4);
      return [top, left, bottom, right];
    },
  };
}
