/**
 * Privacy mode, browser side: tracks the face in the camera preview and sends
 * only the landmarks, one binary message per tracked frame
 * (shared/track-wire.ts), over an unordered, no-retransmit data channel to
 * the server. No camera video leaves the page.
 *
 * The FaceLandmarker runs in a worker (track-worker.ts), so tracking never
 * blocks the page. One frame is in flight at a time: camera frames that
 * arrive meanwhile are skipped (latest wins), and so is a frame whose
 * message would queue behind unsent ones on a congested channel.
 * close() stops the loop and the worker; it is idempotent.
 */
import type { types as msc } from 'mediasoup-client';
import { STAMP_ID_BITS } from '../../shared/stamp.ts';
import { encodeTrackMessage, trackMessageBytes } from '../../shared/track-wire.ts';
import { MESH_POINTS } from './landmarker.ts';
import type { TrackWorkerIn, TrackWorkerOut } from './track-worker.ts';

export interface TrackSenderStats {
  /** Messages sent per second over the last second. */
  fps: number;
  /** Median tracking time in the worker over the last second, ms. */
  trackMs: number | undefined;
  /** Frames skipped because the channel was still busy, in total. */
  congested: number;
  /** Landmark bytes sent, in total (payload only; the transport adds SCTP/DTLS/UDP headers). */
  bytes: number;
  /** The last tracked frame had a face. */
  face: boolean;
}

const WORKER_URL = '/dist/track-worker.js';
const READY_TIMEOUT_MS = 30_000;

interface InFlight {
  captureMs: number;
  width: number;
  height: number;
}

export class TrackSender {
  readonly #video: HTMLVideoElement;
  readonly #channel: msc.DataProducer;
  readonly #worker: Worker;
  readonly #minIntervalMs: number;
  #handle = 0;
  #last = -Infinity;
  #inFlight: InFlight | undefined;
  #frameId = 0;
  #msg: Uint8Array | undefined;
  #closed = false;
  #sentInWindow = 0;
  #times: number[] = [];
  #windowFrom = performance.now();
  readonly stats: TrackSenderStats = { fps: 0, trackMs: undefined, congested: 0, bytes: 0, face: false };
  /** Frame id → capture time (epoch ms) of the last few hundred frames sent, for latency measurement. */
  readonly sentAt = new Map<number, number>();

  private constructor(video: HTMLVideoElement, channel: msc.DataProducer, worker: Worker, maxFps: number) {
    this.#video = video;
    this.#channel = channel;
    this.#worker = worker;
    this.#minIntervalMs = 1000 / maxFps - 2;
    worker.onmessage = (e: MessageEvent<TrackWorkerOut>) => this.#onResult(e.data);
  }

  /** Starts the tracking worker (it loads the model), then sends the video's landmarks on `channel`. */
  static async start(video: HTMLVideoElement, channel: msc.DataProducer, maxFps = 30): Promise<TrackSender> {
    const worker = new Worker(WORKER_URL);
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('the face tracker did not load in time')), READY_TIMEOUT_MS);
        worker.onmessage = (e: MessageEvent<TrackWorkerOut>) => {
          clearTimeout(t);
          if (e.data.type === 'ready') resolve();
          else reject(new Error(`the face tracker failed to load: ${e.data.type === 'error' ? e.data.message : e.data.type}`));
        };
        worker.onerror = (e) => {
          clearTimeout(t);
          reject(new Error(`the face tracker failed to load: ${e.message}`));
        };
      });
    } catch (err) {
      worker.terminate();
      throw err;
    }
    const sender = new TrackSender(video, channel, worker, maxFps);
    sender.#schedule();
    return sender;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#video.cancelVideoFrameCallback(this.#handle);
    this.#worker.terminate();
  }

  #schedule(): void {
    this.#handle = this.#video.requestVideoFrameCallback((now, meta) => void this.#onFrame(now, meta));
  }

  async #onFrame(now: number, meta: VideoFrameCallbackMetadata): Promise<void> {
    if (this.#closed) return;
    this.#schedule();
    this.#roll(now);
    const { videoWidth: width, videoHeight: height } = this.#video;
    if (this.#inFlight || now - this.#last < this.#minIntervalMs || width === 0 || height === 0 || this.#channel.closed) return;
    // Latest wins: skip a frame rather than queue it behind unsent ones.
    if (this.#channel.bufferedAmount > 2 * trackMessageBytes(MESH_POINTS)) {
      this.stats.congested++;
      return;
    }
    this.#last = now;
    const inFlight: InFlight = { captureMs: performance.timeOrigin + (meta.captureTime ?? now), width, height };
    this.#inFlight = inFlight;
    try {
      const bitmap = await createImageBitmap(this.#video);
      if (this.#closed) {
        bitmap.close();
        return;
      }
      const msg: TrackWorkerIn = { type: 'frame', bitmap, ts: now };
      this.#worker.postMessage(msg, [bitmap]);
    } catch {
      // The video had no frame to give (e.g. while the camera switches): try the next one.
      if (this.#inFlight === inFlight) this.#inFlight = undefined;
    }
  }

  #onResult(m: TrackWorkerOut): void {
    const frame = this.#inFlight;
    this.#inFlight = undefined;
    if (this.#closed || !frame) return;
    if (m.type !== 'points') return;
    this.#times.push(m.ms);
    const frameId = (this.#frameId = (this.#frameId % (2 ** STAMP_ID_BITS - 1)) + 1);
    // send() copies the bytes, so one message buffer serves every frame.
    const msg = (this.#msg = encodeTrackMessage({ frameId, captureMs: frame.captureMs, width: frame.width, height: frame.height, points: m.points }, this.#msg));
    try {
      this.#channel.send(msg.buffer as ArrayBuffer);
    } catch {
      // The channel closed under us; the page's connection loop will start over.
      return;
    }
    this.stats.bytes += msg.byteLength;
    this.stats.face = m.points !== null;
    this.#sentInWindow++;
    this.sentAt.set(frameId, frame.captureMs);
    if (this.sentAt.size > 600) this.sentAt.delete(this.sentAt.keys().next().value!);
  }

  #roll(now: number): void {
    if (now - this.#windowFrom < 1000) return;
    this.stats.fps = (this.#sentInWindow * 1000) / (now - this.#windowFrom);
    const sorted = this.#times.sort((a, b) => a - b);
    this.stats.trackMs = sorted.length ? sorted[sorted.length >> 1] : undefined;
    this.#sentInWindow = 0;
    this.#times = [];
    this.#windowFrom = now;
  }
}
