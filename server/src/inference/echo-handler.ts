/**
 * Diagnostic handler: echoes buffers back and can be told to fail in each way a real handler
 * can (throw, crash the thread, hang). Used by the runner's tests and as a liveness probe.
 */
import { fileURLToPath } from 'node:url';
import type { CreateHandler, HandlerResult, InferenceHandler } from './handler.ts';
import type { HandlerSpec } from './protocol.ts';

export interface EchoOptions {
  /** Delay before the handler reports ready, ms. */
  initDelayMs?: number;
  /** Throw from createHandler. */
  failInit?: boolean;
}

export type EchoRequest =
  | { op: 'echo'; data: Float32Array; scale?: number }
  | { op: 'throw' }
  | { op: 'crash' }
  | { op: 'hang'; ms: number }
  | { op: 'sleep'; ms: number };

export function echoHandlerSpec(name = 'echo', options: EchoOptions = {}): HandlerSpec {
  return { name, module: fileURLToPath(import.meta.url), options };
}

class EchoHandler implements InferenceHandler {
  async run(payload: unknown): Promise<HandlerResult> {
    const req = payload as EchoRequest;
    switch (req.op) {
      case 'echo':
        if (req.scale !== undefined) for (let i = 0; i < req.data.length; i++) req.data[i] = (req.data[i] ?? 0) * req.scale;
        return { payload: req, transfer: [req.data.buffer as ArrayBuffer] };
      case 'throw':
        throw new RangeError('echo handler was asked to throw');
      case 'crash':
        // An uncaught exception kills the worker thread.
        setImmediate(() => {
          throw new Error('echo handler crashed on purpose');
        });
        return new Promise(() => undefined);
      case 'hang': {
        const end = performance.now() + req.ms;
        while (performance.now() < end) {
          // Busy-wait: blocks the worker's event loop like a stuck native call.
        }
        return { payload: 'woke' };
      }
      case 'sleep':
        await new Promise((r) => setTimeout(r, req.ms));
        return { payload: 'slept' };
      default: {
        const never: never = req;
        throw new TypeError(`unknown op ${String((never as { op?: unknown }).op)}`);
      }
    }
  }

  info(): Record<string, string> {
    return { kind: 'echo' };
  }
}

export const createHandler: CreateHandler = async (options: unknown) => {
  const o = (options ?? {}) as EchoOptions;
  if (o.initDelayMs) await new Promise((r) => setTimeout(r, o.initDelayMs));
  if (o.failInit) throw new Error('echo handler init failed on purpose');
  return new EchoHandler();
};
