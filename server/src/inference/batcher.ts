/**
 * Gathers single-image requests for one model into batches. The converted models take a
 * symbolic batch dimension (models/manifest.ts BATCH_DIM), so N requests that arrive within a
 * short window run as one [N, C, H, W] call and their outputs are split back.
 *
 * When a batch runs (one model call at a time; continuous batching):
 * - while a call runs, requests gather; when it ends, everything waiting (up to `maxBatch`)
 *   runs as the next call, so under load the batch grows with the arrivals per call;
 * - when idle, a request runs once the worker has taken every message already queued to it
 *   (the next event-loop check phase), or `windowMs` later when that is set, or at once when
 *   `maxBatch` wait; a lone session never waits for company;
 * - with `maxBatch` 1 every request runs at once (the CPU default).
 *
 * A batch that fails rejects every request in it with the same error; the next batch starts
 * clean. Requests keep their order inside a batch.
 */
import ort from 'onnxruntime-node';
import type { TensorSpec } from '../../../models/manifest.ts';

export interface BatchOptions {
  /** Largest batch; 1 turns gathering off. */
  maxBatch: number;
  /** How long the first request of an idle batcher waits for others, ms; 0: only for messages already queued. */
  windowMs: number;
}

/** What one request learns about the run that served it. */
export interface BatchRun {
  /** Wall time of the model call that served it (the whole batch), ms. */
  inferMs: number;
  /** Requests in that call. */
  batch: number;
  /** Time the request waited for its batch to start, ms. */
  waitMs: number;
}

interface Pending {
  input: Float32Array;
  outputs: Float32Array[];
  arrived: number;
  resolve: (run: BatchRun) => void;
  reject: (err: unknown) => void;
}

export interface BatcherStats {
  batches: number;
  items: number;
  /** Batches by size: sizes[n] counts batches of n requests. */
  sizes: number[];
}

/** Runs a session on a stacked input; what ModelBatcher needs of an ORT session. */
export type BatchRunFn = (feeds: Record<string, ort.Tensor>) => Promise<Record<string, ort.Tensor>>;

export class ModelBatcher {
  readonly #run: BatchRunFn;
  readonly #input: TensorSpec;
  readonly #outputs: readonly TensorSpec[];
  readonly #opts: BatchOptions;
  readonly #inSize: number;
  readonly #outSizes: number[];
  #pending: Pending[] = [];
  /** The stacked input of a batch, reused: one call runs at a time when gathering. */
  #stack = new Float32Array(0);
  /** Cancels the scheduled flush of an idle batcher, when one is scheduled. */
  #cancel: (() => void) | null = null;
  #running = false;
  readonly #stats: BatcherStats;

  constructor(run: BatchRunFn, input: TensorSpec, outputs: readonly TensorSpec[], opts: BatchOptions) {
    if (!Number.isInteger(opts.maxBatch) || opts.maxBatch < 1) throw new TypeError(`maxBatch must be a positive integer, got ${opts.maxBatch}`);
    if (!(opts.windowMs >= 0)) throw new TypeError(`windowMs must be ≥ 0, got ${opts.windowMs}`);
    this.#run = run;
    this.#input = input;
    this.#outputs = outputs;
    this.#opts = opts;
    this.#inSize = itemSize(input.shape);
    this.#outSizes = outputs.map((o) => itemSize(o.shape));
    this.#stats = { batches: 0, items: 0, sizes: new Array<number>(opts.maxBatch + 1).fill(0) };
  }

  get options(): BatchOptions {
    return { ...this.#opts };
  }

  get stats(): BatcherStats {
    return { ...this.#stats, sizes: [...this.#stats.sizes] };
  }

  /** Queues one image; fills `outputs` (one buffer per model output, manifest order) when its batch has run. */
  submit(input: Float32Array, outputs: Float32Array[]): Promise<BatchRun> {
    if (input.length !== this.#inSize) return Promise.reject(new TypeError(`input has ${input.length} values, expected ${this.#inSize}`));
    for (let i = 0; i < this.#outSizes.length; i++) {
      if (outputs[i]?.length !== this.#outSizes[i]) return Promise.reject(new TypeError(`output buffer ${i} missing or of the wrong size`));
    }
    return new Promise<BatchRun>((resolve, reject) => {
      this.#pending.push({ input, outputs, arrived: performance.now(), resolve, reject });
      if (this.#running) return; // the running call's end starts the next batch
      if (this.#opts.maxBatch === 1 || this.#pending.length >= this.#opts.maxBatch) this.#flush();
      else if (!this.#cancel) this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#opts.windowMs > 0) {
      const t = setTimeout(() => this.#flush(), this.#opts.windowMs);
      this.#cancel = () => clearTimeout(t);
    } else {
      const t = setImmediate(() => this.#flush());
      this.#cancel = () => clearImmediate(t);
    }
  }

  #flush(): void {
    this.#cancel?.();
    this.#cancel = null;
    if (this.#running || this.#pending.length === 0) return;
    const batch = this.#pending.splice(0, this.#opts.maxBatch);
    // With maxBatch 1 (no gathering) requests are not held behind one another.
    if (this.#opts.maxBatch > 1) this.#running = true;
    void this.#execute(batch).finally(() => {
      if (this.#opts.maxBatch === 1) return;
      this.#running = false;
      this.#flush();
    });
  }

  async #execute(batch: Pending[]): Promise<void> {
    const n = batch.length;
    const started = performance.now();
    try {
      let stacked: Float32Array;
      if (n === 1) stacked = batch[0]!.input;
      else {
        if (this.#stack.length < this.#inSize * n) this.#stack = new Float32Array(this.#inSize * this.#opts.maxBatch);
        stacked = this.#stack.subarray(0, this.#inSize * n);
        batch.forEach((p, i) => stacked.set(p.input, i * this.#inSize));
      }
      const result = await this.#run({ [this.#input.name]: new ort.Tensor('float32', stacked, [n, ...this.#input.shape.slice(1)]) });
      this.#outputs.forEach((o, k) => {
        const src = result[o.name]?.data;
        const per = this.#outSizes[k]!;
        if (!(src instanceof Float32Array) || src.length !== per * n) throw new TypeError(`output ${o.name}: expected ${per * n} float32 values`);
        batch.forEach((p, i) => p.outputs[k]!.set(src.subarray(i * per, (i + 1) * per)));
      });
      const inferMs = performance.now() - started;
      this.#stats.batches++;
      this.#stats.items += n;
      this.#stats.sizes[n] = (this.#stats.sizes[n] ?? 0) + 1;
      for (const p of batch) p.resolve({ inferMs, batch: n, waitMs: started - p.arrived });
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}

function itemSize(shape: readonly number[]): number {
  return shape.slice(1).reduce((a, b) => a * b, 1);
}
