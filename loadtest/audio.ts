/**
 * The actor's voice in tests and the load tester: a sender that publishes a
 * clip's own sound as the actor's microphone, with a short tone marker once a
 * second, and a listener that consumes the room's synthesized audio and finds
 * the markers again.
 *
 * A/V offset, measured with stamped events on one clock (this process's):
 * each marker's audio latency is its onset at the viewer less its send time;
 * the video latency around that moment comes from the stamped frames
 * (peers.ts latencies()). offset = video latency − audio latency, so a
 * positive offset is audio early and a negative one audio late, as EBU R37
 * writes it (goal: −60 ms … +40 ms).
 */
import { spawn } from 'node:child_process';
import type { NodePeer } from '../server/src/rtc/node-peer.ts';
import { RTCAudioSink, RTCAudioSource } from '../server/src/rtc/wrtc.ts';
import { median } from '../server/src/util/stats.ts';
import { percentile } from './peers.ts';

export const SAMPLE_RATE = 48_000;
const CHUNK = SAMPLE_RATE / 100;
/** The marker: a 1 kHz tone (an exact DFT bin of a 10 ms chunk) replacing the voice for 60 ms, once a second. */
export const MARKER = { hz: 1000, ms: 60, everyMs: 1000, amplitude: 12_000 } as const;
const MARKER_CHUNKS = MARKER.ms / 10;
const MARKER_EVERY_CHUNKS = MARKER.everyMs / 10;
/** Sub-blocks of a chunk the onset is located in (2.5 ms each). */
const SUB = 4;

/** Mono 16-bit PCM at 48 kHz. */
export interface Voice {
  samples: Int16Array;
}

/** Decodes a clip's sound (mono, 48 kHz); a clip without sound gives silence of maxMs. */
export async function decodeVoice(path: string, maxMs: number): Promise<Voice> {
  const args = ['-hide_banner', '-loglevel', 'error', '-i', path, '-t', String(maxMs / 1000), '-vn', '-ac', '1', '-ar', String(SAMPLE_RATE), '-f', 's16le', '-'];
  const chunks: Buffer[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const p = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.on('data', (b: Buffer) => chunks.push(b));
    p.stderr.resume();
    p.once('error', reject);
    p.once('close', resolve);
  });
  const buf = Buffer.concat(chunks);
  if (code !== 0 || buf.length < CHUNK * 2) return { samples: new Int16Array(Math.round((maxMs / 1000) * SAMPLE_RATE)) };
  const samples = new Int16Array(buf.length >> 1);
  for (let i = 0; i < samples.length; i++) samples[i] = buf.readInt16LE(i * 2);
  return { samples };
}

/** The tone's power share of a block and its RMS. */
function toneShare(s: Int16Array, from: number, to: number): { share: number; rms: number } {
  const n = to - from;
  const w = (2 * Math.PI * MARKER.hz) / SAMPLE_RATE;
  let re = 0;
  let im = 0;
  let energy = 0;
  for (let i = from; i < to; i++) {
    const v = s[i] as number;
    re += v * Math.cos(w * i);
    im -= v * Math.sin(w * i);
    energy += v * v;
  }
  // A pure tone of amplitude A over n samples: |X|² = (A n / 2)², energy = A² n / 2, so share = 2|X|² / (n · energy) = 1.
  const share = energy > 0 ? (2 * (re * re + im * im)) / (n * energy) : 0;
  return { share, rms: Math.sqrt(energy / n) };
}

/**
 * Publishes a voice as the actor's microphone, 10 ms at a time with
 * drift-corrected pacing, looping until stopped, with a marker each second.
 */
export class VoiceSender {
  /** performance.now() of each marker's first sample handed to the encoder. */
  readonly markerSentAt: number[] = [];
  readonly producerId: string;
  readonly #source: InstanceType<typeof RTCAudioSource>;
  readonly #track: MediaStreamTrack;
  readonly #voice: Voice;
  readonly #t0 = performance.now();
  #chunk = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  private constructor(source: InstanceType<typeof RTCAudioSource>, track: MediaStreamTrack, producerId: string, voice: Voice) {
    this.#source = source;
    this.#track = track;
    this.producerId = producerId;
    this.#voice = voice;
    this.#tick();
  }

  static async start(peer: NodePeer, voice: Voice): Promise<VoiceSender> {
    const source = new RTCAudioSource();
    const track = source.createTrack();
    try {
      const producer = await peer.publishAudio(track, 'microphone');
      return new VoiceSender(source, track, producer.id, voice);
    } catch (err) {
      track.stop();
      throw err;
    }
  }

  get chunksSent(): number {
    return this.#chunk;
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#track.stop();
  }

  #tick(): void {
    if (this.#stopped) return;
    const due = Math.floor((performance.now() - this.#t0) / 10);
    // After a stall longer than 200 ms the clock restarts from now rather than bursting.
    if (due - this.#chunk > 20) this.#chunk = due - 1;
    while (this.#chunk < due) this.#send(this.#chunk++);
    this.#timer = setTimeout(() => this.#tick(), Math.max(1, this.#t0 + (this.#chunk + 1) * 10 - performance.now()));
  }

  #send(k: number): void {
    const total = this.#voice.samples.length;
    const out = new Int16Array(CHUNK);
    const phase = k % MARKER_EVERY_CHUNKS;
    if (phase < MARKER_CHUNKS) {
      for (let i = 0; i < CHUNK; i++) out[i] = Math.round(MARKER.amplitude * Math.sin((2 * Math.PI * MARKER.hz * (phase * CHUNK + i)) / SAMPLE_RATE));
      if (phase === 0) this.markerSentAt.push(performance.now());
    } else if (total > 0) {
      const from = (k * CHUNK) % total;
      for (let i = 0; i < CHUNK; i++) out[i] = this.#voice.samples[(from + i) % total] as number;
    }
    this.#source.onData({ samples: out, sampleRate: SAMPLE_RATE, bitsPerSample: 16, channelCount: 1, numberOfFrames: CHUNK });
  }
}

/**
 * Consumes a room's synthesized audio (following a replacement producer),
 * counts what arrives and finds marker onsets.
 */
export class VoiceListener {
  /** performance.now() of each marker onset heard (start of its first tone sub-block). */
  readonly onsets: number[] = [];
  chunks = 0;
  /** Chunks with any sound at all (|sample| > 2 somewhere). */
  audible = 0;
  /** Runs of ≥ 3 chunks (30 ms) of digital silence after the first audible chunk: gaps in the voice. */
  gaps = 0;
  firstAt: number | undefined;
  readonly #peer: NodePeer;
  #sink: InstanceType<typeof RTCAudioSink> | undefined;
  #prev: Int16Array | undefined;
  #quietRun = 0;
  #sinceTone = Infinity;
  #closed = false;

  private constructor(peer: NodePeer) {
    this.#peer = peer;
  }

  static async start(peer: NodePeer): Promise<VoiceListener> {
    const listener = new VoiceListener(peer);
    const isVoice = (p: { label: string; kind: string }): boolean => p.label === 'synthesized' && p.kind === 'audio';
    peer.onNotification((n) => {
      if (n.method === 'newProducer' && isVoice(n.data)) void listener.#consume(n.data.producerId).catch(() => undefined);
    });
    const existing = peer.roomProducers.find(isVoice);
    if (existing) await listener.#consume(existing.producerId);
    return listener;
  }


  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sink?.stop();
  }

  async #consume(producerId: string): Promise<void> {
    const consumer = await this.#peer.consume(producerId);
    if (this.#closed) return;
    this.#sink?.stop();
    const sink = new RTCAudioSink(consumer.track);
    this.#sink = sink;
    sink.ondata = (d: { samples: Int16Array; channelCount: number; numberOfFrames: number; sampleRate: number }) => {
      if (this.#closed || this.#sink !== sink) return;
      this.#onChunk(mono(d), performance.now(), d.sampleRate);
    };
  }

  #onChunk(s: Int16Array, at: number, rate: number): void {
    this.chunks++;
    let loud = false;
    for (let i = 0; i < s.length; i++) if (Math.abs(s[i] as number) > 2) { loud = true; break; }
    if (loud) {
      this.audible++;
      this.firstAt ??= at;
      if (this.#quietRun >= 3) this.gaps++;
      this.#quietRun = 0;
    } else if (this.firstAt !== undefined) {
      this.#quietRun++;
    }
    if (rate !== SAMPLE_RATE) return;
    const whole = toneShare(s, 0, s.length);
    const tone = whole.share > 0.5 && whole.rms > MARKER.amplitude / 8;
    if (tone && this.#sinceTone > MARKER_EVERY_CHUNKS / 2) this.onsets.push(this.#onsetTime(s, at));
    this.#sinceTone = tone ? 0 : this.#sinceTone + 1;
    this.#prev = s;
  }

  /**
   * The chunk delivered at `at` plays from `at` on; its sample i at at + i/48 ms. The onset is the
   * first 2.5 ms block with the tone in it, here or at the end of the previous chunk.
   */
  #onsetTime(s: Int16Array, at: number): number {
    const block = s.length / SUB;
    const isTone = (buf: Int16Array, b: number): boolean => {
      const t = toneShare(buf, b * block, (b + 1) * block);
      return t.share > 0.5 && t.rms > MARKER.amplitude / 8;
    };
    const prev = this.#prev;
    if (prev && prev.length === s.length) {
      let first = SUB;
      for (let b = SUB - 1; b >= 0 && isTone(prev, b); b--) first = b;
      if (first < SUB) return at - 10 + (first * 10) / SUB;
    }
    for (let b = 0; b < SUB; b++) if (isTone(s, b)) return at + (b * 10) / SUB;
    return at;
  }
}

function mono(d: { samples: Int16Array; channelCount: number; numberOfFrames: number }): Int16Array {
  if (d.channelCount === 1) return new Int16Array(d.samples);
  const out = new Int16Array(d.numberOfFrames);
  for (let i = 0; i < d.numberOfFrames; i++) {
    let sum = 0;
    for (let c = 0; c < d.channelCount; c++) sum += d.samples[i * d.channelCount + c] as number;
    out[i] = Math.round(sum / d.channelCount);
  }
  return out;
}

export interface AvSample {
  /** Viewer time of the marker onset. */
  at: number;
  /** When the marker was sent. */
  sentAt: number;
  audioMs: number;
  videoMs: number;
  /** videoMs − audioMs: positive is audio early. */
  offsetMs: number;
}

/**
 * Pairs each heard onset with the latest marker sent before it, and the video latency of the
 * stamped frames that arrived within ±0.5 s of it.
 */
export function avOffsets(markerSentAt: readonly number[], onsets: readonly number[], video: readonly { at: number; ms: number }[]): AvSample[] {
  const out: AvSample[] = [];
  for (const at of onsets) {
    let sent: number | undefined;
    for (const s of markerSentAt) if (s <= at) sent = s;
    if (sent === undefined || at - sent > MARKER.everyMs - 1) continue;
    const near = video.filter((v) => Math.abs(v.at - at) <= 500).map((v) => v.ms);
    if (near.length < 3) continue;
    const videoMs = median(near);
    const audioMs = at - sent;
    out.push({ at, sentAt: sent, audioMs, videoMs, offsetMs: videoMs - audioMs });
  }
  return out;
}

/** One session's sound at the viewer over the measured window (report.json overall.audio.sessions). */
export interface AudioSessionReport {
  index: number;
  /** 10 ms chunks the viewer received, and those with sound in them. */
  chunksReceived: number;
  audibleChunks: number;
  /** Runs of ≥ 30 ms of digital silence after the voice began. */
  gaps: number;
  markersSent: number;
  markersHeard: number;
  offsetP50Ms: number;
  /** The 5th and 95th percentiles: both must lie in −60 … +40 ms (EBU R37). */
  offsetP5Ms: number;
  offsetP95Ms: number;
  audioLatencyP50Ms: number;
}

export interface AudioReport {
  sessions: AudioSessionReport[];
  /** Pooled over every session's markers. */
  offsetP50Ms: number;
  offsetP5Ms: number;
  offsetP95Ms: number;
  /** Share of markers with the offset inside −60 … +40 ms. */
  withinEbuR37: number;
  gaps: number;
}

const round1 = (v: number): number => Math.round(v * 10) / 10;

/** Builds overall.audio from each session's markers inside its window. */
export function audioReport(sessions: readonly { index: number; samples: readonly AvSample[]; markersSent: number; listener: VoiceListener }[]): AudioReport {
  const all: number[] = [];
  const per = sessions.map((s): AudioSessionReport => {
    const off = s.samples.map((x) => x.offsetMs);
    all.push(...off);
    return {
      index: s.index,
      chunksReceived: s.listener.chunks,
      audibleChunks: s.listener.audible,
      gaps: s.listener.gaps,
      markersSent: s.markersSent,
      markersHeard: off.length,
      offsetP50Ms: round1(percentile(off, 50)),
      offsetP5Ms: round1(percentile(off, 5)),
      offsetP95Ms: round1(percentile(off, 95)),
      audioLatencyP50Ms: round1(percentile(s.samples.map((x) => x.audioMs), 50)),
    };
  });
  return {
    sessions: per,
    offsetP50Ms: round1(percentile(all, 50)),
    offsetP5Ms: round1(percentile(all, 5)),
    offsetP95Ms: round1(percentile(all, 95)),
    withinEbuR37: all.length ? all.filter((o) => o <= 40 && o >= -60).length / all.length : Number.NaN,
    gaps: per.reduce((n, s) => n + s.gaps, 0),
  };
}
