/**
 * The actor's voice through the reenactor: the actor's microphone comes in
 * through an RTCAudioSink (10 ms PCM chunks), waits in a delay line as long as
 * the session's video takes from arrival to the encoder, and goes out through
 * an RTCAudioSource published beside the synthesized video, from the same
 * peer connection. Both tracks are then stamped by one clock (the time each
 * frame or chunk is handed to libwebrtc), so the sender reports the viewer's
 * browser uses for lip sync map both RTP clocks onto the same instants.
 *
 * The line is clocked by the incoming sink, not by a timer: libwebrtc's audio
 * device pulls every remote track each 10 ms and keeps doing so (with
 * concealment, then silence) while the actor is muted or the network drops
 * packets, so one chunk goes out for each chunk in, at the device's steady
 * rate. Video drops, degrades and passthrough never touch this path; they only
 * move the target delay, which the line follows one chunk at a time, at
 * quiet chunks where it can, so speech is not cut mid-syllable.
 *
 * Runs on the reenactor child's main thread (where wrtc lives); the work per
 * chunk is a copy and a sum of squares.
 */
import { RTCAudioSink, RTCAudioSource } from '../rtc/wrtc.ts';

export const CHUNK_MS = 10;
/**
 * Near the target (within FINE_CHUNKS) the line moves at most one chunk per ADJUST_EVERY chunks
 * (10 ms a 100 ms) and waits up to QUIET_WAIT_CHUNKS for a quiet one; further off it moves one
 * chunk per COARSE_EVERY at quiet chunks and per COARSE_LOUD_EVERY through speech (a fifth to a
 * third faster or slower than real time), so a delay that jumps by half a second is met within
 * about three seconds.
 */
const FINE_CHUNKS = 3;
const ADJUST_EVERY = 10;
const QUIET_WAIT_CHUNKS = 50;
const COARSE_EVERY = 3;
const COARSE_LOUD_EVERY = 5;
/** RMS (of int16 samples) under which a chunk counts as quiet: about −50 dBFS. */
const QUIET_RMS = 100;
/** The line never holds more than this (a stage stuck for seconds must not make the voice seconds late). */
export const MAX_DELAY_MS = 1000;

export interface AudioChunk {
  samples: Int16Array;
  sampleRate: number;
  channelCount: number;
  numberOfFrames: number;
}

export interface AudioRelayStats {
  /** Chunks from the actor's microphone (10 ms each). */
  chunksIn: number;
  /** Chunks handed to the output track. */
  chunksOut: number;
  /** Silent chunks inserted to lengthen the delay. */
  inserted: number;
  /** Chunks dropped to shorten the delay. */
  dropped: number;
  /** The delay the line holds now, ms. */
  delayMs: number;
  /** The delay asked for (the video's), ms. */
  targetMs: number;
  /** Of that, how far the voice ran ahead of the picture on the way in (receive-path skew), ms. */
  inputSkewMs?: number;
}

/** What the line does with one incoming chunk; pure, so it is tested without wrtc. */
export class DelayLine {
  readonly #fifo: AudioChunk[] = [];
  #targetChunks = 0;
  #sinceAdjust = ADJUST_EVERY;
  #pendingFor = 0;
  /** The line has reached its first target: until then it fills at once (nothing was audible yet). */
  #filled = false;
  inserted = 0;
  dropped = 0;

  /** Sets the delay to hold, ms (clamped to 0…MAX_DELAY_MS). */
  setTarget(ms: number): void {
    this.#targetChunks = Math.round(Math.max(0, Math.min(MAX_DELAY_MS, ms)) / CHUNK_MS);
  }

  get targetMs(): number {
    return this.#targetChunks * CHUNK_MS;
  }

  get delayMs(): number {
    return this.#fifo.length * CHUNK_MS;
  }

  /** Takes one chunk in and returns the chunk to send now (a silent one while the line fills). */
  push(chunk: AudioChunk): AudioChunk {
    this.#fifo.push(chunk);
    this.#sinceAdjust++;
    // After the push the line holds delay + 1 chunks; popping one leaves it at the delay.
    const excess = this.#fifo.length - 1 - this.#targetChunks;
    if (excess === 0) {
      this.#pendingFor = 0;
      this.#filled = true;
      return this.#fifo.shift() as AudioChunk;
    }
    if (!this.#filled && excess < 0) {
      this.inserted++;
      return silenceLike(chunk);
    }
    this.#filled = true;
    this.#pendingFor++;
    const head = this.#fifo[0] as AudioChunk;
    const fine = Math.abs(excess) <= FINE_CHUNKS;
    const may = fine
      ? this.#sinceAdjust >= ADJUST_EVERY && (isQuiet(head) || this.#pendingFor >= QUIET_WAIT_CHUNKS)
      : this.#sinceAdjust >= (isQuiet(head) ? COARSE_EVERY : COARSE_LOUD_EVERY);
    if (may && excess < 0) {
      this.#adjusted();
      this.inserted++;
      return silenceLike(chunk);
    }
    if (may && excess > 0) {
      this.#adjusted();
      this.dropped++;
      this.#fifo.shift();
    }
    return this.#fifo.shift() as AudioChunk;
  }

  #adjusted(): void {
    this.#sinceAdjust = 0;
    this.#pendingFor = 0;
  }
}

function isQuiet(c: AudioChunk): boolean {
  let sum = 0;
  for (let i = 0; i < c.samples.length; i++) sum += (c.samples[i] as number) ** 2;
  return Math.sqrt(sum / Math.max(1, c.samples.length)) < QUIET_RMS;
}

function silenceLike(c: AudioChunk): AudioChunk {
  return { samples: new Int16Array(c.samples.length), sampleRate: c.sampleRate, channelCount: c.channelCount, numberOfFrames: c.numberOfFrames };
}

/** Cumulative receive counters of one inbound stream (standard RTCInboundRtpStreamStats). */
interface ReceiveTotals {
  /** Seconds summed over frames (video: first packet in → decoded) or samples (audio: jitter buffer). */
  delay: number;
  count: number;
}

/**
 * How much sooner the actor's voice than its picture comes out of the reenactor's receivers, ms,
 * over the interval since the last call. The two are received out of sync (each its own stream
 * id), so each path's own delay shows in its stats: a video frame waits from its first packet
 * for the rest (which the sender paces out), for the jitter buffer and for the decoder
 * (totalProcessingDelay per decoded frame); audio waits in its jitter buffer only
 * (jitterBufferDelay per emitted sample). The network before the first packet is common to both.
 */
export class ReceiveSkew {
  #video: ReceiveTotals | undefined;
  #audio: ReceiveTotals | undefined;

  /** The skew over the interval, or undefined when either stream decoded nothing new. */
  update(report: RTCStatsReport | undefined, audioTrackId: string, videoTrackId: string): number | undefined {
    let video: ReceiveTotals | undefined;
    let audio: ReceiveTotals | undefined;
    report?.forEach((s: Record<string, unknown>) => {
      if (s['type'] !== 'inbound-rtp') return;
      const num = (k: string): number => (typeof s[k] === 'number' ? s[k] : Number.NaN);
      if (s['trackIdentifier'] === videoTrackId) video = { delay: num('totalProcessingDelay'), count: num('framesDecoded') };
      if (s['trackIdentifier'] === audioTrackId) audio = { delay: num('jitterBufferDelay'), count: num('jitterBufferEmittedCount') };
    });
    // An interval with a handful of frames (a stall, a keyframe wait) says little: skip it.
    const per = (now: ReceiveTotals | undefined, before: ReceiveTotals | undefined, least: number): number | undefined => {
      if (!now || !before || !(now.count - before.count >= least)) return undefined;
      const v = ((now.delay - before.delay) / (now.count - before.count)) * 1000;
      return Number.isFinite(v) && v >= 0 ? v : undefined;
    };
    const v = per(video, this.#video, 5);
    const a = per(audio, this.#audio, 4800);
    if (video) this.#video = video;
    if (audio) this.#audio = audio;
    return v !== undefined && a !== undefined ? v - a : undefined;
  }
}

/** A relay of one session: consume the actor's microphone track, publish `track`. */
export class AudioRelay {
  readonly #source = new RTCAudioSource();
  readonly track: MediaStreamTrack = this.#source.createTrack();
  readonly #line = new DelayLine();
  #sink: InstanceType<typeof RTCAudioSink> | undefined;
  #chunksIn = 0;
  #chunksOut = 0;
  #closed = false;

  constructor(initialDelayMs: number) {
    this.#line.setTarget(initialDelayMs);
  }

  /** Starts relaying from the actor's microphone track (replacing an earlier one). */
  attach(input: MediaStreamTrack): void {
    if (this.#closed) return;
    this.#sink?.stop();
    const sink = new RTCAudioSink(input);
    this.#sink = sink;
    sink.ondata = (d: AudioChunk & { bitsPerSample: number }) => {
      if (this.#closed || this.#sink !== sink || d.bitsPerSample !== 16) return;
      this.#chunksIn++;
      // wrtc reuses the buffer after the callback: the line keeps a copy.
      const out = this.#line.push({ samples: new Int16Array(d.samples), sampleRate: d.sampleRate, channelCount: d.channelCount, numberOfFrames: d.numberOfFrames });
      this.#source.onData({ ...out, bitsPerSample: 16 });
      this.#chunksOut++;
    };
  }

  /** The actor's microphone went away: stop reading it (the output track stays published). */
  detach(): void {
    this.#sink?.stop();
    this.#sink = undefined;
  }

  /** The video's current delay from arrival to the encoder, ms: the line follows it. */
  setTargetDelay(ms: number): void {
    this.#line.setTarget(ms);
  }


  stats(): AudioRelayStats {
    return {
      chunksIn: this.#chunksIn,
      chunksOut: this.#chunksOut,
      inserted: this.#line.inserted,
      dropped: this.#line.dropped,
      delayMs: this.#line.delayMs,
      targetMs: this.#line.targetMs,
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sink?.stop();
    this.#sink = undefined;
    this.track.stop();
  }
}
