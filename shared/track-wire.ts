/**
 * Privacy mode's wire format: one binary data-channel message per tracked
 * camera frame, from the actor's browser to the reenactor. It carries the
 * face-mesh landmarks in the camera frame's pixels, never pixels of the frame.
 *
 * Layout (little-endian): a 40-byte header, then one 32-bit word per point.
 *
 *   u8  version (2)        u8  flags (bit 0: a face was found)
 *   u16 point count (0, or 468 / 478)
 *   u32 frame id (the measurement stamp id, 20 bits used)
 *   f64 capture time, sender's wall clock in ms (performance.timeOrigin + now)
 *   u16 frame width        u16 frame height
 *   f32 x0, y0, z0         the points' minimum corner, px
 *   f32 spanXY, spanZ      the larger of the x and y extents, and the z extent, px
 *   per point: x in bits 0–10, y in 11–21 (steps of spanXY / 2047), z in 22–31 (spanZ / 1023)
 *
 * 468 points come to 1912 bytes. For a face 300 px across, a step is 0.15 px
 * in x, y and z: finer than the tracker's own frame-to-frame noise.
 */
import { LANDMARK_COUNT, LANDMARK_COUNT_WITH_IRIS } from './tracking.ts';

export const TRACK_WIRE_VERSION = 2;
export const TRACK_HEADER_BYTES = 40;
const POINT_BYTES = 4;
const XY_STEPS = 2047;
const Z_STEPS = 1023;
/** Largest frame side a message may describe. */
export const TRACK_MAX_SIDE = 4096;

export interface TrackMessage {
  frameId: number;
  captureMs: number;
  width: number;
  height: number;
  /** [x0, y0, z0, x1, ...] in frame pixels, or null when no face was found. */
  points: Float32Array | null;
}

export class TrackWireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrackWireError';
  }
}

export function trackMessageBytes(points: number): number {
  return TRACK_HEADER_BYTES + points * POINT_BYTES;
}

/**
 * Encodes a message. `points` holds count × 3 values in frame pixels; `out`
 * is reused when it has the right size.
 */
export function encodeTrackMessage(m: TrackMessage, out?: Uint8Array): Uint8Array {
  const count = m.points ? m.points.length / 3 : 0;
  if (count !== 0 && count !== LANDMARK_COUNT && count !== LANDMARK_COUNT_WITH_IRIS) throw new TrackWireError(`cannot encode ${count} points`);
  const bytes = trackMessageBytes(count);
  const buf = out && out.byteLength === bytes ? out : new Uint8Array(bytes);
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  v.setUint8(0, TRACK_WIRE_VERSION);
  v.setUint8(1, m.points ? 1 : 0);
  v.setUint16(2, count, true);
  v.setUint32(4, m.frameId >>> 0, true);
  v.setFloat64(8, m.captureMs, true);
  v.setUint16(16, m.width, true);
  v.setUint16(18, m.height, true);
  const p = m.points;
  if (!p) {
    for (let o = 20; o < TRACK_HEADER_BYTES; o += 4) v.setFloat32(o, 0, true);
    return buf;
  }
  const min = [Infinity, Infinity, Infinity];
  const max = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < p.length; i++) {
    const c = i % 3;
    const x = p[i]!;
    if (!Number.isFinite(x)) throw new TrackWireError(`point value ${i} is not finite`);
    if (x < min[c]!) min[c] = x;
    if (x > max[c]!) max[c] = x;
  }
  // Round the origin and spans to f32 first, so encoder and decoder use the same numbers.
  const x0 = Math.fround(min[0]!);
  const y0 = Math.fround(min[1]!);
  const z0 = Math.fround(min[2]!);
  const spanXY = Math.fround(Math.max(max[0]! - x0, max[1]! - y0, 1e-3) * (1 + 1e-6));
  const spanZ = Math.fround(Math.max(max[2]! - z0, 1e-3) * (1 + 1e-6));
  v.setFloat32(20, x0, true);
  v.setFloat32(24, y0, true);
  v.setFloat32(28, z0, true);
  v.setFloat32(32, spanXY, true);
  v.setFloat32(36, spanZ, true);
  const kxy = XY_STEPS / spanXY;
  const kz = Z_STEPS / spanZ;
  for (let i = 0, o = TRACK_HEADER_BYTES; i < count; i++, o += POINT_BYTES) {
    const qx = Math.min(XY_STEPS, Math.round((p[i * 3]! - x0) * kxy));
    const qy = Math.min(XY_STEPS, Math.round((p[i * 3 + 1]! - y0) * kxy));
    const qz = Math.min(Z_STEPS, Math.round((p[i * 3 + 2]! - z0) * kz));
    v.setUint32(o, (qx | (qy << 11) | (qz << 22)) >>> 0, true);
  }
  return buf;
}

/**
 * Decodes and validates a message: anything malformed (wrong size, version,
 * point count, frame size, a non-finite number) throws TrackWireError.
 * `points` is reused when it has the right size.
 */
export function decodeTrackMessage(data: ArrayBuffer | ArrayBufferView, points?: Float32Array): TrackMessage {
  const buf = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (buf.byteLength < TRACK_HEADER_BYTES) throw new TrackWireError(`message of ${buf.byteLength} bytes is shorter than the header`);
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const version = v.getUint8(0);
  if (version !== TRACK_WIRE_VERSION) throw new TrackWireError(`unsupported track message version ${version}`);
  const face = (v.getUint8(1) & 1) === 1;
  const count = v.getUint16(2, true);
  if (face ? count !== LANDMARK_COUNT && count !== LANDMARK_COUNT_WITH_IRIS : count !== 0) throw new TrackWireError(`bad point count ${count} (face ${face})`);
  if (buf.byteLength !== trackMessageBytes(count)) throw new TrackWireError(`message is ${buf.byteLength} bytes; ${count} points need ${trackMessageBytes(count)}`);
  const captureMs = v.getFloat64(8, true);
  if (!Number.isFinite(captureMs)) throw new TrackWireError('capture time is not finite');
  const width = v.getUint16(16, true);
  const height = v.getUint16(18, true);
  if (width < 16 || height < 16 || width > TRACK_MAX_SIDE || height > TRACK_MAX_SIDE) throw new TrackWireError(`bad frame size ${width}×${height}`);
  let out: Float32Array | null = null;
  if (face) {
    const x0 = v.getFloat32(20, true);
    const y0 = v.getFloat32(24, true);
    const z0 = v.getFloat32(28, true);
    const spanXY = v.getFloat32(32, true);
    const spanZ = v.getFloat32(36, true);
    const limit = 4 * TRACK_MAX_SIDE;
    for (const f of [x0, y0, z0, spanXY, spanZ]) if (!Number.isFinite(f) || Math.abs(f) > limit) throw new TrackWireError('bad point range in header');
    if (spanXY <= 0 || spanZ <= 0) throw new TrackWireError('bad point range in header');
    const sxy = spanXY / XY_STEPS;
    const sz = spanZ / Z_STEPS;
    out = points && points.length === count * 3 ? points : new Float32Array(count * 3);
    for (let i = 0, o = TRACK_HEADER_BYTES; i < count; i++, o += POINT_BYTES) {
      const w = v.getUint32(o, true);
      out[i * 3] = x0 + (w & 0x7ff) * sxy;
      out[i * 3 + 1] = y0 + ((w >>> 11) & 0x7ff) * sxy;
      out[i * 3 + 2] = z0 + (w >>> 22) * sz;
    }
  }
  return { frameId: v.getUint32(4, true), captureMs, width, height, points: out };
}
