/**
 * Decodes a recording (any container and codec ffmpeg reads: mp4, webm, y4m…)
 * to what the detector needs: each frame's cell means, at a fixed small size
 * and a constant frame rate (times from the frame count), so the reader costs
 * little and does not depend on the recording's resolution.
 */
import { readFrames } from '../media/video-io.ts';
import type { CellFrame } from './detect.ts';
import { axisWeights, cellMeans, GRID } from './watermark.ts';

export const READ_SIZE = 128;
export const READ_FPS = 30;

export async function readCellFrames(path: string, opts: { maxFrames?: number } = {}): Promise<CellFrame[]> {
  const ax = axisWeights(READ_SIZE), ay = axisWeights(READ_SIZE);
  const out: CellFrame[] = [];
  let i = 0;
  for await (const f of readFrames(path, { width: READ_SIZE, height: READ_SIZE, fps: READ_FPS, format: 'yuv420p', maxFrames: opts.maxFrames })) {
    const means = new Float64Array(GRID * GRID);
    cellMeans(f.data, READ_SIZE, READ_SIZE, ax, ay, means);
    out.push({ timeMs: (i++ * 1000) / READ_FPS, means });
  }
  return out;
}
