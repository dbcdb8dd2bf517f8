/**
 * The pose gain (server/src/render/pose-gain.ts) in closed loop, with the real
 * tracker on the real still targets: enrollment measures what each target's
 * warp shows of a commanded turn, and a drive that commands angle / gain
 * shows the angle. Asserts over all the stills, not per target.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { measurePoseGain } from '../server/src/render/pose-gain.ts';
import { gainDiagonal, poseCompensation, POSE_GAIN_RANGE, Retargeter, type PoseGain } from '../server/src/render/retarget.ts';
import { enrollTarget, type EnrolledTarget } from '../server/src/render/target.ts';
import { Tracker } from '../server/src/tracking/tracker.ts';
import { targetGeometry } from '../server/src/render/face-measure.ts';
import { fixture } from './helpers/server.ts';

const AXES = ['yaw', 'pitch', 'roll'];
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const diag = (yaw: number, pitch = 1, roll = 1): PoseGain => ({ matrix: [yaw, 0, 0, 0, pitch, 0, 0, 0, roll] });

describe('pose gain: what the warp shows of a head turn, measured at enrollment and compensated', () => {
  let tracker: Tracker;
  const stills: { name: string; target: EnrolledTarget }[] = [];

  before(async () => {
    tracker = await Tracker.create();
    const dir = fixture('targets');
    for (const f of readdirSync(dir).filter((n) => /\.(jpg|png)$/.test(n)).sort()) {
      stills.push({ name: f, target: await enrollTarget(join(dir, f), tracker, { size: 256, cacheDir: null }) });
    }
  });
  after(async () => {
    await tracker.close();
  });

  it('enrollment measures the gain on every still, and a compensated turn reads back as commanded on each axis, with no cross-talk', { timeout: 120_000 }, async () => {
    assert.ok(stills.length >= 5, `only ${stills.length} still targets`);
    const own: number[][] = [[], [], []];
    const cross: number[] = [];
    for (const { name, target } of stills) {
      const g = target.poseGain;
      assert.ok(g, `${name}: no pose gain measured`);
      const d = gainDiagonal(g);
      d.forEach((x, a) => assert.ok(x > 0.3 && x < 1.5, `${name}: ${AXES[a]} gain ${x}`));
      const r = await measurePoseGain(target, tracker, { compensated: true });
      assert.equal(r.found, r.rendered, `${name}: the tracker lost the face on ${r.rendered - r.found} turned renders`);
      const m = r.gain.matrix;
      for (let a = 0; a < 3; a++) {
        // What compensation can give back: all of it within the range, the capped share beyond.
        const expected = d[a]! / Math.min(Math.max(d[a]!, POSE_GAIN_RANGE[0]), POSE_GAIN_RANGE[1]);
        own[a]!.push(m[a * 4]! / expected);
        for (let b = 0; b < 3; b++) if (b !== a) cross.push(m[a * 3 + b]!);
      }
      console.log(`pose-gain ${name}: gain [${g.matrix.map((x) => x.toFixed(2)).join(' ')}] residual [${m.map((x) => x.toFixed(2)).join(' ')}]`);
    }
    own.forEach((xs, a) => {
      const worst = xs.reduce((w, x) => (Math.abs(x - 1) > Math.abs(w - 1) ? x : w), 1);
      assert.ok(Math.abs(median(xs) - 1) <= 0.05, `${AXES[a]}: median shown/commanded ${median(xs).toFixed(3)} after compensation`);
      assert.ok(Math.abs(worst - 1) <= 0.12, `${AXES[a]}: worst shown/commanded ${worst.toFixed(3)} after compensation`);
    });
    const worstCross = cross.reduce((w, x) => Math.max(w, Math.abs(x)), 0);
    assert.ok(worstCross <= 0.12, `a turn about one axis still reads ${worstCross.toFixed(3)} on another after compensation`);
  });

  it('the retargeter commands the shown angle through the inverse gain, the diagonal bounded, and failed readings left alone', { timeout: 20_000 }, () => {
    const { target } = stills[0]!;
    const geo = targetGeometry(Float64Array.from(target.landmarks), target.hasIris);
    const at = (gain: PoseGain | null, yaw: number, pitch: number, compensated: boolean): Float64Array =>
      Float64Array.from(new Retargeter(geo, {}, undefined, undefined, undefined, gain).posed(yaw, pitch, 0, compensated).posePoints);
    const same = (a: Float64Array, b: Float64Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
    // 0.8 → 20° is commanded as 25°.
    assert.ok(same(at(diag(0.8), 20, 0, true), at(null, 25, 0, false)) < 1e-9);
    // 0.3 is below the range: compensated as its lower end (0.6).
    assert.ok(same(at(diag(0.3), 12, 0, true), at(null, 20, 0, false)) < 1e-9);
    // No gain, or not compensated: exactly the angle.
    assert.ok(same(at(null, 20, 0, true), at(null, 20, 0, false)) < 1e-9);
    assert.ok(same(at(diag(0.8), 20, 0, false), at(null, 20, 0, false)) < 1e-9);
    assert.ok(same(at(null, 20, 0, false), at(null, 0, 0, false)) > 5, 'a 20° turn did not move the landmarks');
    // Cross terms: a warp that shows half of each pitch as yaw gets pitch commanded with yaw taken back.
    const c = poseCompensation({ matrix: [1, 0.5, 0, 0, 1, 0, 0, 0, 1] });
    assert.deepEqual(Array.from(c).map((x) => Math.round(x * 1e9) / 1e9 + 0), [1, -0.5, 0, 0, 1, 0, 0, 0, 1]);
    assert.ok(same(at({ matrix: [1, 0.5, 0, 0, 1, 0, 0, 0, 1] }, 0, 10, true), at(null, -5, 10, false)) < 1e-9);
    // A failed column (gain ≤ 0) and a non-finite matrix compensate nothing on that axis.
    assert.deepEqual(Array.from(poseCompensation({ matrix: [-0.2, 0.3, 0, 0.4, 1, 0, 0, 0, 1] })).map((x) => x + 0), [1, 0, 0, 0, 1, 0, 0, 0, 1]);
    assert.deepEqual(Array.from(poseCompensation({ matrix: [Number.NaN, 0, 0, 0, 1, 0, 0, 0, 1] })).map((x) => x + 0), [1, 0, 0, 0, 1, 0, 0, 0, 1]);
    // Near-singular once bounded: the diagonal alone.
    assert.deepEqual(Array.from(poseCompensation({ matrix: [1, 1, 0, 1, 1, 0, 0, 0, 1] })).map((x) => x + 0), [1, 0, 0, 0, 1, 0, 0, 0, 1]);
  });
});
