/**
 * Output profiles: where the rendered face square goes in what the viewer gets.
 *
 * - `face`: the square itself (size×size), as the renderer draws it.
 * - `frame`: the target's whole picture (its reference frame) at its own size
 *   (even-floored for I420; capped by maxSide when one is given), the face
 *   pasted back where it was cut from.
 * - `720p`, `1080p`, `720x1280`: fixed canvases for calls, framed around the
 *   face like a webcam: the face crop takes about FACE_SHARE of the canvas
 *   height when the picture is large enough, the view is shifted to stay in
 *   the picture, and where the picture cannot fill the canvas (wrong aspect,
 *   or it would need more than MAX_UPSCALE) it is shown whole with black bars.
 *
 * The layout is pure arithmetic over the picture size and the face crop, so
 * the live pipeline, the offline CLI and the virtual camera agree on it.
 */
import type { CropRect } from './image-ops.ts';

import type { OutputProfile } from '../../../shared/protocol.ts';

/** Canvas sizes of the fixed profiles. */
export const CANVAS_SIZES: Record<'720p' | '1080p' | '720x1280', readonly [number, number]> = {
  '720p': [1280, 720],
  '1080p': [1920, 1080],
  '720x1280': [720, 1280],
};

/** The face crop's share of the canvas height in the fixed profiles (head and shoulders framing). */
export const FACE_SHARE = 0.7;
/** The crop's share of the height a canvas of this aspect frames: FACE_SHARE, or 90 % of the width on a narrow one. */
export function faceShare(aspect: number): number {
  return Math.min(FACE_SHARE, 0.9 * aspect);
}

/** The picture is never enlarged more than this; beyond it, it is letterboxed instead. */
export const MAX_UPSCALE = 2;

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface CanvasLayout {
  profile: OutputProfile;
  /** Canvas size in pixels (even). */
  width: number;
  height: number;
  /** The part of the picture shown, in picture pixels (may reach outside the picture: bars). */
  view: Rect;
  /** Canvas pixels per picture pixel. */
  scale: number;
  /** Where the picture's own pixels land on the canvas (the rest is bars), canvas pixels, integers. */
  content: Rect;
  /** The face square on the canvas (the crop's image), canvas pixels; may reach past the canvas edge. */
  face: { x: number; y: number; side: number };
}

const even = (v: number): number => Math.max(2, Math.floor(v / 2) * 2);

/**
 * Lays out a profile for a picture of srcW×srcH whose face crop is `crop` (picture pixels).
 * `faceSize` is the render size, used by `face`; `maxSide` caps `frame` (longest side).
 */
export function layoutCanvas(profile: OutputProfile, srcW: number, srcH: number, crop: CropRect, faceSize: number, maxSide = Infinity): CanvasLayout {
  if (profile === 'face') {
    const s = faceSize / crop.side;
    return {
      profile, width: faceSize, height: faceSize, view: { x: crop.x, y: crop.y, w: crop.side, h: crop.side }, scale: s,
      content: clipRect({ x: -crop.x * s, y: -crop.y * s, w: srcW * s, h: srcH * s }, faceSize, faceSize),
      face: { x: 0, y: 0, side: faceSize },
    };
  }
  if (profile === 'frame') {
    const s = Math.min(1, maxSide / Math.max(srcW, srcH));
    const width = even(srcW * s), height = even(srcH * s);
    // Even-flooring drops at most one picture pixel at the right and bottom edges.
    const scale = s === 1 ? 1 : width / srcW;
    return finish(profile, width, height, { x: 0, y: 0, w: width / scale, h: height / scale }, scale, srcW, srcH, crop);
  }
  const [width, height] = CANVAS_SIZES[profile];
  const aspect = width / height;
  // Desired view: the crop takes FACE_SHARE of the height (on a portrait canvas, 90 % of the width at most).
  let h = crop.side / faceShare(aspect);
  let w = h * aspect;
  // Keep it inside the picture where the picture allows...
  const fit = Math.min(1, srcW / w, srcH / h);
  w *= fit;
  h *= fit;
  // ...but never cut into the face crop, and never enlarge the picture beyond MAX_UPSCALE.
  const minH = Math.max(crop.side, crop.side / aspect, height / MAX_UPSCALE);
  if (h < minH) {
    h = minH;
    w = h * aspect;
  }
  // Face centred (a little above centre); shifted to stay in the picture, never off the crop;
  // a picture smaller than the view is centred in it (the crop is inside the picture, so inside the view).
  const place = (c: number, len: number, limit: number, lo: number, side: number): number => {
    if (len > limit) return (limit - len) / 2;
    const inPicture = Math.min(Math.max(c - len / 2, 0), limit - len);
    return Math.min(Math.max(inPicture, lo + side - len), lo);
  };
  const view = { x: place(crop.x + crop.side / 2, w, srcW, crop.x, crop.side), y: place(crop.y + crop.side / 2 - 0.05 * h, h, srcH, crop.y, crop.side), w, h };
  return finish(profile, width, height, view, height / h, srcW, srcH, crop);
}

function finish(profile: OutputProfile, width: number, height: number, view: Rect, scale: number, srcW: number, srcH: number, crop: CropRect): CanvasLayout {
  const content = clipRect({ x: -view.x * scale, y: -view.y * scale, w: srcW * scale, h: srcH * scale }, width, height);
  return { profile, width, height, view, scale, content, face: { x: (crop.x - view.x) * scale, y: (crop.y - view.y) * scale, side: crop.side * scale } };
}

/** A rect clipped to [0,w)×[0,h) and rounded inward to whole pixels. */
function clipRect(r: Rect, w: number, h: number): Rect {
  const x0 = Math.max(0, Math.ceil(r.x - 1e-6)), y0 = Math.max(0, Math.ceil(r.y - 1e-6));
  const x1 = Math.min(w, Math.floor(r.x + r.w + 1e-6)), y1 = Math.min(h, Math.floor(r.y + r.h + 1e-6));
  return { x: x0, y: y0, w: Math.max(0, x1 - x0), h: Math.max(0, y1 - y0) };
}
