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
import { encodeTrackMessage } from '../shared/track-wire.ts';
import { LANDMARK_COUNT } from '../shared/tracking.ts';
import { Tracker } from '../server/src/tracking/tracker.ts';
import { i420ToRgba } from '../server/src/media/convert.ts';

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
  #timer: { clear(): void } | undefined;
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
    this.#timer?.clear();
    this.#track.stop();
    this.peer.close();
    this.#resolveDone();
  }

  #run(): void {
    const { clip, durationMs } = this.#opts;
    this.#timer = pace(clip.fps, durationMs, () => this.#stopped, (n) => {
      const frame = clip.frames[(n - 1) % clip.frames.length];
      if (!frame) return;
      this.#sent = n;
      this.#scratch.set(frame);
      if (this.#opts.stamp !== false) writeStamp(this.#scratch, clip.width, n);
      this.sentAt.set(n, performance.now());
      this.#source.onFrame({ width: clip.width, height: clip.height, data: this.#scratch });
    }, () => this.#resolveDone());
  }
}

/**
 * Calls `send(n)` for n = 1, 2, … at `fps` with drift-corrected pacing until
 * `durationMs` has passed (then `done()`) or `stopped()` turns true. Returns
 * a handle whose current timer can be cleared.
 */
function pace(fps: number, durationMs: number, stopped: () => boolean, send: (n: number) => void, done: () => void): { clear(): void } {
  const interval = 1000 / fps;
  const t0 = performance.now();
  let n = 0;
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    if (stopped()) return;
    if (performance.now() - t0 >= durationMs) {
      done();
      return;
    }
    send(++n);
    timer = setTimeout(tick, Math.max(0, t0 + n * interval - performance.now()));
  };
  tick();
  return { clear: () => clearTimeout(timer) };
}

/** A clip's face-mesh landmarks, tracked once: what a privacy-mode actor's device would send. */
export interface TrackedClip {
  width: number;
  height: number;
  fps: number;
  /** x y z per point in frame pixels, per frame; null where no face was found. */
  points: (Float32Array | null)[];
  /** Tracker ms per frame (this machine, ONNX Runtime), for reporting what the device side costs. */
  trackMs: number[];
}

/**
 * Tracks every frame of a decoded clip with the project's 468-point mesh tracker (the model a
 * browser's FaceLandmarker runs; raw landmarks, no smoothing: the server filters).
 */
export async function trackLandmarks(clip: DecodedClip): Promise<TrackedClip> {
  const tracker = await Tracker.create({ filter: false, attention: false });
  const rgba = new Uint8Array(clip.width * clip.height * 4);
  const points: (Float32Array | null)[] = [];
  const trackMs: number[] = [];
  try {
    for (const [i, f] of clip.frames.entries()) {
      i420ToRgba(f, clip.width, clip.height, rgba);
      const t0 = performance.now();
      const r = await tracker.process({ width: clip.width, height: clip.height, format: 'rgba', data: rgba }, (i * 1000) / clip.fps);
      trackMs.push(performance.now() - t0);
      points.push(r.rawLandmarks ? new Float32Array(r.rawLandmarks.subarray(0, LANDMARK_COUNT * 3)) : null);
    }
  } finally {
    await tracker.close();
  }
  return { width: clip.width, height: clip.height, fps: clip.fps, points, trackMs };
}

export interface TracksActorOptions {
  url: string;
  token: string;
  tracked: TrackedClip;
  durationMs: number;
}

/**
 * A privacy-mode actor: sends a tracked clip's landmarks over the data
 * channel at the clip's rate, frame ids counting from 1 (the reenactor stamps
 * them into its output in measurement mode). It publishes no video.
 */
export class TracksActor {
  readonly peer: NodePeer;
  readonly sentAt = new Map<number, number>();
  readonly dataProducerId: string;
  bytesSent = 0;
  readonly #dp: Awaited<ReturnType<NodePeer['produceTracks']>>;
  readonly #opts: TracksActorOptions;
  #timer: { clear(): void } | undefined;
  #sent = 0;
  readonly #done: Promise<void>;
  #resolveDone!: () => void;
  #stopped = false;

  private constructor(peer: NodePeer, dp: Awaited<ReturnType<NodePeer['produceTracks']>>, opts: TracksActorOptions) {
    this.peer = peer;
    this.#dp = dp;
    this.dataProducerId = dp.id;
    this.#opts = opts;
    this.#done = new Promise((r) => (this.#resolveDone = r));
  }

  static async start(opts: TracksActorOptions): Promise<TracksActor> {
    const peer = await NodePeer.connect({ url: opts.url, token: opts.token });
    try {
      const dp = await peer.produceTracks();
      if (dp.readyState !== 'open') await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('tracks channel did not open within 10 s')), 10_000);
        dp.once('open', () => {
          clearTimeout(t);
          resolve();
        });
      });
      const actor = new TracksActor(peer, dp, opts);
      actor.#run();
      return actor;
    } catch (err) {
      peer.close();
      throw err;
    }
  }

  get framesSent(): number {
    return this.#sent;
  }

  /** Sends arbitrary bytes or text on the landmark channel (fault tests). */
  sendRaw(data: ArrayBuffer | string): void {
    this.#dp.send(data);
  }

  finished(): Promise<void> {
    return this.#done;
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#timer?.clear();
    this.peer.close();
    this.#resolveDone();
  }

  #run(): void {
    const { tracked, durationMs } = this.#opts;
    this.#timer = pace(tracked.fps, durationMs, () => this.#stopped, (n) => {
      const points = tracked.points[(n - 1) % tracked.points.length] ?? null;
      this.#sent = n;
      const msg = encodeTrackMessage({ frameId: n, captureMs: performance.timeOrigin + performance.now(), width: tracked.width, height: tracked.height, points });
      this.sentAt.set(n, performance.now());
      this.bytesSent += msg.byteLength;
      this.#dp.send(msg.buffer as ArrayBuffer);
    }, () => this.#resolveDone());
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
  /** The producers consumed, in order (one more each time the video was published again). */
  readonly producers: string[] = [];
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
    this.producers.push(producerId);
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
export function latencies(actor: { sentAt: ReadonlyMap<number, number> }, viewer: StampViewer): { id: number; ms: number; at: number }[] {
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
