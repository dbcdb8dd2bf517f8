/**
 * Tracker benchmark: ms/frame p50/p95 for the detector path, the landmark path and the full
 * tracker, at 640×480 input, on 1 and 2 ORT intra-op threads, over the fixture driving videos.
 *
 *   node --import tsx loadtest/bench-tracker.ts [--frames-per-video N] [--attention] [--threads 1,2]
 *
 * `--attention` measures the 478-point attention landmark model instead of the 468-point one.
 *
 * Frames are decoded before timing (so ffmpeg does not compete for the CPU). Each stage is timed
 * on the calling thread around the public Tracker API, so times include pre/post-processing and
 * the worker round trip; `modelMs` is the ONNX Runtime time inside the worker alone.
 */
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildModels } from '../models/build.ts';
import { setLogLevel } from '../server/src/logger.ts';
import { readFrames, type RawFrame } from '../server/src/media/video-io.ts';
import { Tracker, type TrackResult } from '../server/src/tracking/tracker.ts';
import { LocalRunner } from '../server/src/inference/local-runner.ts';
import { faceHandlerSpec } from '../server/src/tracking/face-models-handler.ts';
import { rootLogger } from '../server/src/logger.ts';

const WIDTH = 640;
const HEIGHT = 480;
const VIDEOS = ['d3', 'd9', 'd12', 'd19'];
const WARMUP = 10;

export interface Percentiles {
  p50: number;
  p95: number;
  /** ONNX Runtime time inside the worker for this stage's model(s), p50. */
  modelMs: number;
}

export interface TrackerBench {
  input: string;
  /** 'faceLandmarks' (468 points) or 'faceLandmarksAttention' (478). */
  landmarkModel: string;
  frames: number;
  videos: string[];
  machine: { cpus: number; model: string; node: string };
  /** Keyed by ORT intra-op thread count. */
  /**
   * `tracker` calls models in an InferenceRunner worker (a thread hop per model call), as the
   * CLI and the upload check do; `trackerInThread` runs them in the tracker's own thread
   * (LocalRunner), as the live pipeline does inside its worker thread.
   */
  threads: Record<string, { detector: Percentiles; landmarks: Percentiles; tracker: Percentiles; trackerInThread: Percentiles }>;
  targetMs: number;
}

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  const v = s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return Math.round(v * 100) / 100;
}

function summarize(total: number[], model: number[]): Percentiles {
  return { p50: pct(total, 0.5), p95: pct(total, 0.95), modelMs: pct(model, 0.5) };
}

async function loadFrames(perVideo: number): Promise<{ video: string; frames: RawFrame[] }[]> {
  const out: { video: string; frames: RawFrame[] }[] = [];
  for (const v of VIDEOS) {
    const frames: RawFrame[] = [];
    const path = fileURLToPath(new URL(`../test/fixtures/driving/${v}.mp4`, import.meta.url));
    for await (const f of readFrames(path, { width: WIDTH, height: HEIGHT, maxFrames: perVideo })) frames.push(f);
    out.push({ video: v, frames });
  }
  return out;
}

type Stage = 'detector' | 'landmarks' | 'tracker' | 'trackerInThread';

async function runStage(stage: Stage, threads: number, clips: { frames: RawFrame[] }[], attention: boolean): Promise<Percentiles> {
  // detector: reset before each frame so every frame is a fresh detection (+ one landmark pass,
  // which is not counted); landmarks: ROI tracking only; tracker: default options, whole call.
  const local = stage === 'trackerInThread' ? await LocalRunner.create([faceHandlerSpec({ threads, attention })], rootLogger) : undefined;
  const tracker = await Tracker.create({ threads, attention, runner: local, detectIntervalMs: stage === 'tracker' || stage === 'trackerInThread' ? undefined : 0 });
  const total: number[] = [];
  const model: number[] = [];
  try {
    for (const clip of clips) {
      tracker.reset();
      let i = 0;
      for (const f of clip.frames) {
        if (stage === 'detector') tracker.reset();
        const r: TrackResult = await tracker.process(f, (i * 1000) / 30);
        if (i++ < WARMUP) continue;
        if (stage === 'detector') {
          total.push(r.timings.detectMs);
          model.push(r.timings.detectorModelMs);
        } else if (stage === 'landmarks') {
          if (r.detected) continue;
          total.push(r.timings.landmarksMs);
          model.push(r.timings.landmarksModelMs);
        } else {
          total.push(r.timings.totalMs);
          model.push(r.timings.inferMs);
        }
      }
    }
  } finally {
    await tracker.close();
    await local?.close();
  }
  return summarize(total, model);
}

/** Runs the benchmark and returns the numbers (also used by `npm run bench`). */
export async function benchTracker(opts: { framesPerVideo?: number; attention?: boolean; threads?: number[] } = {}): Promise<TrackerBench> {
  const attention = opts.attention ?? false;
  await buildModels();
  const perVideo = opts.framesPerVideo ?? 90;
  const clips = await loadFrames(perVideo);
  const result: TrackerBench = {
    input: `${WIDTH}x${HEIGHT} rgba`,
    landmarkModel: attention ? 'faceLandmarksAttention' : 'faceLandmarks',
    frames: clips.reduce((n, c) => n + c.frames.length, 0),
    videos: VIDEOS,
    machine: { cpus: availableParallelism(), model: cpus()[0]?.model ?? 'unknown', node: process.version },
    threads: {},
    targetMs: 6,
  };
  for (const threads of opts.threads ?? [1, 2]) {
    result.threads[String(threads)] = {
      detector: await runStage('detector', threads, clips, attention),
      landmarks: await runStage('landmarks', threads, clips, attention),
      tracker: await runStage('tracker', threads, clips, attention),
      trackerInThread: await runStage('trackerInThread', threads, clips, attention),
    };
  }
  return result;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  setLogLevel('warn');
  const { values } = parseArgs({
    options: { 'frames-per-video': { type: 'string', default: '90' }, attention: { type: 'boolean', default: false }, threads: { type: 'string', default: '1,2' } },
  });
  const r = await benchTracker({ framesPerVideo: Number(values['frames-per-video']), attention: values.attention, threads: values.threads.split(',').map(Number) });
  console.log(JSON.stringify(r, null, 2));
  const t1 = r.threads['1']?.tracker;
  if (t1) console.error(`tracker on 1 thread: p50 ${t1.p50} ms, p95 ${t1.p95} ms (target ≤ ${r.targetMs} ms)`);
}
