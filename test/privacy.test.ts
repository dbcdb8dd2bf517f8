/**
 * Privacy mode with real parts: a wrtc actor sends only face-mesh landmarks
 * (tracked from real footage with the project's tracker, as the browser's
 * FaceLandmarker would) over an SCTP data channel through a real mediasoup
 * worker; the reenactor renders from them. Plus the wire format's units and
 * the faults: malformed messages, wrong roles, a second actor source.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import type { ReenactServer } from '../server/src/server.ts';
import { FootageActor, StampViewer, TracksActor, decodeClip, latencies, percentile, trackLandmarks, type DecodedClip, type TrackedClip } from '../loadtest/peers.ts';
import { NodePeer } from '../server/src/rtc/node-peer.ts';
import { Tracker, toFaceTrack } from '../server/src/tracking/tracker.ts';
import { pearson } from '../server/src/render/fidelity.ts';
import { TRACK_HEADER_BYTES, TrackWireError, decodeTrackMessage, encodeTrackMessage, trackMessageBytes } from '../shared/track-wire.ts';
import type { SessionStatsData } from '../shared/protocol.ts';
import { fixture, settleWrtc, startServer, waitFor } from './helpers/server.ts';
import { mouthPairsByStamp } from './helpers/mouth-follow.ts';

const servers: ReenactServer[] = [];
let clipCache: DecodedClip | undefined;
let trackedCache: TrackedClip | undefined;

after(async () => {
  for (const s of servers) await s.close();
  await settleWrtc();
});

async function server(overrides: Parameters<typeof startServer>[0] = {}): Promise<ReenactServer> {
  const s = await startServer({ measurement: true, ...overrides });
  servers.push(s);
  return s;
}

/** d9's first 100 frames at 15 fps (its speech). */
async function clip(): Promise<DecodedClip> {
  clipCache ??= await decodeClip(fixture('driving/d9.mp4'), 640, 480, 15, 100);
  return clipCache;
}

/** The same frames' raw landmarks, tracked once: what the actor's device sends. */
async function tracked(): Promise<TrackedClip> {
  trackedCache ??= await trackLandmarks(await clip());
  return trackedCache;
}

test('track messages round-trip real landmarks within half a quantisation step, and malformed ones are refused with TrackWireError', async () => {
  const points = (await tracked()).points.find((p) => p !== null);
  assert.ok(points, 'no face tracked in d9');
  const msg = encodeTrackMessage({ frameId: 77, captureMs: 1.7e12, width: 640, height: 480, points });
  assert.equal(msg.byteLength, trackMessageBytes(468));
  assert.equal(msg.byteLength, 1912);
  const back = decodeTrackMessage(msg);
  assert.equal(back.frameId, 77);
  assert.equal(back.captureMs, 1.7e12);
  assert.deepEqual([back.width, back.height], [640, 480]);
  assert.ok(back.points);
  let maxXy = 0;
  let maxZ = 0;
  let spanXy = 0;
  let zMin = Infinity;
  let zMax = -Infinity;
  for (let i = 0; i < points.length; i++) {
    const err = Math.abs(back.points[i]! - points[i]!);
    if (i % 3 === 2) {
      maxZ = Math.max(maxZ, err);
      zMin = Math.min(zMin, points[i]!);
      zMax = Math.max(zMax, points[i]!);
    } else maxXy = Math.max(maxXy, err);
  }
  for (let c = 0; c < 2; c++) {
    const v = [...points].filter((_, i) => i % 3 === c);
    spanXy = Math.max(spanXy, Math.max(...v) - Math.min(...v));
  }
  assert.ok(maxXy <= (spanXy / 2047) * 0.5 + 1e-3, `x/y error ${maxXy} px over a ${spanXy.toFixed(1)} px face`);
  assert.ok(maxZ <= ((zMax - zMin) / 1023) * 0.5 + 1e-3, `z error ${maxZ} px`);
  assert.ok(maxXy < 0.2, `x/y error ${maxXy} px`);

  const none = decodeTrackMessage(encodeTrackMessage({ frameId: 1, captureMs: 0, width: 640, height: 480, points: null }));
  assert.equal(none.points, null);

  const bad = (mutate: (b: Uint8Array) => Uint8Array | ArrayBuffer): void => {
    assert.throws(() => decodeTrackMessage(mutate(new Uint8Array(msg))), TrackWireError);
  };
  bad((b) => b.subarray(0, 10)); // shorter than the header
  bad((b) => b.subarray(0, b.length - 4)); // truncated points
  bad((b) => ((b[0] = 9), b)); // version
  bad((b) => (new DataView(b.buffer).setUint16(2, 400, true), b)); // point count
  bad((b) => (new DataView(b.buffer).setFloat64(8, NaN, true), b)); // capture time
  bad((b) => (new DataView(b.buffer).setUint16(16, 0, true), b)); // frame width
  bad((b) => (new DataView(b.buffer).setFloat32(32, Infinity, true), b)); // span
  bad((b) => (new DataView(b.buffer).setFloat32(36, -1, true), b)); // z span
  bad(() => new Uint8Array(TRACK_HEADER_BYTES + 4 * 468 + 1));
  assert.throws(() => encodeTrackMessage({ frameId: 1, captureMs: 0, width: 640, height: 480, points: new Float32Array(300) }), TrackWireError);
  assert.throws(() => encodeTrackMessage({ frameId: 1, captureMs: 0, width: 640, height: 480, points: new Float32Array(468 * 3).fill(NaN) }), TrackWireError);
});

test('a 478-point tracker fed the browser model\'s 468 points reports 468 (no irises), with pose and expression', { timeout: 60_000 }, async () => {
  const points = (await tracked()).points.find((p) => p !== null);
  assert.ok(points);
  const tracker = await Tracker.create({ threads: 1, attention: true });
  try {
    const r = tracker.processLandmarks(points, 0);
    assert.equal(r.landmarkCount, 468);
    assert.equal(toFaceTrack(r).landmarks?.length, 468);
    assert.ok(r.pose && r.expression, 'no pose or expression');
    assert.equal(tracker.processLandmarks(null, 33).landmarks, null);
    // @ts-expect-error a wrong point count is refused
    assert.throws(() => tracker.processLandmarks(new Float32Array(300 * 3), 66, 'x'), TypeError);
  } finally {
    await tracker.close();
  }
});

test('privacy mode end to end: landmarks only in, no camera producer in the room, and the output mouth follows the actor (d9, correlation ≥ 0.8 by stamp)', { timeout: 150_000 }, async () => {
  const srv = await server({ stage: 'reenact' });
  const tracks = await tracked();
  const frames = await clip();
  const t0 = performance.now();
  const actor = await TracksActor.start({ url: srv.url, token: srv.tokens.sign('private', 'actor'), tracked: tracks, durationMs: 14_000 });
  const viewer = await StampViewer.start({ url: srv.url, token: srv.tokens.sign('private', 'viewer'), keepFrames: 400 });
  const stats: SessionStatsData[] = [];
  viewer.peer.onNotification((n) => {
    if (n.method === 'sessionStats') stats.push(n.data);
  });
  let firstFrameMs = NaN;
  try {
    await viewer.firstFrame(30_000);
    firstFrameMs = performance.now() - t0;
    const room = srv.rooms.get('private');
    assert.ok(room, 'no room');
    assert.equal(room.actorVideo, undefined, 'a camera producer exists in privacy mode');
    assert.deepEqual(room.producerInfos.map((p) => p.label), ['synthesized'], 'the room should carry only the synthesized video');
    assert.equal(room.actorTracks?.id, actor.dataProducerId);
    await actor.finished();
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    viewer.close();
    actor.stop();
  }
  const lat = latencies(actor, viewer).map((l) => l.ms);
  // As in the camera-video test (realtime.test.ts): driver and output frames aligned by stamp id.
  const { driving: drv, output: out } = await mouthPairsByStamp(frames, viewer.frames);
  const corr = pearson(drv, out);
  const seconds = 14;
  const report = {
    pairs: drv.length,
    mouthCorrelation: corr,
    firstSynthesizedFrameMs: firstFrameMs,
    glassToGlassMs: { p50: percentile(lat, 50), p95: percentile(lat, 95), note: 'landmarks sent → frame decoded by the viewer; excludes on-device tracking' },
    landmarkPayloadKbps: (actor.bytesSent * 8) / seconds / 1000,
    framesSent: actor.framesSent,
    outputFrames: viewer.received.length,
    serverFace: stats.filter((s) => s.face).length / Math.max(1, stats.length),
  };
  console.log('privacy mode', JSON.stringify(report));
  await mkdir(new URL('./artifacts/', import.meta.url), { recursive: true });
  await writeFile(new URL('./artifacts/privacy-live.json', import.meta.url), JSON.stringify(report, null, 2));
  assert.ok(drv.length >= 60, `only ${drv.length} output frames could be compared`);
  assert.ok(corr >= 0.8, `mouth-opening correlation ${corr.toFixed(3)} < 0.8`);
  assert.ok(stats.some((s) => s.face), 'the server never reported a face from the landmarks');
});

test('privacy mode faults: malformed and flooding messages are counted and dropped while the session goes on; wrong roles and a second actor source are refused', { timeout: 120_000 }, async () => {
  const srv = await server({ stage: 'passthrough' });
  const tracks = await tracked();
  const actor = await TracksActor.start({ url: srv.url, token: srv.tokens.sign('faults', 'actor'), tracked: tracks, durationMs: 8_000 });
  const viewer = await StampViewer.start({ url: srv.url, token: srv.tokens.sign('faults', 'viewer') });
  const stats: SessionStatsData[] = [];
  viewer.peer.onNotification((n) => {
    if (n.method === 'sessionStats') stats.push(n.data);
  });
  const peers: NodePeer[] = [];
  try {
    await viewer.firstFrame(30_000);
    // Garbage on the channel: text, random bytes, a truncated message, a header claiming 478 points.
    const good = encodeTrackMessage({ frameId: 1, captureMs: 0, width: 640, height: 480, points: tracks.points.find((p) => p !== null) ?? null });
    const lying = new Uint8Array(good);
    new DataView(lying.buffer).setUint16(2, 478, true);
    for (let i = 0; i < 20; i++) {
      actor.sendRaw('not landmarks');
      actor.sendRaw(new Uint8Array(64).fill(i).buffer);
      actor.sendRaw(good.slice(0, 100).buffer);
      actor.sendRaw(lying.buffer);
    }
    // A flood of well-formed messages: beyond a short burst they are dropped before decoding.
    for (let i = 0; i < 1000; i++) actor.sendRaw(good.slice().buffer);
    const before = viewer.received.length;
    await waitFor(() => stats.some((s) => (s.drops['malformed'] ?? 0) > 0), 10_000, 'malformed messages to be counted');
    await waitFor(() => stats.some((s) => (s.drops['flood'] ?? 0) > 0), 10_000, 'flooded messages to be counted');
    await waitFor(() => viewer.received.length > before + 30, 10_000, 'frames to keep coming after the garbage');

    const expectCode = async (p: Promise<unknown>, code: string, what: string): Promise<void> => {
      await assert.rejects(p, (err: unknown) => (err as { code?: string }).code === code, what);
    };
    // A viewer cannot send landmarks.
    const v2 = await NodePeer.connect({ url: srv.url, token: srv.tokens.sign('faults', 'viewer') });
    peers.push(v2);
    await expectCode(v2.produceTracks(), 'E_FORBIDDEN', 'a viewer produced tracks');
    // An actor cannot read another actor's landmarks.
    const snoop = await NodePeer.connect({ url: srv.url, token: srv.tokens.sign('faults', 'actor') });
    peers.push(snoop);
    await expectCode(snoop.consumeData(actor.dataProducerId), 'E_FORBIDDEN', 'an actor consumed tracks');
    // One actor source per room: a second landmark channel, or a camera, is refused.
    await expectCode(snoop.produceTracks(), 'E_ROOM_TAKEN', 'a second tracks producer');
    await expectCode(FootageActor.start({ url: srv.url, token: srv.tokens.sign('faults', 'actor'), clip: await decodeClip(fixture('driving/d9.mp4'), 320, 240, 15, 5), durationMs: 1000 }), 'E_ROOM_TAKEN', 'a camera next to tracks');
    // Stream parameters the schema refuses.
    const bad = await snoop.signal.request('produceData', { transportId: 'x', sctpStreamParameters: { streamId: -1 }, label: 'tracks' }).catch((e: unknown) => e);
    assert.equal((bad as { code?: string }).code, 'E_BAD_REQUEST');
    assert.ok(srv.supervisor.sessionCount === 1, 'the session should still be running');
  } finally {
    for (const p of peers) p.close();
    viewer.close();
    actor.stop();
  }
});
