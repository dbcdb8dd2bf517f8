/**
 * The socket boundary: every inbound request is size-checked and validated
 * against the shared schema, dispatched through one exhaustive switch, and
 * answered through the socket.io ack with either data or a coded error. A bad
 * request never throws past this module, so it cannot hurt other sessions.
 */
import type { Server, Socket } from 'socket.io';
import type { types } from 'mediasoup';
import { CodedError, ErrorCodes, type ErrorCode } from '../../shared/errors.ts';
import {
  MAX_REQUEST_BYTES,
  requestSchema,
  type ClientRequest,
  type ClientToServerEvents,
  type Response,
  type ResponseData,
  type RequestMethod,
  type ServerToClientEvents,
  type SessionOptions,
} from '../../shared/protocol.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics/metrics.ts';
import type { TokenSigner } from './auth/tokens.ts';
import { Peer } from './sfu/peer.ts';
import type { Room } from './sfu/room.ts';
import type { Config } from './config.ts';

export type SignalSocket = Socket<ClientToServerEvents, ServerToClientEvents>;
export type SignalServer = Server<ClientToServerEvents, ServerToClientEvents>;

/** What signalling needs from its owner; the server wires these in one place. */
export interface SignallingDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  tokens: TokenSigner;
  getOrCreateRoom: (roomId: string) => Promise<Room>;
  /** Refuses new actors when the server is over its load threshold. */
  overloaded: () => boolean;
  /** The server is draining: joins are refused with E_DRAINING. */
  draining: () => boolean;
  controls: SessionControls;
}

/** Session controls, implemented by the server; signalling checks roles and shapes only. */
export interface SessionControls {
  listTargets(roomId: string): ResponseData['listTargets'];
  setTarget(roomId: string, targetId: string): Promise<void>;
  resetNeutral(roomId: string): Promise<void>;
  setOptions(roomId: string, options: Partial<SessionOptions>): Promise<SessionOptions>;
}

const knownMethods = new Set<string>(requestSchema.options.map((o) => o.shape.method.value));

interface SocketState {
  peer?: Peer;
  room?: Room;
  peerSeq: number;
}

let peerCounter = 0;

export function attachSignalling(io: SignalServer, deps: SignallingDeps): void {
  io.on('connection', (socket) => {
    const state: SocketState = { peerSeq: ++peerCounter };
    const log = deps.log.child('signal', { socket: socket.id });

    socket.on('request', (raw: unknown, ack: unknown) => {
      if (typeof ack !== 'function') {
        deps.metrics.signallingErrors.inc({ code: ErrorCodes.BAD_REQUEST });
        return;
      }
      const reply = ack as (res: Response) => void;
      handle(raw, state, socket, deps, log)
        .then((data) => reply({ ok: true, data } as Response))
        .catch((err: unknown) => {
          const { code, message } = toWireError(err);
          if (code === ErrorCodes.INTERNAL) log.error('request failed', { err });
          deps.metrics.signallingErrors.inc({ code });
          reply({ ok: false, error: { code, message } });
        });
    });

    // Events other than 'request' are not part of the protocol: answer them if they asked for an answer.
    socket.onAny((event: string, ...args: unknown[]) => {
      if (event === 'request') return;
      deps.metrics.signallingErrors.inc({ code: ErrorCodes.UNKNOWN_METHOD });
      const last = args[args.length - 1];
      if (typeof last === 'function') (last as (r: Response) => void)({ ok: false, error: { code: ErrorCodes.UNKNOWN_METHOD, message: 'unknown event' } });
    });

    socket.on('disconnect', (reason) => {
      log.debug('socket disconnected', { reason });
      state.peer?.close();
    });
  });
}

function toWireError(err: unknown): { code: ErrorCode; message: string } {
  if (err instanceof CodedError) return { code: err.code, message: err.message };
  // mediasoup throws TypeError for parameters it rejects (bad RTP or DTLS parameters).
  if (err instanceof TypeError) return { code: ErrorCodes.BAD_REQUEST, message: err.message };
  if (err instanceof Error && err.name === 'UnsupportedError') return { code: ErrorCodes.BAD_REQUEST, message: err.message };
  return { code: ErrorCodes.INTERNAL, message: 'internal error' };
}

function parseRequest(raw: unknown): ClientRequest {
  let size: number;
  try {
    size = JSON.stringify(raw)?.length ?? 0;
  } catch {
    throw new CodedError(ErrorCodes.BAD_REQUEST, 'request is not serialisable');
  }
  if (size > MAX_REQUEST_BYTES) throw new CodedError(ErrorCodes.BAD_REQUEST, `request is ${size} bytes; the limit is ${MAX_REQUEST_BYTES}`);
  const method = typeof raw === 'object' && raw !== null ? (raw as { method?: unknown }).method : undefined;
  if (typeof method !== 'string' || !knownMethods.has(method)) {
    throw new CodedError(ErrorCodes.UNKNOWN_METHOD, `unknown method ${typeof method === 'string' ? JSON.stringify(method.slice(0, 64)) : ''}`);
  }
  const parsed = requestSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new CodedError(ErrorCodes.BAD_REQUEST, `invalid ${method}: ${first ? `${first.path.join('.')}: ${first.message}` : 'bad payload'}`);
  }
  return parsed.data;
}

function actorOnly(state: SocketState): { peer: Peer; room: Room } {
  const j = joined(state);
  if (j.peer.role !== 'actor') throw new CodedError(ErrorCodes.FORBIDDEN, 'only the actor controls the session');
  return j;
}

function joined(state: SocketState): { peer: Peer; room: Room } {
  if (!state.peer || !state.room || state.peer.closed) throw new CodedError(ErrorCodes.INVALID_STATE, 'join first');
  return { peer: state.peer, room: state.room };
}

async function handle(raw: unknown, state: SocketState, socket: SignalSocket, deps: SignallingDeps, log: Logger): Promise<ResponseData[RequestMethod]> {
  const req = parseRequest(raw);
  switch (req.method) {
    case 'join': {
      if (state.peer && !state.peer.closed) throw new CodedError(ErrorCodes.INVALID_STATE, 'already joined');
      const claims = deps.tokens.verify(req.data.token);
      if (deps.draining()) throw new CodedError(ErrorCodes.DRAINING, 'the server is shutting down; join again shortly');
      if (claims.role === 'actor' && deps.overloaded()) throw new CodedError(ErrorCodes.BUSY, 'server is at capacity; try again later');
      const room = await deps.getOrCreateRoom(claims.room);
      const peer = new Peer({
        id: `${claims.role}-${state.peerSeq}`,
        role: claims.role,
        router: room.router,
        config: deps.config,
        log: log.child('peer', { room: room.id, role: claims.role }),
        notify: (n) => socket.emit('notification', n),
      });
      room.addPeer(peer);
      deps.metrics.peers.inc({ role: claims.role });
      peer.once('close', () => deps.metrics.peers.dec({ role: claims.role }));
      state.peer = peer;
      state.room = room;
      const producers = room.producerInfos;
      return {
        peerId: peer.id,
        roomId: room.id,
        role: claims.role,
        routerRtpCapabilities: room.router.rtpCapabilities,
        producers,
        measurement: deps.config.measurement,
      };
    }
    case 'createWebRtcTransport': {
      const { peer } = joined(state);
      return peer.createTransport(req.data.direction);
    }
    case 'connectWebRtcTransport': {
      const { peer } = joined(state);
      await peer.connectTransport(req.data.transportId, req.data.dtlsParameters as types.DtlsParameters);
      return {};
    }
    case 'produce': {
      const { peer, room } = joined(state);
      if (req.data.label === 'camera' && req.data.kind === 'video') room.assertNoActorSource();
      if (req.data.label === 'microphone') room.assertNoOtherMicrophone(peer.id);
      const producer = await peer.produce(req.data.transportId, req.data.kind, req.data.rtpParameters as unknown as types.RtpParameters, req.data.label);
      return { producerId: producer.id };
    }
    case 'closeProducer': {
      joined(state).peer.closeProducer(req.data.producerId);
      return {};
    }
    case 'produceData': {
      const { peer, room } = joined(state);
      room.assertNoActorSource();
      const dp = await peer.produceData(req.data.transportId, req.data.sctpStreamParameters, req.data.label, req.data.protocol);
      return { dataProducerId: dp.id };
    }
    case 'consumeData': {
      const { peer, room } = joined(state);
      const dataProducer = room.dataProducer(req.data.dataProducerId);
      if (!dataProducer) throw new CodedError(ErrorCodes.NOT_FOUND, 'no such data producer in this room');
      const dc = await peer.consumeData(req.data.transportId, dataProducer);
      if (!dc.sctpStreamParameters) throw new CodedError(ErrorCodes.INTERNAL, 'data consumer without SCTP parameters');
      return { id: dc.id, dataProducerId: dataProducer.id, sctpStreamParameters: dc.sctpStreamParameters, label: dc.label, protocol: dc.protocol };
    }
    case 'consume': {
      const { peer, room } = joined(state);
      const producer = room.producer(req.data.producerId);
      if (!producer) throw new CodedError(ErrorCodes.NOT_FOUND, 'no such producer in this room');
      const consumer = await peer.consume(req.data.transportId, producer, req.data.rtpCapabilities as types.RtpCapabilities);
      return { id: consumer.id, producerId: producer.id, kind: consumer.kind, rtpParameters: consumer.rtpParameters };
    }
    case 'resumeConsumer': {
      await joined(state).peer.resumeConsumer(req.data.consumerId);
      return {};
    }
    case 'setPreferredLayers': {
      await joined(state).peer.setPreferredLayers(req.data.consumerId, req.data.spatialLayer);
      return {};
    }
    case 'leave': {
      state.peer?.close();
      return {};
    }
    case 'listTargets':
      return deps.controls.listTargets(joined(state).room.id);
    case 'setTarget': {
      const { room } = actorOnly(state);
      await deps.controls.setTarget(room.id, req.data.targetId);
      room.broadcast({ method: 'targetChanged', data: { targetId: req.data.targetId } });
      return { targetId: req.data.targetId };
    }
    case 'resetNeutral':
      await deps.controls.resetNeutral(actorOnly(state).room.id);
      return {};
    case 'setOptions':
      return deps.controls.setOptions(actorOnly(state).room.id, req.data);
    default: {
      const never: never = req;
      throw new CodedError(ErrorCodes.UNKNOWN_METHOD, `unhandled ${String((never as { method: string }).method)}`);
    }
  }
}
