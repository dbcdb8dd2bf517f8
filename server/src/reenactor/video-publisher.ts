/**
 * The synthesized video's producer, with simulcast where the frame can carry
 * it. libwebrtc encodes only as many simulcast layers as a frame's size
 * allows, and drops the top ones first: a 256² face sent as three layers
 * reaches viewers as 64². So the layers are used only for frames of at least
 * SIMULCAST_MIN_PIXELS (960×540, where libwebrtc keeps all three), and when
 * the output's size crosses that line (the actor picks another profile) the
 * video is published again with the other encodings: the old producer closes
 * (a peer has one synthesized video) and a new track from the same source is
 * produced; viewers follow producerClosed/newProducer, a gap of a few frames.
 */
import type * as msc from 'mediasoup-client/types';
import type { Logger } from '../logger.ts';
import type { NodePeer } from '../rtc/node-peer.ts';
import type { RTCVideoSource } from '../rtc/wrtc.ts';
import type { OutputProfile } from '../../../shared/protocol.ts';

/** The smallest frame sent as simulcast: 960×540. */
export const SIMULCAST_MIN_PIXELS = 960 * 540;

export function wantsSimulcast(width: number, height: number): boolean {
  return width * height >= SIMULCAST_MIN_PIXELS;
}

/** Whether a profile's output is sent as simulcast before its first frame is seen (`frame` depends on the picture). */
export function profileWantsSimulcast(profile: OutputProfile): boolean {
  return profile === '720p' || profile === '1080p' || profile === '720x1280';
}

export class SynthesizedPublisher {
  readonly #peer: NodePeer;
  readonly #source: InstanceType<typeof RTCVideoSource>;
  readonly #bitrate: number;
  readonly #allowed: boolean;
  readonly #log: Logger;
  #producer: msc.Producer;
  #track: MediaStreamTrack;
  #simulcast: boolean;
  /** A republish is under way. */
  #switching = false;
  /** The encodings a republish failed for: not retried until the frame size moves back and forth. */
  #failedFor: boolean | null = null;
  #closed = false;
  /** The ceiling the server set from the slowest viewer (null: the configured bitrate). */
  #ceiling: number | null = null;
  /** The maximum bitrate the current producer was published with. */
  #published: number;

  private constructor(peer: NodePeer, source: InstanceType<typeof RTCVideoSource>, track: MediaStreamTrack, bitrate: number, allowed: boolean, log: Logger, producer: msc.Producer, simulcast: boolean) {
    this.#peer = peer;
    this.#source = source;
    this.#track = track;
    this.#bitrate = bitrate;
    this.#allowed = allowed;
    this.#log = log;
    this.#producer = producer;
    this.#simulcast = simulcast;
    this.#published = bitrate;
  }

  /** Publishes a track of `source`; with `allowed` false it is never simulcast (REENACT_SIMULCAST=0). */
  static async start(peer: NodePeer, source: InstanceType<typeof RTCVideoSource>, opts: { bitrate: number; allowed: boolean; profile: OutputProfile; log: Logger }): Promise<SynthesizedPublisher> {
    const simulcast = opts.allowed && profileWantsSimulcast(opts.profile);
    const track = source.createTrack();
    try {
      const producer = await peer.publishVideo(track, 'synthesized', opts.bitrate, simulcast);
      return new SynthesizedPublisher(peer, source, track, opts.bitrate, opts.allowed, opts.log, producer, simulcast);
    } catch (err) {
      track.stop();
      throw err;
    }
  }

  get simulcast(): boolean {
    return this.#simulcast;
  }

  get producerId(): string {
    return this.#producer.id;
  }

  /** The bitrate a new producer is published with: a single layer follows the ceiling. */
  #bitrateFor(simulcast: boolean): number {
    return simulcast ? this.#bitrate : Math.min(this.#bitrate, this.#ceiling ?? this.#bitrate);
  }

  /** The maximum bitrate the synthesized video is published with now. */
  get maxBitrate(): number {
    return this.#published;
  }

  /**
   * Holds single-layer video to `bps` (at most the configured bitrate), so a viewer whose link
   * cannot carry the full stream gets a coarser picture instead of a frozen one. libwebrtc in
   * @roamhq/wrtc refuses RTCRtpSender.setParameters (InvalidStateError), so a new ceiling is
   * applied by publishing again with it, like a simulcast switch: viewers follow the new
   * producer after a gap of a few frames, which is why the server changes it in coarse steps.
   * Simulcast video keeps its layers: there the SFU gives each viewer the one its link carries.
   */
  async setMaxBitrate(bps: number): Promise<void> {
    const ceiling = Math.min(this.#bitrate, Math.max(1, Math.round(bps)));
    this.#ceiling = ceiling < this.#bitrate ? ceiling : null;
    if (this.#simulcast || this.#switching || this.#closed || this.#bitrateFor(false) === this.#published) return;
    this.#switching = true;
    try {
      await this.#republish(false);
    } finally {
      this.#switching = false;
    }
  }

  /**
   * Publishes again with the same settings: a fresh sender, after this process was frozen long
   * enough for libwebrtc's send side to stall on feedback that never came.
   */
  async renew(): Promise<void> {
    if (this.#switching || this.#closed) return;
    this.#switching = true;
    try {
      await this.#republish(this.#simulcast);
    } finally {
      this.#switching = false;
    }
  }

  /** Sees each output frame's size; republishes in the background when it crosses the simulcast line. */
  frame(width: number, height: number): void {
    const want = this.#allowed && wantsSimulcast(width, height);
    if (want === this.#simulcast) this.#failedFor = null;
    if (want === this.#simulcast || want === this.#failedFor || this.#switching || this.#closed) return;
    this.#switching = true;
    void this.#republish(want).finally(() => {
      this.#switching = false;
    });
  }

  async #republish(simulcast: boolean): Promise<void> {
    const old = this.#producer;
    try {
      // Closing the producer stops its track; the next one is a fresh track of the same source.
      await this.#peer.signal.request('closeProducer', { producerId: old.id });
      old.close();
      const track = this.#source.createTrack();
      this.#track = track;
      if (this.#closed) return;
      const bitrate = this.#bitrateFor(simulcast);
      this.#producer = await this.#peer.publishVideo(track, 'synthesized', bitrate, simulcast);
      this.#simulcast = simulcast;
      this.#published = bitrate;
      this.#log.info('synthesized video republished', { simulcast, bitrate, producerId: this.#producer.id });
    } catch (err) {
      this.#failedFor = simulcast;
      this.#log.warn('could not republish the synthesized video', { err, simulcast });
      // The old producer is gone: publish again as it was, so viewers keep a picture.
      if (this.#producer === old && old.closed && !this.#closed) {
        this.#producer = await this.#peer.publishVideo(this.#track, 'synthesized', this.#published, this.#simulcast).catch((e: unknown) => {
          this.#log.error('the synthesized video could not be published again', { err: e });
          return old;
        });
      }
    }
  }

  close(): void {
    this.#closed = true;
    this.#track.stop();
  }
}
