/**
 * Strips for the docs, one row per target, one column per chosen driving frame:
 * - docs/img/turns.jpg: d3's extreme yaw and pitch frames (found by the tracker; the first is
 *   also a wink, the last a wide-open mouth) on s1, s10 and s9;
 * - docs/img/talker.jpg: t6, talking from frame 0, over its first second (actor crop on top)
 *   on s1, s42 and s9.
 *
 *   node --import tsx loadtest/eval/strips.ts [--out docs/img]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { FaceTrack } from '../../shared/tracking.ts';
import { readFrames, writeImage } from '../../server/src/media/video-io.ts';
import { cropResize } from '../../server/src/render/image-ops.ts';
import { GeometricRenderer } from '../../server/src/render/renderer.ts';
import { enrollTarget, faceCrop } from '../../server/src/render/target.ts';
import { Tracker } from '../../server/src/tracking/tracker.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIX = join(ROOT, 'test', 'fixtures');
const S = 256;

/** A grid of S×S tiles. */
class Grid {
  readonly data: Uint8Array;
  constructor(readonly cols: number, readonly rows: number) {
    this.data = new Uint8Array(cols * rows * S * S * 4);
  }

  put(row: number, col: number, rgba: Uint8Array): void {
    const W = this.cols * S;
    for (let y = 0; y < S; y++) this.data.set(rgba.subarray(y * S * 4, (y + 1) * S * 4), ((row * S + y) * W + col * S) * 4);
  }

  write(path: string): Promise<void> {
    return writeImage(path, { width: this.cols * S, height: this.rows * S, format: 'rgba', data: this.data });
  }
}

/** Tracks a clip; calls onFrame with each frame (for actor crops). */
async function track(tracker: Tracker, path: string, fps: number, maxFrames: number | undefined, onFrame?: (i: number, f: Parameters<Tracker['track']>[0], t: FaceTrack) => void): Promise<FaceTrack[]> {
  const tracks: FaceTrack[] = [];
  for await (const f of readFrames(path, { format: 'rgba', maxFrames })) {
    const t = await tracker.track(f, (tracks.length * 1000) / fps);
    onFrame?.(tracks.length, f, t);
    tracks.push(t);
  }
  return tracks;
}

/** Renders every track onto each target (live order) and puts the picked frames in row firstRow + k. */
async function renderRows(tracker: Tracker, tracks: readonly FaceTrack[], targets: readonly string[], pick: readonly number[], grid: Grid, firstRow: number): Promise<void> {
  for (const [k, name] of targets.entries()) {
    const target = await enrollTarget(join(FIX, 'targets', `${name}.jpg`), tracker, { size: S, cacheDir: null });
    const r = await GeometricRenderer.create({ size: S });
    try {
      await r.enroll(target);
      const out = new Uint8Array(S * S * 4);
      for (const [i, t] of tracks.entries()) {
        r.renderSync(t, out, t.timeMs);
        const col = pick.indexOf(i);
        if (col >= 0) grid.put(firstRow + k, col, out);
      }
    } finally {
      r.close();
    }
  }
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({ options: { out: { type: 'string', default: join(ROOT, 'docs', 'img') } } });
  const tracker = await Tracker.create({ threads: 1, detectIntervalMs: 0 });
  try {
    // Turns, a wink and a wide-open mouth.
    const d3 = await track(tracker, join(FIX, 'driving', 'd3.mp4'), 30, undefined);
    const yaw = (i: number) => d3[i]!.pose?.yaw ?? 0, pitch = (i: number) => d3[i]!.pose?.pitch ?? 0;
    const extreme = (f: (i: number) => number, sign: number): number => d3.reduce((best, _t, i) => (sign * f(i) > sign * f(best) ? i : best), 0);
    const turns = [extreme(yaw, -1), extreme(yaw, 1), extreme(pitch, -1), extreme(pitch, 1)];
    const g1 = new Grid(turns.length, 3);
    await renderRows(tracker, d3, ['s1', 's10', 's9'], turns, g1, 0);
    await g1.write(join(a.out, 'turns.jpg'));
    process.stdout.write(`turns: d3 frames ${turns.join(', ')} (yaw ${turns.slice(0, 2).map((i) => yaw(i).toFixed(0)).join('°, ')}°; pitch ${turns.slice(2).map((i) => pitch(i).toFixed(0)).join('°, ')}°)\n`);
    // A talker from frame 0: its first second.
    const talk = [0, 6, 12, 18, 24];
    const g2 = new Grid(talk.length, 4);
    tracker.reset();
    const t6 = await track(tracker, join(FIX, 'talking', 't6.mp4'), 25, Math.max(...talk) + 1, (i, f, t) => {
      const col = talk.indexOf(i);
      if (col >= 0 && t.landmarks) g2.put(0, col, cropResize(f, faceCrop(Float64Array.from(t.landmarks.flat()), f.width, f.height), S).data);
    });
    await renderRows(tracker, t6, ['s1', 's42', 's9'], talk, g2, 1);
    await g2.write(join(a.out, 'talker.jpg'));
    process.stdout.write(`talker: t6 frames ${talk.join(', ')} (25 fps)\n`);
  } finally {
    await tracker.close();
  }
}

await main();
