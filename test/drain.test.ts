/**
 * Drain on SIGTERM, against the real server process (`server/src/main.ts`, as `npm start` runs
 * it): new joins, tokens and uploads are refused with 503 + Retry-After (E_DRAINING over
 * signalling), connected rooms are told, a session may finish within the grace period, and the
 * process exits 0 as soon as the actors have left, or when the grace period ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { ErrorCodes } from '../shared/errors.ts';
import { SIGNALLING_PATH, type Notification } from '../shared/protocol.ts';
import { SignalClient, type ClientSocket } from '../shared/signal-client.ts';
import { TokenSigner } from '../server/src/auth/tokens.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const SECRET = 'drain-test-secret-0123456789abcdef';

interface Running {
  child: ChildProcess;
  url: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>;
}

async function startProcess(graceMs: number): Promise<Running> {
  const dataDir = await mkdtemp(join(tmpdir(), 'reenact-drain-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env, NODE_TEST_CONTEXT: undefined, REENACT_PORT: '0', REENACT_HOST: '127.0.0.1', REENACT_STAGE: 'passthrough', REENACT_WORKERS: '1', REENACT_LOG_LEVEL: 'info',
      REENACT_DATA_DIR: dataDir, REENACT_TOKEN_SECRET: SECRET, REENACT_DRAIN_GRACE_MS: String(graceMs), REENACT_RTC_MIN_PORT: '47100', REENACT_RTC_MAX_PORT: '47199',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, atMs: Date.now() })));
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`server did not start: ${buf.slice(-2000)}`)), 60_000);
    child.stderr.on('data', (d: Buffer) => {
      buf += d.toString();
      if (process.env['DRAIN_DEBUG']) process.stdout.write(d);
      const m = /"msg":"listening","url":"([^"]+)"/.exec(buf);
      if (m?.[1]) {
        clearTimeout(t);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening: ${buf.slice(-2000)}`)));
  });
  return { child, url, exit };
}

async function connect(url: string): Promise<ClientSocket> {
  const socket: ClientSocket = io(url, { path: SIGNALLING_PATH, transports: ['websocket'], reconnection: false, forceNew: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return socket;
}

const tokens = new TokenSigner(SECRET, 3_600_000);

test('SIGTERM drains: joins refused with 503/E_DRAINING, rooms told, the process exits 0 once the actor leaves', { timeout: 90_000 }, async () => {
  const srv = await startProcess(30_000);
  const sockets: ClientSocket[] = [];
  try {
    const actorSocket = await connect(srv.url);
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
    const late = await connect(srv.url);
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
  const socket = await connect(srv.url);
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
