/**
 * The independent dlib grader (loadtest/eval/grader.ts) on real footage, checked against the
 * project's own tracker: d3 (turns, a wink, speech, a wide-open mouth near the end) decoded at
 * 15 fps, and t4's first 120 frames (looks down and up). The two trackers share no model, so
 * agreement here is what lets the grader judge rendered output. Needs npm run setup (it builds
 * the grader from Debian's dlib).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setLogLevel } from '../server/src/logger.ts';
import { decodeImage, readFrames, type ReadOptions } from '../server/src/media/video-io.ts';
import { eyeOpening, mouthOpening, pearson } from '../server/src/render/fidelity.ts';
import { Tracker } from '../server/src/tracking/tracker.ts';
import type { FaceTrack } from '../shared/tracking.ts';
import {
  DlibGrader, GraderError, eyeOpen68, headPose68, interOcular68, locateGrader, mouthGap68,
} from '../loadtest/eval/grader.ts';

setLogLevel('error');

interface Sample {
  dlib: Float64Array | null;
  track: FaceTrack;
}

const series = (xs: Sample[], f: (s: Sample) => number): number[] => xs.map(f);
const dlibMouth = (s: Sample): number => (s.dlib ? mouthGap68(s.dlib) : Number.NaN);
const dlibEyes = (s: Sample): number => (s.dlib ? (eyeOpen68(s.dlib, 0) + eyeOpen68(s.dlib, 1)) / 2 : Number.NaN);
const dlibPose = (k: 'yaw' | 'pitch' | 'roll') => (s: Sample): number => (s.dlib ? headPose68(s.dlib)[k] : Number.NaN);
const trackPose = (k: 'yaw' | 'pitch' | 'roll') => (s: Sample): number => s.track.pose?.[k] ?? Number.NaN;

function meanDiff(a: number[], b: number[]): number {
  let s = 0, n = 0;
  a.forEach((x, i) => {
    if (Number.isFinite(x) && Number.isFinite(b[i])) {
      s += x - b[i]!;
      n++;
    }
  });
  return s / n;
}

/** Of the frames where the tracker's angle is beyond ±minDeg, the share where dlib's has the same sign. */
function signAgreement(a: number[], b: number[], minDeg: number): { share: number; frames: number } {
  let same = 0, n = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    if (!Number.isFinite(x) || !Number.isFinite(y) || Math.abs(y) < minDeg) continue;
    n++;
    if (Math.sign(x) === Math.sign(y)) same++;
  }
  return { share: n ? same / n : Number.NaN, frames: n };
}

describe('dlib grader: an independent 68-point face grader that agrees with the tracker', () => {
  let grader: DlibGrader | undefined;
  let tracker: Tracker | undefined;
  let d3: Sample[] = [];
  let t4: Sample[] = [];

  async function sample(path: string, opts: ReadOptions, fps: number): Promise<Sample[]> {
    tracker!.reset();
    const out: Sample[] = [];
    for await (const f of readFrames(path, { ...opts, format: 'rgba' })) {
      const track = await tracker!.track(f, (out.length * 1000) / fps);
      out.push({ dlib: await grader!.grade(f.data, f.width, f.height), track });
    }
    return out;
  }

  before(async () => {
    grader = await DlibGrader.create();
    tracker = await Tracker.create({ threads: 1, filter: false, detectIntervalMs: 0 });
    d3 = await sample('test/fixtures/driving/d3.mp4', { fps: 15 }, 15);
    t4 = await sample('test/fixtures/talking/t4.mp4', { maxFrames: 120 }, 30);
  }, { timeout: 90_000 });

  after(async () => {
    await grader?.close();
    await tracker?.close();
  });

  it('finds a face in at least 95% of the first 120 frames of a driving and a talking clip', { timeout: 5_000 }, (t) => {
    // Measured: 120/120 on both.
    for (const [name, xs] of [['d3', d3], ['t4', t4]] as const) {
      assert.ok(xs.length >= 120, `${name}: only ${xs.length} frames decoded`);
      const found = xs.slice(0, 120).filter((s) => s.dlib).length;
      t.diagnostic(`${name}: face in ${found}/120`);
      assert.ok(found >= 114, `${name}: dlib found a face in ${found}/120 frames`);
    }
  });

  it('reads the mouth opening like the tracker does on d3 (speech and a wide-open mouth, r >= 0.9)', { timeout: 5_000 }, (t) => {
    // Measured r = 0.996 over d3 at 15 fps (177 frames); widest 0.345 IOD (the tracker's: 0.39).
    const r = pearson(series(d3, dlibMouth), series(d3, (s) => mouthOpening(s.track)));
    assert.ok(r >= 0.9, `mouth opening r = ${r.toFixed(3)}`);
    const wide = Math.max(...series(d3, dlibMouth).filter(Number.isFinite));
    t.diagnostic(`mouth r ${r.toFixed(3)}, widest ${wide.toFixed(3)} IOD`);
    assert.ok(wide > 0.2, `dlib's widest mouth on d3 is ${wide.toFixed(3)} IOD`);
  });

  it('reads eye openness like the tracker does on d3 (blinks and a wink, r >= 0.85)', { timeout: 5_000 }, (t) => {
    // Measured r = 0.968 over d3 at 15 fps.
    const r = pearson(series(d3, dlibEyes), series(d3, (s) => eyeOpening(s.track)));
    t.diagnostic(`eye r ${r.toFixed(3)}`);
    assert.ok(r >= 0.85, `eye openness r = ${r.toFixed(3)}`);
  });

  it('turns with the same yaw sign and amount as the tracker on d3', { timeout: 5_000 }, (t) => {
    // Measured on d3 at 15 fps: r = 0.996, signs agree on 119/119 frames beyond ±5°, mean offset 0.11°.
    const a = series(d3, dlibPose('yaw')), b = series(d3, trackPose('yaw'));
    const r = pearson(a, b);
    assert.ok(r >= 0.95, `yaw r = ${r.toFixed(3)}`);
    const sign = signAgreement(a, b, 5);
    t.diagnostic(`yaw r ${r.toFixed(3)}, sign agrees ${(sign.share * 100).toFixed(1)}% of ${sign.frames}, mean offset ${meanDiff(a, b).toFixed(2)}°`);
    assert.ok(sign.frames >= 20 && sign.share >= 0.95, `yaw sign agrees on ${(sign.share * 100).toFixed(0)}% of ${sign.frames} turned frames`);
    assert.ok(Math.abs(meanDiff(a, b)) < 3, `yaw offset ${meanDiff(a, b).toFixed(2)}°`);
  });

  it('pitches with the same sign as the tracker on t4 (looks down, then up)', { timeout: 5_000 }, (t) => {
    // Measured on t4's first 120 frames: r = 0.966, signs agree on 45/45 frames beyond ±5°, mean
    // offset -1.25°; d3 at 15 fps: r = 0.921.
    const a = series(t4, dlibPose('pitch')), b = series(t4, trackPose('pitch'));
    const r = pearson(a, b);
    assert.ok(r >= 0.85, `pitch r = ${r.toFixed(3)} on t4`);
    const sign = signAgreement(a, b, 5);
    assert.ok(sign.frames >= 10 && sign.share >= 0.9, `pitch sign agrees on ${(sign.share * 100).toFixed(0)}% of ${sign.frames} tilted frames`);
    assert.ok(Math.abs(meanDiff(a, b)) < 4, `pitch offset ${meanDiff(a, b).toFixed(2)}°`);
    const rd3 = pearson(series(d3, dlibPose('pitch')), series(d3, trackPose('pitch')));
    t.diagnostic(`pitch t4 r ${r.toFixed(3)}, sign agrees ${(sign.share * 100).toFixed(1)}% of ${sign.frames}, mean offset ${meanDiff(a, b).toFixed(2)}°; d3 r ${rd3.toFixed(3)}`);
    assert.ok(rd3 >= 0.8, `pitch r = ${rd3.toFixed(3)} on d3`);
  });

  it('rolls with the tracker (same sign convention: clockwise in the image is positive)', { timeout: 5_000 }, (t) => {
    // Measured: r = 0.989 on t4's first 120 frames, 0.953 on d3 at 15 fps.
    const r = pearson(series(t4, dlibPose('roll')), series(t4, trackPose('roll')));
    const rd3 = pearson(series(d3, dlibPose('roll')), series(d3, trackPose('roll')));
    t.diagnostic(`roll t4 r ${r.toFixed(3)}, d3 r ${rd3.toFixed(3)}`);
    assert.ok(r >= 0.9, `roll r = ${r.toFixed(3)} on t4`);
    assert.ok(rd3 >= 0.8, `roll r = ${rd3.toFixed(3)} on d3`);
    // Turning the points clockwise in the image by 10° adds 10° of roll and changes no ratio.
    const p = d3.find((s) => s.dlib)!.dlib!;
    const th = (10 * Math.PI) / 180;
    const q = new Float64Array(p.length);
    for (let i = 0; i < p.length; i += 2) {
      q[i] = 300 + (p[i]! - 300) * Math.cos(th) - (p[i + 1]! - 300) * Math.sin(th);
      q[i + 1] = 300 + (p[i]! - 300) * Math.sin(th) + (p[i + 1]! - 300) * Math.cos(th);
    }
    assert.ok(Math.abs(headPose68(q).roll - headPose68(p).roll - 10) < 1);
    assert.ok(Math.abs(headPose68(q).yaw - headPose68(p).yaw) < 1);
    assert.ok(Math.abs(mouthGap68(q) - mouthGap68(p)) < 1e-9);
    assert.ok(Math.abs(eyeOpen68(q, 1) - eyeOpen68(p, 1)) < 1e-9);
    assert.ok(Math.abs(interOcular68(q) - interOcular68(p)) < 1e-9);
  });

  it('answers null for an image without a face and the same points for RGB as for RGBA', { timeout: 15_000 }, async () => {
    const img = await decodeImage('test/fixtures/no-face.png');
    assert.equal(await grader!.grade(img.data, img.width, img.height), null);
    const face = await decodeImage('test/fixtures/targets/s1.jpg');
    const rgb = new Uint8Array(face.width * face.height * 3);
    for (let i = 0, j = 0; j < rgb.length; i += 4, j += 3) rgb.set(face.data.subarray(i, i + 3), j);
    const [a, b] = await Promise.all([grader!.grade(face.data, face.width, face.height), grader!.grade(rgb, face.width, face.height)]);
    assert.ok(a && b, 'a face in s1.jpg');
    assert.deepEqual(a, b);
    await assert.rejects(grader!.grade(new Uint8Array(10), 4, 4), TypeError);
  });

  it('fails with an actionable error when the build or the model is missing or broken', { timeout: 20_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'grader-'));
    try {
      assert.throws(() => locateGrader(dir), (e: unknown) => e instanceof GraderError && e.code === 'E_GRADER_MISSING' && /npm run setup/.test(e.message));
      const junk = join(dir, 'junk.dat');
      await writeFile(junk, 'not a model');
      await writeFile(join(dir, 'current.json'), JSON.stringify({ bin: locateGrader().bin, model: junk }));
      await assert.rejects(DlibGrader.create({ dir }), (e: unknown) => e instanceof GraderError && e.code === 'E_GRADER_EXITED' && /shape predictor/.test(e.message));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('closes idempotently and refuses frames after close', { timeout: 20_000 }, async () => {
    const g = await DlibGrader.create();
    const pending = g.grade(new Uint8Array(32 * 32 * 4), 32, 32);
    const closing = g.close();
    assert.equal(await pending, null, 'a frame queued before close() is still answered');
    await Promise.all([closing, g.close()]);
    await g.close();
    assert.equal(g.alive, false);
    await assert.rejects(g.grade(new Uint8Array(32 * 32 * 3), 32, 32), (e: unknown) => e instanceof GraderError && e.code === 'E_GRADER_CLOSED');
  });
});
