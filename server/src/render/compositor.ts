/**
 * Paste-back: the rendered face square composited into the target's picture
 * on an output canvas (canvas.ts lays it out), straight into I420.
 *
 * The canvas background (the picture scaled and framed, bars black) is
 * converted to I420 once per layout. Per frame it is copied, and only the
 * face square's pixels are resampled from the render (bilinear), converted
 * and blended in. The blend weight falls to zero over a band along the
 * square's edge. The renderer pins its warp to the crop's border (ring 3 of
 * the render mesh sits on it and never moves), so both sides of the band show
 * the same picture and no seam appears, whatever the head does inside.
 */
import type { RawFrame } from '../media/video-io.ts';
import { i420Size, rgbaToI420 } from '../media/convert.ts';
import { layoutCanvas, type CanvasLayout } from './canvas.ts';
import type { OutputProfile } from '../../../shared/protocol.ts';
import { resizeRect, type CropRect } from './image-ops.ts';

/** The blend band along the square's edge, as a share of the square's side. */
export const FEATHER_SHARE = 0.06;

interface Taps {
  /** First of the two source samples (clamped), and the second's weight, 0..256, per output position. */
  i0: Int32Array;
  i1: Int32Array;
  w: Int32Array;
  /** Blend weight, 0..256. */
  alpha: Int32Array;
}

export class Compositor {
  readonly layout: CanvasLayout;
  readonly width: number;
  readonly height: number;
  readonly #background: Uint8Array;
  #tapsFor = -1;
  #luma: PlaneTaps | null = null;
  #chroma: PlaneTaps | null = null;
  #faceYuv = new Uint8Array(0);

  /** `picture` is the target's whole reference frame (RGBA), laid out by `layout`. */
  constructor(picture: RawFrame, layout: CanvasLayout) {
    this.layout = layout;
    this.width = layout.width;
    this.height = layout.height;
    const { width, height, view, scale, content } = layout;
    const rgba = new Uint8Array(width * height * 4);
    for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
    if (content.w > 0 && content.h > 0) {
      const inv = 1 / scale;
      const part = resizeRect(picture, view.x + content.x * inv, view.y + content.y * inv, inv, inv, content.w, content.h);
      for (let y = 0; y < content.h; y++) rgba.set(part.data.subarray(y * content.w * 4, (y + 1) * content.w * 4), ((content.y + y) * width + content.x) * 4);
    }
    this.#background = new Uint8Array(i420Size(width, height));
    rgbaToI420(rgba, width, height, this.#background, width, height);
  }

  /** Bytes of one output frame. */
  get frameBytes(): number {
    return this.#background.length;
  }

  /** Writes the canvas with `face` (size×size RGBA from the renderer) pasted in, into `out` (I420, frameBytes). */
  compose(face: Uint8Array, size: number, out: Uint8Array): void {
    if (out.length !== this.#background.length) throw new TypeError(`output has ${out.length} bytes, expected ${this.#background.length}`);
    if (face.length !== size * size * 4) throw new TypeError(`face has ${face.length} bytes, expected ${size * size * 4}`);
    if (this.#tapsFor !== size) this.#buildTaps(size);
    // The face goes to I420 at its own size first: the canvas then resamples one channel per plane.
    const yuv = this.#faceYuv;
    rgbaToI420(face, size, size, yuv, size, size);
    out.set(this.#background);
    const W = this.width, H = this.height, half = size >> 1, cw = W >> 1;
    blendPlane(yuv, 0, size, out, 0, W, this.#luma!);
    blendPlane(yuv, size * size, half, out, W * H, cw, this.#chroma!);
    blendPlane(yuv, size * size + half * half, half, out, W * H + cw * (H >> 1), cw, this.#chroma!);
  }

  /** Sampling taps and blend weights of the face square's canvas pixels, for a render of side `size`. */
  #buildTaps(size: number): void {
    const { face, width: W, height: H } = this.layout;
    const k = size / face.side; // render pixels per canvas pixel
    const band = Math.max(2, FEATHER_SHARE * size);
    // step: canvas pixels per plane pixel (1 luma, 2 chroma); the face plane has size/step pixels a side.
    const axis = (origin: number, limit: number, step: number): { taps: Taps; start: number } => {
      const n0 = size / step;
      // Plane positions whose centre ((p + 0.5)·step on the canvas) falls inside the square.
      const start = Math.max(0, Math.floor(origin / step));
      const end = Math.min(Math.floor(limit / step), Math.ceil((origin + face.side) / step));
      const n = Math.max(0, end - start);
      const taps: Taps = { i0: new Int32Array(n), i1: new Int32Array(n), w: new Int32Array(n), alpha: new Int32Array(n) };
      for (let p = 0; p < n; p++) {
        const r = ((start + p + 0.5) * step - origin) * k; // render coordinate (continuous)
        const u = r / step - 0.5; // face-plane pixel coordinate
        const f = Math.floor(u);
        taps.i0[p] = Math.min(n0 - 1, Math.max(0, f));
        taps.i1[p] = Math.min(n0 - 1, Math.max(0, f + 1));
        taps.w[p] = Math.round((u - f) * 256);
        const d = Math.min(r, size - r); // distance to the square's edge, render pixels
        const t = Math.min(1, Math.max(0, d / band));
        taps.alpha[p] = Math.round(t * t * (3 - 2 * t) * 256);
      }
      return { taps, start };
    };
    const lx = axis(face.x, W, 1), ly = axis(face.y, H, 1);
    this.#luma = { cols: lx.taps, rows: ly.taps, x0: lx.start, y0: ly.start };
    const cx = axis(face.x, W, 2), cy = axis(face.y, H, 2);
    this.#chroma = { cols: cx.taps, rows: cy.taps, x0: cx.start, y0: cy.start };
    this.#faceYuv = new Uint8Array(i420Size(size, size));
    this.#tapsFor = size;
  }
}

interface PlaneTaps {
  cols: Taps;
  rows: Taps;
  /** The first canvas-plane column and row the square touches. */
  x0: number;
  y0: number;
}

/** Bilinear resample of one face plane (side `n`, at `src`) blended into one canvas plane (row stride `stride`, at `dst`). */
function blendPlane(face: Uint8Array, src: number, n: number, out: Uint8Array, dst: number, stride: number, t: PlaneTaps): void {
  const { cols, rows } = t;
  const nx = cols.alpha.length, ny = rows.alpha.length;
  for (let j = 0; j < ny; j++) {
    const ra = rows.alpha[j]!;
    if (ra === 0) continue;
    const r0 = src + rows.i0[j]! * n, r1 = src + rows.i1[j]! * n, wy = rows.w[j]!, wy0 = 256 - wy;
    const base = dst + (t.y0 + j) * stride + t.x0;
    for (let i = 0; i < nx; i++) {
      const ca = cols.alpha[i]!;
      const a = ca < ra ? ca : ra;
      if (a === 0) continue;
      const c0 = cols.i0[i]!, c1 = cols.i1[i]!, wx = cols.w[i]!, wx0 = 256 - wx;
      const v = ((face[r0 + c0]! * wx0 + face[r0 + c1]! * wx) * wy0 + (face[r1 + c0]! * wx0 + face[r1 + c1]! * wx) * wy + 32768) >> 16;
      const o = base + i;
      if (a === 256) out[o] = v;
      else {
        const bg = out[o]!;
        out[o] = bg + (((v - bg) * a + 128) >> 8);
      }
    }
  }
}

/** A compositor for `profile` over the target's picture; null for `face`, which needs none. */
export function compositorFor(picture: RawFrame, target: { crop: CropRect; size: number }, profile: OutputProfile, maxSide?: number): Compositor | null {
  if (profile === 'face') return null;
  return new Compositor(picture, layoutCanvas(profile, picture.width, picture.height, target.crop, target.size, maxSide));
}
