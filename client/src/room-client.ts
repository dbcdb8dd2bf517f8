/**
 * Browser side of the signalling protocol: joins a room with a token,
 * publishes the camera (VP8) and consumes producers. The same protocol and
 * types as the Node peers (shared/).
 *
 * One RoomClient is one connection: it does not reconnect. When the socket
 * drops, a transport fails or the room closes, `lost` resolves with the
 * reason and the owner (LiveRoom) builds a fresh client.
 */
import { io } from 'socket.io-client';
import { Device } from 'mediasoup-client';
import type { types as msc } from 'mediasoup-client';
import { SignalClient, joinRoom, type ClientSocket } from '../../shared/signal-client.ts';
import { CodedError, ErrorCodes, InvalidStateError } from '../../shared/errors.ts';
import { SIGNALLING_PATH, TRACKS_PROTOCOL, pickStreamParameters, type DataLabel, type Notification, type ProducerLabel, type ResponseData, type Role } from '../../shared/protocol.ts';
import { httpError } from './messages.ts';

/**
 * The page's room token: the one its URL carries (`?token=`, handed out by a deployment's own
 * backend), else one from the embedded token endpoint (on by default only on a loopback server).
 * Failures reject with CodedError.
 */
export async function fetchToken(room: string, role: Exclude<Role, 'reenactor'>): Promise<string> {
  const given = typeof location === 'undefined' ? null : new URLSearchParams(location.search).get('token');
  if (given) return given;
  let res: Response;
  try {
    res = await fetch(`/api/token?room=${encodeURIComponent(room)}&role=${role}`, { cache: 'no-store' });
  } catch (err) {
    throw new CodedError(ErrorCodes.INTERNAL, `server unreachable (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!res.ok) throw await httpError(res);
  const body = (await res.json()) as { token?: string };
  if (!body.token) throw new CodedError(ErrorCodes.INTERNAL, 'token endpoint answered without a token');
  return body.token;
}

export interface LostReason {
  code: string;
  message: string;
}

export class RoomClient {
  readonly signal: SignalClient;
  readonly join: ResponseData['join'];
  /** The token this connection joined with (the actor's also authorises uploads). */
  readonly token: string;
  /** Resolves once, when this connection is no longer usable. */
  readonly lost: Promise<LostReason>;
  readonly #device: Device;
  #resolveLost!: (r: LostReason) => void;
  #send?: msc.Transport;
  #recv?: msc.Transport;
  #closed = false;

  private constructor(signal: SignalClient, join: ResponseData['join'], device: Device, token: string) {
    this.signal = signal;
    this.join = join;
    this.token = token;
    this.#device = device;
    this.lost = new Promise((resolve) => (this.#resolveLost = resolve));
    signal.socket.on('disconnect', (reason) => this.#markLost({ code: 'E_NETWORK', message: `signalling connection lost (${reason})` }));
    signal.onNotification((n) => {
      if (n.method === 'roomClosed') this.#markLost({ code: n.data.code, message: n.data.message });
    });
  }

  static async connect(token: string, timeoutMs = 10_000): Promise<RoomClient> {
    // Reconnection is the owner's job (a fresh join needs a fresh peer on the server).
    const socket: ClientSocket = io({ path: SIGNALLING_PATH, transports: ['websocket'], reconnection: false, timeout: timeoutMs });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('connect_error', (e) => reject(new CodedError(ErrorCodes.INTERNAL, `signalling unreachable (${e.message})`)));
      });
      const signal = new SignalClient(socket, timeoutMs);
      const { join, prepared: device } = await joinRoom(signal, token, async (j) => {
        const device = new Device();
        await device.load({ routerRtpCapabilities: j.routerRtpCapabilities as msc.RtpCapabilities });
        return device;
      });
      return new RoomClient(signal, join, device, token);
    } catch (err) {
      socket.close();
      throw err;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  onNotification(l: (n: Notification) => void): () => void {
    return this.signal.onNotification(l);
  }

  async publish(track: MediaStreamTrack, label: ProducerLabel): Promise<msc.Producer> {
    const t = await this.#transport('send');
    const vp8 = this.#device.rtpCapabilities.codecs?.find((c) => c.mimeType.toLowerCase() === 'video/vp8');
    return t.produce({ track, codec: vp8, encodings: [{ maxBitrate: 1_500_000 }], appData: { label }, stopTracks: false });
  }

  /** The microphone as Opus: mono, in-band FEC, no DTX (the reenactor relays a steady packet clock). */
  async publishAudio(track: MediaStreamTrack): Promise<msc.Producer> {
    const t = await this.#transport('send');
    const opus = this.#device.rtpCapabilities.codecs?.find((c) => c.mimeType.toLowerCase() === 'audio/opus');
    return t.produce({ track, codec: opus, codecOptions: { opusStereo: false, opusFec: true, opusDtx: false }, appData: { label: 'microphone' }, stopTracks: false });
  }

  /** Privacy mode's landmark channel: unordered, no retransmits (a late frame of landmarks is worthless). */
  async publishTracks(): Promise<msc.DataProducer> {
    const t = await this.#transport('send');
    return t.produceData({ ordered: false, maxRetransmits: 0, label: 'tracks', protocol: TRACKS_PROTOCOL });
  }

  /**
   * The send transport's totals: bytes put on the wire (media or data, with all their
   * headers) and the current round trip, ms. Undefined before the transport exists.
   */
  async sendStats(): Promise<{ bytes: number; rttMs?: number } | undefined> {
    if (!this.#send || this.#send.closed) return undefined;
    const report = await this.#send.getStats().catch(() => undefined);
    let bytes: number | undefined;
    let rttMs: number | undefined;
    report?.forEach((s: Record<string, unknown>) => {
      if (s['type'] === 'transport' && typeof s['bytesSent'] === 'number') bytes = (bytes ?? 0) + s['bytesSent'];
      if (s['type'] === 'candidate-pair' && s['state'] === 'succeeded' && typeof s['currentRoundTripTime'] === 'number') rttMs = s['currentRoundTripTime'] * 1000;
    });
    return bytes === undefined ? undefined : { bytes, rttMs };
  }

  async consume(producerId: string): Promise<msc.Consumer> {
    const t = await this.#transport('recv');
    const info = await this.signal.request('consume', { transportId: t.id, producerId, rtpCapabilities: this.#device.rtpCapabilities as Record<string, unknown> });
    const consumer = await t.consume({ id: info.id, producerId: info.producerId, kind: info.kind, rtpParameters: info.rtpParameters as msc.RtpParameters });
    await this.signal.request('resumeConsumer', { consumerId: consumer.id });
    return consumer;
  }

  /** Closes transports (and with them producers and consumers) and the socket. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#send?.close();
    this.#recv?.close();
    this.signal.socket.close();
    this.#resolveLost({ code: 'E_CLOSED', message: 'closed' });
  }

  #markLost(reason: LostReason): void {
    this.#resolveLost(reason);
  }

  async #transport(direction: 'send' | 'recv'): Promise<msc.Transport> {
    if (this.#closed) throw new InvalidStateError('room client closed');
    const existing = direction === 'send' ? this.#send : this.#recv;
    if (existing) return existing;
    const info = await this.signal.request('createWebRtcTransport', { direction });
    const params = {
      id: info.id,
      iceParameters: info.iceParameters as msc.IceParameters,
      iceCandidates: info.iceCandidates as msc.IceCandidate[],
      dtlsParameters: info.dtlsParameters as msc.DtlsParameters,
      sctpParameters: info.sctpParameters as msc.SctpParameters | undefined,
    };
    const t = direction === 'send' ? this.#device.createSendTransport(params) : this.#device.createRecvTransport(params);
    t.on('connect', ({ dtlsParameters }, cb, eb) => {
      this.signal.request('connectWebRtcTransport', { transportId: t.id, dtlsParameters: dtlsParameters as never }).then(() => cb(), eb);
    });
    t.on('connectionstatechange', (state) => {
      if (state === 'failed' || state === 'closed') this.#markLost({ code: 'E_NETWORK', message: `media connection ${state}` });
    });
    if (direction === 'send') {
      t.on('produce', ({ kind, rtpParameters, appData }, cb, eb) => {
        this.signal
          .request('produce', { transportId: t.id, kind, rtpParameters: rtpParameters as never, label: appData['label'] as ProducerLabel })
          .then(({ producerId }) => cb({ id: producerId }), eb);
      });
      t.on('producedata', ({ sctpStreamParameters, label, protocol }, cb, eb) => {
        this.signal
          .request('produceData', { transportId: t.id, sctpStreamParameters: pickStreamParameters(sctpStreamParameters), label: label as DataLabel, protocol })
          .then(({ dataProducerId }) => cb({ id: dataProducerId }), eb);
      });
      this.#send = t;
    } else {
      this.#recv = t;
    }
    return t;
  }
}
