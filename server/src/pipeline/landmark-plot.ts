/**
 * Draws face-mesh landmarks as bright dots on a dark I420 frame: what the
 * passthrough stage shows in privacy mode (there is no camera video to pass
 * through), and what the reenact stage shows when it falls back.
 */
import { i420Size } from '../media/convert.ts';

/** Output size for a plot of a `width`×`height` frame: at most 640 px wide, even sides. */
export function plotSize(width: number, height: number): { width: number; height: number } {
  const k = Math.min(1, 640 / width);
  return { width: Math.max(16, Math.round((width * k) / 2) * 2), height: Math.max(16, Math.round((height * k) / 2) * 2) };
}

/**
 * Fills `out` (I420, outW×outH) with dark grey and draws each point of
 * `points` (x y z in srcW×srcH pixels) as a 2×2 dot; null draws no points.
 */
export function drawLandmarkPlot(out: Uint8Array, outW: number, outH: number, points: Float32Array | null, srcW: number, srcH: number): void {
  if (out.length !== i420Size(outW, outH)) throw new TypeError('output buffer does not match its size');
  out.fill(40, 0, outW * outH);
  out.fill(128, outW * outH);
  if (!points) return;
  const sx = outW / srcW;
  const sy = outH / srcH;
  for (let i = 0; i + 2 < points.length; i += 3) {
    const x = Math.round(points[i]! * sx);
    const y = Math.round(points[i + 1]! * sy);
    if (x < 0 || y < 0 || x + 1 >= outW || y + 1 >= outH) continue;
    out[y * outW + x] = 225;
    out[y * outW + x + 1] = 225;
    out[(y + 1) * outW + x] = 225;
    out[(y + 1) * outW + x + 1] = 225;
  }
}
