/**
 * Batching bench (issue 16): per provider and batch size B, B tracker sessions share one face
 * handler that gathers their model requests (inference/batcher.ts), and each step every
 * session tracks its next frame at once, as a reenactor's sessions do. It reports ms per frame
 * per session (a step's wall time over B), the landmark-model call time and its cost per item,
 * the batch sizes the calls actually had, and the renderer's warp per session on the CPU and,
 * for a GPU provider, on the GPU (render/gpu-warp.ts).
 *
 *   node --import tsx loadtest/bench-batch.ts [--provider cpu,webgpu] [--batch 1,4,16,32]
 *     [--steps 20] [--warmup 5] [--threads 1] [--attention] [--out report.json]
 *     [--frames file.i420 --frame-size 480x360] [--save-frames file.i420] [--models-dir dir]
 *
 * Frames come from the fixture clips through ffmpeg, or from a raw I420 file (the GPU device
 * check carries one, as that machine has no ffmpeg); `--save-frames` writes that file.
 * Sessions start at different frames, so a batch holds different faces.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LocalRunner } from '../server/src/inference/local-runner.ts';
import { isProviderChoice, type ProviderChoice } from '../server/src/inference/ort-session.ts';
import { rootLogger, setLogLevel } from '../server/src/logger.ts';
import { i420ToRgba } from '../server/src/media/convert.ts';
import type { RawFrame } from '../server/src/media/video-io.ts';
import { createHandler as createFaceHandler, FACE_HANDLER } from '../server/src/tracking/face-models-handler.ts';
import { Tracker } from '../server/src/tracking/tracker.ts';
import { GpuWarp } from '../server/src/render/gpu-warp.ts';
import { warpTriangles } from '../server/src/render/raster.ts';

const CLIPS = ['driving/d3', 'driving/d12', 'talking/t1', 'talking/t6'];

/** The warp alone, per session per frame, ms (p50), at a face render size; null where it did not run. */
export interface WarpRow {
  size: number;
  cpuMs: number;
  gpuMs: number | null;
}

export interface BatchRow {
  batch: number;
  /** Wall time of one step (every session tracks one frame) over the sessions, ms. */
  msPerFramePerSession: { p50: number; p95: number };
  /** The landmark-model call that served a frame, ms, and that over the items in it. */
  landmarkCallMs: { p50: number; p95: number };
  landmarkMsPerItem: number;
  /** Mean number of requests per landmark-model call. */
  meanCallBatch: number;
  framesWithFace: number;
  frames: number;
  /** B warps per step (one per session), on the CPU and, for a GPU provider, on the GPU. */
  warp: WarpRow[];
}

export interface BatchBench {
  provider: string;
  landmarkModel: string;
  input: string;
  threads: number;
  steps: number;
  machine: { cpus: number; model: string; node: string };
  rows: BatchRow[];
}

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return Math.round((s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN) * 100) / 100;
}

/** I420 frames of one size, back to back, as `--save-frames` writes them. */
export async function readI420File(path: string, width: number, height: number): Promise<RawFrame[]> {
  return toRgba(await readFile(path), width, height, path);
}

/** Back-to-back I420 frames as RGBA frames, the tracker's input. */
function toRgba(data: Uint8Array, width: number, height: number, what: string): RawFrame[] {
  const size = width * height + 2 * ((width + 1) >> 1) * ((height + 1) >> 1);
  if (data.length === 0 || data.length % size !== 0) throw new TypeError(`${what}: ${data.length} bytes is not a whole number of ${width}×${height} I420 frames`);
  const out: RawFrame[] = [];
  for (let o = 0; o < data.length; o += size) {
    const rgba = new Uint8Array(width * height * 4);
    i420ToRgba(data.subarray(o, o + size), width, height, rgba);
    out.push({ width, height, format: 'rgba', data: rgba });
  }
  return out;
}

/** `perClip` frames of each fixture clip as RGBA frames (ffmpeg). */
export async function fixtureFrames(perClip: number, width: number, height: number): Promise<RawFrame[]> {
  return toRgba(Buffer.concat(await fixtureI420(perClip, width, height)), width, height, 'the fixture clips');
}

/** Decodes `perClip` frames of each fixture clip as I420 (ffmpeg). */
export async function fixtureI420(perClip: number, width: number, height: number): Promise<Uint8Array[]> {
  const { readFrames } = await import('../server/src/media/video-io.ts');
  const out: Uint8Array[] = [];
  for (const clip of CLIPS) {
    const path = fileURLToPath(new URL(`../test/fixtures/${clip}.mp4`, import.meta.url));
    for await (const f of readFrames(path, { width, height, format: 'yuv420p', maxFrames: perClip })) out.push(Uint8Array.from(f.data));
  }
  return out;
}

/** One provider at one batch size: B sessions, `warmup` + `steps` steps. */
async function benchOne(provider: ProviderChoice, batch: number, frames: RawFrame[], o: { steps: number; warmup: number; threads: number; attention: boolean; modelsDir?: string }): Promise<{ row: BatchRow; provider: string }> {
  const runner = await LocalRunner.fromFactories(
    [{ name: FACE_HANDLER, create: createFaceHandler, options: { threads: o.threads, provider, attention: o.attention, modelsDir: o.modelsDir, batch: { maxBatch: batch, windowMs: 0 } } }],
    rootLogger,
  );
  const trackers: Tracker[] = [];
  try {
    for (let i = 0; i < batch; i++) trackers.push(await Tracker.create({ runner, attention: o.attention, modelsDir: o.modelsDir }));
    const perSession: number[] = [];
    const call: number[] = [];
    const sizes: number[] = [];
    let withFace = 0;
    let total = 0;
    // Each session walks the frame list from its own offset, a clip-length apart where it can.
    const stride = Math.max(1, Math.floor(frames.length / batch));
    for (let step = 0; step < o.warmup + o.steps; step++) {
      const t0 = performance.now();
      const results = await Promise.all(trackers.map((t, i) => t.process(frames[(i * stride + step) % frames.length]!, step * 33.3)));
      const dt = performance.now() - t0;
      if (step < o.warmup) continue;
      perSession.push(dt / batch);
      for (const r of results) {
        total++;
        if (r.faces > 0) withFace++;
        if (r.timings.landmarksBatch > 0) {
          call.push(r.timings.landmarksModelMs);
          sizes.push(r.timings.landmarksBatch);
        }
      }
    }
    const warp: WarpRow[] = [];
    for (const size of [256, 512]) warp.push(await benchWarp(size, batch, o.steps, provider !== 'cpu'));
    const meanBatch = sizes.length ? sizes.reduce((a, b) => a + b, 0) / sizes.length : 0;
    const row: BatchRow = {
      batch,
      msPerFramePerSession: { p50: pct(perSession, 0.5), p95: pct(perSession, 0.95) },
      landmarkCallMs: { p50: pct(call, 0.5), p95: pct(call, 0.95) },
      landmarkMsPerItem: meanBatch ? Math.round((pct(call, 0.5) / meanBatch) * 100) / 100 : NaN,
      meanCallBatch: Math.round(meanBatch * 100) / 100,
      framesWithFace: withFace,
      frames: total,
      warp,
    };
    return { row, provider: String(runner.info[FACE_HANDLER]?.['provider'] ?? provider) };
  } finally {
    for (const t of trackers) await t.close();
    await runner.close();
  }
}

/**
 * The renderer's warp alone: a face square of `size` covered by a 32×32 grid mesh (2048
 * triangles, about the render mesh's count and reach), its points moved every frame, from a
 * noise picture. Its cost depends on pixels and triangles, not on what they show.
 */
async function benchWarp(size: number, sessions: number, steps: number, gpuToo: boolean): Promise<WarpRow> {
  const n = 33;
  const src = new Float32Array(n * n * 2);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) src.set([(x / (n - 1)) * size, (y / (n - 1)) * size], (y * n + x) * 2);
  const tris: number[] = [];
  for (let y = 0; y < n - 1; y++) {
    for (let x = 0; x < n - 1; x++) {
      const i = y * n + x;
      tris.push(i, i + 1, i + n, i + 1, i + n + 1, i + n);
    }
  }
  const triangles = Uint32Array.from(tris);
  const picture = { width: size, height: size, data: new Uint8Array(size * size * 4) };
  for (let i = 0; i < picture.data.length; i++) picture.data[i] = (i * 2654435761) >>> 24;
  const dst = new Float32Array(src.length);
  const move = (step: number, session: number): void => {
    for (let i = 0; i < n * n; i++) {
      const x = i % n, y = (i / n) | 0;
      const inner = x > 0 && y > 0 && x < n - 1 && y < n - 1 ? 1 : 0;
      dst[i * 2] = src[i * 2]! + inner * 3 * Math.sin(step * 0.3 + session + y * 0.2);
      dst[i * 2 + 1] = src[i * 2 + 1]! + inner * 3 * Math.cos(step * 0.25 + session + x * 0.2);
    }
  };
  const outs = Array.from({ length: sessions }, () => ({ width: size, height: size, data: new Uint8Array(size * size * 4) }));
  const cpu: number[] = [];
  const gpuTimes: number[] = [];
  for (let step = 0; step < steps + 2; step++) {
    const t0 = performance.now();
    outs.forEach((out, k) => {
      move(step, k);
      warpTriangles(picture, src, out, dst, triangles, null);
    });
    if (step >= 2) cpu.push((performance.now() - t0) / sessions);
  }
  if (gpuToo) {
    const gpu = await GpuWarp.create();
    try {
      for (let step = 0; step < steps + 2; step++) {
        const t0 = performance.now();
        await Promise.all(outs.map((out, k) => {
          move(step, k);
          return gpu.warp(picture, src, out, dst.slice(), triangles, null);
        }));
        if (step >= 2) gpuTimes.push((performance.now() - t0) / sessions);
      }
    } finally {
      gpu.close();
    }
  }
  return { size, cpuMs: pct(cpu, 0.5), gpuMs: gpuToo ? pct(gpuTimes, 0.5) : null };
}

export async function benchBatch(opts: { provider: ProviderChoice; batches: number[]; frames: RawFrame[]; steps?: number; warmup?: number; threads?: number; attention?: boolean; modelsDir?: string; log?: (line: string) => void }): Promise<BatchBench> {
  const o = { steps: opts.steps ?? 20, warmup: opts.warmup ?? 5, threads: opts.threads ?? 1, attention: opts.attention ?? false, modelsDir: opts.modelsDir };
  const first = opts.frames[0];
  const out: BatchBench = {
    provider: opts.provider,
    landmarkModel: o.attention ? 'faceLandmarksAttention' : 'faceLandmarks',
    input: first ? `${first.width}x${first.height}` : 'none',
    threads: o.threads,
    steps: o.steps,
    machine: { cpus: availableParallelism(), model: cpus()[0]?.model ?? 'unknown', node: process.version },
    rows: [],
  };
  for (const b of opts.batches) {
    const { row, provider } = await benchOne(opts.provider, b, opts.frames, o);
    out.provider = provider;
    out.rows.push(row);
    opts.log?.(
      `provider ${provider} batch ${b}: ${row.msPerFramePerSession.p50} ms per frame per session (p95 ${row.msPerFramePerSession.p95}); ` +
        `landmark call ${row.landmarkCallMs.p50} ms for ${row.meanCallBatch} items (${row.landmarkMsPerItem} ms each); faces ${row.framesWithFace}/${row.frames}; ` +
        `warp per session ${row.warp.map((w) => `${w.size}²: cpu ${w.cpuMs} ms${w.gpuMs === null ? '' : `, gpu ${w.gpuMs} ms`}`).join('; ')}`,
    );
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  setLogLevel('warn');
  const { values } = parseArgs({
    options: {
      provider: { type: 'string', default: 'cpu' },
      batch: { type: 'string', default: '1,4,16,32' },
      steps: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '5' },
      threads: { type: 'string', default: '1' },
      attention: { type: 'boolean', default: false },
      frames: { type: 'string' },
      'frame-size': { type: 'string', default: '480x360' },
      'per-clip': { type: 'string', default: '8' },
      'save-frames': { type: 'string' },
      'models-dir': { type: 'string' },
      out: { type: 'string' },
    },
  });
  const [w, h] = values['frame-size'].split('x').map(Number) as [number, number];
  if (!(w > 0 && h > 0)) throw new TypeError(`--frame-size must be WxH, got ${values['frame-size']}`);
  if (values['save-frames']) {
    const frames = await fixtureI420(Number(values['per-clip']), w, h);
    await writeFile(values['save-frames'], Buffer.concat(frames));
    console.log(`wrote ${frames.length} ${w}×${h} I420 frames to ${values['save-frames']}`);
    process.exit(0);
  }
  const frames = values.frames ? await readI420File(values.frames, w, h) : await fixtureFrames(Number(values['per-clip']), w, h);
  const providers: ProviderChoice[] = values.provider.split(',').map((p) => {
    if (!isProviderChoice(p)) throw new TypeError(`unknown provider ${p}`);
    return p;
  });
  const report: { startedAt: string; results: (BatchBench | { provider: string; error: string })[] } = { startedAt: new Date().toISOString(), results: [] };
  for (const provider of providers) {
    try {
      report.results.push(
        await benchBatch({ provider, batches: values.batch.split(',').map(Number), frames, steps: Number(values.steps), warmup: Number(values.warmup), threads: Number(values.threads), attention: values.attention, modelsDir: values['models-dir'], log: (l) => console.log(l) }),
      );
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      console.log(`provider ${provider}: ${error}`);
      report.results.push({ provider, error });
    }
    if (values.out) await writeFile(values.out, JSON.stringify(report, null, 2));
  }
  if (values.out) console.log(`wrote ${values.out}`);
}
