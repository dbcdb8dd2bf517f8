/**
 * A pair of open curves (upper and lower contour of an eye or of the inner
 * lips) in a local frame: u runs from the first corner to the second, v points
 * "down" the face. Curves are resampled into fixed bins so per-pixel lookups
 * are two loads and a lerp. One instance per feature, reused every frame.
 */
export const BINS = 48;

export class ContourFrame {
  /** Origin (first corner), unit axes, width. */
  ox = 0;
  oy = 0;
  ax = 1;
  ay = 0;
  width = 1;
  readonly upper = new Float64Array(BINS);
  readonly lower = new Float64Array(BINS);
  /** Image-space bounding box of the region between the curves (inclusive ints). */
  x0 = 0;
  y0 = 0;
  x1 = -1;
  y1 = -1;
  readonly #u = new Float64Array(32);
  readonly #v = new Float64Array(32);

  /**
   * Sets the frame from landmark ids (stride-3 points): both contours run
   * corner to corner and share their endpoints.
   */
  set(points: ArrayLike<number>, upper: readonly number[], lower: readonly number[]): void {
    const a = upper[0]!, b = upper[upper.length - 1]!;
    this.ox = points[a * 3]!;
    this.oy = points[a * 3 + 1]!;
    let dx = points[b * 3]! - this.ox, dy = points[b * 3 + 1]! - this.oy;
    const w = Math.hypot(dx, dy) || 1;
    dx /= w;
    dy /= w;
    // v axis = u rotated +90° in image coordinates (x right, y down). The corner order makes it point down the face.
    this.ax = dx;
    this.ay = dy;
    this.width = w;
    if (this.#vDown(points, upper, lower) < 0) {
      this.ax = -dx;
      this.ay = -dy;
      this.ox = points[b * 3]!;
      this.oy = points[b * 3 + 1]!;
      this.#resample(points, upper, this.upper, true);
      this.#resample(points, lower, this.lower, true);
    } else {
      this.#resample(points, upper, this.upper, false);
      this.#resample(points, lower, this.lower, false);
    }
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (let k = 0; k < upper.length + lower.length; k++) {
      const i = k < upper.length ? upper[k]! : lower[k - upper.length]!;
      x0 = Math.min(x0, points[i * 3]!); x1 = Math.max(x1, points[i * 3]!);
      y0 = Math.min(y0, points[i * 3 + 1]!); y1 = Math.max(y1, points[i * 3 + 1]!);
    }
    this.x0 = Math.floor(x0) - 2; this.y0 = Math.floor(y0) - 2;
    this.x1 = Math.ceil(x1) + 2; this.y1 = Math.ceil(y1) + 2;
  }

  /** Local coordinates of an image point. */
  u(x: number, y: number): number {
    return (x - this.ox) * this.ax + (y - this.oy) * this.ay;
  }

  v(x: number, y: number): number {
    return -(x - this.ox) * this.ay + (y - this.oy) * this.ax;
  }

  /** Curve value at local u (clamped to the corners). */
  at(curve: Float64Array, u: number): number {
    let t = (u / this.width) * (BINS - 1);
    if (t <= 0) return curve[0]!;
    if (t >= BINS - 1) return curve[BINS - 1]!;
    const i = t | 0;
    t -= i;
    return curve[i]! + (curve[i + 1]! - curve[i]!) * t;
  }

  #vDown(points: ArrayLike<number>, upper: readonly number[], lower: readonly number[]): number {
    const k = upper.length >> 1;
    const a = upper[k]!, b = lower[k]!;
    return this.v(points[b * 3]!, points[b * 3 + 1]!) - this.v(points[a * 3]!, points[a * 3 + 1]!);
  }

  #resample(points: ArrayLike<number>, ids: readonly number[], out: Float64Array, reversed: boolean): void {
    const n = ids.length, us = this.#u, vs = this.#v;
    for (let k = 0; k < n; k++) {
      const i = ids[reversed ? n - 1 - k : k]!;
      us[k] = this.u(points[i * 3]!, points[i * 3 + 1]!);
      vs[k] = this.v(points[i * 3]!, points[i * 3 + 1]!);
    }
    let j = 0;
    for (let b = 0; b < BINS; b++) {
      const u = (b / (BINS - 1)) * this.width;
      while (j < n - 2 && us[j + 1]! < u) j++;
      const du = us[j + 1]! - us[j]!;
      const t = du > 1e-9 ? Math.min(1, Math.max(0, (u - us[j]!) / du)) : 0;
      out[b] = vs[j]! + (vs[j + 1]! - vs[j]!) * t;
    }
  }
}
