/**
 * Entry point of an inference worker thread. Loads the handler modules named in the init
 * message, answers pings (liveness) and runs requests one at a time in arrival order.
 */
import { parentPort } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { rootLogger } from '../logger.ts';
import { serializeError } from './errors.ts';
import type { CreateHandler, InferenceHandler } from './handler.ts';
import type { HandlerInfo, HandlerSpec, HostToWorker, WorkerToHost } from './protocol.ts';

const port = parentPort;
if (!port) throw new Error('worker-host.ts must run in a worker thread');

const logger = rootLogger.child('inference-worker');
const handlers = new Map<string, InferenceHandler>();
let queue: Promise<void> = Promise.resolve();

function send(msg: WorkerToHost, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(msg, transfer);
}

async function loadHandler(spec: HandlerSpec): Promise<InferenceHandler> {
  const url = spec.module.startsWith('file:') ? spec.module : pathToFileURL(spec.module).href;
  const mod = (await import(url)) as { createHandler?: CreateHandler };
  if (typeof mod.createHandler !== 'function') throw new TypeError(`handler module ${spec.module} does not export createHandler`);
  return mod.createHandler(spec.options, { name: spec.name, logger: logger.child(spec.name) });
}

async function init(specs: HandlerSpec[]): Promise<void> {
  try {
    const info: Record<string, HandlerInfo> = {};
    for (const spec of specs) {
      const h = await loadHandler(spec);
      handlers.set(spec.name, h);
      info[spec.name] = h.info?.() ?? {};
    }
    send({ type: 'ready', info });
  } catch (err) {
    send({ type: 'init-error', error: serializeError(err) });
  }
}

async function run(id: number, name: string, payload: unknown): Promise<void> {
  const h = handlers.get(name);
  if (!h) {
    send({ type: 'run-error', id, error: { name: 'InferenceError', message: `no handler named ${name}`, code: 'E_INFER_UNKNOWN_HANDLER' } });
    return;
  }
  try {
    const r = await h.run(payload);
    send({ type: 'result', id, payload: r.payload }, r.transfer ?? []);
  } catch (err) {
    send({ type: 'run-error', id, error: serializeError(err) });
  }
}

async function close(): Promise<void> {
  for (const [name, h] of handlers) {
    try {
      await h.close?.();
    } catch (err) {
      logger.warn('handler close failed', { handler: name, err: err instanceof Error ? err.message : String(err) });
    }
  }
  handlers.clear();
  send({ type: 'closed' });
}

port.on('message', (msg: HostToWorker) => {
  switch (msg.type) {
    case 'ping':
      // Answered immediately, outside the run queue: a pong proves the thread's event loop turns.
      send({ type: 'pong', id: msg.id });
      return;
    case 'init':
      queue = queue.then(() => init(msg.handlers));
      return;
    case 'run':
      // A concurrent handler (it gathers batches) starts each request on arrival; the others
      // run one at a time. Handlers exist only once init has finished.
      if (handlers.get(msg.handler)?.concurrent) void run(msg.id, msg.handler, msg.payload);
      else queue = queue.then(() => run(msg.id, msg.handler, msg.payload));
      return;
    case 'close':
      queue = queue.then(close);
      return;
    default: {
      const never: never = msg;
      logger.warn('unknown message', { type: String((never as { type?: unknown }).type) });
    }
  }
});
