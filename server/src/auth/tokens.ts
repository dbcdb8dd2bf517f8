/**
 * Room tokens: base64url(JSON claims) + "." + base64url(HMAC-SHA256). The
 * server signs them; a token names one room and one role, and expires.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { Roles, type Role } from '../../../shared/protocol.ts';
import { CodedError, ErrorCodes } from '../../../shared/errors.ts';

const claimsSchema = z.object({
  room: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/),
  role: z.enum(Roles),
  /** Expiry, ms since epoch. */
  exp: z.number().int().positive(),
});

export type TokenClaims = z.infer<typeof claimsSchema>;

export const ROOM_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export class TokenSigner {
  readonly #secret: string;
  readonly #ttlMs: number;

  constructor(secret: string, ttlMs: number) {
    if (secret.length < 16) throw new TypeError('token secret must be at least 16 characters');
    this.#secret = secret;
    this.#ttlMs = ttlMs;
  }

  sign(room: string, role: Role, ttlMs: number = this.#ttlMs, now: number = Date.now()): string {
    const claims = claimsSchema.parse({ room, role, exp: now + ttlMs });
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
    return claims;
  }

  #mac(body: string): string {
    return createHmac('sha256', this.#secret).update(body).digest('base64url');
  }
}
