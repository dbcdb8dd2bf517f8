/**
 * Piecewise-affine backward warp: each destination triangle is scan-converted
 * and every pixel centre is mapped through the triangle's affine map back into
 * the source image, then sampled bilinearly. Rasterising and sampling are fused
 * in one tight loop, so no intermediate grid is stored.
 *
 * Shared edges are filled exactly once (half-open spans computed from the edge
 * with its endpoints in vertex-id order), so a watertight mesh leaves no cracks.
 */

/** An RGBA image; data.length === width * height * 4. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export function newImage(width: number, height: number): RgbaImage {
  return { width, height, data: new Uint8Array(width * height * 4) };
}

const xs = new Float64Array(3);
const ys = new Float64Array(3);
const ids = new Int32Array(3);

/**
 * Warps src into dst. srcPts/dstPts are interleaved x,y in pixel units (pixel
 * centres at i+0.5). tris holds vertex triples; order lists triangle indices
 * in painter's order (later wins), or null for 0..n-1.
 */
export function warpTriangles(
  src: RgbaImage,
  srcPts: ArrayLike<number>,
  dst: RgbaImage,
  dstPts: ArrayLike<number>,
  tris: ArrayLike<number>,
  order: ArrayLike<number> | null,
  count = order ? order.length : tris.length / 3,
): void {
  for (let k = 0; k < count; k++) {
    const t = order ? order[k]! : k;
    const i0 = tris[t * 3]!, i1 = tris[t * 3 + 1]!, i2 = tris[t * 3 + 2]!;
    warpTriangle(src, srcPts, dst, dstPts, i0, i1, i2);
  }
}

export function warpTriangle(src: RgbaImage, srcPts: ArrayLike<number>, dst: RgbaImage, dstPts: ArrayLike<number>, i0: number, i1: number, i2: number): void {
  const x0 = dstPts[i0 * 2]!, y0 = dstPts[i0 * 2 + 1]!;
  const x1 = dstPts[i1 * 2]!, y1 = dstPts[i1 * 2 + 1]!;
  const x2 = dstPts[i2 * 2]!, y2 = dstPts[i2 * 2 + 1]!;
  const det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0);
  if (Math.abs(det) < 1e-9) return;
  const H = dst.height, W = dst.width;
  const minY = Math.min(y0, y1, y2), maxY = Math.max(y0, y1, y2);
  let ya = Math.ceil(minY - 0.5), yb = Math.ceil(maxY - 0.5) - 1;
  if (ya < 0) ya = 0;
  if (yb > H - 1) yb = H - 1;
  if (ya > yb) return;
  const u0 = srcPts[i0 * 2]!, v0 = srcPts[i0 * 2 + 1]!;
  const du1 = srcPts[i1 * 2]! - u0, dv1 = srcPts[i1 * 2 + 1]! - v0;
  const du2 = srcPts[i2 * 2]! - u0, dv2 = srcPts[i2 * 2 + 1]! - v0;
  const l1x = (y2 - y0) / det, l1y = -(x2 - x0) / det;
  const l2x = -(y1 - y0) / det, l2y = (x1 - x0) / det;
  const A = du1 * l1x + du2 * l2x, B = du1 * l1y + du2 * l2y;
  const D = dv1 * l1x + dv2 * l2x, E = dv1 * l1y + dv2 * l2y;
  // Sample coordinates in "index space" (pixel centre i+0.5 -> i).
  const C = u0 - A * x0 - B * y0 - 0.5;
  const F = v0 - D * x0 - E * y0 - 0.5;
  xs[0] = x0; xs[1] = x1; xs[2] = x2;
  ys[0] = y0; ys[1] = y1; ys[2] = y2;
  ids[0] = i0; ids[1] = i1; ids[2] = i2;
  const sd = src.data, dd = dst.data, SW = src.width, SH = src.height;
  const maxSx = SW - 1, maxSy = SH - 1;
  for (let y = ya; y <= yb; y++) {
    const yc = y + 0.5;
    let xl = Infinity, xr = -Infinity;
    for (let e = 0; e < 3; e++) {
      const f = e === 2 ? 0 : e + 1;
      // Endpoints in vertex-id order so neighbouring triangles compute identical crossings.
      const p = ids[e]! < ids[f]! ? e : f, q = p === e ? f : e;
      const py = ys[p]!, qy = ys[q]!;
      const lo = py < qy ? py : qy, hi = py < qy ? qy : py;
      if (yc < lo || yc >= hi) continue;
      const xc = xs[p]! + ((yc - py) * (xs[q]! - xs[p]!)) / (qy - py);
      if (xc < xl) xl = xc;
      if (xc > xr) xr = xc;
    }
    if (xl > xr) continue;
    let xa = Math.ceil(xl - 0.5), xb = Math.ceil(xr - 0.5) - 1;
    if (xa < 0) xa = 0;
    if (xb > W - 1) xb = W - 1;
    if (xa > xb) continue;
    let sx = A * (xa + 0.5) + B * yc + C;
    let sy = D * (xa + 0.5) + E * yc + F;
    let o = (y * W + xa) * 4;
    for (let x = xa; x <= xb; x++, sx += A, sy += D, o += 4) {
      let cx = sx, cy = sy;
      if (cx < 0) cx = 0; else if (cx > maxSx) cx = maxSx;
      if (cy < 0) cy = 0; else if (cy > maxSy) cy = maxSy;
      // 8-bit fixed point, rounded, so exact pixel centres sample exactly one pixel.
      const fx = (cx * 256 + 0.5) | 0, fy = (cy * 256 + 0.5) | 0;
      let ix = fx >> 8, iy = fy >> 8, wx = fx & 255, wy = fy & 255;
      if (ix >= maxSx) {
        ix = maxSx - 1;
        wx = 256;
      }
      if (iy >= maxSy) {
        iy = maxSy - 1;
        wy = 256;
      }
      const w00 = (256 - wx) * (256 - wy), w01 = wx * (256 - wy), w10 = (256 - wx) * wy, w11 = wx * wy;
      const p00 = (iy * SW + ix) * 4, p10 = p00 + SW * 4;
      dd[o] = (sd[p00]! * w00 + sd[p00 + 4]! * w01 + sd[p10]! * w10 + sd[p10 + 4]! * w11 + 32768) >> 16;
      dd[o + 1] = (sd[p00 + 1]! * w00 + sd[p00 + 5]! * w01 + sd[p10 + 1]! * w10 + sd[p10 + 5]! * w11 + 32768) >> 16;
      dd[o + 2] = (sd[p00 + 2]! * w00 + sd[p00 + 6]! * w01 + sd[p10 + 2]! * w10 + sd[p10 + 6]! * w11 + 32768) >> 16;
      dd[o + 3] = 255;
    }
  }
}

/**
 * Rasterises a simple polygon (interleaved x,y) into an 8-bit coverage mask
 * with even-odd scanline filling at pixel centres. Only the bounding box is touched.
 */
export function fillPolygon(pts: ArrayLike<number>, n: number, mask: Uint8Array, width: number, height: number, value = 255): void {
  let minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < n; i++) {
    const y = pts[i * 2 + 1]!;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  const ya = Math.max(0, Math.ceil(minY - 0.5)), yb = Math.min(height - 1, Math.ceil(maxY - 0.5) - 1);
  const cross: number[] = [];
  for (let y = ya; y <= yb; y++) {
    const yc = y + 0.5;
    cross.length = 0;
    for (let i = 0, j = n - 1; i < n; j = i++) {
      const yi = pts[i * 2 + 1]!, yj = pts[j * 2 + 1]!;
      if ((yi <= yc && yj > yc) || (yj <= yc && yi > yc)) {
        cross.push(pts[i * 2]! + ((yc - yi) * (pts[j * 2]! - pts[i * 2]!)) / (yj - yi));
      }
    }
    cross.sort((a, b) => a - b);
    for (let k = 0; k + 1 < cross.length; k += 2) {
      const xa = Math.max(0, Math.ceil(cross[k]! - 0.5)), xb = Math.min(width - 1, Math.ceil(cross[k + 1]! - 0.5) - 1);
      for (let x = xa; x <= xb; x++) mask[y * width + x] = value;
    }
  }
}
