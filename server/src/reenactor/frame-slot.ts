/**
 * The queue in front of the stage: depth 1, latest frame wins. When a frame
 * arrives while the stage is busy, the waiting one (if any) is replaced and
 * counted as dropped. There is never more than one frame waiting.
 */
export class LatestFrameSlot<T> {
  #pending: T | undefined;
  #busy = false;
  #closed = false;
  #dropped = 0;
  readonly #work: (item: T) => Promise<void>;
  readonly #onDrop: (item: T) => void;

  constructor(work: (item: T) => Promise<void>, onDrop: (item: T) => void = () => undefined) {
    this.#work = work;
    this.#onDrop = onDrop;
  }

  get dropped(): number {
    return this.#dropped;
  }

  get busy(): boolean {
    return this.#busy;
  }

  offer(item: T): void {
    if (this.#closed) return;
    if (this.#pending !== undefined) {
      this.#dropped++;
      this.#onDrop(this.#pending);
    }
    this.#pending = item;
    if (!this.#busy) void this.#pump();
  }

  close(): void {
    this.#closed = true;
    this.#pending = undefined;
  }

  async #pump(): Promise<void> {
    this.#busy = true;
    try {
      while (this.#pending !== undefined && !this.#closed) {
        const item = this.#pending;
        this.#pending = undefined;
        // The work function owns its errors; a throw here must not stop the pump.
        await this.#work(item).catch(() => undefined);
      }
    } finally {
      this.#busy = false;
    }
  }
}
