/**
 * The GPU code path on this machine: onnxruntime-node's bundled WebGPU
 * provider on Mesa's llvmpipe Vulkan driver (mesa-vulkan-drivers from
 * bookworm-backports, installed by npm run setup). Slow here, so these check
 * correctness only: the tracker on the WebGPU provider agrees with the CPU
 * provider on real footage, an unavailable provider is a coded error, and a
 * live session runs on it. Speed belongs to the device check on a real GPU
 * (scripts/gpu-check.sh).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Tracker } from '../server/src/tracking/tracker.ts';
import { readFrames, type RawFrame } from '../server/src/media/video-io.ts';
import { setLogLevel } from '../server/src/logger.ts';
import { fixture, settleWrtc, startServer } from './helpers/server.ts';
import { FootageActor, StampViewer, decodeClip } from '../loadtest/peers.ts';
import { ErrorCodes } from '../shared/errors.ts';

setLogLevel('error');

/** Frames of real footage for the agreement check: a talker (mouth moving from frame 0) and a head turn. */
const CLIPS = [
  { path: 'talking/t6.mp4', frames: 40 },
  { path: 'driving/d12.mp4', frames: 40 },
];

async function framesOf(path: string, n: number): Promise<RawFrame[]> {
  const out: RawFrame[] = [];
  for await (const f of readFrames(fixture(path), { maxFrames: n })) out.push(f);
  return out;
}

test('the tracker on the WebGPU provider (llvmpipe) agrees with the CPU provider within 0.5 px on every frame of real footage', { timeout: 600_000 }, async () => {
  const cpu = await Tracker.create({ threads: 1, provider: 'cpu', filter: false });
  const gpu = await Tracker.create({ threads: 1, provider: 'webgpu', filter: false });
  try {
    for (const clip of CLIPS) {
      const frames = await framesOf(clip.path, clip.frames);
      assert.equal(frames.length, clip.frames, `${clip.path}: frames decoded`);
      cpu.reset();
      gpu.reset();
      let worst = 0;
      let compared = 0;
      for (const [i, f] of frames.entries()) {
        const a = await cpu.track(f, (i * 1000) / 30);
        const b = await gpu.track(f, (i * 1000) / 30);
        assert.equal(b.landmarks === null, a.landmarks === null, `${clip.path} frame ${i}: a face on one provider only`);
        if (!a.landmarks || !b.landmarks) continue;
        for (const [k, p] of a.landmarks.entries()) {
          const q = b.landmarks[k]!;
          worst = Math.max(worst, Math.hypot(p[0] - q[0], p[1] - q[1]));
        }
        compared++;
      }
      console.log('webgpu agreement', JSON.stringify({ clip: clip.path, frames: compared, worstPx: Number(worst.toFixed(4)) }));
      assert.ok(compared >= clip.frames - 2, `${clip.path}: a face in ${compared} of ${clip.frames} frames`);
      assert.ok(worst <= 0.5, `${clip.path}: the providers differ by up to ${worst.toFixed(3)} px`);
    }
  } finally {
    await cpu.close();
    await gpu.close();
  }
});

test('a chosen provider that cannot start is E_PROVIDER_UNAVAILABLE with what to install, never a silent fall back to the CPU', { timeout: 120_000 }, () => {
  const script = `
    import { loadModel } from './server/src/inference/ort-session.ts';
    import { rootLogger } from './server/src/logger.ts';
    for (const provider of ['webgpu', 'cuda']) {
      try {
        const m = await loadModel('faceDetector', { provider, logger: rootLogger });
        console.log(JSON.stringify({ provider, loaded: m.provider }));
      } catch (err) {
        console.log(JSON.stringify({ provider, code: err.code, message: err.message }));
      }
    }`;
  // No Vulkan driver to be found: what a machine without mesa-vulkan-drivers or a GPU driver sees.
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json', REENACT_LOG_LEVEL: 'error' },
    encoding: 'utf8',
    timeout: 100_000,
  });
  const lines = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { provider: string; code?: string; message?: string; loaded?: string });
  assert.equal(lines.length, 2, `the probe printed ${r.stdout} ${r.stderr}`);
  for (const l of lines) {
    assert.equal(l.code, ErrorCodes.PROVIDER_UNAVAILABLE, `${l.provider}: ${JSON.stringify(l)}`);
    assert.match(l.message!, l.provider === 'webgpu' ? /mesa-vulkan-drivers/ : /ONNXRUNTIME_NODE_INSTALL=1 npm rebuild onnxruntime-node/);
  }
});

test('a live session runs with REENACT_PROVIDER=webgpu, and /healthz and the metrics say so', { timeout: 600_000 }, async () => {
  const server = await startServer({ stage: 'reenact', provider: 'webgpu', measurement: true });
  const clip = await decodeClip(fixture('driving/d9.mp4'), 320, 240, 30, 60);
  const actor = await FootageActor.start({ url: server.url, token: server.tokens.sign('gpu', 'actor'), clip, durationMs: 120_000 });
  const viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign('gpu', 'viewer') });
  try {
    await viewer.firstFrame(180_000);
    const health = (await (await fetch(`${server.url}/healthz`)).json()) as { status: string; inference: { configured: string; provider?: string } };
    assert.equal(health.status, 'ok');
    assert.deepEqual(health.inference, { configured: 'webgpu', provider: 'webgpu' });
    const metrics = (await server.metrics.render()).body;
    assert.match(metrics, /reenact_inference_provider_info\{provider="webgpu"\} 1/);
    // The session renders on the target, not a fallback: frames keep coming.
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 5000));
    const frames = viewer.received.filter((f) => f.at > t0).length;
    console.log('webgpu live', JSON.stringify({ framesIn5s: frames }));
    assert.ok(frames >= 10, `${frames} frames in 5 s on the WebGPU provider`);
  } finally {
    viewer.close();
    actor.stop();
    await server.close();
    await settleWrtc();
  }
});
