// Building an ONNX graph with onnx-proto: tensors, attributes, value infos, and the graph's nodes and
// initializers in order (the exporter, onnx.ts, and the evaluation views' nodes, views.ts, add to it).
import type { Float16Array } from '@petamoriken/float16';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export function tensor(name: string, dims: number[], data: Float32Array | BigInt64Array | Float16Array) {
  const { DataType } = onnx.TensorProto;
  const dataType =
    data instanceof Float32Array ? DataType.FLOAT : data instanceof BigInt64Array ? DataType.INT64 : DataType.FLOAT16;
  return onnx.TensorProto.create({
    name,
    dims,
    dataType,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}

export function attr(name: string, value: number | number[] | string) {
  if (typeof value === 'string') {
    return onnx.AttributeProto.create({
      name,
      s: new TextEncoder().encode(value),
      type: onnx.AttributeProto.AttributeType.STRING,
    });
  }
  return Array.isArray(value)
    ? onnx.AttributeProto.create({ name, ints: value, type: onnx.AttributeProto.AttributeType.INTS })
    : onnx.AttributeProto.create({ name, i: value, type: onnx.AttributeProto.AttributeType.INT });
}

export function valueInfo(name: string, dims: (number | string)[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) =>
            onnx.TensorShapeProto.Dimension.create(typeof d === 'string' ? { dimParam: d } : { dimValue: d }),
          ),
        }),
      }),
    }),
  });
}

/** The graph's nodes and initializers in the order they are added (a node's name counts the nodes before it). */
export class GraphBuilder {
  readonly nodes: ReturnType<typeof onnx.NodeProto.create>[] = [];
  readonly initializers: ReturnType<typeof onnx.TensorProto.create>[] = [];
  private constants = 0;

  /** A constant initializer, named const_<i>. */
  constant(dims: number[], data: Float32Array | BigInt64Array): string {
    const n = `const_${this.constants++}`;
    this.initializers.push(tensor(n, dims, data));
    return n;
  }

  node(opType: string, inputs: string[], outputs: string[], attributes: ReturnType<typeof attr>[] = []): void {
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        input: inputs,
        output: outputs,
        attribute: attributes,
        name: `${opType}_${this.nodes.length}`,
      }),
    );
  }

  /** `${source}_mirrored`: the last axis backwards, the mirror images */
  mirror(source: string): void {
    this.node(
      'Slice',
      [
        source,
        this.constant([1], BigInt64Array.of(-1n)),
        this.constant([1], BigInt64Array.of(-(2n ** 63n))),
        this.constant([1], BigInt64Array.of(3n)),
        this.constant([1], BigInt64Array.of(-1n)),
      ],
      [`${source}_mirrored`],
    );
  }

  /** `output`: the size x size square of `source`'s planes from (left, top) */
  square(source: string, top: number, left: number, size: number, output: string): string {
    const [y, x] = [BigInt(top), BigInt(left)];
    this.node(
      'Slice',
      [
        source,
        this.constant([2], BigInt64Array.of(y, x)),
        this.constant([2], BigInt64Array.of(y + BigInt(size), x + BigInt(size))),
        this.constant([2], BigInt64Array.of(2n, 3n)),
      ],
      [output],
    );
    return output;
  }
}
