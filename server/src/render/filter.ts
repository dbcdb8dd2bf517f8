/**
 * One Euro filter over a vector of values that move together (a landmark
 * displacement field, a pose). The cutoff adapts to the vector's RMS speed, so
 * the whole group is smoothed alike: slow drift is held still (no jitter), fast
 * motion (a blink, a jaw drop) passes with little lag. Casiez et al., CHI 2012.
 */
export interface OneEuroParams {
  /** Cutoff at rest, Hz. Lower = steadier, laggier. */
  minCutoffHz: number;
  /** Cutoff gain per unit of speed (units of the values per second). */
  beta: number;
  /** Cutoff for the speed estimate, Hz. */
  dCutoffHz: number;
}

export class OneEuroVector {
  readonly #x: Float64Array;
  readonly #params: OneEuroParams;
  readonly #group: number;
  readonly #speed: Float64Array;
  #primed = false;

  /** groupSize: values per independently adapted group (3 = one cutoff per x,y,z point). */
  constructor(length: number, params: OneEuroParams, groupSize = length) {
    if (length % groupSize !== 0) throw new TypeError('length must be a multiple of groupSize');
    this.#x = new Float64Array(length);
    this.#params = { ...params };
    this.#group = groupSize;
    this.#speed = new Float64Array(length / groupSize);
  }

  get value(): Float64Array {
    return this.#x;
  }

  reset(): void {
    this.#primed = false;
    this.#speed.fill(0);
  }

  /** Overwrites the state (used when easing toward neutral with no input). */
  set(values: ArrayLike<number>): void {
    for (let i = 0; i < this.#x.length; i++) this.#x[i] = values[i]!;
    this.#primed = true;
  }

  /** Filters `input` in place into the internal state and returns it. dtMs > 0. */
  update(input: ArrayLike<number>, dtMs: number): Float64Array {
    const x = this.#x;
    if (!this.#primed) {
      for (let i = 0; i < x.length; i++) x[i] = input[i]!;
      this.#primed = true;
      return x;
    }
    const dt = Math.max(dtMs, 1) / 1000;
    const g = this.#group;
    const ad = alpha(this.#params.dCutoffHz, dt);
    for (let k = 0, i0 = 0; i0 < x.length; k++, i0 += g) {
      let ss = 0;
      for (let i = i0; i < i0 + g; i++) {
        const d = input[i]! - x[i]!;
        ss += d * d;
      }
      const speed = (this.#speed[k]! += ad * (Math.sqrt(ss / g) / dt - this.#speed[k]!));
      const a = alpha(this.#params.minCutoffHz + this.#params.beta * speed, dt);
      for (let i = i0; i < i0 + g; i++) x[i]! += a * (input[i]! - x[i]!);
    }
    return x;
  }
}

function alpha(cutoffHz: number, dt: number): number {
  const tau = 1 / (2 * Math.PI * cutoffHz);
  return 1 / (1 + tau / dt);
}
