/** Small pure pieces of the live loop: stamps, the latest-frame slot, the passthrough stage, config. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readStamp, writeStamp, STAMP_ID_BITS } from '../shared/stamp.ts';
import { LatestFrameSlot } from '../server/src/reenactor/frame-slot.ts';
import { PassthroughStage } from '../server/src/reenactor/stage.ts';
import { loadConfig } from '../server/src/config.ts';
import { runStage } from './helpers/stage.ts';

test('a frame stamp round-trips and survives mild noise; a corrupted one reads as null', { timeout: 5000 }, () => {
  for (const width of [256, 320, 640]) {
    const y = new Uint8Array(width * 64).fill(128);
    for (const id of [1, 2, 777, (1 << STAMP_ID_BITS) - 1]) {
      writeStamp(y, width, id);
      for (let i = 0; i < y.length; i++) y[i] = Math.max(0, Math.min(255, y[i]! + ((i * 7919) % 41) - 20));
      assert.equal(readStamp(y, width), id, `width ${width} id ${id}`);
    }
  }
  const blank = new Uint8Array(640 * 32).fill(128);
  assert.equal(readStamp(blank, 640), null);
  const y = new Uint8Array(640 * 32);
  writeStamp(y, 640, 12345);
  // Flip one id bit block: checksum must catch it.
  const b = 16;
  for (let row = 0; row < b; row++) for (let x = 5 * b; x < 6 * b; x++) y[row * 640 + x] = 255 - y[row * 640 + x]!;
  assert.notEqual(readStamp(y, 640), 12345);
});

test('the latest-frame slot keeps depth 1, drops superseded frames and processes the newest', { timeout: 5000 }, async () => {
  const processed: number[] = [];
  const dropped: number[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const slot = new LatestFrameSlot<number>(
    async (n) => {
      if (n === 0) await gate;
      processed.push(n);
    },
    (n) => dropped.push(n),
  );
  slot.offer(0); // starts processing, blocks on the gate
  for (let i = 1; i <= 5; i++) slot.offer(i); // 1..4 superseded, 5 waits
  assert.deepEqual(dropped, [1, 2, 3, 4]);
  assert.equal(slot.dropped, 4);
  release();
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(processed, [0, 5]);
  slot.close();
  slot.offer(6);
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(processed, [0, 5], 'closed slot takes no work');
});

test('the passthrough stage copies frames and draws a changing visible counter', { timeout: 5000 }, async () => {
  const w = 320;
  const h = 240;
  const frame = { width: w, height: h, data: new Uint8Array((w * h * 3) / 2).fill(100) };
  const outs = await runStage(new PassthroughStage(), [frame, frame, frame]);
  assert.equal(outs.length, 3);
  for (const o of outs) {
    assert.equal(o.frame.data.length, frame.data.length);
    assert.equal(o.frame.data[0], 100, 'top-left untouched');
    assert.ok(typeof o.timings['passthrough'] === 'number');
  }
  const corner = (d: Uint8Array): number[] => Array.from(d.subarray((h - 1) * w + w - 64, (h - 1) * w + w));
  assert.notDeepEqual(corner(outs[0]!.frame.data), corner(outs[1]!.frame.data), 'counter changes between frames');
  assert.equal(frame.data[(h - 1) * w + w - 1], 100, 'input not modified');
});

test('config rejects invalid values with the variable name and freezes the result', { timeout: 5000 }, () => {
  assert.throws(() => loadConfig({}, { REENACT_PORT: 'eighty' }), /REENACT_PORT/);
  assert.throws(() => loadConfig({}, { REENACT_STAGE: 'magic' }), /REENACT_STAGE/);
  const c = loadConfig({}, { REENACT_MEASUREMENT: '1', REENACT_AUTO_TOKENS: '0' });
  assert.equal(c.measurement, true);
  assert.equal(c.autoTokens, false);
  assert.ok(Object.isFrozen(c));
  assert.equal(loadConfig({}, {}).lipZero, true);
  // Token minting: on by default only on loopback; an explicit setting wins.
  assert.equal(loadConfig({}, {}).autoTokens, true, 'the default 127.0.0.1 mints');
  assert.equal(loadConfig({}, { REENACT_HOST: '0.0.0.0' }).autoTokens, false);
  assert.equal(loadConfig({}, { REENACT_HOST: '192.168.1.20' }).autoTokens, false);
  assert.equal(loadConfig({}, { REENACT_HOST: '::1' }).autoTokens, true);
  assert.equal(loadConfig({}, { REENACT_HOST: 'localhost' }).autoTokens, true);
  assert.equal(loadConfig({}, { REENACT_HOST: '127.0.0.2' }).autoTokens, true);
  assert.equal(loadConfig({}, { REENACT_HOST: '0.0.0.0', REENACT_AUTO_TOKENS: '1' }).autoTokens, true);
  assert.equal(loadConfig({}, { REENACT_HOST: '127.0.0.1', REENACT_AUTO_TOKENS: '0' }).autoTokens, false);
  assert.equal(loadConfig({}, { REENACT_LIP_ZERO: '0' }).lipZero, false);
  assert.equal(loadConfig({}, { REENACT_LIP_ZERO: 'false' }).lipZero, false);
});

import { DegradeController } from '../server/src/pipeline/degrade.ts';

test('the degrade controller steps up under sustained overload and back down once load falls', { timeout: 5000 }, () => {
  const d = new DegradeController({ budgetMs: 50, window: 10, recoverFrames: 20 });
  const changes: number[] = [];
  const feed = (ms: number, n: number): void => {
    for (let i = 0; i < n; i++) {
      const c = d.record(ms);
      if (c) changes.push(c.level);
    }
  };
  feed(20, 30);
  assert.deepEqual(changes.slice(), [], 'no change under budget');
  feed(80, 10);
  assert.deepEqual(changes.slice(), [1]);
  feed(80, 10);
  assert.deepEqual(changes.slice(), [1, 2]);
  feed(80, 50);
  assert.deepEqual(changes.slice(), [1, 2], 'level is capped at 2');
  // Mostly fast with an occasional spike still recovers.
  for (let i = 0; i < 40; i++) {
    const c = d.record(i % 15 === 0 ? 70 : 20);
    if (c) changes.push(c.level);
  }
  assert.deepEqual(changes.slice(), [1, 2, 1, 0]);
});

import { RigidFilter } from '../server/src/tracking/rigid-filter.ts';
import { fromCanonicalSpace, toCanonicalSpace, type PoseFit } from '../server/src/tracking/pose.ts';
import { DEFAULT_ONE_EURO } from '../server/src/tracking/one-euro.ts';

function rotationY(deg: number): Float64Array {
  const a = (deg * Math.PI) / 180;
  return new Float64Array([Math.cos(a), 0, Math.sin(a), 0, 1, 0, -Math.sin(a), 0, Math.cos(a)]);
}

test('canonical space round-trips, and the rigid filter smooths a shaking head while a turn passes with little lag', { timeout: 5000 }, () => {
  // Image points → canonical → image again are the same points.
  const fit: PoseFit = { rotation: rotationY(20), scale: 12.5, t: new Float64Array([320, -240, -10]) };
  const pts = new Float32Array([10, 20, 3, -40, 5, 7, 100, -60, 0]);
  const canon = new Float32Array(9);
  const back = new Float32Array(9);
  toCanonicalSpace(pts, 3, fit, canon);
  fromCanonicalSpace(canon, 3, fit, back);
  for (let i = 0; i < 9; i++) assert.ok(Math.abs((back[i] ?? 0) - (pts[i] ?? 0)) < 1e-3, `point value ${i}: ${back[i]} vs ${pts[i]}`);

  // A still head whose fitted yaw shakes ±1° frame to frame comes out within a fraction of that.
  const filter = new RigidFilter(DEFAULT_ONE_EURO);
  const yawOf = (f: PoseFit): number => (Math.atan2(f.rotation[2] ?? 0, f.rotation[8] ?? 1) * 180) / Math.PI;
  let spread = 0;
  for (let n = 0; n < 60; n++) {
    const out = filter.apply({ rotation: rotationY(n % 2 ? 1 : -1), scale: 12.5, t: new Float64Array([320, -240, 0]) }, n * 33, 200);
    if (n > 30) spread = Math.max(spread, Math.abs(yawOf(out)));
    // Always a proper rotation: unit rows.
    const r = out.rotation;
    assert.ok(Math.abs(Math.hypot(r[0] ?? 0, r[1] ?? 0, r[2] ?? 0) - 1) < 1e-6);
  }
  assert.ok(spread < 0.5, `±1° of shake came out as ±${spread.toFixed(2)}°`);
  // A 30° turn over a third of a second is followed to within 3° three frames after it ends.
  filter.reset();
  let last = 0;
  for (let n = 0; n < 20; n++) {
    const yaw = Math.min(30, Math.max(0, (n - 5) * 3));
    last = yawOf(filter.apply({ rotation: rotationY(yaw), scale: 12.5, t: new Float64Array([320, -240, 0]) }, n * 33, 200));
    if (n === 18) assert.ok(Math.abs(last - 30) < 3, `yaw ${last.toFixed(1)}° three frames after a turn to 30°`);
  }
});

test('simulcast only for frames that can carry three layers, and for the profiles that make them', async () => {
  const { wantsSimulcast, profileWantsSimulcast } = await import('../server/src/reenactor/video-publisher.ts');
  const { simulcastEncodings, simulcastBitrate } = await import('../server/src/rtc/node-peer.ts');
  assert.equal(wantsSimulcast(256, 256), false);
  assert.equal(wantsSimulcast(512, 512), false);
  assert.equal(wantsSimulcast(960, 540), true);
  assert.equal(wantsSimulcast(1280, 720), true);
  assert.equal(wantsSimulcast(720, 1280), true);
  assert.deepEqual((['face', 'frame', '720p', '1080p', '720x1280'] as const).map(profileWantsSimulcast), [false, false, true, true, true]);
  const enc = simulcastEncodings(1_500_000);
  assert.deepEqual(enc.map((e) => e.scaleResolutionDownBy), [4, 2, 1]);
  assert.deepEqual(enc.map((e) => e.maxBitrate), [150_000, 450_000, 1_500_000]);
  // Each layer at least 100 kbit/s, whatever the cap.
  assert.ok(simulcastEncodings(300_000).every((e) => (e.maxBitrate ?? 0) >= 100_000));
  assert.equal(simulcastBitrate(1_500_000), 2_100_000);
});

test('npm start runs the server with the same Node flags as the tools that start it as a process', async () => {
  const { SERVER_NODE_FLAGS } = await import('../server/src/process-flags.ts');
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
  const start = pkg.scripts['start']!.split(/\s+/);
  for (const flag of SERVER_NODE_FLAGS) assert.ok(start.includes(flag), `package.json start lacks ${flag}`);
  assert.ok(start.indexOf(SERVER_NODE_FLAGS[0]) < start.indexOf('server/src/main.ts'), 'the flags come before the entry point');
});
