/**
 * Privacy mode, browser side: tracks the face in the camera preview with the
 * local FaceLandmarker and sends only the landmarks, one binary message per
 * tracked frame (shared/track-wire.ts), over an unordered, no-retransmit
 * data channel to the server. No camera video leaves the page.
 *
 * Latest wins: when the channel still holds unsent messages (a congested
 * uplink), the frame is skipped rather than queued behind stale ones.
 * close() stops the loop and frees the landmarker; it is idempotent.
 */
import type { FaceLandmarker } from '@mediapipe/tasks-vision';
import type { types as msc } from 'mediasoup-client';
import { STAMP_ID_BITS } from '../../shared/stamp.ts';
import { encodeTrackMessage, trackMessageBytes } from '../../shared/track-wire.ts';
import { MESH_POINTS, createFaceLandmarker } from './landmarker.ts';

export interface TrackSenderStats {
  /** Messages sent per second over the last second. */
  fps: number;
  /** Median on-device tracking time over the last second, ms. */
  trackMs: number | undefined;
  /** Messages skipped because the channel was still busy, in total. */
  congested: number;
  /** Landmark bytes sent, in total (payload only; the transport adds SCTP/DTLS/UDP headers). */
  bytes: number;
  /** The last tracked frame had a face. */
  face: boolean;
}

export class TrackSender {
  readonly #video: HTMLVideoElement;
  readonly #channel: msc.DataProducer;
  readonly #landmarker: FaceLandmarker;
  readonly #minIntervalMs: number;
  readonly #points = new Float32Array(MESH_POINTS * 3);
  #handle = 0;
  #last = -Infinity;
  #lastTs = 0;
  #frameId = 0;
  #closed = false;
  #sentInWindow = 0;
  #times: number[] = [];
  #windowFrom = performance.now();
  readonly stats: TrackSenderStats = { fps: 0, trackMs: undefined, congested: 0, bytes: 0, face: false };
  /** Frame id → capture time (epoch ms) of the last few hundred frames sent, for latency measurement. */
  readonly sentAt = new Map<number, number>();

  private constructor(video: HTMLVideoElement, channel: msc.DataProducer, landmarker: FaceLandmarker, maxFps: number) {
    this.#video = video;
    this.#channel = channel;
    this.#landmarker = landmarker;
    this.#minIntervalMs = 1000 / maxFps - 2;
  }

  /** Loads the landmarker, then starts sending the video's landmarks on `channel`. */
  static async start(video: HTMLVideoElement, channel: msc.DataProducer, maxFps = 30): Promise<TrackSender> {
    const landmarker = await createFaceLandmarker();
    const sender = new TrackSender(video, channel, landmarker, maxFps);
    sender.#schedule();
    return sender;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#video.cancelVideoFrameCallback(this.#handle);
    this.#landmarker.close();
  }

  #schedule(): void {
    this.#handle = this.#video.requestVideoFrameCallback((now, meta) => this.#onFrame(now, meta));
  }

  #onFrame(now: number, meta: VideoFrameCallbackMetadata): void {
    if (this.#closed) return;
    const { videoWidth: w, videoHeight: h } = this.#video;
    if (now - this.#last >= this.#minIntervalMs && w > 0 && h > 0 && !this.#channel.closed) {
      this.#last = now;
      this.#send(w, h, meta.captureTime ?? now);
    }
    this.#roll(now);
    this.#schedule();
  }

  #send(w: number, h: number, captureTime: number): void {
    // Latest wins: skip a frame rather than queue it behind unsent ones.
    if (this.#channel.bufferedAmount > 2 * trackMessageBytes(MESH_POINTS)) {
      this.stats.congested++;
      return;
    }
    const t0 = performance.now();
    // Tasks needs strictly increasing timestamps.
    const ts = Math.max(this.#lastTs + 1, Math.round(t0));
    this.#lastTs = ts;
    const found = this.#landmarker.detectForVideo(this.#video, ts).faceLandmarks[0];
    let points: Float32Array | null = null;
    if (found && found.length >= MESH_POINTS) {
      points = this.#points;
      for (let i = 0; i < MESH_POINTS; i++) {
        const p = found[i]!;
        points[i * 3] = p.x * w;
        points[i * 3 + 1] = p.y * h;
        // Tasks' z is normalised like x (by the image width).
        points[i * 3 + 2] = p.z * w;
      }
    }
    this.#times.push(performance.now() - t0);
    const frameId = (this.#frameId = (this.#frameId % (2 ** STAMP_ID_BITS - 1)) + 1);
    const captureMs = performance.timeOrigin + captureTime;
    const msg = encodeTrackMessage({ frameId, captureMs, width: w, height: h, points });
    try {
      this.#channel.send(msg.buffer as ArrayBuffer);
    } catch {
      // The channel closed under us; the page's connection loop will start over.
      return;
    }
    this.stats.bytes += msg.byteLength;
    this.stats.face = points !== null;
    this.#sentInWindow++;
    this.sentAt.set(frameId, captureMs);
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
