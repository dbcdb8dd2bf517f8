/**
 * Renderer benchmark: ms per frame (p50, p95, p99) of the geometric renderer at
 * 256² and 512², on 1 and 2 threads, for a still target (s42), and on 1 thread
 * for a clip target (s18: mouth library, Laplacian-pyramid blend). The driving
 * tracks (d3, first 150 frames) and the enrolled targets are prepared once;
 * the timed loop is renderSync() only. "2 threads" runs two renderers in two worker threads at
 * once (two sessions on two cores): per-frame latency is reported per worker,
 * throughput as wall time over all frames rendered.
 *
 *   node --import tsx loadtest/bench-render.ts        (prints JSON)
 */
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { FaceTrack } from '../shared/tracking.ts';
import { readFrames } from '../server/src/media/video-io.ts';
import { GeometricRenderer } from '../server/src/render/renderer.ts';
import { enrollTarget, type EnrolledTarget } from '../server/src/render/target.ts';
import { Tracker } from '../server/src/tracking/tracker.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DRIVING = `${ROOT}test/fixtures/driving/d3.mp4`;
const TARGET = `${ROOT}test/fixtures/targets/s42.jpg`;
const CLIP_TARGET = `${ROOT}test/fixtures/targets/s18.mp4`;
const FRAMES = 150;
const REPEAT = 2;

interface Job {
  target: EnrolledTarget;
  tracks: FaceTrack[];
}

interface RunStats {
  times: number[];
  wallMs: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

async function renderAll(job: Job): Promise<RunStats> {
  const r = await GeometricRenderer.create({ size: job.target.size });
  await r.enroll(job.target);
  const out = new Uint8Array(job.target.size * job.target.size * 4);
  // Warm-up pass (JIT), then timed passes.
  for (const t of job.tracks.slice(0, 30)) r.renderSync(t, out, t.timeMs);
  const times: number[] = [];
  const t0 = performance.now();
  for (let rep = 0; rep < REPEAT; rep++) {
    r.resetNeutral();
    for (const t of job.tracks) {
      const s = performance.now();
      r.renderSync(t, out, t.timeMs + rep * 100_000);
      times.push(performance.now() - s);
    }
  }
  const wallMs = performance.now() - t0;
  r.close();
  return { times, wallMs };
}

function inWorker(job: Job): Promise<RunStats> {
  return new Promise((resolve, reject) => {
    // Workers do not inherit tsx's loader hooks: register them in the worker, then import this file.
    const api = import.meta.resolve('tsx/esm/api');
    const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); });`;
    const w = new Worker(code, { eval: true, workerData: job, execArgv: [] });
    w.once('message', (m: RunStats) => resolve(m));
    w.once('error', reject);
    w.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`bench worker exited with ${code}`))));
  });
}

export async function benchRender(): Promise<object> {
  const tracker = await Tracker.create({ threads: 1 });
  const tracks: FaceTrack[] = [];
  const targets: Record<number, EnrolledTarget> = {};
  const clips: Record<number, EnrolledTarget> = {};
  try {
    let n = 0;
    for await (const f of readFrames(DRIVING, { maxFrames: FRAMES })) tracks.push(await tracker.track(f, (n++ * 1000) / 30));
    for (const size of [256, 512]) {
      targets[size] = await enrollTarget(TARGET, tracker, { size, cacheDir: null });
      clips[size] = await enrollTarget(CLIP_TARGET, tracker, { size, cacheDir: null });
    }
  } finally {
    await tracker.close();
  }
  const results: Record<string, unknown> = {};
  const row = async (name: string, target: EnrolledTarget, threads: number): Promise<void> => {
    const job: Job = { target, tracks };
    const t0 = performance.now();
    const runs = threads === 1 ? [await renderAll(job)] : await Promise.all(Array.from({ length: threads }, () => inWorker(job)));
    const wall = performance.now() - t0;
    const all = runs.flatMap((r) => r.times).sort((a, b) => a - b);
    results[name] = {
      frames: all.length,
      msPerFrameP50: +percentile(all, 0.5).toFixed(2),
      msPerFrameP95: +percentile(all, 0.95).toFixed(2),
      msPerFrameP99: +percentile(all, 0.99).toFixed(2),
      throughputMsPerFrame: +(runs.reduce((m, r) => Math.max(m, r.wallMs), 0) / all.length).toFixed(2),
      wallMs: Math.round(wall),
    };
  };
  for (const size of [256, 512]) for (const threads of [1, 2]) await row(`${size}px_${threads}thread`, targets[size]!, threads);
  for (const size of [256, 512]) await row(`clip_${size}px_1thread`, clips[size]!, 1);
  return {
    renderer: 'geometric',
    driving: 'd3.mp4 (150 frames x2)',
    target: 's42.jpg; clip rows: s18.mp4 (mouth library, pyramid blend)',
    goalsMs: { '256px_1thread': 10, '512px_1thread': 30 },
    results,
  };
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  void renderAll(workerData as Job).then((r) => port.postMessage(r));
} else if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(JSON.stringify(await benchRender(), null, 2));
}
