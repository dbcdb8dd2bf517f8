/**
 * An invisible provenance watermark for synthesized video, built to survive
 * real-time codecs at low bitrates (VP8, H.264 at 300 kbit/s) and rescaling.
 *
 * The mark is a very low-frequency luma field, ±AMPLITUDE grey levels: the
 * frame is divided into GRID×GRID cells in normalised coordinates (so any
 * scaling of the recording keeps them), each cell a smooth raised-cosine bump
 * (neighbouring bumps sum to one: no edges). Every CHIP_MS the sign of each
 * cell changes by a public pseudo-random sequence that repeats every
 * SEQ_CHIPS chips. Codecs keep such large, slow changes (a block's mean is
 * what they quantise most finely), and a detector that differences each
 * cell's mean over time cancels the picture, however busy, wherever it holds
 * still. Half the cells carry a known sequence (presence and timing); the
 * other half carry the payload's bits, spread by their own sequence and
 * repeated for as long as the session runs.
 *
 * The payload (PAYLOAD_BITS) is the server, room, session and time, signed
 * with a truncated HMAC under the server's key, plus a CRC so a reader
 * without the key can still tell a clean decode (payload.ts).
 */

/** Cells per side. */
export const GRID = 8;
/** One chip (a period of constant signs), ms. */
export const CHIP_MS = 200;
/** Chips before the sequence repeats. */
export const SEQ_CHIPS = 64;
/** Peak luma offset of the field, grey levels. */
export const AMPLITUDE = 3;
/** The cells (row-major index) that carry the known sync sequence; the rest carry payload bits. */
export const SYNC_CELLS: readonly number[] = Array.from({ length: GRID * GRID }, (_, i) => i).filter((i) => (Math.floor(i / GRID) + (i % GRID)) % 2 === 0);
export const DATA_CELLS: readonly number[] = Array.from({ length: GRID * GRID }, (_, i) => i).filter((i) => (Math.floor(i / GRID) + (i % GRID)) % 2 === 1);

/** A small deterministic PRNG (xorshift32) seeded from a string: the public sequences. */
function prng(seed: string): () => number {
  let h = 2166136261;
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 16777619);
  let x = h >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/**
 * Balanced chips: in every chip, half of the given cells are +1 and half −1 (a random half), so a
 * change of the whole picture's brightness (auto-exposure, flicker) is orthogonal to the mark.
 */
function balanced(seed: string, cells: readonly number[]): Int8Array {
  const next = prng(seed);
  const out = new Int8Array(SEQ_CHIPS * GRID * GRID);
  for (let k = 0; k < SEQ_CHIPS; k++) {
    const order = [...cells];
    for (let i = order.length - 1; i > 0; i--) {
      const j = next() % (i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    order.forEach((c, i) => (out[k * GRID * GRID + c] = i < order.length / 2 ? 1 : -1));
  }
  return out;
}

/** Sync chips: SYNC[k * GRID² + cell] for chip k of the cycle (only SYNC_CELLS are used). */
export const SYNC = balanced('reenact-provenance-v1/sync', SYNC_CELLS);
/** Spreading chips of the data cells, same layout. */
export const SPREAD = balanced('reenact-provenance-v1/spread', DATA_CELLS);

/**
 * Which payload bit data cell `cell` carries in chip `k` (only k modulo the cycle matters, so a
 * reader that has found the cycle's phase knows every placement): bits are spread across cells and
 * chips, each landing SEQ_CHIPS × DATA_CELLS / bits times per cycle.
 */
export function bitIndex(k: number, cell: number, bits: number): number {
  return (((k % SEQ_CHIPS) * DATA_CELLS.length + DATA_SLOT[cell]!) * 37) % bits;
}

/** Each data cell's position in DATA_CELLS (−1 for sync cells): bitIndex runs per cell per frame. */
const DATA_SLOT = Int16Array.from({ length: GRID * GRID }, (_, c) => DATA_CELLS.indexOf(c));

/** Per-axis bump weights: for each pixel, its two cells and the first one's weight (the other has 1 − w). */
export interface AxisWeights {
  c0: Int16Array;
  c1: Int16Array;
  w0: Float32Array;
}

export function axisWeights(length: number): AxisWeights {
  const c0 = new Int16Array(length), c1 = new Int16Array(length), w0 = new Float32Array(length);
  const cell = length / GRID;
  for (let p = 0; p < length; p++) {
    // Position in cell units, measured from the first cell's centre.
    const u = (p + 0.5) / cell - 0.5;
    const i = Math.floor(u);
    const t = u - i;
    const a = Math.min(GRID - 1, Math.max(0, i)), b = Math.min(GRID - 1, Math.max(0, i + 1));
    c0[p] = a;
    c1[p] = b;
    // Raised cosine: cos² falls from 1 at the centre to 0 at the next centre; the pair sums to 1.
    w0[p] = Math.cos((Math.PI / 2) * t) ** 2;
  }
  return { c0, c1, w0 };
}

/** The chip index of a time, ms since the session's origin, and how far into the chip it is (0..1). */
export function chipAt(timeMs: number): { k: number; phase: number } {
  const u = Math.max(0, timeMs) / CHIP_MS;
  const k = Math.floor(u);
  return { k, phase: u - k };
}

/** Cell values (±1 times the amplitude share) of chip k for a payload. */
export function chipField(k: number, payload: Uint8Array, out: Float32Array): void {
  const base = (k % SEQ_CHIPS) * GRID * GRID;
  for (const c of SYNC_CELLS) out[c] = SYNC[base + c]!;
  for (const c of DATA_CELLS) out[c] = SPREAD[base + c]! * (payload[bitIndex(k, c, payload.length)]! ? 1 : -1);
}

/**
 * Adds the field to a luma plane. Within the last TRANSITION of a chip the field eases into the next
 * chip's (raised cosine), so no frame jumps by the full 2 × AMPLITUDE.
 */
export class WatermarkEmbedder {
  readonly #payload: Uint8Array;
  readonly #origin: number;
  #w = 0;
  #h = 0;
  #ax: AxisWeights | null = null;
  #ay: AxisWeights | null = null;
  readonly #cur = new Float32Array(GRID * GRID);
  readonly #next = new Float32Array(GRID * GRID);
  readonly #mix = new Float32Array(GRID * GRID);
  readonly #row = new Int32Array(GRID);
  #wx: Int32Array | null = null;

  /** payload: bits (0/1 per byte); originMs: the time chip 0 starts (the session's start). */
  constructor(payload: Uint8Array, originMs: number) {
    this.#payload = payload;
    this.#origin = originMs;
  }

  /** Marks the luma plane (first width·height bytes of an I420 frame) for a frame shown at timeMs. */
  mark(y: Uint8Array, width: number, height: number, timeMs: number): void {
    if (width !== this.#w || height !== this.#h) {
      this.#w = width;
      this.#h = height;
      this.#ax = axisWeights(width);
      this.#ay = axisWeights(height);
      this.#wx = Int32Array.from(this.#ax.w0, (w) => Math.round(w * 256));
    }
    const { k, phase } = chipAt(timeMs - this.#origin);
    chipField(k, this.#payload, this.#cur);
    const TRANSITION = 0.3;
    const mix = this.#mix;
    if (phase > 1 - TRANSITION) {
      chipField(k + 1, this.#payload, this.#next);
      const s = (phase - (1 - TRANSITION)) / TRANSITION;
      const b = 0.5 - 0.5 * Math.cos(Math.PI * s);
      for (let i = 0; i < mix.length; i++) mix[i] = AMPLITUDE * ((1 - b) * this.#cur[i]! + b * this.#next[i]!);
    } else for (let i = 0; i < mix.length; i++) mix[i] = AMPLITUDE * this.#cur[i]!;
    const ax = this.#ax!, ay = this.#ay!, row = this.#row;
    const c0 = ax.c0, c1 = ax.c1, w0 = this.#wx!;
    for (let py = 0; py < height; py++) {
      const r0 = ay.c0[py]!, r1 = ay.c1[py]!, wy = ay.w0[py]!;
      // This row's cell values in 1/256 grey levels; a pixel's offset is their blend in 1/65536.
      for (let c = 0; c < GRID; c++) row[c] = Math.round(256 * (wy * mix[r0 * GRID + c]! + (1 - wy) * mix[r1 * GRID + c]!));
      const o = py * width;
      const d = (py & 3) << 2;
      for (let px = 0; px < width; px++) {
        const w = w0[px]!;
        // Ordered dither then floor (>> 16 floors negatives too): the mean offset is exact.
        const v = y[o + px]! + ((row[c0[px]!]! * w + row[c1[px]!]! * (256 - w) + DITHER[d | (px & 3)]!) >> 16);
        y[o + px] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
}

/** 4×4 ordered dither thresholds in (0, 1), in 1/65536. */
const DITHER = Int32Array.from([0, 8, 2, 10, 12, 4, 14, 6, 3, 11, 1, 9, 15, 7, 13, 5], (v) => Math.round(((v + 0.5) / 16) * 65536));

/** Bump-weighted mean luma of every cell of a plane (the detector's measurement). */
export function cellMeans(y: Uint8Array, width: number, height: number, ax: AxisWeights, ay: AxisWeights, out: Float64Array): void {
  const sum = new Float64Array(GRID * GRID), wsum = new Float64Array(GRID * GRID);
  for (let py = 0; py < height; py++) {
    const r0 = ay.c0[py]!, r1 = ay.c1[py]!, wy = ay.w0[py]!;
    const o = py * width;
    for (let px = 0; px < width; px++) {
      const v = y[o + px]!;
      const c0 = ax.c0[px]!, c1 = ax.c1[px]!, wx = ax.w0[px]!;
      const a = wy * wx, b = wy * (1 - wx), c = (1 - wy) * wx, d = (1 - wy) * (1 - wx);
      const add = (cell: number, w: number): void => {
        sum[cell] = sum[cell]! + w * v;
        wsum[cell] = wsum[cell]! + w;
      };
      add(r0 * GRID + c0, a);
      add(r0 * GRID + c1, b);
      add(r1 * GRID + c0, c);
      add(r1 * GRID + c1, d);
    }
  }
  for (let i = 0; i < out.length; i++) out[i] = wsum[i]! > 0 ? sum[i]! / wsum[i]! : 0;
}
