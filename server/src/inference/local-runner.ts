/**
 * Hosts inference handlers in the calling thread. For code that is already
 * off the event loop — a pipeline running inside an inference worker — this
 * gives a Tracker its models without a second thread hop per model call.
 * Same run() contract as InferenceRunner; transfer lists are moot in-thread.
 */
import { pathToFileURL } from 'node:url';
import type { Logger } from '../logger.ts';
import type { CreateHandler, InferenceHandler } from './handler.ts';
import type { HandlerInfo, HandlerSpec } from './protocol.ts';
import { InvalidStateError } from '../../../shared/errors.ts';

/** What a Tracker needs from a runner; InferenceRunner and LocalRunner both provide it. */
export interface ModelRunner {
  readonly info: Readonly<Record<string, HandlerInfo>>;
  run<T>(handler: string, payload: unknown, transfer?: ArrayBuffer[]): Promise<T>;
  close(): Promise<void>;
}

export class LocalRunner implements ModelRunner {
  readonly #handlers: Map<string, InferenceHandler>;
  readonly info: Readonly<Record<string, HandlerInfo>>;
  #closed = false;

  private constructor(handlers: Map<string, InferenceHandler>) {
    this.#handlers = handlers;
    const info: Record<string, HandlerInfo> = {};
    for (const [name, h] of handlers) info[name] = h.info?.() ?? {};
    this.info = Object.freeze(info);
  }

  static async create(specs: HandlerSpec[], logger: Logger): Promise<LocalRunner> {
    return LocalRunner.fromFactories(
      specs.map((spec) => ({
        name: spec.name,
        options: spec.options,
        create: async (options, ctx) => {
          const url = spec.module.startsWith('file:') ? spec.module : pathToFileURL(spec.module).href;
          const mod = (await import(url)) as { createHandler?: CreateHandler };
          if (typeof mod.createHandler !== 'function') throw new TypeError(`${spec.module} exports no createHandler`);
          return mod.createHandler(options, ctx);
        },
      })),
      logger,
    );
  }

  /** From handler factories already imported (a bundled tool, where a module path means nothing). */
  static async fromFactories(factories: { name: string; options?: unknown; create: CreateHandler }[], logger: Logger): Promise<LocalRunner> {
    const handlers = new Map<string, InferenceHandler>();
    try {
      for (const f of factories) handlers.set(f.name, await f.create(f.options, { name: f.name, logger: logger.child(f.name) }));
    } catch (err) {
      for (const h of handlers.values()) await h.close?.();
      throw err;
    }
    return new LocalRunner(handlers);
  }

  async run<T>(handler: string, payload: unknown): Promise<T> {
    if (this.#closed) throw new InvalidStateError('runner closed');
    const h = this.#handlers.get(handler);
    if (!h) throw new TypeError(`no handler named ${handler}`);
    return (await h.run(payload)).payload as T;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const h of this.#handlers.values()) await h.close?.();
  }
}
