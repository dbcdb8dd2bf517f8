/** A raw signalling connection for tests that talk to the server as a client would, or would not. */
import { io } from 'socket.io-client';
import { SIGNALLING_PATH, type Response } from '../../shared/protocol.ts';
import type { ClientSocket } from '../../shared/signal-client.ts';

/** Connects over WebSocket, without reconnecting; rejects when the server refuses the connection. */
export async function connectSignal(url: string): Promise<ClientSocket> {
  const socket: ClientSocket = io(url, { path: SIGNALLING_PATH, transports: ['websocket'], reconnection: false, forceNew: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return socket;
}

/** Emits anything as a request (bypassing the typed client); 'timeout' when no answer comes. */
export function sendRaw(socket: ClientSocket, payload: unknown, timeoutMs = 15_000): Promise<Response | 'timeout'> {
  return new Promise((resolve) => {
    socket.timeout(timeoutMs).emit('request', payload as never, (err: Error | null, res: Response) => resolve(err ? 'timeout' : res));
  });
}
