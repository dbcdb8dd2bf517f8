/**
 * TFLite → ONNX (opset 17) converter for the MediaPipe face models.
 *
 * Layout: TFLite is NHWC, ONNX convolutions are NCHW. The graph input becomes NCHW and every
 * rank-4 activation is kept in NCHW; a Transpose back to NHWC is inserted lazily only where the
 * TFLite semantics depend on the memory order (RESHAPE, graph outputs, custom ops). fp16 weights
 * behind DEQUANTIZE are folded to float32 initializers at conversion time.
 */
import { floatTensor, int64Tensor, type AttrValue, type OnnxGraph, type OnnxNode, type TensorInit } from './onnx-proto.ts';
import { Builtin, BuiltinName, constFloat, constInt, TensorType, type TfliteModel, type TfliteOperator } from './tflite-reader.ts';
import { BATCH_DIM } from './manifest.ts';

export type Layout = 'nchw' | 'nhwc';

interface RuntimeValue {
  kind: 'value';
  /** Name of the ONNX value per layout already materialised. */
  names: Partial<Record<Layout, string>>;
  /** Logical TFLite (NHWC) shape. */
  shape: number[];
}

interface ConstValue {
  kind: 'const';
  data: Float32Array;
  shape: number[];
}

type Value = RuntimeValue | ConstValue;

export type CustomOpConverter = (ctx: ConvertContext, op: TfliteOperator) => void;

export interface ConvertOptions {
  name: string;
  /** ONNX name for the single graph input (NCHW). */
  inputName: string;
  /** Maps TFLite output tensor names to ONNX output names (defaults to the TFLite names). */
  outputNames?: Record<string, string>;
  customOps?: Record<string, CustomOpConverter>;
  metadata?: Record<string, string>;
}

const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];
/** NHWC axis → NCHW axis. */
const AXIS_TO_NCHW = [0, 2, 3, 1];

export class ConvertContext {
  readonly model: TfliteModel;
  readonly nodes: OnnxNode[] = [];
  readonly initializers: TensorInit[] = [];
  readonly #values = new Map<number, Value>();
  #counter = 0;

  constructor(model: TfliteModel) {
    this.model = model;
  }

  fresh(prefix: string): string {
    return `${prefix}_${this.#counter++}`;
  }

  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    const out = output ?? this.fresh(opType.toLowerCase());
    this.nodes.push({ opType, inputs, outputs: [out], name: this.fresh(`n_${opType}`), attrs });
    return out;
  }

  constFloat(data: Float32Array, dims: number[], prefix = 'c'): string {
    const name = this.fresh(prefix);
    this.initializers.push(floatTensor(name, dims, data));
    return name;
  }

  constInt64(values: number[], prefix = 'i'): string {
    const name = this.fresh(prefix);
    this.initializers.push(int64Tensor(name, [values.length], values));
    return name;
  }

  shapeOf(idx: number): number[] {
    const t = this.model.tensors[idx];
    if (!t) throw new TypeError(`tensor ${idx} does not exist`);
    return t.shape;
  }

  isConst(idx: number): boolean {
    return this.#lookup(idx).kind === 'const';
  }

  constant(idx: number): ConstValue {
    const v = this.#lookup(idx);
    if (v.kind !== 'const') throw new TypeError(`tensor ${this.model.tensors[idx]?.name} is not constant`);
    return v;
  }

  /** ONNX name of a tensor in the wanted layout (rank-4 only; others ignore the layout). */
  get(idx: number, want: Layout): string {
    const v = this.#lookup(idx);
    if (v.kind === 'const') {
      const data = v.shape.length === 4 && want === 'nchw' ? transposeConst(v.data, v.shape, TO_NCHW) : v.data;
      const dims = v.shape.length === 4 && want === 'nchw' ? TO_NCHW.map((a) => v.shape[a] ?? 1) : v.shape;
      return this.constFloat(data, dims);
    }
    const layout: Layout = v.shape.length === 4 ? want : 'nhwc';
    const have = v.names[layout];
    if (have) return have;
    const [from, perm] = layout === 'nchw' ? [v.names.nhwc, TO_NCHW] : [v.names.nchw, TO_NHWC];
    if (!from) throw new TypeError(`tensor ${idx} has no materialised layout`);
    const out = this.node('Transpose', [from], { perm });
    v.names[layout] = out;
    return out;
  }

  setValue(idx: number, name: string, layout: Layout): void {
    const shape = this.shapeOf(idx);
    this.#values.set(idx, { kind: 'value', names: { [shape.length === 4 ? layout : 'nhwc']: name }, shape });
  }

  setConst(idx: number, data: Float32Array): void {
    this.#values.set(idx, { kind: 'const', data, shape: this.shapeOf(idx) });
  }

  #lookup(idx: number): Value {
    const have = this.#values.get(idx);
    if (have) return have;
    const t = this.model.tensors[idx];
    if (t?.data && (t.type === TensorType.FLOAT32 || t.type === TensorType.FLOAT16)) {
      const v: ConstValue = { kind: 'const', data: constFloat(t), shape: t.shape };
      this.#values.set(idx, v);
      return v;
    }
    throw new TypeError(`tensor ${idx} (${t?.name ?? '?'}) is used before it is produced`);
  }
}

export function transposeConst(data: Float32Array, shape: number[], perm: number[]): Float32Array {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p] ?? 1);
  const inStrides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) inStrides[i] = (inStrides[i + 1] ?? 1) * (shape[i + 1] ?? 1);
  const out = new Float32Array(data.length);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let d = 0; d < rank; d++) src += (idx[d] ?? 0) * (inStrides[perm[d] ?? 0] ?? 0);
    out[o] = data[src] ?? 0;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d] = (idx[d] ?? 0) + 1;
      if ((idx[d] ?? 0) < (outShape[d] ?? 1)) break;
      idx[d] = 0;
    }
  }
  return out;
}

function samePads(inSize: number, k: number, stride: number, dilation: number): [number, number] {
  const out = Math.ceil(inSize / stride);
  const total = Math.max((out - 1) * stride + (k - 1) * dilation + 1 - inSize, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

function spatialPads(ctx: ConvertContext, op: TfliteOperator, padding: number, kh: number, kw: number, sh: number, sw: number, dh: number, dw: number): number[] {
  if (padding === 1) return [0, 0, 0, 0]; // VALID
  const inShape = ctx.shapeOf(op.inputs[0] ?? -1);
  const [t, b] = samePads(inShape[1] ?? 0, kh, sh, dh);
  const [l, r] = samePads(inShape[2] ?? 0, kw, sw, dw);
  return [t, l, b, r];
}

/** Appends the fused activation (TFLite ActivationFunctionType) to a value. */
function activation(ctx: ConvertContext, x: string, fused: number, output: string): string {
  switch (fused) {
    case 0:
      return ctx.node('Identity', [x], {}, output);
    case 1:
      return ctx.node('Relu', [x], {}, output);
    case 3:
      return ctx.node('Clip', [x, ctx.constFloat(new Float32Array([0]), []), ctx.constFloat(new Float32Array([6]), [])], {}, output);
    default:
      throw new TypeError(`unsupported fused activation ${fused}`);
  }
}

function in0(op: TfliteOperator, i = 0): number {
  const v = op.inputs[i];
  if (v === undefined || v < 0) throw new TypeError(`operator ${BuiltinName[op.builtin]} lacks input ${i}`);
  return v;
}

function out0(op: TfliteOperator): number {
  const v = op.outputs[0];
  if (v === undefined) throw new TypeError(`operator ${BuiltinName[op.builtin]} has no output`);
  return v;
}

function convertConv(ctx: ConvertContext, op: TfliteOperator, depthwise: boolean): void {
  const o = ctx.model.options;
  const p = op.optionsPos;
  const padding = o.byte(p, 0, 0);
  const sw = o.int(p, 1, 1);
  const sh = o.int(p, 2, 1);
  const fused = o.byte(p, depthwise ? 4 : 3, 0);
  const dw = o.int(p, depthwise ? 5 : 4, 1);
  const dh = o.int(p, depthwise ? 6 : 5, 1);
  const w = ctx.constant(in0(op, 1));
  const [d0 = 1, kh = 1, kw = 1, d3 = 1] = w.shape;
  const inChannels = ctx.shapeOf(in0(op))[3] ?? 1;
  // TFLite conv weights are [O, KH, KW, I], depthwise weights [1, KH, KW, C*M]; ONNX wants [O, I/group, KH, KW].
  const weight = depthwise
    ? ctx.constFloat(transposeConst(w.data, w.shape, [3, 0, 1, 2]), [d3, 1, kh, kw], 'w')
    : ctx.constFloat(transposeConst(w.data, w.shape, [0, 3, 1, 2]), [d0, d3, kh, kw], 'w');
  const inputs = [ctx.get(in0(op), 'nchw'), weight];
  const biasIdx = op.inputs[2];
  if (biasIdx !== undefined && biasIdx >= 0) {
    const b = ctx.constant(biasIdx);
    inputs.push(ctx.constFloat(b.data, [b.data.length], 'b'));
  }
  const attrs: Record<string, AttrValue> = {
    kernel_shape: [kh, kw],
    strides: [sh, sw],
    dilations: [dh, dw],
    pads: spatialPads(ctx, op, padding, kh, kw, sh, sw, dh, dw),
  };
  if (depthwise) attrs['group'] = inChannels;
  const conv = ctx.node('Conv', inputs, attrs);
  ctx.setValue(out0(op), fused === 0 ? conv : activation(ctx, conv, fused, ctx.fresh('act')), 'nchw');
}

function convertMaxPool(ctx: ConvertContext, op: TfliteOperator): void {
  const o = ctx.model.options;
  const p = op.optionsPos;
  const padding = o.byte(p, 0, 0);
  const sw = o.int(p, 1, 1);
  const sh = o.int(p, 2, 1);
  const fw = o.int(p, 3, 1);
  const fh = o.int(p, 4, 1);
  const fused = o.byte(p, 5, 0);
  const pool = ctx.node('MaxPool', [ctx.get(in0(op), 'nchw')], {
    kernel_shape: [fh, fw],
    strides: [sh, sw],
    pads: spatialPads(ctx, op, padding, fh, fw, sh, sw, 1, 1),
  });
  ctx.setValue(out0(op), fused === 0 ? pool : activation(ctx, pool, fused, ctx.fresh('act')), 'nchw');
}

/** A constant operand of a binary op, reshaped to broadcast against an NCHW activation. */
function broadcastConst(ctx: ConvertContext, idx: number, layout: Layout): string {
  const c = ctx.constant(idx);
  const last = c.shape[c.shape.length - 1] ?? 1;
  const spatialOnes = c.shape.slice(0, -1).every((d) => d === 1);
  if (layout === 'nchw' && spatialOnes && c.shape.length > 0) return ctx.constFloat(c.data, [last, 1, 1]);
  if (layout === 'nchw' && c.shape.length === 4) return ctx.get(idx, 'nchw');
  if (layout === 'nchw' && c.shape.length === 3) {
    return ctx.constFloat(transposeConst(c.data, c.shape, [2, 0, 1]), [c.shape[2] ?? 1, c.shape[0] ?? 1, c.shape[1] ?? 1]);
  }
  return ctx.constFloat(c.data, c.shape);
}

function convertBinary(ctx: ConvertContext, op: TfliteOperator, onnxOp: string, fusedField: number): void {
  const a = in0(op, 0);
  const b = in0(op, 1);
  const rank4 = ctx.shapeOf(out0(op)).length === 4;
  const layout: Layout = rank4 ? 'nchw' : 'nhwc';
  const name = (i: number): string => (ctx.isConst(i) ? broadcastConst(ctx, i, layout) : ctx.get(i, layout));
  const fused = fusedField >= 0 ? ctx.model.options.byte(op.optionsPos, fusedField, 0) : 0;
  const r = ctx.node(onnxOp, [name(a), name(b)]);
  ctx.setValue(out0(op), fused === 0 ? r : activation(ctx, r, fused, ctx.fresh('act')), layout);
}

function convertUnary(ctx: ConvertContext, op: TfliteOperator, onnxOp: string): void {
  const layout: Layout = ctx.shapeOf(in0(op)).length === 4 ? 'nchw' : 'nhwc';
  ctx.setValue(out0(op), ctx.node(onnxOp, [ctx.get(in0(op), layout)]), layout);
}

function convertPrelu(ctx: ConvertContext, op: TfliteOperator): void {
  const rank4 = ctx.shapeOf(in0(op)).length === 4;
  const layout: Layout = rank4 ? 'nchw' : 'nhwc';
  const slope = broadcastConst(ctx, in0(op, 1), layout);
  ctx.setValue(out0(op), ctx.node('PRelu', [ctx.get(in0(op), layout), slope]), layout);
}

function convertPad(ctx: ConvertContext, op: TfliteOperator): void {
  const pads = constInt(requireTensor(ctx, in0(op, 1)));
  const rank = pads.length / 2;
  const layout: Layout = rank === 4 ? 'nchw' : 'nhwc';
  const axes = rank === 4 ? [0, 3, 1, 2] : [...Array(rank).keys()];
  const begin = axes.map((a) => pads[2 * a] ?? 0);
  const end = axes.map((a) => pads[2 * a + 1] ?? 0);
  const out = ctx.node('Pad', [ctx.get(in0(op), layout), ctx.constInt64([...begin, ...end])], { mode: 'constant' });
  ctx.setValue(out0(op), out, layout);
}

function requireTensor(ctx: ConvertContext, idx: number): NonNullable<TfliteModel['tensors'][number]> {
  const t = ctx.model.tensors[idx];
  if (!t) throw new TypeError(`tensor ${idx} does not exist`);
  return t;
}

function convertReshape(ctx: ConvertContext, op: TfliteOperator): void {
  const target = [...ctx.shapeOf(out0(op))];
  // A batch of one in and out: 0 copies the input's leading (batch) size, so the graph takes any batch.
  if (target[0] === 1 && ctx.shapeOf(in0(op))[0] === 1) target[0] = 0;
  const out = ctx.node('Reshape', [ctx.get(in0(op), 'nhwc'), ctx.constInt64(target)]);
  ctx.setValue(out0(op), out, 'nhwc');
}

function convertConcat(ctx: ConvertContext, op: TfliteOperator): void {
  const o = ctx.model.options;
  const rank = ctx.shapeOf(out0(op)).length;
  let axis = o.int(op.optionsPos, 0, 0);
  if (axis < 0) axis += rank;
  const fused = o.byte(op.optionsPos, 1, 0);
  const layout: Layout = rank === 4 ? 'nchw' : 'nhwc';
  const onnxAxis = rank === 4 ? (AXIS_TO_NCHW[axis] ?? axis) : axis;
  const r = ctx.node('Concat', op.inputs.map((i) => ctx.get(i, layout)), { axis: onnxAxis });
  ctx.setValue(out0(op), fused === 0 ? r : activation(ctx, r, fused, ctx.fresh('act')), layout);
}

/** STRIDED_SLICE with begin/end masks (no ellipsis, new-axis or shrink masks) → Slice on the NHWC value. */
function convertStridedSlice(ctx: ConvertContext, op: TfliteOperator): void {
  const o = ctx.model.options;
  const p = op.optionsPos;
  const [beginMask, endMask, ellipsis, newAxis, shrink] = [0, 1, 2, 3, 4].map((f) => o.int(p, f, 0));
  if (ellipsis || newAxis || shrink) throw new TypeError('STRIDED_SLICE with ellipsis, new-axis or shrink-axis masks is not supported');
  const shape = ctx.shapeOf(in0(op));
  const begin = constInt(requireTensor(ctx, in0(op, 1)));
  const end = constInt(requireTensor(ctx, in0(op, 2)));
  const strides = constInt(requireTensor(ctx, in0(op, 3)));
  const big = 2 ** 31 - 1;
  const starts = begin.map((b, i) => ((beginMask ?? 0) & (1 << i) ? ((strides[i] ?? 1) > 0 ? 0 : big) : b));
  const ends = end.map((e, i) => ((endMask ?? 0) & (1 << i) ? ((strides[i] ?? 1) > 0 ? big : -big) : e));
  // The whole of a batch of one stays the whole batch when the graph runs on more.
  if (shape[0] === 1 && starts[0] === 0 && (ends[0] ?? 0) >= 1 && (strides[0] ?? 1) === 1) ends[0] = big;
  const axes = shape.map((_, i) => i);
  const out = ctx.node('Slice', [ctx.get(in0(op), 'nhwc'), ctx.constInt64(starts), ctx.constInt64(ends), ctx.constInt64(axes), ctx.constInt64(strides)]);
  ctx.setValue(out0(op), out, 'nhwc');
}

function convertOp(ctx: ConvertContext, op: TfliteOperator, custom: Record<string, CustomOpConverter>): void {
  switch (op.builtin) {
    case Builtin.DEQUANTIZE:
      ctx.setConst(out0(op), constFloat(requireTensor(ctx, in0(op))));
      return;
    case Builtin.CONV_2D:
      return convertConv(ctx, op, false);
    case Builtin.DEPTHWISE_CONV_2D:
      return convertConv(ctx, op, true);
    case Builtin.MAX_POOL_2D:
      return convertMaxPool(ctx, op);
    case Builtin.ADD:
      return convertBinary(ctx, op, 'Add', 0);
    case Builtin.MUL:
      return convertBinary(ctx, op, 'Mul', 0);
    case Builtin.SUB:
      return convertBinary(ctx, op, 'Sub', 0);
    case Builtin.RELU:
      return convertUnary(ctx, op, 'Relu');
    case Builtin.LOGISTIC:
      return convertUnary(ctx, op, 'Sigmoid');
    case Builtin.PRELU:
      return convertPrelu(ctx, op);
    case Builtin.PAD:
      return convertPad(ctx, op);
    case Builtin.RESHAPE:
      return convertReshape(ctx, op);
    case Builtin.CONCATENATION:
      return convertConcat(ctx, op);
    case Builtin.STRIDED_SLICE:
      return convertStridedSlice(ctx, op);
    default: {
      const name = op.customCode ?? BuiltinName[op.builtin] ?? `builtin ${op.builtin}`;
      const handler = custom[name];
      if (!handler) throw new TypeError(`unsupported TFLite operator ${name}`);
      handler(ctx, op);
    }
  }
}

/** A TFLite shape with a leading batch of one gets the symbolic batch dimension instead. */
function batchDims(shape: number[]): (number | string)[] {
  return shape[0] === 1 ? [BATCH_DIM, ...shape.slice(1)] : shape;
}

/** Converts a parsed single-subgraph TFLite model with one NHWC float input into an ONNX graph. */
export function convertTflite(model: TfliteModel, opts: ConvertOptions): OnnxGraph {
  const ctx = new ConvertContext(model);
  const inIdx = model.inputs[0];
  if (inIdx === undefined || model.inputs.length !== 1) throw new TypeError('expected exactly one graph input');
  const [n = 1, h = 1, w = 1, c = 1] = ctx.shapeOf(inIdx);
  ctx.setValue(inIdx, opts.inputName, 'nchw');
  for (const op of model.operators) convertOp(ctx, op, opts.customOps ?? {});
  const outputs = model.outputs.map((idx) => {
    const t = requireTensor(ctx, idx);
    const name = opts.outputNames?.[t.name] ?? t.name;
    ctx.node('Identity', [ctx.get(idx, 'nhwc')], {}, name);
    return { name, dims: batchDims(t.shape) };
  });
  return {
    name: opts.name,
    nodes: ctx.nodes,
    initializers: ctx.initializers,
    inputs: [{ name: opts.inputName, dims: batchDims([n, c, h, w]) }],
    outputs,
    metadata: opts.metadata ?? {},
    opset: 17,
  };
}
