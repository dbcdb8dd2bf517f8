/**
 * Inference-worker handler for the face tracker's models (detector + landmarks). Loaded by an
 * InferenceRunner under the name FACE_HANDLER. Each request carries the caller's preallocated
 * input and output buffers; they are filled and moved back, so nothing is allocated or copied
 * across threads per frame except the ORT output tensors inside the worker.
 */
import { fileURLToPath } from 'node:url';
import { MODELS, type ModelName } from '../../../models/manifest.ts';
import { ModelBatcher, type BatchOptions, type BatcherStats } from '../inference/batcher.ts';
import type { CreateHandler, HandlerContext, HandlerResult, InferenceHandler } from '../inference/handler.ts';
import { loadModel, type LoadedModel, type ProviderChoice } from '../inference/ort-session.ts';
import type { HandlerSpec } from '../inference/protocol.ts';

export const FACE_HANDLER = 'face';

export type FaceModelKind = 'detector' | 'landmarks';

export interface FaceHandlerOptions {
  threads?: number;
  provider?: ProviderChoice;
  modelsDir?: string;
  /** Use the 478-point attention landmark model (irises) instead of the 468-point one. */
  attention?: boolean;
  /**
   * Gathering of requests into batches (inference/batcher.ts). Default: none on the CPU
   * provider (a batch there costs about its items' sum), up to DEFAULT_GPU_BATCH on a GPU
   * provider, gathered while the previous call runs (no added wait by default).
   */
  batch?: Partial<BatchOptions>;
}

export const DEFAULT_GPU_BATCH = 16;
export const DEFAULT_BATCH_WINDOW_MS = 0;

export interface FaceModelRequest {
  model: FaceModelKind;
  input: Float32Array;
  /** One preallocated buffer per model output, in manifest order. */
  outputs: Float32Array[];
  /** Worker-side run time of the model call that served it, filled in by the handler. */
  inferMs?: number;
  /** Requests in that call, and how long this one waited for it to start (ms); filled in. */
  batch?: number;
  waitMs?: number;
}

/**
 * The tracker's landmark model when none is named: the attention model (478 points: refined lips
 * and eyes, irises). Its blinks read fully shut where the 468-point model reads half closed, and it
 * gives gaze; it costs about 1.3× the 468-point tracker's time (docs/tracking.md).
 */
export const DEFAULT_ATTENTION = true;

export function landmarkModelName(attention: boolean): ModelName {
  return attention ? 'faceLandmarksAttention' : 'faceLandmarks';
}

/** The spec that registers this handler with an InferenceRunner. */
export function faceHandlerSpec(options: FaceHandlerOptions = {}, name = FACE_HANDLER): HandlerSpec {
  return { name, module: fileURLToPath(import.meta.url), options };
}

/** The batch options a handler ends up with, for the provider its models loaded on. */
export function resolveBatch(provider: LoadedModel['provider'], batch: Partial<BatchOptions> = {}): BatchOptions {
  return { maxBatch: batch.maxBatch ?? (provider === 'cpu' ? 1 : DEFAULT_GPU_BATCH), windowMs: batch.windowMs ?? DEFAULT_BATCH_WINDOW_MS };
}

class FaceModelsHandler implements InferenceHandler {
  readonly #models: Record<FaceModelKind, LoadedModel>;
  readonly #batchers: Record<FaceModelKind, ModelBatcher>;
  readonly #batch: BatchOptions;

  constructor(models: Record<FaceModelKind, LoadedModel>, batch: BatchOptions) {
    this.#models = models;
    this.#batch = batch;
    const batcher = (m: LoadedModel): ModelBatcher => {
      const spec = MODELS[m.name];
      if (!spec.inputs[0]) throw new TypeError(`${m.name} has no input`);
      return new ModelBatcher((feeds) => m.session.run(feeds), spec.inputs[0], spec.outputs, batch);
    };
    this.#batchers = { detector: batcher(models.detector), landmarks: batcher(models.landmarks) };
  }

  /** Requests from several callers may be in flight at once when they can be gathered. */
  get concurrent(): boolean {
    return this.#batch.maxBatch > 1;
  }

  get batchStats(): Record<FaceModelKind, BatcherStats> {
    return { detector: this.#batchers.detector.stats, landmarks: this.#batchers.landmarks.stats };
  }

  async run(payload: unknown): Promise<HandlerResult> {
    const req = payload as FaceModelRequest;
    const b = this.#batchers[req.model];
    if (!b) throw new TypeError(`unknown face model ${String(req.model)}`);
    if (!(req.input instanceof Float32Array) || !Array.isArray(req.outputs)) throw new TypeError('input must be a Float32Array and outputs an array of them');
    const served = await b.submit(req.input, req.outputs);
    req.inferMs = served.inferMs;
    req.batch = served.batch;
    req.waitMs = served.waitMs;
    return { payload: req, transfer: [req.input.buffer as ArrayBuffer, ...req.outputs.map((b) => b.buffer as ArrayBuffer)] };
  }

  info(): Record<string, string | number> {
    return {
      provider: this.#models.landmarks.provider,
      maxBatch: this.#batch.maxBatch,
      batchWindowMs: this.#batch.windowMs,
      threads: this.#models.landmarks.threads,
      detector: this.#models.detector.name,
      landmarks: this.#models.landmarks.name,
    };
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.#models).map((m) => m.session.release()));
  }
}

export const createHandler: CreateHandler = async (options: unknown, ctx: HandlerContext) => {
  const o = (options ?? {}) as FaceHandlerOptions;
  const common = { threads: o.threads ?? 1, provider: o.provider ?? 'auto', modelsDir: o.modelsDir, logger: ctx.logger };
  const detector = await loadModel('faceDetector', common);
  const landmarks = await loadModel(landmarkModelName(o.attention ?? DEFAULT_ATTENTION), common);
  return new FaceModelsHandler({ detector, landmarks }, resolveBatch(landmarks.provider, o.batch));
};
