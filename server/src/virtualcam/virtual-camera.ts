/**
 * The virtual camera: joins a room as a viewer (NodePeer over wrtc), consumes
 * the synthesized video and writes it at a fixed frame rate to a FrameOutput
 * (v4l2loopback through ffmpeg, or y4m).
 *
 * Frames flow sink → one-slot mailbox (latest wins, superseded frames
 * counted) → fixed-rate pacer → output. The pacer repeats the last frame when
 * no new one came, so consumers see a constant rate while the input stalls.
 *
 * With an audio target, the room's synthesized audio (the actor's voice,
 * lip-synced by the receiver) goes to a WAV file or a virtual microphone
 * (audio-out.ts). The sound starts with the first output frame: silence fills
 * from there to the first chunk, so frame n of the y4m and second n/fps of
 * the WAV are the same instant.
 *
 * Ends (the `done` promise) when the duration is reached, the room closes,
 * the synthesized video goes away for longer than the grace period, the
 * signalling connection drops, or the output fails. close() is idempotent:
 * it stops the pacer and timers, the sink, every wrtc object (through
 * NodePeer.close) and flushes the output.
 */
import { NodePeer } from '../rtc/node-peer.ts';
import { RTCAudioSink, RTCVideoSink, type I420Frame } from '../rtc/wrtc.ts';
import { openAudioOutput, type AudioOutput, type AudioTarget } from './audio-out.ts';
import type { Notification } from '../../../shared/protocol.ts';
import type { Logger } from '../logger.ts';
import { blackFrame, fitInto, i420Bytes } from './i420.ts';
import { PcmConverter } from './pcm-convert.ts';
import { V4l2Output, Y4mOutput, type FrameOutput } from './outputs.ts';

/** The sound's output rate (Opus's own), whatever rate the first chunks come at. */
const OUTPUT_RATE = 48_000;

export type OutputTarget = { kind: 'y4m'; path: string } | { kind: 'v4l2'; device: string };

export interface VirtualCameraOptions {
  /** Server base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  room: string;
  /** A viewer token; fetched from /api/token when absent. */
  token?: string;
  output: OutputTarget;
  /** Output frame rate. Default 30. */
  fps?: number;
  /** Output size; default 640x480 for v4l2, the first frame's size for y4m. */
  size?: { width: number; height: number };
  /** Stop after this long of output; 0 = run until the room ends. */
  durationMs?: number;
  /** Give up when no synthesized video appears within this long; 0 = wait forever. */
  waitMs?: number;
  /** How long to keep repeating the last frame after the synthesized producer closes. Default 10 s. */
  graceMs?: number;
  /** Where the room's sound goes (none by default). */
  audio?: AudioTarget;
  log: Logger;
}

export type EndKind = 'duration' | 'room-closed' | 'video-ended' | 'no-video' | 'disconnected' | 'output-failed' | 'closed';

export interface EndReason {
  kind: EndKind;
  message: string;
}

export interface VirtualCameraStats {
  /** Frames decoded from the room. */
  framesIn: number;
  /** Frames written to the output. */
  framesOut: number;
  /** Output frames that repeated the previous one (no new input in time). */
  repeated: number;
  /** Input frames replaced by a newer one before the pacer took them. */
  superseded: number;
  /** Output frames the destination refused because it was backed up. */
  refused: number;
  /** Pacer ticks skipped because the process fell more than a frame behind. */
  lateTicks: number;
  /** Wall time from the first output frame to the last, ms. */
  outputMs: number;
  width: number;
  height: number;
  fps: number;
  /** 10 ms chunks of sound written (audio target only). */
  audioChunks: number;
  /** Silence written before the first chunk so the sound starts with the first frame, ms. */
  audioLeadMs: number;
  /** Chunks the audio destination refused (backed up). */
  audioRefused: number;
}

export async function fetchViewerToken(url: string, room: string): Promise<string> {
  const res = await fetch(`${url.replace(/\/$/, '')}/api/token?room=${encodeURIComponent(room)}&role=viewer`);
  const body = (await res.json().catch(() => ({}))) as { token?: string; error?: { code: string; message: string } };
  if (!res.ok || !body.token) throw new Error(`no viewer token from ${url}: ${body.error?.code ?? res.status} ${body.error?.message ?? ''}`.trim());
  return body.token;
}

export class VirtualCamera {
  readonly done: Promise<EndReason>;
  readonly #peer: NodePeer;
  readonly #opts: VirtualCameraOptions;
  readonly #fps: number;
  readonly #log: Logger;
  #resolveDone!: (r: EndReason) => void;
  #ended = false;
  #closing: Promise<void> | undefined;
  #sink: InstanceType<typeof RTCVideoSink> | undefined;
  #producerId: string | undefined;
  #audioSink: InstanceType<typeof RTCAudioSink> | undefined;
  #audioOut: AudioOutput | undefined;
  /** Brings every chunk to the output's format, made with the output. */
  #pcm = new PcmConverter(OUTPUT_RATE, 1);
  /** The one-slot mailbox between the sink and the pacer; #fresh says it holds a frame not yet written. */
  #in: I420Frame = { width: 0, height: 0, data: new Uint8Array(0) };
  #fresh = false;
  #output: FrameOutput | undefined;
  #frame: Uint8Array = new Uint8Array(0);
  #timer: NodeJS.Timeout | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  #waitTimer: NodeJS.Timeout | undefined;
  #t0 = 0;
  #tick = 0;
  #lastOutAt = 0;
  readonly #stats: VirtualCameraStats;

  private constructor(peer: NodePeer, opts: VirtualCameraOptions) {
    this.#peer = peer;
    this.#opts = opts;
    this.#fps = opts.fps ?? 30;
    this.#log = opts.log;
    this.#stats = { framesIn: 0, framesOut: 0, repeated: 0, superseded: 0, refused: 0, lateTicks: 0, outputMs: 0, width: 0, height: 0, fps: this.#fps, audioChunks: 0, audioLeadMs: 0, audioRefused: 0 };
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
  }

  /** Connects to the room and starts following its synthesized video. */
  static async create(opts: VirtualCameraOptions): Promise<VirtualCamera> {
    const fps = opts.fps ?? 30;
    if (!(fps >= 1 && fps <= 120)) throw new TypeError('fps must be in 1..120');
    if (opts.size && (opts.size.width < 2 || opts.size.height < 2 || opts.size.width % 2 || opts.size.height % 2)) throw new TypeError('size must be even and at least 2x2');
    const token = opts.token ?? (await fetchViewerToken(opts.url, opts.room));
    const peer = await NodePeer.connect({ url: opts.url, token });
    const cam = new VirtualCamera(peer, opts);
    try {
      await cam.#start();
    } catch (err) {
      await cam.close();
      throw err;
    }
    return cam;
  }

  get stats(): Readonly<VirtualCameraStats> {
    return this.#stats;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#end({ kind: 'closed', message: 'closed' });
    clearTimeout(this.#timer);
    clearTimeout(this.#graceTimer);
    clearTimeout(this.#waitTimer);
    this.#sink?.stop();
    this.#sink = undefined;
    this.#audioSink?.stop();
    this.#audioSink = undefined;
    this.#peer.close();
    await Promise.all([this.#output?.close(), this.#audioOut?.close()]);
  }

  #end(reason: EndReason): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#timer);
    this.#resolveDone(reason);
  }

  async #start(): Promise<void> {
    this.#peer.onNotification((n) => this.#onNotification(n));
    this.#peer.signal.socket.on('disconnect', () => this.#end({ kind: 'disconnected', message: 'lost the connection to the server' }));
    if (this.#opts.output.kind === 'v4l2') this.#openOutput(this.#opts.size?.width ?? 640, this.#opts.size?.height ?? 480);
    const voice = this.#peer.join.producers.find((p) => p.label === 'synthesized' && p.kind === 'audio');
    if (voice && this.#opts.audio) await this.#consumeAudio(voice.producerId);
    const existing = this.#peer.join.producers.find((p) => p.label === 'synthesized' && p.kind === 'video');
    if (existing) await this.#consume(existing.producerId);
    else this.#armWait();
  }

  #armWait(): void {
    const waitMs = this.#opts.waitMs ?? 0;
    this.#log.info('waiting for the room’s synthesized video', { room: this.#opts.room });
    if (waitMs > 0) this.#waitTimer = setTimeout(() => this.#end({ kind: 'no-video', message: `no synthesized video in room ${this.#opts.room} within ${waitMs} ms` }), waitMs);
  }

  #onNotification(n: Notification): void {
    switch (n.method) {
      case 'newProducer':
        if (n.data.label === 'synthesized' && n.data.kind === 'video') {
          clearTimeout(this.#graceTimer);
          clearTimeout(this.#waitTimer);
          this.#consume(n.data.producerId).catch((err: unknown) => this.#log.warn('could not consume the synthesized video', { err: String(err) }));
        }
        if (n.data.label === 'synthesized' && n.data.kind === 'audio' && this.#opts.audio) {
          this.#consumeAudio(n.data.producerId).catch((err: unknown) => this.#log.warn('could not consume the synthesized audio', { err: String(err) }));
        }
        break;
      case 'producerClosed':
        if (n.data.producerId === this.#producerId) this.#onVideoGone();
        break;
      case 'roomClosed':
        this.#end({ kind: 'room-closed', message: `the room was closed (${n.data.code}: ${n.data.message})` });
        break;
      case 'sessionStatus':
        this.#log.info('session', { state: n.data.state, code: n.data.code });
        break;
      case 'serverDraining':
        this.#log.warn('the server is shutting down; the room closes within the grace period', { graceMs: n.data.graceMs });
        break;
      case 'peerLeft':
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

  #onVideoGone(): void {
    this.#sink?.stop();
    this.#sink = undefined;
    this.#producerId = undefined;
    const graceMs = this.#opts.graceMs ?? 10_000;
    this.#log.info('synthesized video stopped; repeating the last frame while waiting for it to return', { graceMs });
    this.#graceTimer = setTimeout(() => this.#end({ kind: 'video-ended', message: `the room's synthesized video ended (none for ${graceMs} ms)` }), graceMs);
  }

  async #consume(producerId: string): Promise<void> {
    const consumer = await this.#peer.consume(producerId);
    this.#sink?.stop();
    this.#producerId = producerId;
    const sink = new RTCVideoSink(consumer.track);
    this.#sink = sink;
    sink.onframe = ({ frame }: { frame: I420Frame }) => this.#onFrame(frame);
    this.#log.info('consuming the synthesized video', { room: this.#opts.room });
  }

  async #consumeAudio(producerId: string): Promise<void> {
    const consumer = await this.#peer.consume(producerId);
    this.#audioSink?.stop();
    const sink = new RTCAudioSink(consumer.track);
    this.#audioSink = sink;
    sink.ondata = (d: { samples: Int16Array; sampleRate: number; channelCount: number; numberOfFrames: number }) => this.#onAudio(d);
    this.#log.info('consuming the synthesized audio', { room: this.#opts.room, to: this.#opts.audio?.kind });
  }

  #onAudio(d: { samples: Int16Array; sampleRate: number; channelCount: number; numberOfFrames: number }): void {
    const target = this.#opts.audio;
    // The sound starts with the picture: chunks before the first output frame are not kept.
    if (this.#ended || !target || this.#stats.framesOut === 0) return;
    if (!this.#audioOut) {
      // One fixed rate (Opus's 48 kHz) whatever the first chunk says: the first chunks can come at 16 kHz.
      const fmt = { sampleRate: OUTPUT_RATE, channels: d.channelCount };
      this.#pcm = new PcmConverter(fmt.sampleRate, fmt.channels);
      const out = openAudioOutput(target, fmt);
      this.#audioOut = out;
      void out.failed.then((message) => this.#end({ kind: 'output-failed', message }));
      const chunkFrames = Math.round((d.numberOfFrames * OUTPUT_RATE) / d.sampleRate);
      const leadFrames = Math.max(0, Math.round(((performance.now() - this.#t0) / 1000) * OUTPUT_RATE) - chunkFrames);
      if (leadFrames > 0) out.write(new Int16Array(leadFrames * fmt.channels));
      this.#stats.audioLeadMs = (leadFrames * 1000) / OUTPUT_RATE;
      this.#log.info('writing sound', { to: out.description, sampleRate: OUTPUT_RATE, channels: fmt.channels, firstChunkRate: d.sampleRate });
    }
    // The output copies what it keeps (the sink reuses its buffer).
    if (this.#audioOut.write(this.#pcm.convert(d))) this.#stats.audioChunks++;
    else this.#stats.audioRefused++;
  }

  #onFrame(frame: I420Frame): void {
    if (this.#ended) return;
    this.#stats.framesIn++;
    if (this.#fresh) this.#stats.superseded++;
    // Copy into our own buffer (reallocated only when the size changes) so the slot never aliases a native buffer.
    const size = i420Bytes(frame.width, frame.height);
    if (this.#in.data.length !== size) this.#in.data = new Uint8Array(size);
    this.#in.data.set(frame.data.subarray(0, size));
    this.#in.width = frame.width;
    this.#in.height = frame.height;
    this.#fresh = true;
    if (!this.#output) this.#openOutput(this.#opts.size?.width ?? frame.width & ~1, this.#opts.size?.height ?? frame.height & ~1);
  }

  #openOutput(width: number, height: number): void {
    const fmt = { width, height, fps: this.#fps };
    const target = this.#opts.output;
    this.#output = target.kind === 'y4m' ? new Y4mOutput(target.path, fmt) : new V4l2Output(target.device, fmt);
    void this.#output.failed.then((message) => this.#end({ kind: 'output-failed', message }));
    this.#frame = blackFrame(width, height);
    Object.assign(this.#stats, { width, height });
    this.#log.info('writing', { to: this.#output.description, width, height, fps: this.#fps });
    this.#t0 = performance.now();
    this.#tick = 0;
    this.#pace();
  }

  /** One output frame per tick at t0 + n/fps; when more than a frame late, skip ticks rather than burst. */
  #pace(): void {
    if (this.#ended) return;
    const interval = 1000 / this.#fps;
    const now = performance.now();
    const due = Math.floor((now - this.#t0) / interval);
    if (due > this.#tick + 1) {
      this.#stats.lateTicks += due - this.#tick - 1;
      this.#tick = due - 1;
    }
    this.#emit(now);
    this.#tick++;
    const limit = this.#opts.durationMs ? Math.round((this.#opts.durationMs * this.#fps) / 1000) : Infinity;
    if (this.#stats.framesOut >= limit) {
      this.#end({ kind: 'duration', message: `wrote ${this.#stats.framesOut} frames (${this.#opts.durationMs} ms)` });
      return;
    }
    this.#timer = setTimeout(() => this.#pace(), Math.max(0, this.#t0 + this.#tick * interval - performance.now()));
  }

  #emit(now: number): void {
    const out = this.#output;
    if (!out) return;
    if (this.#fresh) {
      fitInto(this.#in, this.#frame, this.#stats.width, this.#stats.height);
      this.#fresh = false;
    } else if (this.#stats.framesOut > 0) {
      this.#stats.repeated++;
    }
    if (!out.write(this.#frame)) {
      this.#stats.refused++;
      return;
    }
    if (this.#stats.framesOut === 0) this.#lastOutAt = now;
    this.#stats.framesOut++;
    this.#stats.outputMs += now - this.#lastOutAt;
    this.#lastOutAt = now;
  }
}
