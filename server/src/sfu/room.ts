/**
 * A room is one mediasoup router and the peers joined to it. It announces
 * producers to the other peers and reports the actor's camera coming and going
 * so the owner can start and stop the reenactor session.
 *
 * Close cascade: Room.close() → notifies peers (roomClosed) → Peer.close() for
 * each → their transports → producers/consumers → router.close().
 */
import type { types } from 'mediasoup';
import type { Logger } from '../logger.ts';
import { TypedEmitter } from '../util/emitter.ts';
import { CodedError, ErrorCodes, type ErrorCode } from '../../../shared/errors.ts';
import type { Notification, ProducerInfo, ProducerLabel } from '../../../shared/protocol.ts';
import type { Peer } from './peer.ts';

export interface RoomEvents {
  /** The actor's camera producer appeared (start a reenactor session). */
  actorvideo: [producer: types.Producer];
  /** The actor's camera producer closed (stop the session). */
  actorvideoclosed: [producerId: string];
  /** The actor's landmark channel appeared (privacy mode: start a session on it). */
  actortracks: [dataProducer: types.DataProducer];
  actortracksclosed: [dataProducerId: string];
  /** Only the reenactor (or nobody) is left. */
  idle: [];
  close: [];
  [key: string]: unknown[];
}

export class Room extends TypedEmitter<RoomEvents> {
  readonly id: string;
  readonly #router: types.Router;
  readonly #log: Logger;
  readonly #peers = new Map<string, Peer>();
  readonly #producers = new Map<string, { producer: types.Producer; info: ProducerInfo }>();
  readonly #dataProducers = new Map<string, types.DataProducer>();
  #closed = false;

  private constructor(id: string, router: types.Router, worker: types.Worker, log: Logger) {
    super();
    this.id = id;
    this.#router = router;
    this.#log = log;
    // mediasoup closes a dead worker's routers before it emits 'died': tell the two apart here.
    router.observer.once('close', () => {
      if (worker.died) this.close(ErrorCodes.WORKER_DIED, `media worker ${worker.pid} died`);
      else this.close(ErrorCodes.ROOM_CLOSED, 'router closed');
    });
  }

  static async create(id: string, createRouter: () => Promise<{ router: types.Router; worker: types.Worker }>, log: Logger): Promise<Room> {
    const { router, worker } = await createRouter();
    return new Room(id, router, worker, log.child('room', { room: id }));
  }

  get router(): types.Router {
    return this.#router;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get peers(): ReadonlyMap<string, Peer> {
    return this.#peers;
  }

  get producerInfos(): ProducerInfo[] {
    return [...this.#producers.values()].map((p) => p.info);
  }

  /** The synthesized producer, when the reenactor publishes one. */
  producer(id: string): types.Producer | undefined {
    return this.#producers.get(id)?.producer;
  }

  /** The live actor camera producer, if any. */
  get actorVideo(): types.Producer | undefined {
    for (const { producer, info } of this.#producers.values()) if (info.label === 'camera' && info.kind === 'video') return producer;
    return undefined;
  }

  /** The reenactor's synthesized video producer, if any. */
  get synthesizedVideo(): types.Producer | undefined {
    for (const { producer, info } of this.#producers.values()) if (info.label === 'synthesized' && info.kind === 'video') return producer;
    return undefined;
  }

  /** The actor's landmark channel (privacy mode), if any. */
  get actorTracks(): types.DataProducer | undefined {
    return this.#dataProducers.values().next().value;
  }

  dataProducer(id: string): types.DataProducer | undefined {
    return this.#dataProducers.get(id);
  }

  addPeer(peer: Peer): void {
    if (this.#closed) throw new CodedError(ErrorCodes.ROOM_CLOSED, 'room closed');
    this.#peers.set(peer.id, peer);
    peer.on('newproducer', (producer, label) => this.#onProducer(peer, producer, label));
    peer.on('newdataproducer', (dataProducer) => this.#onDataProducer(dataProducer));
    peer.once('close', () => {
      this.#peers.delete(peer.id);
      this.broadcast({ method: 'peerLeft', data: { peerId: peer.id } }, peer.id);
      const humans = [...this.#peers.values()].filter((p) => p.role !== 'reenactor').length;
      if (humans === 0) this.safeEmit('idle');
    });
  }

  /** Throws if the room already has an actor source (camera video or privacy-mode tracks): one actor per room. */
  assertNoActorSource(): void {
    if (this.actorVideo) throw new CodedError(ErrorCodes.ROOM_TAKEN, 'this room already has an actor camera');
    if (this.actorTracks) throw new CodedError(ErrorCodes.ROOM_TAKEN, 'this room already has an actor (privacy mode)');
  }

  /** One actor voice per room: a second actor peer may not add a microphone beside the first's. */
  assertNoOtherMicrophone(peerId: string): void {
    for (const { info } of this.#producers.values()) {
      if (info.label === 'microphone' && info.peerId !== peerId) throw new CodedError(ErrorCodes.ROOM_TAKEN, 'this room already has an actor microphone');
    }
  }

  broadcast(n: Notification, exceptPeerId?: string): void {
    for (const p of this.#peers.values()) if (p.id !== exceptPeerId) p.notify(n);
  }

  close(code: ErrorCode = ErrorCodes.ROOM_CLOSED, message = 'room closed'): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#log.info('room closing', { code });
    this.broadcast({ method: 'roomClosed', data: { code, message } });
    for (const p of [...this.#peers.values()]) p.close();
    this.#peers.clear();
    this.#producers.clear();
    this.#dataProducers.clear();
    this.#router.close();
    this.safeEmit('close');
    this.removeAllListeners();
  }

  #onProducer(peer: Peer, producer: types.Producer, label: ProducerLabel): void {
    const info: ProducerInfo = { producerId: producer.id, peerId: peer.id, kind: producer.kind, label };
    this.#producers.set(producer.id, { producer, info });
    this.broadcast({ method: 'newProducer', data: info }, peer.id);
    const isActorVideo = label === 'camera' && producer.kind === 'video';
    producer.observer.once('close', () => {
      this.#producers.delete(producer.id);
      this.broadcast({ method: 'producerClosed', data: { producerId: producer.id } }, peer.id);
      if (isActorVideo && !this.#closed) this.safeEmit('actorvideoclosed', producer.id);
    });
    if (isActorVideo) this.safeEmit('actorvideo', producer);
  }

  #onDataProducer(dataProducer: types.DataProducer): void {
    this.#dataProducers.set(dataProducer.id, dataProducer);
    dataProducer.observer.once('close', () => {
      this.#dataProducers.delete(dataProducer.id);
      if (!this.#closed) this.safeEmit('actortracksclosed', dataProducer.id);
    });
    this.safeEmit('actortracks', dataProducer);
  }
}
