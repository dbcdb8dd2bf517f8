/**
 * Faults with real parts: peers that vanish mid-stream leave nothing behind,
 * and a killed reenactor child restarts and serves sessions again.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ReenactServer } from '../server/src/server.ts';
import { FootageActor, StampViewer, decodeClip, type DecodedClip } from '../loadtest/peers.ts';
import { fixture, settleWrtc, startServer, waitFor } from './helpers/server.ts';
import { NodePeer } from '../server/src/rtc/node-peer.ts';
import { ErrorCodes } from '../shared/errors.ts';

let server: ReenactServer;
let clip: DecodedClip;

before(async () => {
  server = await startServer({ measurement: true, iceDisconnectGraceMs: 1000 });
  clip = await decodeClip(fixture('driving/d9.mp4'), 320, 240, 30, 90);
});

after(async () => {
  await server.close();
  await settleWrtc();
});

function framesAfter(viewer: StampViewer, t: number): number {
  return viewer.received.filter((r) => r.at > t).length;
}

test('an actor whose peer connection closes (socket still open) leaves no transports, producers or session', { timeout: 60_000 }, async () => {
  const room = 'vanish-media';
  const actor = await FootageActor.start({ url: server.url, token: server.tokens.sign(room, 'actor'), clip, durationMs: 60_000 });
  const viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign(room, 'viewer') });
  try {
    await viewer.firstFrame(15_000);
    assert.equal(server.supervisor.sessionCount, 1);
    const r = server.rooms.get(room);
    assert.ok(r);
    const actorPeer = [...r.peers.values()].find((p) => p.role === 'actor');
    assert.ok(actorPeer && actorPeer.transportCount === 1);
    // Only the media path dies; the client sends no closeProducer.
    actor.peer.closeMedia();
    await waitFor(() => actorPeer.transportCount === 0 && actorPeer.producers.size === 0, 15_000, 'server to close the dead transport');
    await waitFor(() => r.actorVideo === undefined && server.supervisor.sessionCount === 0, 10_000, 'session to stop');
    await waitFor(() => ![...r.peers.values()].some((p) => p.role === 'reenactor'), 10_000, 'reenactor peer to leave');
  } finally {
    viewer.close();
    actor.stop();
  }
});

test('peers whose sockets drop are removed and the empty room is closed', { timeout: 60_000 }, async () => {
  const room = 'vanish-socket';
  const actor = await FootageActor.start({ url: server.url, token: server.tokens.sign(room, 'actor'), clip, durationMs: 60_000 });
  const viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign(room, 'viewer') });
  await viewer.firstFrame(15_000);
  const r = server.rooms.get(room);
  assert.ok(r);
  assert.equal(r.peers.size, 3, 'actor, viewer and reenactor');
  // Sockets and media vanish together, mid-stream.
  actor.stop();
  viewer.close();
  await waitFor(() => r.closed && !server.rooms.has(room), 15_000, 'room to close');
  assert.equal(r.peers.size, 0);
  assert.ok(r.router.closed, 'router (and with it every transport, producer and consumer) closed');
  assert.equal(server.supervisor.sessionCount, 0);
});

test('a killed reenactor child restarts, resumes its session, and new sessions work', { timeout: 90_000 }, async () => {
  const room = 'restart';
  const actor = await FootageActor.start({ url: server.url, token: server.tokens.sign(room, 'actor'), clip, durationMs: 80_000 });
  const viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign(room, 'viewer') });
  const states: string[] = [];
  viewer.peer.onNotification((n) => {
    if (n.method === 'sessionStatus') states.push(n.data.state);
  });
  let actor2: FootageActor | undefined;
  let viewer2: StampViewer | undefined;
  try {
    await viewer.firstFrame(15_000);
    const [pid] = server.supervisor.childPids;
    assert.ok(pid, 'no reenactor child');
    process.kill(pid, 'SIGKILL');
    const killedAt = performance.now();
    await waitFor(() => states.includes('restarting'), 10_000, 'viewer to be told the reenactor is restarting');
    await waitFor(() => server.supervisor.childPids.some((p) => p !== pid) && server.supervisor.sessionState(room) === 'running', 30_000, 'child restart');
    await waitFor(() => framesAfter(viewer, killedAt + 500) > 10, 20_000, 'frames after restart');
    // And a brand-new session on the restarted child.
    actor2 = await FootageActor.start({ url: server.url, token: server.tokens.sign('after-restart', 'actor'), clip, durationMs: 30_000 });
    viewer2 = await StampViewer.start({ url: server.url, token: server.tokens.sign('after-restart', 'viewer') });
    await viewer2.firstFrame(15_000);
    const t = performance.now();
    await waitFor(() => framesAfter(viewer2!, t) > 10, 10_000, 'frames in the new session');
  } finally {
    viewer.close();
    actor.stop();
    viewer2?.close();
    actor2?.stop();
  }
});

test('a dead mediasoup worker closes its rooms with E_WORKER_DIED and is replaced', { timeout: 60_000 }, async () => {
  const room = 'worker-death';
  const peer = await NodePeer.connect({ url: server.url, token: server.tokens.sign(room, 'viewer') });
  try {
    const closed = new Promise<string>((resolve) => {
      peer.onNotification((n) => {
        if (n.method === 'roomClosed') resolve(n.data.code);
      });
    });
    const r = server.rooms.get(room);
    assert.ok(r, 'room exists');
    const [worker] = server.workerPool.workers;
    assert.ok(worker);
    process.kill(worker.pid, 'SIGKILL');
    assert.equal(await closed, ErrorCodes.WORKER_DIED);
    assert.ok(r.closed);
    await waitFor(() => server.workerPool.workers.length === 1 && server.workerPool.workers[0] !== worker, 15_000, 'replacement worker');
    // The replacement carries new rooms end to end.
    const actor = await FootageActor.start({ url: server.url, token: server.tokens.sign('after-worker', 'actor'), clip, durationMs: 20_000 });
    const viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign('after-worker', 'viewer') });
    try {
      await viewer.firstFrame(15_000);
    } finally {
      viewer.close();
      actor.stop();
    }
  } finally {
    peer.close();
  }
});

test('a reenactor stopped (SIGSTOP) for 5 s: its session pauses and is back within 3 s of SIGCONT; a session on another reenactor goes on throughout', { timeout: 120_000 }, async () => {
  // One session per reenactor process, so the two rooms land on different children.
  const own = await startServer({ measurement: true, sessionsPerReenactor: 1 });
  const peers: { close(): void }[] = [];
  try {
    const start = async (room: string): Promise<StampViewer> => {
      const a = await FootageActor.start({ url: own.url, token: own.tokens.sign(room, 'actor'), clip, durationMs: 90_000 });
      peers.push({ close: () => a.stop() });
      const v = await StampViewer.start({ url: own.url, token: own.tokens.sign(room, 'viewer') });
      peers.push(v);
      await v.firstFrame(30_000);
      return v;
    };
    const stopped = await start('stopped');
    const other = await start('other');
    await waitFor(() => own.supervisor.sessionState('stopped') === 'running' && own.supervisor.sessionState('other') === 'running', 20_000, 'both sessions running');
    const pid = own.supervisor.pidOf('stopped');
    assert.ok(pid && pid !== own.supervisor.pidOf('other'), 'the two sessions share a reenactor: this would not test isolation');
    await new Promise((r) => setTimeout(r, 2000));
    const t0 = performance.now();
    const otherBefore = framesAfter(other, t0 - 2000) / 2;
    process.kill(pid, 'SIGSTOP');
    const stoppedAt = performance.now();
    await new Promise((r) => setTimeout(r, 5000));
    process.kill(pid, 'SIGCONT');
    const contAt = performance.now();
    const otherDuring = other.received.filter((r) => r.at > stoppedAt && r.at <= contAt).length / 5;
    await waitFor(() => framesAfter(stopped, contAt) > 0, 10_000, 'frames from the resumed reenactor');
    const backMs = stopped.received.find((r) => r.at > contAt)!.at - contAt;
    // Steady again: frames keep coming after the first one. The window is wide so that a slow machine
    // reports how long it took (steadyMs) instead of failing on the wait; a stuck session still fails.
    const perSecond = (): number[] => Array.from({ length: 20 }, (_, i) => stopped.received.filter((r) => r.at > contAt + i * 1000 && r.at <= contAt + (i + 1) * 1000).length);
    await waitFor(() => framesAfter(stopped, contAt + backMs) >= 30, 20_000, 'the resumed session to keep going').catch((err: Error) => {
      throw new Error(`${err.message}; frames per second after SIGCONT: ${perSecond().join(' ')}; state ${own.supervisor.sessionState('stopped')}`);
    });
    const steadyMs = stopped.received.filter((r) => r.at > contAt + backMs)[29]!.at - contAt;
    const pausedFrames = stopped.received.filter((r) => r.at > stoppedAt + 500 && r.at <= contAt).length;
    console.log('sigstop', JSON.stringify({ backMs: Math.round(backMs), steadyMs: Math.round(steadyMs), perSecond: perSecond().slice(0, 5), pausedFrames, otherFpsBefore: otherBefore, otherFpsDuring: otherDuring, restarted: own.supervisor.pidOf('stopped') !== pid }));
    assert.ok(backMs <= 3000, `the stopped session came back ${Math.round(backMs)} ms after SIGCONT`);
    // Steady (30 frames) within 3 s is the goal and what this machine measures (about 1.5 s, with the
    // stalled receiver renewed: stall-watch.ts); the bound leaves room for a loaded CI machine.
    assert.ok(steadyMs <= 6000, `the stopped session was steady again ${Math.round(steadyMs)} ms after SIGCONT`);
    assert.ok(otherDuring >= otherBefore * 0.7, `the other session fell from ${otherBefore} to ${otherDuring} fps while its neighbour was stopped`);
    assert.equal(own.supervisor.pidOf('stopped'), pid, 'a 5 s stop (under the heartbeat timeout) restarted the reenactor');
  } finally {
    for (const p of peers) p.close();
    await own.close();
  }
});

