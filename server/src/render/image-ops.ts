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
  if (src.format !== 'rgba') throw new TypeError('cropResize needs an RGBA frame');
  const out = newImage(size, size);
  const scale = crop.side / size;
  const radius = Math.max(0.5, scale / 2);
  const hx = buildTaps(crop.x, scale, radius, size, src.width);
  const hy = buildTaps(crop.y, scale, radius, size, src.height);
  // Horizontal pass into a float buffer of src.height rows that the vertical taps need.
  const rowsNeeded = new Set<number>();
  for (const t of hy) for (const [i] of t) rowsNeeded.add(i);
  const tmp = new Map<number, Float32Array>();
  for (const yy of rowsNeeded) {
    const row = new Float32Array(size * 4);
    const base = yy * src.width * 4;
    for (let x = 0; x < size; x++) {
      let r = 0, g = 0, b = 0, a = 0;
      for (const [i, w] of hx[x]!) {
        const o = base + i * 4;
        r += src.data[o]! * w; g += src.data[o + 1]! * w; b += src.data[o + 2]! * w; a += src.data[o + 3]! * w;
      }
      row[x * 4] = r; row[x * 4 + 1] = g; row[x * 4 + 2] = b; row[x * 4 + 3] = a;
    }
    tmp.set(yy, row);
  }
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size * 4; x++) {
      let s = 0;
      for (const [i, w] of hy[y]!) s += tmp.get(i)![x]! * w;
      out.data[y * size * 4 + x] = s < 0 ? 0 : s > 255 ? 255 : Math.round(s);
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
