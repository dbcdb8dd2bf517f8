/**
 * Edits the MediaPipe TFLite face models from npm so that MediaPipe Tasks'
 * FaceLandmarker accepts them (see docs/face-overlay.md):
 *
 * - metadata: Tasks reads how to normalise input pixels from TFLite model
 *   metadata (metadata_schema.fbs, identifier "M001") and refuses float
 *   models without it. addMetadata() attaches a minimal ModelMetadata.
 * - 478 points: Tasks always decodes the landmark tensor as 478 points
 *   (mesh + irises), so the 468-point mesh's 1404 floats would be read as
 *   478 two-dimensional points. padLandmarks appends a PADV2 op that extends
 *   the output to 1434 floats with 10 dummy points at the crop centre (inside
 *   the face, so Tasks' next-frame face box is not pulled off the face).
 *
 * The model is not re-serialised. The old file goes byte for byte, 16-byte
 * aligned, to the end of a new flatbuffer (FlatBuffers offsets are relative
 * and point forward); in front of it go a new root Model, the tables that
 * change, and the new buffers. Everything else is referenced in place.
 */
import { Builder } from 'flatbuffers';

const TENSOR_FLOAT32 = 0;
const TENSOR_INT32 = 2;
const OP_PADV2 = 60;

/** ModelMetadata with one RGB image input normalised as (x - mean) / std. */
export function imageInputMetadata(name: string, mean: number, std: number): Uint8Array {
  const b = new Builder(256);
  const floats = (values: number[]): number => {
    b.startVector(4, values.length, 4);
    for (let i = values.length - 1; i >= 0; i--) b.addFloat32(values[i] ?? 0);
    return b.endVector();
  };
  const meanV = floats([mean]);
  const stdV = floats([std]);
  b.startObject(2); // NormalizationOptions { mean, std }
  b.addFieldOffset(0, meanV, 0);
  b.addFieldOffset(1, stdV, 0);
  const norm = b.endObject();
  b.startObject(2); // ProcessUnit { options: NormalizationOptions (union type 1) }
  b.addFieldInt8(0, 1, 0);
  b.addFieldOffset(1, norm, 0);
  const units = offsets(b, [b.endObject()]);
  b.startObject(2); // ImageProperties { color_space: RGB (1) }
  b.addFieldInt8(0, 1, 0);
  const image = b.endObject();
  b.startObject(3); // Content { content_properties: ImageProperties (union type 2) }
  b.addFieldInt8(0, 2, 0);
  b.addFieldOffset(1, image, 0);
  const content = b.endObject();
  const tensorName = b.createString('image');
  b.startObject(7); // TensorMetadata { name, content, process_units }
  b.addFieldOffset(0, tensorName, 0);
  b.addFieldOffset(3, content, 0);
  b.addFieldOffset(4, units, 0);
  const inputs = offsets(b, [b.endObject()]);
  b.startObject(10); // SubGraphMetadata { input_tensor_metadata }
  b.addFieldOffset(2, inputs, 0);
  const subgraphs = offsets(b, [b.endObject()]);
  const modelName = b.createString(name);
  const version = b.createString('1.0.0');
  b.startObject(8); // ModelMetadata { name, subgraph_metadata, min_parser_version }
  b.addFieldOffset(0, modelName, 0);
  b.addFieldOffset(3, subgraphs, 0);
  b.addFieldOffset(7, version, 0);
  b.finish(b.endObject(), 'M001');
  return b.asUint8Array().slice();
}

function offsets(b: Builder, list: number[]): number {
  b.startVector(4, list.length, 4);
  for (let i = list.length - 1; i >= 0; i--) b.addOffset(list[i] ?? 0);
  return b.endVector();
}

function ints(b: Builder, list: number[]): number {
  b.startVector(4, list.length, 4);
  for (let i = list.length - 1; i >= 0; i--) b.addInt32(list[i] ?? 0);
  return b.endVector();
}

/** Reads the old model in place: absolute positions of tables and fields. */
class Reader {
  readonly #v: DataView;
  readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u32(p: number): number {
    return this.#v.getUint32(p, true);
  }
  i32(p: number): number {
    return this.#v.getInt32(p, true);
  }
  /** Position of field `i` of the table at `t`, or 0 when absent. */
  field(t: number, i: number): number {
    const vt = t - this.i32(t);
    const at = 4 + 2 * i;
    const off = at < this.#v.getUint16(vt, true) ? this.#v.getUint16(vt + at, true) : 0;
    return off ? t + off : 0;
  }
  /** Target of the uoffset in field `i`, or 0. */
  ref(t: number, i: number): number {
    const p = this.field(t, i);
    return p ? p + this.u32(p) : 0;
  }
  /** Tables a vector of offsets points to. */
  tables(vec: number): number[] {
    if (!vec) return [];
    return Array.from({ length: this.u32(vec) }, (_, k) => vec + 4 + 4 * k + this.u32(vec + 4 + 4 * k));
  }
  ints(vec: number): number[] {
    if (!vec) return [];
    return Array.from({ length: this.u32(vec) }, (_, k) => this.i32(vec + 4 + 4 * k));
  }
  string(p: number): string {
    return p ? new TextDecoder().decode(this.bytes.subarray(p + 4, p + 4 + this.u32(p))) : '';
  }
}

// schema.fbs field ids.
const M = { version: 0, operatorCodes: 1, subgraphs: 2, description: 3, buffers: 4, metadataBuffer: 5, metadata: 6 } as const;
const SG = { tensors: 0, inputs: 1, outputs: 2, operators: 3, name: 4 } as const;

export interface EditOptions {
  /** Attached as the TFLITE_METADATA buffer. */
  metadata: Uint8Array;
  /** Pad the first output [1,1,1,N*3] to `points` 3-D points placed at `fill` (input pixels). */
  padLandmarks?: { points: number; fill: number };
}

/** A copy of a TFLite model with metadata attached (and the landmark output padded). */
export function editModel(model: Uint8Array, opts: EditOptions): Uint8Array {
  const r = new Reader(model);
  const root = r.u32(0);
  const oldBuffers = r.tables(r.ref(root, M.buffers));
  const oldMeta = r.tables(r.ref(root, M.metadata));
  if (oldMeta.some((m) => r.string(r.ref(m, 0)) === 'TFLITE_METADATA')) throw new Error('model already has TFLITE_METADATA');
  const b = new Builder(model.length + 4096);
  // The old model, 16-byte aligned, at the end of the new buffer.
  b.startVector(1, model.length, 16);
  for (let i = model.length - 1; i >= 0; i--) b.addInt8(model[i] ?? 0);
  const oldAt = b.endVector() - 4;
  /** Builder offset of a position in the old model. */
  const old = (p: number): number => oldAt - p;

  const byteBuffer = (data: Uint8Array): number => {
    b.startVector(1, data.length, 16);
    for (let i = data.length - 1; i >= 0; i--) b.addInt8(data[i] ?? 0);
    const vec = b.endVector();
    b.startObject(1);
    b.addFieldOffset(0, vec, 0);
    return b.endObject();
  };
  const newBuffers: number[] = [];
  const bufferIndex = (data: Uint8Array): number => {
    newBuffers.push(byteBuffer(data));
    return oldBuffers.length + newBuffers.length - 1;
  };

  let subgraphs = r.ref(root, M.subgraphs) ? old(r.ref(root, M.subgraphs)) : 0;
  let operatorCodes = r.ref(root, M.operatorCodes) ? old(r.ref(root, M.operatorCodes)) : 0;
  if (opts.padLandmarks) ({ subgraphs, operatorCodes } = padOutput(b, r, root, old, bufferIndex, opts.padLandmarks));
  const metaIndex = bufferIndex(opts.metadata);

  const metaName = b.createString('TFLITE_METADATA');
  b.startObject(2); // Metadata { name, buffer }
  b.addFieldOffset(0, metaName, 0);
  b.addFieldInt32(1, metaIndex, 0);
  const metaEntry = b.endObject();
  const metadata = offsets(b, [...oldMeta.map(old), metaEntry]);
  const buffers = offsets(b, [...oldBuffers.map(old), ...newBuffers]);

  b.startObject(8); // Model (signature_defs dropped: they would name the old outputs)
  b.addFieldInt32(M.version, r.u32(r.field(root, M.version)), 0);
  if (operatorCodes) b.addFieldOffset(M.operatorCodes, operatorCodes, 0);
  if (subgraphs) b.addFieldOffset(M.subgraphs, subgraphs, 0);
  if (r.ref(root, M.description)) b.addFieldOffset(M.description, old(r.ref(root, M.description)), 0);
  b.addFieldOffset(M.buffers, buffers, 0);
  if (r.ref(root, M.metadataBuffer)) b.addFieldOffset(M.metadataBuffer, old(r.ref(root, M.metadataBuffer)), 0);
  b.addFieldOffset(M.metadata, metadata, 0);
  b.finish(b.endObject(), 'TFL3');
  return b.asUint8Array().slice();
}

/** Appends PADV2(output0, paddings, fill) → new output 0; returns the new subgraphs and operator_codes vectors. */
function padOutput(
  b: Builder,
  r: Reader,
  root: number,
  old: (p: number) => number,
  bufferIndex: (data: Uint8Array) => number,
  pad: { points: number; fill: number },
): { subgraphs: number; operatorCodes: number } {
  const [sg, ...rest] = r.tables(r.ref(root, M.subgraphs));
  if (!sg || rest.length) throw new Error('expected a model with one subgraph');
  const tensors = r.tables(r.ref(sg, SG.tensors));
  const outputs = r.ints(r.ref(sg, SG.outputs));
  const lm = outputs[0];
  if (lm === undefined) throw new Error('model has no outputs');
  const shape = r.ints(r.ref(tensors[lm] ?? 0, 0));
  const values = shape.reduce((a, x) => a * x, 1);
  const extra = pad.points * 3 - values;
  if (shape.length !== 4 || extra <= 0 || values % 3) throw new Error(`landmark output shape [${shape.join(',')}] cannot be padded to ${pad.points} points`);

  const codes = r.tables(r.ref(root, M.operatorCodes));
  b.startObject(4); // OperatorCode { deprecated_builtin_code, version, builtin_code }
  b.addFieldInt8(0, OP_PADV2, 0);
  b.addFieldInt32(2, 1, 1);
  b.addFieldInt32(3, OP_PADV2, 0);
  const padCode = b.endObject();
  const operatorCodes = offsets(b, [...codes.map(old), padCode]);

  const paddings = new Int32Array([0, 0, 0, 0, 0, 0, 0, extra]);
  const tensor = (name: string, dims: number[], type: number, buffer: number): number => {
    const n = b.createString(name);
    const s = ints(b, dims);
    b.startObject(4); // Tensor { shape, type, buffer, name }
    b.addFieldOffset(0, s, 0);
    b.addFieldInt8(1, type, 0);
    b.addFieldInt32(2, buffer, 0);
    b.addFieldOffset(3, n, 0);
    return b.endObject();
  };
  const first = tensors.length;
  const newTensors = [
    tensor('landmark_paddings', [4, 2], TENSOR_INT32, bufferIndex(new Uint8Array(paddings.buffer))),
    tensor('landmark_fill', [], TENSOR_FLOAT32, bufferIndex(new Uint8Array(new Float32Array([pad.fill]).buffer))),
    tensor('landmarks_padded', [1, 1, 1, pad.points * 3], TENSOR_FLOAT32, 0),
  ];
  const opInputs = ints(b, [lm, first, first + 1]);
  const opOutputs = ints(b, [first + 2]);
  b.startObject(3); // Operator { opcode_index, inputs, outputs }
  b.addFieldInt32(0, codes.length, 0);
  b.addFieldOffset(1, opInputs, 0);
  b.addFieldOffset(2, opOutputs, 0);
  const op = b.endObject();
  const operators = offsets(b, [...r.tables(r.ref(sg, SG.operators)).map(old), op]);
  const tensorVec = offsets(b, [...tensors.map(old), ...newTensors]);
  const outVec = ints(b, [first + 2, ...outputs.slice(1)]);
  b.startObject(5); // SubGraph
  b.addFieldOffset(SG.tensors, tensorVec, 0);
  b.addFieldOffset(SG.inputs, old(r.ref(sg, SG.inputs)), 0);
  b.addFieldOffset(SG.outputs, outVec, 0);
  b.addFieldOffset(SG.operators, operators, 0);
  if (r.ref(sg, SG.name)) b.addFieldOffset(SG.name, old(r.ref(sg, SG.name)), 0);
  return { subgraphs: offsets(b, [b.endObject()]), operatorCodes };
}
