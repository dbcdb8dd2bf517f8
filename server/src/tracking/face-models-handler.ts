/**
 * Inference-worker handler for the face tracker's models (detector + landmarks). Loaded by an
 * InferenceRunner under the name FACE_HANDLER. Each request carries the caller's preallocated
 * input and output buffers; they are filled and moved back, so nothing is allocated or copied
 * across threads per frame except the ORT output tensors inside the worker.
 */
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { MODELS, type ModelName } from '../../../models/manifest.ts';
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
}

export interface FaceModelRequest {
  model: FaceModelKind;
  input: Float32Array;
  /** One preallocated buffer per model output, in manifest order. */
  outputs: Float32Array[];
  /** Worker-side run time, filled in by the handler. */
  inferMs?: number;
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

class FaceModelsHandler implements InferenceHandler {
  readonly #models: Record<FaceModelKind, LoadedModel>;

  constructor(models: Record<FaceModelKind, LoadedModel>) {
    this.#models = models;
  }

  async run(payload: unknown): Promise<HandlerResult> {
    const req = payload as FaceModelRequest;
    const m = this.#models[req.model];
    if (!m) throw new TypeError(`unknown face model ${String(req.model)}`);
    const spec = MODELS[m.name];
    const inSpec = spec.inputs[0];
    if (!inSpec || !(req.input instanceof Float32Array)) throw new TypeError('input must be a Float32Array');
    const started = performance.now();
    const result = await m.session.run({ [inSpec.name]: new ort.Tensor('float32', req.input, inSpec.shape) });
    spec.outputs.forEach((o, i) => {
      const dst = req.outputs[i];
      const src = result[o.name]?.data;
      if (!dst || !(src instanceof Float32Array) || dst.length !== src.length) throw new TypeError(`output ${o.name}: buffer ${i} missing or of the wrong size`);
      dst.set(src);
    });
    req.inferMs = performance.now() - started;
    return { payload: req, transfer: [req.input.buffer as ArrayBuffer, ...req.outputs.map((b) => b.buffer as ArrayBuffer)] };
  }

  info(): Record<string, string | number> {
    return {
      provider: this.#models.landmarks.provider,
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
  return new FaceModelsHandler({ detector, landmarks });
};
