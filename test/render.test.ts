/**
 * The geometric renderer on real footage, measured with the project's own
 * tracker (server/src/tracking, models from npm run build:models).
 *
 * Fidelity protocol: the driving clip is tracked once at its full frame rate
 * by the pipeline tracker (its default One Euro filter). To keep the suite
 * short, d9 uses its first 200 frames (speech and five blinks; the rest is
 * more of the same), d3 all 354 (wink, frowns with closed eyes, speech, a wide
 * open mouth), d19 all 250 (speech, smiles with teeth). Each of
 * the 7 still targets is rendered at 256² and the output is tracked by a
 * second, unfiltered tracker (a filter would add a frame of lag to the
 * measurement). Mouth opening = inner-lip gap over the inter-ocular distance;
 * eye openness = lid gap over eye width (see server/src/render/fidelity.ts).
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { FaceTrack } from '../shared/tracking.ts';
import { probeMedia, writeImage, type RawFrame } from '../server/src/media/video-io.ts';
import { fidelityFromTracks, measureSelfReenactment, trackClip, type FidelityResult } from '../server/src/render/fidelity.ts';
import { cropResize } from '../server/src/render/image-ops.ts';
import { enrollTarget, faceCrop, type EnrolledTarget } from '../server/src/render/target.ts';
import { Tracker } from '../server/src/tracking/tracker.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIX = join(ROOT, 'test', 'fixtures');
const ART = join(ROOT, 'test', 'artifacts');
const STILLS = ['s1', 's2', 's5', 's9', 's10', 's12', 's42'];
/** Frames used per driving clip (from the start, full frame rate). */
const DRIVERS: Record<string, number> = { d3: 354, d9: 200, d19: 250 };
const SIZE = 256;
/**
 * The issue's target, asserted for every pair. Driving, enrollment and
 * measurement all use the default tracker, the 478-point attention model: its
 * blinks read fully shut where the 468-point model read a painted shut eye as
 * barely narrower than open (with it, the eyes on s9, s10 and s2 measured
 * 0.66–0.83).
 */
const MIN_CORR = 0.85;

let pipeline: Tracker;
let measure: Tracker;
let tmp: string;
const targets = new Map<string, EnrolledTarget>();
const table: string[] = [];

before(async () => {
  pipeline = await Tracker.create({ threads: 1, detectIntervalMs: 0 });
  measure = await Tracker.create({ threads: 1, filter: false, detectIntervalMs: 0 });
  tmp = mkdtempSync(join(tmpdir(), 'render-test-'));
  mkdirSync(ART, { recursive: true });
  for (const s of STILLS) targets.set(s, await enrollTarget(join(FIX, 'targets', `${s}.jpg`), pipeline, { size: SIZE, cacheDir: join(tmp, 'cache') }));
}, { timeout: 60_000 });

after(async () => {
  await pipeline?.close();
  await measure?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  if (table.length) console.log(['pair           frames  face   mouth r  eye r', ...table].join('\n'));
});

/** driving | output strip of a few frames, written for people to look at. */
async function saveStrip(name: string, pairs: [RawFrame, Uint8Array][], drivingTrack: FaceTrack | undefined): Promise<void> {
  const crop = drivingTrack?.landmarks ? faceCrop(Float64Array.from(drivingTrack.landmarks.flat()), pairs[0]![0].width, pairs[0]![0].height) : null;
  const W = SIZE * 2, H = SIZE * pairs.length;
  const data = new Uint8Array(W * H * 4);
  pairs.forEach(([frame, out], k) => {
    const left = cropResize(frame, crop ?? { x: 0, y: 0, side: Math.min(frame.width, frame.height) }, SIZE).data;
    for (let y = 0; y < SIZE; y++) {
      data.set(left.subarray(y * SIZE * 4, (y + 1) * SIZE * 4), ((k * SIZE + y) * W) * 4);
      data.set(out.subarray(y * SIZE * 4, (y + 1) * SIZE * 4), ((k * SIZE + y) * W + SIZE) * 4);
    }
  });
  await writeImage(join(ART, `${name}.png`), { width: W, height: H, format: 'rgba', data });
}

for (const [driver, count] of Object.entries(DRIVERS)) {
  describe(`fidelity: ${driver} driving every still target`, () => {
    it(`${driver}: mouth opening and eye openness of the output correlate ≥ ${MIN_CORR} with the driving and a face is found in every output frame`, { timeout: 150_000 }, async () => {
      const keepIdx = [0.15, 0.4, 0.65, 0.9].map((f) => Math.floor(count * f));
      const { tracks, frames } = await trackClip(join(FIX, 'driving', `${driver}.mp4`), pipeline, 1, count, new Set(keepIdx));
      const failures: string[] = [];
      for (const s of STILLS) {
        const shots: [RawFrame, Uint8Array][] = [];
        const r: FidelityResult = await fidelityFromTracks(tracks, targets.get(s)!, measure, (i, out) => {
          if (frames.has(i)) shots.push([frames.get(i)!, Uint8Array.from(out)]);
        });
        table.push(`${`${driver}->${s}`.padEnd(15)}${String(r.frames).padStart(6)}  ${(r.faceFound * 100).toFixed(0).padStart(4)}%  ${r.mouthCorr.toFixed(3)}    ${r.eyeCorr.toFixed(3)}`);
        if (s === 's42' || s === 's9') await saveStrip(`strip-${driver}-${s}`, shots, tracks[keepIdx[0]!]);
        if (r.faceFound < 1) failures.push(`${s}: face found in ${(r.faceFound * 100).toFixed(1)}% of frames`);
        if (!(r.mouthCorr >= MIN_CORR)) failures.push(`${s}: mouth r=${r.mouthCorr.toFixed(3)}`);
        if (!(r.eyeCorr >= MIN_CORR)) failures.push(`${s}: eye r=${r.eyeCorr.toFixed(3)}`);
      }
      assert.deepEqual(failures, [], `${driver}: ${failures.join('; ')}`);
    });
  });
}

describe('self-reenactment', () => {
  // Floor: measured 31.96 dB / 0.900 over these 90 frames with the default attention tracker
  // (32.71 dB / 0.913 with the 468-point model: the refined lip and eye contours move more than
  // the plain mesh's, and the output loses at the mouth, where synthesised teeth replace the real
  // ones, and at the lids). Holding the real first frame scores 34.7 dB / 0.938: d19 barely moves.
  // Asserted: ≥ 30 dB and ≥ 0.88, and no more than 3 dB / 0.045 under the held frame (measured
  // 2.7 dB / 0.039). For scale: the real frames against themselves shifted 2 px score
  // 28.1 dB / 0.85, shifted 4 px 24.1 dB / 0.75, so a warp misregistered by 2 px or more fails.
  it('d19 reenacting its own first frame scores ≥ 30 dB PSNR and ≥ 0.88 SSIM against the real frames, within 3 dB / 0.045 SSIM of holding the first frame', { timeout: 120_000 }, async () => {
    const r = await measureSelfReenactment({
      driving: join(FIX, 'driving', 'd19.mp4'), size: SIZE, tracker: pipeline, maxFrames: 90, firstFramePath: join(tmp, 'd19-first.png'),
    });
    console.log(`self-reenactment d19 (${r.frames} frames, ${SIZE}²): PSNR ${r.psnr.toFixed(2)} dB, SSIM ${r.ssim.toFixed(4)}; holding the first frame: PSNR ${r.staticPsnr.toFixed(2)} dB, SSIM ${r.staticSsim.toFixed(4)}`);
    writeFileSync(join(ART, 'self-reenactment-d19.json'), JSON.stringify({ ...r, psnrSeries: undefined, staticPsnrSeries: undefined }, null, 2));
    assert.equal(r.frames, 90);
    assert.ok(r.psnr >= 30 && r.ssim >= 0.88, `PSNR ${r.psnr.toFixed(2)} dB, SSIM ${r.ssim.toFixed(4)}`);
    assert.ok(r.psnr >= r.staticPsnr - 3 && r.ssim >= r.staticSsim - 0.045, 'output drifts from the real frames');
  });
});

describe('reenact CLI', () => {
  // Asynchronous, so the trackers' worker heartbeats keep flowing while the CLI runs.
  const cli = (args: string[]): Promise<{ status: number | null; stderr: string }> =>
    new Promise((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'server', 'src', 'render', 'cli.ts'), ...args], {
        encoding: 'utf8', env: { ...process.env, REENACT_LOG_LEVEL: 'warn' }, timeout: 120_000,
      }, (err, _stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr }));
    });

  it('writes one output frame per driving frame at the driving fps (d12: 183 frames at 25 fps), side by side', { timeout: 150_000 }, async () => {
    const out = join(tmp, 'd12-s1.mp4');
    const r = await cli(['--driving', join(FIX, 'driving', 'd12.mp4'), '--target', join(FIX, 'targets', 's1.jpg'), '--out', out, '--side-by-side', '--no-cache']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /fps\s+ETA/);
    const info = await probeMedia(out);
    assert.equal(info.frames, 183);
    assert.equal(info.fps, 25);
    assert.equal(info.width, 2 * SIZE);
    assert.equal(info.height, SIZE);
  });

  it('a target clip is enrolled with a mouth library and rendered at --size 512 (and --no-lip-zero is taken)', { timeout: 150_000 }, async () => {
    // A 2 s, 640x360 cut of s18 keeps enrollment (two decoding passes) short.
    const clip = join(tmp, 's18-short.mp4');
    spawnSync('ffmpeg', ['-v', 'error', '-y', '-i', join(FIX, 'targets', 's18.mp4'), '-frames:v', '60', '-vf', 'scale=640:360', '-an', clip]);
    const out = join(tmp, 'd19-s18.mp4');
    const r = await cli(['--driving', join(FIX, 'driving', 'd19.mp4'), '--target', clip, '--out', out, '--size', '512', '--max-frames', '30', '--no-cache', '--no-lip-zero']);
    assert.equal(r.status, 0, r.stderr);
    const info = await probeMedia(out);
    assert.deepEqual([info.frames, info.width, info.height, info.fps], [30, 512, 512, 30]);
  });

  it('bad input exits with code 2 and a clear message: missing file, corrupt file, no face in the target, a huge image, a bad option', { timeout: 120_000 }, async () => {
    const d = join(FIX, 'driving', 'd19.mp4');
    const o = join(tmp, 'x.mp4');
    const corrupt = join(tmp, 'corrupt.jpg');
    writeFileSync(corrupt, 'this is not a jpeg');
    const blank = join(tmp, 'blank.png');
    const huge = join(tmp, 'huge.png');
    spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=gray:s=320x240', '-frames:v', '1', blank]);
    spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=gray:s=8000x6000', '-frames:v', '1', huge]);
    const cases: [string[], RegExp][] = [
      [['--driving', join(tmp, 'nope.mp4'), '--target', blank, '--out', o], /E_MEDIA_MISSING/],
      [['--driving', d, '--target', corrupt, '--out', o], /E_MEDIA_CORRUPT/],
      [['--driving', d, '--target', blank, '--out', o, '--no-cache'], /no face found in the target.*E_RENDER_NO_FACE/],
      [['--driving', d, '--target', huge, '--out', o, '--no-cache'], /E_MEDIA_TOO_LARGE/],
      [['--driving', d, '--target', blank, '--out', o, '--size', '300'], /--size must be 256 or 512/],
      [['--driving', d, '--out', o], /required/],
    ];
    for (const [args, msg] of cases) {
      const r = await cli(args);
      assert.equal(r.status, 2, `${args.join(' ')}: exit ${String(r.status)}\n${r.stderr}`);
      assert.match(r.stderr, msg);
    }
  });

  it('driving frames without a face still produce output frames (the target holds, then eases to neutral)', { timeout: 60_000 }, async () => {
    const grey = join(tmp, 'grey.mp4');
    spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=gray:s=320x240:r=30', '-frames:v', '20', '-pix_fmt', 'yuv420p', grey]);
    const out = join(tmp, 'grey-out.mp4');
    const r = await cli(['--driving', grey, '--target', join(FIX, 'targets', 's42.jpg'), '--out', out, '--no-cache']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /without a face: 20/);
    assert.equal((await probeMedia(out)).frames, 20);
  });
});
