/**
 * A typed EventEmitter whose safeEmit() never lets a throwing listener break
 * the emitter (mediasoup's enhancedEvents habit).
 */
import { EventEmitter } from 'node:events';
import { rootLogger, type Logger } from '../logger.ts';

const defaultLog = rootLogger.child('emitter');

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- event maps carry arbitrary tuple types.
export type EventMap = Record<string, any[]>;

export class TypedEmitter<E extends EventMap> {
  readonly #ee = new EventEmitter();
  readonly #log: Logger;

  /** `logger` scopes the message logged when a listener throws. */
  constructor(logger: Logger = defaultLog) {
    this.#ee.setMaxListeners(Infinity);
    this.#log = logger;
  }

  on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#ee.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  once<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#ee.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#ee.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  listenerCount<K extends keyof E & string>(event: K): number {
    return this.#ee.listenerCount(event);
  }

  removeAllListeners(): void {
    this.#ee.removeAllListeners();
  }

  /** Emits to every listener; a listener that throws is logged and the others still run. */
  safeEmit<K extends keyof E & string>(event: K, ...args: E[K]): boolean {
    const listeners = this.#ee.listeners(event) as ((...a: E[K]) => void)[];
    for (const l of listeners) {
      try {
        l(...args);
      } catch (err) {
        this.#log.error('event listener threw', { event, err });
      }
    }
    return listeners.length > 0;
  }
}
