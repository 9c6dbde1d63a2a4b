// The native program of an architecture (tensors by id, ops with parameter
// indices), and what the op table (native/engine/op_table.h, through the
// addon) says about it: the ops' constants and every tensor's shape. The
// training engine runs this program; the memory estimate and the ONNX
// exporter read their shapes here, so that no shape rule or constant of an op
// is written outside the op table.
import { native, type NativeOp, type NativeOpTable, type NativeProgram } from '../native.js';
import type { Architecture } from './architecture.js';
import { opFields, opRow } from './ops.js';

/** The program and the id of each named tensor. */
function programWithIds(arch: Architecture): { program: NativeProgram; ids: Map<string, number> } {
  const ids = new Map<string, number>();
  const id = (name: string) => {
    if (!ids.has(name)) ids.set(name, ids.size);
    return ids.get(name)!;
  };
  id(arch.image);
  const paramIndex = new Map(arch.params.map((p, i) => [p.name, i]));
  // each op's fields and parameters as the op table lists them
  const ops = arch.ops.map((op): NativeOp => {
    const { params } = opRow(op.op);
    const nativeOp = {
      kind: op.op,
      name: op.name ?? `${op.op}:${op.output}`,
      inputs: ('inputs' in op ? op.inputs : [op.input]).map(id),
      output: id(op.output),
      ...opFields(op),
    };
    if (params.length === 0) return nativeOp as NativeOp;
    const first = `${op.name}.${params[0].name}`;
    const param = paramIndex.get(first);
    if (param === undefined) throw new Error(`the architecture has no parameter ${first} for its op ${op.name}`);
    return { ...nativeOp, param } as NativeOp;
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
    decay: arch.params.map((p) => p.decay),
  };
  return { program, ids };
}

/** The native program: tensors by id, ops with parameter indices. */
export function buildProgram(arch: Architecture): NativeProgram {
  return programWithIds(arch).program;
}

let table: NativeOpTable | undefined;

/** The op table as the addon has it: each op's arity, fields and parameters, and the ops' constants. */
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
