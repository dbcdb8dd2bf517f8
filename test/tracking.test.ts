/**
 * Tracker on real fixtures: detection on every target (paintings included), continuity on the
 * driving videos, expression parameters on frames checked by eye (d3: mouth opens from frame
 * ~298, wide at 305–320; d9: mouth open at frame 70, eyes fully closed at frames 13–16, 40–42,
 * 294–296 and 562), pose signs, multiple faces, filtering, API misuse, and the CLI; the
 * 478-point attention model (irises, refined lips and eyes) on d9.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildModels } from '../models/build.ts';
import type { FaceTrack } from '../shared/tracking.ts';
import { setLogLevel } from '../server/src/logger.ts';
import { decodeImage, readFrames, writeImage, type RawFrame } from '../server/src/media/video-io.ts';
import { InvalidStateError } from '../server/src/inference/errors.ts';
import { toFaceTrack, Tracker, TrackerError } from '../server/src/tracking/tracker.ts';
import { LEFT_EYE_INDICES, LEFT_IRIS_START, LIPS_INDICES, RIGHT_EYE_INDICES, RIGHT_IRIS_START } from '../server/src/tracking/attention-refinement.ts';
import { flexOptions } from '../models/attention-ops.ts';
import { findPackage, readPackedAssets } from '../models/sources.ts';
import { readTflite } from '../models/tflite-reader.ts';

setLogLevel('error');

const TARGETS = ['s1', 's2', 's5', 's9', 's10', 's12', 's42'];
const DRIVING = ['d3', 'd9', 'd12', 'd19'];

async function trackVideo(tracker: Tracker, name: string): Promise<FaceTrack[]> {
  tracker.reset();
  const out: FaceTrack[] = [];
  let i = 0;
  for await (const f of readFrames(`test/fixtures/driving/${name}.mp4`)) out.push(await tracker.track(f, (i++ * 1000) / 30));
  return out;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function noiseFrame(width: number, height: number): RawFrame {
  const data = new Uint8Array(width * height * 4);
  let s = 12345;
  for (let i = 0; i < data.length; i += 4) {
    s = (s * 1103515245 + 12345) >>> 0;
    const v = 60 + ((s >>> 16) % 60) + ((i / 4) % width) / 8;
    data[i] = v;
    data[i + 1] = v * 0.9;
    data[i + 2] = v * 0.8;
    data[i + 3] = 255;
  }
  return { width, height, format: 'rgba', data };
}

/** A copy of `src` shifted by (dx, dy) whole pixels on a canvas of the same size. */
function shifted(src: RawFrame, dx: number, dy: number): RawFrame {
  const out = new Uint8Array(src.data.length);
  for (let y = 0; y < src.height; y++) {
    const sy = Math.min(src.height - 1, Math.max(0, y - dy));
    for (let x = 0; x < src.width; x++) {
      const sx = Math.min(src.width - 1, Math.max(0, x - dx));
      out.set(src.data.subarray((sy * src.width + sx) * 4, (sy * src.width + sx) * 4 + 4), (y * src.width + x) * 4);
    }
  }
  return { ...src, data: out };
}

describe('Tracker on real faces', { timeout: 240_000 }, () => {
  let tracker: Tracker;
  const videos = new Map<string, FaceTrack[]>();

  before(async () => {
    await buildModels();
    tracker = await Tracker.create({ threads: 1 });
  });
  after(async () => {
    await tracker.close();
  });

  test('finds a face with 478 landmarks (the default attention model) inside the image in every fixture target, paintings included', { timeout: 60_000 }, async () => {
    const frames: [string, RawFrame][] = [];
    for (const t of TARGETS) frames.push([t, await decodeImage(`test/fixtures/targets/${t}.jpg`)]);
    for (const v of ['s18', 's20']) frames.push([`${v}.mp4`, await decodeImage(`test/fixtures/targets/${v}.mp4`)]);
    for (const [name, frame] of frames) {
      tracker.reset();
      const r = await tracker.track(frame, 0);
      assert.equal(r.faces, 1, `${name}: one face`);
      assert.ok(r.score > 0.9, `${name}: presence ${r.score}`);
      assert.equal(r.landmarks?.length, 478);
      const inside = (r.landmarks ?? []).filter(([x, y]) => x >= 0 && y >= 0 && x < frame.width && y < frame.height).length;
      assert.ok(inside > 470, `${name}: landmarks lie in the image (${inside}/478)`);
      assert.ok(r.pose && Math.abs(r.pose.yaw) < 45 && Math.abs(r.pose.roll) < 30, `${name}: plausible pose`);
      assert.ok(r.pose && r.pose.tx > 0 && r.pose.tx < frame.width && r.pose.ty > 0 && r.pose.ty < frame.height, `${name}: face centre in the image`);
    }
  });

  test('never loses the face for more than 2 consecutive frames on the driving videos', { timeout: 120_000 }, async () => {
    for (const name of DRIVING) {
      const track = await trackVideo(tracker, name);
      videos.set(name, track);
      let run = 0;
      let worst = 0;
      for (const r of track) {
        run = r.landmarks ? 0 : run + 1;
        worst = Math.max(worst, run);
      }
      assert.ok(track.length > 150, `${name}: decoded ${track.length} frames`);
      assert.ok(worst <= 2, `${name}: lost for ${worst} consecutive frames`);
      assert.ok(track.every((r) => r.faces <= 1 || r.landmarks), `${name}: face count is consistent`);
    }
  });

  test('jawOpen rises when the mouth opens (d3 frames 305–320, d9 frame 70) and not otherwise', { timeout: 60_000 }, async () => {
    const d3 = videos.get('d3') ?? (await trackVideo(tracker, 'd3'));
    const d9 = videos.get('d9') ?? (await trackVideo(tracker, 'd9'));
    const jaw = (t: FaceTrack[], from: number, to: number): number[] => t.slice(from, to + 1).map((r) => r.expression?.jawOpen ?? NaN);
    const closed3 = mean(jaw(d3, 0, 4));
    const open3 = mean(jaw(d3, 305, 320));
    // The attention model's refined inner lips read d3's resting mouth at ~0.03 (the 468-point
    // model ~0.02), so the ratio asserted is 4×, not 5×.
    assert.ok(open3 > 0.1 && open3 > 4 * closed3, `d3: open ${open3} vs closed ${closed3}`);
    const closed9 = mean(jaw(d9, 55, 62));
    const open9 = jaw(d9, 70, 70)[0] ?? 0;
    assert.ok(open9 > 0.05 && open9 > 4 * closed9, `d9: open ${open9} vs closed ${closed9}`);
    // Blinks do not open the jaw.
    assert.ok(Math.max(...jaw(d9, 13, 16)) < 0.02);
  });

  test('eye openness dips on blinks in d9 (frames 13–16, 40–42, 294–296, 562) for both eyes', { timeout: 60_000 }, async () => {
    const d9 = videos.get('d9') ?? (await trackVideo(tracker, 'd9'));
    const eyes = (i: number): [number, number] => [d9[i]?.expression?.eyeOpenLeft ?? NaN, d9[i]?.expression?.eyeOpenRight ?? NaN];
    const open = [0, 1, 2, 3, 4, 5, 6, 7, 25, 26, 27, 28, 29, 30].map(eyes);
    const openL = mean(open.map((e) => e[0]));
    const openR = mean(open.map((e) => e[1]));
    assert.ok(openL > 0.25 && openR > 0.25, `open eyes read ${openL}/${openR}`);
    for (const i of [13, 14, 15, 16, 40, 41, 42, 294, 295, 296, 562]) {
      const [l, r] = eyes(i);
      assert.ok(l < 0.75 * openL && r < 0.75 * openR, `frame ${i}: eyes ${l}/${r} vs open ${openL}/${openR}`);
    }
  });

  test('head pose has the documented signs: +yaw turns to the image right, +roll is clockwise', { timeout: 30_000 }, async () => {
    tracker.reset();
    const pearl = await tracker.track(await decodeImage('test/fixtures/targets/s10.jpg'), 0);
    assert.ok(pearl.pose && pearl.pose.yaw < -15, `s10 faces image left: yaw ${pearl.pose?.yaw}`);
    assert.ok(pearl.pose && pearl.pose.roll > 3, `s10 head tilts clockwise: roll ${pearl.pose?.roll}`);
    const d3 = videos.get('d3') ?? (await trackVideo(tracker, 'd3'));
    assert.ok((d3[270]?.pose?.yaw ?? 0) > 15, `d3#270 faces image right: yaw ${d3[270]?.pose?.yaw}`);
    assert.ok((d3[270]?.pose?.pitch ?? 0) < -5, `d3#270 looks down: pitch ${d3[270]?.pose?.pitch}`);
    tracker.reset();
    const frontal = await tracker.track(await decodeImage('test/fixtures/targets/s42.jpg'), 0);
    assert.ok(frontal.pose && Math.abs(frontal.pose.yaw) < 8 && Math.abs(frontal.pose.roll) < 8, 's42 is frontal');
  });

  test('reports faces 0 and null landmarks, pose and expression on a frame without a face', { timeout: 20_000 }, async () => {
    tracker.reset();
    const r = await tracker.track(noiseFrame(640, 480), 0);
    assert.deepEqual({ ...r, timeMs: 0 }, { frame: r.frame, timeMs: 0, faces: 0, score: 0, landmarks: null, pose: null, expression: null });
  });

  test('tracks the largest of two faces and reports that it saw two', { timeout: 20_000 }, async () => {
    const big = await decodeImage('test/fixtures/targets/s42.jpg');
    const small = await decodeImage('test/fixtures/targets/s1.jpg', { width: 320, height: 320 });
    const W = 832;
    const H = 512;
    const data = new Uint8Array(W * H * 4);
    for (let y = 0; y < H; y++) data.set(big.data.subarray(y * 512 * 4, (y + 1) * 512 * 4), y * W * 4);
    for (let y = 0; y < 320; y++) data.set(small.data.subarray(y * 320 * 4, (y + 1) * 320 * 4), ((y + 96) * W + 512) * 4);
    tracker.reset();
    const r = await tracker.track({ width: W, height: H, format: 'rgba', data }, 0);
    assert.equal(r.faces, 2);
    assert.ok(r.pose && r.pose.tx < 512, `the larger (left) face is tracked, tx ${r.pose?.tx}`);
  });

  test('One Euro filtering removes jitter on a still face and follows a fast move within 3 frames', { timeout: 60_000 }, async () => {
    const base = await decodeImage('test/fixtures/targets/s42.jpg');
    const raw = await Tracker.create({ filter: false, detectIntervalMs: 0 });
    const smooth = await Tracker.create({ detectIntervalMs: 0 });
    try {
      const nose = 4;
      const xs: { raw: number[]; smooth: number[] } = { raw: [], smooth: [] };
      const shifts = [0, 1, -1, 2, 0, -2, 1, 0, -1, 2, 1, -2, 0, 1, -1, 0, 2, -1, 1, 0, -2, 1, 0, 2];
      for (let i = 0; i < shifts.length; i++) {
        const f = shifted(base, shifts[i] ?? 0, 0);
        const a = await raw.process(f, i * 33);
        const b = await smooth.process(f, i * 33);
        if (i >= 4) {
          xs.raw.push(a.landmarks?.[3 * nose] ?? NaN);
          xs.smooth.push(b.landmarks?.[3 * nose] ?? NaN);
        }
      }
      const sd = (v: number[]): number => Math.sqrt(mean(v.map((x) => (x - mean(v)) ** 2)));
      assert.ok(sd(xs.smooth) < 0.5 * sd(xs.raw), `jitter: filtered sd ${sd(xs.smooth)} vs raw ${sd(xs.raw)}`);
      // A 40-pixel jump: the filtered nose is within 4 px of the raw one 3 frames later.
      let gap = Infinity;
      for (let k = 0; k < 3; k++) {
        const f = shifted(base, 40, 0);
        const a = await raw.process(f, (shifts.length + k) * 33);
        const b = await smooth.process(f, (shifts.length + k) * 33);
        gap = Math.abs((a.landmarks?.[3 * nose] ?? 0) - (b.landmarks?.[3 * nose] ?? 0));
      }
      assert.ok(gap < 4, `lag after a fast move: ${gap} px`);
    } finally {
      await raw.close();
      await smooth.close();
    }
  });

  test('exposes pose-normalised expression offsets and reuses its per-frame buffers', { timeout: 20_000 }, async () => {
    const img = await decodeImage('test/fixtures/targets/s42.jpg');
    tracker.reset();
    const a = await tracker.process(img, 0);
    const offsets = a.expressionOffsets;
    assert.ok(offsets instanceof Float32Array && offsets.length === 468 * 3);
    assert.ok(a.canonicalLandmarks instanceof Float32Array);
    // Pose-normalised: offsets are small next to the mesh size (~15 units).
    assert.ok(offsets.every((v) => Math.abs(v) < 3), 'offsets stay near the canonical mesh');
    const b = await tracker.process(img, 33);
    assert.equal(b.expressionOffsets, offsets, 'the same buffer is reused');
    assert.equal(b.landmarks, a.landmarks);
    assert.equal(toFaceTrack(b).landmarks?.length, 478);
  });
});

/** Even-odd point-in-polygon test in image coordinates. */
function inside(p: [number, number, number], poly: [number, number, number][]): boolean {
  let c = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i] ?? [0, 0];
    const [xj, yj] = poly[j] ?? [0, 0];
    if (yi > p[1] !== yj > p[1] && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) c = !c;
  }
  return c;
}

/** Lid contour as a closed outline: lower lid outer→inner corner (first 9), then upper lid back. */
function eyeOutline(lm: [number, number, number][], eye: readonly number[]): [number, number, number][] {
  const order = [...eye.slice(0, 9), ...eye.slice(9, 16).reverse()];
  return order.map((i) => lm[i] ?? [0, 0, 0]);
}

describe('Tracker with the 478-point attention model', { timeout: 240_000 }, () => {
  const BLINKS = [13, 14, 15, 16, 40, 41, 42, 294, 295, 296, 562];
  const OPEN = [0, 1, 2, 3, 4, 5, 6, 7, 25, 26, 27, 28, 29, 30];
  let attention: FaceTrack[] = [];
  let mesh468: FaceTrack[] = [];

  before(async () => {
    await buildModels();
    const a = await Tracker.create({ threads: 1, attention: true });
    const b = await Tracker.create({ threads: 1 });
    try {
      assert.equal(a.landmarkCount, 478);
      attention = await trackVideo(a, 'd9');
      mesh468 = await trackVideo(b, 'd9');
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('the refinement index maps are the ones the model places its lips and eye crops with', { timeout: 20_000 }, async () => {
    const pkg = await findPackage('@mediapipe/face_mesh');
    const files = await readPackedAssets(pkg, 'face_mesh_solution_packed_assets_loader.js', 'face_mesh_solution_packed_assets.data', ['face_landmark_with_attention.tflite']);
    const src = files.get('face_landmark_with_attention.tflite');
    assert.ok(src);
    const model = readTflite(src.data);
    const subsets = model.operators.filter((op) => op.customCode === 'Landmarks2TransformMatrix').map((op) => flexOptions(op.customOptions).get('subset_idxs'));
    assert.deepEqual(subsets, [LIPS_INDICES, LEFT_EYE_INDICES, RIGHT_EYE_INDICES]);
  });

  test('tracks 478 points on every d9 frame with both iris centres inside their eye outlines while the eyes are open', { timeout: 20_000 }, () => {
    let open = 0;
    for (const [i, r] of attention.entries()) {
      assert.ok(r.landmarks, `frame ${i}: face found`);
      assert.equal(r.landmarks.length, 478);
      if ((r.expression?.eyeOpenLeft ?? 0) < 0.15 || (r.expression?.eyeOpenRight ?? 0) < 0.15) continue;
      open++;
      const left = r.landmarks[LEFT_IRIS_START] ?? [0, 0, 0];
      const right = r.landmarks[RIGHT_IRIS_START] ?? [0, 0, 0];
      assert.ok(inside(left, eyeOutline(r.landmarks, LEFT_EYE_INDICES)), `frame ${i}: iris ${LEFT_IRIS_START} inside the eye around point 33`);
      assert.ok(inside(right, eyeOutline(r.landmarks, RIGHT_EYE_INDICES)), `frame ${i}: iris ${RIGHT_IRIS_START} inside the eye around point 263`);
    }
    // Measured: eyes open (both ≥ 0.15) in 466 of 587 frames; d9 blinks and looks down often.
    assert.ok(open > 0.7 * attention.length, `eyes open in ${open} of ${attention.length} frames`);
  });

  test('eye openness dips on d9 blinks at least as much as with the 468-point model', { timeout: 20_000 }, (t) => {
    const dip = (track: FaceTrack[], side: 'eyeOpenLeft' | 'eyeOpenRight'): number => {
      const v = (i: number): number => track[i]?.expression?.[side] ?? NaN;
      return 1 - mean(BLINKS.map(v)) / mean(OPEN.map(v));
    };
    for (const side of ['eyeOpenLeft', 'eyeOpenRight'] as const) {
      const a = dip(attention, side);
      const b = dip(mesh468, side);
      t.diagnostic(`${side}: blink dip (1 − blink/open mean) 478-point ${a.toFixed(3)}, 468-point ${b.toFixed(3)}`);
      assert.ok(Number.isFinite(a) && a >= b, `${side}: attention dip ${a} vs 468-point ${b}`);
    }
  });
});

describe('Tracker API misuse', { timeout: 60_000 }, () => {
  test('rejects concurrent calls (E_TRACKER_BUSY), bad frames (TypeError) and use after close', { timeout: 30_000 }, async () => {
    await buildModels();
    const tracker = await Tracker.create();
    const img = await decodeImage('test/fixtures/targets/s42.jpg');
    const first = tracker.process(img, 0);
    await assert.rejects(tracker.process(img, 1), (e: unknown) => e instanceof TrackerError && e.code === 'E_TRACKER_BUSY');
    await first;
    // @ts-expect-error a frame needs width, height, format and data
    await assert.rejects(tracker.process({ width: 2 }, 0), TypeError);
    await assert.rejects(tracker.process({ ...img, format: 'yuv420p' }, 0), TypeError);
    await assert.rejects(tracker.process(img, NaN), TypeError);
    await assert.rejects(Tracker.create({ minDetectionScore: 2 }), TypeError);
    await Promise.all([tracker.close(), tracker.close()]);
    await assert.rejects(tracker.process(img, 0), InvalidStateError);
  });
});

describe('track CLI', { timeout: 120_000 }, () => {
  let dir: string;
  before(async () => {
    await buildModels();
    dir = await mkdtemp(join(tmpdir(), 'reenact-track-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]): { status: number | null; stderr: string; stdout: string } => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'server/src/tracking/cli.ts', ...args], { encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, stderr: r.stderr, stdout: r.stdout };
  };

  test('exits 2 with a clear message for a missing file, a non-image and a corrupt video', { timeout: 60_000 }, async () => {
    const missing = cli(join(dir, 'nope.jpg'), '--out', join(dir, 'o.json'));
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /no such file/);
    const text = join(dir, 'notes.txt');
    await import('node:fs/promises').then((fs) => fs.writeFile(text, 'not an image'));
    const notImage = cli(text);
    assert.equal(notImage.status, 2);
    assert.match(notImage.stderr, /not a readable image or video/);
    const corrupt = join(dir, 'broken.mp4');
    const bytes = await readFile('test/fixtures/driving/d12.mp4');
    await import('node:fs/promises').then((fs) => fs.writeFile(corrupt, bytes.subarray(0, 20_000)));
    const bad = cli(corrupt);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /E_MEDIA_CORRUPT/);
    assert.equal(cli().status, 2, 'no input: usage and exit 2');
  });

  test('writes faces 0 for an image without a face, and downscales an oversized image saying so', { timeout: 60_000 }, async () => {
    const png = join(dir, 'noise.png');
    await writeImage(png, noiseFrame(320, 240));
    const r = cli(png, '--out', join(dir, 'noise.json'));
    assert.equal(r.status, 0, r.stderr);
    const recs = JSON.parse(await readFile(join(dir, 'noise.json'), 'utf8')) as FaceTrack[];
    assert.deepEqual(recs, [{ frame: 0, timeMs: 0, faces: 0, score: 0, landmarks: null, pose: null, expression: null }]);
    const big = cli('test/fixtures/targets/s2.jpg', '--max-side', '1024', '--out', join(dir, 's2.json'));
    assert.equal(big.status, 0, big.stderr);
    assert.match(big.stderr, /2048x2048: tracking on a 1024x1024 downscale/);
    const [rec] = JSON.parse(await readFile(join(dir, 's2.json'), 'utf8')) as FaceTrack[];
    assert.ok(rec?.pose && rec.pose.tx > 700 && rec.pose.tx < 1400, 'coordinates are in input (2048 px) pixels');
  });

  test('writes one record per video frame with landmarks in input pixels and progress on stderr', { timeout: 60_000 }, async () => {
    const out = join(dir, 'd12.jsonl');
    const r = cli('test/fixtures/driving/d12.mp4', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /frame \d+\/183/);
    const recs = (await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as FaceTrack);
    assert.equal(recs.length, 183);
    assert.deepEqual(recs.map((x) => x.frame), [...recs.keys()]);
    const withFace = recs.filter((x) => x.landmarks);
    assert.ok(withFace.length > 175);
    assert.ok(withFace.every((x) => x.landmarks?.length === 478 && x.landmarks.every(([px, py]) => px > -50 && px < 562 && py > -50 && py < 562)));
    assert.ok(Math.abs((recs[25]?.timeMs ?? 0) - 1000) < 1, 'timeMs follows the 25 fps source');
  });
});
