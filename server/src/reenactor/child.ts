/**
 * Entry point of a reenactor child process (forked by the supervisor with an
 * IPC channel). wrtc lives on this process's main thread; inference stages
 * run their models in worker threads.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { rootLogger } from '../logger.ts';
import type { ChildMemory, ChildMessage, ParentMessage, SessionSpec } from './ipc.ts';
import { ReenactSession } from './session.ts';
import { PassthroughStage, type Stage } from './stage.ts';
import { InferenceRunner } from '../inference/runner.ts';
import { ReenactStage, degradedRenderSize } from '../pipeline/reenact-stage.ts';
import { REENACT_HANDLER, reenactHandlerSpec } from '../pipeline/reenact-handler.ts';
import { availableParallelism } from 'node:os';

import type { ProviderChoice } from '../inference/ort-session.ts';
import type { BatchOptions } from '../inference/batcher.ts';
import type { GpuWarpChoice } from '../pipeline/reenact-handler.ts';
import { InferenceError } from '../inference/errors.ts';
const log = rootLogger.child('reenactor', { pid: process.pid });
/** Enrolled-target cache folder and the landmark model ('mesh' | 'attention'), given by the supervisor. */
const targetCacheDir = process.argv[2];
const attention = process.argv[3] === 'attention';
const provider = (process.argv[4] ?? 'auto') as ProviderChoice;
/** Gathering of face-model requests across this process's sessions, and where the warp runs (JSON, from the supervisor). */
const { batch, gpuWarp } = JSON.parse(process.argv[5] ?? '{}') as { batch?: Partial<BatchOptions>; gpuWarp?: GpuWarpChoice };
const sessions = new Map<string, ReenactSession>();
const starting = new Set<string>();

function send(msg: ChildMessage): void {
  if (process.connected) process.send?.(msg);
}

/**
 * One pipeline worker per reenactor process, shared by its sessions: the
 * face models load once, and inference never runs on this (wrtc) thread.
 */
let pipeline: Promise<InferenceRunner> | undefined;

function pipelineRunner(): Promise<InferenceRunner> {
  pipeline ??= InferenceRunner.create({
    name: 'pipeline',
    // ORT threads follow the cores, leaving one for this process's media thread.
    handlers: [reenactHandlerSpec({ threads: Math.max(1, availableParallelism() - 1), cacheDir: targetCacheDir, attention, provider, batch, gpuWarp })],
    initTimeoutMs: 60_000,
    logger: log,
  }).catch((err: unknown) => {
    pipeline = undefined;
    throw err;
  });
  return pipeline;
}

/** Loads the pipeline and enrolls the default target before any session needs them. */
async function prewarm(targetPath: string, size: number, alsoEnroll: string[]): Promise<void> {
  const t0 = performance.now();
  try {
    const runner = await pipelineRunner();
    await runner.run(REENACT_HANDLER, { op: 'open', sessionId: '__prewarm', targetPath, size });
    await runner.run(REENACT_HANDLER, { op: 'close', sessionId: '__prewarm' });
    const info = runner.info[REENACT_HANDLER] ?? {};
    log.info('pipeline prewarmed', { ms: Math.round(performance.now() - t0), provider: info['provider'] });
    send({ type: 'prewarmed', ms: performance.now() - t0, provider: String(info['provider'] ?? 'cpu'), warp: info['warp'] === 'gpu' ? 'gpu' : 'cpu', maxBatch: Number(info['maxBatch'] ?? 1) });
    // The rest of the gallery goes to the on-disk enrollment cache from a separate, short-lived
    // worker, so live sessions never queue behind an enrollment; a later switch then loads from cache.
    await enrollGallery([targetPath, ...alsoEnroll], size, t0);
  } catch (err) {
    log.warn('prewarm failed; sessions will start cold', { err });
    send({ type: 'prewarmFailed', code: err instanceof InferenceError ? err.originCode : undefined, message: err instanceof Error ? err.message : String(err) });
  }
}

async function enrollGallery(paths: string[], size: number, t0: number): Promise<void> {
  let ok = false;
  try {
    const enroller = await InferenceRunner.create({
      name: 'enroller',
      handlers: [reenactHandlerSpec({ threads: 1, cacheDir: targetCacheDir, attention, provider, batch: { maxBatch: 1 } })],
      initTimeoutMs: 60_000,
      logger: log,
    });
    try {
      // Both render sizes: a session that degrades switches to the smaller one mid-stream.
      for (const path of paths) {
        for (const s of [size, degradedRenderSize(size)]) await enroller.run(REENACT_HANDLER, { op: 'enroll', targetPath: path, size: s });
      }
      ok = true;
    } finally {
      await enroller.close();
    }
    log.info('gallery enrolled', { ms: Math.round(performance.now() - t0) });
  } catch (err) {
    log.warn('gallery enrollment failed; a switch to those targets will enroll them then', { err });
  } finally {
    send({ type: 'galleryEnrolled', ms: performance.now() - t0, ok });
  }
}

async function createStage(spec: SessionSpec): Promise<Stage> {
  switch (spec.stage) {
    case 'passthrough':
      return new PassthroughStage();
    case 'reenact':
      return ReenactStage.create({
        runner: await pipelineRunner(),
        sessionId: spec.sessionId,
        targetId: spec.targetId,
        targetPath: spec.targetPath,
        renderSize: spec.renderSize,
        budgetMs: spec.budgetMs,
        sideBySide: spec.sideBySide,
        lipZero: spec.lipZero,
        output: spec.output,
        watermark: spec.watermark,
        testHooks: spec.testHooks,
        log: log.child('stage', { session: spec.sessionId }),
      });
    default: {
      const never: never = spec.stage;
      throw new TypeError(`unknown stage ${String(never)}`);
    }
  }
}

async function start(spec: SessionSpec): Promise<void> {
  if (sessions.has(spec.sessionId) || starting.has(spec.sessionId)) return;
  starting.add(spec.sessionId);
  send({ type: 'sessionState', sessionId: spec.sessionId, state: 'starting' });
  try {
    const stage = await createStage(spec);
    let session: ReenactSession;
    try {
      session = await ReenactSession.create(spec, stage, log.child('session', { session: spec.sessionId }));
    } catch (err) {
      stage.close();
      throw err;
    }
    if (!starting.has(spec.sessionId)) {
      // Stopped while starting.
      session.close();
      return;
    }
    sessions.set(spec.sessionId, session);
    session.on('ended', (reason) => {
      log.info('session ended', { session: spec.sessionId, reason });
      stop(spec.sessionId);
    });
    send({ type: 'sessionState', sessionId: spec.sessionId, state: 'running' });
  } catch (err) {
    log.error('session failed to start', { session: spec.sessionId, err });
    send({ type: 'sessionState', sessionId: spec.sessionId, state: 'failed', message: err instanceof Error ? err.message : String(err) });
  } finally {
    starting.delete(spec.sessionId);
  }
}

function stop(sessionId: string): void {
  starting.delete(sessionId);
  const s = sessions.get(sessionId);
  if (!s) return;
  sessions.delete(sessionId);
  s.close();
  send({ type: 'sessionState', sessionId, state: 'stopped' });
}

function shutdown(): void {
  for (const id of [...sessions.keys()]) stop(id);
  clearInterval(heartbeat);
  loop.disable();
  void pipeline?.then((r) => r.close()).catch(() => undefined);
  // wrtc needs a moment to tear down its threads after the last pc closes.
  setTimeout(() => process.exit(0), 200);
}

process.on('message', (raw: unknown) => {
  const msg = raw as ParentMessage;
  switch (msg.type) {
    case 'start':
      void start(msg.spec);
      break;
    case 'stop':
      stop(msg.sessionId);
      break;
    case 'control': {
      const session = sessions.get(msg.sessionId);
      const done = (error?: string): void => send({ type: 'controlResult', requestId: msg.requestId, error });
      if (!session) done('no running session');
      else session.control(msg.control).then(() => done(), (err: unknown) => done(err instanceof Error ? err.message : String(err)));
      break;
    }
    case 'prewarm':
      void prewarm(msg.targetPath, msg.size, msg.alsoEnroll);
      break;
    case 'shutdown':
      shutdown();
      break;
    default: {
      const never: never = msg;
      log.warn('unknown message from parent', { type: String((never as { type: unknown }).type) });
    }
  }
});

// Orphaned (parent died): leave rather than linger with open peer connections.
process.on('disconnect', () => shutdown());

const LOOP_RESOLUTION_MS = 10;
const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
loop.enable();
function memoryFigures(): { rssBytes: number; memory: ChildMemory } {
  const m = process.memoryUsage();
  return { rssBytes: m.rss, memory: { heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, externalBytes: m.external, arrayBuffersBytes: m.arrayBuffers } };
}
const heartbeat = setInterval(() => {
  const cpu = process.cpuUsage();
  send({
    type: 'heartbeat',
    // The histogram records whole sampling intervals; lag is what exceeds the interval.
    loopLagP99Ms: Math.max(0, loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS),
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    ...memoryFigures(),
    sessions: [...sessions.values()].map((s) => s.takeStats()),
  });
  loop.reset();
}, 1000);

send({ type: 'ready', pid: process.pid });
