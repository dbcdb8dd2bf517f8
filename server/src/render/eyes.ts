/**
 * Eyelid synthesis. The retargeter closes a lid geometrically (the upper-lid
 * skin and its crease slide down over the eyeball, the lower lid rises a
 * little); this layer finishes it in the target's own colours: a lid surface
 * over the band the margin swept, shaded darker toward the margin, and a lash
 * line along the driven margin. At full closure the margin meets the lower lid
 * in a gentle downward arc, which is what a closed eye looks like.
 */
import { BINS, ContourFrame } from './contour.ts';
import type { RgbaImage } from './raster.ts';
import { clamp, smoothstep } from './geometry.ts';
import type { EyeTopology } from './topology.ts';

const PROFILE = 12;

/** Colours of one target eye, measured once at enrollment. */
export interface EyeAppearance {
  /** Lid-skin colour along the eye (PROFILE bins, RGB). */
  lid: Float32Array;
  /** Lash / lid-margin colour (RGB). */
  lash: Float32Array;
  /** Sclera colour (RGB); also the reference white for synthesised teeth. */
  sclera: Float32Array;
  /** The target's open lid gap along the eye (PROFILE bins), in eye widths. */
  gap: Float32Array;
}

function luma(d: Uint8Array, o: number): number {
  return 0.299 * d[o]! + 0.587 * d[o + 1]! + 0.114 * d[o + 2]!;
}

/** Measures lid, lash and sclera colours of one eye of the enrolled target image. */
export function measureEye(img: RgbaImage, points: ArrayLike<number>, eye: EyeTopology): EyeAppearance {
  const f = new ContourFrame();
  f.set(points, eye.upper, eye.lower);
  const lid = new Float32Array(PROFILE * 3);
  const bins: number[][][] = Array.from({ length: PROFILE }, () => []);
  const lashPx: number[][] = [];
  const scleraPx: number[][] = [];
  const gapMid = Math.max(1, f.at(f.lower, f.width / 2) - f.at(f.upper, f.width / 2));
  const band = Math.max(2, gapMid * 0.9);
  const { data, width, height } = img;
  const x0 = Math.max(0, Math.floor(f.x0 - band * 2)), x1 = Math.min(width - 1, Math.ceil(f.x1 + band * 2));
  const y0 = Math.max(0, Math.floor(f.y0 - band * 2)), y1 = Math.min(height - 1, Math.ceil(f.y1 + band));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const u = f.u(x + 0.5, y + 0.5), v = f.v(x + 0.5, y + 0.5);
      if (u < f.width * 0.08 || u > f.width * 0.92) continue;
      const vu = f.at(f.upper, u), vl = f.at(f.lower, u);
      const o = (y * width + x) * 4;
      const px = [data[o]!, data[o + 1]!, data[o + 2]!];
      if (v < vu - band * 0.35 && v > vu - band * 1.4) bins[Math.min(PROFILE - 1, Math.floor((u / f.width) * PROFILE))]!.push(px);
      if (Math.abs(v - vu) < Math.max(1, band * 0.35)) lashPx.push(px);
      if (v > vu + 0.5 && v < vl - 0.5) scleraPx.push(px);
    }
  }
  // Lid skin: the brighter half of each bin (lashes and crease shadow are dark).
  const all: number[][] = [];
  for (const b of bins) all.push(...b);
  const fallback = robustMean(all, 0.4, 0.95) ?? [150, 120, 110];
  for (let b = 0; b < PROFILE; b++) {
    const m = robustMean(bins[b]!, 0.4, 0.95) ?? fallback;
    lid.set(m, b * 3);
  }
  const lash = robustMean(lashPx, 0, 0.2) ?? fallback.map((c) => c * 0.35);
  const sclera = robustMean(scleraPx, 0.8, 0.97) ?? [220, 215, 210];
  const gap = new Float32Array(PROFILE);
  for (let b = 0; b < PROFILE; b++) {
    const u = ((b + 0.5) / PROFILE) * f.width;
    gap[b] = Math.max(0, f.at(f.lower, u) - f.at(f.upper, u)) / f.width;
  }
  return { lid, lash: Float32Array.from(lash), sclera: Float32Array.from(sclera), gap };
}

/** Mean colour of the pixels whose luma rank lies in [lo, hi) (fractions). */
function robustMean(px: number[][], lo: number, hi: number): number[] | null {
  if (px.length === 0) return null;
  const sorted = px.slice().sort((a, b) => luma(Uint8Array.from(a), 0) - luma(Uint8Array.from(b), 0));
  const a = Math.floor(lo * sorted.length), b = Math.max(a + 1, Math.ceil(hi * sorted.length));
  const m = [0, 0, 0];
  let n = 0;
  for (let i = a; i < Math.min(b, sorted.length); i++) {
    for (let c = 0; c < 3; c++) m[c]! += sorted[i]![c]!;
    n++;
  }
  return m.map((v) => v / n);
}

/**
 * Finishes closing lids on `out` after the warp has slid the upper-lid skin
 * down. frame: the eye's ContourFrame set from the driven (closing) lids;
 * closure 0..1; travel: how far the margin has moved, in open-gap fractions.
 * Over the band the margin swept (plus a little above the original lash line)
 * it paints a lid surface: the skin just above, slid down, blended with the
 * lid's measured colour and shaded darker toward the margin, which hides
 * whatever of the eye lay above the tracked lid line. Then a lash line along
 * the margin in the target's own lash colour, and lid skin over what is left
 * of the squashed eyeball as the lids meet.
 */
export function paintLid(out: RgbaImage, frame: ContourFrame, closure: number, travel: number, app: EyeAppearance): void {
  if (closure < 0.02) return;
  const { data, width, height } = out;
  const f = frame;
  const fade = smoothstep(0.02, 0.25, closure);
  const lashW = Math.max(0.9, f.width * 0.045);
  const gp = app.gap;
  let gapMax = 0;
  for (let b = 0; b < PROFILE; b++) gapMax = Math.max(gapMax, gp[b]!);
  gapMax *= f.width;
  const cover = Math.max(1.2, gapMax * 0.3);
  const reach = travel * gapMax + cover;
  const x0 = Math.max(0, f.x0 - 2), x1 = Math.min(width - 1, f.x1 + 2);
  const y0 = Math.max(0, Math.floor(f.y0 - reach - 2)), y1 = Math.min(height - 1, f.y1 + 2);
  const lid = app.lid;
  const mid = (PROFILE >> 1) * 3;
  const lashR = app.lash[0]! * 0.8 + lid[mid]! * 0.2 * 0.5, lashG = app.lash[1]! * 0.8 + lid[mid + 1]! * 0.2 * 0.5, lashB = app.lash[2]! * 0.8 + lid[mid + 2]! * 0.2 * 0.5;
  const meet = smoothstep(0.5, 0.95, closure);
  const upX = f.ay, upY = -f.ax;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const px = x + 0.5, py = y + 0.5;
      const u = f.u(px, py);
      if (u < -1 || u > f.width + 1) continue;
      const uc = clamp(u, 0, f.width);
      const b = Math.min(PROFILE - 1, Math.max(0, Math.floor((uc / f.width) * PROFILE)));
      const vu = f.at(f.upper, uc), vl = f.at(f.lower, uc);
      const v = f.v(px, py);
      const top0 = vu - travel * gp[b]! * f.width - cover;
      if (v < top0 - 1 || v > Math.max(vu, vl) + lashW * 1.5) continue;
      const edge = smoothstep(-1, f.width * 0.1, uc) * smoothstep(-1, f.width * 0.1, f.width - uc);
      const o = (y * width + x) * 4;
      let r = data[o]!, g = data[o + 1]!, bl = data[o + 2]!;
      // Lid surface: soft top edge, full down to the margin, and over the eyeball left between meeting lids.
      const lidH = Math.max(vu - top0, 0.5);
      const t = clamp((v - top0) / lidH, 0, 1);
      let a = smoothstep(top0 - 1, top0 + 1.5, v) * fade * edge;
      if (v > vu + 0.5) a *= v < vl ? meet : 1 - smoothstep(vu + 0.5, vu + 1.5, v);
      if (a > 0) {
        const shade = 1.02 - 0.2 * t * t;
        const sx = Math.min(width - 1, Math.max(0, Math.round(px + upX * lidH - 0.5)));
        const sy = Math.min(height - 1, Math.max(0, Math.round(py + upY * lidH - 0.5)));
        const so = (sy * width + sx) * 4;
        const lr = (lid[b * 3]! + data[so]!) * 0.5, lg = (lid[b * 3 + 1]! + data[so + 1]!) * 0.5, lb = (lid[b * 3 + 2]! + data[so + 2]!) * 0.5;
        r += (lr * shade - r) * a;
        g += (lg * shade - g) * a;
        bl += (lb * shade - bl) * a;
      }
      // Lash line along the driven margin, hanging a little below it, heavier toward the outer corner.
      const dl = Math.abs(v - vu - lashW * 0.3);
      const wl = lashW * (1.15 - 0.35 * (uc / f.width));
      a = 0.75 * (1 - smoothstep(wl * 0.3, wl, dl)) * fade * smoothstep(0, f.width * 0.06, uc) * smoothstep(0, f.width * 0.04, f.width - uc);
      if (a > 0) {
        r += (lashR - r) * a;
        g += (lashG - g) * a;
        bl += (lashB - bl) * a;
      }
      data[o] = r;
      data[o + 1] = g;
      data[o + 2] = bl;
    }
  }
}

export const LID_PROFILE_BINS = PROFILE;
export { BINS };
