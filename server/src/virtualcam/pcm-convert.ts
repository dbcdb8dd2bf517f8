/**
 * Converts the room's audio chunks to the one fixed format an output was
 * opened with. WebRTC's receive path does not promise one rate: the first
 * chunks of a track can come at 16 kHz (before the decoder's output is
 * known) and the rest at 48 kHz, or mono before stereo. A WAV or a player
 * has one rate in its header or on its command line, so every chunk is
 * brought to it: channels are mixed down or copied up, and the rate is
 * changed by linear interpolation that carries its phase and last frame
 * across chunks, so a steady stream has no seams.
 */

export interface PcmChunk {
  samples: Int16Array;
  sampleRate: number;
  channelCount: number;
  numberOfFrames: number;
}

export class PcmConverter {
  readonly #rate: number;
  readonly #channels: number;
  /** Rate of the chunks the carried state below belongs to. */
  #inRate = 0;
  /** Position of the next output frame, in input frames after the previous chunk's last frame (which is -1). */
  #t = 0;
  /** The previous chunk's last frame, already in the output's channel layout. */
  #prev: Float64Array;
  #hasPrev = false;
  #buf = new Int16Array(0);

  constructor(sampleRate: number, channels: number) {
    if (!(sampleRate > 0) || !(channels > 0)) throw new RangeError(`bad PCM format ${sampleRate} Hz × ${channels}`);
    this.#rate = sampleRate;
    this.#channels = channels;
    this.#prev = new Float64Array(channels);
  }

  /** The chunk in the output format: the input itself when it already is, else a view of a buffer reused by the next call. */
  convert(c: PcmChunk): Int16Array {
    const n = c.numberOfFrames;
    if (c.sampleRate === this.#rate && c.channelCount === this.#channels) {
      this.#remember(c);
      return c.samples.subarray(0, n * this.#channels);
    }
    if (c.sampleRate !== this.#inRate) {
      this.#inRate = c.sampleRate;
      this.#t = 0;
    }
    const ch = this.#channels;
    const step = c.sampleRate / this.#rate;
    // Without a carried frame, the first output frame is the chunk's own first frame.
    const t0 = this.#hasPrev ? this.#t : Math.max(0, this.#t);
    const frames = t0 <= n - 1 ? Math.floor((n - 1 - t0) / step) + 1 : 0;
    // One buffer, grown as needed and reused: every output copies what it keeps.
    if (this.#buf.length < frames * ch) this.#buf = new Int16Array(frames * ch);
    const out = this.#buf;
    for (let j = 0; j < frames; j++) {
      const t = t0 + j * step;
      const i = Math.floor(t);
      const f = t - i;
      for (let k = 0; k < ch; k++) {
        const a = i < 0 ? this.#prev[k]! : this.#sample(c, i, k);
        const b = i + 1 <= n - 1 ? this.#sample(c, i + 1, k) : a;
        out[j * ch + k] = Math.max(-32768, Math.min(32767, Math.round(a + (b - a) * f)));
      }
    }
    this.#t = t0 + frames * step - n;
    this.#remember(c);
    return out.subarray(0, frames * ch);
  }

  /** Frame i, channel k of the chunk, in the output's channel layout. */
  #sample(c: PcmChunk, i: number, k: number): number {
    const inCh = c.channelCount;
    const base = i * inCh;
    if (inCh === this.#channels) return c.samples[base + k] as number;
    if (this.#channels === 1) {
      let s = 0;
      for (let j = 0; j < inCh; j++) s += c.samples[base + j] as number;
      return s / inCh;
    }
    return c.samples[base + Math.min(k, inCh - 1)] as number;
  }

  #remember(c: PcmChunk): void {
    if (c.numberOfFrames === 0) return;
    for (let k = 0; k < this.#channels; k++) this.#prev[k] = this.#sample(c, c.numberOfFrames - 1, k);
    this.#hasPrev = true;
    if (c.sampleRate === this.#rate) {
      this.#inRate = c.sampleRate;
      this.#t = 0;
    }
  }
}
