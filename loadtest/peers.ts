/**
 * Test and load-test peers built on the same NodePeer the reenactor uses:
 * an actor that publishes real footage with per-frame stamps, and a viewer
 * that consumes the synthesized producer and reads the stamps back, so
 * glass-to-glass latency is measured per frame on one clock.
 */
import { NodePeer } from '../server/src/rtc/node-peer.ts';
import { RTCVideoSink, RTCVideoSource, type I420Frame } from '../server/src/rtc/wrtc.ts';
import { readFrames } from '../server/src/media/video-io.ts';
import { readStamp, writeStamp } from '../shared/stamp.ts';
import type { ProducerLabel } from '../shared/protocol.ts';

export interface DecodedClip {
  width: number;
  height: number;
  fps: number;
  frames: Uint8Array[];
}

/** Decodes a clip to I420 at the given size and rate, once, for any number of actors to share. */
export async function decodeClip(path: string, width: number, height: number, fps: number, maxFrames = 600): Promise<DecodedClip> {
  const frames: Uint8Array[] = [];
  for await (const f of readFrames(path, { width, height, fps, format: 'yuv420p', maxFrames })) frames.push(f.data);
  if (frames.length === 0) throw new Error(`no frames decoded from ${path}`);
  return { width, height, fps, frames };
}

export interface ActorOptions {
  url: string;
  token: string;
  clip: DecodedClip;
  /** Stop after this long; the clip loops until then. */
  durationMs: number;
  stamp?: boolean;
  maxBitrate?: number;
}

/** Publishes a clip at its frame rate with drift-corrected pacing. Stamp ids start at 1. */
export class FootageActor {
  readonly peer: NodePeer;
  /** Stamp id → performance.now() when the frame was handed to the encoder. */
  readonly sentAt = new Map<number, number>();
  readonly producerId: string;
  readonly #source: InstanceType<typeof RTCVideoSource>;
  readonly #track: MediaStreamTrack;
  readonly #opts: ActorOptions;
  readonly #scratch: Uint8Array;
  #timer: NodeJS.Timeout | undefined;
  #sent = 0;
  #done: Promise<void>;
  #resolveDone!: () => void;
  #stopped = false;

  private constructor(peer: NodePeer, source: InstanceType<typeof RTCVideoSource>, track: MediaStreamTrack, producerId: string, opts: ActorOptions) {
    this.peer = peer;
    this.#source = source;
    this.#track = track;
    this.producerId = producerId;
    this.#opts = opts;
    this.#scratch = new Uint8Array(opts.clip.frames[0]?.length ?? 0);
    this.#done = new Promise((r) => (this.#resolveDone = r));
  }

  static async start(opts: ActorOptions): Promise<FootageActor> {
    const peer = await NodePeer.connect({ url: opts.url, token: opts.token });
    const source = new RTCVideoSource();
    const track = source.createTrack();
    try {
      const producer = await peer.publishVideo(track, 'camera', opts.maxBitrate ?? 1_500_000);
      const actor = new FootageActor(peer, source, track, producer.id, opts);
      actor.#run();
      return actor;
    } catch (err) {
      track.stop();
      peer.close();
      throw err;
    }
  }

  get framesSent(): number {
    return this.#sent;
  }

  /** Resolves when the duration has elapsed (or stop() was called). */
  finished(): Promise<void> {
    return this.#done;
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#track.stop();
    this.peer.close();
    this.#resolveDone();
  }

  #run(): void {
    const { clip, durationMs } = this.#opts;
    const interval = 1000 / clip.fps;
    const t0 = performance.now();
    const tick = (): void => {
      if (this.#stopped) return;
      const now = performance.now();
      if (now - t0 >= durationMs) {
        this.#resolveDone();
        return;
      }
      const frame = clip.frames[this.#sent % clip.frames.length];
      if (frame) {
        this.#sent++;
        this.#scratch.set(frame);
        if (this.#opts.stamp !== false) writeStamp(this.#scratch, clip.width, this.#sent);
        this.sentAt.set(this.#sent, performance.now());
        this.#source.onFrame({ width: clip.width, height: clip.height, data: this.#scratch });
      }
      const next = t0 + this.#sent * interval;
      this.#timer = setTimeout(tick, Math.max(0, next - performance.now()));
    };
    tick();
  }
}

export interface Received {
  id: number | null;
  at: number;
  width: number;
  height: number;
}

export interface ViewerOptions {
  url: string;
  token: string;
  label?: ProducerLabel;
  /** Keep decoded frames (copies) for inspection; off by default. */
  keepFrames?: number;
  waitProducerMs?: number;
}

/** Consumes the room's producer with the given label (default synthesized) and records stamps. */
export class StampViewer {
  readonly peer: NodePeer;
  readonly received: Received[] = [];
  readonly frames: I420Frame[] = [];
  readonly #keep: number;
  #sink: InstanceType<typeof RTCVideoSink> | undefined;
  #closed = false;
  #firstFrame: Promise<void>;
  #resolveFirst!: () => void;

  private constructor(peer: NodePeer, keep: number) {
    this.peer = peer;
    this.#keep = keep;
    this.#firstFrame = new Promise((r) => (this.#resolveFirst = r));
  }

  static async start(opts: ViewerOptions): Promise<StampViewer> {
    const peer = await NodePeer.connect({ url: opts.url, token: opts.token });
    const viewer = new StampViewer(peer, opts.keepFrames ?? 0);
    const label = opts.label ?? 'synthesized';
    try {
      const existing = peer.join.producers.find((p) => p.label === label && p.kind === 'video');
      const producerId =
        existing?.producerId ??
        (await new Promise<string>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no ${label} producer within ${opts.waitProducerMs ?? 15000} ms`)), opts.waitProducerMs ?? 15000);
          const off = peer.onNotification((n) => {
            if (n.method === 'newProducer' && n.data.label === label && n.data.kind === 'video') {
              clearTimeout(t);
              off();
              resolve(n.data.producerId);
            }
          });
        }));
      await viewer.#consume(producerId);
      // Follow a replacement producer (e.g. after a reenactor restart).
      peer.onNotification((n) => {
        if (n.method === 'newProducer' && n.data.label === label && n.data.kind === 'video') void viewer.#consume(n.data.producerId).catch(() => undefined);
      });
      return viewer;
    } catch (err) {
      viewer.close();
      throw err;
    }
  }

  firstFrame(timeoutMs = 15000): Promise<void> {
    return Promise.race([
      this.#firstFrame,
      new Promise<void>((_, reject) => setTimeout(() => reject(new Error(`no frame within ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sink?.stop();
    this.peer.close();
  }

  async #consume(producerId: string): Promise<void> {
    const consumer = await this.peer.consume(producerId);
    this.#sink?.stop();
    const sink = new RTCVideoSink(consumer.track);
    this.#sink = sink;
    sink.onframe = ({ frame }: { frame: I420Frame }) => {
      if (this.#closed) return;
      const at = performance.now();
      this.received.push({ id: readStamp(frame.data, frame.width), at, width: frame.width, height: frame.height });
      if (this.frames.length < this.#keep) this.frames.push({ width: frame.width, height: frame.height, data: new Uint8Array(frame.data) });
      this.#resolveFirst();
    };
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i] ?? NaN;
}

/** Per-frame glass-to-glass latency: matches received stamps with send times. */
export function latencies(actor: FootageActor, viewer: StampViewer): { id: number; ms: number; at: number }[] {
  const out: { id: number; ms: number; at: number }[] = [];
  const seen = new Set<number>();
  for (const r of viewer.received) {
    if (r.id === null || seen.has(r.id)) continue;
    const sent = actor.sentAt.get(r.id);
    if (sent === undefined) continue;
    seen.add(r.id);
    out.push({ id: r.id, ms: r.at - sent, at: r.at });
  }
  return out;
}
