/**
 * Tracker: per-frame face tracking (MediaPipe face-mesh pipeline) on RGBA frames.
 *
 * Detect (BlazeFace short range) on the first frame and whenever the face is lost; otherwise
 * crop the rotated ROI derived from the previous frame's landmarks and run only the landmark
 * model. The largest detected face is tracked; a detection every detectIntervalMs while
 * tracking keeps the face count fresh. The landmarks are filtered and the head pose fitted
 * (landmark-smoother.ts: by default a One Euro filter on every point, with the lips and lids
 * then taken from the unfiltered frame), and the expression (pose-normalised offsets + named
 * parameters) follows.
 *
 * Models run in an InferenceRunner worker (shared across trackers when passed in; owned and
 * closed with the tracker otherwise). Pre- and post-processing run on the caller's thread in
 * preallocated buffers (≈0.5 ms at 640×480).
 */
import { LANDMARK_COUNT, type FaceTrack } from '../../../shared/tracking.ts';
import { MODELS, type CanonicalMesh } from '../../../models/manifest.ts';
import { rootLogger, type Logger } from '../logger.ts';
import type { RawFrame } from '../media/video-io.ts';
import { InvalidStateError } from '../inference/errors.ts';
import { InferenceRunner } from '../inference/runner.ts';
import type { ModelRunner } from '../inference/local-runner.ts';
import type { ProviderChoice } from '../inference/ort-session.ts';
import { TypedEmitter } from '../util/emitter.ts';
import { decodeDetections, DETECTOR_SIZE, generateAnchors, letterbox, type Detection } from './detector.ts';
import { ExpressionSolver } from './expression.ts';
import { DEFAULT_ATTENTION, FACE_HANDLER, faceHandlerSpec, landmarkModelName, type FaceModelRequest } from './face-models-handler.ts';
import { assembleLandmarks, landmarkCountFor } from './landmark-assembly.ts';
import type { OneEuroParams } from './one-euro.ts';
import { loadCanonicalMesh, poseFromFit } from './pose.ts';
import type { RegionFilterParams } from './regional-filter.ts';
import { DEFAULT_FILTER_MODE, LandmarkSmoother, type FilterMode } from './landmark-smoother.ts';

export { DEFAULT_FILTER_MODE, type FilterMode };
import { letterboxToAffine, projectLandmarks, rectFromDetection, rectFromLandmarks, rectToAffine, warpToTensor, type Rect } from './roi.ts';
import { TrackerError, emptyResult, toFaceTrack, type TrackResult } from './track-result.ts';

export { toFaceTrack, TrackerError, type TrackResult };

const LANDMARK_SIZE = 192;

export interface TrackerOptions {
  /** Shared runner hosting the face handler; when absent the tracker starts and owns one. */
  runner?: ModelRunner;
  /** Handler name inside the runner. Default 'face'. */
  handler?: string;
  /** For an owned runner: ORT intra-op threads (default 1), provider (default 'auto'), models dir. */
  threads?: number;
  provider?: ProviderChoice;
  modelsDir?: string;
  /** 478-point attention model (irises, refined lips and eyes). Must match the runner's handler. Default true (DEFAULT_ATTENTION). */
  attention?: boolean;
  /** Detector score threshold, 0..1. Default 0.5. */
  minDetectionScore?: number;
  /** Landmark-model face-presence threshold under which the face counts as lost. Default 0.5. */
  minPresence?: number;
  /** Re-run the detector this often while tracking to refresh the face count; 0 = never. Default 1000. */
  detectIntervalMs?: number;
  /** One Euro parameters, or false for raw landmarks. */
  filter?: Partial<OneEuroParams> | false;
  /**
   * What the filter smooths: every landmark, then the lips and lids taken unfiltered ('regional',
   * the default: DEFAULT_FILTER_MODE); every landmark coordinate ('landmarks'); or the head's
   * rigid motion only ('rigid': the expression passes unfiltered unless expressionFilter is
   * given). Each measured on the fidelity matrix in docs/rendering.md.
   */
  filterMode?: FilterMode;
  /** 'rigid' mode: One Euro on the canonical-space shape (speeds in face widths per second). */
  expressionFilter?: Partial<OneEuroParams>;
  /**
   * 'regional' mode: every landmark filtered as in 'landmarks', then the lips and lids taken from
   * the unfiltered frame in pose-free space (regional-filter.ts), each region through its own
   * filter (DEFAULT_REGION_FILTERS: none).
   */
  regionFilters?: Partial<RegionFilterParams>;
  logger?: Logger;
}

export type TrackerEvents = {
  faceFound: [{ frame: number; faces: number }];
  faceLost: [{ frame: number }];
  closed: [];
};

export interface TrackerStats {
  frames: number;
  detections: number;
  lostEvents: number;
  framesWithFace: number;
}

function allocRequest(model: 'detector' | 'landmarks', name: keyof typeof MODELS): FaceModelRequest {
  const spec = MODELS[name];
  const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
  return {
    model,
    input: new Float32Array(size(spec.inputs[0]?.shape ?? [])),
    outputs: spec.outputs.map((o) => new Float32Array(size(o.shape))),
  };
}

export class Tracker {
  readonly #runner: ModelRunner;
  readonly #ownsRunner: boolean;
  readonly #handler: string;
  readonly #attention: boolean;
  readonly #minScore: number;
  readonly #minPresence: number;
  readonly #detectIntervalMs: number;
  readonly #logger: Logger;
  readonly #events: TypedEmitter<TrackerEvents>;
  readonly #anchors = generateAnchors();
  readonly #expr: ExpressionSolver;
  /** Filtering and the pose fit (landmark-smoother.ts). */
  readonly #smoother: LandmarkSmoother;
  readonly #count: number;
  // Per-frame buffers, allocated once. Request buffers travel to the worker and back.
  #detReq: FaceModelRequest;
  #lmReq: FaceModelRequest;
  readonly #raw: Float32Array;
  readonly #projected: Float32Array;
  readonly #smoothed: Float32Array;
  readonly #canonical: Float32Array;
  readonly #offsets: Float32Array;
  #roi: Rect | null = null;
  #faces = 0;
  #frame = -1;
  #lastDetectMs = -Infinity;
  #busy = false;
  #closed = false;
  readonly #stats: TrackerStats = { frames: 0, detections: 0, lostEvents: 0, framesWithFace: 0 };

  private constructor(runner: ModelRunner, owns: boolean, mesh: CanonicalMesh, opts: TrackerOptions, logger: Logger) {
    this.#runner = runner;
    this.#ownsRunner = owns;
    this.#handler = opts.handler ?? FACE_HANDLER;
    this.#attention = opts.attention ?? DEFAULT_ATTENTION;
    const minScore = opts.minDetectionScore ?? 0.5;
    this.#minScore = minScore;
    this.#minPresence = opts.minPresence ?? 0.5;
    this.#detectIntervalMs = opts.detectIntervalMs ?? 1000;
    this.#logger = logger;
    this.#events = new TypedEmitter<TrackerEvents>(logger);
    this.#expr = new ExpressionSolver(mesh);
    this.#count = landmarkCountFor(this.#attention);
    this.#smoother = new LandmarkSmoother(mesh, {
      count: this.#count, mode: opts.filterMode, filter: opts.filter, expressionFilter: opts.expressionFilter, regionFilters: opts.regionFilters,
    });
    this.#detReq = allocRequest('detector', 'faceDetector');
    this.#lmReq = allocRequest('landmarks', landmarkModelName(this.#attention));
    this.#raw = new Float32Array(this.#count * 3);
    this.#projected = new Float32Array(this.#count * 3);
    this.#smoothed = new Float32Array(this.#count * 3);
    this.#canonical = new Float32Array(LANDMARK_COUNT * 3);
    this.#offsets = new Float32Array(LANDMARK_COUNT * 3);
  }

  static async create(opts: TrackerOptions = {}): Promise<Tracker> {
    const s = opts.minDetectionScore ?? 0.5;
    const p = opts.minPresence ?? 0.5;
    if (!(s > 0 && s < 1) || !(p > 0 && p < 1)) throw new TypeError('minDetectionScore and minPresence must be in (0, 1)');
    if ((opts.detectIntervalMs ?? 0) < 0) throw new TypeError('detectIntervalMs must be >= 0');
    const logger = (opts.logger ?? rootLogger).child('tracker');
    const mesh = loadCanonicalMesh(opts.modelsDir);
    let runner: ModelRunner | undefined = opts.runner;
    const owns = !runner;
    runner ??= await InferenceRunner.create({
      name: 'tracker',
      handlers: [faceHandlerSpec({ threads: opts.threads ?? 1, provider: opts.provider ?? 'auto', modelsDir: opts.modelsDir, attention: opts.attention ?? DEFAULT_ATTENTION })],
      logger,
    });
    const info = runner.info[opts.handler ?? FACE_HANDLER];
    if (!info) {
      if (owns) await runner.close();
      throw new TypeError(`runner does not host a face handler named ${opts.handler ?? FACE_HANDLER}`);
    }
    if (info['landmarks'] !== landmarkModelName(opts.attention ?? DEFAULT_ATTENTION)) {
      if (owns) await runner.close();
      throw new TypeError(`runner's face handler runs ${String(info['landmarks'])}, tracker expects ${landmarkModelName(opts.attention ?? DEFAULT_ATTENTION)}`);
    }
    logger.debug('tracker ready', { provider: String(info['provider']), threads: Number(info['threads']), landmarks: String(info['landmarks']) });
    return new Tracker(runner, owns, mesh, opts, logger);
  }

  get landmarkCount(): number {
    return this.#count;
  }

  get stats(): Readonly<TrackerStats> {
    return this.#stats;
  }

  get closed(): boolean {
    return this.#closed;
  }

  on<K extends keyof TrackerEvents>(event: K, listener: (...args: TrackerEvents[K]) => void): this {
    this.#events.on(event, listener);
    return this;
  }

  off<K extends keyof TrackerEvents>(event: K, listener: (...args: TrackerEvents[K]) => void): this {
    this.#events.off(event, listener);
    return this;
  }

  /** Forget the tracked face: the next frame runs the detector. */
  reset(): void {
    this.#roi = null;
    this.#faces = 0;
    this.#lastDetectMs = -Infinity;
    this.#smoother.reset();
  }

  /** Tracks one frame and returns the public FaceTrack shape (copies). */
  async track(frame: RawFrame, timeMs: number): Promise<FaceTrack> {
    return toFaceTrack(await this.process(frame, timeMs));
  }

  /**
   * Tracks one frame. The typed arrays in the result are the tracker's own buffers and stay
   * valid until the next call; copy them to keep them. One call at a time (E_TRACKER_BUSY).
   */
  async process(frame: RawFrame, timeMs: number): Promise<TrackResult> {
    if (this.#closed) throw new InvalidStateError('tracker is closed');
    if (this.#busy) throw new TrackerError('E_TRACKER_BUSY', 'process() called while the previous frame is still being tracked');
    if (frame.format !== 'rgba' || frame.width <= 0 || frame.height <= 0 || frame.data.length !== frame.width * frame.height * 4) {
      throw new TypeError('frame must be RGBA with data.length === width * height * 4');
    }
    if (!Number.isFinite(timeMs)) throw new TypeError('timeMs must be a finite number');
    this.#busy = true;
    try {
      return await this.#process(frame, timeMs);
    } catch (err) {
      // After a failed inference the ROI may be stale; start over with a detection.
      this.#roi = null;
      throw err;
    } finally {
      this.#busy = false;
    }
  }

  async #process(frame: RawFrame, timeMs: number): Promise<TrackResult> {
    const started = performance.now();
    const frameNo = ++this.#frame;
    this.#stats.frames++;
    const result = emptyResult(frameNo, timeMs, this.#count);
    const wasTracking = this.#roi !== null;
    let detected = false;
    if (!this.#roi || (this.#detectIntervalMs > 0 && timeMs - this.#lastDetectMs >= this.#detectIntervalMs)) {
      const dets = await this.#detect(frame, timeMs, result);
      detected = true;
      this.#faces = this.#roi ? Math.max(1, dets.length) : dets.length;
      if (!this.#roi && dets[0]) this.#roi = rectFromDetection(dets[0], frame.width, frame.height);
    }
    let presence = this.#roi ? await this.#landmarks(frame, this.#roi, result) : 0;
    if (presence < this.#minPresence && !detected) {
      // Lost while tracking: look for the face again in this very frame.
      this.#roi = null;
      const dets = await this.#detect(frame, timeMs, result);
      this.#faces = dets.length;
      if (dets[0]) {
        this.#roi = rectFromDetection(dets[0], frame.width, frame.height);
        presence = await this.#landmarks(frame, this.#roi, result);
      }
    }
    result.detected = detected || result.timings.detectMs > 0;
    if (!this.#roi || presence < this.#minPresence) {
      if (wasTracking) {
        this.#stats.lostEvents++;
        this.#logger.debug('face lost', { frame: frameNo });
        this.#events.safeEmit('faceLost', { frame: frameNo });
      }
      this.reset();
      result.timings.totalMs = performance.now() - started;
      return result;
    }
    if (!wasTracking) {
      this.#logger.debug('face found', { frame: frameNo, faces: this.#faces });
      this.#events.safeEmit('faceFound', { frame: frameNo, faces: this.#faces });
    }
    this.#stats.framesWithFace++;
    const roi = this.#roi;
    this.#roi = rectFromLandmarks(this.#projected, LANDMARK_COUNT);
    this.#finish(result, roi, presence, timeMs);
    result.timings.totalMs = performance.now() - started;
    return result;
  }

  /**
   * Tracks one frame from landmarks found elsewhere (privacy mode: the actor's browser runs the
   * same face-mesh model and sends its points). Skips the models and runs the rest of the
   * pipeline as for a camera frame: One Euro filter, pose, expression, and the found/lost events.
   * `points` is x y z per landmark in frame pixels, or null when the sender found no face. A
   * 478-point tracker also takes the plain 468-point mesh (a browser's model): the result then has
   * 468 points, so consumers see there are no irises (the renderer places its own and applies the
   * 468-point lid calibration).
   */
  processLandmarks(points: Float32Array | null, timeMs: number, score = 1): TrackResult {
    if (this.#closed) throw new InvalidStateError('tracker is closed');
    if (this.#busy) throw new TrackerError('E_TRACKER_BUSY', 'processLandmarks() called while a frame is being tracked');
    if (!Number.isFinite(timeMs)) throw new TypeError('timeMs must be a finite number');
    const started = performance.now();
    const frameNo = ++this.#frame;
    this.#stats.frames++;
    const given = points ? Math.min(this.#count, Math.floor(points.length / 3)) : this.#count;
    const result = emptyResult(frameNo, timeMs, given);
    const wasTracking = this.#roi !== null;
    if (!points) {
      if (wasTracking) {
        this.#stats.lostEvents++;
        this.#events.safeEmit('faceLost', { frame: frameNo });
      }
      this.reset();
      return result;
    }
    if (given < LANDMARK_COUNT) throw new TypeError(`expected at least ${LANDMARK_COUNT} points, got ${points.length / 3}`);
    for (let i = 0; i < given * 3; i++) {
      const v = points[i]!;
      if (!Number.isFinite(v)) throw new TypeError(`landmark value ${i} is not finite`);
      this.#projected[i] = v;
    }
    if (!wasTracking) this.#events.safeEmit('faceFound', { frame: frameNo, faces: 1 });
    this.#faces = 1;
    this.#stats.framesWithFace++;
    const roi = rectFromLandmarks(this.#projected, LANDMARK_COUNT);
    this.#roi = roi;
    this.#finish(result, roi, score, timeMs);
    result.timings.totalMs = performance.now() - started;
    return result;
  }

  #finish(result: TrackResult, roi: Rect, presence: number, timeMs: number): void {
    const fit = this.#smoother.apply(this.#projected, timeMs, roi.width / 1.5, this.#smoothed, this.#canonical);
    this.#expr.offsets(this.#canonical, this.#offsets);
    result.faces = this.#faces;
    result.score = presence;
    result.landmarks = this.#smoothed;
    result.rawLandmarks = this.#projected;
    result.canonicalLandmarks = this.#canonical;
    result.expressionOffsets = this.#offsets;
    result.pose = poseFromFit(fit);
    result.expression = this.#expr.named(this.#canonical);
    result.roi = roi;
  }

  async #infer(kind: 'detector' | 'landmarks'): Promise<FaceModelRequest> {
    const req = kind === 'detector' ? this.#detReq : this.#lmReq;
    try {
      const back = await this.#runner.run<FaceModelRequest>(this.#handler, req, [req.input.buffer as ArrayBuffer, ...req.outputs.map((o) => o.buffer as ArrayBuffer)]);
      if (kind === 'detector') this.#detReq = back;
      else this.#lmReq = back;
      return back;
    } catch (err) {
      // The buffers were moved to the worker and are gone with the failed request.
      if (kind === 'detector') this.#detReq = allocRequest('detector', 'faceDetector');
      else this.#lmReq = allocRequest('landmarks', landmarkModelName(this.#attention));
      throw err;
    }
  }

  async #detect(frame: RawFrame, timeMs: number, result: TrackResult): Promise<Detection[]> {
    const t0 = performance.now();
    const box = letterbox(frame.width, frame.height);
    warpToTensor(frame, letterboxToAffine(box), DETECTOR_SIZE, this.#detReq.input, -1, 1, 'zero');
    const back = await this.#infer('detector');
    const [regressors, scores] = back.outputs;
    if (!regressors || !scores) throw new TypeError('detector returned no outputs');
    const dets = decodeDetections(regressors, scores, this.#anchors, box, frame.width, frame.height, this.#minScore);
    dets.sort((a, b) => b.width * b.height - a.width * a.height);
    this.#lastDetectMs = timeMs;
    this.#stats.detections++;
    result.timings.detectMs += performance.now() - t0;
    result.timings.detectorModelMs += back.inferMs ?? 0;
    result.timings.inferMs += back.inferMs ?? 0;
    return dets;
  }

  /** Runs the landmark model on a ROI; fills #raw/#projected and returns the presence score. */
  async #landmarks(frame: RawFrame, roi: Rect, result: TrackResult): Promise<number> {
    const t0 = performance.now();
    warpToTensor(frame, rectToAffine(roi, LANDMARK_SIZE), LANDMARK_SIZE, this.#lmReq.input, 0, 1, 'replicate');
    const back = await this.#infer('landmarks');
    const flag = back.outputs[back.outputs.length - 1]?.[0] ?? -100;
    assembleLandmarks(back.outputs, this.#attention, this.#raw);
    projectLandmarks(this.#raw, this.#count, roi, LANDMARK_SIZE, this.#projected);
    result.timings.landmarksMs += performance.now() - t0;
    result.timings.landmarksModelMs += back.inferMs ?? 0;
    result.timings.inferMs += back.inferMs ?? 0;
    result.timings.landmarksBatch = back.batch ?? 1;
    return 1 / (1 + Math.exp(-flag));
  }

  /** Idempotent. Closes the owned runner; a shared runner is left to its owner. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsRunner) await this.#runner.close();
    this.#events.safeEmit('closed');
    this.#events.removeAllListeners();
  }
}
