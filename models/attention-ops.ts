/**
 * Converters for the MediaPipe custom operators of face_landmark_with_attention.tflite, written
 * from the semantics of mediapipe/util/tflite/operations/ (Apache-2.0), version 2 of each op:
 *
 * - Landmarks2TransformMatrix: landmarks [1, N, 3] → 4×4 matrix M that maps a point of an
 *   output_width × output_height crop to the landmarks' space. r = target − atan2(right − left);
 *   the subset is rotated by r, its bounding box (w, h) and centre (rotated back) give
 *   M = T(centre) · R(−r) · S(scale_x·w/W, scale_y·h/H) · T(−W/2, −H/2).
 *   Built from plain ops: cos/sin come from the normalised left→right vector (no Atan2).
 * - TransformTensorBilinear: samples the feature map at M·(x + ½, y + ½) − ½ per output pixel
 *   (bilinear); a sample whose position falls outside [0, size − 1] is 0 as a whole. Mapped to
 *   GridSample (align_corners 0, where the half-pixel terms cancel) times an in-bounds mask.
 * - TransformLandmarks: [1, N, 2|3] points → M's upper 2×3 affine applied to x y (z kept).
 *
 * Options come from each op's flexbuffer map (custom_options).
 */
import { toReference } from 'flatbuffers/js/flexbuffers.js';
import type { ConvertContext, CustomOpConverter } from './convert.ts';
import type { TfliteOperator } from './tflite-reader.ts';

type FlexValue = number | number[];
type Reference = ReturnType<typeof toReference>;

/** Reads a custom op's flexbuffer options map (numbers and numeric vectors only). */
export function flexOptions(bytes: Uint8Array | null): Map<string, FlexValue> {
  const out = new Map<string, FlexValue>();
  if (!bytes || bytes.length === 0) return out;
  const root = toReference(bytes.slice().buffer);
  const keys = Object.keys(root.toObject() as Record<string, unknown>);
  // flexbuffers.d.ts declares get(number) only; the implementation looks maps up by string key.
  const byKey = root.get.bind(root) as unknown as (key: string) => Reference;
  const scalar = (r: Reference): number => (r.isFloat() ? (r.floatValue() ?? 0) : Number(r.intValue() ?? 0));
  for (const k of keys) {
    const r = byKey(k);
    if (r.isVector()) out.set(k, Array.from({ length: r.length() }, (_, i) => scalar(r.get(i))));
    else if (r.isNumber()) out.set(k, scalar(r));
  }
  return out;
}

function num(opts: Map<string, FlexValue>, key: string, op: string, def?: number): number {
  const v = opts.get(key) ?? def;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`${op}: option ${key} is missing or not a number`);
  return v;
}

function ints(opts: Map<string, FlexValue>, key: string, op: string): number[] {
  const v = opts.get(key);
  if (!Array.isArray(v) || v.length === 0) throw new TypeError(`${op}: option ${key} is missing or empty`);
  return v;
}

function io(op: TfliteOperator, inputs: number, name: string): { ins: number[]; out: number } {
  const ins = op.inputs.slice(0, inputs);
  const out = op.outputs[0];
  if (ins.length !== inputs || ins.some((i) => i < 0) || out === undefined) throw new TypeError(`${name}: expected ${inputs} inputs and one output`);
  return { ins, out };
}

/** Last-axis slice [from, to) of a value. */
function lastAxis(ctx: ConvertContext, x: string, from: number, to: number): string {
  return ctx.node('Slice', [x, ctx.constInt64([from]), ctx.constInt64([to]), ctx.constInt64([-1])]);
}

const scalarConst = (ctx: ConvertContext, v: number): string => ctx.constFloat(new Float32Array([v]), [1]);

export const landmarksToTransformMatrix: CustomOpConverter = (ctx, op) => {
  const name = 'Landmarks2TransformMatrix';
  const { ins, out } = io(op, 1, name);
  const [n = 0, count = 0, dims = 0] = ctx.shapeOf(ins[0] ?? -1);
  if (n !== 1 || dims < 2) throw new TypeError(`${name}: expected landmarks [1, N, 3], got [${ctx.shapeOf(ins[0] ?? -1).join(', ')}]`);
  const o = flexOptions(op.customOptions);
  const left = num(o, 'left_rotation_idx', name);
  const right = num(o, 'right_rotation_idx', name);
  const subset = ints(o, 'subset_idxs', name);
  if ([left, right, ...subset].some((i) => i < 0 || i >= count)) throw new TypeError(`${name}: landmark index out of range`);
  const target = num(o, 'target_rotation_radians', name, 0);
  const w = num(o, 'output_width', name);
  const h = num(o, 'output_height', name);
  const scaleX = num(o, 'scale_x', name);
  const scaleY = num(o, 'scale_y', name);

  const xy = lastAxis(ctx, ctx.get(ins[0] ?? -1, 'nhwc'), 0, 2); // [1, N, 2]
  const pick = (idx: number[]): string => ctx.node('Gather', [xy, ctx.constInt64(idx)], { axis: 1 });
  // Unit vector left→right = (cos θ, sin θ); r = target − θ: (cos r, sin r) = u · K.
  const d = ctx.node('Sub', [pick([right]), pick([left])]); // [1, 1, 2]
  const len = ctx.node('Sqrt', [ctx.node('ReduceSum', [ctx.node('Mul', [d, d]), ctx.constInt64([-1])], { keepdims: 1 })]);
  const u = ctx.node('Div', [d, ctx.node('Max', [len, scalarConst(ctx, 1e-20)])]);
  const ct = Math.cos(target);
  const st = Math.sin(target);
  const cs = ctx.node('MatMul', [u, ctx.constFloat(new Float32Array([ct, st, st, -ct]), [2, 2])]);
  const c = lastAxis(ctx, cs, 0, 1); // [1, 1, 1]
  const s = lastAxis(ctx, cs, 1, 2);
  // perp(p) = p · J = (−y, x); rotating by r is c·p + s·perp(p), by −r is c·p − s·perp(p).
  const perp = ctx.constFloat(new Float32Array([0, 1, -1, 0]), [2, 2]);
  const pts = pick(subset); // [1, K, 2]
  const rotated = ctx.node('Add', [ctx.node('Mul', [pts, c]), ctx.node('Mul', [ctx.node('MatMul', [pts, perp]), s])]);
  const lo = ctx.node('ReduceMin', [rotated], { axes: [1], keepdims: 1 }); // [1, 1, 2]
  const hi = ctx.node('ReduceMax', [rotated], { axes: [1], keepdims: 1 });
  const mid = ctx.node('Mul', [ctx.node('Add', [lo, hi]), scalarConst(ctx, 0.5)]);
  const centre = ctx.node('Sub', [ctx.node('Mul', [mid, c]), ctx.node('Mul', [ctx.node('MatMul', [mid, perp]), s])]);
  const scale = ctx.node('Mul', [ctx.node('Sub', [hi, lo]), ctx.constFloat(new Float32Array([scaleX / w, scaleY / h]), [2])]);
  const sx = lastAxis(ctx, scale, 0, 1);
  const sy = lastAxis(ctx, scale, 1, 2);
  // Linear part A = R(−r)·S = [[c·sx, s·sy], [−s·sx, c·sy]]; translation = centre − A·(W/2, H/2).
  const a00 = ctx.node('Mul', [c, sx]);
  const a01 = ctx.node('Mul', [s, sy]);
  const a10 = ctx.node('Neg', [ctx.node('Mul', [s, sx])]);
  const a11 = ctx.node('Mul', [c, sy]);
  const colW = (x: string): string => ctx.node('Mul', [x, scalarConst(ctx, w / 2)]);
  const colH = (x: string): string => ctx.node('Mul', [x, scalarConst(ctx, h / 2)]);
  const tx = ctx.node('Sub', [lastAxis(ctx, centre, 0, 1), ctx.node('Add', [colW(a00), colH(a01)])]);
  const ty = ctx.node('Sub', [lastAxis(ctx, centre, 1, 2), ctx.node('Add', [colW(a10), colH(a11)])]);
  // Concat does not broadcast: the constant parts take the batch size from a00 ([N, 1, 1]).
  const zero = ctx.node('Mul', [a00, scalarConst(ctx, 0)]);
  const tail = ctx.node('Add', [ctx.node('Mul', [a00, ctx.constFloat(new Float32Array(8), [1, 1, 8])]), ctx.constFloat(new Float32Array([0, 0, 1, 0, 0, 0, 0, 1]), [1, 1, 8])]);
  const flat = ctx.node('Concat', [a00, a01, zero, tx, a10, a11, zero, ty, tail], { axis: 2 });
  ctx.setValue(out, ctx.node('Reshape', [flat, ctx.constInt64([0, 4, 4])]), 'nhwc');
};

/**
 * Per batch item, the [3, 2] matrix B with [x, y, 1] · B = M's affine image of (x, y): rows
 * (M00, M10), (M01, M11), (M03, M13). `matrix` is [N, 4, 4]; the result is [N, 3, 2].
 */
function affineRows(ctx: ConvertContext, matrix: string): string {
  const top = ctx.node('Slice', [matrix, ctx.constInt64([0]), ctx.constInt64([2]), ctx.constInt64([-2])]);
  return ctx.node('Transpose', [ctx.node('Gather', [top, ctx.constInt64([0, 1, 3])], { axis: 2 })], { perm: [0, 2, 1] });
}

export const transformTensorBilinear: CustomOpConverter = (ctx, op) => {
  const name = 'TransformTensorBilinear';
  const { ins, out } = io(op, 2, name);
  const [, inH = 0, inW = 0] = ctx.shapeOf(ins[0] ?? -1);
  const [n = 0, outH = 0, outW = 0] = ctx.shapeOf(out);
  const o = flexOptions(op.customOptions);
  if (n !== 1 || num(o, 'output_height', name, outH) !== outH || num(o, 'output_width', name, outW) !== outW) {
    throw new TypeError(`${name}: output shape and options disagree`);
  }
  // Homogeneous pixel centres (x + ½, y + ½, 1) of the output, row-major.
  const grid = new Float32Array(outH * outW * 3);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) grid.set([x + 0.5, y + 0.5, 1], (y * outW + x) * 3);
  }
  // pos = M·(x + ½, y + ½) = sample position + ½, which align_corners 0 normalises as 2·pos/size − 1.
  const pos = ctx.node('MatMul', [ctx.constFloat(grid, [outH * outW, 3]), affineRows(ctx, ctx.get(ins[1] ?? -1, 'nhwc'))]);
  const norm = ctx.node('Sub', [ctx.node('Mul', [pos, ctx.constFloat(new Float32Array([2 / inW, 2 / inH]), [2])]), scalarConst(ctx, 1)]);
  const sampled = ctx.node('GridSample', [ctx.get(ins[0] ?? -1, 'nchw'), ctx.node('Reshape', [norm, ctx.constInt64([0, outH, outW, 2])])], {
    mode: 'bilinear',
    padding_mode: 'zeros',
    align_corners: 0,
  });
  // MediaPipe zeroes a sample whose position leaves [0, size − 1]: pos in [½, size − ½].
  const inside = ctx.node('And', [
    ctx.node('GreaterOrEqual', [pos, scalarConst(ctx, 0.5)]),
    ctx.node('LessOrEqual', [pos, ctx.constFloat(new Float32Array([inW - 0.5, inH - 0.5]), [2])]),
  ]);
  const mask = ctx.node('ReduceMin', [ctx.node('Cast', [inside], { to: 1 })], { axes: [-1], keepdims: 0 });
  ctx.setValue(out, ctx.node('Mul', [sampled, ctx.node('Reshape', [mask, ctx.constInt64([0, 1, outH, outW])])]), 'nchw');
};

export const transformLandmarks: CustomOpConverter = (ctx, op) => {
  const name = 'TransformLandmarks';
  const { ins, out } = io(op, 2, name);
  const shape = ctx.shapeOf(ins[0] ?? -1);
  const dims = num(flexOptions(op.customOptions), 'dimensions', name, shape[shape.length - 1] ?? 0);
  if (shape.length !== 3 || (dims !== 2 && dims !== 3) || shape[2] !== dims) throw new TypeError(`${name}: expected points [1, N, 2|3]`);
  const b = affineRows(ctx, ctx.get(ins[1] ?? -1, 'nhwc'));
  const pts = ctx.get(ins[0] ?? -1, 'nhwc');
  const linear = ctx.node('Slice', [b, ctx.constInt64([0]), ctx.constInt64([2]), ctx.constInt64([-2])]);
  const shift = ctx.node('Slice', [b, ctx.constInt64([2]), ctx.constInt64([3]), ctx.constInt64([-2])]);
  const xy = ctx.node('Add', [ctx.node('MatMul', [dims === 2 ? pts : lastAxis(ctx, pts, 0, 2), linear]), shift]);
  ctx.setValue(out, dims === 2 ? xy : ctx.node('Concat', [xy, lastAxis(ctx, pts, 2, 3)], { axis: 2 }), 'nhwc');
};

export const attentionCustomOps: Record<string, CustomOpConverter> = {
  Landmarks2TransformMatrix: landmarksToTransformMatrix,
  TransformTensorBilinear: transformTensorBilinear,
  TransformLandmarks: transformLandmarks,
};
