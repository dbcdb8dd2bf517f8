/**
 * Messages between an InferenceRunner (main thread) and its worker host. Typed arrays in
 * payloads travel as transferables (moved, not copied) when listed in the transfer list.
 */
import type { SerializedError } from './errors.ts';

/** One handler the worker hosts: a module exporting `createHandler` (see handler.ts). */
export interface HandlerSpec {
  /** Name used by run(). */
  name: string;
  /** Absolute path or file: URL of the handler module (.ts works under tsx). */
  module: string;
  /** Structured-cloneable options passed to createHandler. */
  options?: unknown;
}

export type HandlerInfo = Record<string, string | number | boolean>;

export type HostToWorker =
  | { type: 'init'; handlers: HandlerSpec[] }
  | { type: 'run'; id: number; handler: string; payload: unknown }
  | { type: 'ping'; id: number }
  | { type: 'close' };

export type WorkerToHost =
  | { type: 'ready'; info: Record<string, HandlerInfo> }
  | { type: 'init-error'; error: SerializedError }
  | { type: 'result'; id: number; payload: unknown }
  | { type: 'run-error'; id: number; error: SerializedError }
  | { type: 'pong'; id: number }
  | { type: 'closed' };
