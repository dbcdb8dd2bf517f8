/**
 * Mouth interior for still targets: when the driven lips open past what the
 * target shows, the inner-lip region is filled with a synthesised interior —
 * a shaded cavity, an upper teeth band with incisor separations, a shadowed
 * lower teeth band and a tongue when wide open — coloured from the target's
 * own lips and sclera (the photo's "white"), so it matches paintings, black
 * and white photos and colour casts alike. Edges are feathered.
 */
import { clamp, smoothstep } from './geometry.ts';
import type { RgbaImage } from './raster.ts';
import type { EyeAppearance } from './eyes.ts';
import { LIPS_LOWER_INNER, LIPS_LOWER_OUTER, LIPS_UPPER_INNER, LIPS_UPPER_OUTER } from './topology.ts';
import { ContourFrame } from './contour.ts';

export interface MouthAppearance {
  lip: Float32Array;
  teeth: Float32Array;
  cavity: Float32Array;
  tongue: Float32Array;
}

/** Colours for the synthesised interior, from the target's lips and eyes. */
export function measureMouth(img: RgbaImage, points: ArrayLike<number>, eyes: readonly EyeAppearance[]): MouthAppearance {
  // Lip colour: pixels between the outer and inner contours (upper and lower lip bands).
  const px: number[][] = [];
  for (const [outer, inner] of [[LIPS_UPPER_OUTER, LIPS_UPPER_INNER], [LIPS_LOWER_OUTER, LIPS_LOWER_INNER]] as const) {
    const f = new ContourFrame();
    f.set(points, outer, inner);
    for (let y = Math.max(0, f.y0); y <= Math.min(img.height - 1, f.y1); y++) {
      for (let x = Math.max(0, f.x0); x <= Math.min(img.width - 1, f.x1); x++) {
        const u = f.u(x + 0.5, y + 0.5), v = f.v(x + 0.5, y + 0.5);
        if (u < f.width * 0.2 || u > f.width * 0.8) continue;
        const a = f.at(f.upper, u), b = f.at(f.lower, u);
        const lo = Math.min(a, b), hi = Math.max(a, b);
        if (v > lo + 0.25 * (hi - lo) && v < hi - 0.25 * (hi - lo)) {
          const o = (y * img.width + x) * 4;
          px.push([img.data[o]!, img.data[o + 1]!, img.data[o + 2]!]);
        }
      }
    }
  }
  const lip = [0, 0, 0];
  for (const p of px) for (let c = 0; c < 3; c++) lip[c]! += p[c]! / Math.max(px.length, 1);
  if (px.length === 0) lip.splice(0, 3, 160, 90, 90);
  // Teeth: near-white in the photo's own terms — the cheeks' and forehead's colour, mostly
  // desaturated, a touch warm, a little brighter than that skin (luma capped at 225). Sclera is
  // unreliable for this (shadowed or painted dark in many portraits).
  const skin = skinColour(img, points);
  const Y = (c: number[]) => 0.299 * c[0]! + 0.587 * c[1]! + 0.114 * c[2]!;
  const ys = Math.max(Y(skin), 1);
  const grey = skin.map((c) => c + (ys - c) * 0.7);
  const k = Math.min(225, Math.max(ys * 1.15, 90)) / ys;
  const teeth = [grey[0]! * k, grey[1]! * k * 0.98, grey[2]! * k * 0.92].map((v) => Math.min(250, v));
  void eyes;
  const cavity = lip.map((c) => c * 0.2);
  const tongue = lip.map((c, i) => c * (i === 0 ? 0.75 : 0.55));
  return { lip: Float32Array.from(lip), teeth: Float32Array.from(teeth), cavity: Float32Array.from(cavity), tongue: Float32Array.from(tongue) };
}

/** Mean colour of small patches on both cheeks and the forehead (the brightest half of their pixels). */
function skinColour(img: RgbaImage, points: ArrayLike<number>): number[] {
  const px: number[][] = [];
  const iod = Math.hypot(points[33 * 3]! - points[263 * 3]!, points[33 * 3 + 1]! - points[263 * 3 + 1]!);
  const r = Math.max(1, Math.round(iod * 0.08));
  for (const id of [50, 280, 151]) {
    const cx = Math.round(points[id * 3]!), cy = Math.round(points[id * 3 + 1]!);
    for (let y = cy - r; y <= cy + r; y++) {
      for (let x = cx - r; x <= cx + r; x++) {
        if (x < 0 || y < 0 || x >= img.width || y >= img.height) continue;
        const o = (y * img.width + x) * 4;
        px.push([img.data[o]!, img.data[o + 1]!, img.data[o + 2]!]);
      }
    }
  }
  if (px.length === 0) return [200, 170, 150];
  px.sort((a, b) => a[0]! + a[1]! + a[2]! - (b[0]! + b[1]! + b[2]!));
  const top = px.slice(px.length >> 1);
  return [0, 1, 2].map((c) => top.reduce((s, p) => s + p[c]!, 0) / top.length);
}

const INCISORS = [0.5, 0.4, 0.6, 0.31, 0.69, 0.23, 0.77];

/**
 * Paints the synthesised interior between the driven inner lips.
 * strength 0..1 scales the whole layer (how far the mouth opens past the target's own opening).
 */
export function paintMouth(out: RgbaImage, f: ContourFrame, strength: number, app: MouthAppearance): void {
  if (strength < 0.01) return;
  const data = out.data;
  const W = f.width;
  const sep = Math.max(0.35, W * 0.012);
  scanMouth(out, f, (o, u, v, vu, vl) => {
    const h = vl - vu;
    if (h < 0.6) return;
    const dIn = Math.min(v - vu, vl - v);
    if (dIn <= -0.5) return;
    const s = u / W; // 0..1 across the mouth
    const ty = clamp((v - vu) / h, 0, 1);
    const lateral = Math.abs(2 * s - 1);
    // Cavity: darkest in the middle depth and toward the corners.
    const cav = 1 - 0.35 * Math.sin(Math.PI * ty) - 0.3 * lateral * lateral;
    let r = app.cavity[0]! * cav, g = app.cavity[1]! * cav, b = app.cavity[2]! * cav;
    // Tongue, when the mouth is well open.
    const tw = smoothstep(0.55, 0.95, ty) * smoothstep(0.15 * W, 0.35 * W, h) * (1 - lateral * lateral) * 0.8;
    r += (app.tongue[0]! * (0.7 + 0.3 * ty) - r) * tw;
    g += (app.tongue[1]! * (0.7 + 0.3 * ty) - g) * tw;
    b += (app.tongue[2]! * (0.7 + 0.3 * ty) - b) * tw;
    // Upper teeth under the upper lip, shaded at the top, darker toward the corners.
    // Teeth fill most of a shallow opening (a smile); the dark cavity shows only when it is deep.
    // (Capping them lower, to leave a dark line between the rows, raised the offline smile pairs
    // but cost the live loop's mouth correlation about 0.02 on d9, so it was reverted.)
    const th = Math.min(h * 0.7, W * 0.19);
    const dv = v - vu;
    const teethA = (1 - smoothstep(th - 0.6, th + 0.6, dv)) * (1 - smoothstep(0.7, 0.98, lateral));
    if (teethA > 0) {
      let shade = (0.8 + 0.2 * smoothstep(0, th * 0.6, dv)) * (1 - 0.45 * lateral * lateral);
      for (const c of INCISORS) {
        const d = Math.abs(s - c) * W;
        if (d < sep * 1.5) shade *= 1 - 0.15 * (1 - smoothstep(0, sep * 1.5, d));
      }
      r += (app.teeth[0]! * shade - r) * teethA;
      g += (app.teeth[1]! * shade - g) * teethA;
      b += (app.teeth[2]! * shade - b) * teethA;
    }
    // Lower teeth, mostly in shadow.
    const lh = Math.min(h * 0.3, W * 0.09);
    const lowA = (1 - smoothstep(lh - 0.6, lh + 0.6, vl - v)) * (1 - smoothstep(0.5, 0.85, lateral)) * 0.85;
    if (lowA > 0) {
      const shade = 0.72 * (1 - 0.4 * lateral);
      r += (app.teeth[0]! * shade - r) * lowA;
      g += (app.teeth[1]! * shade - g) * lowA;
      b += (app.teeth[2]! * shade - b) * lowA;
    }
    // Contact shadow along both lips, then the feathered edge.
    const occl = 0.75 + 0.25 * smoothstep(0, 1.5, dIn);
    const a = strength * smoothstep(-0.5, 0.9, dIn) * smoothstep(0, 0.06, s) * smoothstep(0, 0.06, 1 - s);
    data[o] = data[o]! + (r * occl - data[o]!) * a;
    data[o + 1] = data[o + 1]! + (g * occl - data[o + 1]!) * a;
    data[o + 2] = data[o + 2]! + (b * occl - data[o + 2]!) * a;
  });
}

/**
 * Visits each pixel of the mouth frame's box (clipped to the image) that lies
 * between the corners: byte offset o, local u and v of the pixel centre, and
 * the upper and lower curves at that u.
 */
function scanMouth(out: RgbaImage, f: ContourFrame, visit: (o: number, u: number, v: number, vu: number, vl: number) => void): void {
  const { width, height } = out;
  const x0 = Math.max(0, f.x0), x1 = Math.min(width - 1, f.x1);
  const y0 = Math.max(0, f.y0), y1 = Math.min(height - 1, f.y1);
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const u = f.u(x + 0.5, y + 0.5);
      if (u <= 0 || u >= f.width) continue;
      visit((y * width + x) * 4, u, f.v(x + 0.5, y + 0.5), f.at(f.upper, u), f.at(f.lower, u));
    }
  }
}

/**
 * Where the driven lips are closer than the target's own (lip zero, or a lip
 * press), the strip between them squeezes the target's painted opening (teeth
 * included) into a sliver that reads as a bright parting. This paints the
 * contact line over it instead: the lips' shadowed colour along the middle of
 * the driven gap, a pixel or so wide. squeeze 0..1 is how much of the target's
 * own gap is closed.
 */
export function paintLipSeam(out: RgbaImage, f: ContourFrame, squeeze: number, app: MouthAppearance): void {
  if (squeeze < 0.02) return;
  const data = out.data;
  const r = app.lip[0]! * SEAM_SHADE, g = app.lip[1]! * SEAM_SHADE, b = app.lip[2]! * SEAM_SHADE;
  scanMouth(out, f, (o, u, v, vu, vl) => {
    const half = Math.max(0, vl - vu) / 2 + 0.5;
    const d = Math.abs(v - (vu + vl) / 2);
    if (d >= half + 0.6) return;
    const s = u / f.width;
    const a = squeeze * (1 - smoothstep(half - 0.6, half + 0.6, d)) * smoothstep(0, 0.1, s) * smoothstep(0, 0.1, 1 - s);
    data[o] = data[o]! + (r - data[o]!) * a;
    data[o + 1] = data[o + 1]! + (g - data[o + 1]!) * a;
    data[o + 2] = data[o + 2]! + (b - data[o + 2]!) * a;
  });
}

/** The contact line's colour: the lips' own, this much darker. */
const SEAM_SHADE = 0.45;
