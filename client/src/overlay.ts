/**
 * Optional local face-landmark overlay on the actor's camera preview, with
 * MediaPipe Tasks (FaceLandmarker) running in the page on the CPU. The model
 * bundle is assembled at build time from the TFLite files in the installed
 * npm packages (client/tools/face-task.ts) and served by our own server with
 * the tasks-vision wasm runtime: nothing comes from a model hub or CDN.
 *
 * Runs at most `maxFps` detections a second on the preview's frames
 * (requestVideoFrameCallback) and draws the 468 mesh points. Nothing leaves
 * the browser. close() stops the loop, frees the landmarker and clears the
 * canvas; it is idempotent.
 */
import type { FaceLandmarker, NormalizedLandmark } from '@mediapipe/tasks-vision';
import { MESH_POINTS, createFaceLandmarker } from './landmarker.ts';

export class FaceOverlay {
  readonly #video: HTMLVideoElement;
  readonly #canvas: HTMLCanvasElement;
  readonly #ctx: CanvasRenderingContext2D;
  readonly #landmarker: FaceLandmarker;
  readonly #minIntervalMs: number;
  #handle = 0;
  #last = 0;
  #closed = false;
  /** Detections per second over the last second, for the page's stats. */
  fps = 0;
  #count = 0;
  #countFrom = performance.now();

  private constructor(video: HTMLVideoElement, canvas: HTMLCanvasElement, ctx: CanvasRenderingContext2D, landmarker: FaceLandmarker, maxFps: number) {
    this.#video = video;
    this.#canvas = canvas;
    this.#ctx = ctx;
    this.#landmarker = landmarker;
    this.#minIntervalMs = 1000 / maxFps;
  }

  static async start(video: HTMLVideoElement, canvas: HTMLCanvasElement, maxFps = 15): Promise<FaceOverlay> {
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('no 2d canvas');
    const landmarker = await createFaceLandmarker();
    const overlay = new FaceOverlay(video, canvas, ctx, landmarker, maxFps);
    canvas.hidden = false;
    overlay.#schedule();
    return overlay;
  }

  /** Landmarks (normalised 0..1) of one image, outside the drawing loop. */
  detect(image: HTMLCanvasElement | HTMLVideoElement | ImageBitmap): NormalizedLandmark[] | null {
    const res = this.#landmarker.detectForVideo(image, performance.now());
    return res.faceLandmarks[0]?.slice(0, MESH_POINTS) ?? null;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#video.cancelVideoFrameCallback(this.#handle);
    this.#ctx.clearRect(0, 0, this.#canvas.width, this.#canvas.height);
    this.#canvas.hidden = true;
    delete this.#canvas.dataset['points'];
    this.#landmarker.close();
  }

  #schedule(): void {
    this.#handle = this.#video.requestVideoFrameCallback((now) => this.#onFrame(now));
  }

  #onFrame(now: number): void {
    if (this.#closed) return;
    if (now - this.#last >= this.#minIntervalMs && this.#video.videoWidth > 0) {
      this.#last = now;
      const points = this.detect(this.#video);
      this.#draw(points);
      this.#count++;
      if (now - this.#countFrom >= 1000) {
        this.fps = (this.#count * 1000) / (now - this.#countFrom);
        this.#count = 0;
        this.#countFrom = now;
      }
    }
    this.#schedule();
  }

  #draw(points: NormalizedLandmark[] | null): void {
    const { videoWidth: w, videoHeight: h } = this.#video;
    if (this.#canvas.width !== w || this.#canvas.height !== h) {
      this.#canvas.width = w;
      this.#canvas.height = h;
    }
    const ctx = this.#ctx;
    ctx.clearRect(0, 0, w, h);
    this.#canvas.dataset['points'] = String(points?.length ?? 0);
    if (!points) return;
    ctx.fillStyle = 'rgba(80, 230, 160, 0.9)';
    const r = Math.max(1, w / 400);
    for (const p of points) ctx.fillRect(p.x * w - r / 2, p.y * h - r / 2, r, r);
  }
}
