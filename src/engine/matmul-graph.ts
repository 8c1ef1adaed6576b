/**
 * The bytes of a one-node ONNX model, Y = A @ B with A, B float32 [n, n], written with a minimal
 * protobuf encoder (the fields of onnx.proto that such a model needs), so that the bench can time
 * onnxruntime's own MatMul without a model file (issue 13, item 4: flops_utilisation).
 */

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** field number and payload -> a length-delimited (wire type 2) field. */
function bytesField(field: number, payload: number[]): number[] {
  return [...varint((field << 3) | 2), ...varint(payload.length), ...payload];
}

const str = (field: number, s: string): number[] => bytesField(field, [...new TextEncoder().encode(s)]);
const int = (field: number, n: number): number[] => [...varint(field << 3), ...varint(n)];

/** ValueInfoProto {name, type: TypeProto {tensor_type {elem_type: FLOAT, shape {dim*}}}}. */
function valueInfo(name: string, dims: number[]): number[] {
  const shape = dims.flatMap((d) => bytesField(1, int(1, d)));
  const tensor = [...int(1, 1), ...bytesField(2, shape)];
  return [...str(1, name), ...bytesField(2, bytesField(1, tensor))];
}

export function matmulModel(n: number): Uint8Array {
  const node = [...str(1, "A"), ...str(1, "B"), ...str(2, "Y"), ...str(3, "matmul"), ...str(4, "MatMul")];
  const graph = [
    ...bytesField(1, node),
    ...str(2, "matmul"),
    ...bytesField(11, valueInfo("A", [n, n])),
    ...bytesField(11, valueInfo("B", [n, n])),
    ...bytesField(12, valueInfo("Y", [n, n])),
  ];
  const opset = [...str(1, ""), ...int(2, 17)];
  return Uint8Array.from([...int(1, 8), ...str(2, "unipic-bench"), ...bytesField(7, graph), ...bytesField(8, opset)]);
}
