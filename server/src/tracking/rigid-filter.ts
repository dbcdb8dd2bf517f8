/**
 * Filters the head's rigid motion rather than each landmark. The pose fitted to the raw
 * landmarks (rotation, translation, scale) goes through a One Euro filter; the expression, the
 * landmarks in canonical space, passes as the tracker saw it, and the smoothed landmarks are the
 * raw canonical shape put back with the smoothed pose. So the head holds still where the
 * tracker's noise would shake it, while the lips and lids follow the frame they were seen in
 * (a per-landmark filter lags fast mouth motion by about a frame).
 */
import { OneEuroVector, type OneEuroParams } from './one-euro.ts';
import type { PoseFit } from './pose.ts';

/** Rotation (9), translation over the face size (3), log scale (1). */
const SIZE = 13;

export class RigidFilter {
  readonly #filter: OneEuroVector;
  readonly #v = new Float32Array(SIZE);
  readonly #out: PoseFit = { rotation: new Float64Array(9), scale: 1, t: new Float64Array(3) };
  /** Face size when the track began: translations are filtered in its units. */
  #unit = 0;

  constructor(params: OneEuroParams) {
    this.#filter = new OneEuroVector(SIZE, params);
  }

  reset(): void {
    this.#filter.reset();
    this.#unit = 0;
  }

  /** The smoothed pose (an object reused by the next call). */
  apply(raw: PoseFit, timeMs: number, faceSize: number): PoseFit {
    if (!(this.#unit > 0)) this.#unit = faceSize > 0 ? faceSize : 1;
    const v = this.#v;
    for (let i = 0; i < 9; i++) v[i] = raw.rotation[i] ?? 0;
    for (let i = 0; i < 3; i++) v[9 + i] = (raw.t[i] ?? 0) / this.#unit;
    v[12] = Math.log(Math.max(1e-9, raw.scale));
    this.#filter.apply(v, timeMs, 1);
    orthonormalise(v, this.#out.rotation);
    for (let i = 0; i < 3; i++) this.#out.t[i] = (v[9 + i] ?? 0) * this.#unit;
    this.#out.scale = Math.exp(v[12] ?? 0);
    return this.#out;
  }
}

/** The nearest rotation to a filtered 3×3 (row-major): Gram–Schmidt on the rows. */
function orthonormalise(m: Float32Array, out: Float64Array): void {
  let ax = m[0] ?? 1, ay = m[1] ?? 0, az = m[2] ?? 0;
  let n = Math.hypot(ax, ay, az) || 1;
  ax /= n; ay /= n; az /= n;
  let bx = m[3] ?? 0, by = m[4] ?? 1, bz = m[5] ?? 0;
  const d = ax * bx + ay * by + az * bz;
  bx -= d * ax; by -= d * ay; bz -= d * az;
  n = Math.hypot(bx, by, bz) || 1;
  bx /= n; by /= n; bz /= n;
  // The third row is the cross product: a proper rotation whatever the filter did to it.
  out[0] = ax; out[1] = ay; out[2] = az;
  out[3] = bx; out[4] = by; out[5] = bz;
  out[6] = ay * bz - az * by; out[7] = az * bx - ax * bz; out[8] = ax * by - ay * bx;
}
