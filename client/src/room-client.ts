/**
 * Browser side of the signalling protocol: joins a room with a token,
 * publishes the camera (VP8) and consumes producers. The same protocol and
 * types as the Node peers (shared/).
 */
import { io } from 'socket.io-client';
import { Device } from 'mediasoup-client';
import type { types as msc } from 'mediasoup-client';
import { SignalClient, type ClientSocket } from '../../shared/signal-client.ts';
import { SIGNALLING_PATH, type Notification, type ProducerLabel, type ResponseData, type Role } from '../../shared/protocol.ts';

export async function fetchToken(room: string, role: Exclude<Role, 'reenactor'>): Promise<string> {
  const res = await fetch(`/api/token?room=${encodeURIComponent(room)}&role=${role}`);
  const body = (await res.json()) as { token?: string; error?: { code: string; message: string } };
  if (!res.ok || !body.token) throw new Error(`${body.error?.code ?? res.status}: ${body.error?.message ?? 'no token'}`);
  return body.token;
}

export class RoomClient {
  readonly signal: SignalClient;
  readonly join: ResponseData['join'];
  readonly #device: Device;
  #send?: msc.Transport;
  #recv?: msc.Transport;

  private constructor(signal: SignalClient, join: ResponseData['join'], device: Device) {
    this.signal = signal;
    this.join = join;
    this.#device = device;
  }

  static async connect(token: string): Promise<RoomClient> {
    const socket: ClientSocket = io({ path: SIGNALLING_PATH, transports: ['websocket'] });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', (e) => reject(e));
    });
    const signal = new SignalClient(socket);
    const join = await signal.request('join', { token });
    const device = new Device();
    await device.load({ routerRtpCapabilities: join.routerRtpCapabilities as msc.RtpCapabilities });
    return new RoomClient(signal, join, device);
  }

  onNotification(l: (n: Notification) => void): () => void {
    return this.signal.onNotification(l);
  }

  async publish(track: MediaStreamTrack, label: ProducerLabel): Promise<msc.Producer> {
    const t = await this.#transport('send');
    const vp8 = this.#device.rtpCapabilities.codecs?.find((c) => c.mimeType.toLowerCase() === 'video/vp8');
    return t.produce({ track, codec: vp8, encodings: [{ maxBitrate: 1_500_000 }], appData: { label } });
  }

  async consume(producerId: string): Promise<msc.Consumer> {
    const t = await this.#transport('recv');
    const info = await this.signal.request('consume', { transportId: t.id, producerId, rtpCapabilities: this.#device.rtpCapabilities as Record<string, unknown> });
    const consumer = await t.consume({ id: info.id, producerId: info.producerId, kind: info.kind, rtpParameters: info.rtpParameters as msc.RtpParameters });
    await this.signal.request('resumeConsumer', { consumerId: consumer.id });
    return consumer;
  }

  close(): void {
    this.#send?.close();
    this.#recv?.close();
    this.signal.socket.close();
  }

  async #transport(direction: 'send' | 'recv'): Promise<msc.Transport> {
    const existing = direction === 'send' ? this.#send : this.#recv;
    if (existing) return existing;
    const info = await this.signal.request('createWebRtcTransport', { direction });
    const params = {
      id: info.id,
      iceParameters: info.iceParameters as msc.IceParameters,
      iceCandidates: info.iceCandidates as msc.IceCandidate[],
      dtlsParameters: info.dtlsParameters as msc.DtlsParameters,
    };
    const t = direction === 'send' ? this.#device.createSendTransport(params) : this.#device.createRecvTransport(params);
    t.on('connect', ({ dtlsParameters }, cb, eb) => {
      this.signal.request('connectWebRtcTransport', { transportId: t.id, dtlsParameters: dtlsParameters as never }).then(() => cb(), eb);
    });
    if (direction === 'send') {
      t.on('produce', ({ kind, rtpParameters, appData }, cb, eb) => {
        this.signal
          .request('produce', { transportId: t.id, kind, rtpParameters: rtpParameters as never, label: appData['label'] as ProducerLabel })
          .then(({ producerId }) => cb({ id: producerId }), eb);
      });
      this.#send = t;
    } else {
      this.#recv = t;
    }
    return t;
  }
}

/** Attaches the room's synthesized video to an element, following replacements (e.g. after a reenactor restart). */
export async function watchSynthesized(client: RoomClient, video: HTMLVideoElement, onState: (text: string) => void): Promise<void> {
  const attach = async (producerId: string): Promise<void> => {
    const consumer = await client.consume(producerId);
    video.srcObject = new MediaStream([consumer.track]);
    await video.play().catch(() => undefined);
    onState('live');
  };
  client.onNotification((n) => {
    switch (n.method) {
      case 'newProducer':
        if (n.data.label === 'synthesized') void attach(n.data.producerId);
        break;
      case 'sessionStatus':
        onState(n.data.state + (n.data.code ? ` (${n.data.code})` : ''));
        break;
      case 'roomClosed':
        onState(`room closed: ${n.data.code}`);
        break;
      case 'producerClosed':
      case 'peerLeft':
        break;
      default: {
        const never: never = n;
        void never;
      }
    }
  });
  const existing = client.join.producers.find((p) => p.label === 'synthesized');
  if (existing) await attach(existing.producerId);
  else onState('waiting for the actor');
}
