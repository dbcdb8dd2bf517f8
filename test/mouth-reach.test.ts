/**
 * A clip target's mouth library only has the openings the clip showed. When
 * the actor opens wider than that, the opening beyond the library's reach gets
 * the synthesised interior, so the target's mouth still opens as far as the
 * actor's (docs/rendering.md). Real footage: t2 (talking from frame 0, mouth
 * often wide open) onto s18 (a clip whose speaker barely opens her mouth),
 * graded by an unfiltered tracker.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readFrames } from '../server/src/media/video-io.ts';
import { cropResize } from '../server/src/render/image-ops.ts';
import { GeometricRenderer } from '../server/src/render/renderer.ts';
import { enrollTarget, faceCrop, type EnrolledTarget } from '../server/src/render/target.ts';
import { Tracker } from '../server/src/tracking/tracker.ts';
import type { FaceTrack } from '../shared/tracking.ts';
import { MediapipeGrader } from '../loadtest/eval/mediapipe-grader.ts';
import { fixture } from './helpers/server.ts';

const SIZE = 256;
const FRAMES = 90;

describe('mouth library reach', () => {
  let tracker: Tracker;
  let grader: MediapipeGrader;
  let target: EnrolledTarget;
  const tracks: FaceTrack[] = [];
  const actorGap: (number | null)[] = [];

  before(async () => {
    tracker = await Tracker.create();
    grader = await MediapipeGrader.create();
    target = await enrollTarget(fixture('targets/s18.mp4'), tracker, { size: SIZE, cacheDir: null, measurePoseGain: false });
    tracker.reset();
    let n = 0;
    for await (const f of readFrames(fixture('talking/t2.mp4'), { format: 'rgba', maxFrames: FRAMES })) {
      const t = await tracker.track(f, (n * 1000) / 30);
      tracks.push(t);
      // The actor's own opening, read by the grader on its face crop at the output size.
      const p = t.landmarks ? Float64Array.from(t.landmarks.flat()) : null;
      const g = p ? await grader.grade(cropResize(f, faceCrop(p, f.width, f.height), SIZE).data, SIZE, SIZE, t.timeMs) : null;
      actorGap.push(g?.mouth ?? null);
      n++;
    }
  });
  after(async () => {
    await tracker.close();
    await grader.close();
  });

  it('the target opens as far as the actor where the clip never opened that far (synthesised interior past the library)', { timeout: 120_000 }, async () => {
    assert.ok(target.mouthLibrary && target.mouthLibrary.count > 10, 'no mouth library');
    const renderer = await GeometricRenderer.create({ size: SIZE });
    const out = new Uint8Array(SIZE * SIZE * 4);
    grader.reset();
    const wide: [number, number][] = [];
    try {
      await renderer.enroll(target);
      for (let i = 0; i < tracks.length; i++) {
        renderer.renderSync(tracks[i]!, out, tracks[i]!.timeMs);
        const g = await grader.grade(out, SIZE, SIZE, tracks[i]!.timeMs);
        const a = actorGap[i];
        // Clearly open (the fidelity matrix's open threshold): the frames the library alone showed shut.
        if (a != null && a > 0.08 && g) wide.push([a, g.mouth]);
      }
    } finally {
      renderer.close();
    }
    assert.ok(wide.length >= 30, `only ${wide.length} frames with the actor's mouth clearly open`);
    const open = wide.filter(([, o]) => o > 0.055).length / wide.length;
    const ratio = wide.map(([a, o]) => o / a).sort((x, y) => x - y)[wide.length >> 1]!;
    console.log(`mouth reach: ${wide.length} open actor frames, output open on ${(open * 100).toFixed(0)} %, median output/actor opening ${ratio.toFixed(2)}`);
    assert.ok(open >= 0.85, `the output mouth is open on ${(open * 100).toFixed(0)} % of the frames where the actor's is`);
    assert.ok(ratio >= 0.7 && ratio <= 1.3, `median output/actor opening ${ratio.toFixed(2)}`);
  });
});
