/**
 * Typed request/notification helper over a socket.io client socket, shared by
 * the browser client and the Node peers (reenactor, tests, load tester,
 * virtual camera). Failed requests reject with CodedError.
 */
import type { Socket } from 'socket.io-client';
import { CodedError, ErrorCodes } from './errors.ts';
import type { ClientToServerEvents, Notification, RequestData, RequestMethod, ResponseData, ServerToClientEvents } from './protocol.ts';

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export class SignalClient {
  readonly socket: ClientSocket;
  readonly #timeoutMs: number;
  readonly #listeners = new Set<(n: Notification) => void>();
  /** Notifications held back (hold() until release()), in arrival order. */
  #held: Notification[] | undefined;

  constructor(socket: ClientSocket, timeoutMs = 10_000) {
    this.socket = socket;
    this.#timeoutMs = timeoutMs;
    socket.on('notification', (n) => {
      if (this.#held) this.#held.push(n);
      else this.#deliver(n);
    });
  }

  request<M extends RequestMethod>(method: M, data: RequestData<M>): Promise<ResponseData[M]> {
    return new Promise((resolve, reject) => {
      if (!this.socket.connected) {
        reject(new CodedError(ErrorCodes.INVALID_STATE, 'signalling socket is not connected'));
        return;
      }
      this.socket
        .timeout(this.#timeoutMs)
        .emit('request', { method, data } as never, (err: Error | null, res: unknown) => {
          if (err) {
            reject(new CodedError(ErrorCodes.INTERNAL, `${method} timed out`));
            return;
          }
          const r = res as { ok: true; data: ResponseData[M] } | { ok: false; error: { code: ErrorCodes; message: string } };
          if (r.ok) resolve(r.data);
          else reject(new CodedError(r.error.code, r.error.message));
        });
    });
  }

  onNotification(listener: (n: Notification) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Queues notifications instead of delivering them, until release(). */
  hold(): void {
    this.#held ??= [];
  }

  /**
   * Removes and returns the held notifications that `pick` selects (the caller has
   * accounted for them some other way); the rest stay queued in order.
   */
  takeHeld(pick: (n: Notification) => boolean): Notification[] {
    const held = this.#held ?? [];
    const taken = held.filter(pick);
    this.#held = this.#held && held.filter((n) => !pick(n));
    return taken;
  }

  /** Delivers the held notifications in order, then delivers live again. */
  release(): void {
    const held = this.#held;
    this.#held = undefined;
    for (const n of held ?? []) this.#deliver(n);
  }

  #deliver(n: Notification): void {
    for (const l of [...this.#listeners]) {
      try {
        l(n);
      } catch (err) {
        // One broken listener must not starve the others; its error is still reported.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

/**
 * Joins with `token` and prepares the peer (`prepare`: load the mediasoup device)
 * without losing what the room says in between. Producers that appear or close
 * while `prepare` runs are folded into the returned join snapshot, so that
 * `join.producers` is the room as it is when the caller gets it; any other
 * notification from that window is delivered on the next task, to the listeners
 * the caller registered synchronously after this resolves. Rejects if the socket
 * is lost before then.
 */
export async function joinRoom<T>(signal: SignalClient, token: string, prepare: (join: ResponseData['join']) => Promise<T>): Promise<{ join: ResponseData['join']; prepared: T }> {
  signal.hold();
  try {
    const join = await signal.request('join', { token });
    const prepared = await prepare(join);
    // A socket lost meanwhile would hand back a client whose 'disconnect' already happened, which
    // its owner would never hear of (a viewer would wait for video forever): fail the join instead.
    if (!signal.socket.connected) throw new CodedError(ErrorCodes.INTERNAL, 'the signalling connection was lost while joining');
    const producers = [...join.producers];
    for (const n of signal.takeHeld((n) => n.method === 'newProducer' || n.method === 'producerClosed')) {
      if (n.method === 'newProducer') {
        if (!producers.some((p) => p.producerId === n.data.producerId)) producers.push(n.data);
      } else if (n.method === 'producerClosed') {
        const at = producers.findIndex((p) => p.producerId === n.data.producerId);
        if (at >= 0) producers.splice(at, 1);
      }
    }
    setTimeout(() => signal.release(), 0);
    return { join: { ...join, producers }, prepared };
  } catch (err) {
    signal.release();
    throw err;
  }
}

type ErrorCodes = (typeof ErrorCodes)[keyof typeof ErrorCodes];
