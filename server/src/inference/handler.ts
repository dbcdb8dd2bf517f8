/**
 * The contract of a handler module loaded into an inference worker. A module exports
 * `createHandler(options, ctx)`; the worker calls it once at init and then `run(payload)` per
 * request, one at a time unless the handler is `concurrent`. Several handlers (tracker models, renderer) can share one worker.
 */
import type { Logger } from '../logger.ts';
import type { HandlerInfo } from './protocol.ts';

export interface HandlerContext {
  /** The handler's registered name. */
  name: string;
  logger: Logger;
}

export interface HandlerResult {
  payload: unknown;
  /** Buffers to move back to the caller instead of copying (typically the payload's typed arrays). */
  transfer?: ArrayBuffer[];
}

export interface InferenceHandler {
  run(payload: unknown): Promise<HandlerResult> | HandlerResult;
  /**
   * True when the handler takes several requests at once (it gathers them into batches): the
   * worker then starts each request on arrival instead of after the previous one ended. The
   * handler keeps one caller's requests in order itself.
   */
  readonly concurrent?: boolean;
  /** Static facts reported to the runner after init (provider, threads, model files). */
  info?(): HandlerInfo;
  close?(): Promise<void> | void;
}

export type CreateHandler = (options: unknown, ctx: HandlerContext) => Promise<InferenceHandler>;

/** Collects the distinct ArrayBuffers behind typed arrays, for a transfer list. */
export function buffersOf(...arrays: (ArrayBufferView | undefined)[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const a of arrays) if (a && a.buffer instanceof ArrayBuffer) out.add(a.buffer);
  return [...out];
}
