/**
 * The mediasoup workers: one per core by default. Routers are placed on the
 * least-loaded live worker. A worker that dies is reported (so its rooms are
 * closed with a coded error) and replaced.
 */
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import type { Config } from '../config.ts';
import { rootLogger } from '../logger.ts';
import { TypedEmitter } from '../util/emitter.ts';
import { InvalidStateError } from '../../../shared/errors.ts';

const log = rootLogger.child('workers');

export interface WorkerPoolEvents {
  /** A worker died; every router on it is gone. Emitted before the replacement starts. */
  workerdied: [worker: types.Worker, error: Error];
  [key: string]: unknown[];
}

export class WorkerPool extends TypedEmitter<WorkerPoolEvents> {
  readonly #config: Config;
  readonly #workers: types.Worker[] = [];
  readonly #routerCounts = new Map<types.Worker, number>();
  #closed = false;

  private constructor(config: Config) {
    super();
    this.#config = config;
  }

  static async create(config: Config): Promise<WorkerPool> {
    const pool = new WorkerPool(config);
    for (let i = 0; i < config.workers; i++) await pool.#spawn();
    return pool;
  }

  get workers(): readonly types.Worker[] {
    return this.#workers;
  }

  /** Creates a router on the least-loaded live worker; returns the worker too, so owners can tell a worker death from a close. */
  async createRouter(mediaCodecs: types.RouterRtpCodecCapability[]): Promise<{ router: types.Router; worker: types.Worker }> {
    if (this.#closed) throw new InvalidStateError('worker pool closed');
    let best: types.Worker | undefined;
    for (const w of this.#workers) {
      if (w.closed || w.died) continue;
      if (!best || (this.#routerCounts.get(w) ?? 0) < (this.#routerCounts.get(best) ?? 0)) best = w;
    }
    if (!best) throw new InvalidStateError('no live mediasoup worker');
    const router = await best.createRouter({ mediaCodecs });
    const worker = best;
    this.#routerCounts.set(worker, (this.#routerCounts.get(worker) ?? 0) + 1);
    router.observer.once('close', () => this.#routerCounts.set(worker, Math.max(0, (this.#routerCounts.get(worker) ?? 1) - 1)));
    return { router, worker };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#workers) w.close();
    this.#workers.length = 0;
  }

  async #spawn(): Promise<void> {
    const worker = await mediasoup.createWorker({
      logLevel: 'warn',
      rtcMinPort: this.#config.rtcMinPort,
      rtcMaxPort: this.#config.rtcMaxPort,
    });
    // mediasoup closes its workers itself when this process gets SIGINT or SIGTERM, which would
    // cut every room the moment a drain begins. The server closes them (close(), after a drain).
    const onSignal = (worker as unknown as { onSignal?: (signal: string) => void }).onSignal;
    if (typeof onSignal === 'function') {
      process.removeListener('SIGTERM', onSignal);
      process.removeListener('SIGINT', onSignal);
    }
    this.#workers.push(worker);
    this.#routerCounts.set(worker, 0);
    log.info('mediasoup worker started', { pid: worker.pid });
    worker.on('died', (error) => {
      log.error('mediasoup worker died', { pid: worker.pid, err: error });
      const i = this.#workers.indexOf(worker);
      if (i >= 0) this.#workers.splice(i, 1);
      this.#routerCounts.delete(worker);
      this.safeEmit('workerdied', worker, error);
      if (!this.#closed) {
        this.#spawn().catch((err: unknown) => log.error('could not replace dead worker', { err }));
      }
    });
  }
}
