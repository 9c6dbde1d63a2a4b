// The op table (native/engine/op_table.h) is the one home of each op's
// fields, parameter tensors, shape rule and constants: the engine plans its
// buffers with it, the TypeScript op types and parameter lists come from it
// (lib/model/ops.generated.ts, written by scripts/gen-ops.js), and the ONNX
// exporter and the memory estimate read it through the addon. These tests
// hold the generated file to the addon's table, the exported graph, as ONNX
// Runtime shapes it, to the engine's shapes for every preset, and the
// TypeScript constants and parameter lists to the table's.
import test from 'ava';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { buildArchitecture, exportOnnx, labelNames, PRESETS } from 'adcorre-native';
import { opConstants } from 'adcorre-native/internal';
import { activationFloats } from 'adcorre-native/internal';
import { OP_TABLE } from 'adcorre-native/internal';
import { architectureShapes, buildProgram, opTable } from 'adcorre-native/internal';

const { onnx } = onnxProto;

/** An exported model of `config` (zero weights) whose every op output is also a graph output. */
function exposedModel(config, arch) {
  const weights = new Map(arch.params.map((p) => [p.name, new Float32Array(p.shape.reduce((a, b) => a * b, 1))]));
  const model = onnx.ModelProto.decode(exportOnnx(config, weights, { labels: labelNames(config.classes) }));
  const declared = new Set(model.graph.output.map((o) => o.name));
  for (const name of graphNames(arch).values())
    if (!declared.has(name)) {
      declared.add(name);
      model.graph.output.push(
        onnx.ValueInfoProto.create({
          name,
          type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } },
        }),
      );
    }
  return onnx.ModelProto.encode(model).finish();
}

/** The graph's tensor for each op output of a single model (dropout is the identity there: its input). */
function graphNames(arch) {
  const names = new Map([[arch.input, 'input']]);
  for (const op of arch.ops) {
    if (op.op === 'standardize') continue;
    const name =
      op.op === 'dropout' ? names.get(op.input) : op.output === 'embeddings' ? 'embeddings_concat' : op.output;
    names.set(op.output, name);
  }
  return names;
}

for (const [preset, config] of Object.entries(PRESETS)) {
  test(`preset ${preset}: every tensor of the exported graph has the engine's shape, and the memory estimate counts them`, async (t) => {
    const arch = buildArchitecture(config);
    const session = await ort.InferenceSession.create(exposedModel(config, arch));
    const S = config.inputSize;
    const image = new ort.Tensor('float32', new Float32Array(config.channels * S * S), [1, config.channels, S, S]);
    const outputs = await session.run({ image });
    const engine = architectureShapes(arch);
    let floats = config.channels * S * S; // the image
    for (const [tensor, name] of graphNames(arch)) {
      const dims = outputs[name].dims.slice(1); // past the batch
      const { c, h, w } = engine.of(tensor);
      t.deepEqual(dims, dims.length === 3 ? [c, h, w] : [c * h * w], `${tensor} (${name})`);
      floats += dims.reduce((a, b) => a * b, 1);
    }
    t.is(activationFloats(config, arch), floats);
    await session.release();
  });
}

test("the architecture's constants are the op table's, and every op of the table is one the architecture writes", (t) => {
  const { constants, ops } = opTable();
  t.deepEqual(opConstants(), constants);
  // Keras' BatchNormalization and tf.math.l2_normalize defaults, and the model contract's standardisation
  t.like(constants, { bnEps: 1e-3, l2Eps: 1e-12, inputEps: 1e-3 });
  t.is(buildArchitecture(PRESETS.mini).ops.find((op) => op.op === 'standardize').eps, constants.inputEps);
  const written = new Set(buildArchitecture(PRESETS.mini).ops.map((op) => op.op));
  t.deepEqual(new Set(ops.map((op) => op.name)), written);
  const arity = Object.fromEntries(ops.map((op) => [op.name, op.inputs]));
  for (const op of buildArchitecture(PRESETS.mini).ops) {
    const inputs = 'inputs' in op ? op.inputs.length : 1;
    t.true(arity[op.op] === -1 || arity[op.op] === inputs, `${op.op} takes ${arity[op.op]} inputs`);
  }
});

test('lib/model/ops.generated.ts is the op table the addon has (else: npm run gen:ops after rebuilding it)', (t) => {
  t.deepEqual(OP_TABLE, opTable(), 'lib/model/ops.generated.ts is stale: run npm run gen:ops');
});

test("every parameter of the architecture is the op table's: names, order, shapes, roles", (t) => {
  const rows = new Map(opTable().ops.map((row) => [row.name, row]));
  const arch = buildArchitecture(PRESETS.mini);
  const program = buildProgram(arch);
  let next = 0;
  for (const [i, op] of arch.ops.entries()) {
    const row = rows.get(op.op);
    const native = program.ops[i];
    // the program carries exactly the table's fields, under the table's names
    for (const field of row.fields) t.is(native[field.name], op[field.name], `${op.op} ${field.name}`);
    if (row.params.length === 0) continue;
    t.is(native.param, next, `${op.name}: its parameters follow the previous op's`);
    for (const p of row.params) {
      const spec = arch.params[next++];
      t.is(spec.name, `${op.name}.${p.name}`);
      t.deepEqual(
        spec.shape,
        p.shape.map((side) => (side.oneIf && op[side.oneIf] ? 1 : op[side.field])),
      );
      t.like(spec, { init: p.init, trainable: p.trainable, decay: p.decay });
    }
  }
  t.is(next, arch.params.length, 'every parameter belongs to an op');
});
