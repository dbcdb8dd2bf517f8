/**
 * Runs async tasks one at a time in call order, per key. A task that fails does not stop the
 * ones queued after it. Used where a handler takes concurrent requests but one caller's
 * requests (or one shared resource) must not interleave.
 */
export class SerialQueues<K> {
  readonly #tails = new Map<K, Promise<unknown>>();

  run<T>(key: K, task: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    const next = prev.then(task, task);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return next;
  }
}
