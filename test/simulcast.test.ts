/**
 * Simulcast on the synthesized video, with real parts: a wrtc actor publishes
 * real footage into a real mediasoup worker, the reenactor renders the 720p
 * profile and publishes it as three layers, and a wrtc viewer consumes it.
 * The viewer gets the full 1280×720 layer on loopback; asking the SFU for the
 * quarter layer (setPreferredLayers, as a viewer on a weak link or in a small
 * window would) brings 320×180 frames, and asking again brings 1280×720 back.
 * Without simulcast (REENACT_SIMULCAST=0) the request is refused with a code.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ReenactServer } from '../server/src/server.ts';
import { NodePeer } from '../server/src/rtc/node-peer.ts';
import { RTCVideoSink, type I420Frame } from '../server/src/rtc/wrtc.ts';
import { FootageActor, decodeClip, type DecodedClip } from '../loadtest/peers.ts';
import { fixture, settleWrtc, startServer, waitFor } from './helpers/server.ts';

let clip: DecodedClip;

before(async () => {
  clip = await decodeClip(fixture('driving/d3.mp4'), 640, 480, 15, 150);
});

after(async () => {
  await settleWrtc();
});

/** A viewer peer that consumes the room's synthesized video and records the size of each frame. */
async function watch(server: ReenactServer, room: string): Promise<{ peer: NodePeer; consumerId: string; sizes: { w: number; h: number; at: number }[]; stop: () => void }> {
  const peer = await NodePeer.connect({ url: server.url, token: server.tokens.sign(room, 'viewer') });
  const find = (): string | undefined => peer.roomProducers.find((p) => p.label === 'synthesized' && p.kind === 'video')?.producerId;
  await waitFor(() => find() !== undefined, 30_000, 'the synthesized producer');
  const consumer = await peer.consume(find()!);
  const sizes: { w: number; h: number; at: number }[] = [];
  const sink = new RTCVideoSink(consumer.track);
  sink.onframe = ({ frame }: { frame: I420Frame }) => sizes.push({ w: frame.width, h: frame.height, at: Date.now() });
  return { peer, consumerId: consumer.id, sizes, stop: () => { sink.stop(); peer.close(); } };
}

/** Waits until the last `n` frames all have the given size. */
async function settlesAt(sizes: { w: number; h: number }[], w: number, h: number, what: string, n = 5): Promise<void> {
  await waitFor(() => sizes.length >= n && sizes.slice(-n).every((s) => s.w === w && s.h === h), 20_000, `${what}: ${w}x${h} frames (last seen ${JSON.stringify(sizes.at(-1))})`);
}

test('the 720p output is sent as simulcast: a viewer can be switched to the quarter layer and back', { timeout: 240_000 }, async () => {
  const server = await startServer({ stage: 'reenact', output: '720p', simulcast: true });
  const actor = await FootageActor.start({ url: server.url, token: server.tokens.sign('sim', 'actor'), clip, durationMs: 120_000 });
  const viewer = await watch(server, 'sim');
  try {
    await settlesAt(viewer.sizes, 1280, 720, 'full layer on loopback');
    const full = viewer.sizes.find((f) => f.w === 1280)!.at - viewer.sizes[0]!.at;
    console.log(`first frame to first full-layer frame: ${full} ms`);
    assert.ok(full < 5000, `the viewer took ${full} ms to reach the full layer on loopback`);
    await viewer.peer.signal.request('setPreferredLayers', { consumerId: viewer.consumerId, spatialLayer: 0 });
    await settlesAt(viewer.sizes, 320, 180, 'quarter layer');
    await viewer.peer.signal.request('setPreferredLayers', { consumerId: viewer.consumerId, spatialLayer: 1 });
    await settlesAt(viewer.sizes, 640, 360, 'half layer');
    await viewer.peer.signal.request('setPreferredLayers', { consumerId: viewer.consumerId, spatialLayer: 2 });
    await settlesAt(viewer.sizes, 1280, 720, 'back to the full layer');
    await assert.rejects(viewer.peer.signal.request('setPreferredLayers', { consumerId: 'nope', spatialLayer: 0 }), (err: { code?: string }) => err.code === 'E_NOT_FOUND');
  } finally {
    viewer.stop();
    actor.stop();
    await server.close();
  }
});

test('a face-square output is one layer (a small frame cannot carry three); switching the room to 720p republishes it as simulcast and the viewer follows', { timeout: 240_000 }, async () => {
  const server = await startServer({ stage: 'reenact', output: 'face', simulcast: true });
  const size = server.config.renderSize;
  const actor = await FootageActor.start({ url: server.url, token: server.tokens.sign('sw', 'actor'), clip, durationMs: 120_000 });
  let viewer = await watch(server, 'sw');
  try {
    await settlesAt(viewer.sizes, size, size, 'the face square at full size');
    await assert.rejects(viewer.peer.signal.request('setPreferredLayers', { consumerId: viewer.consumerId, spatialLayer: 0 }), (err: { code?: string }) => err.code === 'E_INVALID_STATE');
    const before = viewer.peer.roomProducers.find((p) => p.label === 'synthesized' && p.kind === 'video')!.producerId;
    // The session control the page's output select ends in (the Chromium journey drives the select itself).
    await server.supervisor.control('sw', { type: 'setOptions', sideBySide: false, lipZero: true, output: '720p' });
    await waitFor(() => viewer.peer.roomProducers.some((p) => p.label === 'synthesized' && p.kind === 'video' && p.producerId !== before), 20_000, 'a new synthesized producer');
    await waitFor(() => !viewer.peer.roomProducers.some((p) => p.producerId === before), 20_000, 'the old producer to close');
    viewer.stop();
    viewer = await watch(server, 'sw');
    await settlesAt(viewer.sizes, 1280, 720, 'the 720p canvas');
    await viewer.peer.signal.request('setPreferredLayers', { consumerId: viewer.consumerId, spatialLayer: 0 });
    await settlesAt(viewer.sizes, 320, 180, 'quarter layer after the switch');
  } finally {
    viewer.stop();
    actor.stop();
    await server.close();
  }
});

test('without simulcast the synthesized video is one layer and a layer request gets a coded refusal; keyframe requests are throttled and a closed consumer is gone', { timeout: 180_000 }, async () => {
  const server = await startServer({ stage: 'reenact', output: 'face', simulcast: false });
  const actor = await FootageActor.start({ url: server.url, token: server.tokens.sign('one', 'actor'), clip, durationMs: 120_000 });
  const viewer = await watch(server, 'one');
  try {
    await settlesAt(viewer.sizes, server.config.renderSize, server.config.renderSize, 'the face square');
    await assert.rejects(viewer.peer.signal.request('setPreferredLayers', { consumerId: viewer.consumerId, spatialLayer: 0 }), (err: { code?: string }) => err.code === 'E_INVALID_STATE');
    // A stalled receiver may ask for a keyframe: passed on, throttled, and told whether the SFU has media.
    const first = await viewer.peer.signal.request('requestKeyFrame', { consumerId: viewer.consumerId });
    assert.deepEqual(first, { sent: true, producerLive: true });
    assert.equal((await viewer.peer.signal.request('requestKeyFrame', { consumerId: viewer.consumerId })).sent, false, 'a second request at once is throttled');
    await assert.rejects(viewer.peer.signal.request('requestKeyFrame', { consumerId: 'nope' }), (err: { code?: string }) => err.code === 'E_NOT_FOUND');
    // Closing a consumer ends it at the SFU; it is then unknown.
    await viewer.peer.signal.request('closeConsumer', { consumerId: viewer.consumerId });
    await assert.rejects(viewer.peer.signal.request('requestKeyFrame', { consumerId: viewer.consumerId }), (err: { code?: string }) => err.code === 'E_NOT_FOUND');
    await assert.rejects(viewer.peer.signal.request('closeConsumer', { consumerId: viewer.consumerId }), (err: { code?: string }) => err.code === 'E_NOT_FOUND');
  } finally {
    viewer.stop();
    actor.stop();
    await server.close();
  }
});
