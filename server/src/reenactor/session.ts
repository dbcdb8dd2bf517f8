/**
 * One reenactor session, inside a reenactor child process: a WebRTC peer that
 * consumes the actor's camera, runs each decoded frame through the stage, and
 * publishes the result as the room's "synthesized" producer.
 *
 * Frame path: RTCVideoSink (I420) → LatestFrameSlot (depth 1) → stage →
 * RTCVideoSource → VP8 → mediasoup.
 *
 * Privacy mode (source 'tracks'): the actor sends no video. The session
 * consumes the actor's landmark data channel instead, and each decoded
 * message takes a frame's place in the same slot and stage. A malformed
 * message is counted and dropped; it never reaches the stage.
 *
 * Sound: when the actor publishes a microphone (in either mode), the session
 * consumes it and republishes it as the "synthesized" audio producer, from the
 * same peer connection as the video, through an AudioRelay that delays it by
 * the video's measured arrival-to-encoder time (audio-relay.ts).
 */
import { SynthesizedPublisher } from './video-publisher.ts';
import type { Logger } from '../logger.ts';
import { NodePeer } from '../rtc/node-peer.ts';
import { RTCVideoSink, RTCVideoSource, type I420Frame } from '../rtc/wrtc.ts';
import { STAMP_ID_BITS, readStamp, writeStamp } from '../../../shared/stamp.ts';
import { TrackWireError, decodeTrackMessage, type TrackMessage } from '../../../shared/track-wire.ts';
import { InvalidStateError } from '../../../shared/errors.ts';
import { LatestFrameSlot } from './frame-slot.ts';
import type * as msc from 'mediasoup-client/types';
import { StallWatch } from './stall-watch.ts';
import type { SessionControl, SessionSpec, SessionStats } from './ipc.ts';
import type { DropReason, FrameMeta, I420, Stage } from './stage.ts';
import { TypedEmitter } from '../util/emitter.ts';
import { AudioRelay, ReceiveSkew } from './audio-relay.ts';
import { median } from '../util/stats.ts';

/** Landmark messages accepted per second, sustained (a camera sends at most 30 to 60). */
const TRACK_MAX_RATE = 90;
/** Messages that may arrive back to back, e.g. after a network stall. */
const TRACK_BURST = 15;
/** Frames whose arrival-to-encoder time sets the voice's delay (median): 0.3 s at 30 fps, 0.6 s at 15. */
const DELAY_WINDOW = 9;
/** How often the receive-path skew between the actor's voice and picture is read, ms. */
const SKEW_EVERY_MS = 1000;
/** The skew readings kept (their lowest is used): five seconds. */
const SKEW_WINDOW = 5;

type Queued = { frame: I420; meta: FrameMeta } | { track: TrackMessage; meta: FrameMeta };

export interface ReenactSessionEvents {
  /** The actor's producer or the room went away; the owner should close us. */
  ended: [reason: string];
  [key: string]: unknown[];
}

export class ReenactSession extends TypedEmitter<ReenactSessionEvents> {
  readonly spec: SessionSpec;
  readonly #peer: NodePeer;
  readonly #stage: Stage;
  readonly #log: Logger;
  #sink: InstanceType<typeof RTCVideoSink> | undefined;
  /** The actor camera's consumer (camera sessions); replaced when the receiver is renewed. */
  #camera: msc.Consumer | undefined;
  #resubscribing = false;
  readonly #source: InstanceType<typeof RTCVideoSource>;
  readonly #publisher: SynthesizedPublisher;
  readonly #slot: LatestFrameSlot<Queued>;
  #seq = 0;
  #framesIn = 0;
  #framesOut = 0;
  #errors = 0;
  #badMessages = 0;
  #floodDrops = 0;
  /** Token bucket for landmark messages: a flooding sender cannot eat the media thread of other sessions. */
  #tokens = TRACK_BURST;
  #tokensAt = performance.now();
  readonly #drops: Record<DropReason, number> = { superseded: 0, stale: 0, skipped: 0, error: 0 };
  #stageMs: Record<string, number[]> = {};
  #serverMs: number[] = [];
  /** The last DELAY_WINDOW arrival-to-encoder times, for the voice's delay. */
  readonly #recentMs: number[] = [];
  #audio: AudioRelay | undefined;
  #audioProducerId: string | undefined;
  #audioStarting: Promise<void> | undefined;
  #audioTrackId: string | undefined;
  #videoTrackId: string | undefined;
  readonly #skews: number[] = [];
  readonly #skew = new ReceiveSkew();
  #skewTimer: NodeJS.Timeout | undefined;
  /** Asks for a keyframe when the actor's video stops (stall-watch.ts). */
  readonly #stall = new StallWatch();
  #stallTimer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(spec: SessionSpec, peer: NodePeer, stage: Stage, log: Logger, sink: InstanceType<typeof RTCVideoSink> | undefined, source: InstanceType<typeof RTCVideoSource>, publisher: SynthesizedPublisher) {
    super();
    this.spec = spec;
    this.#peer = peer;
    this.#stage = stage;
    this.#log = log;
    this.#sink = sink;
    this.#source = source;
    this.#publisher = publisher;
    this.#slot = new LatestFrameSlot<Queued>((q) => this.#process(q));
    if (sink) sink.onframe = (ev: { frame: I420Frame }) => this.#onFrame(ev.frame);
  }

  static async create(spec: SessionSpec, stage: Stage, log: Logger): Promise<ReenactSession> {
    const peer = await NodePeer.connect({ url: spec.url, token: spec.token });
    let sink: InstanceType<typeof RTCVideoSink> | undefined;
    let publisher: SynthesizedPublisher | undefined;
    let videoTrackId: string | undefined;
    try {
      let tracks: Awaited<ReturnType<NodePeer['consumeData']>> | undefined;
      let camera: msc.Consumer | undefined;
      if (spec.source === 'tracks') tracks = await peer.consumeData(spec.producerId);
      else {
        camera = await peer.consume(spec.producerId, 'actor-camera');
        videoTrackId = camera.track.id;
        sink = new RTCVideoSink(camera.track);
      }
      // A rendered picture has no sensor noise: libwebrtc's VP8 denoiser would only blur it, and
      // it averages away the provenance mark's slow changes in still regions.
      const source = new RTCVideoSource({ needsDenoising: false });
      publisher = await SynthesizedPublisher.start(peer, source, { bitrate: spec.outputBitrate, allowed: spec.simulcast, profile: spec.output, log });
      const session = new ReenactSession(spec, peer, stage, log, sink, source, publisher);
      session.#videoTrackId = videoTrackId;
      if (camera) {
        session.#camera = camera;
        session.#watchStalls();
      }
      tracks?.on('message', (data: unknown) => session.#onTrackMessage(data));
      tracks?.on('transportclose', () => session.safeEmit('ended', 'transport closed'));
      const mic = peer.roomProducers.find((p) => p.label === 'microphone');
      if (mic) session.#startAudio(mic.producerId);
      peer.onNotification((n) => {
        if (n.method === 'newProducer' && n.data.label === 'microphone') session.#startAudio(n.data.producerId);
        if (n.method === 'producerClosed' && n.data.producerId === session.#audioProducerId) session.#stopAudio();
        if (n.method === 'producerClosed' && n.data.producerId === spec.producerId) session.safeEmit('ended', 'actor camera closed');
        if (n.method === 'roomClosed') session.safeEmit('ended', `room closed: ${n.data.code}`);
      });
      peer.signal.socket.on('disconnect', () => session.safeEmit('ended', 'signalling disconnected'));
      return session;
    } catch (err) {
      sink?.stop();
      publisher?.close();
      peer.close();
      throw err;
    }
  }

  /** Stats since the last call (timings are drained). */
  takeStats(): SessionStats {
    const stats: SessionStats = {
      sessionId: this.spec.sessionId,
      framesIn: this.#framesIn,
      framesOut: this.#framesOut,
      dropped: { ...this.#drops, superseded: this.#slot.dropped, error: this.#errors, ...(this.#badMessages ? { malformed: this.#badMessages } : {}), ...(this.#floodDrops ? { flood: this.#floodDrops } : {}) },
      stageMs: this.#stageMs,
      serverMs: this.#serverMs,
      ...this.#stage.status,
      ...(this.#audio ? { audio: { ...this.#audio.stats(), ...(this.#skews.length ? { inputSkewMs: this.#inputSkew() } : {}) } } : {}),
    };
    this.#stageMs = {};
    this.#serverMs = [];
    return stats;
  }

  /** Applies a session control: the bitrate ceiling to the publisher, the rest (target, neutral, options) to the stage. */
  control(c: SessionControl): Promise<void> {
    if (this.#closed) return Promise.reject(new InvalidStateError('session closed'));
    if (c.type === 'setMaxBitrate') return this.#publisher.setMaxBitrate(c.bps);
    return this.#stage.control(c);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#slot.close();
    clearInterval(this.#skewTimer);
    clearInterval(this.#stallTimer);
    this.#audio?.close();
    this.#sink?.stop();
    this.#publisher.close();
    this.#stage.close();
    this.#peer.close();
    this.removeAllListeners();
  }

  /**
   * Consumes the actor's microphone and relays it. The output track is published once, on the
   * first microphone; a later one (the actor re-joined its mic) feeds the same track.
   */
  #startAudio(producerId: string): void {
    if (this.#closed || this.#audioProducerId === producerId) return;
    this.#audioProducerId = producerId;
    const previous = this.#audioStarting ?? Promise.resolve();
    this.#audioStarting = previous
      .then(async () => {
        const consumer = await this.#peer.consume(producerId, 'actor-microphone');
        if (this.#closed || this.#audioProducerId !== producerId) return;
        if (!this.#audio) {
          const relay = new AudioRelay(this.#recentMs.length ? median(this.#recentMs) : this.spec.budgetMs);
          this.#audio = relay;
          await this.#peer.publishAudio(relay.track, 'synthesized');
        }
        this.#audio.attach(consumer.track);
        this.#audioTrackId = consumer.track.id;
        this.#skews.length = 0;
        this.#skewTimer ??= setInterval(() => void this.#readSkew(), SKEW_EVERY_MS);
        this.#log.info('relaying the actor microphone', { producerId });
      })
      .catch((err: unknown) => {
        // The face goes on without the voice; the failure is visible in the logs and in audio stats.
        if (!this.#closed) this.#log.warn('could not relay the actor microphone', { err, producerId });
      });
  }

  /**
   * The voice waits as long as the picture: its processing here (arrival to encoder, median over
   * the last second) plus how far the voice ran ahead of the picture on the way in.
   */
  #updateAudioDelay(): void {
    if (!this.#audio || !this.#recentMs.length) return;
    this.#audio.setTargetDelay(median(this.#recentMs) + this.#inputSkew());
  }

  /**
   * The lowest of the last few skew readings: a burst of slow frames (a keyframe wait or the
   * bandwidth ramp at the start of a browser's stream) inflates single readings for seconds, and
   * holding the voice for it made it later than the picture; the low envelope follows real skew.
   */
  #inputSkew(): number {
    return this.#skews.length ? Math.min(...this.#skews) : 0;
  }

  async #readSkew(): Promise<void> {
    if (this.#closed || !this.#audioTrackId || !this.#videoTrackId) return;
    const skew = this.#skew.update(await this.#peer.recvStats().catch(() => undefined), this.#audioTrackId, this.#videoTrackId);
    if (skew === undefined || Math.abs(skew) > 1000) return;
    this.#skews.push(skew);
    if (this.#skews.length > SKEW_WINDOW) this.#skews.shift();
    this.#updateAudioDelay();
  }

  #stopAudio(): void {
    this.#audioProducerId = undefined;
    this.#audio?.detach();
  }

  #watchStalls(): void {
    this.#stallTimer = setInterval(() => {
      if (this.#closed || this.#resubscribing || !this.#camera) return;
      const action = this.#stall.due(performance.now());
      if (action === 'keyframe') {
        this.#peer.signal.request('requestKeyFrame', { consumerId: this.#camera.id }).then(
          (r) => this.#stall.answered(r.producerLive),
          () => undefined,
        );
      } else if (action === 'frozen') {
        // Both directions sat in overflowing sockets: renew the receiver and the sender.
        this.#log.info('this process was frozen; renewing the actor video receiver and the synthesized sender', this.#stall.counts);
        this.#resubscribing = true;
        void Promise.all([this.#resubscribe(), this.#publisher.renew()]).finally(() => {
          this.#resubscribing = false;
        });
      } else if (action === 'resubscribe') {
        this.#log.info('actor video stalled while the SFU receives the camera; renewing the receiver', this.#stall.counts);
        this.#resubscribing = true;
        void this.#resubscribe().finally(() => {
          this.#resubscribing = false;
        });
      }
    }, 200);
    this.#stallTimer.unref();
  }

  /** Consumes the actor camera again (a fresh receiver) and drops the old consumer. */
  async #resubscribe(): Promise<void> {
    const old = this.#camera;
    try {
      const camera = await this.#peer.consume(this.spec.producerId, 'actor-camera');
      if (this.#closed) {
        await this.#peer.closeConsumer(camera);
        return;
      }
      const sink = new RTCVideoSink(camera.track);
      sink.onframe = (ev: { frame: I420Frame }) => this.#onFrame(ev.frame);
      this.#sink?.stop();
      this.#sink = sink;
      this.#camera = camera;
      this.#videoTrackId = camera.track.id;
      if (old) await this.#peer.closeConsumer(old);
      this.#log.info('actor video receiver renewed', { consumerId: camera.id });
    } catch (err) {
      this.#log.warn('could not renew the actor video receiver', { err });
    }
  }

  #onFrame(frame: I420Frame): void {
    if (this.#closed) return;
    this.#stall.frame(performance.now());
    this.#framesIn++;
    this.#slot.offer({ frame, meta: { seq: this.#seq++, arrivalMs: performance.now() } });
  }

  #onTrackMessage(data: unknown): void {
    if (this.#closed) return;
    this.#framesIn++;
    const now = performance.now();
    this.#tokens = Math.min(TRACK_BURST, this.#tokens + ((now - this.#tokensAt) * TRACK_MAX_RATE) / 1000);
    this.#tokensAt = now;
    if (this.#tokens < 1) {
      // Dropped before any decoding: the cost of a flood stays at a counter increment.
      this.#floodDrops++;
      return;
    }
    this.#tokens -= 1;
    let track: TrackMessage;
    try {
      if (!(data instanceof ArrayBuffer)) throw new TrackWireError(`expected a binary message, got ${typeof data}`);
      track = decodeTrackMessage(data);
    } catch (err) {
      this.#badMessages++;
      if (this.#badMessages === 1 || this.#badMessages % 100 === 0) this.#log.warn('malformed track message dropped', { err, malformed: this.#badMessages });
      return;
    }
    this.#slot.offer({ track, meta: { seq: this.#seq++, arrivalMs: performance.now() } });
  }

  async #process(q: Queued): Promise<void> {
    if (this.#closed) throw new InvalidStateError('session closed');
    try {
      const out = 'frame' in q ? await this.#stage.process(q.frame, q.meta) : await this.#stage.processTrack(q.track, q.meta);
      if (this.#closed) return;
      if ('dropped' in out) {
        this.#drops[out.dropped]++;
        return;
      }
      if (this.spec.measurement) {
        const id = 'frame' in q ? readStamp(q.frame.data, q.frame.width) : q.track.frameId & (2 ** STAMP_ID_BITS - 1);
        if (id !== null) writeStamp(out.frame.data, out.frame.width, id);
      }
      this.#source.onFrame(out.frame);
      this.#publisher.frame(out.frame.width, out.frame.height);
      this.#framesOut++;
      const ms = performance.now() - q.meta.arrivalMs;
      this.#serverMs.push(ms);
      this.#recentMs.push(ms);
      if (this.#recentMs.length > DELAY_WINDOW) this.#recentMs.shift();
      this.#updateAudioDelay();
      for (const [k, v] of Object.entries(out.timings)) (this.#stageMs[k] ??= []).push(v);
    } catch (err) {
      this.#errors++;
      if (this.#errors === 1 || this.#errors % 100 === 0) this.#log.error('stage failed on a frame', { err, errors: this.#errors });
    }
  }
}
