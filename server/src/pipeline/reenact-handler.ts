/**
 * The live reenactment pipeline, as an inference-worker handler: decoded I420
 * frame → track → retarget + render → I420 out. One worker per reenactor
 * process serves every session in it; the face models are loaded once in
 * this worker (LocalRunner) and shared by the sessions' trackers, so nothing
 * here runs on the thread that carries wrtc.
 *
 * Buffers ping-pong: the caller transfers its input frame in and gets it
 * back with the output, and hands back the previous output buffer for reuse,
 * so steady state allocates nothing per frame.
 */
import { fileURLToPath } from 'node:url';
import type { CreateHandler, HandlerResult, InferenceHandler } from '../inference/handler.ts';
import type { HandlerSpec } from '../inference/protocol.ts';
import { LocalRunner } from '../inference/local-runner.ts';
import { faceHandlerSpec } from '../tracking/face-models-handler.ts';
import { Tracker, toFaceTrack } from '../tracking/tracker.ts';
import type { FaceTrack } from '../../../shared/tracking.ts';
import { GeometricRenderer } from '../render/renderer.ts';
import { enrollTarget, referencePicture, type EnrolledTarget } from '../render/target.ts';
import { compositorFor, type Compositor } from '../render/compositor.ts';
import { WatermarkEmbedder } from '../provenance/watermark.ts';
import type { OutputProfile } from '../../../shared/protocol.ts';
import { i420CropScale, i420Size, i420ToRgba, rgbaToI420 } from '../media/convert.ts';
import type { ProviderChoice } from '../inference/ort-session.ts';
import type { BatchOptions } from '../inference/batcher.ts';
import type { Logger } from '../logger.ts';
import { SerialQueues } from '../util/serial.ts';
import { GpuWarp } from '../render/gpu-warp.ts';

export const REENACT_HANDLER = 'reenact';

/** The live `frame` profile is scaled down to this longest side (a phone photo is 4000 px wide). */
export const LIVE_FRAME_MAX_SIDE = 1920;

export interface ReenactHandlerOptions {
  /** ORT intra-op threads for the face models. */
  threads: number;
  modelsDir?: string;
  /** Where enrolled targets are cached (content-hash keyed). */
  cacheDir?: string;
  /** The 478-point attention landmark model instead of the 468-point mesh model. Default false (config trackerModel). */
  attention?: boolean;
  /** Inference provider for the face models (REENACT_PROVIDER). Default 'auto'. */
  provider?: ProviderChoice;
  /** Gathering of face-model requests across sessions (REENACT_BATCH_MAX, REENACT_BATCH_WINDOW_MS). */
  batch?: Partial<BatchOptions>;
  /** The renderer's warp on the GPU (REENACT_GPU_WARP). Default 'auto'. */
  gpuWarp?: GpuWarpChoice;
}

/**
 * Where the renderer warps: 'auto' on the GPU when the face models run on a GPU provider (the
 * CPU when no WebGPU adapter opens, with a warning), 'on' on the GPU or an error, 'off' the CPU.
 */
export type GpuWarpChoice = 'auto' | 'on' | 'off';

export type PipelineRequest =
  | { op: 'open'; sessionId: string; targetPath: string; size: number; watermark?: { payload: number[]; originMs: number } }
  | {
      op: 'frame';
      sessionId: string;
      width: number;
      height: number;
      data: Uint8Array;
      size: number;
      sideBySide: boolean;
      /** Renderer lip zero (RetargetParams.lipZero) for this session, from this frame on. */
      lipZero: boolean;
      /** Output profile (side by side overrides it with the face square). */
      output: OutputProfile;
      timeMs: number;
      /** A previous output buffer handed back for reuse. */
      recycle?: Uint8Array;
      /** Test hooks: sleep this long, or throw, inside the stage. */
      testDelayMs?: number;
      testThrow?: boolean;
    }
  | {
      /** Privacy mode: render from landmarks tracked on the actor's device (no camera frame). */
      op: 'landmarks';
      sessionId: string;
      /** x y z per point in the actor's frame pixels, or null when the actor's tracker found no face. */
      points: Float32Array | null;
      size: number;
      lipZero: boolean;
      output: OutputProfile;
      timeMs: number;
      recycle?: Uint8Array;
      testDelayMs?: number;
      testThrow?: boolean;
    }
  | { op: 'setTarget'; sessionId: string; targetPath: string }
  | { op: 'resetNeutral'; sessionId: string }
  | { op: 'close'; sessionId: string }
  /** Enrolls (and caches) a target ahead of use, so a later switch to it is instant. */
  | { op: 'enroll'; targetPath: string; size: number };

export interface FrameResult {
  /** I420: width × height, (sideBySide ? 2*size : size) × size for the face square, the canvas otherwise. */
  data: Uint8Array;
  width: number;
  height: number;
  /** The input buffer (frame, or landmark points), handed back. */
  input: Uint8Array | Float32Array | null;
  face: boolean;
  timings: Record<string, number>;
  /** Requests in the landmark-model call that served this frame (batched across sessions); 0 when none ran. */
  batch?: number;
}

export function reenactHandlerSpec(options: ReenactHandlerOptions): HandlerSpec {
  return { name: REENACT_HANDLER, module: fileURLToPath(import.meta.url), options };
}

interface PipelineSession {
  tracker: Tracker;
  targetPath: string;
  /** Renderers by output size (degrade switches size), each enrolled on the current target. */
  renderers: Map<number, GeometricRenderer>;
  rgbaIn: Uint8Array;
  rgbaOut: Uint8Array;
  spare: Uint8Array[];
  /** Bumps on target switch so a renderer enrolled on an old target is re-enrolled. */
  targetGen: number;
  /** Marks every output frame (provenance), or null. */
  watermark: WatermarkEmbedder | null;
  enrolledGen: Map<number, number>;
}

class ReenactHandler implements InferenceHandler {
  readonly #opts: ReenactHandlerOptions;
  readonly #models: LocalRunner;
  readonly #enrollTracker: Tracker;
  readonly #log: Logger;
  readonly #sessions = new Map<string, PipelineSession>();
  readonly #targets = new Map<string, EnrolledTarget>();
  /** Paste-back canvases by profile and target path (the layout does not depend on the render size). */
  readonly #compositors = new Map<string, Compositor>();
  /**
   * When the face models gather batches, requests from several sessions run at once: each
   * session's requests stay in order, and enrollment (one shared tracker) runs one at a time.
   */
  readonly concurrent: boolean;
  readonly #serial = new SerialQueues<string>();

  readonly #gpuWarp: GpuWarp | null;

  constructor(opts: ReenactHandlerOptions, models: LocalRunner, enrollTracker: Tracker, gpuWarp: GpuWarp | null, log: Logger) {
    this.#opts = opts;
    this.#gpuWarp = gpuWarp;
    this.#models = models;
    this.#enrollTracker = enrollTracker;
    this.#log = log;
    this.concurrent = Number(models.info['face']?.['maxBatch'] ?? 1) > 1;
  }

  info(): Record<string, string | number | boolean> {
    return { ...(this.#models.info['face'] ?? {}), sessions: this.#sessions.size, warp: this.#gpuWarp ? 'gpu' : 'cpu' };
  }

  run(payload: unknown): Promise<HandlerResult> {
    const req = payload as PipelineRequest;
    if (!this.concurrent) return this.#run(req);
    return 'sessionId' in req ? this.#serial.run(`session:${req.sessionId}`, () => this.#run(req)) : this.#run(req);
  }

  async #run(req: PipelineRequest): Promise<HandlerResult> {
    switch (req.op) {
      case 'open':
        await this.#open(req.sessionId, req.targetPath, req.size, req.watermark);
        return { payload: {} };
      case 'frame':
        return this.#frame(req);
      case 'landmarks':
        return this.#landmarks(req);
      case 'setTarget': {
        const s = this.#session(req.sessionId);
        // Enroll before switching, so a bad target leaves the session on the old one.
        await this.#target(req.targetPath, [...s.renderers.keys()][0] ?? 256);
        s.targetPath = req.targetPath;
        s.targetGen++;
        return { payload: {} };
      }
      case 'resetNeutral':
        for (const r of this.#session(req.sessionId).renderers.values()) r.resetNeutral();
        return { payload: {} };
      case 'enroll':
        await this.#target(req.targetPath, req.size);
        return { payload: {} };
      case 'close': {
        const s = this.#sessions.get(req.sessionId);
        this.#sessions.delete(req.sessionId);
        if (s) {
          await s.tracker.close();
          for (const r of s.renderers.values()) r.close();
        }
        return { payload: {} };
      }
      default: {
        const never: never = req;
        throw new TypeError(`unknown pipeline op ${String((never as { op: unknown }).op)}`);
      }
    }
  }

  async close(): Promise<void> {
    for (const id of [...this.#sessions.keys()]) await this.#run({ op: 'close', sessionId: id });
    await this.#enrollTracker.close();
    await this.#models.close();
    this.#gpuWarp?.close();
  }

  async #open(sessionId: string, targetPath: string, size: number, watermark?: { payload: number[]; originMs: number }): Promise<void> {
    if (this.#sessions.has(sessionId)) await this.#run({ op: 'close', sessionId });
    const tracker = await Tracker.create({ runner: this.#models, modelsDir: this.#opts.modelsDir, logger: this.#log, attention: this.#opts.attention ?? false });
    const session: PipelineSession = {
      tracker,
      targetPath,
      renderers: new Map(),
      rgbaIn: new Uint8Array(0),
      rgbaOut: new Uint8Array(0),
      spare: [],
      targetGen: 0,
      enrolledGen: new Map(),
      watermark: watermark ? new WatermarkEmbedder(Uint8Array.from(watermark.payload), watermark.originMs) : null,
    };
    try {
      await this.#renderer(session, size);
    } catch (err) {
      await tracker.close();
      throw err;
    }
    this.#sessions.set(sessionId, session);
  }

  async #target(path: string, size: number): Promise<EnrolledTarget> {
    const key = `${size}:${path}`;
    const hit = this.#targets.get(key);
    if (hit) return hit;
    // One enrollment at a time: they share one tracker (and a second ask for the same target finds the first's).
    if (this.concurrent) return this.#serial.run('enroll', () => this.#enroll(path, size, key));
    return this.#enroll(path, size, key);
  }

  async #enroll(path: string, size: number, key: string): Promise<EnrolledTarget> {
    const hit = this.#targets.get(key);
    if (hit) return hit;
    const t = await enrollTarget(path, this.#enrollTracker, { size, cacheDir: this.#opts.cacheDir, trackerId: this.#opts.attention ? 'attention' : 'mesh' });
    this.#targets.set(key, t);
    return t;
  }

  async #renderer(s: PipelineSession, size: number): Promise<GeometricRenderer> {
    let r = s.renderers.get(size);
    if (!r) {
      r = await GeometricRenderer.create({ size, modelsDir: this.#opts.modelsDir, logger: this.#log });
      r.setGpuWarp(this.#gpuWarp);
      s.renderers.set(size, r);
    }
    if (s.enrolledGen.get(size) !== s.targetGen) {
      await r.enroll(await this.#target(s.targetPath, size));
      s.enrolledGen.set(size, s.targetGen);
    }
    return r;
  }

  #session(id: string): PipelineSession {
    const s = this.#sessions.get(id);
    if (!s) throw new Error(`no pipeline session ${id}`);
    return s;
  }

  async #frame(req: Extract<PipelineRequest, { op: 'frame' }>): Promise<HandlerResult> {
    const t0 = performance.now();
    const s = this.#session(req.sessionId);
    await this.#testHooks(s, req);
    const { width, height, size } = req;
    if (s.rgbaIn.length !== width * height * 4) s.rgbaIn = new Uint8Array(width * height * 4);
    i420ToRgba(req.data, width, height, s.rgbaIn);
    const t1 = performance.now();
    const tracked = await s.tracker.process({ width, height, format: 'rgba', data: s.rgbaIn }, req.timeMs);
    const track = toFaceTrack(tracked);
    const t2 = performance.now();
    const out = await this.#render(s, track, size, req.timeMs, req.sideBySide ? 'sideBySide' : req.output ?? 'face', req.lipZero);
    if (req.sideBySide) i420CropScale(req.data, width, height, out.data, out.width, size, size, 0);
    s.watermark?.mark(out.data, out.width, out.height, req.timeMs);
    const t3 = performance.now();
    const result: FrameResult = {
      data: out.data,
      width: out.width,
      height: out.height,
      input: req.data,
      face: track.faces > 0,
      timings: { convert: t1 - t0 + out.convertMs, track: t2 - t1, render: out.renderMs, pipeline: t3 - t0 },
      batch: tracked.timings.landmarksBatch,
    };
    return { payload: result, transfer: [out.data.buffer as ArrayBuffer, req.data.buffer as ArrayBuffer] };
  }

  async #landmarks(req: Extract<PipelineRequest, { op: 'landmarks' }>): Promise<HandlerResult> {
    const t0 = performance.now();
    const s = this.#session(req.sessionId);
    await this.#testHooks(s, req);
    const track = toFaceTrack(s.tracker.processLandmarks(req.points, req.timeMs));
    const t1 = performance.now();
    // No driving video exists on the server in privacy mode: side by side is not available.
    const out = await this.#render(s, track, req.size, req.timeMs, req.output ?? 'face', req.lipZero);
    s.watermark?.mark(out.data, out.width, out.height, req.timeMs);
    const t2 = performance.now();
    const result: FrameResult = {
      data: out.data,
      width: out.width,
      height: out.height,
      input: req.points,
      face: track.faces > 0,
      timings: { convert: out.convertMs, track: t1 - t0, render: out.renderMs, pipeline: t2 - t0 },
    };
    const transfer = [out.data.buffer as ArrayBuffer];
    if (req.points) transfer.push(req.points.buffer as ArrayBuffer);
    return { payload: result, transfer };
  }

  async #testHooks(s: PipelineSession, req: { recycle?: Uint8Array; testDelayMs?: number; testThrow?: boolean }): Promise<void> {
    if (req.recycle) s.spare.push(req.recycle);
    if (req.testDelayMs) await new Promise((r) => setTimeout(r, req.testDelayMs));
    if (req.testThrow) throw new Error('injected stage failure (test hook)');
  }

  /**
   * Renders a track at `size` into a (recycled) I420 buffer of the output's size: the face square
   * (with 'sideBySide' twice as wide, the left half left for the caller) or the profile's canvas.
   */
  async #render(s: PipelineSession, track: FaceTrack, size: number, timeMs: number, output: OutputProfile | 'sideBySide', lipZero: boolean): Promise<{ data: Uint8Array; width: number; height: number; renderMs: number; convertMs: number }> {
    const t0 = performance.now();
    const renderer = await this.#renderer(s, size);
    const canvas = output === 'sideBySide' || output === 'face' ? null : await this.#compositor(s.targetPath, output, renderer);
    if (renderer.lipZero !== lipZero) renderer.setLipZero(lipZero);
    if (s.rgbaOut.length !== size * size * 4) s.rgbaOut = new Uint8Array(size * size * 4);
    await renderer.render(track, s.rgbaOut, timeMs);
    const t1 = performance.now();
    const outW = canvas ? canvas.width : output === 'sideBySide' ? size * 2 : size;
    const outH = canvas ? canvas.height : size;
    const bytes = i420Size(outW, outH);
    let out = s.spare.pop();
    while (out && out.length !== bytes) out = s.spare.pop();
    out ??= new Uint8Array(bytes);
    s.spare.length = Math.min(s.spare.length, 2);
    if (canvas) canvas.compose(s.rgbaOut, size, out);
    else rgbaToI420(s.rgbaOut, size, size, out, outW, size, output === 'sideBySide' ? size : 0);
    return { data: out, width: outW, height: outH, renderMs: t1 - t0, convertMs: performance.now() - t1 };
  }

  /** The profile's canvas over the target's whole picture, built once per target and profile. */
  async #compositor(targetPath: string, output: Exclude<OutputProfile, 'face'>, renderer: GeometricRenderer): Promise<Compositor> {
    const key = `${output}:${targetPath}`;
    let c = this.#compositors.get(key);
    if (!c) {
      const target = renderer.target;
      const picture = await referencePicture(targetPath, target);
      c = compositorFor(picture, target, output, LIVE_FRAME_MAX_SIDE)!;
      this.#compositors.set(key, c);
    }
    return c;
  }
}

/** The GPU warp the choice asks for: null on the CPU; 'on' without an adapter is E_PROVIDER_UNAVAILABLE. */
async function openGpuWarp(choice: GpuWarpChoice, provider: string, log: Logger): Promise<GpuWarp | null> {
  if (choice === 'off' || (choice === 'auto' && provider === 'cpu')) return null;
  try {
    const w = await GpuWarp.create();
    log.info('the warp runs on the GPU', { adapter: w.adapter });
    return w;
  } catch (err) {
    if (choice === 'on' || provider === 'webgpu') throw err;
    log.warn('no WebGPU adapter for the warp; it runs on the CPU', { err: err instanceof Error ? err.message : String(err) });
    return null;
  }
}

export const createHandler: CreateHandler = async (options: unknown, ctx) => {
  const opts = options as ReenactHandlerOptions;
  const attention = opts.attention ?? false;
  const models = await LocalRunner.create([faceHandlerSpec({ threads: opts.threads, modelsDir: opts.modelsDir, attention, provider: opts.provider ?? 'auto', batch: opts.batch })], ctx.logger);
  try {
    const enrollTracker = await Tracker.create({ runner: models, modelsDir: opts.modelsDir, logger: ctx.logger, filter: false, attention });
    const gpuWarp = await openGpuWarp(opts.gpuWarp ?? 'auto', String(models.info['face']?.['provider'] ?? 'cpu'), ctx.logger);
    return new ReenactHandler(opts, models, enrollTracker, gpuWarp, ctx.logger);
  } catch (err) {
    await models.close();
    throw err;
  }
};
