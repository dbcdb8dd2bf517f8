/**
 * Output profiles (server/src/render/canvas.ts) and paste-back
 * (server/src/render/compositor.ts).
 *
 * Layout: over a grid of picture sizes and face positions, every profile's
 * canvas has its stated size, never cuts the face crop, never enlarges the
 * picture beyond MAX_UPSCALE, and frames a large picture with the face at
 * faceShare() of the height (FACE_SHARE; less on a portrait canvas).
 *
 * Compositing: the face square lands where it was cut from; outside it the
 * canvas is the picture's own pixels, exactly; the blend runs from the face at
 * the centre to the picture at the square's edge; the live handler and the
 * offline CLI produce the canvases on a real target.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CANVAS_SIZES, MAX_UPSCALE, faceShare, layoutCanvas } from '../server/src/render/canvas.ts';
import { Compositor, compositorFor } from '../server/src/render/compositor.ts';
import { cropResize, type CropRect } from '../server/src/render/image-ops.ts';
import { i420Size, rgbaToI420 } from '../server/src/media/convert.ts';
import { decodeImage, probeMedia, type RawFrame } from '../server/src/media/video-io.ts';
import { rootLogger } from '../server/src/logger.ts';
import { LocalRunner } from '../server/src/inference/local-runner.ts';
import { REENACT_HANDLER, reenactHandlerSpec, type FrameResult } from '../server/src/pipeline/reenact-handler.ts';
import { OUTPUT_PROFILES } from '../shared/protocol.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIX = join(ROOT, 'test', 'fixtures');

/** A smooth synthetic picture with some structure (no tracker needed). */
function picture(w: number, h: number): RawFrame {
  const data = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 4;
      data[o] = 60 + ((150 * x) / w) | 0;
      data[o + 1] = 60 + ((150 * y) / h) | 0;
      data[o + 2] = 128 + 60 * Math.sin(x / 23) * Math.cos(y / 31);
      data[o + 3] = 255;
    }
  }
  return { width: w, height: h, format: 'rgba', data };
}

const PICTURES: [number, number][] = [[200, 300], [375, 500], [512, 512], [1145, 1145], [1280, 720], [480, 908], [4000, 3000]];
/** Face crops as (centre x, centre y, side) shares of the picture's shorter side / size. */
const FACES: [number, number, number][] = [[0.5, 0.45, 0.5], [0.2, 0.3, 0.3], [0.85, 0.8, 0.25], [0.5, 0.5, 0.95], [0.5, 0.4, 0.15]];

function cropFor(w: number, h: number, [fx, fy, fs]: [number, number, number]): CropRect {
  const side = Math.min(w, h) * fs;
  return { x: Math.min(Math.max(fx * w - side / 2, 0), w - side), y: Math.min(Math.max(fy * h - side / 2, 0), h - side), side };
}

describe('output profile layout', () => {
  it('every profile has its size, keeps the whole face crop, never enlarges past the limit, and keeps the picture inside the canvas', () => {
    let cases = 0;
    for (const [w, h] of PICTURES) {
      for (const f of FACES) {
        const crop = cropFor(w, h, f);
        for (const profile of OUTPUT_PROFILES) {
          const l = layoutCanvas(profile, w, h, crop, 512, 1920);
          const what = `${profile} on ${w}x${h} with crop ${JSON.stringify(crop)}`;
          if (profile === 'face') assert.deepEqual([l.width, l.height], [512, 512], what);
          else if (profile === 'frame') {
            const s = Math.min(1, 1920 / Math.max(w, h));
            assert.deepEqual([l.width, l.height], [Math.floor((w * s) / 2) * 2, Math.floor((h * s) / 2) * 2], what);
          } else assert.deepEqual([l.width, l.height], [...CANVAS_SIZES[profile]], what);
          assert.equal(l.width % 2, 0, what);
          assert.equal(l.height % 2, 0, what);
          // The face square is on the canvas, whole.
          assert.ok(l.face.x >= -0.5 && l.face.y >= -0.5, `${what}: face starts off the canvas (${l.face.x}, ${l.face.y})`);
          assert.ok(l.face.x + l.face.side <= l.width + 0.5 && l.face.y + l.face.side <= l.height + 0.5, `${what}: face ends off the canvas`);
          if (profile !== 'face') assert.ok(l.scale <= MAX_UPSCALE + 1e-9, `${what}: picture enlarged ${l.scale.toFixed(2)}×`);
          assert.ok(l.content.x >= 0 && l.content.y >= 0 && l.content.x + l.content.w <= l.width && l.content.y + l.content.h <= l.height, `${what}: content off the canvas`);
          cases++;
        }
      }
    }
    assert.equal(cases, PICTURES.length * FACES.length * OUTPUT_PROFILES.length);
  });

  it('a large picture fills a call canvas with no bars and the face at its stated share of the height', () => {
    const crop = cropFor(4000, 3000, [0.5, 0.45, 0.25]);
    for (const profile of ['720p', '1080p', '720x1280'] as const) {
      const l = layoutCanvas(profile, 4000, 3000, crop, 512);
      assert.deepEqual([l.content.x, l.content.y, l.content.w, l.content.h], [0, 0, l.width, l.height], `${profile}: bars on a large picture`);
      assert.ok(Math.abs(l.face.side / l.height - faceShare(l.width / l.height)) < 0.01, `${profile}: face takes ${(l.face.side / l.height).toFixed(3)} of the height`);
    }
  });

  it('a picture too small or of the wrong shape is letterboxed, not enlarged past the limit', () => {
    const crop = cropFor(200, 300, [0.5, 0.45, 0.5]);
    const l = layoutCanvas('1080p', 200, 300, crop, 512);
    assert.ok(l.content.w < l.width && l.content.h < l.height, 'a 200×300 picture fills a 1080p canvas');
    assert.ok(Math.abs(l.content.h - 300 * MAX_UPSCALE) <= 1, `content height ${l.content.h}`);
  });
});

describe('paste-back', () => {
  const pic = picture(640, 480);
  const crop: CropRect = { x: 200, y: 100, side: 240 };
  const SIZE = 256;

  function bg(c: Compositor): Uint8Array {
    const blank = new Uint8Array(c.frameBytes);
    // The background alone: compose a face fully transparent by giving alpha 0 everywhere is not possible,
    // so convert the picture the way the compositor does (the 'frame' profile at native size is the picture).
    rgbaToI420(pic.data, pic.width, pic.height, blank, c.width, c.height);
    return blank;
  }

  it('outside the face square the canvas is the picture, exactly; inside, the picture comes back through the render within 35 dB', () => {
    const c = compositorFor(pic, { crop, size: SIZE }, 'frame')!;
    assert.deepEqual([c.width, c.height], [640, 480]);
    const out = new Uint8Array(c.frameBytes);
    // The face the renderer would draw for an unmoved head: the crop itself.
    c.compose(cropResize(pic, crop, SIZE).data, SIZE, out);
    const ref = bg(c);
    let outside = 0, se = 0, n = 0;
    for (let y = 0; y < 480; y++) {
      for (let x = 0; x < 640; x++) {
        const i = y * 640 + x;
        const inside = x >= crop.x && x < crop.x + crop.side && y >= crop.y && y < crop.y + crop.side;
        if (!inside) outside += out[i] !== ref[i] ? 1 : 0;
        else {
          se += (out[i]! - ref[i]!) ** 2;
          n++;
        }
      }
    }
    assert.equal(outside, 0, `${outside} luma pixels changed outside the face square`);
    const db = 10 * Math.log10(65025 / Math.max(se / n, 1e-9));
    console.log(`paste-back of an unmoved face: luma PSNR inside the square ${db.toFixed(1)} dB`);
    assert.ok(db >= 35, `inside the square: ${db.toFixed(1)} dB`);
  });

  it('the blend runs from the face at the centre to the picture at the edge, monotonically', () => {
    const c = compositorFor(pic, { crop, size: SIZE }, 'frame')!;
    const red = new Uint8Array(SIZE * SIZE * 4);
    for (let i = 0; i < red.length; i += 4) red.set([255, 0, 0, 255], i);
    const out = new Uint8Array(c.frameBytes);
    c.compose(red, SIZE, out);
    const ref = bg(c);
    const redY = ((66 * 255 + 128) >> 8) + 16;
    const row = crop.y + crop.side / 2;
    const centre = out[row * 640 + crop.x + crop.side / 2]!;
    assert.ok(Math.abs(centre - redY) <= 1, `centre luma ${centre}, red is ${redY}`);
    assert.ok(Math.abs(out[row * 640 + crop.x]! - ref[row * 640 + crop.x]!) <= 1, 'the square edge is not the picture');
    // Share of the face along the row from the edge inward: never decreasing.
    let last = -1;
    for (let x = crop.x; x < crop.x + crop.side / 2; x++) {
      const i = row * 640 + x;
      const d = ref[i]! - redY;
      if (Math.abs(d) < 20) continue;
      const share = (ref[i]! - out[i]!) / d;
      assert.ok(share >= last - 0.03, `the blend falls back at x=${x}: ${share.toFixed(3)} after ${last.toFixed(3)}`);
      last = Math.max(last, share);
    }
    assert.ok(last > 0.97, `the face reaches only ${last.toFixed(3)} inside the square`);
  });

  it('refuses buffers of the wrong size', () => {
    const c = compositorFor(pic, { crop, size: SIZE }, '720p')!;
    assert.throws(() => c.compose(new Uint8Array(10), SIZE, new Uint8Array(c.frameBytes)), /face has 10 bytes/);
    assert.throws(() => c.compose(new Uint8Array(SIZE * SIZE * 4), SIZE, new Uint8Array(5)), /output has 5 bytes/);
    assert.equal(c.frameBytes, i420Size(1280, 720));
  });
});

describe('profiles on a real target', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'reenact-canvas-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('the live handler renders each profile at its size, and switching profile mid-session takes effect on the next frame', async () => {
    const target = join(FIX, 'targets', 's12.jpg');
    const native = await decodeImage(target);
    const runner = await LocalRunner.create([reenactHandlerSpec({ threads: 1, cacheDir: join(tmp, 'cache') })], rootLogger.child('test'));
    try {
      await runner.run(REENACT_HANDLER, { op: 'open', sessionId: 'a', targetPath: target, size: 256 });
      const want: Record<string, [number, number]> = { face: [256, 256], frame: [native.width & ~1, native.height & ~1], '720p': [1280, 720], '1080p': [1920, 1080], '720x1280': [720, 1280] };
      for (const output of OUTPUT_PROFILES) {
        const res = await runner.run<FrameResult>(REENACT_HANDLER, { op: 'landmarks', sessionId: 'a', points: null, size: 256, lipZero: true, output, timeMs: 0 });
        assert.deepEqual([res.width, res.height], want[output], output);
        assert.equal(res.data.length, i420Size(res.width, res.height), output);
      }
    } finally {
      await runner.close();
    }
  });

  it('npm run reenact -- --output 720p and --output frame write those sizes, and --side-by-side with a profile is refused', async () => {
    const run = (args: string[]) => spawnSync('node', ['--import', 'tsx', join(ROOT, 'server', 'src', 'render', 'cli.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 });
    const base = ['--driving', join(FIX, 'driving', 'd3.mp4'), '--target', join(FIX, 'targets', 's12.jpg'), '--max-frames', '8', '--no-audio'];
    for (const [output, size] of [['720p', [1280, 720]], ['frame', [374, 500]]] as const) {
      const out = join(tmp, `${output}.mp4`);
      const r = run([...base, '--output', output, '--out', out]);
      assert.equal(r.status, 0, r.stderr);
      const info = await probeMedia(out);
      assert.deepEqual([info.width, info.height], [...size], output);
    }
    const bad = run([...base, '--output', 'frame', '--side-by-side', '--out', join(tmp, 'x.mp4')]);
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /side-by-side/);
    const unknown = run([...base, '--output', '4k', '--out', join(tmp, 'x.mp4')]);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /--output must be one of/);
  });
});
