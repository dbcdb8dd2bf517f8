/**
 * Drain on SIGTERM, against the real server process (`server/src/main.ts`, as `npm start` runs
 * it): new joins, tokens and uploads are refused with 503 + Retry-After (E_DRAINING over
 * signalling), connected rooms are told, a session may finish within the grace period, and the
 * process exits 0 as soon as the actors have left, or when the grace period ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCodes } from '../shared/errors.ts';
import type { Notification } from '../shared/protocol.ts';
import { SignalClient, type ClientSocket } from '../shared/signal-client.ts';
import { TokenSigner } from '../server/src/auth/tokens.ts';
import { connectSignal } from './helpers/signal.ts';
import { PROCESS_SECRET, startServerProcess, type ServerProcess } from './helpers/server-process.ts';

async function startProcess(graceMs: number): Promise<ServerProcess> {
  return startServerProcess({ REENACT_DRAIN_GRACE_MS: String(graceMs) });
}

const tokens = new TokenSigner(PROCESS_SECRET, 3_600_000);

test('SIGTERM drains: joins refused with 503/E_DRAINING, rooms told, the process exits 0 once the actor leaves', { timeout: 90_000 }, async () => {
  const srv = await startProcess(30_000);
  const sockets: ClientSocket[] = [];
  try {
    const actorSocket = await connectSignal(srv.url);
    sockets.push(actorSocket);
    const actor = new SignalClient(actorSocket);
    const told: Notification[] = [];
    actorSocket.on('notification', (n) => told.push(n));
    await actor.request('join', { token: tokens.sign('drain', 'actor') });
    assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);

    srv.child.kill('SIGTERM');
    const t0 = Date.now();
    while (!told.some((n) => n.method === 'serverDraining') && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    const note = told.find((n) => n.method === 'serverDraining');
    assert.ok(note && note.method === 'serverDraining', 'the connected room was not told');
    assert.equal(note.data.graceMs, 30_000);

    const health = await fetch(`${srv.url}/healthz`);
    assert.equal(health.status, 503);
    assert.equal(((await health.json()) as { status: string }).status, 'draining');
    assert.ok(Number(health.headers.get('retry-after')) > 0);
    const token = await fetch(`${srv.url}/api/token?room=drain&role=viewer`);
    assert.equal(token.status, 503);
    assert.ok(Number(token.headers.get('retry-after')) > 0);
    assert.equal(((await token.json()) as { error: { code: string } }).error.code, ErrorCodes.DRAINING);
    const upload = await fetch(`${srv.url}/api/targets`, { method: 'POST', headers: { 'content-type': 'image/jpeg', authorization: `Bearer ${tokens.sign('drain', 'actor')}` }, body: new Uint8Array(16) });
    assert.equal(upload.status, 503);
    // A new peer is refused, in this room and in any other.
    const late = await connectSignal(srv.url);
    sockets.push(late);
    await assert.rejects(new SignalClient(late).request('join', { token: tokens.sign('other', 'viewer') }), (e: unknown) => (e as { code?: string }).code === ErrorCodes.DRAINING);
    // The session already there goes on.
    assert.equal(srv.child.exitCode, null, 'exited while an actor was still in a room');
    assert.deepEqual(await actor.request('setOptions', {}), (await actor.request('setOptions', {})), 'the live room stopped answering');

    const left = Date.now();
    actorSocket.close();
    const exit = await srv.exit;
    assert.equal(exit.code, 0, `exit code ${exit.code} signal ${exit.signal}`);
    assert.ok(exit.atMs - left < 5000, `exited ${exit.atMs - left} ms after the actor left (the grace period is 30 s)`);
  } finally {
    for (const s of sockets) s.close();
    srv.child.kill('SIGKILL');
  }
});

test('SIGTERM with an actor that stays: the room is closed when the grace period ends and the process exits 0', { timeout: 90_000 }, async () => {
  const srv = await startProcess(1500);
  const socket = await connectSignal(srv.url);
  try {
    const closed: Notification[] = [];
    socket.on('notification', (n) => n.method === 'roomClosed' && closed.push(n));
    await new SignalClient(socket).request('join', { token: tokens.sign('stay', 'actor') });
    const t0 = Date.now();
    srv.child.kill('SIGTERM');
    const exit = await srv.exit;
    assert.equal(exit.code, 0);
    assert.ok(exit.atMs - t0 >= 1400, `exited after ${exit.atMs - t0} ms, before the grace period`);
    assert.ok(exit.atMs - t0 < 15_000, `took ${exit.atMs - t0} ms to exit after a 1.5 s grace period`);
    assert.ok(closed.length > 0 || socket.disconnected, 'the actor was neither told the room closed nor disconnected');
  } finally {
    socket.close();
    srv.child.kill('SIGKILL');
  }
});
