/**
 * The live reenactment stage with real parts: real wrtc peers, a real
 * mediasoup worker, the real pipeline (ONNX tracker + renderer) in the
 * reenactor's worker thread, on real footage.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import type { ReenactServer } from '../server/src/server.ts';
import { FootageActor, StampViewer, decodeClip, latencies, percentile, type DecodedClip } from '../loadtest/peers.ts';
import { i420ToRgba } from '../server/src/media/convert.ts';
import { pearson } from '../server/src/render/fidelity.ts';
import type { Notification, SessionStatsData } from '../shared/protocol.ts';
import { writeImage } from '../server/src/media/video-io.ts';
import { fixture, settleWrtc, startServer, waitFor } from './helpers/server.ts';
import { mouthPairsByStamp } from './helpers/mouth-follow.ts';
import { measurePair, type Grade } from '../loadtest/eval/measures.ts';

const servers: ReenactServer[] = [];
let clipCache: DecodedClip | undefined;

after(async () => {
  for (const s of servers) await s.close();
  await settleWrtc();
});

async function server(overrides: Parameters<typeof startServer>[0] = {}): Promise<ReenactServer> {
  const s = await startServer({ measurement: true, stage: 'reenact', ...overrides });
  servers.push(s);
  return s;
}

async function d9(): Promise<DecodedClip> {
  clipCache ??= await decodeClip(fixture('driving/d9.mp4'), 640, 480, 15, 300);
  return clipCache;
}

function collectStats(viewer: StampViewer): SessionStatsData[] {
  const stats: SessionStatsData[] = [];
  viewer.peer.onNotification((n: Notification) => {
    if (n.method === 'sessionStats') stats.push(n.data);
  });
  return stats;
}

interface FollowCase {
  name: string;
  /** Decoded actor footage, looped by the actor for durationMs. */
  clip: () => Promise<DecodedClip>;
  durationMs: number;
  minCorr: number;
}

async function liveMouthFollow(c: FollowCase): Promise<{ corr: number; agree: number; pairs: number }> {
  const srv = await server();
  const clip = await c.clip();
  const t0 = performance.now();
  const actor = await FootageActor.start({ url: srv.url, token: srv.tokens.sign(`follow-${c.name}`, 'actor'), clip, durationMs: c.durationMs });
  const viewer = await StampViewer.start({ url: srv.url, token: srv.tokens.sign(`follow-${c.name}`, 'viewer'), keepFrames: 400 });
  let firstFrameMs = NaN;
  try {
    await viewer.firstFrame(30_000);
    firstFrameMs = performance.now() - t0;
    await actor.finished();
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    viewer.close();
    actor.stop();
  }
  const lat = latencies(actor, viewer).map((l) => l.ms);
  // Driver and output frames, aligned by stamp id, each tracked with its own tracker.
  const { driving: drv, output: out } = await mouthPairsByStamp(clip, viewer.frames);
  const last = viewer.frames[viewer.frames.length - 1];
  if (last) {
    const rgba = new Uint8Array(last.width * last.height * 4);
    i420ToRgba(last.data, last.width, last.height, rgba);
    await mkdir(new URL('./artifacts/', import.meta.url), { recursive: true });
    await writeImage(new URL(`./artifacts/live-reenact-${c.name}-last.png`, import.meta.url).pathname, { width: last.width, height: last.height, format: 'rgba', data: rgba });
  }
  const corr = pearson(drv, out);
  // Open/closed agreement on the frames where the actor's mouth is clearly shut or clearly open (loadtest/eval/measures.ts).
  const m = measurePair(drv.map((v) => gradeOfMouth(v)), out.map((v) => gradeOfMouth(v)));
  // For diagnosis only: correlation with the output shifted by k frames (k > 0: output lags).
  const lagged: Record<string, number> = {};
  for (let k = -2; k <= 3; k++) lagged[k] = pearson(drv.slice(0, drv.length - Math.max(k, 0)).slice(Math.max(-k, 0)), out.slice(Math.max(k, 0)).slice(0, out.length - Math.max(-k, 0) - Math.max(k, 0)));
  const report = {
    pairs: drv.length,
    mouthCorrelation: corr,
    openClosedAgreement: m.openAgree,
    laggedCorrelation: lagged,
    series: { driver: drv.map((v) => +v.toFixed(4)), output: out.map((v) => +v.toFixed(4)) },
    firstSynthesizedFrameMs: firstFrameMs,
    glassToGlassMs: { p50: percentile(lat, 50), p95: percentile(lat, 95) },
    outputFrames: viewer.received.length,
  };
  console.log(`live reenactment ${c.name}`, JSON.stringify({ ...report, series: undefined }));
  await writeFile(new URL(`./artifacts/live-reenact-${c.name}.json`, import.meta.url), JSON.stringify(report, null, 2));
  assert.ok(drv.length >= 60, `only ${drv.length} output frames could be compared`);
  assert.ok(corr >= c.minCorr, `mouth-opening correlation ${corr.toFixed(3)} < ${c.minCorr}`);
  return { corr, agree: m.openAgree, pairs: drv.length };
}

/** A grade carrying only the mouth gap (the live helper measures the mouth alone). */
function gradeOfMouth(mouth: number): Grade {
  return { mouth, eyeR: 0, eyeL: 0, yaw: 0, pitch: 0, roll: 0, rigid: new Float64Array(0), iod: 1 };
}

test('the live output mouth follows the actor (d9): correlation ≥ 0.8 after aligning by frame stamp', { timeout: 150_000 }, async () => {
  // d9's speech is in its first ~7 s; after that the lips barely part (about a pixel at 256²,
  // below what the tracker resolves on the output: see docs/rendering.md). Loop that part.
  await liveMouthFollow({ name: 'd9', clip: () => decodeClip(fixture('driving/d9.mp4'), 640, 480, 15, 100), durationMs: 14_000, minCorr: 0.8 });
});

test('a talker from frame 0 (t6: speaking and smiling when the session starts) gets a speaking target: mouth r ≥ 0.8 and open/closed agreement ≥ 0.85', { timeout: 150_000 }, async () => {
  // The session starts on t6's first frame, mid-sentence: there is no neutral to capture.
  const r = await liveMouthFollow({ name: 't6', clip: () => decodeClip(fixture('talking/t6.mp4'), 480, 480, 15, 120), durationMs: 8_000, minCorr: 0.8 });
  assert.ok(r.agree >= 0.85, `open/closed agreement ${r.agree.toFixed(2)}`);
});

test('a slow stage drops and counts frames, keeps latency bounded, degrades, then recovers', { timeout: 90_000 }, async () => {
  // 200 ms per frame for the first 6 s against an 80 ms budget, then normal speed.
  const srv = await server({ budgetMs: 80, testHooks: { delayMs: 200, delayForMs: 6000 } });
  const clip = await d9();
  const actor = await FootageActor.start({ url: srv.url, token: srv.tokens.sign('slow', 'actor'), clip, durationMs: 20_000 });
  const viewer = await StampViewer.start({ url: srv.url, token: srv.tokens.sign('slow', 'viewer') });
  const stats = collectStats(viewer);
  const changes: number[] = [];
  viewer.peer.onNotification((n) => {
    if (n.method === 'degradeChanged') changes.push(n.data.level);
  });
  try {
    await viewer.firstFrame(30_000);
    await waitFor(() => changes.some((l) => l > 0), 15_000, 'the session to degrade');
    await waitFor(() => changes.length >= 2 && changes[changes.length - 1] === 0, 30_000, 'the session to recover to level 0');
  } finally {
    viewer.close();
    actor.stop();
  }
  const dropped = stats.reduce((n, s) => n + Object.values(s.drops).reduce((a, b) => a + b, 0), 0);
  const worstP95 = Math.max(...stats.map((s) => s.serverMsP95));
  console.log('degrade', JSON.stringify({ changes, dropped, worstServerP95: worstP95 }));
  assert.ok(dropped > 0, 'no frame was dropped while the stage was slow');
  // Depth-1 queue and stale drops: a frame waits at most for the one in progress (~200 ms) plus its own processing.
  assert.ok(worstP95 < 600, `server-added p95 reached ${worstP95} ms: latency not bounded`);
  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  assert.match(metrics, /reenact_frames_dropped_total\{reason="(stale|superseded|skipped)"\} [1-9]/);
});

test('a failing stage falls back to passthrough with a notice, and recovers', { timeout: 90_000 }, async () => {
  const srv = await server({ testHooks: { throwFromMs: 3000, throwToMs: 7000 } });
  const clip = await d9();
  const actor = await FootageActor.start({ url: srv.url, token: srv.tokens.sign('fail', 'actor'), clip, durationMs: 20_000 });
  const viewer = await StampViewer.start({ url: srv.url, token: srv.tokens.sign('fail', 'viewer') });
  const stats = collectStats(viewer);
  try {
    await viewer.firstFrame(30_000);
    await waitFor(() => stats.some((s) => s.notice !== undefined), 20_000, 'a passthrough notice');
    const during = viewer.received.length;
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(viewer.received.length - during > 10, 'video stopped during the failure');
    await waitFor(() => stats.length > 0 && stats[stats.length - 1]!.notice === undefined && stats[stats.length - 1]!.face, 20_000, 'recovery');
  } finally {
    viewer.close();
    actor.stop();
  }
});

test('a viewer that joins before the actor gets the synthesized video once the actor arrives', { timeout: 60_000 }, async () => {
  const srv = await server();
  const clip = await d9();
  const viewerP = StampViewer.start({ url: srv.url, token: srv.tokens.sign('early', 'viewer'), waitProducerMs: 40_000 });
  await new Promise((r) => setTimeout(r, 1000));
  const actor = await FootageActor.start({ url: srv.url, token: srv.tokens.sign('early', 'actor'), clip, durationMs: 15_000 });
  const viewer = await viewerP;
  try {
    await viewer.firstFrame(30_000);
    assert.ok(viewer.received.length > 0);
  } finally {
    viewer.close();
    actor.stop();
  }
});
