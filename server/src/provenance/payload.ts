/**
 * The watermark's payload: who made this video, where and when, signed.
 *
 * 104 bits: version (4), server (12), room (16), session (16) as hashes of
 * their names, time (32, unix seconds at the session's start), a tag (16)
 * = HMAC-SHA256 of the rest under the server's key, truncated, and a CRC-8
 * over everything before it, so a reader without the key can still tell a
 * clean decode from noise. The names behind the hashes are in the server's
 * provenance log (provenance.jsonl in the data folder), which `npm run
 * verify` reads when it can.
 */
import { createHash, createHmac } from 'node:crypto';

export const PAYLOAD_VERSION = 1;
export const PAYLOAD_BITS = 104;

export interface Provenance {
  server: string;
  room: string;
  session: string;
  /** Unix seconds. */
  time: number;
}

export interface DecodedPayload {
  version: number;
  serverHash: number;
  roomHash: number;
  sessionHash: number;
  time: number;
  tag: number;
}

export function nameHash(name: string, bits: number): number {
  return createHash('sha256').update(name).digest().readUInt32BE(0) >>> (32 - bits);
}

function tagOf(fields: Buffer, key: string): number {
  return createHmac('sha256', key).update(fields).digest().readUInt16BE(0);
}

function crc8(bytes: Uint8Array): number {
  let c = 0;
  for (const b of bytes) {
    c ^= b;
    for (let i = 0; i < 8; i++) c = c & 0x80 ? ((c << 1) ^ 0x07) & 0xff : (c << 1) & 0xff;
  }
  return c;
}

/** The signed fields: version and server (2 bytes), room (2), session (2), time (4). */
function fieldBytes(p: Omit<DecodedPayload, 'tag'>): Buffer {
  const b = Buffer.alloc(10);
  b.writeUInt16BE(((p.version & 0xf) << 12) | (p.serverHash & 0xfff), 0);
  b.writeUInt16BE(p.roomHash & 0xffff, 2);
  b.writeUInt16BE(p.sessionHash & 0xffff, 4);
  b.writeUInt32BE(p.time >>> 0, 6);
  return b;
}

/** Payload bits (one 0/1 per byte, most significant first) for a session. */
export function encodePayload(p: Provenance, key: string): Uint8Array {
  const fields = fieldBytes({ version: PAYLOAD_VERSION, serverHash: nameHash(p.server, 12), roomHash: nameHash(p.room, 16), sessionHash: nameHash(p.session, 16), time: Math.floor(p.time) });
  const bytes = Buffer.alloc(13);
  fields.copy(bytes, 0);
  bytes.writeUInt16BE(tagOf(fields, key), 10);
  bytes[12] = crc8(bytes.subarray(0, 12));
  const bits = new Uint8Array(PAYLOAD_BITS);
  for (let i = 0; i < PAYLOAD_BITS; i++) bits[i] = (bytes[i >> 3]! >> (7 - (i & 7))) & 1;
  return bits;
}

/** Reads payload bits back; null when the CRC does not match (not a clean decode). */
export function decodePayload(bits: ArrayLike<number>): DecodedPayload | null {
  if (bits.length !== PAYLOAD_BITS) return null;
  const bytes = Buffer.alloc(13);
  for (let i = 0; i < PAYLOAD_BITS; i++) if (bits[i]) bytes[i >> 3] = bytes[i >> 3]! | (1 << (7 - (i & 7)));
  if (crc8(bytes.subarray(0, 12)) !== bytes[12]) return null;
  const vs = bytes.readUInt16BE(0);
  return { version: vs >> 12, serverHash: vs & 0xfff, roomHash: bytes.readUInt16BE(2), sessionHash: bytes.readUInt16BE(4), time: bytes.readUInt32BE(6), tag: bytes.readUInt16BE(10) };
}

/** Whether a decoded payload's tag was made with `key`. */
export function tagValid(p: DecodedPayload, key: string): boolean {
  return tagOf(fieldBytes(p), key) === p.tag;
}
