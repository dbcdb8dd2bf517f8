/**
 * Pixel-format conversions between WebRTC's I420 and the RGBA the tracker and
 * renderer work in (BT.601, limited range, as libwebrtc uses). Integer
 * arithmetic, no allocation: callers pass preallocated destinations.
 */

/** I420 → RGBA. `dst` must hold w*h*4 bytes. */
export function i420ToRgba(src: Uint8Array, w: number, h: number, dst: Uint8Array): void {
  const cw = (w + 1) >> 1;
  const uOff = w * h;
  const vOff = uOff + cw * ((h + 1) >> 1);
  for (let y = 0; y < h; y++) {
    const yRow = y * w;
    const cRow = (y >> 1) * cw;
    let o = yRow * 4;
    for (let x = 0; x < w; x++) {
      const c = 298 * ((src[yRow + x] ?? 16) - 16);
      const ci = cRow + (x >> 1);
      const d = (src[uOff + ci] ?? 128) - 128;
      const e = (src[vOff + ci] ?? 128) - 128;
      const r = (c + 409 * e + 128) >> 8;
      const g = (c - 100 * d - 208 * e + 128) >> 8;
      const b = (c + 516 * d + 128) >> 8;
      dst[o++] = r < 0 ? 0 : r > 255 ? 255 : r;
      dst[o++] = g < 0 ? 0 : g > 255 ? 255 : g;
      dst[o++] = b < 0 ? 0 : b > 255 ? 255 : b;
      dst[o++] = 255;
    }
  }
}

/**
 * RGBA (srcW×srcH, row stride srcW) → into an I420 frame of width dstW at
 * column dstX (for side-by-side composition). Chroma is the average of each
 * 2×2 block. dstX, srcW and srcH must be even.
 */
export function rgbaToI420(src: Uint8Array, srcW: number, srcH: number, dst: Uint8Array, dstW: number, dstH: number, dstX = 0): void {
  const cw = dstW >> 1;
  const uOff = dstW * dstH;
  const vOff = uOff + cw * (dstH >> 1);
  for (let y = 0; y < srcH; y++) {
    let i = y * srcW * 4;
    const yRow = y * dstW + dstX;
    for (let x = 0; x < srcW; x++, i += 4) {
      const r = src[i] ?? 0;
      const g = src[i + 1] ?? 0;
      const b = src[i + 2] ?? 0;
      dst[yRow + x] = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
    }
  }
  for (let y = 0; y < srcH; y += 2) {
    const cRow = (y >> 1) * cw + (dstX >> 1);
    for (let x = 0; x < srcW; x += 2) {
      const i0 = (y * srcW + x) * 4;
      const i1 = i0 + srcW * 4;
      const r = ((src[i0] ?? 0) + (src[i0 + 4] ?? 0) + (src[i1] ?? 0) + (src[i1 + 4] ?? 0)) >> 2;
      const g = ((src[i0 + 1] ?? 0) + (src[i0 + 5] ?? 0) + (src[i1 + 1] ?? 0) + (src[i1 + 5] ?? 0)) >> 2;
      const b = ((src[i0 + 2] ?? 0) + (src[i0 + 6] ?? 0) + (src[i1 + 2] ?? 0) + (src[i1 + 6] ?? 0)) >> 2;
      dst[uOff + cRow + (x >> 1)] = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
      dst[vOff + cRow + (x >> 1)] = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    }
  }
}

/**
 * Nearest-neighbour scale of the centred square crop of an I420 frame into an
 * I420 frame of width dstW at column dstX, size×size. Used for the driving
 * half of side-by-side output.
 */
export function i420CropScale(src: Uint8Array, w: number, h: number, dst: Uint8Array, dstW: number, dstH: number, size: number, dstX = 0): void {
  const side = Math.min(w, h);
  i420Scale(src, w, h, (w - side) >> 1, (h - side) >> 1, side, side, dst, dstW, dstH, dstX, size, size);
}

/**
 * Nearest-neighbour scale of an I420 frame onto a whole dstW×dstH I420 frame, cropped at the centre
 * to its aspect (cover). Used for passthrough fallback at the output's size.
 */
export function i420Cover(src: Uint8Array, w: number, h: number, dst: Uint8Array, dstW: number, dstH: number): void {
  const k = Math.min(w / dstW, h / dstH);
  const cw = Math.min(w, Math.round(dstW * k)), ch = Math.min(h, Math.round(dstH * k));
  i420Scale(src, w, h, (w - cw) >> 1 & ~1, (h - ch) >> 1 & ~1, cw, ch, dst, dstW, dstH, 0, dstW, dstH);
}

/** Nearest-neighbour scale of the rect (x0, y0, cw, ch) of src into the outW×outH rect at column dstX of dst. */
function i420Scale(src: Uint8Array, w: number, h: number, x0: number, y0: number, cw: number, ch: number, dst: Uint8Array, dstW: number, dstH: number, dstX: number, outW: number, outH: number): void {
  const sx = cw / outW, sy = ch / outH;
  for (let y = 0; y < outH; y++) {
    const row = (y0 + Math.floor(y * sy)) * w + x0;
    for (let x = 0; x < outW; x++) dst[y * dstW + dstX + x] = src[row + Math.floor(x * sx)] ?? 16;
  }
  const scw = (w + 1) >> 1;
  const uOff = w * h;
  const vOff = uOff + scw * ((h + 1) >> 1);
  const dcw = dstW >> 1;
  const duOff = dstW * dstH;
  const dvOff = duOff + dcw * (dstH >> 1);
  for (let y = 0; y < outH >> 1; y++) {
    const row = ((y0 >> 1) + Math.floor(y * sy)) * scw + (x0 >> 1);
    for (let x = 0; x < outW >> 1; x++) {
      const si = row + Math.floor(x * sx);
      const di = y * dcw + (dstX >> 1) + x;
      dst[duOff + di] = src[uOff + si] ?? 128;
      dst[dvOff + di] = src[vOff + si] ?? 128;
    }
  }
}

export function i420Size(w: number, h: number): number {
  return w * h + 2 * ((w + 1) >> 1) * ((h + 1) >> 1);
}
