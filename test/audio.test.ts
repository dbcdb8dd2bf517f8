/**
 * The actor's voice through the room, with real parts: a real mediasoup
 * worker, real wrtc peers, the real reenactor pipeline, and a talking fixture
 * clip with its own voice (t6). The actor publishes the clip and its sound; a
 * viewer receives the synthesized video and audio; tone markers in the sound
 * and stamps in the frames measure the A/V offset at the viewer on one clock
 * (loadtest/audio.ts).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ReenactServer } from '../server/src/server.ts';
import { LoadSession } from '../loadtest/session.ts';
import { decodeClip, percentile } from '../loadtest/peers.ts';
import { decodeVoice, MARKER } from '../loadtest/audio.ts';
import { DelayLine, CHUNK_MS, type AudioChunk } from '../server/src/reenactor/audio-relay.ts';
import { NodePeer } from '../server/src/rtc/node-peer.ts';
import type { SessionStatsData } from '../shared/protocol.ts';
import { fixture, settleWrtc, startServer } from './helpers/server.ts';

/** EBU R37: audio at most 40 ms early and at most 60 ms late. */
const EARLY_MS = 40;
const LATE_MS = -60;

const servers: ReenactServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
  await settleWrtc();
});

interface VoiceRun {
  offsets: number[];
  /** Each offset's marker time, ms after the actor's first frame. */
  atMs: number[];
  audioMs: number[];
  videoMs: number[];
  markersSent: number;
  chunks: number;
  audible: number;
  gaps: number;
  stats: SessionStatsData[];
  videoFrames: number;
}

async function voiceRun(srv: ReenactServer, room: string, fps: number, durationMs: number): Promise<VoiceRun> {
  const clip = await decodeClip(fixture('talking/t6.mp4'), 640, 480, fps, 240);
  const voice = await decodeVoice(fixture('talking/t6.mp4'), 10_000);
  const session = await LoadSession.start({
    index: 0,
    room,
    url: srv.url,
    tokens: (r, role) => Promise.resolve(srv.tokens.sign(r, role)),
    clip,
    durationMs,
    voice,
  });
  const stats: SessionStatsData[] = [];
  session.viewer.peer.onNotification((n) => {
    if (n.method === 'sessionStats') stats.push(n.data);
  });
  try {
    await session.viewer.firstFrame(30_000);
    await session.actor.finished();
    await new Promise((r) => setTimeout(r, 600));
  } finally {
    session.close();
  }
  // Markers in the first four seconds meet a pipeline and a delay line still settling (the
  // receive-path skew is a median of readings taken once a second).
  const t0 = session.publishedAt + 4000;
  const samples = session.avSamples().filter((s) => s.at > t0);
  const voiceParts = session.voice;
  assert.ok(voiceParts, 'the session has a voice');
  return {
    offsets: samples.map((s) => s.offsetMs),
    atMs: samples.map((s) => s.at - session.publishedAt),
    audioMs: samples.map((s) => s.audioMs),
    videoMs: samples.map((s) => s.videoMs),
    markersSent: voiceParts.sender.markerSentAt.filter((t) => t > t0).length,
    chunks: voiceParts.listener.chunks,
    audible: voiceParts.listener.audible,
    gaps: voiceParts.listener.gaps,
    stats,
    videoFrames: session.viewer.received.length,
  };
}

function describe(r: VoiceRun): string {
  const p = (q: number): string => percentile(r.offsets, q).toFixed(1);
  return `offset p5 ${p(5)} p50 ${p(50)} p95 ${p(95)} ms over ${r.offsets.length}/${r.markersSent} markers; chunks ${r.chunks}, audible ${r.audible}, gaps ${r.gaps}; video frames ${r.videoFrames}`;
}

/** The offsets' 5th and 95th percentiles lie inside EBU R37's window. */
function assertInSync(r: VoiceRun, what: string): void {
  assert.ok(r.offsets.length >= Math.max(3, 0.7 * r.markersSent), `${what}: too few markers heard: ${describe(r)}`);
  assert.ok(percentile(r.offsets, 95) <= EARLY_MS, `${what}: audio early beyond ${EARLY_MS} ms at p95: ${describe(r)}`);
  assert.ok(percentile(r.offsets, 5) >= LATE_MS, `${what}: audio late beyond ${-LATE_MS} ms at p95: ${describe(r)}`);
}

for (const fps of [15, 30]) {
  test(`the actor's voice reaches the viewer beside the synthesized face, in sync at ${fps} fps (EBU R37)`, { timeout: 240_000 }, async () => {
    const srv = await startServer({ measurement: true, stage: 'reenact' });
    servers.push(srv);
    // 24 s: twenty markers after the settling, so p5 and p95 are not the extremes of a handful.
    const r = await voiceRun(srv, `voice-${fps}`, fps, 24_000);
    console.log(`# voice at ${fps} fps: ${describe(r)}`);
    assertInSync(r, `${fps} fps`);
    // About 100 chunks a second reach the viewer, with sound in them, and no gaps.
    assert.ok(r.audible > 0.8 * 100 * 22, `too little sound reached the viewer: ${describe(r)}`);
    assert.equal(r.gaps, 0, `gaps in the voice: ${describe(r)}`);
    // The server reports the delay it applies: at least the video's processing time here, and no
    // more than the picture's own delay from the actor to the viewer.
    const delays = r.stats.map((s) => s.audioDelayMs).filter((d): d is number => d !== undefined);
    assert.ok(delays.length > 3, 'session stats carry the applied audio delay');
    const serverP50 = percentile(r.stats.map((s) => s.serverMsP50).filter((v) => v > 0), 50);
    assert.ok(percentile(delays, 50) >= serverP50 - 15, `applied delay p50 ${percentile(delays, 50)} ms, video processing p50 ${serverP50} ms`);
    assert.ok(percentile(delays, 50) <= percentile(r.videoMs, 50), `applied delay p50 ${percentile(delays, 50)} ms, video latency p50 ${percentile(r.videoMs, 50)} ms`);
    const metrics = (await srv.metrics.render()).body;
    assert.match(metrics, /reenact_audio_frames_total\{direction="out"\} [1-9]/);
    assert.match(metrics, /reenact_audio_delay_seconds_count [1-9]/);
  });
}

test('audio keeps flowing and stays in sync while video frames are dropped and the pipeline degrades', { timeout: 240_000 }, async () => {
  // The stage takes 200 ms a frame for 6 s: frames are dropped as stale, the pipeline degrades, then recovers.
  const srv = await startServer({ measurement: true, stage: 'reenact', budgetMs: 80, testHooks: { delayMs: 200, delayForMs: 6000 } });
  servers.push(srv);
  const r = await voiceRun(srv, 'voice-degrade', 15, 14_000);
  console.log(`# voice under drops: ${describe(r)} per marker ${JSON.stringify(r.offsets.map((o, i) => [Math.round(r.atMs[i] as number), Math.round(o), Math.round(r.audioMs[i] as number), Math.round(r.videoMs[i] as number)]))} stats ${JSON.stringify(r.stats.map((s) => [s.degradeLevel, Math.round(s.serverMsP50), s.audioDelayMs, s.fpsOut]))}`);
  const drops = r.stats.reduce((n, s) => n + Object.values(s.drops).reduce((a, b) => a + b, 0), 0);
  assert.ok(drops > 10, `the test hook should have made the pipeline drop frames (${drops})`);
  assert.ok(r.audible > 0.8 * 100 * 12, `the voice stopped while video was dropped: ${describe(r)}`);
  assert.equal(r.gaps, 0, `gaps in the voice: ${describe(r)}`);
  // The voice follows the picture's delay as it grows and shrinks, a chunk at a time (about 2 s for
  // a 200 ms step): the markers up to 2.5 s after the stall ends may fall outside the window, and
  // every later one must be inside it.
  assert.ok(r.offsets.length >= 0.7 * r.markersSent, `too few markers heard: ${describe(r)}`);
  const settled = r.offsets.filter((_, i) => (r.atMs[i] as number) > 6000 + 2500);
  // (markers before 4 s are not counted at all: see voiceRun)
  assert.ok(settled.length >= 3, `too few markers after the stall: ${describe(r)}`);
  for (const o of settled) assert.ok(o <= EARLY_MS && o >= LATE_MS, `offset ${o.toFixed(1)} ms after recovery: ${describe(r)}`);
  const mid = percentile(r.offsets, 50);
  assert.ok(mid <= EARLY_MS && mid >= LATE_MS, `median offset ${mid} ms: ${describe(r)}`);
});

test('viewers cannot consume the raw microphone; only one actor voice per room', { timeout: 120_000 }, async () => {
  const srv = await startServer({ measurement: true });
  servers.push(srv);
  const clip = await decodeClip(fixture('talking/t6.mp4'), 320, 240, 15, 30);
  const voice = await decodeVoice(fixture('talking/t6.mp4'), 2000);
  const session = await LoadSession.start({ index: 0, room: 'voice-rules', url: srv.url, tokens: (r, role) => Promise.resolve(srv.tokens.sign(r, role)), clip, durationMs: 5000, voice });
  const second = await NodePeer.connect({ url: srv.url, token: srv.tokens.sign('voice-rules', 'actor') });
  try {
    const mic = session.viewer.peer.join.producers.find((p) => p.label === 'microphone') ?? { producerId: session.voice?.sender.producerId ?? '' };
    await assert.rejects(session.viewer.peer.consume(mic.producerId), /E_FORBIDDEN|only the reenactor/);
    const { RTCAudioSource } = await import('../server/src/rtc/wrtc.ts');
    const track = new RTCAudioSource().createTrack();
    await assert.rejects(second.publishAudio(track, 'microphone'), /E_ROOM_TAKEN|already has an actor microphone/);
    track.stop();
    const track2 = new RTCAudioSource().createTrack();
    await assert.rejects(second.publishAudio(track2, 'camera'), /cannot carry audio/);
    track2.stop();
  } finally {
    second.close();
    session.close();
  }
});

test('the delay line follows its target a chunk at a time, at quiet chunks first, and never stops the output', () => {
  const loud = (): AudioChunk => ({ samples: new Int16Array(480).fill(5000), sampleRate: 48000, channelCount: 1, numberOfFrames: 480 });
  const quiet = (): AudioChunk => ({ samples: new Int16Array(480), sampleRate: 48000, channelCount: 1, numberOfFrames: 480 });
  const line = new DelayLine();
  line.setTarget(100);
  // Filling: one chunk out per chunk in, silence inserted at most one per 100 ms while speech is loud.
  let out = 0;
  for (let i = 0; i < 200; i++) {
    line.push(loud());
    out++;
  }
  assert.equal(out, 200);
  assert.equal(line.delayMs, 100, 'the line reached its target');
  assert.ok(line.inserted === 10, `inserted ${line.inserted}`);
  // A small change during speech waits for a quiet chunk (up to 0.5 s), then goes on anyway.
  line.setTarget(80);
  for (let i = 0; i < 20; i++) line.push(loud());
  assert.equal(line.dropped, 0, 'no loud chunk is dropped within the quiet wait');
  // (the line still holds 100 ms of speech ahead of the first quiet chunk)
  for (let i = 0; i < 30; i++) line.push(quiet());
  assert.equal(line.dropped, 2, 'quiet chunks go first');
  assert.equal(line.delayMs, 80);
  // A large change is met to within 30 ms in about three seconds even through continuous speech
  // (the last 30 ms then go at the fine pace, at quiet chunks).
  line.setTarget(600);
  let n = 0;
  while (line.delayMs < 570 && n < 400) {
    line.push(loud());
    n++;
  }
  assert.ok(n <= 300, `reaching +520 ms took ${n * CHUNK_MS} ms of speech`);
  line.setTarget(50);
  n = 0;
  while (line.delayMs > 80 && n < 400) {
    line.push(loud());
    n++;
  }
  assert.ok(n <= 300, `reaching −550 ms took ${n * CHUNK_MS} ms of speech`);
  assert.equal(line.delayMs % CHUNK_MS, 0);
  // The marker tone the load tester uses is an exact DFT bin of a chunk.
  assert.equal((48000 / 100) % (48000 / MARKER.hz), 0);
});
