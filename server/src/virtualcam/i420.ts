/**
 * I420 helpers for the virtual camera: a fixed-size canvas that any input
 * size is fitted into (letterboxed, nearest neighbour), because v4l2 and y4m
 * consumers need one frame size for the whole stream.
 */
export interface I420Frame {
  width: number;
  height: number;
  data: Uint8Array;
}

export function i420Bytes(width: number, height: number): number {
  return width * height + 2 * ((width + 1) >> 1) * ((height + 1) >> 1);
}

/** A black I420 frame (luma 16, chroma 128). */
export function blackFrame(width: number, height: number): Uint8Array {
  const out = new Uint8Array(i420Bytes(width, height));
  out.fill(16, 0, width * height);
  out.fill(128, width * height);
  return out;
}

function fitPlane(src: Uint8Array, sw: number, sh: number, dst: Uint8Array, dw: number, dh: number, box: { x: number; y: number; w: number; h: number }): void {
  for (let y = 0; y < box.h; y++) {
    const sy = Math.min(sh - 1, Math.floor(((y + 0.5) * sh) / box.h));
    const srow = sy * sw;
    const drow = (box.y + y) * dw + box.x;
    for (let x = 0; x < box.w; x++) dst[drow + x] = src[srow + Math.min(sw - 1, Math.floor(((x + 0.5) * sw) / box.w))] ?? 0;
  }
  void dh;
}

/**
 * Fits `src` into `dst` (a frame of dw×dh): a straight copy when the sizes
 * match, otherwise scaled to fit with black bars.
 */
export function fitInto(src: I420Frame, dst: Uint8Array, dw: number, dh: number): void {
  const { width: sw, height: sh, data } = src;
  if (sw === dw && sh === dh) {
    dst.set(data.subarray(0, dst.length));
    return;
  }
  dst.fill(16, 0, dw * dh);
  dst.fill(128, dw * dh);
  const scale = Math.min(dw / sw, dh / sh);
  // Even sizes and offsets keep luma and chroma aligned.
  const w = Math.max(2, Math.floor((sw * scale) / 2) * 2);
  const h = Math.max(2, Math.floor((sh * scale) / 2) * 2);
  const x = Math.floor((dw - w) / 4) * 2;
  const y = Math.floor((dh - h) / 4) * 2;
  fitPlane(data, sw, sh, dst, dw, dh, { x, y, w, h });
  const scw = (sw + 1) >> 1;
  const sch = (sh + 1) >> 1;
  const dcw = (dw + 1) >> 1;
  const dch = (dh + 1) >> 1;
  const cbox = { x: x / 2, y: y / 2, w: w / 2, h: h / 2 };
  const sU = sw * sh;
  const sV = sU + scw * sch;
  const dU = dw * dh;
  const dV = dU + dcw * dch;
  fitPlane(data.subarray(sU, sV), scw, sch, dst.subarray(dU, dV), dcw, dch, cbox);
  fitPlane(data.subarray(sV), scw, sch, dst.subarray(dV), dcw, dch, cbox);
}
