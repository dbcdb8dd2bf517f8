/**
 * The mouth over the warped face: what a warp of one picture cannot show.
 * - Lips closer than the target's own (lip zero, a press): a contact line.
 * - Opened past the target's own opening: the interior. Still targets get the
 *   synthesised one (mouth.ts: cavity, tongue, teeth lit like the face); clip
 *   targets get their mouth library (mouth-library.ts, the clip's own mouth),
 *   Laplacian-blended, and where the actor opens wider than the clip ever did
 *   (past the library's reach) the synthesised interior over it.
 *
 * One per renderer; enroll() replaces the target's state.
 */
import { PyramidBlender } from './blend.ts';
import { ContourFrame } from './contour.ts';
import type { EyeAppearance } from './eyes.ts';
import { smoothstep } from './geometry.ts';
import { LANDMARK_SLOTS } from './mesh.ts';
import { measureMouth, paintLipSeam, paintMouth, type MouthAppearance } from './mouth.ts';
import { LIP_IDS, MouthLibrary, type MouthLibraryData } from './mouth-library.ts';
import type { RgbaImage } from './raster.ts';
import { LIPS_LOWER_INNER, LIPS_UPPER_INNER } from './topology.ts';

interface MouthTarget {
  appearance: MouthAppearance;
  library: MouthLibrary | null;
  /** The target's own inner-lip gap at mid-mouth, pixels. */
  srcGap: number;
  /** The widest opening the library can show (libraryReach), pixels; Infinity without a library. */
  reach: number;
  iod: number;
}

export class MouthLayer {
  readonly #size: number;
  readonly #frame = new ContourFrame();
  readonly #exprFrame = new ContourFrame();
  readonly #lips = new Float64Array(LIP_IDS.length * 2);
  readonly #blender = new PyramidBlender(200 * 200, 3);
  #patch = new Float32Array(0);
  #mask = new Float32Array(0);
  #t: MouthTarget | null = null;

  constructor(size: number) {
    this.#size = size;
  }

  /** The target's mouth: its appearance, own opening, and library (clip targets). */
  enroll(image: RgbaImage, points: Float64Array, eyes: EyeAppearance[], iod: number, library: MouthLibraryData | null, candidates: number): void {
    this.#frame.set(points, LIPS_UPPER_INNER, LIPS_LOWER_INNER);
    const lib = library ? new MouthLibrary(library, candidates) : null;
    this.#t = {
      appearance: measureMouth(image, points, eyes), library: lib, srcGap: maxGap(this.#frame),
      reach: library && lib ? libraryReach(library, lib.candidates, new ContourFrame()) : Infinity, iod,
    };
  }

  get librarySize(): number {
    return this.#t?.library?.size ?? 0;
  }

  /**
   * Paints the mouth for the driven lips (`points`, posed; `expr`, pose-free) into `img`.
   * Returns the interior's strength, 0..1.
   */
  paint(img: RgbaImage, points: Float64Array, expr: Float64Array): number {
    const t = this.#t;
    if (!t) return 0;
    const mf = this.#frame;
    mf.set(points, LIPS_UPPER_INNER, LIPS_LOWER_INNER);
    const gap = maxGap(mf);
    const iod = t.iod;
    const fill = smoothstep(t.srcGap + 0.002 * iod, t.srcGap * 1.1 + 0.02 * iod, gap);
    // Lips closer than the target's own (lip zero, a press): a contact line over the squeezed opening.
    // Measured against at least 0.03 IOD, so a target whose lips are all but shut gets no line from noise.
    if (gap < t.srcGap) paintLipSeam(img, mf, (t.srcGap - gap) / Math.max(t.srcGap, 0.03 * iod), t.appearance);
    if (fill <= 0.01) return fill;
    if (!(t.library && this.#paintFromLibrary(img, t.library, points, expr, fill))) {
      paintMouth(img, mf, fill, t.appearance);
      return fill;
    }
    // Opened wider than the clip ever showed: the library's lips would stretch over an opening it has
    // no picture of, so the opening beyond its reach gets the synthesised interior (cavity, teeth, tongue).
    const ef = this.#exprFrame;
    ef.set(expr, LIPS_UPPER_INNER, LIPS_LOWER_INNER);
    const beyond = smoothstep(t.reach, t.reach * 1.25 + 0.02 * iod, maxGap(ef));
    if (beyond > 0.01) paintMouth(img, mf, fill * beyond, t.appearance);
    return fill;
  }

  #paintFromLibrary(img: RgbaImage, lib: MouthLibrary, pts: Float64Array, expr: Float64Array, fill: number): boolean {
    const lips = this.#lips;
    // Look up by the pose-free driven lips, then warp onto the posed ones.
    LIP_IDS.forEach((id, k) => {
      lips[k * 2] = expr[id * 3]!;
      lips[k * 2 + 1] = expr[id * 3 + 1]!;
    });
    const pick = lib.pick(lips);
    LIP_IDS.forEach((id, k) => {
      lips[k * 2] = pts[id * 3]!;
      lips[k * 2 + 1] = pts[id * 3 + 1]!;
    });
    const mf = this.#frame;
    const size = this.#size;
    const x0 = Math.max(0, mf.x0 - 6), y0 = Math.max(0, mf.y0 - 6);
    const x1 = Math.min(size - 1, mf.x1 + 6), y1 = Math.min(size - 1, mf.y1 + 6);
    const w = x1 - x0 + 1, h = y1 - y0 + 1;
    if (w < 4 || h < 4 || w * h > 200 * 200) return false;
    if (this.#patch.length < w * h * 3) {
      this.#patch = new Float32Array(w * h * 3);
      this.#mask = new Float32Array(w * h);
    }
    if (!lib.compose(pick, lips, x0, y0, w, h, this.#patch)) return false;
    // Mask: inside the driven inner lips, feathered by a pixel.
    const mask = this.#mask;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const px = x0 + x + 0.5, py = y0 + y + 0.5;
        const u = mf.u(px, py);
        let m = 0;
        if (u > 0 && u < mf.width) {
          const v = mf.v(px, py);
          const dIn = Math.min(v - mf.at(mf.upper, u), mf.at(mf.lower, u) - v);
          m = smoothstep(-1, 1.5, dIn) * smoothstep(0, 0.08, u / mf.width) * smoothstep(0, 0.08, 1 - u / mf.width);
        }
        mask[y * w + x] = m * fill;
      }
    }
    this.#blender.blend(img.data, size, size, x0, y0, w, h, this.#patch, mask);
    return true;
  }
}

/**
 * The widest inner-lip opening a library's weighted median of `candidates` entries can show: the
 * gap of its ceil(candidates / 2)-th widest entry (a median cannot open wider than half its
 * picks), pixels in the reference crop.
 */
export function libraryReach(data: MouthLibraryData, candidates: number, frame: ContourFrame): number {
  const pts = new Float64Array(LANDMARK_SLOTS * 3);
  const gaps: number[] = [];
  const stride = LIP_IDS.length * 2;
  for (let e = 0; e < data.count; e++) {
    LIP_IDS.forEach((id, k) => {
      pts[id * 3] = data.lips[e * stride + k * 2]!;
      pts[id * 3 + 1] = data.lips[e * stride + k * 2 + 1]!;
    });
    frame.set(pts, LIPS_UPPER_INNER, LIPS_LOWER_INNER);
    gaps.push(maxGap(frame));
  }
  gaps.sort((a, b) => b - a);
  return gaps[Math.min(gaps.length, Math.ceil(candidates / 2)) - 1] ?? 0;
}

/** Largest gap between the curves over the middle half, pixels. */
export function maxGap(f: ContourFrame): number {
  let g = 0;
  for (let u = 0.25; u <= 0.75; u += 0.125) g = Math.max(g, f.at(f.lower, u * f.width) - f.at(f.upper, u * f.width));
  return Math.max(0, g);
}
