/**
 * Machine-readable frame-id stamps in the luma plane, for glass-to-glass
 * latency measurement. A stamp is a row of square blocks along the top edge:
 * 2 start blocks (white, black), 20 id bits and 4 check bits, black or white.
 * Blocks are large enough to survive VP8 at modest bitrates; the reader samples
 * each block's centre.
 *
 * Written by test actors, copied input → output by the reenactor in
 * measurement mode, read by test viewers.
 */
export const STAMP_ID_BITS = 20;
const CHECK_BITS = 4;
const START = [1, 0];
const BLOCKS = START.length + STAMP_ID_BITS + CHECK_BITS;
const HI = 235;
const LO = 16;

/** Block size for a frame width: as big as fits, at least 4 px. */
export function stampBlockSize(width: number): number {
  return Math.max(4, Math.min(16, Math.floor(width / BLOCKS)));
}

/** Rows of the luma plane the stamp occupies. */
export function stampHeight(width: number): number {
  return stampBlockSize(width);
}

function checksum(id: number): number {
  let c = 0;
  for (let i = 0; i < STAMP_ID_BITS; i += CHECK_BITS) c ^= (id >>> i) & ((1 << CHECK_BITS) - 1);
  return c;
}

function bits(id: number): number[] {
  const out = [...START];
  for (let i = STAMP_ID_BITS - 1; i >= 0; i--) out.push((id >>> i) & 1);
  const c = checksum(id);
  for (let i = CHECK_BITS - 1; i >= 0; i--) out.push((c >>> i) & 1);
  return out;
}

/** Writes `id` (mod 2^20) into the top rows of an I420 luma plane. */
export function writeStamp(y: Uint8Array, width: number, id: number): void {
  const b = stampBlockSize(width);
  const pattern = bits(id % (1 << STAMP_ID_BITS));
  for (let k = 0; k < pattern.length; k++) {
    const v = pattern[k] ? HI : LO;
    for (let row = 0; row < b; row++) y.fill(v, row * width + k * b, row * width + (k + 1) * b);
  }
}

/** Reads a stamp; returns null when the start blocks or the checksum do not match. */
export function readStamp(y: Uint8Array, width: number): number | null {
  const b = stampBlockSize(width);
  const half = b >> 1;
  const sample = (k: number): number => {
    // Average a small square at the block centre: robust to codec ringing at edges.
    let sum = 0;
    let n = 0;
    for (let dy = -1; dy <= 1; dy++)
      for (let dx = -1; dx <= 1; dx++) {
        sum += y[(half + dy) * width + k * b + half + dx] ?? 0;
        n++;
      }
    return sum / n > (HI + LO) / 2 ? 1 : 0;
  };
  for (let k = 0; k < START.length; k++) if (sample(k) !== START[k]) return null;
  let id = 0;
  for (let i = 0; i < STAMP_ID_BITS; i++) id = (id << 1) | sample(START.length + i);
  let c = 0;
  for (let i = 0; i < CHECK_BITS; i++) c = (c << 1) | sample(START.length + STAMP_ID_BITS + i);
  return c === checksum(id) ? id : null;
}
