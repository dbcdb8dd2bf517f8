/**
 * Malformed signalling and token checks against a real server: every bad
 * request gets a coded error, and the server keeps serving other sessions.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import type { ReenactServer } from '../server/src/server.ts';
import { SignalClient, joinRoom, type ClientSocket } from '../shared/signal-client.ts';
import { CodedError, ErrorCodes } from '../shared/errors.ts';
import { SIGNALLING_PATH, type Notification, type Response } from '../shared/protocol.ts';
import { TokenSigner } from '../server/src/auth/tokens.ts';
import { startServer, waitFor } from './helpers/server.ts';

let server: ReenactServer;
const sockets: ClientSocket[] = [];

const ADMIN = 'admin-secret-for-the-signalling-test';

before(async () => {
  server = await startServer({ adminSecret: ADMIN, dataDir: await mkdtemp(join(tmpdir(), 'reenact-signalling-')) });
});

after(async () => {
  for (const s of sockets) s.close();
  await server.close();
});

async function connect(): Promise<ClientSocket> {
  const socket: ClientSocket = io(server.url, { path: SIGNALLING_PATH, transports: ['websocket'], reconnection: false, forceNew: true });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return socket;
}

/** Sends anything as a request, bypassing the typed client. */
function raw(socket: ClientSocket, payload: unknown): Promise<Response> {
  return new Promise((resolve, reject) => {
    socket.timeout(5000).emit('request', payload as never, (err: Error | null, res: Response) => (err ? reject(err) : resolve(res)));
  });
}

function code(res: Response): string | undefined {
  return res.ok ? undefined : res.error.code;
}

test('malformed requests get coded errors and the socket keeps working', { timeout: 30_000 }, async () => {
  const socket = await connect();
  assert.equal(code(await raw(socket, null)), ErrorCodes.UNKNOWN_METHOD);
  assert.equal(code(await raw(socket, 'join')), ErrorCodes.UNKNOWN_METHOD);
  assert.equal(code(await raw(socket, { method: 'selfDestruct', data: {} })), ErrorCodes.UNKNOWN_METHOD);
  assert.equal(code(await raw(socket, { method: 'join' })), ErrorCodes.BAD_REQUEST, 'missing data');
  assert.equal(code(await raw(socket, { method: 'join', data: { token: 42 } })), ErrorCodes.BAD_REQUEST, 'wrong type');
  assert.equal(code(await raw(socket, { method: 'join', data: { token: 'x'.repeat(10_000) } })), ErrorCodes.BAD_REQUEST, 'huge string');
  assert.equal(code(await raw(socket, { method: 'join', data: { token: 'a'.repeat(100 * 1024) } })), ErrorCodes.BAD_REQUEST, 'over the request limit');
  assert.equal(code(await raw(socket, { method: 'createWebRtcTransport', data: { direction: 'send' } })), ErrorCodes.INVALID_STATE, 'before join');
  // An event outside the protocol, with an ack, is answered too.
  const untyped = socket as unknown as { emit: (event: string, ...args: unknown[]) => void };
  const other = await new Promise<Response>((resolve) => untyped.emit('bogus', {}, (r: Response) => resolve(r)));
  assert.equal(code(other), ErrorCodes.UNKNOWN_METHOD);
  assert.ok(socket.connected, 'socket was dropped');
  // A 1 MB message is past the transport's limit: that connection is closed, unbuffered.
  const big = await connect();
  const dropped = new Promise<string>((resolve) => big.once('disconnect', (reason) => resolve(reason)));
  void raw(big, { method: 'join', data: { token: 'a'.repeat(1024 * 1024) } }).catch(() => undefined);
  assert.match(await dropped, /transport/);
  // The same socket can still join properly.
  const ok = await raw(socket, { method: 'join', data: { token: server.tokens.sign('sig', 'viewer') } });
  assert.ok(ok.ok, 'valid join failed after bad requests');
  assert.equal(code(await raw(socket, { method: 'connectWebRtcTransport', data: { transportId: 'nope', dtlsParameters: { fingerprints: [] } } })), ErrorCodes.BAD_REQUEST);
  assert.equal(code(await raw(socket, { method: 'connectWebRtcTransport', data: { transportId: 'nope', dtlsParameters: { fingerprints: [{ algorithm: 'sha-256', value: 'AA' }] } } })), ErrorCodes.NOT_FOUND);
  const health = await fetch(`${server.url}/healthz`);
  assert.equal(health.status, 200);
});

test('a viewer token cannot produce', { timeout: 30_000 }, async () => {
  const signal = new SignalClient(await connect());
  await signal.request('join', { token: server.tokens.sign('roles', 'viewer') });
  await assert.rejects(signal.request('createWebRtcTransport', { direction: 'send' }), (e: unknown) => e instanceof CodedError && e.code === ErrorCodes.FORBIDDEN);
  const recv = await signal.request('createWebRtcTransport', { direction: 'recv' });
  await assert.rejects(
    signal.request('produce', {
      transportId: recv.id,
      kind: 'video',
      label: 'camera',
      rtpParameters: { codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000 }] },
    }),
    (e: unknown) => e instanceof CodedError && e.code === ErrorCodes.FORBIDDEN,
  );
});

test('expired, forged and malformed tokens are refused', { timeout: 30_000 }, async () => {
  const signal = new SignalClient(await connect());
  const isUnauthorized = (e: unknown): boolean => e instanceof CodedError && e.code === ErrorCodes.UNAUTHORIZED;
  const expired = server.tokens.sign('t', 'actor', 1000, Date.now() - 10_000);
  await assert.rejects(signal.request('join', { token: expired }), isUnauthorized);
  const forged = new TokenSigner('another-secret-of-enough-length', 60_000).sign('t', 'actor');
  await assert.rejects(signal.request('join', { token: forged }), isUnauthorized);
  const good = server.tokens.sign('t', 'viewer');
  const [body, mac] = good.split('.');
  const tampered = `${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body!, 'base64url').toString()), role: 'actor' })).toString('base64url')}.${mac}`;
  await assert.rejects(signal.request('join', { token: tampered }), isUnauthorized);
  await assert.rejects(signal.request('join', { token: 'garbage' }), isUnauthorized);
});

test('revoking a room\'s tokens disconnects its peers and refuses their tokens; new tokens work; other rooms and restarts keep it', { timeout: 30_000 }, async () => {
  const revoke = (room: string, secret?: string): Promise<globalThis.Response> =>
    fetch(`${server.url}/api/rooms/${room}/revoke`, { method: 'POST', headers: secret ? { authorization: `Bearer ${secret}` } : {} });
  const oldActor = server.tokens.sign('rev', 'actor');
  const oldViewer = server.tokens.sign('rev', 'viewer');
  const otherRoom = server.tokens.sign('rev-other', 'viewer');
  const [a, v, o] = [await connect(), await connect(), await connect()];
  await new SignalClient(a).request('join', { token: oldActor });
  await new SignalClient(v).request('join', { token: oldViewer });
  await new SignalClient(o).request('join', { token: otherRoom });
  const told: string[] = [];
  v.on('notification', (n) => n.method === 'roomClosed' && told.push(n.data.code));

  assert.equal((await revoke('rev')).status, 401, 'revoked without the admin secret');
  assert.equal((await revoke('rev', 'wrong-secret-wrong-secret-wrong')).status, 401);
  const res = await revoke('rev', ADMIN);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { disconnected: number };
  assert.equal(body.disconnected, 2);
  await waitFor(() => a.disconnected && v.disconnected, 5000, 'the revoked peers to be disconnected');
  assert.deepEqual(told, [ErrorCodes.UNAUTHORIZED]);
  assert.ok(o.connected, 'a peer of another room was disconnected');
  assert.ok((await new SignalClient(o).request('listTargets', {})).targets.length > 0);

  const isRevoked = (e: unknown): boolean => e instanceof CodedError && e.code === ErrorCodes.UNAUTHORIZED && /revoked/.test(e.message);
  await assert.rejects(new SignalClient(await connect()).request('join', { token: oldViewer }), isRevoked);
  const upload = await fetch(`${server.url}/api/targets`, { method: 'POST', headers: { 'content-type': 'image/png', authorization: `Bearer ${oldActor}` }, body: new Uint8Array(8) });
  assert.equal(upload.status, 401, 'a revoked actor token still uploads');
  // A token minted after the revocation works, even in the same millisecond.
  await new SignalClient(await connect()).request('join', { token: server.tokens.sign('rev', 'viewer') });
  // The revocation outlasts a restart: a signer reading the same file refuses the old token.
  const restarted = new TokenSigner(server.config.tokenSecret, server.config.tokenTtlMs, join(server.config.dataDir, 'revocations.json'));
  assert.throws(() => restarted.verify(oldViewer), /revoked/);
  assert.equal(restarted.verify(otherRoom).room, 'rev-other');
});

test('the token endpoint mints only actor and viewer tokens for valid room names', { timeout: 10_000 }, async () => {
  assert.equal((await fetch(`${server.url}/api/token?room=ok&role=reenactor`)).status, 400);
  assert.equal((await fetch(`${server.url}/api/token?room=${'x'.repeat(65)}&role=actor`)).status, 400);
  assert.equal((await fetch(`${server.url}/api/token?room=../etc&role=actor`)).status, 400);
  const res = await fetch(`${server.url}/api/token?room=ok&role=viewer`);
  assert.equal(res.status, 200);
  const { token } = (await res.json()) as { token: string };
  assert.equal(server.tokens.verify(token).role, 'viewer');
});

test('/metrics exposes reenact_ metrics and /healthz reports load', { timeout: 10_000 }, async () => {
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /reenact_signalling_errors_total\{code="E_BAD_REQUEST"\} \d+/);
  assert.match(metrics, /reenact_process_cpu_seconds_total/);
  const health = (await (await fetch(`${server.url}/healthz`)).json()) as Record<string, unknown>;
  assert.equal(health['status'], 'ok');
  assert.equal(typeof health['load'], 'number');
});

test('static client files carry validators: an unchanged file is answered 304 without a body, a path outside the client folder 404', { timeout: 10_000 }, async () => {
  const first = await fetch(`${server.url}/dist/face/wasm/vision_wasm_internal.wasm`);
  assert.equal(first.status, 200);
  const etag = first.headers.get('etag');
  assert.ok(etag, 'no ETag');
  assert.equal(Number(first.headers.get('content-length')), (await first.arrayBuffer()).byteLength);
  const again = await fetch(`${server.url}/dist/face/wasm/vision_wasm_internal.wasm`, { headers: { 'if-none-match': etag } });
  assert.equal(again.status, 304);
  assert.equal((await again.arrayBuffer()).byteLength, 0);
  const changed = await fetch(`${server.url}/dist/face/wasm/vision_wasm_internal.wasm`, { method: 'HEAD', headers: { 'if-none-match': '"other"' } });
  assert.equal(changed.status, 200);
  assert.equal((await fetch(`${server.url}/dist/../../package.json`)).status, 404);
  assert.equal((await fetch(`${server.url}/dist/%2e%2e/%2e%2e/package.json`)).status, 404);
});

/** A camera producer from raw signalling (no media flows: the room and its notifications are what is tested). */
async function produceCamera(actor: SignalClient, transportId: string, ssrc: number): Promise<string> {
  const rtpParameters = { mid: '0', codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000 }], encodings: [{ ssrc }] };
  return (await actor.request('produce', { transportId, kind: 'video', label: 'camera', rtpParameters })).producerId;
}

/** Resolves when the raw socket has received a notification that `match` accepts. */
function arrived(socket: ClientSocket, match: (n: Notification) => boolean): Promise<void> {
  return new Promise((resolve) => {
    const on = (n: Notification): void => {
      if (!match(n)) return;
      socket.off('notification', on);
      resolve();
    };
    socket.on('notification', on);
  });
}

test('news from the room while a peer prepares after join is not lost: producers fold into its join snapshot, the rest reaches its listeners', { timeout: 30_000 }, async () => {
  // A page joins, then loads its mediasoup device before it listens; a producer published
  // in between used to be in neither the join answer nor any listener, so the viewer
  // waited for the synthesized video forever.
  const room = 'window';
  const actor = new SignalClient(await connect());
  await actor.request('join', { token: server.tokens.sign(room, 'actor') });
  const send = await actor.request('createWebRtcTransport', { direction: 'send' });
  const produce = (ssrc: number): Promise<string> => produceCamera(actor, send.id, ssrc);
  const first = await produce(1111);
  const other = new SignalClient(await connect());
  const otherJoin = await other.request('join', { token: server.tokens.sign(room, 'viewer') });

  const socket = await connect();
  const signal = new SignalClient(socket);
  let second = '';
  const { join } = await joinRoom(signal, server.tokens.sign(room, 'viewer'), async (j) => {
    assert.ok(j.producers.some((p) => p.producerId === first), 'the join answer lists the producer already there');
    // While this peer "loads its device": the producer closes, another appears, a peer leaves.
    const closed = arrived(socket, (n) => n.method === 'producerClosed' && n.data.producerId === first);
    await actor.request('closeProducer', { producerId: first });
    await closed;
    const added = arrived(socket, (n) => n.method === 'newProducer' && n.data.label === 'camera');
    second = await produce(2222);
    await added;
    const left = arrived(socket, (n) => n.method === 'peerLeft' && n.data.peerId === otherJoin.peerId);
    other.socket.close();
    await left;
  });
  const heard: Notification[] = [];
  signal.onNotification((n) => heard.push(n));

  const ids = join.producers.map((p) => p.producerId);
  assert.ok(!ids.includes(first), 'a producer closed during preparation is still in the snapshot');
  assert.equal(ids.filter((id) => id === second).length, 1, 'a producer published during preparation is missing from the snapshot (or listed twice)');
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(
    heard.some((n) => n.method === 'peerLeft' && n.data.peerId === otherJoin.peerId),
    'a notification from the preparation window never reached the listener registered after joining',
  );
  assert.ok(
    !heard.some((n) => (n.method === 'newProducer' && n.data.producerId === second) || (n.method === 'producerClosed' && n.data.producerId === first)),
    'producer news already folded into the snapshot was delivered again',
  );
  // Live again: news after the window is delivered as it comes.
  const live = new Promise<void>((resolve) => signal.onNotification((n) => n.method === 'producerClosed' && n.data.producerId === second && resolve()));
  await actor.request('closeProducer', { producerId: second });
  await live;
});

test('a join whose socket drops while the peer prepares fails, rather than handing back a dead client', { timeout: 30_000 }, async () => {
  const socket = await connect();
  const signal = new SignalClient(socket);
  await assert.rejects(
    joinRoom(signal, server.tokens.sign('window-drop', 'viewer'), async () => {
      const gone = new Promise((resolve) => socket.once('disconnect', resolve));
      socket.disconnect();
      await gone;
    }),
    (e: unknown) => e instanceof CodedError && e.code === ErrorCodes.INTERNAL && /lost while joining/.test(e.message),
  );
});

test('session options: the room starts from the server defaults, an actor changes them, bad values and viewers are refused', { timeout: 30_000 }, async () => {
  const room = 'options';
  const actor = new SignalClient(await connect());
  await actor.request('join', { token: server.tokens.sign(room, 'actor') });
  // An empty request reads the options (the actor page does this on every connection).
  const output = server.config.output;
  assert.deepEqual(await actor.request('setOptions', {}), { sideBySide: false, lipZero: server.config.lipZero, output });
  assert.deepEqual(await actor.request('setOptions', { lipZero: false }), { sideBySide: false, lipZero: false, output });
  assert.deepEqual(await actor.request('setOptions', { sideBySide: true }), { sideBySide: true, lipZero: false, output }, 'one option changed the other');
  assert.deepEqual(await actor.request('setOptions', { output: '720p' }), { sideBySide: true, lipZero: false, output: '720p' });
  const socket = await connect();
  assert.equal(code(await raw(socket, { method: 'join', data: { token: server.tokens.sign(room, 'viewer') } })), undefined);
  assert.equal(code(await raw(socket, { method: 'setOptions', data: { lipZero: false } })), ErrorCodes.FORBIDDEN, 'a viewer changed the options');
  assert.equal(code(await raw(actor.socket, { method: 'setOptions', data: { lipZero: 'no' } })), ErrorCodes.BAD_REQUEST);
  assert.equal(code(await raw(actor.socket, { method: 'setOptions', data: { mouth: true } })), ErrorCodes.BAD_REQUEST, 'an unknown option');
  assert.equal(code(await raw(actor.socket, { method: 'setOptions', data: { output: '4k' } })), ErrorCodes.BAD_REQUEST, 'an unknown output profile');
  assert.deepEqual(await actor.request('setOptions', {}), { sideBySide: true, lipZero: false, output: '720p' }, 'refused requests changed the options');
  // A new room starts from the defaults again.
  const other = new SignalClient(await connect());
  await other.request('join', { token: server.tokens.sign('options-2', 'actor') });
  assert.deepEqual(await other.request('setOptions', {}), { sideBySide: false, lipZero: server.config.lipZero, output });
});

test('a target and an option chosen while the session is starting reach it once it runs', { timeout: 30_000 }, async () => {
  const room = 'options-starting';
  const actor = new SignalClient(await connect());
  await actor.request('join', { token: server.tokens.sign(room, 'actor') });
  const send = await actor.request('createWebRtcTransport', { direction: 'send' });
  await produceCamera(actor, send.id, 3333);
  // The camera started a session; its reenactor has not joined yet.
  assert.equal(server.supervisor.sessionState(room), 'starting');
  const other = server.targets.list().find((t) => t.id !== server.targets.defaultId)!;
  await actor.request('setTarget', { targetId: other.id });
  await actor.request('setOptions', { lipZero: !server.config.lipZero, sideBySide: true });
  assert.equal(server.supervisor.sessionState(room), 'starting', 'the session was already running: this test did not test the starting window');
  await waitFor(() => {
    const s = server.supervisor.settings(room);
    return s?.targetId === other.id && s.options.lipZero === !server.config.lipZero && s.options.sideBySide;
  }, 20_000, 'the session to take the target and options chosen while it started').catch((err: unknown) => {
    throw new Error(`${String(err)}; session ${server.supervisor.sessionState(room)}: ${JSON.stringify(server.supervisor.settings(room))}`);
  });
});
