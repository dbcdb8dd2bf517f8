/**
 * Mouth library for clip targets (after Synthesizing Obama): every enrolled
 * frame's mouth region, aligned to the reference crop, indexed by lip shape.
 * At render time the n frames with the nearest lip shapes are warped onto the
 * driven lips and combined by a per-pixel weighted median, which keeps teeth
 * edges sharp where a mean would ghost. Choice is sticky across frames.
 */
import { warpTriangle, type RgbaImage } from './raster.ts';
import { LIPS_LOWER_INNER, LIPS_LOWER_OUTER, LIPS_UPPER_INNER, LIPS_UPPER_OUTER } from './topology.ts';

/** The 40 lip landmarks in library order: upper outer, lower outer (no corners), upper inner, lower inner (no corners). */
export const LIP_IDS: readonly number[] = [
  ...LIPS_UPPER_OUTER, ...LIPS_LOWER_OUTER.slice(1, -1), ...LIPS_UPPER_INNER, ...LIPS_LOWER_INNER.slice(1, -1),
];
const slot = new Map(LIP_IDS.map((id, k) => [id, k]));
const s = (id: number): number => slot.get(id)!;

/** Triangles over LIP_IDS slots: upper lip, mouth opening, lower lip (quad strips, never folding). */
export const LIP_TRIS: Uint16Array = (() => {
  const t: number[] = [];
  const strip = (a: readonly number[], b: readonly number[]) => {
    for (let k = 0; k + 1 < a.length; k++) {
      const p = s(a[k]!), q = s(a[k + 1]!), r = s(b[k + 1]!), u = s(b[k]!);
      if (p !== q && q !== r && r !== p) t.push(p, q, r);
      if (p !== r && r !== u && u !== p) t.push(p, r, u);
    }
  };
  // Outer and inner contours have the same length (11): pair them index by index.
  strip(LIPS_UPPER_OUTER, LIPS_UPPER_INNER);
  strip(LIPS_UPPER_INNER, LIPS_LOWER_INNER);
  strip(LIPS_LOWER_INNER, LIPS_LOWER_OUTER);
  return Uint16Array.from(t);
})();

export const DESCRIPTOR_LEN = LIP_IDS.length * 2;

export interface MouthLibraryData {
  /** ROI in output pixels that every texture covers. */
  roiX: number;
  roiY: number;
  roiW: number;
  roiH: number;
  count: number;
  /** count × roiW × roiH × 4. */
  textures: Uint8Array;
  /** count × 40 × 2 lip points in ROI pixels. */
  lips: Float32Array;
  /** Inter-ocular distance of the reference, pixels (descriptor unit). */
  iod: number;
}

/** Lip-shape descriptor of 40 ROI-space points (inner lips weighted double). */
export function describe(lips: ArrayLike<number>, iod: number, out: Float32Array, o = 0): void {
  for (let k = 0; k < LIP_IDS.length; k++) {
    const w = k >= 20 ? 2 / iod : 1 / iod;
    out[o + k * 2] = lips[k * 2]! * w;
    out[o + k * 2 + 1] = lips[k * 2 + 1]! * w;
  }
}

export interface LibraryPick {
  ids: Int32Array;
  weights: Float64Array;
  n: number;
}

export class MouthLibrary {
  readonly #data: MouthLibraryData;
  readonly #desc: Float32Array;
  readonly #query = new Float32Array(DESCRIPTOR_LEN);
  readonly #dist: Float64Array;
  readonly #n: number;
  readonly #pick: LibraryPick;
  readonly #prev: Float64Array;
  readonly #layers: Uint8Array;
  #layerW = 0;
  #layerH = 0;
  readonly #views: RgbaImage[];
  readonly #dstPts = new Float32Array(LIP_IDS.length * 2);

  constructor(data: MouthLibraryData, n = 5, maxLayerPixels = 160 * 160) {
    this.#data = data;
    this.#n = Math.min(n, data.count);
    this.#desc = new Float32Array(data.count * DESCRIPTOR_LEN);
    for (let i = 0; i < data.count; i++) describe(data.lips.subarray(i * 80, i * 80 + 80), data.iod, this.#desc, i * DESCRIPTOR_LEN);
    this.#dist = new Float64Array(data.count);
    this.#prev = new Float64Array(data.count);
    this.#pick = { ids: new Int32Array(this.#n), weights: new Float64Array(this.#n), n: this.#n };
    this.#layers = new Uint8Array(this.#n * maxLayerPixels * 4);
    const px = data.roiW * data.roiH * 4;
    this.#views = Array.from({ length: data.count }, (_, i) => ({ width: data.roiW, height: data.roiH, data: data.textures.subarray(i * px, (i + 1) * px) }));
  }

  get size(): number {
    return this.#data.count;
  }

  /** How many entries each frame's weighted median combines. */
  get candidates(): number {
    return this.#n;
  }

  /**
   * Picks the n entries nearest to the driven lip shape (40 points in output
   * pixels, pose-normalised), preferring last frame's picks (hysteresis), with
   * weights smoothed over time.
   */
  pick(lipsOut: ArrayLike<number>): LibraryPick {
    const d = this.#data, q = this.#query;
    const tmp = this.#dstPts;
    for (let k = 0; k < LIP_IDS.length; k++) {
      tmp[k * 2] = lipsOut[k * 2]! - d.roiX;
      tmp[k * 2 + 1] = lipsOut[k * 2 + 1]! - d.roiY;
    }
    describe(tmp, d.iod, q);
    const dist = this.#dist, desc = this.#desc;
    for (let i = 0; i < d.count; i++) {
      let ss = 0;
      const o = i * DESCRIPTOR_LEN;
      for (let k = 0; k < DESCRIPTOR_LEN; k++) {
        const e = desc[o + k]! - q[k]!;
        ss += e * e;
      }
      // Sticky choice: last frame's picks look 15% nearer.
      dist[i] = Math.sqrt(ss) * (this.#prev[i]! > 0 ? 0.85 : 1);
    }
    const pick = this.#pick;
    pick.ids.fill(-1);
    for (let i = 0; i < d.count; i++) {
      let j = this.#n - 1;
      if (pick.ids[j]! >= 0 && dist[pick.ids[j]!]! <= dist[i]!) continue;
      while (j > 0 && (pick.ids[j - 1]! < 0 || dist[pick.ids[j - 1]!]! > dist[i]!)) {
        pick.ids[j] = pick.ids[j - 1]!;
        j--;
      }
      pick.ids[j] = i;
    }
    const sigma = Math.max(dist[pick.ids[this.#n - 1]!]!, 1e-6);
    let sum = 0;
    for (let k = 0; k < this.#n; k++) {
      const id = pick.ids[k]!;
      const w = Math.exp(-((dist[id]! / sigma) ** 2)) * 0.6 + this.#prev[id]! * 0.4;
      pick.weights[k] = w;
      sum += w;
    }
    this.#prev.fill(0);
    for (let k = 0; k < this.#n; k++) {
      pick.weights[k]! /= sum;
      this.#prev[pick.ids[k]!] = pick.weights[k]!;
    }
    return pick;
  }

  /**
   * Warps the picked entries onto the driven lips (output pixels) into a
   * w×h patch at (x0, y0) and writes their weighted median (RGB float).
   */
  compose(pick: LibraryPick, lipsOut: ArrayLike<number>, x0: number, y0: number, w: number, h: number, patch: Float32Array): boolean {
    if (w * h * 4 * this.#n > this.#layers.length) return false;
    this.#layerW = w;
    this.#layerH = h;
    const dst = this.#dstPts;
    for (let k = 0; k < LIP_IDS.length; k++) {
      dst[k * 2] = lipsOut[k * 2]! - x0;
      dst[k * 2 + 1] = lipsOut[k * 2 + 1]! - y0;
    }
    const px = w * h * 4;
    for (let j = 0; j < pick.n; j++) {
      const id = pick.ids[j]!;
      const layer: RgbaImage = { width: w, height: h, data: this.#layers.subarray(j * px, (j + 1) * px) };
      layer.data.fill(0);
      const src = this.#views[id]!;
      const lips = this.#data.lips.subarray(id * 80, id * 80 + 80);
      for (let t = 0; t < LIP_TRIS.length; t += 3) warpTriangle(src, lips, layer, dst, LIP_TRIS[t]!, LIP_TRIS[t + 1]!, LIP_TRIS[t + 2]!);
    }
    weightedMedian(this.#layers, pick, w * h, patch);
    return true;
  }

  get layerSize(): [number, number] {
    return [this.#layerW, this.#layerH];
  }
}

const vals = new Float64Array(16);
const wts = new Float64Array(16);

/** Per pixel and channel: the value where the cumulative weight crosses one half. */
function weightedMedian(layers: Uint8Array, pick: LibraryPick, n: number, out: Float32Array): void {
  const m = pick.n;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      for (let j = 0; j < m; j++) {
        const v = layers[(j * n + i) * 4 + c]!;
        const w = pick.weights[j]!;
        let k = j;
        while (k > 0 && vals[k - 1]! > v) {
          vals[k] = vals[k - 1]!;
          wts[k] = wts[k - 1]!;
          k--;
        }
        vals[k] = v;
        wts[k] = w;
      }
      let acc = 0, r = vals[m - 1]!;
      for (let j = 0; j < m; j++) {
        acc += wts[j]!;
        if (acc >= 0.5) {
          r = vals[j]!;
          break;
        }
      }
      out[i * 3 + c] = r;
    }
  }
}
