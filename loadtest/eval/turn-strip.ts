/**
 * A strip for the docs: d3's extreme yaw and pitch frames (found by the tracker) rendered onto
 * three stills, one row per target. Writes docs/img/turns.jpg by default.
 *
 *   node --import tsx loadtest/eval/turn-strip.ts [--out docs/img/turns.jpg] [--depth 1]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { writeImage } from '../../server/src/media/video-io.ts';
import { trackClip } from '../../server/src/render/fidelity.ts';
import { GeometricRenderer } from '../../server/src/render/renderer.ts';
import { enrollTarget } from '../../server/src/render/target.ts';
import { Tracker } from '../../server/src/tracking/tracker.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIX = join(ROOT, 'test', 'fixtures');
const S = 256;
const TARGETS = ['s1', 's10', 's9'];

const { values: a } = parseArgs({ options: { out: { type: 'string', default: join(ROOT, 'docs', 'img', 'turns.jpg') }, depth: { type: 'string', default: '1' } } });
const tracker = await Tracker.create({ threads: 1, detectIntervalMs: 0 });
try {
  const { tracks } = await trackClip(join(FIX, 'driving', 'd3.mp4'), tracker);
  const extreme = (f: (i: number) => number, sign: number): number => tracks.reduce((best, _t, i) => (sign * f(i) > sign * f(best) ? i : best), 0);
  const yaw = (i: number) => tracks[i]!.pose?.yaw ?? 0, pitch = (i: number) => tracks[i]!.pose?.pitch ?? 0;
  const pick = [extreme(yaw, -1), extreme(yaw, 1), extreme(pitch, -1), extreme(pitch, 1)];
  const W = S * pick.length;
  const img = new Uint8Array(W * S * TARGETS.length * 4);
  for (const [row, name] of TARGETS.entries()) {
    const target = await enrollTarget(join(FIX, 'targets', `${name}.jpg`), tracker, { size: S, cacheDir: null });
    const r = await GeometricRenderer.create({ size: S, retarget: { depthScale: Number(a.depth) } });
    try {
      await r.enroll(target);
      const out = new Uint8Array(S * S * 4);
      for (const [i, t] of tracks.entries()) {
        r.renderSync(t, out, t.timeMs);
        const col = pick.indexOf(i);
        if (col >= 0) for (let y = 0; y < S; y++) img.set(out.subarray(y * S * 4, (y + 1) * S * 4), ((row * S + y) * W + col * S) * 4);
      }
    } finally {
      r.close();
    }
  }
  await writeImage(a.out, { width: W, height: S * TARGETS.length, format: 'rgba', data: img });
  process.stdout.write(`frames ${pick.join(', ')} (yaw ${pick.slice(0, 2).map((i) => yaw(i).toFixed(0)).join('°, ')}°; pitch ${pick.slice(2).map((i) => pitch(i).toFixed(0)).join('°, ')}°) → ${a.out}\n`);
} finally {
  await tracker.close();
}
