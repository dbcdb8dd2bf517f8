/**
 * The reenactment stage on the reenactor's main thread: it only moves buffers.
 * Each frame goes to the pipeline worker (track → retarget → render) under a
 * per-frame budget: frames already older than the budget are dropped before
 * any work, a session that keeps missing the budget degrades on purpose, and
 * a failing pipeline falls back to passthrough video with an on-screen notice
 * until it recovers.
 */
import type { Logger } from '../logger.ts';
import type { InferenceRunner } from '../inference/runner.ts';
import { i420Cover, i420Size } from '../media/convert.ts';
import type { FrameMeta, I420, Stage, StageControl, StageResult, StageStatus } from '../reenactor/stage.ts';
import type { TrackMessage } from '../../../shared/track-wire.ts';
import type { OutputProfile } from '../../../shared/protocol.ts';
import { DegradeController } from './degrade.ts';
import { drawLandmarkPlot } from './landmark-plot.ts';
import { drawNotice } from './notice.ts';
import { REENACT_HANDLER, type FrameResult, type PipelineRequest } from './reenact-handler.ts';

export interface ReenactStageOptions {
  runner: InferenceRunner;
  sessionId: string;
  targetId: string;
  targetPath: string;
  /** Render size at degrade level 0; level ≥ 1 uses 3/4 of it. */
  renderSize: number;
  budgetMs: number;
  sideBySide: boolean;
  /** Renderer lip zero (SessionOptions.lipZero); setOptions switches it. */
  lipZero: boolean;
  /** Output profile (SessionOptions.output); setOptions switches it. Side by side shows the face square. */
  output: OutputProfile;
  /** Provenance payload bits to mark every synthesized frame with, or null. */
  watermark: number[] | null;
  log: Logger;
  /** Test hooks: slow the stage by delayMs for its first forMs; make it throw during [throwFromMs, throwToMs). */
  testHooks?: { delayMs?: number; delayForMs?: number; throwFromMs?: number; throwToMs?: number };
}

/**
 * Render size at degrade level ≥ 1: three quarters of the full size, on a 16 px grid. Targets are
 * enrolled at both sizes ahead of use (prewarm, uploads), so degrading never waits on an enrollment.
 */
export function degradedRenderSize(full: number): number {
  return Math.max(128, Math.round((full * 3) / 4 / 16) * 16);
}

export class ReenactStage implements Stage {
  readonly name = 'reenact';
  readonly #opts: ReenactStageOptions;
  readonly #runner: InferenceRunner;
  readonly #degrade: DegradeController;
  readonly #startedAt = performance.now();
  readonly #spareInputs: Uint8Array[] = [];
  readonly #sparePoints: Float32Array[] = [];
  #recycle: Uint8Array | undefined;
  #fallback = new Uint8Array(0);
  #sideBySide: boolean;
  #lipZero: boolean;
  #output: OutputProfile;
  /** The last output frame's size: fallback frames keep it, so viewers' layouts do not jump. */
  #outW = 0;
  #outH = 0;
  #opened = true;
  #failures = 0;
  #closed = false;
  readonly status: StageStatus;

  private constructor(opts: ReenactStageOptions) {
    this.#opts = opts;
    this.#runner = opts.runner;
    this.#degrade = new DegradeController({ budgetMs: opts.budgetMs });
    this.#sideBySide = opts.sideBySide;
    this.#lipZero = opts.lipZero;
    this.#output = opts.output;
    this.status = { degradeLevel: 0, face: false, targetId: opts.targetId };
  }

  static async create(opts: ReenactStageOptions): Promise<ReenactStage> {
    const stage = new ReenactStage(opts);
    await opts.runner.run(REENACT_HANDLER, stage.#openRequest(opts.renderSize));
    return stage;
  }

  /** The worker's open request; the watermark's chips count from this stage's start, on this thread's clock (frames' timeMs). */
  #openRequest(size: number): PipelineRequest {
    const o = this.#opts;
    return { op: 'open', sessionId: o.sessionId, targetPath: o.targetPath, size, ...(o.watermark ? { watermark: { payload: o.watermark, originMs: this.#startedAt } } : {}) };
  }

  get renderSize(): number {
    return this.#degrade.level >= 1 ? degradedRenderSize(this.#opts.renderSize) : this.#opts.renderSize;
  }

  async process(frame: I420, meta: FrameMeta): Promise<StageResult> {
    const skip = this.#admit(meta);
    if (skip) return skip;
    const input = this.#takeBuffer(this.#spareInputs, frame.data.length, Uint8Array);
    input.set(frame.data);
    const req: PipelineRequest = {
      op: 'frame',
      sessionId: this.#opts.sessionId,
      width: frame.width,
      height: frame.height,
      data: input,
      size: this.renderSize,
      sideBySide: this.#sideBySide,
      lipZero: this.#lipZero,
      output: this.#output,
      timeMs: meta.arrivalMs,
      recycle: this.#recycle,
      ...this.#hooks(),
    };
    return this.#run(req, [input.buffer as ArrayBuffer], meta, (err) => this.#fallbackFrame(frame, meta, err));
  }

  async processTrack(track: TrackMessage, meta: FrameMeta): Promise<StageResult> {
    const skip = this.#admit(meta);
    if (skip) return skip;
    // The points travel to the worker and come back with the result, into a small pool.
    let points: Float32Array | null = null;
    if (track.points) {
      points = this.#takeBuffer(this.#sparePoints, track.points.length, Float32Array);
      points.set(track.points);
    }
    const req: PipelineRequest = {
      op: 'landmarks',
      sessionId: this.#opts.sessionId,
      points,
      size: this.renderSize,
      lipZero: this.#lipZero,
      output: this.#output,
      timeMs: meta.arrivalMs,
      recycle: this.#recycle,
      ...this.#hooks(),
    };
    return this.#run(req, points ? [points.buffer as ArrayBuffer] : [], meta, (err) => this.#fallbackPlot(track, meta, err));
  }

  /** Drops a frame that waited too long, or that degrade level 2 skips; undefined admits it. */
  #admit(meta: FrameMeta): StageResult | undefined {
    // The slot holds only the newest frame, so a wait of about one processing time is normal;
    // a frame that has waited twice the budget (the stage stalled) is not worth rendering.
    if (performance.now() - meta.arrivalMs > 2 * this.#opts.budgetMs) return { dropped: 'stale' };
    if (this.#degrade.level >= 2 && meta.seq % 2 === 1) return { dropped: 'skipped' };
    return undefined;
  }

  #hooks(): { testDelayMs?: number; testThrow?: boolean } {
    const hooks = this.#opts.testHooks;
    if (!hooks) return {};
    const elapsed = performance.now() - this.#startedAt;
    return {
      testDelayMs: hooks.delayMs && elapsed < (hooks.delayForMs ?? Infinity) ? hooks.delayMs : undefined,
      testThrow: hooks.throwFromMs !== undefined && elapsed >= hooks.throwFromMs && elapsed < (hooks.throwToMs ?? Infinity),
    };
  }

  async #run(req: PipelineRequest, transfer: ArrayBuffer[], meta: FrameMeta, fallback: (err: unknown) => StageResult): Promise<StageResult> {
    if (this.#recycle) transfer.push(this.#recycle.buffer as ArrayBuffer);
    this.#recycle = undefined;
    try {
      if (!this.#opened) await this.#reopen();
      const res = await this.#runner.run<FrameResult>(REENACT_HANDLER, req, transfer);
      if (res.input instanceof Uint8Array) this.#spareInputs.push(res.input);
      else if (res.input) this.#sparePoints.push(res.input);
      this.#recycle = res.data;
      this.#failures = 0;
      this.status.notice = undefined;
      this.status.face = res.face;
      this.#recordLatency(meta);
      this.#outW = res.width;
      this.#outH = res.height;
      return { frame: { width: res.width, height: res.height, data: res.data }, timings: res.timings };
    } catch (err) {
      return fallback(err);
    }
  }

  async control(c: StageControl): Promise<void> {
    switch (c.type) {
      case 'setTarget':
        await this.#runner.run(REENACT_HANDLER, { op: 'setTarget', sessionId: this.#opts.sessionId, targetPath: c.targetPath } satisfies PipelineRequest);
        this.#opts.targetPath = c.targetPath;
        this.#opts.targetId = c.targetId;
        this.status.targetId = c.targetId;
        break;
      case 'resetNeutral':
        await this.#runner.run(REENACT_HANDLER, { op: 'resetNeutral', sessionId: this.#opts.sessionId } satisfies PipelineRequest);
        break;
      case 'setOptions':
        this.#sideBySide = c.sideBySide;
        this.#lipZero = c.lipZero;
        this.#output = c.output;
        break;
      default: {
        const never: never = c;
        throw new TypeError(`unknown control ${String((never as { type: unknown }).type)}`);
      }
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#runner.run(REENACT_HANDLER, { op: 'close', sessionId: this.#opts.sessionId } satisfies PipelineRequest).catch(() => undefined);
  }

  #takeBuffer<T extends Uint8Array | Float32Array>(spares: T[], length: number, Kind: new (n: number) => T): T {
    let buf = spares.pop();
    while (buf && buf.length !== length) buf = spares.pop();
    return buf ?? new Kind(length);
  }

  #recordLatency(meta: FrameMeta): void {
    const change = this.#degrade.record(performance.now() - meta.arrivalMs);
    if (change) {
      this.status.degradeLevel = change.level;
      this.#opts.log.info('degrade level changed', { level: change.level, reason: change.reason });
    }
  }

  async #reopen(): Promise<void> {
    await this.#runner.run(REENACT_HANDLER, this.#openRequest(this.renderSize));
    this.#opened = true;
  }

  /** Passthrough at the output's size (render size before any output) with a notice; the next frame tries the pipeline again. */
  #fallbackFrame(frame: I420, meta: FrameMeta, err: unknown): StageResult {
    const size = this.#noteFailure(err);
    const [w, h] = this.#outW > 0 ? [this.#outW, this.#outH] : [size, size];
    const bytes = i420Size(w, h);
    if (this.#fallback.length !== bytes) this.#fallback = new Uint8Array(bytes);
    i420Cover(frame.data, frame.width, frame.height, this.#fallback, w, h);
    drawNotice(this.#fallback, w, h, 'STAGE FAILED - PASSTHROUGH');
    this.#recordLatency(meta);
    return { frame: { width: w, height: h, data: this.#fallback }, timings: { fallback: performance.now() - meta.arrivalMs } };
  }

  /** Privacy mode has no video to pass through: the fallback shows the landmarks, with a notice. */
  #fallbackPlot(track: TrackMessage, meta: FrameMeta, err: unknown): StageResult {
    const size = this.#noteFailure(err);
    const bytes = i420Size(size, size);
    if (this.#fallback.length !== bytes) this.#fallback = new Uint8Array(bytes);
    // Square output: plot the frame's centre square.
    const side = Math.min(track.width, track.height);
    const pts = track.points ? track.points.map((v, i) => (i % 3 === 0 ? v - (track.width - side) / 2 : i % 3 === 1 ? v - (track.height - side) / 2 : v)) : null;
    drawLandmarkPlot(this.#fallback, size, size, pts, side, side);
    drawNotice(this.#fallback, size, size, 'STAGE FAILED - LANDMARKS ONLY');
    this.#recordLatency(meta);
    return { frame: { width: size, height: size, data: this.#fallback }, timings: { fallback: performance.now() - meta.arrivalMs } };
  }

  /** Counts and logs a failure, marks the session for reopening when the worker lost it; returns the render size. */
  #noteFailure(err: unknown): number {
    this.#failures++;
    const message = err instanceof Error ? err.message : String(err);
    // A restarted pipeline worker lost this session's state: open it again on the next frame.
    if (/crash|hung|restart|no pipeline session/i.test(message)) this.#opened = false;
    if (this.#failures === 1 || this.#failures % 100 === 0) this.#opts.log.warn('reenact stage failed; showing fallback video', { err: message, failures: this.#failures });
    this.status.notice = 'reenactment failed - fallback video';
    this.status.face = false;
    return this.renderSize;
  }
}
