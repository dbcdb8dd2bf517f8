/**
 * Coded errors of the inference layer. Callers switch on `code`, never on the message.
 * (These codes belong in the shared error catalogue once it exists in shared/.)
 */
export type InferenceErrorCode =
  | 'E_INFER_INIT_TIMEOUT' // the worker did not finish loading its handlers within initTimeoutMs
  | 'E_INFER_INIT_FAILED' // a handler failed to load (missing model, bad module, shape mismatch)
  | 'E_INFER_WORKER_CRASHED' // the worker thread died; pending runs are rejected, the runner restarts it
  | 'E_INFER_WORKER_HUNG' // the worker stopped answering heartbeats; it is terminated and restarted
  | 'E_INFER_DEAD' // restarts exhausted: the runner is permanently unusable
  | 'E_INFER_RUN_FAILED' // the handler threw for this input (transient: skip the frame)
  | 'E_INFER_UNKNOWN_HANDLER'; // run() named a handler the worker does not host

export class InferenceError extends Error {
  readonly code: InferenceErrorCode;
  /** Permanent errors mark the stage unusable; transient ones only lose one frame. */
  readonly permanent: boolean;
  /** The code of the error thrown inside the worker, when it had one (e.g. E_PROVIDER_UNAVAILABLE). */
  readonly originCode: string | undefined;

  constructor(code: InferenceErrorCode, message: string, options?: { cause?: unknown; originCode?: string }) {
    super(message, options);
    this.originCode = options?.originCode;
    this.name = 'InferenceError';
    this.code = code;
    this.permanent = code === 'E_INFER_DEAD' || code === 'E_INFER_INIT_FAILED' || code === 'E_INFER_INIT_TIMEOUT' || code === 'E_INFER_UNKNOWN_HANDLER';
  }
}

/** Use after close(): one class for the whole project, from the shared catalogue. */
export { InvalidStateError } from '../../../shared/errors.ts';

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, code: typeof code === 'string' ? code : undefined, stack: err.stack };
  }
  return { name: 'Error', message: String(err) };
}
