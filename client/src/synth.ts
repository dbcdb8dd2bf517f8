/**
 * Plays a room's synthesized video in a <video> element and follows
 * replacements (a reenactor restart publishes a new producer). With
 * `lowLatency` the receiver's jitter buffer target is set to
 * `jitterBufferTargetMs` (RTCRtpReceiver.jitterBufferTarget, or the older
 * playoutDelayHint in seconds), which asks the browser to hold as little
 * video as it can before playing it.
 *
 * With `audio`, the room's synthesized audio (the actor's voice, delayed by
 * the reenactor to match the face) plays from the same element. Both come
 * from one reenactor peer, so their consumers share its RTCP CNAME, which
 * mediasoup-client uses as the stream id: the browser lip-syncs them from
 * their sender reports. Where the autoplay policy refuses sound, the element
 * plays muted and 'audioblocked' fires; unmute() from a click starts it.
 *
 * One SynthWatcher per RoomClient; close() stops following and releases the
 * consumers. The last frame stays on screen while waiting for a replacement.
 */
import type { types as msc } from 'mediasoup-client';
import type { Notification } from '../../shared/protocol.ts';
import { Emitter } from './emitter.ts';
import type { RoomClient } from './room-client.ts';

export type SynthState = 'waiting' | 'playing' | 'ended';

export interface SynthOptions {
  video: HTMLVideoElement;
  lowLatency: boolean;
  /** Jitter buffer target in ms when lowLatency is on. Default 0. */
  jitterBufferTargetMs?: number;
  /** Play the room's synthesized audio too (viewer and OBS pages; never the actor's own page). */
  audio?: boolean;
}

type SynthEvents = { state: [SynthState]; consumer: [msc.Consumer]; audioblocked: []; audioplaying: [] };

/** What the receiver was asked for and what it reports back, for the stats line and the docs. */
export interface LatencyHint {
  api: 'jitterBufferTarget' | 'playoutDelayHint' | 'none';
  requestedMs: number | null;
}

export function applyLowLatency(receiver: RTCRtpReceiver | undefined, targetMs: number): LatencyHint {
  if (!receiver) return { api: 'none', requestedMs: null };
  try {
    if ('jitterBufferTarget' in receiver) {
      receiver.jitterBufferTarget = targetMs;
      return { api: 'jitterBufferTarget', requestedMs: targetMs };
    }
    if ('playoutDelayHint' in receiver) {
      (receiver as RTCRtpReceiver & { playoutDelayHint: number }).playoutDelayHint = targetMs / 1000;
      return { api: 'playoutDelayHint', requestedMs: targetMs };
    }
  } catch {
    // Out-of-range values throw RangeError; treat as unsupported.
  }
  return { api: 'none', requestedMs: null };
}

export class SynthWatcher {
  readonly #client: RoomClient;
  readonly #opts: SynthOptions;
  readonly #events = new Emitter<SynthEvents>();
  readonly #off: () => void;
  #consumer: msc.Consumer | undefined;
  #audio: msc.Consumer | undefined;
  #audioState: 'none' | 'playing' | 'blocked' = 'none';
  #state: SynthState = 'waiting';
  #hint: LatencyHint = { api: 'none', requestedMs: null };
  #closed = false;

  private constructor(client: RoomClient, opts: SynthOptions) {
    this.#client = client;
    this.#opts = opts;
    this.#off = client.onNotification((n) => this.#onNotification(n));
  }

  /** Starts watching; attaches at once when the room already has synthesized video. */
  static async start(client: RoomClient, opts: SynthOptions): Promise<SynthWatcher> {
    const w = new SynthWatcher(client, opts);
    const existing = client.join.producers.find((p) => p.label === 'synthesized' && p.kind === 'video');
    if (existing) await w.#attach(existing.producerId);
    const voice = client.join.producers.find((p) => p.label === 'synthesized' && p.kind === 'audio');
    if (voice && opts.audio) await w.#attachAudio(voice.producerId).catch(() => undefined);
    return w;
  }

  get state(): SynthState {
    return this.#state;
  }

  get consumer(): msc.Consumer | undefined {
    return this.#consumer;
  }

  /** Whether sound is playing, held back by the autoplay policy, or absent (no voice in the room). */
  get audioState(): 'none' | 'playing' | 'blocked' {
    return this.#audioState;
  }

  /** Starts the sound after the autoplay policy held it back (call from a click). */
  async unmute(): Promise<void> {
    const video = this.#opts.video;
    video.muted = false;
    await video.play();
    this.#audioState = 'playing';
    this.#events.safeEmit('audioplaying');
  }

  get latencyHint(): LatencyHint {
    return this.#hint;
  }

  on<K extends keyof SynthEvents>(event: K, listener: (...args: SynthEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#off();
    this.#consumer?.close();
    this.#consumer = undefined;
    this.#audio?.close();
    this.#audio = undefined;
    this.#events.removeAll();
  }

  #set(s: SynthState): void {
    if (this.#state === s) return;
    this.#state = s;
    this.#events.safeEmit('state', s);
  }

  #onNotification(n: Notification): void {
    switch (n.method) {
      case 'newProducer':
        if (n.data.label === 'synthesized' && n.data.kind === 'video') void this.#attach(n.data.producerId).catch(() => this.#set('waiting'));
        if (n.data.label === 'synthesized' && n.data.kind === 'audio' && this.#opts.audio) void this.#attachAudio(n.data.producerId).catch(() => undefined);
        break;
      case 'producerClosed':
        if (this.#audio?.producerId === n.data.producerId) {
          this.#audio.close();
          this.#audio = undefined;
          void this.#play();
        }
        if (this.#consumer?.producerId === n.data.producerId) {
          this.#consumer.close();
          this.#consumer = undefined;
          this.#set('waiting');
        }
        break;
      case 'roomClosed':
        this.#set('ended');
        break;
      case 'serverDraining':
      case 'peerLeft':
      case 'sessionStatus':
      case 'sessionStats':
      case 'targetChanged':
      case 'degradeChanged':
        break;
      default: {
        const never: never = n;
        void never;
      }
    }
  }

  /** Consumes a producer unless the watcher closed meanwhile (then the consumer is released). */
  async #consume(producerId: string): Promise<msc.Consumer | undefined> {
    if (this.#closed) return undefined;
    const consumer = await this.#client.consume(producerId);
    if (!this.#closed) return consumer;
    consumer.close();
    return undefined;
  }

  async #attach(producerId: string): Promise<void> {
    const consumer = await this.#consume(producerId);
    if (!consumer) return;
    this.#consumer?.close();
    this.#consumer = consumer;
    if (this.#opts.lowLatency) this.#hint = applyLowLatency(consumer.rtpReceiver, this.#opts.jitterBufferTargetMs ?? 0);
    await this.#play();
    this.#events.safeEmit('consumer', consumer);
    this.#set('playing');
  }

  async #attachAudio(producerId: string): Promise<void> {
    const consumer = await this.#consume(producerId);
    if (!consumer) return;
    this.#audio?.close();
    this.#audio = consumer;
    await this.#play();
  }

  /** Puts the current tracks in the element and plays them, with sound where the browser allows it. */
  async #play(): Promise<void> {
    const video = this.#opts.video;
    const tracks = [this.#consumer?.track, this.#audio?.track].filter((t): t is MediaStreamTrack => t !== undefined);
    if (!tracks.length) return;
    video.srcObject = new MediaStream(tracks);
    if (!this.#audio) {
      await video.play().catch(() => undefined);
      return;
    }
    video.muted = false;
    try {
      await video.play();
      this.#audioState = 'playing';
      this.#events.safeEmit('audioplaying');
    } catch {
      // Autoplay with sound was refused: play the picture muted and ask for a click.
      video.muted = true;
      await video.play().catch(() => undefined);
      this.#audioState = 'blocked';
      this.#events.safeEmit('audioblocked');
    }
  }
}
