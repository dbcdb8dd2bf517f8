/**
 * One Euro filter (Casiez et al., CHI 2012) over a fixed-size vector of coordinates.
 *
 * The cut-off frequency rises with speed: slow drift (jitter) is smoothed at minCutoffHz, fast
 * motion passes with little lag. Speeds are divided by `scale` (face size in pixels) so the same
 * parameters work for near and far faces: `beta` is Hz per face-size-per-second.
 */
export interface OneEuroParams {
  /** Cut-off at rest, Hz. Lower = smoother, more lag when slow. Default 1.5. */
  minCutoffHz: number;
  /** Cut-off increase per face-size/second of speed. Higher = less lag on fast motion. Default 20. */
  beta: number;
  /** Cut-off of the speed estimate, Hz. Default 1. */
  dCutoffHz: number;
}

export const DEFAULT_ONE_EURO: OneEuroParams = Object.freeze({ minCutoffHz: 1.5, beta: 20, dCutoffHz: 1 });

function alpha(cutoffHz: number, dtS: number): number {
  const tau = 1 / (2 * Math.PI * cutoffHz);
  return 1 / (1 + tau / dtS);
}

export class OneEuroVector {
  readonly #x: Float32Array;
  readonly #dx: Float32Array;
  readonly #params: OneEuroParams;
  #lastMs = -1;

  constructor(size: number, params: OneEuroParams = DEFAULT_ONE_EURO) {
    this.#x = new Float32Array(size);
    this.#dx = new Float32Array(size);
    this.#params = params;
  }

  reset(): void {
    this.#lastMs = -1;
  }

  /** Filters `values` in place at time `timeMs`. The first call (or one after reset) passes through. */
  apply(values: Float32Array, timeMs: number, scale: number): void {
    const n = this.#x.length;
    const dt = (timeMs - this.#lastMs) / 1000;
    if (this.#lastMs < 0 || !(dt > 0) || dt > 1) {
      this.#x.set(values.subarray(0, n));
      this.#dx.fill(0);
      this.#lastMs = timeMs;
      return;
    }
    this.#lastMs = timeMs;
    const { minCutoffHz, beta, dCutoffHz } = this.#params;
    const ad = alpha(dCutoffHz, dt);
    const invScale = scale > 0 ? 1 / scale : 1;
    const x = this.#x;
    const dx = this.#dx;
    for (let i = 0; i < n; i++) {
      const prev = x[i] ?? 0;
      const v = values[i] ?? 0;
      const d = (dx[i] ?? 0) + ad * ((v - prev) / dt - (dx[i] ?? 0));
      dx[i] = d;
      const a = alpha(minCutoffHz + beta * Math.abs(d) * invScale, dt);
      const f = prev + a * (v - prev);
      x[i] = f;
      values[i] = f;
    }
  }
}
