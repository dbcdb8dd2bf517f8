/**
 * Room tokens: base64url(JSON claims) + "." + base64url(HMAC-SHA256). The
 * server signs them; a token names one room and one role, says when it was
 * issued, and expires. A room's tokens can be revoked: every token for the
 * room issued until then is refused (the server's own reenactor tokens
 * excepted); revocations are kept in a file, so they outlast a restart.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { Roles, type Role } from '../../../shared/protocol.ts';
import { CodedError, ErrorCodes } from '../../../shared/errors.ts';

const claimsSchema = z.object({
  room: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/),
  role: z.enum(Roles),
  /** Expiry, ms since epoch. */
  exp: z.number().int().positive(),
  /** Issued, ms since epoch (tokens from before revocations existed have none: 0). */
  iat: z.number().int().nonnegative().optional(),
  /** Cluster mode, reenactor tokens: the placement's epoch; the edge refuses a token of an older placement. */
  epoch: z.number().int().nonnegative().optional(),
});

export type TokenClaims = z.infer<typeof claimsSchema>;

export const ROOM_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export class TokenSigner {
  readonly #secret: string;
  readonly #ttlMs: number;
  /** Room → the last issue time revoked. */
  readonly #revoked = new Map<string, number>();
  readonly #file: string | undefined;

  /** `revocationsFile`: where revocations are kept (read now, written on each revocation). */
  constructor(secret: string, ttlMs: number, revocationsFile?: string) {
    if (secret.length < 16) throw new TypeError('token secret must be at least 16 characters');
    this.#secret = secret;
    this.#ttlMs = ttlMs;
    this.#file = revocationsFile;
    if (revocationsFile) {
      try {
        const saved = JSON.parse(readFileSync(revocationsFile, 'utf8')) as Record<string, unknown>;
        for (const [room, at] of Object.entries(saved)) if (ROOM_ID_PATTERN.test(room) && typeof at === 'number' && Number.isFinite(at)) this.#revoked.set(room, at);
      } catch {
        // No revocations yet (or an unreadable file, which a new revocation replaces).
      }
    }
  }

  /**
   * Revokes every token for `room` issued until now (not the server's reenactor tokens).
   * Returns the time revoked up to. Tokens signed afterwards are valid.
   */
  revokeRoom(room: string, now: number = Date.now()): number {
    if (!ROOM_ID_PATTERN.test(room)) throw new CodedError(ErrorCodes.BAD_REQUEST, 'room must match [A-Za-z0-9_-]{1,64}');
    const at = Math.max(now, this.#revoked.get(room) ?? 0);
    this.#revoked.set(room, at);
    // Revocations older than the longest a token lives protect nothing any more.
    for (const [r, t] of this.#revoked) if (t < now - this.#ttlMs) this.#revoked.delete(r);
    if (this.#file) {
      const tmp = `${this.#file}.tmp`;
      writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.#revoked)), { mode: 0o600 });
      renameSync(tmp, this.#file);
    }
    return at;
  }

  /** When `room`'s tokens were last revoked (issue times up to it are refused), or null. */
  revokedUntil(room: string): number | null {
    return this.#revoked.get(room) ?? null;
  }

  sign(room: string, role: Role, ttlMs: number = this.#ttlMs, now: number = Date.now(), epoch?: number): string {
    // Issued after the room's last revocation even within the same millisecond.
    const iat = Math.max(now, (this.#revoked.get(room) ?? -1) + 1);
    const claims = claimsSchema.parse({ room, role, exp: now + ttlMs, iat, ...(epoch !== undefined ? { epoch } : {}) });
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${body}.${this.#mac(body)}`;
  }

  /** Returns the claims or throws CodedError(E_UNAUTHORIZED) for a forged, malformed or expired token. */
  verify(token: string, now: number = Date.now()): TokenClaims {
    const dot = token.indexOf('.');
    if (dot <= 0) throw new CodedError(ErrorCodes.UNAUTHORIZED, 'malformed token');
    const body = token.slice(0, dot);
    const mac = Buffer.from(token.slice(dot + 1), 'base64url');
    const expected = Buffer.from(this.#mac(body), 'base64url');
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) throw new CodedError(ErrorCodes.UNAUTHORIZED, 'bad token signature');
    let claims: TokenClaims;
    try {
      claims = claimsSchema.parse(JSON.parse(Buffer.from(body, 'base64url').toString()));
    } catch {
      throw new CodedError(ErrorCodes.UNAUTHORIZED, 'malformed token claims');
    }
    if (claims.exp <= now) throw new CodedError(ErrorCodes.UNAUTHORIZED, 'token expired');
    const revoked = this.#revoked.get(claims.room);
    if (revoked !== undefined && claims.role !== 'reenactor' && (claims.iat ?? 0) <= revoked) throw new CodedError(ErrorCodes.UNAUTHORIZED, 'token revoked');
    return claims;
  }

  #mac(body: string): string {
    return createHmac('sha256', this.#secret).update(body).digest('base64url');
  }
}
