/**
 * A small typed event emitter for the browser client. A listener that throws
 * is reported through `onListenerError` and never stops the other listeners.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- event maps carry arbitrary tuple types.
export type EventMap = Record<string, any[]>;

export class Emitter<E extends EventMap> {
  readonly #listeners = new Map<keyof E, Set<(...args: unknown[]) => void>>();
  onListenerError: (event: string, err: unknown) => void = () => undefined;

  on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    const l = listener as (...args: unknown[]) => void;
    set.add(l);
    return () => set.delete(l);
  }

  safeEmit<K extends keyof E & string>(event: K, ...args: E[K]): void {
    for (const l of [...(this.#listeners.get(event) ?? [])]) {
      try {
        l(...args);
      } catch (err) {
        this.onListenerError(event, err);
      }
    }
  }

  removeAll(): void {
    this.#listeners.clear();
  }
}
