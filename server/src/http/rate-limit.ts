/**
 * Token buckets by key (a client address, a room): `ratePerS` tokens a second up to `burst`.
 * The map of buckets is bounded: past `maxKeys` the least recently used key is forgotten (it
 * starts again with a full bucket), so a flood of new keys costs memory that stays bounded.
 */
export interface RateLimit {
  ratePerS: number;
  burst: number;
}

export type Taken = { ok: true } | { ok: false; retryAfterS: number };

export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #limit: RateLimit;
  readonly #maxKeys: number;

  constructor(limit: RateLimit, maxKeys = 10_000) {
    if (!(limit.ratePerS > 0) || !(limit.burst >= 1)) throw new TypeError('a rate limit needs ratePerS > 0 and burst >= 1');
    this.#limit = limit;
    this.#maxKeys = maxKeys;
  }

  /** Takes one token for `key`; says when to try again when there is none. */
  take(key: string, now = Date.now()): Taken {
    const { ratePerS, burst } = this.#limit;
    const b = this.#buckets.get(key);
    let tokens = burst;
    if (b) {
      tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * ratePerS);
      this.#buckets.delete(key);
    } else if (this.#buckets.size >= this.#maxKeys) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    if (tokens < 1) {
      this.#buckets.set(key, { tokens, at: now });
      return { ok: false, retryAfterS: Math.max(1, Math.ceil((1 - tokens) / ratePerS)) };
    }
    this.#buckets.set(key, { tokens: tokens - 1, at: now });
    return { ok: true };
  }

  get size(): number {
    return this.#buckets.size;
  }
}

/** The server's limits (per client address unless said otherwise). */
export const LIMITS = Object.freeze({
  /** GET /api/token. */
  token: { ratePerS: 1, burst: 20 },
  /** POST /api/targets, per address and per room. */
  upload: { ratePerS: 0.2, burst: 6 },
  /** Signalling joins (the server's own reenactors are not counted). */
  join: { ratePerS: 5, burst: 60 },
  /** Requests on one signalling connection. */
  socketRequests: { ratePerS: 100, burst: 200 },
} satisfies Record<string, RateLimit>);

/** Concurrent signalling connections, per client address and in all. */
export const CONNECTION_CAPS = Object.freeze({ perAddress: 200, total: 1000 });

/** The limiters one server shares between its HTTP routes and its signalling. */
export interface Limiters {
  token: RateLimiter;
  upload: RateLimiter;
  uploadRoom: RateLimiter;
  join: RateLimiter;
}

export function createLimiters(): Limiters {
  return {
    token: new RateLimiter(LIMITS.token),
    upload: new RateLimiter(LIMITS.upload),
    uploadRoom: new RateLimiter(LIMITS.upload),
    join: new RateLimiter(LIMITS.join),
  };
}

/** The peer address of a request or socket handshake, as one key (IPv4-mapped IPv6 folded). */
export function addressKey(addr: string | undefined): string {
  return (addr ?? 'unknown').replace(/^::ffff:/, '');
}
