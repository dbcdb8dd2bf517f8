/**
 * A WebRTC peer in Node: socket.io signalling + mediasoup-client (Chrome111
 * handler) on top of wrtc. The reenactor, the tests, the load tester and the
 * virtual camera all join rooms through this, speaking the same protocol as
 * the browser.
 *
 * wrtc only lets a process exit cleanly when every sink, track and peer
 * connection is stopped/closed, so close() does all of that and is idempotent.
 */
import { io } from 'socket.io-client';
import { Device } from 'mediasoup-client';
import type { types as msc } from 'mediasoup-client';
import './wrtc.ts';
import { SignalClient, joinRoom, type ClientSocket } from '../../../shared/signal-client.ts';
import { SIGNALLING_PATH, TRACKS_PROTOCOL, pickStreamParameters, type DataLabel, type Notification, type ProducerInfo, type ProducerLabel, type ResponseData } from '../../../shared/protocol.ts';
import { InvalidStateError } from '../../../shared/errors.ts';

export interface NodePeerOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:8080 */
  url: string;
  token: string;
  connectTimeoutMs?: number;
}

export class NodePeer {
  readonly signal: SignalClient;
  readonly join: ResponseData['join'];
  readonly #device: Device;
  #send?: msc.Transport;
  #recv?: msc.Transport;
  readonly #producers = new Set<msc.Producer>();
  readonly #consumers = new Set<msc.Consumer>();
  readonly #dataProducers = new Set<msc.DataProducer>();
  readonly #dataConsumers = new Set<msc.DataConsumer>();
  /** The room's producers now: those at join, kept up to date from notifications. */
  readonly #roomProducers = new Map<string, ProducerInfo>();
  #closed = false;

  private constructor(signal: SignalClient, join: ResponseData['join'], device: Device) {
    this.signal = signal;
    this.join = join;
    this.#device = device;
    for (const p of join.producers) this.#roomProducers.set(p.producerId, p);
    signal.onNotification((n) => {
      if (n.method === 'newProducer') this.#roomProducers.set(n.data.producerId, n.data);
      if (n.method === 'producerClosed') this.#roomProducers.delete(n.data.producerId);
    });
  }

  /**
   * The room's producers as of now (join's list is a snapshot): a listener that attaches late
   * finds what was announced before it, and then follows newProducer notifications.
   */
  get roomProducers(): ProducerInfo[] {
    return [...this.#roomProducers.values()];
  }

  static async connect(opts: NodePeerOptions): Promise<NodePeer> {
    const socket: ClientSocket = io(opts.url, {
      path: SIGNALLING_PATH,
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      // The reenactor joins through its own server's loopback URL; a deployment's certificate
      // names the public host (or is self-signed), so loopback TLS is not verified. Nothing
      // else is exempt.
      rejectUnauthorized: !isLoopbackHttps(opts.url),
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`could not reach signalling at ${opts.url}`)), opts.connectTimeoutMs ?? 10_000);
        socket.once('connect', () => {
          clearTimeout(t);
          resolve();
        });
        socket.once('connect_error', (err) => {
          clearTimeout(t);
          reject(err);
        });
      });
      const signal = new SignalClient(socket);
      const { join, prepared: device } = await joinRoom(signal, opts.token, async (j) => {
        const device = new Device({ handlerName: 'Chrome111' });
        await device.load({ routerRtpCapabilities: j.routerRtpCapabilities as msc.RtpCapabilities });
        return device;
      });
      return new NodePeer(signal, join, device);
    } catch (err) {
      socket.close();
      throw err;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  onNotification(listener: (n: Notification) => void): () => void {
    return this.signal.onNotification(listener);
  }

  /**
   * Publishes a video track; bitrate is set through sendEncodings (wrtc's setParameters always rejects).
   * With simulcast it sends three layers (full, half and quarter size: SIMULCAST_LAYERS) and the SFU
   * forwards each consumer the layer its link carries; libwebrtc leaves out layers a small frame cannot fill.
   */
  async publishVideo(track: MediaStreamTrack, label: ProducerLabel, maxBitrate = 1_500_000, simulcast = false): Promise<msc.Producer> {
    const transport = await this.#sendTransport();
    const producer = await transport.produce({
      track,
      encodings: simulcast ? simulcastEncodings(maxBitrate) : [{ maxBitrate }],
      // Start the sender's estimate at the full bitrate (the reenactor sits beside its SFU), not
      // libwebrtc's 300 kbit/s: otherwise the top simulcast layer is held back for ten seconds.
      codecOptions: { videoGoogleStartBitrate: Math.round((simulcast ? simulcastBitrate(maxBitrate) : maxBitrate) / 1000) },
      codec: this.#device.rtpCapabilities.codecs?.find((c) => c.mimeType.toLowerCase() === 'video/vp8'),
      appData: { label },
    });
    this.#producers.add(producer);
    return producer;
  }

  /**
   * Publishes an audio track as Opus (mono, in-band FEC, no DTX: a relayed voice keeps a
   * steady packet clock, so the viewer's jitter buffer and lip sync have something to hold to).
   */
  async publishAudio(track: MediaStreamTrack, label: ProducerLabel): Promise<msc.Producer> {
    const transport = await this.#sendTransport();
    const producer = await transport.produce({
      track,
      codec: this.#device.rtpCapabilities.codecs?.find((c) => c.mimeType.toLowerCase() === 'audio/opus'),
      codecOptions: { opusStereo: false, opusFec: true, opusDtx: false },
      appData: { label },
    });
    this.#producers.add(producer);
    return producer;
  }

  /** Consumes a producer in the room and resumes it; returns the consumer (its track is a wrtc track). */
  /**
   * `streamId` sets the receiver's sync group (default: the sender's RTCP CNAME, so a sender's
   * audio and video are lip-synced); a stream id of its own keeps a track out of that sync.
   */
  async consume(producerId: string, streamId?: string): Promise<msc.Consumer> {
    const transport = await this.#recvTransport();
    const info = await this.signal.request('consume', {
      transportId: transport.id,
      producerId,
      rtpCapabilities: this.#device.rtpCapabilities as Record<string, unknown>,
    });
    const consumer = await transport.consume({
      id: info.id,
      producerId: info.producerId,
      kind: info.kind,
      rtpParameters: info.rtpParameters as msc.RtpParameters,
      ...(streamId ? { streamId } : {}),
    });
    this.#consumers.add(consumer);
    consumer.observer.once('close', () => this.#consumers.delete(consumer));
    await this.signal.request('resumeConsumer', { consumerId: consumer.id });
    return consumer;
  }

  /** Closes a consumer here and at the SFU (the SFU's half is best effort: a closed socket has closed it already). */
  async closeConsumer(consumer: msc.Consumer): Promise<void> {
    const id = consumer.id;
    consumer.close();
    await this.signal.request('closeConsumer', { consumerId: id }).catch(() => undefined);
  }

  /**
   * Opens privacy mode's landmark channel: unordered and without retransmits, since a late
   * frame of landmarks is worthless once the next one is out.
   */
  async produceTracks(): Promise<msc.DataProducer> {
    const transport = await this.#sendTransport();
    const dp = await transport.produceData({ ordered: false, maxRetransmits: 0, label: 'tracks', protocol: TRACKS_PROTOCOL });
    this.#dataProducers.add(dp);
    return dp;
  }

  /** Consumes a data producer (the reenactor reading an actor's landmarks). */
  async consumeData(dataProducerId: string): Promise<msc.DataConsumer> {
    const transport = await this.#recvTransport();
    const info = await this.signal.request('consumeData', { transportId: transport.id, dataProducerId });
    const dc = await transport.consumeData({
      id: info.id,
      dataProducerId: info.dataProducerId,
      sctpStreamParameters: info.sctpStreamParameters as msc.SctpStreamParameters,
      label: info.label,
      protocol: info.protocol,
    });
    dc.binaryType = 'arraybuffer';
    this.#dataConsumers.add(dc);
    return dc;
  }

  /** The receiving transport's stats report (wrtc has no per-receiver stats: the whole connection's). */
  async recvStats(): Promise<RTCStatsReport | undefined> {
    if (!this.#recv || this.#recv.closed) return undefined;
    return this.#recv.getStats();
  }

  /** Closes tracks, producers, consumers, transports and the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.closeMedia();
    this.signal.socket.close();
  }

  /**
   * Closes the media side only (tracks, producers, consumers, peer
   * connections) and tells the server nothing, as a browser tab's
   * RTCPeerConnection.close() would: the server learns of it from DTLS/ICE.
   */
  closeMedia(): void {
    for (const p of this.#producers) {
      p.track?.stop();
      p.close();
    }
    for (const c of this.#consumers) {
      c.track.stop();
      c.close();
    }
    for (const d of this.#dataProducers) d.close();
    for (const d of this.#dataConsumers) d.close();
    this.#producers.clear();
    this.#consumers.clear();
    this.#dataProducers.clear();
    this.#dataConsumers.clear();
    this.#send?.close();
    this.#recv?.close();
  }

  async #sendTransport(): Promise<msc.Transport> {
    if (this.#closed) throw new InvalidStateError('peer closed');
    if (this.#send) return this.#send;
    const info = await this.signal.request('createWebRtcTransport', { direction: 'send' });
    const t = this.#device.createSendTransport({
      id: info.id,
      iceParameters: info.iceParameters as msc.IceParameters,
      iceCandidates: info.iceCandidates as msc.IceCandidate[],
      dtlsParameters: info.dtlsParameters as msc.DtlsParameters,
      sctpParameters: info.sctpParameters as msc.SctpParameters | undefined,
    });
    this.#wireConnect(t);
    t.on('producedata', ({ sctpStreamParameters, label, protocol }, callback, errback) => {
      this.signal
        .request('produceData', { transportId: t.id, sctpStreamParameters: pickStreamParameters(sctpStreamParameters), label: label as DataLabel, protocol })
        .then(({ dataProducerId }) => callback({ id: dataProducerId }))
        .catch(errback);
    });
    t.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
      this.signal
        .request('produce', { transportId: t.id, kind, rtpParameters: rtpParameters as never, label: appData['label'] as ProducerLabel })
        .then(({ producerId }) => callback({ id: producerId }))
        .catch(errback);
    });
    this.#send = t;
    return t;
  }

  async #recvTransport(): Promise<msc.Transport> {
    if (this.#closed) throw new InvalidStateError('peer closed');
    if (this.#recv) return this.#recv;
    const info = await this.signal.request('createWebRtcTransport', { direction: 'recv' });
    const t = this.#device.createRecvTransport({
      id: info.id,
      iceParameters: info.iceParameters as msc.IceParameters,
      iceCandidates: info.iceCandidates as msc.IceCandidate[],
      dtlsParameters: info.dtlsParameters as msc.DtlsParameters,
      sctpParameters: info.sctpParameters as msc.SctpParameters | undefined,
    });
    this.#wireConnect(t);
    this.#recv = t;
    return t;
  }

  #wireConnect(t: msc.Transport): void {
    t.on('connect', ({ dtlsParameters }, callback, errback) => {
      this.signal
        .request('connectWebRtcTransport', { transportId: t.id, dtlsParameters: dtlsParameters as never })
        .then(() => callback())
        .catch(errback);
    });
  }
}

function isLoopbackHttps(url: string): boolean {
  const u = new URL(url);
  return u.protocol === 'https:' && (u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '[::1]');
}

/** Simulcast layers, lowest first: frame size divisor and share of the top layer's bitrate. */
export const SIMULCAST_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, bitrateShare: 0.1 },
  { rid: 'h', scaleResolutionDownBy: 2, bitrateShare: 0.3 },
  { rid: 'f', scaleResolutionDownBy: 1, bitrateShare: 1 },
] as const;

export function simulcastEncodings(maxBitrate: number): RTCRtpEncodingParameters[] {
  return SIMULCAST_LAYERS.map((l) => ({ rid: l.rid, scaleResolutionDownBy: l.scaleResolutionDownBy, maxBitrate: Math.max(100_000, Math.round(maxBitrate * l.bitrateShare)) }));
}

/** The sum of the simulcast layers' bitrates. */
export function simulcastBitrate(maxBitrate: number): number {
  return simulcastEncodings(maxBitrate).reduce((sum, e) => sum + (e.maxBitrate ?? 0), 0);
}
