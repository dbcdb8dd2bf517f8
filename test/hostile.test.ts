/**
 * Hostile input against a real server (real mediasoup, real reenactor children, ffprobe and the
 * enrollment worker), while a live session plays in another room:
 * - a signalling fuzzer: 10k malformed or hostile requests (wrong shapes and types, unknown and
 *   reserved method names, prototype-pollution keys, 1 MB payloads, a flood of 2000 at once) and
 *   raw socket.io packets (reserved event names, broken framing, dangling binary attachments);
 * - an upload fuzzer: mutated JPEG, PNG and WebP files and decompression bombs (headers claiming
 *   50000×50000, a WebP canvas of 16383², ten seconds of 8K video);
 * - the rate limits and connection caps.
 * Each input gets a coded answer; nothing crashes, nothing is unhandled, the live session keeps
 * its frame rate, Object.prototype stays clean and peak RSS stays within 1.5× idle.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes } from '../shared/errors.ts';
import type { Response } from '../shared/protocol.ts';
import type { ClientSocket } from '../shared/signal-client.ts';
import { FootageActor, StampViewer, decodeClip } from '../loadtest/peers.ts';
import { LIMITS, CONNECTION_CAPS } from '../server/src/http/rate-limit.ts';
import { fixture, settleWrtc, startServer } from './helpers/server.ts';
import { connectSignal, sendRaw } from './helpers/signal.ts';
import { PROCESS_SECRET, startServerProcess, type ServerProcess } from './helpers/server-process.ts';
import { jpegBomb, mutate, pngBomb, prng } from './helpers/fuzz.ts';

let server: ServerProcess;
const ADMIN_SECRET = 'hostile-test-admin-secret-0123456789';
let actor: FootageActor;
let viewer: StampViewer;
const unhandled: string[] = [];
const onUnhandled = (e: unknown): void => void unhandled.push(String(e));

before(async () => {
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtExceptionMonitor', onUnhandled);
  // The server in a process of its own (as deployed): its memory is measured alone, and the
  // live session's peers here do not share its event loop.
  server = await startServerProcess({ REENACT_MEASUREMENT: '1', REENACT_RATE_LIMITS: '0', REENACT_LOG_LEVEL: 'debug', REENACT_ADMIN_SECRET: ADMIN_SECRET });
  const clip = await decodeClip(fixture('driving/d9.mp4'), 320, 240, 15, 60);
  actor = await FootageActor.start({ url: server.url, token: server.tokens.sign('live', 'actor'), clip, durationMs: 600_000 });
  viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign('live', 'viewer'), label: 'camera' });
  await viewer.firstFrame(30_000);
});

after(async () => {
  viewer?.close();
  actor?.stop();
  await server?.stop();
  await settleWrtc();
  process.off('unhandledRejection', onUnhandled);
  process.off('uncaughtExceptionMonitor', onUnhandled);
});

/** Samples the server process's RSS every 50 ms; stop() gives the peak. */
function rssSampler(): { stop(): Promise<number> } {
  let peak = 0;
  const sample = (): void => void server.rss().then((v) => (peak = Math.max(peak, v)), () => undefined);
  sample();
  const t = setInterval(sample, 50);
  return { stop: async () => (clearInterval(t), await new Promise((r) => setTimeout(r, 60)), peak) };
}

/** Frames per second the live session's viewer got over `ms`. */
async function liveFps(ms: number): Promise<number> {
  const n = viewer.received.length;
  await new Promise((r) => setTimeout(r, ms));
  return ((viewer.received.length - n) * 1000) / ms;
}

const KNOWN = new Set<string>(Object.values(ErrorCodes));

interface FuzzSummary {
  sent: number; answered: number; timeouts: number; codes: Record<string, number>; fuzzMs: number; big: number; bigClosed: number;
  /** The live session's frame rate while the fuzzer was sending. */
  liveFps: number;
}

/** Runs the signalling fuzzer in its own process; the live session's frame rate is taken over its sending. */
async function fuzzSignalling(seed: number): Promise<FuzzSummary> {
  const tokens = Array.from({ length: 24 }, (_, k) => (k % 2 === 0 ? server.tokens.sign(`fuzz-${seed}-${k}`, k % 4 === 0 ? 'actor' : 'viewer') : ''));
  const fuzzer = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/fuzz-signalling.ts', server.url, String(seed), JSON.stringify(tokens)], {
    cwd: new URL('..', import.meta.url).pathname, env: { ...process.env, NODE_TEST_CONTEXT: undefined }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let startAt = 0, startFrames = 0;
  fuzzer.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (!startAt && out.includes('START')) {
      startAt = performance.now();
      startFrames = viewer.received.length;
    }
  });
  const code = await new Promise<number | null>((resolve) => fuzzer.once('exit', resolve));
  assert.equal(code, 0, `the fuzzer failed: ${out}`);
  const summary = JSON.parse(out.trim().split('\n').pop() ?? '{}') as Omit<FuzzSummary, 'liveFps'>;
  // Frames that arrived between the fuzzer's first request and its last answer.
  const endAt = startAt + summary.fuzzMs;
  const during = viewer.received.slice(startFrames).filter((f) => f.at <= endAt).length;
  return { ...summary, liveFps: (during * 1000) / Math.max(1, summary.fuzzMs) };
}

test('signalling fuzzer: 2 × 10k hostile requests and raw packets get coded answers; the live session keeps its frame rate; memory plateaus', { timeout: 180_000 }, async () => {
  const fpsBefore = await liveFps(2000);
  const idle = await server.rss();
  const rounds: (FuzzSummary & { peakRssMb: number })[] = [];
  for (const seed of [1507, 1508]) {
    const sampler = rssSampler();
    const summary = await fuzzSignalling(seed);
    rounds.push({ ...summary, peakRssMb: (await sampler.stop()) / 2 ** 20 });
  }
  const fpsAfter = await liveFps(2000);
  const health = await fetch(`${server.url}/healthz`);
  // Prototype pollution would show as a server that no longer answers sanely; it must also not
  // have reached this process's objects through any shared code.
  const polluted = ({} as Record<string, unknown>)['polluted'];
  console.log('signalling fuzz', JSON.stringify({ rounds, fpsBefore, fpsAfter, idleRssMb: idle / 2 ** 20, rssRatio: rounds.map((r) => (r.peakRssMb * 2 ** 20) / idle) }));
  for (const summary of rounds) {
    assert.ok(summary.sent >= 10_000, `only ${summary.sent} requests sent`);
    assert.equal(summary.timeouts, 0, 'requests went unanswered');
    assert.equal(summary.answered + summary.big, summary.sent, 'answers and requests do not add up');
    assert.equal(summary.bigClosed, summary.big, '1 MB requests did not close their connections');
    for (const code of Object.keys(summary.codes)) assert.ok(KNOWN.has(code), `an answer carried ${code}, not a catalogue code`);
    assert.equal(summary.codes[ErrorCodes.INTERNAL] ?? 0, 0, 'a hostile request reached an internal error');
    assert.ok(summary.liveFps >= fpsBefore * 0.6, `the live session fell from ${fpsBefore.toFixed(1)} to ${summary.liveFps.toFixed(1)} fps under the fuzzer`);
  }
  assert.equal(polluted, undefined, 'Object.prototype was polluted');
  assert.equal(health.status, 200);
  assert.ok(fpsAfter >= fpsBefore * 0.6, `the live session did not recover: ${fpsAfter.toFixed(1)} fps`);
  // The first round grows V8's young generation to its full size (about 50 MB, the whole of the
  // growth measured); the second must not grow further: nothing is kept.
  const [first, second] = rounds as [typeof rounds[0], typeof rounds[0]];
  assert.ok(first.peakRssMb * 2 ** 20 <= idle * 1.5, `peak RSS ${first.peakRssMb.toFixed(0)} MB over 1.5× idle ${(idle / 2 ** 20).toFixed(0)} MB`);
  assert.ok(second.peakRssMb <= first.peakRssMb * 1.1, `RSS kept growing: ${first.peakRssMb.toFixed(0)} → ${second.peakRssMb.toFixed(0)} MB`);
  assert.deepEqual(unhandled, []);
});

test('upload fuzzer: mutated JPEG, PNG and WebP files and decompression bombs are refused with coded errors, in bounded time and memory', { timeout: 900_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'reenact-fuzz-'));
  const jpg = await readFile(fixture('targets/s42.jpg'));
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', fixture('targets/s42.jpg'), join(dir, 's42.png')]);
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', fixture('targets/s42.jpg'), '-c:v', 'libwebp', '-q:v', '70', join(dir, 's42.webp')]);
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=gray:s=7680x4320:r=1:d=10', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', join(dir, '8k.mp4')]);
  const seeds: [Buffer, string][] = [[jpg, 'image/jpeg'], [await readFile(join(dir, 's42.png')), 'image/png'], [await readFile(join(dir, 's42.webp')), 'image/webp']];
  const webpCanvas = Buffer.concat([Buffer.from('RIFF', 'latin1'), Buffer.from([30, 0, 0, 0]), Buffer.from('WEBPVP8X', 'latin1'), Buffer.from([10, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([0xfe, 0x3f, 0x00, 0xfe, 0x3f, 0x00]), Buffer.alloc(8)]);
  const bombs: [string, Buffer, string][] = [
    ['png 50000×50000', pngBomb(50_000, 50_000), 'image/png'],
    ['jpeg 50000×50000', jpegBomb(jpg, 50_000, 50_000), 'image/jpeg'],
    ['jpeg 65535×65535', jpegBomb(jpg, 65_535, 65_535), 'image/jpeg'],
    ['webp canvas 16383²', webpCanvas, 'image/webp'],
    ['10 s of 8K video', await readFile(join(dir, '8k.mp4')), 'video/mp4'],
    ['10 s of 8K video as jpeg', await readFile(join(dir, '8k.mp4')), 'image/jpeg'],
  ];
  const token = server.tokens.sign('fuzz-up', 'actor');
  const post = async (body: Uint8Array, type: string): Promise<{ status: number; code?: string; ms: number }> => {
    const t0 = performance.now();
    const res = await fetch(`${server.url}/api/targets`, { method: 'POST', headers: { 'content-type': type, authorization: `Bearer ${token}` }, body: body as BodyInit });
    const json = (await res.json()) as { error?: { code: string } };
    return { status: res.status, code: json.error?.code, ms: performance.now() - t0 };
  };
  // Warm: the enrollment worker starts with the first upload; idle is measured after it.
  assert.equal((await post(jpg, 'image/jpeg')).status, 201);
  const idle = await server.rss();
  const sampler = rssSampler();
  const results: { what: string; status: number; code?: string; ms: number }[] = [];
  for (const [what, body, type] of bombs) results.push({ what, ...(await post(body, type)) });
  const n = Number(process.env['REENACT_FUZZ_UPLOADS'] ?? 300);
  const r = prng(2024);
  for (let i = 0; i < n; i++) {
    const [src, type] = seeds[i % seeds.length]!;
    results.push({ what: `mutation ${i} of ${type}`, ...(await post(mutate(r, src), type)) });
  }
  const peak = await sampler.stop();
  const fps = await liveFps(2000);
  const statuses = new Map<string, number>();
  for (const x of results) statuses.set(`${x.status} ${x.code ?? ''}`.trim(), (statuses.get(`${x.status} ${x.code ?? ''}`.trim()) ?? 0) + 1);
  const ms = results.map((x) => x.ms).sort((a, b) => a - b);
  console.log('upload fuzz', JSON.stringify({ uploads: results.length, statuses: Object.fromEntries(statuses), p50Ms: ms[Math.floor(ms.length / 2)], p95Ms: ms[Math.floor(ms.length * 0.95)], maxMs: ms[ms.length - 1], idleRssMb: idle / 2 ** 20, peakRssMb: peak / 2 ** 20, rssRatio: peak / idle, liveFps: fps }));
  for (const x of results.slice(0, bombs.length)) {
    assert.ok(x.status === 413 || x.status === 422, `${x.what}: ${x.status} ${x.code}`);
    assert.ok(x.code === ErrorCodes.MEDIA_TOO_LARGE || x.code === ErrorCodes.MEDIA_INVALID, `${x.what}: ${x.code}`);
  }
  for (const x of results) {
    // A mutation that still decodes to a face is a fine upload; anything else is a coded refusal.
    assert.ok(x.status === 201 || x.status === 413 || x.status === 422, `${x.what}: HTTP ${x.status} ${x.code}`);
    if (x.status !== 201) assert.ok(x.code && KNOWN.has(x.code) && x.code !== ErrorCodes.INTERNAL, `${x.what}: ${x.code}`);
    assert.ok(x.ms < 30_000, `${x.what} took ${x.ms.toFixed(0)} ms`);
  }
  assert.ok(peak <= idle * 1.5, `peak RSS ${(peak / 2 ** 20).toFixed(0)} MB over 1.5× idle ${(idle / 2 ** 20).toFixed(0)} MB`);
  assert.ok(fps >= 5, `the live session fell to ${fps.toFixed(1)} fps`);
  assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  assert.equal(server.child.exitCode, null, 'the server exited');
  assert.deepEqual(unhandled, []);
});

test('rate limits and connection caps: tokens, uploads, joins, requests per connection and sockets per address', { timeout: 120_000 }, async () => {
  const limited = await startServer({ stage: 'passthrough', rateLimits: true, autoTokens: true, dataDir: await mkdtemp(join(tmpdir(), 'reenact-limits-')) });
  const sockets: ClientSocket[] = [];
  try {
    // Tokens: the burst, then 429 with Retry-After.
    const statuses: number[] = [];
    let retryAfter = '';
    for (let i = 0; i < LIMITS.token.burst + 5; i++) {
      const res = await fetch(`${limited.url}/api/token?room=lim&role=viewer`);
      statuses.push(res.status);
      if (res.status === 429) {
        retryAfter = res.headers.get('retry-after') ?? '';
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, ErrorCodes.RATE_LIMITED);
      } else await res.arrayBuffer();
    }
    assert.equal(statuses.filter((s) => s === 200).length, LIMITS.token.burst);
    assert.ok(Number(retryAfter) >= 1);

    // Uploads: per address (and per room); the refusals come before the body is read.
    const png = await readFile(fixture('no-face.png'));
    const up: number[] = [];
    for (let i = 0; i < LIMITS.upload.burst + 2; i++) {
      const res = await fetch(`${limited.url}/api/targets`, { method: 'POST', headers: { 'content-type': 'image/png', authorization: `Bearer ${limited.tokens.sign(`lim-${i}`, 'actor')}` }, body: png });
      up.push(res.status);
      await res.arrayBuffer();
    }
    assert.deepEqual(up.slice(LIMITS.upload.burst), [429, 429]);
    assert.ok(up.slice(0, LIMITS.upload.burst).every((s) => s === 422), up.join(','));

    // Requests on one connection: a flood of 500 at once is answered, the excess E_RATE_LIMITED.
    const s = await connectSignal(limited.url);
    sockets.push(s);
    const flood = await Promise.all(Array.from({ length: 500 }, () => sendRaw(s, { method: 'listTargets', data: {} })));
    assert.ok(flood.every((x) => x !== 'timeout'));
    const refused = flood.filter((x) => !x.ok && x.error.code === ErrorCodes.RATE_LIMITED).length;
    assert.ok(refused >= 500 - LIMITS.socketRequests.burst - 20 && refused < 500, `${refused} of 500 refused`);

    // Joins per address: the burst, then E_RATE_LIMITED (one join per connection). The connections
    // are opened first and the joins sent together, so the bucket's refill (5/s) during slow
    // connects cannot blur the burst.
    const joiners: Awaited<ReturnType<typeof connectSignal>>[] = [];
    for (let i = 0; i < LIMITS.join.burst + 5; i++) joiners.push(await connectSignal(limited.url));
    sockets.push(...joiners);
    const joins = (await Promise.all(joiners.map((c, i) => sendRaw(c, { method: 'join', data: { token: limited.tokens.sign(`j-${i}`, 'viewer') } })))).map((res) =>
      res === 'timeout' ? 'timeout' : res.ok ? 'ok' : res.error.code,
    );
    const joined = joins.filter((j) => j === 'ok').length;
    assert.ok(joined >= LIMITS.join.burst && joined <= LIMITS.join.burst + 2, joins.join(','));
    assert.equal(joins.filter((j) => j === ErrorCodes.RATE_LIMITED).length, joins.length - joined, joins.join(','));
    for (const c of sockets.splice(1)) c.close();
    await new Promise((res) => setTimeout(res, 300));

    // Sockets per address.
    for (let i = sockets.length; i < CONNECTION_CAPS.perAddress; i++) sockets.push(await connectSignal(limited.url));
    await assert.rejects(connectSignal(limited.url), /E_RATE_LIMITED/);
    sockets.pop()?.close();
    await new Promise((res) => setTimeout(res, 300));
    sockets.push(await connectSignal(limited.url));
  } finally {
    for (const s of sockets) s.close();
    await limited.close();
  }
});

test('secrets never reach the log: the token secret, the admin secret and the tokens used (debug level, after the fuzzers)', { timeout: 30_000 }, async () => {
  const token = server.tokens.sign('secret-room', 'actor');
  const s = await connectSignal(server.url);
  await new Promise<Response | 'timeout'>((resolve) => s.timeout(5000).emit('request', { method: 'join', data: { token } } as never, (e: Error | null, r: Response) => resolve(e ? 'timeout' : r)));
  s.close();
  await fetch(`${server.url}/api/targets`, { headers: { authorization: `Bearer ${token}` } });
  await fetch(`${server.url}/api/targets/x/thumb.jpg?token=${encodeURIComponent(token)}`);
  assert.equal((await fetch(`${server.url}/api/rooms/secret-room/revoke`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_SECRET}` } })).status, 200);
  assert.equal((await fetch(`${server.url}/api/rooms/secret-room/revoke`, { method: 'POST', headers: { authorization: 'Bearer not-the-admin-secret-at-all' } })).status, 401);
  await new Promise((r) => setTimeout(r, 300));
  const log = server.log();
  assert.ok(log.length > 10_000, 'the debug log is nearly empty: this check would prove nothing');
  assert.ok(log.includes('secret-room'), 'the actions above did not reach the log');
  for (const [what, secret] of [['token secret', PROCESS_SECRET], ['admin secret', ADMIN_SECRET], ['token', token], ['token signature', token.split('.')[1]!]] as const) {
    assert.ok(!log.includes(secret), `the ${what} is in the log`);
  }
});

