/**
 * One signalling participant in a room: its transports, producers and
 * consumers. close() is idempotent and cascades: closing the transports closes
 * their producers and consumers inside mediasoup.
 *
 * A client's own close() never reaches us as a message; we learn of it from
 * the transport's DTLS/ICE state (closed or failed; disconnected past a grace
 * period) or from the socket disconnecting, and clean up then.
 */
import type { types } from 'mediasoup';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { TypedEmitter } from '../util/emitter.ts';
import { CodedError, ErrorCodes } from '../../../shared/errors.ts';
import { labelAllows, type DataLabel, type Notification, type ProducerLabel, type Role, type TransportInfo } from '../../../shared/protocol.ts';
import { trackMessageBytes } from '../../../shared/track-wire.ts';
import { LANDMARK_COUNT_WITH_IRIS } from '../../../shared/tracking.ts';

export interface PeerEvents {
  /** A producer was created; the owner announces it to the room. */
  newproducer: [producer: types.Producer, label: ProducerLabel];
  /** A data producer was created (privacy mode's landmark channel). */
  newdataproducer: [dataProducer: types.DataProducer, label: DataLabel];
  close: [];
  [key: string]: unknown[];
}

export interface PeerOptions {
  id: string;
  role: Role;
  router: types.Router;
  config: Config;
  log: Logger;
  notify: (n: Notification) => void;
}

const MAX_TRANSPORTS = 4;
const MAX_CONSUMERS = 32;
/** SCTP messages above this are refused by the transport: the largest track message, with room to spare. */
const MAX_SCTP_MESSAGE_BYTES = 4 * trackMessageBytes(LANDMARK_COUNT_WITH_IRIS);

/** A peer's keyframe requests for one consumer are passed on at most this often. */
export const KEYFRAME_REQUEST_GAP_MS = 300;

export class Peer extends TypedEmitter<PeerEvents> {
  readonly id: string;
  readonly role: Role;
  readonly #router: types.Router;
  readonly #config: Config;
  readonly #log: Logger;
  readonly #notify: (n: Notification) => void;
  readonly #transports = new Map<string, types.WebRtcTransport>();
  readonly #producers = new Map<string, types.Producer>();
  readonly #consumers = new Map<string, types.Consumer>();
  readonly #dataProducers = new Map<string, types.DataProducer>();
  readonly #dataConsumers = new Map<string, types.DataConsumer>();
  readonly #iceTimers = new Map<string, NodeJS.Timeout>();
  /** When each consumer last had a keyframe asked for (performance.now()). */
  readonly #keyFrameAsked = new Map<string, number>();
  #closed = false;

  constructor(opts: PeerOptions) {
    super();
    this.id = opts.id;
    this.role = opts.role;
    this.#router = opts.router;
    this.#config = opts.config;
    this.#log = opts.log;
    this.#notify = opts.notify;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get transportCount(): number {
    return this.#transports.size;
  }

  get producers(): ReadonlyMap<string, types.Producer> {
    return this.#producers;
  }

  get consumers(): ReadonlyMap<string, types.Consumer> {
    return this.#consumers;
  }

  get transports(): ReadonlyMap<string, types.WebRtcTransport> {
    return this.#transports;
  }

  get consumerCount(): number {
    return this.#consumers.size;
  }

  notify(n: Notification): void {
    if (!this.#closed) this.#notify(n);
  }

  async createTransport(direction: 'send' | 'recv'): Promise<TransportInfo> {
    this.#assertOpen();
    if (direction === 'send' && this.role === 'viewer') throw new CodedError(ErrorCodes.FORBIDDEN, 'a viewer cannot send media');
    if (this.#transports.size >= MAX_TRANSPORTS) throw new CodedError(ErrorCodes.INVALID_STATE, 'too many transports');
    const ip = this.#config.host;
    // The reenactor runs on this machine: it is given the listen address itself, never the announced
    // one (a public address behind NAT would hairpin, and a relay in front of the SFU, as the network
    // fault tests put there, belongs on the clients' path only).
    const announcedAddress = this.role === 'reenactor' ? internalAddress(ip) : this.#config.announcedIp;
    const transport = await this.#router.createWebRtcTransport({
      listenInfos: [
        { protocol: 'udp', ip, announcedAddress, portRange: { min: this.#config.rtcMinPort, max: this.#config.rtcMaxPort } },
        { protocol: 'tcp', ip, announcedAddress, portRange: { min: this.#config.rtcMinPort, max: this.#config.rtcMaxPort } },
      ],
      enableUdp: true,
      enableTcp: true,
      preferUdp: true,
      // Start a viewer's estimate at the synthesized video's top layer (plus the voice): a simulcast
      // consumer picks its first layer from it, and the default 600 kbit/s held loopback viewers on the
      // half layer for ten seconds. A link that cannot carry it is stepped down by the estimator.
      ...(direction === 'recv' ? { initialAvailableOutgoingBitrate: this.#config.outputBitrate + 100_000 } : {}),
      // Data channels (privacy mode's landmarks). The association only starts once a peer opens one.
      enableSctp: true,
      maxSendMessageSize: MAX_SCTP_MESSAGE_BYTES,
      maxReceiveMessageSize: MAX_SCTP_MESSAGE_BYTES,
      // A late landmark message is worthless: keep the send queue to a few frames.
      sctpSendBufferSize: 16 * MAX_SCTP_MESSAGE_BYTES,
      appData: { direction },
    });
    if (this.#closed) {
      transport.close();
      throw new CodedError(ErrorCodes.INVALID_STATE, 'peer closed');
    }
    this.#transports.set(transport.id, transport);
    transport.observer.once('close', () => {
      this.#transports.delete(transport.id);
      this.#clearIceTimer(transport.id);
    });
    transport.on('dtlsstatechange', (state) => {
      if (state === 'failed' || state === 'closed') {
        this.#log.info('transport DTLS ended; closing it', { transportId: transport.id, state });
        transport.close();
      }
    });
    transport.on('icestatechange', (state) => {
      if (state === 'disconnected') {
        this.#clearIceTimer(transport.id);
        this.#iceTimers.set(
          transport.id,
          setTimeout(() => {
            this.#log.info('transport ICE disconnected past grace; closing it', { transportId: transport.id });
            transport.close();
          }, this.#config.iceDisconnectGraceMs),
        );
      } else if (state === 'closed') {
        transport.close();
      } else {
        this.#clearIceTimer(transport.id);
      }
    });
    return {
      id: transport.id,
      iceParameters: transport.iceParameters,
      iceCandidates: transport.iceCandidates,
      dtlsParameters: transport.dtlsParameters,
      sctpParameters: transport.sctpParameters,
    };
  }

  async connectTransport(transportId: string, dtlsParameters: types.DtlsParameters): Promise<void> {
    const transport = this.#transport(transportId);
    await transport.connect({ dtlsParameters });
  }

  async produce(transportId: string, kind: types.MediaKind, rtpParameters: types.RtpParameters, label: ProducerLabel): Promise<types.Producer> {
    const allowed = (this.role === 'actor' && (label === 'camera' || label === 'microphone')) || (this.role === 'reenactor' && label === 'synthesized');
    if (!allowed) throw new CodedError(ErrorCodes.FORBIDDEN, `role ${this.role} cannot produce ${label}`);
    if (!labelAllows(label, kind)) throw new CodedError(ErrorCodes.BAD_REQUEST, `a ${label} producer cannot carry ${kind}`);
    for (const p of this.#producers.values()) {
      if (p.kind === kind && p.appData['label'] === label) throw new CodedError(ErrorCodes.INVALID_STATE, `already producing ${label} ${kind}`);
    }
    const transport = this.#transport(transportId);
    if (transport.appData['direction'] !== 'send') throw new CodedError(ErrorCodes.INVALID_STATE, 'not a send transport');
    if (this.#producers.size >= 2) throw new CodedError(ErrorCodes.INVALID_STATE, 'too many producers');
    const producer = await transport.produce({ kind, rtpParameters, appData: { label, peerId: this.id } });
    this.#producers.set(producer.id, producer);
    producer.observer.once('close', () => this.#producers.delete(producer.id));
    this.safeEmit('newproducer', producer, label);
    return producer;
  }

  /** Privacy mode: the actor's landmark channel. One per peer. */
  async produceData(transportId: string, sctpStreamParameters: types.SctpStreamParameters, label: DataLabel, protocol = ''): Promise<types.DataProducer> {
    if (this.role !== 'actor') throw new CodedError(ErrorCodes.FORBIDDEN, `role ${this.role} cannot produce ${label}`);
    const transport = this.#transport(transportId);
    if (transport.appData['direction'] !== 'send') throw new CodedError(ErrorCodes.INVALID_STATE, 'not a send transport');
    if (this.#dataProducers.size >= 1) throw new CodedError(ErrorCodes.INVALID_STATE, 'too many data producers');
    const dataProducer = await transport.produceData({ sctpStreamParameters, label, protocol, appData: { label, peerId: this.id } });
    this.#dataProducers.set(dataProducer.id, dataProducer);
    dataProducer.observer.once('close', () => this.#dataProducers.delete(dataProducer.id));
    this.safeEmit('newdataproducer', dataProducer, label);
    return dataProducer;
  }

  /** Only the reenactor reads an actor's landmarks. */
  async consumeData(transportId: string, dataProducer: types.DataProducer): Promise<types.DataConsumer> {
    if (this.role !== 'reenactor') throw new CodedError(ErrorCodes.FORBIDDEN, 'only the reenactor consumes tracks');
    const transport = this.#transport(transportId);
    if (transport.appData['direction'] !== 'recv') throw new CodedError(ErrorCodes.INVALID_STATE, 'not a recv transport');
    if (this.#dataConsumers.size >= 4) throw new CodedError(ErrorCodes.INVALID_STATE, 'too many data consumers');
    const dataConsumer = await transport.consumeData({ dataProducerId: dataProducer.id });
    this.#dataConsumers.set(dataConsumer.id, dataConsumer);
    dataConsumer.observer.once('close', () => this.#dataConsumers.delete(dataConsumer.id));
    return dataConsumer;
  }

  closeProducer(producerId: string): void {
    const producer = this.#producers.get(producerId);
    if (!producer) throw new CodedError(ErrorCodes.NOT_FOUND, 'no such producer');
    producer.close();
  }

  async consume(transportId: string, producer: types.Producer, rtpCapabilities: types.RtpCapabilities): Promise<types.Consumer> {
    // Viewers hear the reenactor's voice track, delayed to match the face; the raw microphone is its input only.
    if (producer.appData['label'] === 'microphone' && this.role !== 'reenactor') throw new CodedError(ErrorCodes.FORBIDDEN, 'only the reenactor consumes the actor microphone');
    const transport = this.#transport(transportId);
    if (transport.appData['direction'] !== 'recv') throw new CodedError(ErrorCodes.INVALID_STATE, 'not a recv transport');
    if (this.#consumers.size >= MAX_CONSUMERS) throw new CodedError(ErrorCodes.INVALID_STATE, 'too many consumers');
    if (!this.#router.canConsume({ producerId: producer.id, rtpCapabilities })) {
      throw new CodedError(ErrorCodes.INVALID_STATE, 'cannot consume: no common codec');
    }
    const consumer = await transport.consume({ producerId: producer.id, rtpCapabilities, paused: true });
    this.#consumers.set(consumer.id, consumer);
    consumer.observer.once('close', () => this.#consumers.delete(consumer.id));
    return consumer;
  }

  async resumeConsumer(consumerId: string): Promise<void> {
    const consumer = this.#consumers.get(consumerId);
    if (!consumer) throw new CodedError(ErrorCodes.NOT_FOUND, 'no such consumer');
    await consumer.resume();
    if (consumer.kind === 'video') await consumer.requestKeyFrame().catch(() => undefined);
  }

  /**
   * Asks the producer behind one of this peer's video consumers for a keyframe, at most once per
   * KEYFRAME_REQUEST_GAP_MS per consumer (mediasoup's own PLI path goes on as usual); false when
   * throttled. E_NOT_FOUND for an unknown consumer, E_INVALID_STATE for audio.
   */
  async requestKeyFrame(consumerId: string): Promise<boolean> {
    const consumer = this.#consumers.get(consumerId);
    if (!consumer) throw new CodedError(ErrorCodes.NOT_FOUND, 'no such consumer');
    if (consumer.kind !== 'video') throw new CodedError(ErrorCodes.INVALID_STATE, 'an audio consumer has no keyframes');
    const now = performance.now();
    if (now - (this.#keyFrameAsked.get(consumerId) ?? -Infinity) < KEYFRAME_REQUEST_GAP_MS) return false;
    this.#keyFrameAsked.set(consumerId, now);
    consumer.observer.once('close', () => this.#keyFrameAsked.delete(consumerId));
    await consumer.requestKeyFrame().catch(() => undefined);
    return true;
  }

  /** Closes one of this peer's consumers (E_NOT_FOUND for another peer's or an unknown one). */
  closeConsumer(consumerId: string): void {
    const consumer = this.#consumers.get(consumerId);
    if (!consumer) throw new CodedError(ErrorCodes.NOT_FOUND, 'no such consumer');
    consumer.close();
  }

  /** Caps a simulcast consumer's spatial layer (E_NOT_FOUND for another peer's or an unknown consumer). */
  async setPreferredLayers(consumerId: string, spatialLayer: number): Promise<void> {
    const consumer = this.#consumers.get(consumerId);
    if (!consumer) throw new CodedError(ErrorCodes.NOT_FOUND, 'no such consumer');
    if (consumer.type !== 'simulcast') throw new CodedError(ErrorCodes.INVALID_STATE, `consumer is ${consumer.type}, not simulcast`);
    await consumer.setPreferredLayers({ spatialLayer });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#iceTimers.values()) clearTimeout(t);
    this.#iceTimers.clear();
    for (const t of [...this.#transports.values()]) t.close();
    this.#transports.clear();
    this.#producers.clear();
    this.#consumers.clear();
    this.#dataProducers.clear();
    this.#dataConsumers.clear();
    this.safeEmit('close');
    this.removeAllListeners();
  }

  #transport(id: string): types.WebRtcTransport {
    this.#assertOpen();
    const t = this.#transports.get(id);
    if (!t) throw new CodedError(ErrorCodes.NOT_FOUND, 'no such transport');
    return t;
  }

  #assertOpen(): void {
    if (this.#closed) throw new CodedError(ErrorCodes.INVALID_STATE, 'peer closed');
  }

  #clearIceTimer(id: string): void {
    const t = this.#iceTimers.get(id);
    if (t) clearTimeout(t);
    this.#iceTimers.delete(id);
  }
}

/** The address a co-located peer reaches a transport on: the listen address, or loopback for a wildcard one. */
export function internalAddress(listenIp: string): string | undefined {
  if (listenIp === '0.0.0.0') return '127.0.0.1';
  if (listenIp === '::') return '::1';
  return undefined;
}
