/**
 * Plain HTTP routes: the client pages and bundles, token minting for the
 * embedded single-box default, /healthz and /metrics, and the targets API
 * (the gallery, and each room's own uploads: listed, previewed, uploaded and
 * deleted only with a token for that room).
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Roles, type Role } from '../../../shared/protocol.ts';
import { ErrorCodes } from '../../../shared/errors.ts';
import { ROOM_ID_PATTERN, type TokenClaims } from '../auth/tokens.ts';
import { MAX_UPLOAD_BYTES, type TargetStore } from '../targets/store.ts';
import { CodedError } from '../../../shared/errors.ts';
import { commonHeaders, pageHeaders, type PageKind } from './headers.ts';
import { addressKey, type Limiters, type RateLimiter } from './rate-limit.ts';

const clientRoot = fileURLToPath(new URL('../../../client/', import.meta.url));

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
};

export interface RouteDeps {
  autoTokens: boolean;
  /** Served over TLS (adds Strict-Transport-Security). */
  tls?: boolean;
  signToken: (room: string, role: Role) => string;
  verifyToken: (token: string) => TokenClaims;
  targets: TargetStore;
  health: () => { status: number; body: Record<string, unknown> };
  /** Shutting down: joins, tokens and uploads get 503 with Retry-After. */
  draining?: () => boolean;
  /** Token and upload rates; absent: no limits. */
  limiters?: Limiters;
  /** The admin API: the operator's secret, and what revoking a room's tokens does. */
  admin?: { secret: string; revokeRoom: (room: string) => Promise<{ revokedUntil: number; disconnected: number }> };
  metrics: () => Promise<{ contentType: string; body: string }>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

/**
 * Serves a file from the client folder with validators: `no-cache` makes the
 * browser revalidate, and an unchanged file (ETag from size and mtime) is
 * answered 304 without a body, so the 11 MB face-tracking runtime is
 * fetched once, not on every page load.
 */
async function sendFile(req: IncomingMessage, res: ServerResponse, relPath: string, page?: { kind: PageKind; tls: boolean }): Promise<void> {
  const full = normalize(join(clientRoot, relPath));
  if (!full.startsWith(clientRoot.endsWith(sep) ? clientRoot : clientRoot + sep)) {
    json(res, 404, { error: { code: ErrorCodes.NOT_FOUND, message: 'not found' } });
    return;
  }
  try {
    const st = await stat(full);
    if (!st.isFile()) throw new Error('not a file');
    const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const headers = {
      'content-type': contentTypes[extname(full)] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
      etag,
      'last-modified': st.mtime.toUTCString(),
      ...(page ? pageHeaders(page.kind, page.tls) : {}),
    };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const body = req.method === 'HEAD' ? undefined : await readFile(full);
    res.writeHead(200, { ...headers, 'content-length': st.size });
    res.end(body);
  } catch {
    json(res, 404, { error: { code: ErrorCodes.NOT_FOUND, message: 'not found' } });
  }
}

export function createRequestHandler(deps: RouteDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const tls = deps.tls ?? false;
    for (const [k, v] of Object.entries(commonHeaders(tls))) res.setHeader(k, v);
    const route = async (): Promise<void> => {
      if (deps.draining?.() && (path === '/api/token' || (path.startsWith('/api/targets') && req.method !== 'GET' && req.method !== 'HEAD'))) {
        res.setHeader('retry-after', String(DRAIN_RETRY_S));
        req.resume();
        json(res, 503, { error: { code: ErrorCodes.DRAINING, message: 'the server is shutting down; try again shortly' } });
        return;
      }
      if (path === '/api/targets' && req.method === 'POST') {
        await upload(req, res, deps);
        return;
      }
      if (REVOKE_PATH.test(path) && req.method === 'POST') {
        await revokeRoom(req, path, res, deps);
        return;
      }
      if (TARGET_PATH.test(path) && req.method === 'DELETE') {
        await removeUpload(req, url, res, deps);
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        json(res, 405, { error: { code: ErrorCodes.BAD_REQUEST, message: 'method not allowed' } });
        return;
      }
      if (path === '/healthz') {
        const h = deps.health();
        if (deps.draining?.()) res.setHeader('retry-after', String(DRAIN_RETRY_S));
        json(res, h.status, h.body);
      } else if (path === '/metrics') {
        const m = await deps.metrics();
        res.writeHead(200, { 'content-type': m.contentType });
        res.end(m.body);
      } else if (path === '/api/token') {
        if (limited(deps.limiters?.token, addressKey(req.socket.remoteAddress), res)) return;
        const room = url.searchParams.get('room') ?? '';
        const role = url.searchParams.get('role') ?? '';
        if (!deps.autoTokens) json(res, 403, { error: { code: ErrorCodes.FORBIDDEN, message: 'token minting is disabled on this server' } });
        else if (!ROOM_ID_PATTERN.test(room)) json(res, 400, { error: { code: ErrorCodes.BAD_REQUEST, message: 'room must match [A-Za-z0-9_-]{1,64}' } });
        else if (role !== 'actor' && role !== 'viewer') json(res, 400, { error: { code: ErrorCodes.BAD_REQUEST, message: `role must be actor or viewer` } });
        else json(res, 200, { token: deps.signToken(room, role as (typeof Roles)[number]), room, role });
      } else if (path === '/api/targets') {
        // Without a token: the operator's gallery. With one: that room's uploads too.
        const claims = tokenOf(req, url, deps);
        if (claims === 'invalid') json(res, 401, { error: { code: ErrorCodes.UNAUTHORIZED, message: 'the token is invalid or expired' } });
        else json(res, 200, { targets: deps.targets.list(claims?.room), defaultId: deps.targets.defaultId });
      } else if (/^\/api\/targets\/[A-Za-z0-9]{1,32}\/thumb\.jpg$/.test(path)) {
        const id = path.split('/')[3] ?? '';
        const claims = tokenOf(req, url, deps);
        const room = claims && claims !== 'invalid' ? claims.room : undefined;
        try {
          const body = await deps.targets.thumbnail(id, room);
          // An upload's preview is one room's: never kept by shared caches.
          const shared = deps.targets.get(id, '')?.info.source === 'bundled';
          res.writeHead(200, { 'content-type': 'image/jpeg', 'cache-control': shared ? 'max-age=3600' : 'private, no-store' });
          res.end(body);
        } catch {
          // The same answer whether the target does not exist or is another room's.
          json(res, 404, { error: { code: ErrorCodes.NOT_FOUND, message: 'no such target' } });
        }
      } else if (path === '/' || path === '/index.html') {
        await sendFile(req, res, 'actor.html', { kind: 'actor', tls });
      } else if (path.startsWith('/view/')) {
        await sendFile(req, res, 'viewer.html', { kind: 'viewer', tls });
      } else if (path.startsWith('/obs/')) {
        await sendFile(req, res, 'obs.html', { kind: 'viewer', tls });
      } else if (path.startsWith('/dist/') || path.endsWith('.css')) {
        await sendFile(req, res, path.slice(1));
      } else {
        json(res, 404, { error: { code: ErrorCodes.NOT_FOUND, message: 'not found' } });
      }
    };
    route().catch(() => {
      if (!res.headersSent) json(res, 500, { error: { code: ErrorCodes.INTERNAL, message: 'internal error' } });
      else res.destroy();
    });
  };
}

/** Answers 429 (E_RATE_LIMITED, Retry-After) when `key` has no token left; true when it did. */
function limited(limiter: RateLimiter | undefined, key: string, res: ServerResponse): boolean {
  const taken = limiter?.take(key);
  if (!taken || taken.ok) return false;
  res.setHeader('retry-after', String(taken.retryAfterS));
  json(res, 429, { error: { code: ErrorCodes.RATE_LIMITED, message: `too many requests; try again in ${taken.retryAfterS} s` } });
  return true;
}

const REVOKE_PATH = /^\/api\/rooms\/[A-Za-z0-9_-]{1,64}\/revoke$/;

/** POST /api/rooms/:room/revoke, Bearer REENACT_ADMIN_SECRET: every token for the room issued until now stops working. */
async function revokeRoom(req: IncomingMessage, path: string, res: ServerResponse, deps: RouteDeps): Promise<void> {
  req.resume();
  if (!deps.admin) return json(res, 404, { error: { code: ErrorCodes.NOT_FOUND, message: 'the admin API is off (set REENACT_ADMIN_SECRET)' } });
  const given = Buffer.from(/^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '');
  const want = Buffer.from(deps.admin.secret);
  if (given.length !== want.length || !timingSafeEqual(given, want)) return json(res, 401, { error: { code: ErrorCodes.UNAUTHORIZED, message: 'the admin secret is required' } });
  const room = path.split('/')[3] ?? '';
  json(res, 200, { room, ...(await deps.admin.revokeRoom(room)) });
}

/** What a draining server tells clients to wait before trying again, seconds. */
const DRAIN_RETRY_S = 5;

const TARGET_PATH = /^\/api\/targets\/[A-Za-z0-9]{1,32}$/;

/** The claims of the request's token (Bearer, or `?token=` for images), null without one. */
function tokenOf(req: IncomingMessage, url: URL, deps: RouteDeps): TokenClaims | null | 'invalid' {
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const token = bearer ?? url.searchParams.get('token');
  if (!token) return null;
  try {
    return deps.verifyToken(token);
  } catch {
    return 'invalid';
  }
}

/** DELETE /api/targets/:id: an actor token of the room the upload belongs to. */
async function removeUpload(req: IncomingMessage, url: URL, res: ServerResponse, deps: RouteDeps): Promise<void> {
  const claims = tokenOf(req, url, deps);
  if (!claims || claims === 'invalid') return json(res, 401, { error: { code: ErrorCodes.UNAUTHORIZED, message: 'an actor token is required' } });
  if (claims.role !== 'actor') return json(res, 403, { error: { code: ErrorCodes.FORBIDDEN, message: 'only actors delete targets' } });
  try {
    await deps.targets.remove(url.pathname.split('/')[3] ?? '', claims.room);
    res.writeHead(204, { 'cache-control': 'no-store' });
    res.end();
  } catch (err) {
    if (err instanceof CodedError) json(res, 404, { error: { code: err.code, message: err.message } });
    else throw err;
  }
}

/**
 * POST /api/targets: the raw image as the body, an actor token as Bearer.
 * The body is read with a hard cap, so a huge upload is refused without
 * being buffered; every refusal is a coded JSON error.
 */
const DRAIN_CAP_BYTES = 128 * 1024 * 1024;

async function upload(req: IncomingMessage, res: ServerResponse, deps: RouteDeps): Promise<void> {
  const fail = (status: number, code: string, message: string): void => {
    // Tell the client to stop sending, then answer.
    res.setHeader('connection', 'close');
    json(res, status, { error: { code, message } });
  };
  const auth = req.headers.authorization ?? '';
  let claims: TokenClaims;
  try {
    claims = deps.verifyToken(auth.replace(/^Bearer\s+/i, ''));
  } catch {
    fail(401, ErrorCodes.UNAUTHORIZED, 'an actor token is required');
    req.resume();
    return;
  }
  if (claims.role !== 'actor') {
    fail(403, ErrorCodes.FORBIDDEN, 'only actors upload targets');
    req.resume();
    return;
  }
  if (limited(deps.limiters?.upload, addressKey(req.socket.remoteAddress), res) || limited(deps.limiters?.uploadRoom, claims.room, res)) {
    res.setHeader('connection', 'close');
    req.resume();
    return;
  }
  // Read up to the limit; past it, discard (browsers report a network error, not our answer,
  // when the connection is cut mid-upload) up to a drain cap, then cut.
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_UPLOAD_BYTES) chunks.push(chunk);
    else if (size > DRAIN_CAP_BYTES) break;
  }
  if (size > MAX_UPLOAD_BYTES) {
    fail(413, ErrorCodes.MEDIA_TOO_LARGE, `upload is over the limit of ${MAX_UPLOAD_BYTES} bytes`);
    if (size > DRAIN_CAP_BYTES) res.once('finish', () => req.destroy());
    return;
  }
  try {
    const target = await deps.targets.upload(Buffer.concat(chunks), String(req.headers['content-type'] ?? ''), claims.room);
    json(res, 201, { target });
  } catch (err) {
    if (err instanceof CodedError) fail(err.code === ErrorCodes.MEDIA_TOO_LARGE ? 413 : err.code === ErrorCodes.STORAGE_FULL ? 507 : 422, err.code, err.message);
    else throw err;
  }
}
