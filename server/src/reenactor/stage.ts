/**
 * The processing-stage seam: frame in, frame out, with timing. The live
 * pipeline (tracker + renderer) plugs in here; the passthrough stage is the
 * default and the fallback.
 */
import { stampBlockSize } from '../../../shared/stamp.ts';
import type { TrackMessage } from '../../../shared/track-wire.ts';
import type { SessionOptions } from '../../../shared/protocol.ts';
import { i420Size } from '../media/convert.ts';
import { drawLandmarkPlot, plotSize } from '../pipeline/landmark-plot.ts';

export interface I420 {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface FrameMeta {
  /** Sequence number of the frame as received by the session. */
  seq: number;
  /** When the frame arrived from the decoder, performance.now() ms. */
  arrivalMs: number;
}

export interface StageOutput {
  frame: I420;
  /** Per-step timings in ms, e.g. { track: 3.1, render: 7.9 }. */
  timings: Record<string, number>;
  /** Set when the stage substituted passthrough video (e.g. after an error). */
  notice?: string;
}

export type DropReason = 'superseded' | 'stale' | 'skipped' | 'error';

/** A stage either outputs a frame or says why it dropped this one. */
export type StageResult = StageOutput | { dropped: DropReason };

/** Session controls a stage may honour. */
export type StageControl =
  | { type: 'setTarget'; targetId: string; targetPath: string }
  | { type: 'resetNeutral' }
  | ({ type: 'setOptions' } & SessionOptions);

export interface StageStatus {
  degradeLevel: number;
  face: boolean;
  notice?: string;
  targetId: string;
}

export interface Stage {
  readonly name: string;
  process(frame: I420, meta: FrameMeta): Promise<StageResult>;
  /** Privacy mode: one frame's landmarks from the actor's device instead of a camera frame. */
  processTrack(track: TrackMessage, meta: FrameMeta): Promise<StageResult>;
  control(c: StageControl): Promise<void>;
  readonly status: StageStatus;
  close(): void;
}

/**
 * Copies the input to the output and draws a visible counter of the frames it
 * has output (a 16-bit bar in the bottom-right corner), so a person can see
 * that frames are flowing through the stage and not a frozen picture.
 */
export class PassthroughStage implements Stage {
  readonly name = 'passthrough';
  #out: Uint8Array = new Uint8Array(0);
  #count = 0;

  readonly status: StageStatus = { degradeLevel: 0, face: false, targetId: 'none' };

  control(_c: StageControl): Promise<void> {
    return Promise.resolve();
  }

  process(frame: I420, _meta: FrameMeta): Promise<StageResult> {
    const t0 = performance.now();
    if (this.#out.length !== frame.data.length) this.#out = new Uint8Array(frame.data.length);
    this.#out.set(frame.data);
    drawCounter(this.#out, frame.width, frame.height, ++this.#count);
    return Promise.resolve({ frame: { width: frame.width, height: frame.height, data: this.#out }, timings: { passthrough: performance.now() - t0 } });
  }

  /** Privacy mode has no video to pass through: the stage shows the received landmarks as dots. */
  processTrack(track: TrackMessage, _meta: FrameMeta): Promise<StageResult> {
    const t0 = performance.now();
    const { width, height } = plotSize(track.width, track.height);
    if (this.#out.length !== i420Size(width, height)) this.#out = new Uint8Array(i420Size(width, height));
    drawLandmarkPlot(this.#out, width, height, track.points, track.width, track.height);
    drawCounter(this.#out, width, height, ++this.#count);
    this.status.face = track.points !== null;
    return Promise.resolve({ frame: { width, height, data: this.#out }, timings: { passthrough: performance.now() - t0 } });
  }

  close(): void {}
}

/** Draws `n` as 16 black/white cells along the bottom-right of the luma plane. */
export function drawCounter(y: Uint8Array, width: number, height: number, n: number): void {
  const b = Math.max(2, stampBlockSize(width) >> 1);
  const x0 = width - 16 * b;
  const y0 = height - b;
  if (x0 < 0 || y0 < 0) return;
  for (let i = 0; i < 16; i++) {
    const v = (n >>> (15 - i)) & 1 ? 235 : 16;
    for (let row = y0; row < height; row++) y.fill(v, row * width + x0 + i * b, row * width + x0 + (i + 1) * b);
  }
}
