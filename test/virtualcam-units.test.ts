/** Unit tests of the virtual camera's frame handling (no server, no wrtc peers). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blackFrame, fitInto, i420Bytes } from '../server/src/virtualcam/i420.ts';
import { rootLogger } from '../server/src/logger.ts';
import { PcmConverter } from '../server/src/virtualcam/pcm-convert.ts';

function solid(w: number, h: number, y: number, u: number, v: number): Uint8Array {
  const f = new Uint8Array(i420Bytes(w, h));
  const cw = (w + 1) >> 1;
  const ch = (h + 1) >> 1;
  f.fill(y, 0, w * h);
  f.fill(u, w * h, w * h + cw * ch);
  f.fill(v, w * h + cw * ch);
  return f;
}

test('fitInto copies a frame of the output size unchanged', { timeout: 5_000 }, () => {
  const src = solid(64, 48, 100, 90, 80);
  src[5] = 7;
  const dst = blackFrame(64, 48);
  fitInto({ width: 64, height: 48, data: src }, dst, 64, 48);
  assert.deepEqual(dst, src);
});

test('fitInto letterboxes a square frame into 4:3 with black bars and keeps chroma aligned', { timeout: 5_000 }, () => {
  const dst = new Uint8Array(i420Bytes(640, 480));
  fitInto({ width: 256, height: 256, data: solid(256, 256, 200, 60, 180) }, dst, 640, 480);
  // 256→480 scale: a 480x480 picture centred, 80 px bars left and right.
  assert.equal(dst[240 * 640 + 10], 16, 'left bar is black');
  assert.equal(dst[240 * 640 + 630], 16, 'right bar is black');
  assert.equal(dst[240 * 640 + 320], 200, 'centre is the picture');
  assert.equal(dst[240 * 640 + 80], 200, 'picture starts at x=80');
  assert.equal(dst[240 * 640 + 79], 16);
  const u = 640 * 480;
  const v = u + 320 * 240;
  assert.equal(dst[u + 120 * 320 + 10], 128, 'bar chroma is neutral');
  assert.equal(dst[u + 120 * 320 + 160], 60);
  assert.equal(dst[v + 120 * 320 + 160], 180);
  assert.equal(dst[v + 120 * 320 + 39], 128);
  assert.equal(dst[v + 120 * 320 + 40], 180);
});

test('fitInto scales a wide side-by-side frame down to fit, bars top and bottom', { timeout: 5_000 }, () => {
  const dst = new Uint8Array(i420Bytes(640, 480));
  fitInto({ width: 512, height: 256, data: solid(512, 256, 150, 128, 128) }, dst, 640, 480);
  assert.equal(dst[10 * 640 + 320], 16, 'top bar');
  assert.equal(dst[240 * 640 + 0], 150, 'full width at the middle');
  assert.equal(dst[470 * 640 + 320], 16, 'bottom bar');
});

/** A 440 Hz tone at `rate`, `ms` long, as chunks of 10 ms with `channels` copies of each sample. */
function toneChunks(rate: number, channels: number, ms: number, from = 0): { samples: Int16Array; sampleRate: number; channelCount: number; numberOfFrames: number }[] {
  const per = rate / 100;
  const out = [];
  for (let c = 0; c < ms / 10; c++) {
    const samples = new Int16Array(per * channels);
    for (let i = 0; i < per; i++) for (let k = 0; k < channels; k++) samples[i * channels + k] = Math.round(10_000 * Math.sin((2 * Math.PI * 440 * (from + c * per + i)) / rate));
    out.push({ samples, sampleRate: rate, channelCount: channels, numberOfFrames: per });
  }
  return out;
}

test('PcmConverter brings 16 kHz mono chunks to 48 kHz without seams, then passes 48 kHz chunks through', { timeout: 5_000 }, () => {
  const pcm = new PcmConverter(48_000, 1);
  const parts = toneChunks(16_000, 1, 200).map((c) => Array.from(pcm.convert(c)));
  const up = parts.flat();
  // 200 ms at 48 kHz, give or take the last interpolation step.
  assert.ok(Math.abs(up.length - 9600) <= 3, `${up.length} frames for 200 ms`);
  // The tone is intact across every chunk boundary: compare with the exact 48 kHz tone (linear interpolation error of a 440 Hz tone at 16 kHz < 2 %).
  let worst = 0;
  for (let j = 0; j < up.length; j++) worst = Math.max(worst, Math.abs((up[j] as number) - 10_000 * Math.sin((2 * Math.PI * 440 * j) / 48_000)));
  assert.ok(worst < 200, `worst deviation from the tone ${worst}`);
  const same = toneChunks(48_000, 1, 10)[0];
  assert.ok(same);
  assert.deepEqual(Array.from(pcm.convert(same)), Array.from(same.samples));
});

test('PcmConverter mixes stereo down to mono and copies mono up to stereo', { timeout: 5_000 }, () => {
  const down = new PcmConverter(48_000, 1);
  const st = { samples: Int16Array.from([100, 300, -200, 0]), sampleRate: 48_000, channelCount: 2, numberOfFrames: 2 };
  assert.deepEqual(Array.from(down.convert(st)), [200, -100]);
  const upm = new PcmConverter(48_000, 2);
  const mono = { samples: Int16Array.from([5, -7]), sampleRate: 48_000, channelCount: 1, numberOfFrames: 2 };
  assert.deepEqual(Array.from(upm.convert(mono)), [5, 5, -7, -7]);
  assert.throws(() => new PcmConverter(0, 1), RangeError);
});

test('VirtualCamera.create refuses bad options before touching the network', { timeout: 10_000 }, async () => {
  const { VirtualCamera } = await import('../server/src/virtualcam/virtual-camera.ts');
  const base = { url: 'http://127.0.0.1:1', room: 'r', output: { kind: 'y4m', path: '-' } as const, log: rootLogger.child('test') };
  await assert.rejects(VirtualCamera.create({ ...base, fps: 0 }), TypeError);
  await assert.rejects(VirtualCamera.create({ ...base, size: { width: 641, height: 480 } }), TypeError);
  // @ts-expect-error: an output kind that does not exist
  await assert.rejects(VirtualCamera.create({ ...base, fps: 30, output: { kind: 'mjpeg', path: '-' }, token: 'x' }));
});
