/**
 * InferenceRunner: one worker thread hosting named handlers (models), with an
 * initialize / run / close life cycle.
 *
 * - initialize: create() starts the worker and waits for every handler to load, up to
 *   initTimeoutMs (E_INFER_INIT_TIMEOUT / E_INFER_INIT_FAILED).
 * - run(handler, payload, transfer): posts one request; the listed buffers are moved, not copied.
 *   Requests run one at a time in the worker, in arrival order, so many sessions can share one
 *   loaded model.
 * - liveness: a ping every heartbeatIntervalMs; no pong for heartbeatTimeoutMs means the worker
 *   is hung: it is terminated, its pending runs are rejected (E_INFER_WORKER_HUNG) and it is
 *   restarted. A crash (uncaught error, exit) rejects pending runs with E_INFER_WORKER_CRASHED
 *   and restarts likewise. More than maxRestarts restarts within restartWindowMs makes the
 *   runner dead (E_INFER_DEAD, permanent; event 'dead').
 * - close(): idempotent; rejects pending runs with InvalidStateError, lets the run in progress
 *   end and the handlers close (bounded wait), then terminates the worker.
 */
import { Worker } from 'node:worker_threads';
import { rootLogger, type Logger } from '../logger.ts';
import { InferenceError, InvalidStateError, type SerializedError } from './errors.ts';
import type { HandlerInfo, HandlerSpec, HostToWorker, WorkerToHost } from './protocol.ts';
import { TypedEmitter } from '../util/emitter.ts';

export interface RunnerOptions {
  /** Used in logs and thread names. */
  name: string;
  handlers: HandlerSpec[];
  /** Default 30000. */
  initTimeoutMs?: number;
  /** Default 1000. */
  heartbeatIntervalMs?: number;
  /** Default 10000; must exceed the longest single run. */
  heartbeatTimeoutMs?: number;
  /** Default 3. */
  maxRestarts?: number;
  /** Default 60000. */
  restartWindowMs?: number;
  logger?: Logger;
}

export type RunnerState = 'ready' | 'restarting' | 'dead' | 'closed';

export type RunnerEvents = {
  /** The worker died or hung and a new one is being started. */
  restarting: [{ reason: InferenceError; restarts: number }];
  /** A restarted worker is ready again. */
  restarted: [{ restarts: number }];
  /** Restarts exhausted; the runner is unusable. */
  dead: [InferenceError];
  closed: [];
};

interface Pending {
  resolve: (payload: unknown) => void;
  reject: (err: Error) => void;
}

const WORKER_URL = new URL('./worker-host.ts', import.meta.url);

function spawnWorker(name: string): Worker {
  // Workers do not inherit tsx's loader hooks from `--import tsx`; register them inside the
  // worker before importing the TypeScript entry point.
  if (WORKER_URL.pathname.endsWith('.ts')) {
    const api = import.meta.resolve('tsx/esm/api');
    const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(WORKER_URL.href)}); });`;
    return new Worker(code, { eval: true, name, execArgv: [] });
  }
  return new Worker(WORKER_URL, { name });
}

function toError(e: SerializedError, fallback: 'E_INFER_RUN_FAILED' | 'E_INFER_INIT_FAILED'): InferenceError {
  const code = e.code === 'E_INFER_UNKNOWN_HANDLER' ? e.code : fallback;
  return new InferenceError(code, e.code && e.code !== code ? `${e.message} (${e.code})` : e.message, { originCode: e.code });
}

export class InferenceRunner {
  readonly #opts: Required<Omit<RunnerOptions, 'logger'>>;
  readonly #logger: Logger;
  readonly #events: TypedEmitter<RunnerEvents>;
  readonly #pending = new Map<number, Pending>();
  #worker: Worker | null = null;
  #state: RunnerState = 'restarting';
  #ready: Promise<void> = Promise.resolve();
  #info: Record<string, HandlerInfo> = {};
  #nextId = 1;
  #heartbeat: NodeJS.Timeout | null = null;
  #lastPong = 0;
  #restartTimes: number[] = [];
  #deadError: InferenceError | null = null;
  #closing: Promise<void> | null = null;

  private constructor(opts: RunnerOptions) {
    this.#opts = {
      name: opts.name,
      handlers: opts.handlers,
      initTimeoutMs: opts.initTimeoutMs ?? 30_000,
      heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 1_000,
      heartbeatTimeoutMs: opts.heartbeatTimeoutMs ?? 10_000,
      maxRestarts: opts.maxRestarts ?? 3,
      restartWindowMs: opts.restartWindowMs ?? 60_000,
    };
    this.#logger = (opts.logger ?? rootLogger).child('runner', { runner: opts.name });
    this.#events = new TypedEmitter<RunnerEvents>(this.#logger);
  }

  /** Starts the worker and loads every handler; rejects with E_INFER_INIT_* when that fails. */
  static async create(opts: RunnerOptions): Promise<InferenceRunner> {
    if (opts.handlers.length === 0) throw new TypeError('a runner needs at least one handler');
    const names = new Set(opts.handlers.map((h) => h.name));
    if (names.size !== opts.handlers.length) throw new TypeError('handler names must be unique');
    const runner = new InferenceRunner(opts);
    try {
      await runner.#start();
    } catch (err) {
      await runner.close();
      throw err;
    }
    return runner;
  }

  get state(): RunnerState {
    return this.#state;
  }

  /** What each handler reported after loading (provider, threads, ...). */
  get info(): Readonly<Record<string, HandlerInfo>> {
    return this.#info;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  get restarts(): number {
    return this.#restartTimes.length;
  }

  on<K extends keyof RunnerEvents>(event: K, listener: (...args: RunnerEvents[K]) => void): this {
    this.#events.on(event, listener);
    return this;
  }

  off<K extends keyof RunnerEvents>(event: K, listener: (...args: RunnerEvents[K]) => void): this {
    this.#events.off(event, listener);
    return this;
  }

  /**
   * Runs one request on a handler. Buffers in `transfer` are detached here and must come back in
   * the result to be reused. While the worker restarts, the request waits for it.
   */
  async run<T = unknown>(handler: string, payload: unknown, transfer: ArrayBuffer[] = []): Promise<T> {
    this.#assertUsable();
    if (this.#state === 'restarting') await this.#ready.catch(() => undefined);
    this.#assertUsable();
    const worker = this.#worker;
    if (!worker) throw new InferenceError('E_INFER_WORKER_CRASHED', 'worker is not running');
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (p: unknown) => void, reject });
      this.#post(worker, { type: 'run', id, handler, payload }, transfer);
    });
  }

  #assertUsable(): void {
    if (this.#state === 'closed') throw new InvalidStateError(`runner ${this.#opts.name} is closed`);
    if (this.#state === 'dead') throw this.#deadError ?? new InferenceError('E_INFER_DEAD', 'runner is dead');
  }

  /** Idempotent. Rejects pending runs, closes the handlers (bounded wait) and ends the worker. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // A graceful close lets handlers release their sessions. With runs in flight (or the worker
    // still loading its models) the close request queues behind them, so it waits longer: ending
    // a worker thread in the middle of a native inference call aborts the whole process
    // (onnxruntime-node throws into a terminating environment). A dead worker is just ended.
    const busy = this.#pending.size > 0 || this.#state === 'restarting';
    const graceful = this.#state === 'ready' || this.#state === 'restarting';
    this.#state = 'closed';
    this.#stopHeartbeat();
    this.#rejectAll(new InvalidStateError(`runner ${this.#opts.name} closed`));
    const worker = this.#worker;
    this.#worker = null;
    if (worker) {
      if (graceful) await this.#gracefulClose(worker, busy ? 15_000 : 2_000);
      await worker.terminate();
    }
    this.#events.safeEmit('closed');
    this.#events.removeAllListeners();
    this.#logger.debug('closed');
  }

  async #gracefulClose(worker: Worker, timeoutMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      worker.on('message', (m: WorkerToHost) => {
        if (m.type === 'closed') {
          clearTimeout(timer);
          resolve();
        }
      });
      worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.#post(worker, { type: 'close' });
    });
  }

  #post(worker: Worker, msg: HostToWorker, transfer: ArrayBuffer[] = []): void {
    worker.postMessage(msg, transfer);
  }

  #start(): Promise<void> {
    this.#state = 'restarting';
    const worker = spawnWorker(`inference:${this.#opts.name}`);
    this.#worker = worker;
    this.#ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        fail(new InferenceError('E_INFER_INIT_TIMEOUT', `handlers did not load within ${this.#opts.initTimeoutMs} ms`));
      }, this.#opts.initTimeoutMs);
      const fail = (err: InferenceError): void => {
        clearTimeout(timer);
        worker.off('message', onInit);
        void worker.terminate();
        if (this.#worker === worker) this.#worker = null;
        reject(err);
      };
      const onInit = (m: WorkerToHost): void => {
        if (m.type === 'ready') {
          clearTimeout(timer);
          worker.off('message', onInit);
          this.#info = m.info;
          if (this.#state !== 'closed') this.#state = 'ready';
          for (const [handler, info] of Object.entries(m.info)) this.#logger.info('inference handler ready', { handler, ...info });
          this.#startHeartbeat(worker);
          resolve();
        } else if (m.type === 'init-error') {
          fail(toError(m.error, 'E_INFER_INIT_FAILED'));
        }
      };
      let lastError = '';
      worker.once('error', (e) => (lastError = `: ${e.message}`));
      const onEarlyExit = (code: number): void => {
        if (this.#state !== 'ready') fail(new InferenceError('E_INFER_INIT_FAILED', `worker exited with code ${code} while loading handlers${lastError}`));
      };
      worker.on('message', onInit);
      worker.once('exit', onEarlyExit);
      worker.on('message', (m: WorkerToHost) => this.#onMessage(worker, m));
      worker.on('error', (err) => this.#onCrash(worker, new InferenceError('E_INFER_WORKER_CRASHED', `worker error: ${err.message}`, { cause: err })));
      worker.on('exit', (code) => this.#onCrash(worker, new InferenceError('E_INFER_WORKER_CRASHED', `worker exited with code ${code}`)));
      this.#post(worker, { type: 'init', handlers: this.#opts.handlers });
    });
    // A failed start is reported by whoever awaits #ready (create() or a waiting run()).
    this.#ready.catch(() => undefined);
    return this.#ready;
  }

  #onMessage(worker: Worker, m: WorkerToHost): void {
    if (worker !== this.#worker) return;
    switch (m.type) {
      case 'pong':
        this.#lastPong = performance.now();
        return;
      case 'result': {
        const p = this.#pending.get(m.id);
        this.#pending.delete(m.id);
        p?.resolve(m.payload);
        return;
      }
      case 'run-error': {
        const p = this.#pending.get(m.id);
        this.#pending.delete(m.id);
        p?.reject(toError(m.error, 'E_INFER_RUN_FAILED'));
        return;
      }
      case 'ready':
      case 'init-error':
      case 'closed':
        return;
      default: {
        const never: never = m;
        this.#logger.warn('unknown worker message', { type: String((never as { type?: unknown }).type) });
      }
    }
  }

  #startHeartbeat(worker: Worker): void {
    this.#stopHeartbeat();
    this.#lastPong = performance.now();
    let pingId = 0;
    this.#heartbeat = setInterval(() => {
      if (performance.now() - this.#lastPong > this.#opts.heartbeatTimeoutMs) {
        this.#onCrash(worker, new InferenceError('E_INFER_WORKER_HUNG', `worker did not answer heartbeats for ${this.#opts.heartbeatTimeoutMs} ms`));
        return;
      }
      this.#post(worker, { type: 'ping', id: ++pingId });
    }, this.#opts.heartbeatIntervalMs);
    this.#heartbeat.unref();
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
  }

  #rejectAll(err: Error): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(err);
  }

  #onCrash(worker: Worker, err: InferenceError): void {
    // Failures while loading are reported by #start's init promise, not here.
    if (worker !== this.#worker || this.#state !== 'ready') return;
    this.#worker = null;
    this.#stopHeartbeat();
    void worker.terminate();
    this.#rejectAll(err);
    const now = performance.now();
    this.#restartTimes = this.#restartTimes.filter((t) => now - t < this.#opts.restartWindowMs);
    if (this.#restartTimes.length >= this.#opts.maxRestarts) {
      this.#die(new InferenceError('E_INFER_DEAD', `worker failed ${this.#restartTimes.length + 1} times within ${this.#opts.restartWindowMs} ms: ${err.message}`));
      return;
    }
    this.#restartTimes.push(now);
    this.#logger.warn('restarting inference worker', { reason: err.code, detail: err.message, restarts: this.#restartTimes.length });
    this.#events.safeEmit('restarting', { reason: err, restarts: this.#restartTimes.length });
    this.#start().then(
      () => this.#events.safeEmit('restarted', { restarts: this.#restartTimes.length }),
      (startErr: unknown) => {
        if (this.#state === 'closed') return;
        const e = startErr instanceof InferenceError ? startErr : new InferenceError('E_INFER_INIT_FAILED', String(startErr));
        this.#die(new InferenceError('E_INFER_DEAD', `worker restart failed: ${e.message}`));
      },
    );
  }

  #die(err: InferenceError): void {
    this.#state = 'dead';
    this.#deadError = err;
    this.#stopHeartbeat();
    this.#rejectAll(err);
    this.#logger.error('inference runner is dead', { err });
    this.#events.safeEmit('dead', err);
  }
}
