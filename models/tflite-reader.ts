/**
 * Minimal reader for the TFLite flatbuffer format (schema v3, tensorflow/lite/schema/schema.fbs),
 * covering only the tables the MediaPipe face models use. Field ids follow the schema: a field
 * with id N sits at vtable offset 4 + 2N, and a union takes two ids (type, then value).
 */
import { ByteBuffer } from 'flatbuffers';

export const TensorType = { FLOAT32: 0, FLOAT16: 1, INT32: 2, UINT8: 3, INT64: 4 } as const;

/** BuiltinOperator codes used by the face models (schema.fbs enum BuiltinOperator). */
export const Builtin = {
  ADD: 0,
  CONCATENATION: 2,
  CONV_2D: 3,
  DEPTHWISE_CONV_2D: 4,
  DEQUANTIZE: 6,
  FULLY_CONNECTED: 9,
  LOGISTIC: 14,
  MAX_POOL_2D: 17,
  MUL: 18,
  RELU: 19,
  RELU6: 21,
  RESHAPE: 22,
  CUSTOM: 32,
  PAD: 34,
  TRANSPOSE: 39,
  SUB: 41,
  STRIDED_SLICE: 45,
  PRELU: 54,
} as const;

export const BuiltinName: Record<number, string> = Object.fromEntries(Object.entries(Builtin).map(([k, v]) => [v, k]));

export interface TfliteTensor {
  index: number;
  name: string;
  shape: number[];
  type: number;
  /** Constant data (raw little-endian bytes) when the tensor has a non-empty buffer. */
  data: Uint8Array | null;
}

export interface TfliteOperator {
  /** Builtin code, or CUSTOM (32) with `customCode` set. */
  builtin: number;
  customCode: string | null;
  inputs: number[];
  outputs: number[];
  /** Position of the builtin options table in the buffer, or 0 when absent. */
  optionsPos: number;
  customOptions: Uint8Array | null;
}

export interface TfliteModel {
  tensors: TfliteTensor[];
  inputs: number[];
  outputs: number[];
  operators: TfliteOperator[];
  /** Reads a field of an operator's builtin options table. */
  options: OptionsReader;
}

export interface OptionsReader {
  int(pos: number, field: number, def: number): number;
  byte(pos: number, field: number, def: number): number;
  intVector(pos: number, field: number): number[];
}

class Table {
  constructor(
    readonly bb: ByteBuffer,
    readonly pos: number,
  ) {}

  #off(field: number): number {
    return this.pos === 0 ? 0 : this.bb.__offset(this.pos, 4 + 2 * field);
  }

  has(field: number): boolean {
    return this.#off(field) !== 0;
  }

  u32(field: number, def = 0): number {
    const o = this.#off(field);
    return o ? this.bb.readUint32(this.pos + o) : def;
  }

  i32(field: number, def = 0): number {
    const o = this.#off(field);
    return o ? this.bb.readInt32(this.pos + o) : def;
  }

  i8(field: number, def = 0): number {
    const o = this.#off(field);
    return o ? this.bb.readInt8(this.pos + o) : def;
  }

  u8(field: number, def = 0): number {
    const o = this.#off(field);
    return o ? this.bb.readUint8(this.pos + o) : def;
  }

  u64(field: number): number {
    const o = this.#off(field);
    return o ? Number(this.bb.readUint64(this.pos + o)) : 0;
  }

  str(field: number): string {
    const o = this.#off(field);
    return o ? (this.bb.__string(this.pos + o) as string) : '';
  }

  table(field: number): Table {
    const o = this.#off(field);
    return new Table(this.bb, o ? this.bb.__indirect(this.pos + o) : 0);
  }

  tables(field: number): Table[] {
    const o = this.#off(field);
    if (!o) return [];
    const start = this.bb.__vector(this.pos + o);
    const n = this.bb.__vector_len(this.pos + o);
    const out: Table[] = [];
    for (let i = 0; i < n; i++) out.push(new Table(this.bb, this.bb.__indirect(start + 4 * i)));
    return out;
  }

  i32s(field: number): number[] {
    const o = this.#off(field);
    if (!o) return [];
    const start = this.bb.__vector(this.pos + o);
    const n = this.bb.__vector_len(this.pos + o);
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(this.bb.readInt32(start + 4 * i));
    return out;
  }

  bytes(field: number): Uint8Array | null {
    const o = this.#off(field);
    if (!o) return null;
    const start = this.bb.__vector(this.pos + o);
    const n = this.bb.__vector_len(this.pos + o);
    return this.bb.bytes().subarray(start, start + n);
  }
}

/** Parses a .tflite file. Throws TypeError on a buffer that is not a TFLite model. */
export function readTflite(file: Uint8Array): TfliteModel {
  const bb = new ByteBuffer(file);
  if (file.length < 8 || bb.__has_identifier('TFL3') === false) throw new TypeError('not a TFLite flatbuffer (missing TFL3 identifier)');
  const model = new Table(bb, bb.readInt32(bb.position()) + bb.position());
  const codes = model.tables(1).map((c) => {
    const deprecated = c.i8(0, 0);
    const builtin = c.i32(3, 0);
    return { builtin: Math.max(deprecated, builtin), custom: c.has(1) ? c.str(1) : null };
  });
  const buffers = model.tables(4).map((b) => {
    const inline = b.bytes(0);
    if (inline && inline.length > 0) return inline;
    const offset = b.u64(1);
    const size = b.u64(2);
    return offset > 1 && size > 0 ? file.subarray(offset, offset + size) : null;
  });
  const subgraphs = model.tables(2);
  const sg = subgraphs[0];
  if (!sg || subgraphs.length !== 1) throw new TypeError(`expected exactly one subgraph, found ${subgraphs.length}`);
  const tensors = sg.tables(0).map((t, index): TfliteTensor => ({
    index,
    name: t.str(3),
    shape: t.i32s(0),
    type: t.i8(1, 0),
    data: buffers[t.u32(2, 0)] ?? null,
  }));
  const operators = sg.tables(3).map((op): TfliteOperator => {
    const code = codes[op.u32(0, 0)];
    if (!code) throw new TypeError('operator refers to a missing opcode');
    return {
      builtin: code.builtin,
      customCode: code.custom,
      inputs: op.i32s(1),
      outputs: op.i32s(2),
      optionsPos: op.table(4).pos,
      customOptions: op.bytes(5),
    };
  });
  const options: OptionsReader = {
    int: (pos, field, def) => new Table(bb, pos).i32(field, def),
    byte: (pos, field, def) => new Table(bb, pos).i8(field, def),
    intVector: (pos, field) => new Table(bb, pos).i32s(field),
  };
  return { tensors, inputs: sg.i32s(1), outputs: sg.i32s(2), operators, options };
}

/** Decodes IEEE 754 half floats (little endian) to float32. */
export function halfToFloat(bytes: Uint8Array): Float32Array {
  const n = bytes.length >> 1;
  const out = new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) {
    const h = view.getUint16(2 * i, true);
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) out[i] = sign * frac * 2 ** -24;
    else if (exp === 31) out[i] = frac ? NaN : sign * Infinity;
    else out[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/** Reads a constant tensor as float32 (FLOAT32 or FLOAT16 storage). */
export function constFloat(t: TfliteTensor): Float32Array {
  if (!t.data) throw new TypeError(`tensor ${t.name} has no constant data`);
  if (t.type === TensorType.FLOAT16) return halfToFloat(t.data);
  if (t.type === TensorType.FLOAT32) {
    const copy = t.data.slice();
    return new Float32Array(copy.buffer, 0, copy.length >> 2);
  }
  throw new TypeError(`tensor ${t.name} has type ${t.type}, expected a float`);
}

/** Reads a constant INT32 tensor. */
export function constInt(t: TfliteTensor): number[] {
  if (!t.data) throw new TypeError(`tensor ${t.name} has no constant data`);
  if (t.type !== TensorType.INT32) throw new TypeError(`tensor ${t.name} has type ${t.type}, expected INT32`);
  const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out: number[] = [];
  for (let i = 0; i < t.data.length / 4; i++) out.push(view.getInt32(4 * i, true));
  return out;
}
