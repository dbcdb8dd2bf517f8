/**
 * Regions of interest as in MediaPipe's face landmark graphs: a rotated square around the face,
 * derived from a detection (eye keypoints give the rotation) or from the previous frame's
 * landmarks (points 33 and 263), enlarged 1.5×; and the affine crop of that square into a
 * model's NCHW float input.
 */
import type { RawFrame } from '../media/video-io.ts';
import type { Detection, Letterbox } from './detector.ts';

/** A rotated rectangle in image pixels; rotation in radians, clockwise in image coordinates. */
export interface Rect {
  cx: number;
  cy: number;
  width: number;
  height: number;
  rotation: number;
}

const ROI_SCALE = 1.5;
/** Landmarks that define the face's horizontal axis when tracking: right and left eye outer corners. */
const ROT_START = 33;
const ROT_END = 263;

function normalizeRadians(a: number): number {
  return a - 2 * Math.PI * Math.floor((a + Math.PI) / (2 * Math.PI));
}

function rotationOf(x0: number, y0: number, x1: number, y1: number): number {
  return normalizeRadians(-Math.atan2(-(y1 - y0), x1 - x0));
}

/** Enlarge and square a box (MediaPipe RectTransformation: scale 1.5, square_long). */
function squareRoi(cx: number, cy: number, w: number, h: number, rotation: number): Rect {
  const side = Math.max(w, h) * ROI_SCALE;
  return { cx, cy, width: side, height: side, rotation };
}

export function rectFromDetection(d: Detection, imageWidth: number, imageHeight: number): Rect {
  const kp = d.keypoints;
  const rotation = rotationOf((kp[0] ?? 0) * imageWidth, (kp[1] ?? 0) * imageHeight, (kp[2] ?? 0) * imageWidth, (kp[3] ?? 0) * imageHeight);
  return squareRoi((d.xMin + d.width / 2) * imageWidth, (d.yMin + d.height / 2) * imageHeight, d.width * imageWidth, d.height * imageHeight, rotation);
}

/** ROI for the next frame from landmarks (x, y, z triples in image pixels). */
export function rectFromLandmarks(lm: Float32Array, count: number): Rect {
  let xMin = Infinity;
  let yMin = Infinity;
  let xMax = -Infinity;
  let yMax = -Infinity;
  for (let i = 0; i < count; i++) {
    const x = lm[3 * i] ?? 0;
    const y = lm[3 * i + 1] ?? 0;
    if (x < xMin) xMin = x;
    if (x > xMax) xMax = x;
    if (y < yMin) yMin = y;
    if (y > yMax) yMax = y;
  }
  const rotation = rotationOf(lm[3 * ROT_START] ?? 0, lm[3 * ROT_START + 1] ?? 0, lm[3 * ROT_END] ?? 0, lm[3 * ROT_END + 1] ?? 0);
  return squareRoi((xMin + xMax) / 2, (yMin + yMax) / 2, xMax - xMin, yMax - yMin, rotation);
}

/**
 * Maps output pixel (u, v) of a size×size crop to image pixel coordinates:
 * x = a*u + b*v + c, y = d*u + e*v + f (pixel centres at +0.5 on both sides).
 */
export interface Affine {
  a: number;
  b: number;
  c: number;
  d: number;
  e: number;
  f: number;
}

export function rectToAffine(r: Rect, size: number): Affine {
  const cos = Math.cos(r.rotation);
  const sin = Math.sin(r.rotation);
  const sx = r.width / size;
  const sy = r.height / size;
  // Output centre (size/2) maps to the rect centre.
  const a = cos * sx;
  const b = -sin * sy;
  const d = sin * sx;
  const e = cos * sy;
  return { a, b, c: r.cx - a * (size / 2) - b * (size / 2), d, e, f: r.cy - d * (size / 2) - e * (size / 2) };
}

export function letterboxToAffine(box: Letterbox): Affine {
  return { a: 1 / box.scale, b: 0, c: -box.padX / box.scale, d: 0, e: 1 / box.scale, f: -box.padY / box.scale };
}

/**
 * Samples an RGBA frame through an affine map into a planar NCHW float tensor (bilinear).
 * Values are mapped from 0..255 to lo..hi. Outside the image: `zero` writes lo (black),
 * `replicate` clamps to the border. Hot path (runs every frame): incremental coordinates, no
 * allocation.
 */
export function warpToTensor(frame: RawFrame, m: Affine, size: number, out: Float32Array, lo: number, hi: number, border: 'zero' | 'replicate'): void {
  if (frame.format !== 'rgba') throw new TypeError(`expected an rgba frame, got ${frame.format}`);
  if (out.length < 3 * size * size) throw new TypeError('output tensor is too small');
  const { width: w, height: h, data } = frame;
  const plane = size * size;
  const k = (hi - lo) / 255;
  const replicate = border === 'replicate';
  const wMax = w - 1;
  const hMax = h - 1;
  for (let v = 0; v < size; v++) {
    const vc = v + 0.5;
    // Continuous source coordinates of pixel (0.5, vc), shifted so integers are pixel centres.
    let x = m.a * 0.5 + m.b * vc + m.c - 0.5;
    let y = m.d * 0.5 + m.e * vc + m.f - 0.5;
    let o = v * size;
    for (let u = 0; u < size; u++, o++, x += m.a, y += m.d) {
      let sx = x;
      let sy = y;
      if (replicate) {
        sx = sx < 0 ? 0 : sx > wMax ? wMax : sx;
        sy = sy < 0 ? 0 : sy > hMax ? hMax : sy;
      } else if (sx < 0 || sy < 0 || sx > wMax || sy > hMax) {
        sampleZeroBorder(data, w, h, sx, sy, out, o, plane, lo, k);
        continue;
      }
      const x0 = sx | 0;
      const y0 = sy | 0;
      const fx = sx - x0;
      const fy = sy - y0;
      const dx = x0 < wMax ? 4 : 0;
      const dy = y0 < hMax ? 4 * w : 0;
      const p = (y0 * w + x0) * 4;
      const w00 = (1 - fx) * (1 - fy);
      const w01 = fx * (1 - fy);
      const w10 = (1 - fx) * fy;
      const w11 = fx * fy;
      out[o] = lo + k * (data[p]! * w00 + data[p + dx]! * w01 + data[p + dy]! * w10 + data[p + dy + dx]! * w11);
      out[o + plane] = lo + k * (data[p + 1]! * w00 + data[p + dx + 1]! * w01 + data[p + dy + 1]! * w10 + data[p + dy + dx + 1]! * w11);
      out[o + 2 * plane] = lo + k * (data[p + 2]! * w00 + data[p + dx + 2]! * w01 + data[p + dy + 2]! * w10 + data[p + dy + dx + 2]! * w11);
    }
  }
}

/** Bilinear sample near or outside the border, where taps outside the image are black. */
function sampleZeroBorder(data: Uint8Array, w: number, h: number, x: number, y: number, out: Float32Array, o: number, plane: number, lo: number, k: number): void {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const fx = x - x0;
  const fy = y - y0;
  let r = 0;
  let g = 0;
  let b = 0;
  for (let j = 0; j < 2; j++) {
    const yy = y0 + j;
    if (yy < 0 || yy >= h) continue;
    for (let i = 0; i < 2; i++) {
      const xx = x0 + i;
      if (xx < 0 || xx >= w) continue;
      const wt = (i ? fx : 1 - fx) * (j ? fy : 1 - fy);
      const p = (yy * w + xx) * 4;
      r += data[p]! * wt;
      g += data[p + 1]! * wt;
      b += data[p + 2]! * wt;
    }
  }
  out[o] = lo + k * r;
  out[o + plane] = lo + k * g;
  out[o + 2 * plane] = lo + k * b;
}

/**
 * Projects landmark model output (x, y, z in crop pixels of a size×size input) into image
 * pixels through the crop's rect. z is scaled like x (MediaPipe: relative depth, face-centred).
 */
export function projectLandmarks(raw: Float32Array, count: number, r: Rect, size: number, out: Float32Array): void {
  const cos = Math.cos(r.rotation);
  const sin = Math.sin(r.rotation);
  const sx = r.width / size;
  const sy = r.height / size;
  const half = size / 2;
  for (let i = 0; i < count; i++) {
    const x = (raw[3 * i] ?? 0) - half;
    const y = (raw[3 * i + 1] ?? 0) - half;
    out[3 * i] = r.cx + cos * x * sx - sin * y * sy;
    out[3 * i + 1] = r.cy + sin * x * sx + cos * y * sy;
    out[3 * i + 2] = (raw[3 * i + 2] ?? 0) * sx;
  }
}
