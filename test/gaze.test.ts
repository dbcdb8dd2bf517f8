/**
 * Gaze transfer on real footage: with the default (attention) tracker the
 * actor's irises are tracked, and the renderer moves the target's irises with
 * them. d12 looks around (its iris sweeps about ±0.12 eye widths, sd 0.12);
 * the output is tracked with the same model and the horizontal iris positions
 * are correlated frame by frame.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fidelityFromTracks, gazeOffset, trackClip } from '../server/src/render/fidelity.ts';
import { enrollTarget } from '../server/src/render/target.ts';
import { Tracker } from '../server/src/tracking/tracker.ts';

const FIX = new URL('./fixtures/', import.meta.url).pathname;
let pipeline: Tracker;
let measure: Tracker;
let tmp: string;

before(async () => {
  pipeline = await Tracker.create({ threads: 1, detectIntervalMs: 0 });
  measure = await Tracker.create({ threads: 1, filter: false, detectIntervalMs: 0 });
  tmp = mkdtempSync(join(tmpdir(), 'gaze-test-'));
});

after(async () => {
  await pipeline?.close();
  await measure?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('the target looks where the actor looks: horizontal iris position correlates ≥ 0.6 between d12 and the output on s42 and s5', { timeout: 120_000 }, async () => {
  assert.equal(pipeline.landmarkCount, 478, 'gaze needs the iris model (the default tracker)');
  const { tracks } = await trackClip(join(FIX, 'driving', 'd12.mp4'), pipeline);
  const gaze = tracks.map(gazeOffset).filter(Number.isFinite);
  const mean = gaze.reduce((a, b) => a + b, 0) / gaze.length;
  const sd = Math.sqrt(gaze.reduce((a, b) => a + (b - mean) ** 2, 0) / gaze.length);
  assert.ok(sd > 0.05, `d12's gaze barely moves (sd ${sd.toFixed(3)} eye widths): the test would prove nothing`);
  const results: Record<string, number> = {};
  for (const s of ['s42', 's5']) {
    const target = await enrollTarget(join(FIX, 'targets', `${s}.jpg`), pipeline, { size: 256, cacheDir: join(tmp, 'cache') });
    assert.ok(target.hasIris, `${s}: enrolled without irises`);
    const r = await fidelityFromTracks(tracks, target, measure);
    results[s] = r.gazeCorr;
  }
  console.log('gaze transfer', JSON.stringify({ drivingGazeSd: +sd.toFixed(3), frames: tracks.length, gazeCorr: results }));
  for (const [s, r] of Object.entries(results)) assert.ok(r >= 0.6, `${s}: gaze correlation ${r.toFixed(3)}`);
});
