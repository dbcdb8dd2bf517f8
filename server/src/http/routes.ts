/**
 * Plain HTTP routes: the client pages and bundles, token minting for the
 * embedded single-box default, /healthz and /metrics.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Roles, type Role } from '../../../shared/protocol.ts';
import { ErrorCodes } from '../../../shared/errors.ts';
import { ROOM_ID_PATTERN } from '../auth/tokens.ts';

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
};

export interface RouteDeps {
  autoTokens: boolean;
  signToken: (room: string, role: Role) => string;
  health: () => { status: number; body: Record<string, unknown> };
  metrics: () => Promise<{ contentType: string; body: string }>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

async function sendFile(res: ServerResponse, relPath: string): Promise<void> {
  const full = normalize(join(clientRoot, relPath));
  if (!full.startsWith(clientRoot.endsWith(sep) ? clientRoot : clientRoot + sep)) {
    json(res, 404, { error: { code: ErrorCodes.NOT_FOUND, message: 'not found' } });
    return;
  }
  try {
    const body = await readFile(full);
    res.writeHead(200, { 'content-type': contentTypes[extname(full)] ?? 'application/octet-stream', 'cache-control': 'no-cache' });
    res.end(body);
  } catch {
    json(res, 404, { error: { code: ErrorCodes.NOT_FOUND, message: 'not found' } });
  }
}

export function createRequestHandler(deps: RouteDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const route = async (): Promise<void> => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        json(res, 405, { error: { code: ErrorCodes.BAD_REQUEST, message: 'method not allowed' } });
        return;
      }
      if (path === '/healthz') {
        const h = deps.health();
        json(res, h.status, h.body);
      } else if (path === '/metrics') {
        const m = await deps.metrics();
        res.writeHead(200, { 'content-type': m.contentType });
        res.end(m.body);
      } else if (path === '/api/token') {
        const room = url.searchParams.get('room') ?? '';
        const role = url.searchParams.get('role') ?? '';
        if (!deps.autoTokens) json(res, 403, { error: { code: ErrorCodes.FORBIDDEN, message: 'token minting is disabled on this server' } });
        else if (!ROOM_ID_PATTERN.test(room)) json(res, 400, { error: { code: ErrorCodes.BAD_REQUEST, message: 'room must match [A-Za-z0-9_-]{1,64}' } });
        else if (role !== 'actor' && role !== 'viewer') json(res, 400, { error: { code: ErrorCodes.BAD_REQUEST, message: `role must be actor or viewer` } });
        else json(res, 200, { token: deps.signToken(room, role as (typeof Roles)[number]), room, role });
      } else if (path === '/' || path === '/index.html') {
        await sendFile(res, 'actor.html');
      } else if (path.startsWith('/view/')) {
        await sendFile(res, 'viewer.html');
      } else if (path.startsWith('/dist/') || path.endsWith('.css')) {
        await sendFile(res, path.slice(1));
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
