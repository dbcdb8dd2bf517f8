/**
 * From the landmarks the model saw to the ones the tracker reports: the filter modes, and the
 * head pose fitted to the result. Every mode writes the smoothed landmarks (frame pixels) and
 * their canonical, pose-free shape, and returns the pose fit.
 * - 'regional' (the default): a One Euro filter on every landmark, then the lips and lids
 *   replaced by the unfiltered frame's, in canonical space with the filtered pose
 *   (regional-filter.ts).
 * - 'landmarks': the One Euro filter on every landmark, nothing else.
 * - 'rigid': the pose fitted to the raw landmarks is filtered as a rigid motion
 *   (rigid-filter.ts); the expression passes, or goes through its own filter.
 * With the filter off, the landmarks pass as seen. All buffers are allocated once.
 */
import { LANDMARK_COUNT } from '../../../shared/tracking.ts';
import type { CanonicalMesh } from '../../../models/manifest.ts';
import { DEFAULT_ONE_EURO, OneEuroVector, type OneEuroParams } from './one-euro.ts';
import { fromCanonicalSpace, PoseSolver, toCanonicalSpace, type PoseFit } from './pose.ts';
import { RegionPass, type RegionFilterParams } from './regional-filter.ts';
import { RigidFilter } from './rigid-filter.ts';

export type FilterMode = 'regional' | 'landmarks' | 'rigid';

/**
 * The default filter mode: the per-landmark filter keeps the head and the slow parts of the face
 * steady, and the lips and lids follow the frame they were seen in (docs/rendering.md).
 */
export const DEFAULT_FILTER_MODE: FilterMode = 'regional';

export interface SmootherOptions {
  /** Points per face (468, or 478 with irises). */
  count: number;
  mode?: FilterMode;
  /** One Euro parameters, or false for raw landmarks. */
  filter?: Partial<OneEuroParams> | false;
  /** 'rigid': One Euro on the canonical-space shape (speeds in face widths per second). */
  expressionFilter?: Partial<OneEuroParams>;
  /** 'regional': each region's own filter (DEFAULT_REGION_FILTERS: none). */
  regionFilters?: Partial<RegionFilterParams>;
}

export class LandmarkSmoother {
  readonly #count: number;
  readonly #pose: PoseSolver;
  readonly #filter: OneEuroVector | null;
  readonly #rigid: RigidFilter | null;
  readonly #exprFilter: OneEuroVector | null;
  readonly #regions: RegionPass | null;
  /** The canonical mesh's width: canonical-space speeds are divided by it. */
  readonly #faceWidth: number;
  /** Every point (irises too) in canonical space. */
  readonly #canonicalAll: Float32Array;
  /** 'regional': the unfiltered frame in canonical space. */
  readonly #rawCanonical: Float32Array;

  constructor(mesh: CanonicalMesh, opts: SmootherOptions) {
    const n = opts.count;
    const mode = opts.mode ?? DEFAULT_FILTER_MODE;
    const rigid = mode === 'rigid';
    this.#count = n;
    this.#pose = new PoseSolver(mesh);
    this.#filter = opts.filter === false || rigid ? null : new OneEuroVector(n * 3, { ...DEFAULT_ONE_EURO, ...opts.filter });
    this.#rigid = opts.filter === false || !rigid ? null : new RigidFilter({ ...DEFAULT_ONE_EURO, ...opts.filter });
    this.#exprFilter = this.#rigid && opts.expressionFilter ? new OneEuroVector(n * 3, { ...DEFAULT_ONE_EURO, ...opts.expressionFilter }) : null;
    this.#regions = this.#filter && mode === 'regional' ? new RegionPass(n, opts.regionFilters) : null;
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < mesh.vertices.length; i += 3) {
      lo = Math.min(lo, mesh.vertices[i] ?? 0);
      hi = Math.max(hi, mesh.vertices[i] ?? 0);
    }
    this.#faceWidth = hi > lo ? hi - lo : 1;
    this.#canonicalAll = new Float32Array(n * 3);
    this.#rawCanonical = new Float32Array(this.#regions ? n * 3 : 0);
  }

  reset(): void {
    this.#filter?.reset();
    this.#rigid?.reset();
    this.#exprFilter?.reset();
    this.#regions?.reset();
  }

  /**
   * Smooths `raw` (x y z per point, frame pixels) seen at `timeMs` into `smoothed` (the same
   * layout) and `canonical` (the first 468 points, pose-free); `faceSize` (pixels) scales the
   * filter's speeds. Returns the pose fit (an object reused by the next call).
   */
  apply(raw: Float32Array, timeMs: number, faceSize: number, smoothed: Float32Array, canonical: Float32Array): PoseFit {
    const n = this.#count;
    if (this.#rigid) {
      const rawFit = this.#pose.solve(raw);
      toCanonicalSpace(raw, n, rawFit, this.#canonicalAll);
      this.#exprFilter?.apply(this.#canonicalAll, timeMs, this.#faceWidth);
      const fit = this.#rigid.apply(rawFit, timeMs, faceSize);
      fromCanonicalSpace(this.#canonicalAll, n, fit, smoothed);
      canonical.set(this.#canonicalAll.subarray(0, LANDMARK_COUNT * 3));
      return fit;
    }
    if (this.#regions) {
      // The raw frame's pose-free shape first (solve() reuses its result object).
      toCanonicalSpace(raw, n, this.#pose.solve(raw), this.#rawCanonical);
      smoothed.set(raw);
      this.#filter?.apply(smoothed, timeMs, faceSize);
      const fit = this.#pose.solve(smoothed);
      toCanonicalSpace(smoothed, n, fit, this.#canonicalAll);
      this.#regions.apply(this.#rawCanonical, this.#canonicalAll, timeMs, this.#faceWidth);
      fromCanonicalSpace(this.#canonicalAll, n, fit, smoothed);
      canonical.set(this.#canonicalAll.subarray(0, LANDMARK_COUNT * 3));
      return fit;
    }
    smoothed.set(raw);
    this.#filter?.apply(smoothed, timeMs, faceSize);
    const fit = this.#pose.solve(smoothed);
    toCanonicalSpace(smoothed, LANDMARK_COUNT, fit, canonical);
    return fit;
  }
}
