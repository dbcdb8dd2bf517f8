/**
 * Deliberate degradation when a session keeps missing its frame budget:
 * level 0 full render size → 1 lower render size → 2 also skip every other
 * frame. It steps up when most recent frames are over budget and back down
 * once frames have been comfortably under budget for a while.
 */
export const MAX_DEGRADE_LEVEL = 2;

export interface DegradeOptions {
  budgetMs: number;
  /** Frames in the look-back window for stepping up. */
  window?: number;
  /** Step up when this fraction of the window is over budget. */
  overFraction?: number;
  /** Frames in the look-back window for stepping down. */
  recoverFrames?: number;
  /** Step down when the window's median is under this fraction of the budget… */
  recoverFraction?: number;
  /** …and at most this fraction of it is over budget. */
  recoverMaxOver?: number;
}

export class DegradeController {
  readonly #budget: number;
  readonly #window: number;
  readonly #overFraction: number;
  readonly #recoverFrames: number;
  readonly #recoverFraction: number;
  readonly #recoverMaxOver: number;
  /** Server times of recent frames (ms), newest last, at most recoverFrames long. */
  readonly #recent: number[] = [];
  #level = 0;

  constructor(opts: DegradeOptions) {
    this.#budget = opts.budgetMs;
    this.#window = opts.window ?? 15;
    this.#overFraction = opts.overFraction ?? 0.6;
    this.#recoverFrames = Math.max(opts.recoverFrames ?? 45, this.#window);
    this.#recoverFraction = opts.recoverFraction ?? 0.6;
    this.#recoverMaxOver = opts.recoverMaxOver ?? 0.1;
  }

  get level(): number {
    return this.#level;
  }

  /** Records one processed frame's server time; returns the new level when it changed. */
  record(serverMs: number): { level: number; reason: string } | null {
    this.#recent.push(serverMs);
    if (this.#recent.length > this.#recoverFrames) this.#recent.shift();
    const last = this.#recent.slice(-this.#window);
    const overCount = last.filter((ms) => ms > this.#budget).length;
    if (this.#level < MAX_DEGRADE_LEVEL && last.length === this.#window && overCount >= this.#window * this.#overFraction) {
      this.#level++;
      this.#recent.length = 0;
      return { level: this.#level, reason: `${overCount}/${this.#window} frames over the ${this.#budget} ms budget` };
    }
    if (this.#level > 0 && this.#recent.length === this.#recoverFrames) {
      const sorted = [...this.#recent].sort((a, b) => a - b);
      const median = sorted[sorted.length >> 1] ?? Infinity;
      const over = this.#recent.filter((ms) => ms > this.#budget).length;
      if (median < this.#budget * this.#recoverFraction && over <= this.#recoverFrames * this.#recoverMaxOver) {
        this.#level--;
        this.#recent.length = 0;
        return { level: this.#level, reason: `median ${median.toFixed(0)} ms over the last ${this.#recoverFrames} frames` };
      }
    }
    return null;
  }
}
