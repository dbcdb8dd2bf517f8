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
import { addressKey, CONNECTION_CAPS, LIMITS, RateLimiter, type Limiters } from './http/rate-limit.ts';

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
  /** Cluster mode: whether a reenactor token's placement epoch is the room's current one (fencing). */
  reenactorAdmitted?: (roomId: string, epoch: number | undefined) => boolean;
  /** Join rate per client address; absent: no limits (REENACT_RATE_LIMITS=0). */
  limiters?: Pick<Limiters, 'join'>;
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
  /** The client's address (rate limits). */
  address: string;
}

let peerCounter = 0;

/** Each producer's packet count when last asked, and when, to tell media arriving now from a bitrate average that lags. */
const lastPackets = new WeakMap<types.Producer, { packets: number; at: number }>();

/**
 * Whether the SFU is receiving a producer's media now: its packet count grew since the last
 * question when that was within the last second, else over the next 150 ms. mediasoup's bitrate
 * is an average that stays above zero for a while after the media stops, so it cannot say this.
 */
async function producerReceiving(producer: types.Producer): Promise<boolean> {
  const count = async (): Promise<number> => (await producer.getStats().catch(() => [])).reduce((n, s) => n + s.packetCount, 0);
  const last = lastPackets.get(producer);
  let before = last && performance.now() - last.at < 1000 ? last.packets : undefined;
  if (before === undefined) {
    before = await count();
    await new Promise((r) => setTimeout(r, 150));
  }
  const packets = await count();
  lastPackets.set(producer, { packets, at: performance.now() });
  return packets > before;
}

export function attachSignalling(io: SignalServer, deps: SignallingDeps): void {
  // Connection caps: a client address, and all clients, hold at most so many sockets at once.
  const open = new Map<string, number>();
  let total = 0;
  if (deps.limiters) {
    io.use((socket, next) => {
      const key = addressKey(socket.handshake.address);
      const mine = open.get(key) ?? 0;
      if (mine >= CONNECTION_CAPS.perAddress || total >= CONNECTION_CAPS.total) {
        deps.metrics.signallingErrors.inc({ code: ErrorCodes.RATE_LIMITED });
        next(Object.assign(new Error(`${ErrorCodes.RATE_LIMITED}: too many connections`), { data: { code: ErrorCodes.RATE_LIMITED } }));
        return;
      }
      open.set(key, mine + 1);
      total++;
      socket.once('disconnect', () => {
        total--;
        const n = (open.get(key) ?? 1) - 1;
        if (n > 0) open.set(key, n);
        else open.delete(key);
      });
      next();
    });
  }
  io.on('connection', (socket) => {
    const state: SocketState = { peerSeq: ++peerCounter, address: addressKey(socket.handshake.address) };
    const log = deps.log.child('signal', { socket: socket.id });
    // Requests on one connection: a flood is answered E_RATE_LIMITED without being handled.
    const requests = deps.limiters ? new RateLimiter(LIMITS.socketRequests, 1) : null;

    socket.on('request', (raw: unknown, ack: unknown) => {
      if (typeof ack !== 'function') {
        deps.metrics.signallingErrors.inc({ code: ErrorCodes.BAD_REQUEST });
        return;
      }
      const reply = ack as (res: Response) => void;
      const taken = requests?.take('socket');
      if (taken && !taken.ok) {
        deps.metrics.signallingErrors.inc({ code: ErrorCodes.RATE_LIMITED });
        reply({ ok: false, error: { code: ErrorCodes.RATE_LIMITED, message: `too many requests on this connection; try again in ${taken.retryAfterS} s` } });
        return;
      }
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

function roomChannel(room: string): string {
  return `room:${room}`;
}

/**
 * Disconnects the peers of `room` whose tokens were issued up to `until` (a revocation), telling
 * them why first; the server's reenactors stay. Returns how many were disconnected.
 */
export async function kickRevoked(io: SignalServer, room: string, until: number): Promise<number> {
  let n = 0;
  for (const s of await io.in(roomChannel(room)).fetchSockets()) {
    const d = s.data as { role?: string; iat?: number };
    if (d.role === 'reenactor' || (d.iat ?? 0) > until) continue;
    s.emit('notification', { method: 'roomClosed', data: { code: ErrorCodes.UNAUTHORIZED, message: 'your token for this room was revoked' } });
    s.disconnect(true);
    n++;
  }
  return n;
}

function toWireError(err: unknown): { code: ErrorCode; message: string } {
  if (err instanceof CodedError) return { code: err.code, message: err.message };
  // mediasoup throws TypeError for parameters it rejects (bad RTP or DTLS parameters).
  if (err instanceof TypeError) return { code: ErrorCodes.BAD_REQUEST, message: err.message };
  if (err instanceof Error && err.name === 'UnsupportedError') return { code: ErrorCodes.BAD_REQUEST, message: err.message };
  return { code: ErrorCodes.INTERNAL, message: 'internal error' };
}

/** Requests nest a few levels (RTP parameters are the deepest); anything far deeper is refused. */
const MAX_DEPTH = 16;

/**
 * The request's size as JSON, roughly (strings, numbers and keys as written), walked without
 * copying it; stops as soon as it is over `limit` or nested past MAX_DEPTH (returns Infinity).
 */
function boundedSize(raw: unknown, limit: number): number {
  let size = 0;
  const stack: [unknown, number][] = [[raw, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v === 'string') size += v.length + 2;
    else if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) size += 8;
    else if (typeof v === 'object') {
      if (depth >= MAX_DEPTH) return Infinity;
      size += 2;
      if (Array.isArray(v)) for (const x of v) stack.push([x, depth + 1]);
      else {
        for (const k of Object.keys(v)) {
          size += k.length + 4;
          stack.push([(v as Record<string, unknown>)[k], depth + 1]);
        }
      }
    } else size += 8;
    if (size > limit) return Infinity;
  }
  return size;
}

function parseRequest(raw: unknown): ClientRequest {
  if (boundedSize(raw, MAX_REQUEST_BYTES) > MAX_REQUEST_BYTES) throw new CodedError(ErrorCodes.BAD_REQUEST, `request is over ${MAX_REQUEST_BYTES} bytes or nested over ${MAX_DEPTH} deep`);
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
      if (claims.role !== 'reenactor' && deps.limiters) {
        const taken = deps.limiters.join.take(state.address);
        if (!taken.ok) throw new CodedError(ErrorCodes.RATE_LIMITED, `too many joins from this address; try again in ${taken.retryAfterS} s`);
      }
      if (deps.draining()) throw new CodedError(ErrorCodes.DRAINING, 'the server is shutting down; join again shortly');
      if (claims.role === 'reenactor' && deps.reenactorAdmitted && !deps.reenactorAdmitted(claims.room, claims.epoch)) {
        throw new CodedError(ErrorCodes.UNAUTHORIZED, 'this reenactor holds an old placement of the room (fenced)');
      }
      if (claims.role === 'actor' && deps.overloaded()) throw new CodedError(ErrorCodes.BUSY, 'server is at capacity; try again later');
      const room = await deps.getOrCreateRoom(claims.room);
      // For revocations (kickRevoked): which room, and when this peer's token was issued.
      Object.assign(socket.data as object, { role: claims.role, iat: claims.iat ?? 0 });
      void socket.join(roomChannel(claims.room));
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
    case 'requestKeyFrame': {
      const { peer, room } = joined(state);
      const sent = await peer.requestKeyFrame(req.data.consumerId);
      const producerId = peer.consumers.get(req.data.consumerId)?.producerId;
      const producer = producerId ? room.producer(producerId) : undefined;
      return { sent, producerLive: producer && !producer.closed ? await producerReceiving(producer) : false };
    }
    case 'closeConsumer': {
      joined(state).peer.closeConsumer(req.data.consumerId);
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
