/**
 * Privacy mode's tracker, in a dedicated (classic) worker so that face
 * tracking never blocks the actor page's main thread. The page sends one
 * ImageBitmap at a time; the worker answers with the 468 mesh points in
 * frame pixels (or null), and closes the bitmap.
 *
 * Messages in:  {type: 'frame', bitmap, ts}
 * Messages out: {type: 'ready'} | {type: 'error', message}
 *               | {type: 'points', points: Float32Array | null, ms}
 */
import type { FaceLandmarker } from '@mediapipe/tasks-vision';
import { MESH_POINTS, createFaceLandmarker } from './landmarker.ts';

export type TrackWorkerIn = { type: 'frame'; bitmap: ImageBitmap; ts: number };
export type TrackWorkerOut = { type: 'ready' } | { type: 'error'; message: string } | { type: 'points'; points: Float32Array | null; ms: number };

const scope = self as unknown as { onmessage: ((e: MessageEvent<TrackWorkerIn>) => void) | null; postMessage(m: TrackWorkerOut, transfer?: Transferable[]): void };
let landmarker: FaceLandmarker | undefined;
let lastTs = 0;

function post(m: TrackWorkerOut, transfer: Transferable[] = []): void {
  scope.postMessage(m, transfer);
}

scope.onmessage = (e) => {
  const msg = e.data;
  switch (msg.type) {
    case 'frame': {
      const { bitmap } = msg;
      try {
        if (!landmarker) throw new Error('landmarker not ready');
        const t0 = performance.now();
        // Tasks needs strictly increasing timestamps.
        const ts = (lastTs = Math.max(lastTs + 1, Math.round(msg.ts)));
        const found = landmarker.detectForVideo(bitmap, ts).faceLandmarks[0];
        let points: Float32Array | null = null;
        if (found && found.length >= MESH_POINTS) {
          const { width: w, height: h } = bitmap;
          points = new Float32Array(MESH_POINTS * 3);
          for (let i = 0; i < MESH_POINTS; i++) {
            const p = found[i]!;
            points[i * 3] = p.x * w;
            points[i * 3 + 1] = p.y * h;
            // Tasks' z is normalised like x (by the image width).
            points[i * 3 + 2] = p.z * w;
          }
        }
        post({ type: 'points', points, ms: performance.now() - t0 }, points ? [points.buffer] : []);
      } catch (err) {
        post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
      } finally {
        bitmap.close();
      }
      break;
    }
    default: {
      const never: never = msg.type;
      void never;
    }
  }
};

createFaceLandmarker().then(
  (l) => {
    landmarker = l;
    post({ type: 'ready' });
  },
  (err: unknown) => post({ type: 'error', message: err instanceof Error ? err.message : String(err) }),
);
