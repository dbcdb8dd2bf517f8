/**
 * Keeps a page in its room: fetches a token, connects, runs the page's setup
 * (publish the camera, watch the output), and when the connection is lost
 * (network drop, media failure, room closed) starts over with a fresh
 * connection after a backoff. A busy server (E_BUSY) is retried at a steady
 * pace; refusals that retrying cannot fix (E_UNAUTHORIZED, E_FORBIDDEN,
 * E_BAD_REQUEST) stop the loop.
 *
 * close() is idempotent and closes the current RoomClient.
 */
import { ErrorCodes } from '../../shared/errors.ts';
import { Emitter } from './emitter.ts';
import { toCoded } from './messages.ts';
import { RoomClient, fetchToken } from './room-client.ts';

export type LiveState =
  | { state: 'connecting'; attempt: number }
  | { state: 'live' }
  | { state: 'busy'; retryInMs: number; message: string }
  | { state: 'reconnecting'; retryInMs: number; attempt: number; code: string; message: string }
  | { state: 'failed'; code: string; message: string }
  | { state: 'closed' };

export interface LiveRoomOptions {
  room: string;
  role: 'actor' | 'viewer';
  /** Runs on every fresh connection (publish, consume). Throwing counts as a failed attempt. */
  setup: (client: RoomClient) => Promise<void>;
  /** First retry delay after a drop, doubling up to maxRetryMs. */
  firstRetryMs?: number;
  maxRetryMs?: number;
  busyRetryMs?: number;
}

type LiveRoomEvents = {
  state: [LiveState];
  /** A new connection is live (after setup). */
  client: [RoomClient];
};

const PERMANENT = new Set<string>([ErrorCodes.UNAUTHORIZED, ErrorCodes.FORBIDDEN, ErrorCodes.BAD_REQUEST]);

export class LiveRoom {
  readonly #opts: Required<LiveRoomOptions>;
  readonly #events = new Emitter<LiveRoomEvents>();
  #client: RoomClient | undefined;
  #state: LiveState = { state: 'connecting', attempt: 0 };
  #closed = false;
  #wake: (() => void) | undefined;

  readonly #onOnline = (): void => this.retryNow();

  private constructor(opts: LiveRoomOptions) {
    this.#opts = { firstRetryMs: 500, maxRetryMs: 8000, busyRetryMs: 4000, ...opts };
    // Back on the network: skip the rest of the backoff.
    window.addEventListener('online', this.#onOnline);
  }

  /** Starts connecting at once; listen to 'state' and 'client'. */
  static start(opts: LiveRoomOptions): LiveRoom {
    const live = new LiveRoom(opts);
    queueMicrotask(() => void live.#run());
    return live;
  }

  get client(): RoomClient | undefined {
    return this.#client;
  }

  get state(): LiveState {
    return this.#state;
  }

  on<K extends keyof LiveRoomEvents>(event: K, listener: (...args: LiveRoomEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  /** Skips the remaining backoff wait (a "retry now" button). */
  retryNow(): void {
    this.#wake?.();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    window.removeEventListener('online', this.#onOnline);
    this.#client?.close();
    this.#client = undefined;
    this.#wake?.();
    this.#set({ state: 'closed' });
  }

  #set(s: LiveState): void {
    this.#state = s;
    this.#events.safeEmit('state', s);
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      let client: RoomClient | undefined;
      let delay: number;
      try {
        this.#set({ state: 'connecting', attempt: failures + 1 });
        client = await RoomClient.connect(await fetchToken(this.#opts.room, this.#opts.role));
        if (this.#closed) {
          client.close();
          return;
        }
        this.#client = client;
        await this.#opts.setup(client);
        failures = 0;
        this.#set({ state: 'live' });
        this.#events.safeEmit('client', client);
        const reason = await client.lost;
        client.close();
        if (this.#closed) return;
        failures = 1;
        delay = this.#opts.firstRetryMs;
        this.#set({ state: 'reconnecting', retryInMs: delay, attempt: failures, code: reason.code, message: reason.message });
      } catch (err) {
        client?.close();
        if (this.#closed) return;
        const { code, message } = toCoded(err);
        if (PERMANENT.has(code)) {
          this.#set({ state: 'failed', code, message });
          return;
        }
        if (code === ErrorCodes.BUSY || code === ErrorCodes.DRAINING || code === ErrorCodes.RATE_LIMITED) {
          delay = this.#opts.busyRetryMs;
          this.#set({ state: 'busy', retryInMs: delay, message });
        } else {
          failures++;
          delay = Math.min(this.#opts.maxRetryMs, this.#opts.firstRetryMs * 2 ** (failures - 1));
          this.#set({ state: 'reconnecting', retryInMs: delay, attempt: failures, code, message });
        }
      } finally {
        if (this.#client === client && client?.closed) this.#client = undefined;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }
}
