// The model's operations as data: what lib/model/architecture.ts builds, the exporter writes and the
// engine's binding (lib/native.ts) takes. Every op type, field and parameter here comes from the op
// table (native/engine/op_table.h), written out as ./ops.generated.ts by scripts/gen-ops.js: an op
// added to the table appears in `Op` once the file is regenerated, and the compiler then names every
// `{ [K in OpName]: ... }` (the exporter's nodes) that lacks it. Imports nothing but that file.
import { OP_TABLE } from './ops.generated.js';

export { OP_TABLE };

export type Padding = 'valid' | 'same';
export type ParamInit = 'he' | 'glorot' | 'one' | 'zero';

/** The op table as the addon's opTable() returns it (the binding: native/napi/program_binding.cpp). */
export interface OpTable {
  readonly ops: readonly OpTableRow[];
  readonly constants: {
    /** standardize: the eps the architecture gives it */
    readonly inputEps: number;
    readonly bnEps: number;
    /** l2norm: x / sqrt(max(|x|^2, l2Eps)) per row */
    readonly l2Eps: number;
    /** maxpool's windows: poolKernel x poolKernel, moved by poolStride, 'same' padding */
    readonly poolKernel: number;
    readonly poolStride: number;
  };
}

/** One op of the table. */
export interface OpTableRow {
  /** its kind in a program (Op's `op`, NativeOp's `kind`) */
  readonly name: string;
  /** the inputs it takes; -1: one or more */
  readonly inputs: number;
  /** what a program gives it beyond its tensors */
  readonly fields: readonly OpTableField[];
  /** its parameter tensors, in the order they are stored (from NativeOp's `param` on) */
  readonly params: readonly OpTableParam[];
}

export interface OpTableField {
  readonly name: string;
  /** count: an integer in [min, max]; real: a number in [min, max); flag: a boolean; padding: 'valid' | 'same' */
  readonly type: 'count' | 'real' | 'flag' | 'padding';
  readonly min?: number;
  readonly max?: number;
  /** what the count must equal, checked by the engine against the op's input */
  readonly equals?: 'inputChannels' | 'inputFeatures';
}

export interface OpTableParam {
  /** the tensor is named "<op name>.<name>" */
  readonly name: string;
  readonly init: ParamInit;
  /** false for fixed parameters (running statistics) */
  readonly trainable: boolean;
  /** weight decay applies (convolution and dense weights) */
  readonly decay: boolean;
  /** each side: the op's count `field`, or 1 where its flag `oneIf` is set */
  readonly shape: readonly { readonly field: string; readonly oneIf?: string }[];
}

// a compile error here: ops.generated.ts is not of the form opTable() returns
const generatedTableHasTheBindingsForm: OpTable = OP_TABLE;
void generatedTableHasTheBindingsForm;

type Row = (typeof OP_TABLE.ops)[number];
/** Every op kind of the table. */
export type OpName = Row['name'];
type RowOf<K extends OpName> = Extract<Row, { name: K }>;
type FieldValue<T> = T extends 'flag' ? boolean : T extends 'padding' ? Padding : number;
type Flat<T> = { [P in keyof T]: T[P] };

/** The fields of op kind K by the table's names, e.g. conv's inC, outC, kernel, stride, padding, depthwise. */
export type OpFields<K extends OpName> = {
  [F in RowOf<K>['fields'][number] as F['name']]: FieldValue<F['type']>;
};
/** Whether op kind K has parameter tensors (then it is named, and NativeOp carries their index). */
export type HasParams<K extends OpName> = RowOf<K>['params'] extends readonly [] ? false : true;
type Tensors<N> = N extends 1 ? { input: string } : N extends 2 ? { inputs: [string, string] } : { inputs: string[] };
// An op with parameters is named (its parameters are "<name>.<param>"); another may be (the engine's messages name it).
type Naming<K extends OpName> = HasParams<K> extends true ? { name: string } : { name?: string };

/** One op of kind K over named tensors. */
export type OpOf<K extends OpName> = Flat<
  { op: K } & Naming<K> & Tensors<RowOf<K>['inputs']> & { output: string } & OpFields<K>
>;
/** Any op of the table. */
export type Op = { [K in OpName]: OpOf<K> }[OpName];

/** Parameters of an op: shapes by parameter name. Conv weights are OIHW, dense [out, in]. */
export interface ParamSpec {
  name: string;
  shape: number[];
  /** how to initialise: He-normal fan-in, Glorot-uniform, ones, zeros */
  init: ParamInit;
  /** false for fixed parameters (running statistics) */
  trainable: boolean;
  /** weight decay applies */
  decay: boolean;
}

const ROWS = new Map<string, OpTableRow>(OP_TABLE.ops.map((row) => [row.name, row]));

/** The op table's row of op kind `kind`. */
export function opRow(kind: OpName): OpTableRow {
  return ROWS.get(kind)!;
}

/** The fields of `op` by the table's list: what the engine's program carries for it. */
export function opFields(op: Op): Record<string, number | boolean | string> {
  const values = op as unknown as Record<string, number | boolean | string>;
  return Object.fromEntries(opRow(op.op).fields.map((f) => [f.name, values[f.name]]));
}

/** The names of the parameter tensors of `op` in the table's order: "<op name>.<param>". */
export function opParamNames(op: Op): string[] {
  return opRow(op.op).params.map((p) => `${op.name}.${p.name}`);
}

/** The parameter tensors of `op` in the table's order: "<op name>.<param>", shaped by the op's fields. */
export function opParams(op: Op): ParamSpec[] {
  const values = op as unknown as Record<string, number | boolean>;
  const names = opParamNames(op);
  return opRow(op.op).params.map((p, i) => ({
    name: names[i],
    shape: p.shape.map((side) => (side.oneIf && values[side.oneIf] ? 1 : (values[side.field] as number))),
    init: p.init,
    trainable: p.trainable,
    decay: p.decay,
  }));
}
