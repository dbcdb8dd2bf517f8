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

  constructor(socket: ClientSocket, timeoutMs = 10_000) {
    this.socket = socket;
    this.#timeoutMs = timeoutMs;
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
    this.socket.on('notification', listener);
    return () => this.socket.off('notification', listener);
  }
}

type ErrorCodes = (typeof ErrorCodes)[keyof typeof ErrorCodes];
