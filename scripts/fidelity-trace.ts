/**
 * Per-frame fidelity trace for one driving/target pair: what the fidelity
 * test correlates, frame by frame, so a low score can be traced to the
 * frames that cause it.
 *
 *   node --import tsx scripts/fidelity-trace.ts --driving test/fixtures/driving/d9.mp4 \
 *     --target test/fixtures/targets/s10.jpg [--frames 200] [--size 256] [--save 100,150 --out /tmp/trace]
 *
 * Prints one line per frame: index, driving and output mouth opening, driving
 * and output eye openness; then both correlations. --save writes those output
 * frames as PNG under --out.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeImage } from '../server/src/media/video-io.ts';
import { fidelityFromTracks, trackClip } from '../server/src/render/fidelity.ts';
import { enrollTarget } from '../server/src/render/target.ts';
import { Tracker } from '../server/src/tracking/tracker.ts';

const { values } = parseArgs({
  options: {
    driving: { type: 'string' },
    target: { type: 'string' },
    frames: { type: 'string', default: '200' },
    size: { type: 'string', default: '256' },
    save: { type: 'string', default: '' },
    out: { type: 'string', default: 'test/artifacts/trace' },
  },
});
if (!values.driving || !values.target) {
  console.error('usage: fidelity-trace --driving <video> --target <image-or-video> [--frames N] [--size 256|512] [--save i,j --out dir]');
  process.exit(2);
}
const size = Number(values.size), frames = Number(values.frames);
const save = new Set(values.save.split(',').filter(Boolean).map(Number));
// The same trackers as test/render.test.ts: filtered for driving and enrollment, unfiltered to measure.
const pipeline = await Tracker.create({ threads: 1, detectIntervalMs: 0 });
const measure = await Tracker.create({ threads: 1, filter: false, detectIntervalMs: 0 });
try {
  const target = await enrollTarget(values.target, pipeline, { size, cacheDir: null });
  const { tracks } = await trackClip(values.driving, pipeline, 1, frames);
  if (save.size) mkdirSync(values.out, { recursive: true });
  const pending: Promise<void>[] = [];
  const r = await fidelityFromTracks(tracks, target, measure, (i, out) => {
    if (save.has(i)) pending.push(writeImage(join(values.out, `frame-${i}.png`), { width: size, height: size, format: 'rgba', data: Uint8Array.from(out) }));
  });
  await Promise.all(pending);
  console.log('frame  mouth driving/output  eye driving/output');
  for (let i = 0; i < r.frames; i++) {
    const f = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? '  -  ' : x.toFixed(3));
    console.log(`${String(i).padStart(5)}  ${f(r.mouthDriving[i])} / ${f(r.mouthOutput[i])}      ${f(r.eyeDriving[i])} / ${f(r.eyeOutput[i])}`);
  }
  console.log(`mouth r = ${r.mouthCorr.toFixed(3)}, eye r = ${r.eyeCorr.toFixed(3)}, face found in ${(r.faceFound * 100).toFixed(1)} % of ${r.frames} frames`);
} finally {
  await pipeline.close();
  await measure.close();
}
