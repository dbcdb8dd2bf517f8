/**
 * The GPU code path on this machine: onnxruntime-node's bundled WebGPU
 * provider on Mesa's llvmpipe Vulkan driver (mesa-vulkan-drivers from
 * bookworm-backports, installed by npm run setup). Slow here, so these check
 * correctness only: the tracker on the WebGPU provider agrees with the CPU
 * provider on real footage, the renderer's warp on the GPU (Dawn, the npm
 * webgpu package) matches the CPU warp, an unavailable provider is a coded
 * error, and a live session runs on it (models and warp). Speed belongs to the device check on a real GPU
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
import { trackClip } from '../server/src/render/fidelity.ts';
import { enrollTarget } from '../server/src/render/target.ts';
import { GeometricRenderer } from '../server/src/render/renderer.ts';
import { GpuWarp } from '../server/src/render/gpu-warp.ts';
import { warpTriangles } from '../server/src/render/raster.ts';

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

/** Channel values of two RGBA frames: how many differ at all, by more than one grey level, and the largest gap. */
function compare(a: Uint8Array, b: Uint8Array): { values: number; over1: number; worst: number } {
  let over1 = 0, worst = 0, values = 0;
  for (let i = 0; i < a.length; i++) {
    if ((i & 3) === 3) continue;
    values++;
    const d = Math.abs(a[i]! - b[i]!);
    if (d > 1) over1++;
    if (d > worst) worst = d;
  }
  return { values, over1, worst };
}

test('the warp on the GPU matches the CPU warp within one grey level, alone and inside the renderer (real targets, real head turns)', { timeout: 600_000 }, async () => {
  const tracker = await Tracker.create({ threads: 1, attention: false });
  const gpu = await GpuWarp.create();
  try {
    const { tracks } = await trackClip(fixture('driving/d12.mp4'), tracker, 1, 30);
    const pairs: [string, number][] = [['targets/s1.jpg', 256], ['targets/s18.mp4', 512], ['targets/s2.jpg', 512]];
    const rows: Record<string, unknown>[] = [];
    for (const [path, size] of pairs) {
      const target = await enrollTarget(fixture(path), tracker, { size, cacheDir: null });
      const cpuR = await GeometricRenderer.create({ size });
      const gpuR = await GeometricRenderer.create({ size });
      await cpuR.enroll(target);
      await gpuR.enroll(target);
      gpuR.setGpuWarp(gpu);
      const a = new Uint8Array(size * size * 4), b = new Uint8Array(size * size * 4);
      let warpOver1 = 0, renderOver1 = 0, values = 0, worstWarp = 0;
      for (const [i, t] of tracks.entries()) {
        cpuR.renderSync(t, a, i * 33);
        await gpuR.render(t, b, i * 33);
        const r = compare(a, b);
        renderOver1 += r.over1;
        values += r.values;
        // The warp alone, on this frame's mesh: every pixel of the square is covered and written by both.
        const mesh = cpuR.debugMesh!;
        a.fill(0);
        warpTriangles(target.image, mesh.source, { width: size, height: size, data: a }, mesh.vertices, mesh.triangles, null);
        await gpu.warp(target.image, mesh.source, { width: size, height: size, data: b }, mesh.vertices, mesh.triangles, null);
        const w = compare(a, b);
        warpOver1 += w.over1;
        worstWarp = Math.max(worstWarp, w.worst);
      }
      cpuR.close();
      gpuR.close();
      rows.push({ target: path, size, frames: tracks.length, warpShareOver1: warpOver1 / values, renderShareOver1: renderOver1 / values, worstWarp });
      // A pixel centre on an edge shared by two folded triangles may take either one: allow 1 in 10^5 values.
      assert.ok(warpOver1 / values <= 1e-5, `${path}: warp values more than one grey level apart: ${warpOver1} of ${values}`);
      assert.ok(renderOver1 / values <= 1e-5, `${path}: rendered values more than one grey level apart: ${renderOver1} of ${values}`);
    }
    console.log('gpu warp', JSON.stringify({ adapter: gpu.adapter, rows }));
  } finally {
    gpu.close();
    await tracker.close();
  }
});

test('a chosen provider (or the GPU warp) that cannot start is E_PROVIDER_UNAVAILABLE with what to install, never a silent fall back to the CPU', { timeout: 120_000 }, () => {
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
    }
    const { GpuWarp } = await import('./server/src/render/gpu-warp.ts');
    try {
      const w = await GpuWarp.create();
      console.log(JSON.stringify({ provider: 'warp', loaded: w.adapter }));
    } catch (err) {
      console.log(JSON.stringify({ provider: 'warp', code: err.code, message: err.message }));
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
  assert.equal(lines.length, 3, `the probe printed ${r.stdout} ${r.stderr}`);
  for (const l of lines) {
    assert.equal(l.code, ErrorCodes.PROVIDER_UNAVAILABLE, `${l.provider}: ${JSON.stringify(l)}`);
    assert.match(l.message!, l.provider === 'cuda' ? /ONNXRUNTIME_NODE_INSTALL=1 npm rebuild onnxruntime-node/ : /mesa-vulkan-drivers/);
  }
});

test('a live session runs with REENACT_PROVIDER=webgpu (models and warp on the GPU), and /healthz and the metrics say so', { timeout: 600_000 }, async () => {
  const server = await startServer({ stage: 'reenact', provider: 'webgpu', measurement: true });
  const clip = await decodeClip(fixture('driving/d9.mp4'), 320, 240, 30, 60);
  const actor = await FootageActor.start({ url: server.url, token: server.tokens.sign('gpu', 'actor'), clip, durationMs: 120_000 });
  const viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign('gpu', 'viewer') });
  try {
    await viewer.firstFrame(180_000);
    const health = (await (await fetch(`${server.url}/healthz`)).json()) as { status: string; inference: { configured: string; provider?: string } };
    assert.equal(health.status, 'ok');
    // On a GPU provider the warp goes to the GPU too, and sessions' model calls are gathered (up to 16).
    assert.deepEqual(health.inference, { configured: 'webgpu', provider: 'webgpu', warp: 'gpu', maxBatch: 16 });
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
