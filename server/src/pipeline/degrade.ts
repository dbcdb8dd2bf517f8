/**
 * Deliberate degradation when a session keeps missing its frame budget:
 * level 0 full render size → 1 lower render size → 2 also skip every other
 * frame. It steps up when most recent frames are over budget and back down
 * once frames have been comfortably under budget for a while.
 */
export const MAX_DEGRADE_LEVEL = 2;

export interface DegradeOptions {
  budgetMs: number;
  /** Frames in the look-back window. */
  window?: number;
  /** Step up when this fraction of the window is over budget. */
  overFraction?: number;
  /** Step down after this many consecutive frames under `recoverFraction` of the budget. */
  recoverFrames?: number;
  recoverFraction?: number;
}

export class DegradeController {
  readonly #budget: number;
  readonly #window: number;
  readonly #overFraction: number;
  readonly #recoverFrames: number;
  readonly #recoverFraction: number;
  readonly #recent: boolean[] = [];
  #under = 0;
  #level = 0;

  constructor(opts: DegradeOptions) {
    this.#budget = opts.budgetMs;
    this.#window = opts.window ?? 15;
    this.#overFraction = opts.overFraction ?? 0.6;
    this.#recoverFrames = opts.recoverFrames ?? 45;
    this.#recoverFraction = opts.recoverFraction ?? 0.6;
  }

  get level(): number {
    return this.#level;
  }

  /** Records one processed frame's server time; returns the new level when it changed. */
  record(serverMs: number): { level: number; reason: string } | null {
    const over = serverMs > this.#budget;
    this.#recent.push(over);
    if (this.#recent.length > this.#window) this.#recent.shift();
    this.#under = serverMs < this.#budget * this.#recoverFraction ? this.#under + 1 : 0;
    const overCount = this.#recent.filter(Boolean).length;
    if (this.#level < MAX_DEGRADE_LEVEL && this.#recent.length === this.#window && overCount >= this.#window * this.#overFraction) {
      this.#level++;
      this.#recent.length = 0;
      this.#under = 0;
      return { level: this.#level, reason: `${overCount}/${this.#window} frames over the ${this.#budget} ms budget` };
    }
    if (this.#level > 0 && this.#under >= this.#recoverFrames) {
      this.#level--;
      this.#under = 0;
      this.#recent.length = 0;
      return { level: this.#level, reason: `${this.#recoverFrames} frames under ${Math.round(this.#budget * this.#recoverFraction)} ms` };
    }
    return null;
  }
}
