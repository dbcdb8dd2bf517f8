/**
 * Whole-image helpers used at enrollment: anti-aliased crop-and-resize of an
 * RGBA frame (area filter when shrinking, bilinear when enlarging, edge pixels
 * replicated outside the frame) and a 2D similarity fit.
 */
import type { RawFrame } from '../media/video-io.ts';
import { newImage, type RgbaImage } from './raster.ts';

/** Axis-aligned square crop in source pixels. */
export interface CropRect {
  x: number;
  y: number;
  side: number;
}

/** Resamples the square `crop` of an RGBA frame to size×size. */
export function cropResize(src: RawFrame, crop: CropRect, size: number): RgbaImage {
  return resizeRect(src, crop.x, crop.y, crop.side / size, crop.side / size, size, size);
}

/**
 * Resamples an RGBA frame to outW×outH: output pixel (x, y) covers source
 * [x0 + x·sx, x0 + (x+1)·sx) × [y0 + y·sy, …); an area filter when shrinking,
 * bilinear when enlarging, edge pixels replicated outside the frame.
 */
export function resizeRect(src: RawFrame, x0: number, y0: number, sx: number, sy: number, outW: number, outH: number): RgbaImage {
  if (src.format !== 'rgba') throw new TypeError('resizeRect needs an RGBA frame');
  const out = newImage(outW, outH);
  const hx = buildTaps(x0, sx, Math.max(0.5, sx / 2), outW, src.width);
  const hy = buildTaps(y0, sy, Math.max(0.5, sy / 2), outH, src.height);
  // Horizontal pass into a float buffer of src.height rows that the vertical taps need.
  const rowsNeeded = new Set<number>();
  for (const t of hy) for (const [i] of t) rowsNeeded.add(i);
  const tmp = new Map<number, Float32Array>();
  for (const yy of rowsNeeded) {
    const row = new Float32Array(outW * 4);
    const base = yy * src.width * 4;
    for (let x = 0; x < outW; x++) {
      let r = 0, g = 0, b = 0, a = 0;
      for (const [i, w] of hx[x]!) {
        const o = base + i * 4;
        r += src.data[o]! * w; g += src.data[o + 1]! * w; b += src.data[o + 2]! * w; a += src.data[o + 3]! * w;
      }
      row[x * 4] = r; row[x * 4 + 1] = g; row[x * 4 + 2] = b; row[x * 4 + 3] = a;
    }
    tmp.set(yy, row);
  }
  for (let y = 0; y < outH; y++) {
    const taps = hy[y]!;
    for (let x = 0; x < outW * 4; x++) {
      let s = 0;
      for (const [i, w] of taps) s += tmp.get(i)![x]! * w;
      out.data[y * outW * 4 + x] = s < 0 ? 0 : s > 255 ? 255 : Math.round(s);
    }
  }
  return out;
}

/** Filter taps (source index, weight) per output pixel: a triangle filter of half-width `radius` source pixels. */
function buildTaps(origin: number, scale: number, radius: number, size: number, limit: number): [number, number][][] {
  const taps: [number, number][][] = [];
  for (let o = 0; o < size; o++) {
    const c = origin + (o + 0.5) * scale; // continuous source coordinate of the output pixel centre
    const a = Math.floor(c - radius - 0.5), b = Math.ceil(c + radius - 0.5);
    const list: [number, number][] = [];
    let sum = 0;
    for (let i = a; i <= b; i++) {
      const w = Math.max(0, 1 - Math.abs(i + 0.5 - c) / (radius + 0.5));
      if (w <= 0) continue;
      const ii = i < 0 ? 0 : i >= limit ? limit - 1 : i;
      list.push([ii, w]);
      sum += w;
    }
    if (sum === 0) list.push([Math.min(limit - 1, Math.max(0, Math.floor(c))), (sum = 1)]);
    for (const t of list) t[1] /= sum;
    taps.push(list);
  }
  return taps;
}

/** 2D similarity b ≈ s·R·a + t fitted on the given ids (stride-3 arrays); returns [a, b, tx, ty] with R·s = [[a,-b],[b,a]]. */
export function fitSimilarity2D(a: ArrayLike<number>, b: ArrayLike<number>, ids: readonly number[]): [number, number, number, number] {
  let ax = 0, ay = 0, bx = 0, by = 0;
  for (const i of ids) {
    ax += a[i * 3]!; ay += a[i * 3 + 1]!; bx += b[i * 3]!; by += b[i * 3 + 1]!;
  }
  const n = ids.length;
  ax /= n; ay /= n; bx /= n; by /= n;
  let sxx = 0, sab = 0, sba = 0;
  for (const i of ids) {
    const x = a[i * 3]! - ax, y = a[i * 3 + 1]! - ay, u = b[i * 3]! - bx, v = b[i * 3 + 1]! - by;
    sxx += x * x + y * y;
    sab += x * u + y * v;
    sba += x * v - y * u;
  }
  const p = sab / sxx, q = sba / sxx;
  return [p, q, bx - (p * ax - q * ay), by - (q * ax + p * ay)];
}
