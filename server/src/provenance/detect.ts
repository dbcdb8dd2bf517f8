/**
 * Reading the watermark back (watermark.ts) from a recording's frames: only
 * each frame's time and its cells' mean luma are needed, so any size,
 * container and codec works once decoded.
 *
 * 1. For each hypothesis of the chip phase (PHASES steps of a chip), frames
 *    are grouped into chips (the part of each chip before the embedder's
 *    transition), and each cell's chip mean has the mean of its neighbouring
 *    chips (±NEIGHBOURS chips) taken off, then each chip the best plane over
 *    its cells, and what is left is clipped at CLIP_SIGMA robust deviations
 *    of its cell: the mark plus whatever
 *    of the picture moved.
 * 2. The sync cells are correlated with the known sequence at every one of
 *    its SEQ_CHIPS shifts; the best (phase, shift) over the whole recording
 *    is the timing. Each chip has the best plane over its cells taken off
 *    (whole-picture brightness changes), and each cell is weighted by its own
 *    noise (a still background counts for more than a moving mouth).
 * 3. Per one-second window, the same correlation at that timing is a z-score;
 *    a window is marked when it reaches WINDOW_Z in a recording whose whole
 *    z reached GLOBAL_Z.
 * 4. The data cells, despread at that timing, vote each payload bit.
 */
import { CHIP_MS, DATA_CELLS, GRID, SEQ_CHIPS, SPREAD, SYNC, SYNC_CELLS, bitIndex } from './watermark.ts';

export const PHASES = 10;
export const NEIGHBOURS = 3;
/** The share of a chip the embedder holds steady (the rest eases into the next chip); a margin is kept. */
const STEADY = 0.68;
/** Residuals are clipped at this many robust standard deviations of their cell. */
const CLIP_SIGMA = 3;
/** A one-second window counts as marked at this z-score (false positives measured on real footage: docs/provenance.md). */
export const WINDOW_Z = 3.5;
/** The whole recording's best timing must reach this to be taken as marked at all. */
export const GLOBAL_Z = 6;

export interface CellFrame {
  /** Frame time in the recording, ms. */
  timeMs: number;
  /** Bump-weighted mean luma of each cell (GRID² values). */
  means: Float64Array;
}

export interface Detection {
  /** The best timing's z-score over the whole recording. */
  z: number;
  marked: boolean;
  phaseMs: number;
  shift: number;
  /** Per one-second window: its start (ms) and z-score at the found timing. */
  windows: { startMs: number; z: number; marked: boolean }[];
  /** Soft payload bits (positive = 1) and their z-scores, for `bits` payload bits. */
  soft: Float64Array;
  bits: Uint8Array;
  /** The weakest bit's |z|. */
  minBitZ: number;
}

interface Chips {
  /** Residual per chip and cell (chip-major), NaN where the chip had no steady frame. */
  r: Float64Array;
  count: number;
  firstChip: number;
  /** Per cell inverse noise variance. */
  weight: Float64Array;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** Cell centres in cell units, centred (for the plane fit). */
const CX = Float64Array.from({ length: GRID * GRID }, (_, c) => (c % GRID) - (GRID - 1) / 2);
const CY = Float64Array.from({ length: GRID * GRID }, (_, c) => Math.floor(c / GRID) - (GRID - 1) / 2);

/** Subtracts the least-squares plane a + b·x + c·y from one chip's cell residuals (at offset o). */
function removePlane(r: Float64Array, o: number): void {
  const cells = GRID * GRID;
  let n = 0, s = 0, sx = 0, sy = 0, sxx = 0, syy = 0;
  for (let c = 0; c < cells; c++) {
    const v = r[o + c]!;
    if (Number.isNaN(v)) return;
    n++;
    s += v;
    sx += v * CX[c]!;
    sy += v * CY[c]!;
    sxx += CX[c]! * CX[c]!;
    syy += CY[c]! * CY[c]!;
  }
  // The centred grid makes 1, x and y orthogonal: each coefficient is a plain projection.
  const a = s / n, b = sx / sxx, cc = sy / syy;
  for (let c = 0; c < cells; c++) r[o + c] = r[o + c]! - a - b * CX[c]! - cc * CY[c]!;
}

function chips(frames: CellFrame[], phaseMs: number): Chips {
  const cells = GRID * GRID;
  const first = Math.floor((frames[0]!.timeMs + phaseMs) / CHIP_MS);
  const last = Math.floor((frames[frames.length - 1]!.timeMs + phaseMs) / CHIP_MS);
  const count = last - first + 1;
  const sum = new Float64Array(count * cells), n = new Float64Array(count);
  for (const f of frames) {
    const u = (f.timeMs + phaseMs) / CHIP_MS;
    const k = Math.floor(u);
    if (u - k > STEADY) continue;
    const i = k - first;
    n[i] = n[i]! + 1;
    for (let c = 0; c < cells; c++) sum[i * cells + c] = sum[i * cells + c]! + f.means[c]!;
  }
  const m = new Float64Array(count * cells).fill(Number.NaN);
  for (let i = 0; i < count; i++) if (n[i]! > 0) for (let c = 0; c < cells; c++) m[i * cells + c] = sum[i * cells + c]! / n[i]!;
  const r = new Float64Array(count * cells).fill(Number.NaN);
  for (let c = 0; c < cells; c++) {
    for (let i = 0; i < count; i++) {
      const v = m[i * cells + c]!;
      if (Number.isNaN(v)) continue;
      // The picture's level here: the mean of the neighbouring chips (not this one). A median would
      // often equal this chip's own marked level (half of a run of equal signs) and hide the mark.
      let sum = 0, n = 0;
      for (let j = Math.max(0, i - NEIGHBOURS); j <= Math.min(count - 1, i + NEIGHBOURS); j++) {
        if (j === i || Number.isNaN(m[j * cells + c]!)) continue;
        sum += m[j * cells + c]!;
        n++;
      }
      if (n < 2) continue;
      r[i * cells + c] = v - sum / n;
    }
  }
  // Whole-picture changes (exposure, flicker, a light sweeping across) are a plane over the cells:
  // fit one per chip and take it off; the balanced mark is nearly orthogonal to it.
  for (let i = 0; i < count; i++) removePlane(r, i * cells);
  const weight = new Float64Array(cells);
  for (let c = 0; c < cells; c++) {
    const res: number[] = [];
    for (let i = 0; i < count; i++) if (!Number.isNaN(r[i * cells + c]!)) res.push(r[i * cells + c]!);
    // Robust spread (MAD), floored: a flat cell is not infinitely trustworthy.
    const sigma = Math.max(res.length ? median(res.map(Math.abs)) * 1.4826 : Infinity, 0.5);
    weight[c] = 1 / sigma ** 2;
    // Clip to ±CLIP_SIGMA: a cut or a burst of motion is one huge chip in many cells at once, and
    // unclipped it can match some timing hypothesis by itself (a looped clip scored z 12 so).
    for (let i = 0; i < count; i++) {
      const v = r[i * cells + c]!;
      if (!Number.isNaN(v)) r[i * cells + c] = Math.max(-CLIP_SIGMA * sigma, Math.min(CLIP_SIGMA * sigma, v));
    }
  }
  return { r, count, firstChip: first, weight };
}

/** Sync correlation z over chips [i0, i1) at cycle shift s. */
function syncZ(ch: Chips, s: number, i0: number, i1: number): number {
  const cells = GRID * GRID;
  let num = 0, den = 0;
  for (let i = i0; i < i1; i++) {
    const base = (((ch.firstChip + i + s) % SEQ_CHIPS) + SEQ_CHIPS) % SEQ_CHIPS * cells;
    for (const c of SYNC_CELLS) {
      const v = ch.r[i * cells + c]!;
      if (Number.isNaN(v)) continue;
      const w = ch.weight[c]!;
      num += w * v * SYNC[base + c]!;
      den += w;
    }
  }
  return den > 0 ? num / Math.sqrt(den) : 0;
}

/** Finds the mark in a recording's cell means; `bits` is the payload length to read. */
export function detect(frames: CellFrame[], bits: number): Detection {
  if (frames.length < 2) throw new RangeError('need at least two frames');
  let best = { z: -Infinity, phaseMs: 0, shift: 0, ch: null as Chips | null };
  for (let p = 0; p < PHASES; p++) {
    const phaseMs = (p * CHIP_MS) / PHASES;
    const ch = chips(frames, phaseMs);
    for (let s = 0; s < SEQ_CHIPS; s++) {
      const z = syncZ(ch, s, 0, ch.count);
      if (z > best.z) best = { z, phaseMs, shift: s, ch };
    }
  }
  const ch = best.ch!;
  const cells = GRID * GRID;
  const perWindow = Math.round(1000 / CHIP_MS);
  const windows: Detection['windows'] = [];
  for (let i = 0; i + perWindow <= ch.count; i += perWindow) {
    const z = syncZ(ch, best.shift, i, i + perWindow);
    // A window counts only in a recording found marked: the timing search picks the best of many
    // hypotheses, so on unmarked footage a window's z at that timing leans high.
    windows.push({ startMs: (ch.firstChip + i) * CHIP_MS - best.phaseMs, z, marked: best.z >= GLOBAL_Z && z >= WINDOW_Z });
  }
  const num = new Float64Array(bits), den = new Float64Array(bits);
  for (let i = 0; i < ch.count; i++) {
    const k = (((ch.firstChip + i + best.shift) % SEQ_CHIPS) + SEQ_CHIPS) % SEQ_CHIPS;
    for (const c of DATA_CELLS) {
      const v = ch.r[i * cells + c]!;
      if (Number.isNaN(v)) continue;
      const j = bitIndex(k, c, bits);
      const w = ch.weight[c]!;
      num[j] = num[j]! + w * v * SPREAD[k * cells + c]!;
      den[j] = den[j]! + w;
    }
  }
  const soft = new Float64Array(bits);
  let minBitZ = Infinity;
  for (let j = 0; j < bits; j++) {
    soft[j] = den[j]! > 0 ? num[j]! / Math.sqrt(den[j]!) : 0;
    minBitZ = Math.min(minBitZ, Math.abs(soft[j]!));
  }
  return {
    z: best.z, marked: best.z >= GLOBAL_Z, phaseMs: best.phaseMs, shift: best.shift, windows,
    soft, bits: Uint8Array.from(soft, (v) => (v > 0 ? 1 : 0)), minBitZ,
  };
}
