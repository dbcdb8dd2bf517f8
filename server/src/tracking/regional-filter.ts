/**
 * Regions of the face that the landmark filter should not slow down. The attention model refines
 * the lips and each eye on their own, and they move differently from the rest: lips open and shut
 * within a frame or two in speech and lids blink in about 100 ms, while the rest of the face
 * (brows, cheeks, jaw line, nose) moves slowly and is where the tracker's noise shows as shake.
 * The per-landmark One Euro filter that keeps the head steady lags the lips by about a frame.
 *
 * In the tracker's 'regional' mode the whole face is filtered as before (so the head's pose and
 * every other point are unchanged), and then the lips and lids are taken from the unfiltered
 * landmarks instead, in pose-free (canonical) space: the raw frame's shape, put back with the
 * filtered pose. Each region has its own light filter (or none).
 */
import { LIPS_INDICES, LEFT_EYE_INDICES, RIGHT_EYE_INDICES } from './attention-refinement.ts';
import { LANDMARK_COUNT } from '../../../shared/tracking.ts';
import { DEFAULT_ONE_EURO, OneEuroVector, type OneEuroParams } from './one-euro.ts';

export type RegionName = 'lips' | 'eyes';

/** Per region: One Euro parameters (over the defaults), or false to take the region unfiltered. */
export type RegionFilterParams = Record<RegionName, Partial<OneEuroParams> | false>;

export const DEFAULT_REGION_FILTERS: Readonly<RegionFilterParams> = Object.freeze({
  lips: false,
  eyes: false,
});

/** Eye contour points at the head of each eye's refinement list; the first and ninth are the corners. */
const EYE_CONTOUR = 16;
const EYE_CORNERS = [0, 8];

/**
 * Landmark indices of each region for a mesh of `count` points (468, or 478 with irises): the
 * lips are the attention model's lip region (both contours and the skin rings around them); the
 * eyes are the lid margins and the irises (not the corners, which hold the head still, nor the
 * brows and cheeks the eye refinement also covers).
 */
export function regionIndices(count: number): Record<RegionName, number[]> {
  const eyes = new Set<number>();
  for (const list of [LEFT_EYE_INDICES, RIGHT_EYE_INDICES]) {
    for (let k = 0; k < EYE_CONTOUR; k++) if (!EYE_CORNERS.includes(k)) eyes.add(list[k]!);
  }
  for (let i = LANDMARK_COUNT; i < count; i++) eyes.add(i);
  return { lips: [...LIPS_INDICES].filter((i) => i < count).sort((a, b) => a - b), eyes: [...eyes].sort((a, b) => a - b) };
}

interface Region {
  points: Int32Array;
  buf: Float32Array;
  filter: OneEuroVector | null;
}

export class RegionPass {
  readonly #regions: Region[] = [];

  constructor(count: number, params: Partial<RegionFilterParams> = {}) {
    const idx = regionIndices(count);
    for (const name of ['lips', 'eyes'] as const) {
      const p = name in params ? params[name] : DEFAULT_REGION_FILTERS[name];
      const points = Int32Array.from(idx[name]);
      const filter = p === false || p === undefined ? null : new OneEuroVector(points.length * 3, { ...DEFAULT_ONE_EURO, ...p });
      this.#regions.push({ points, buf: new Float32Array(points.length * 3), filter });
    }
  }

  reset(): void {
    for (const r of this.#regions) r.filter?.reset();
  }

  /**
   * Copies the regions' points from `raw` into `into` (both canonical-space x y z per point),
   * through each region's filter; `scale` divides speeds as in OneEuroVector.
   */
  apply(raw: Float32Array, into: Float32Array, timeMs: number, scale: number): void {
    for (const { points, buf, filter } of this.#regions) {
      for (let k = 0; k < points.length; k++) {
        const i = points[k]! * 3;
        buf[k * 3] = raw[i]!;
        buf[k * 3 + 1] = raw[i + 1]!;
        buf[k * 3 + 2] = raw[i + 2]!;
      }
      filter?.apply(buf, timeMs, scale);
      for (let k = 0; k < points.length; k++) {
        const i = points[k]! * 3;
        into[i] = buf[k * 3]!;
        into[i + 1] = buf[k * 3 + 1]!;
        into[i + 2] = buf[k * 3 + 2]!;
      }
    }
  }
}
