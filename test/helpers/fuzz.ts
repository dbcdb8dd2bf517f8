/**
 * Seeded generators of hostile input for the fuzz tests: signalling messages (malformed shapes,
 * prototype-pollution keys, reserved names, huge payloads) and upload files (mutated JPEG, PNG
 * and WebP, and decompression bombs). The same seed gives the same inputs, so a failure can be
 * replayed.
 */
import { deflateSync } from 'node:zlib';
import { prng } from '../../loadtest/prng.ts';

export { prng };

const METHODS = [
  'join', 'createWebRtcTransport', 'connectWebRtcTransport', 'produce', 'closeProducer', 'produceData', 'consumeData', 'consume', 'resumeConsumer',
  'setPreferredLayers', 'requestKeyFrame', 'closeConsumer', 'leave', 'listTargets', 'setTarget', 'resetNeutral', 'setOptions',
];
const RESERVED = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf'];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function junk(r: () => number, depth = 0): unknown {
  const k = Math.floor(r() * (depth > 3 ? 6 : 9));
  switch (k) {
    case 0: return null;
    case 1: return Math.floor(r() * 2 ** 53) * (r() < 0.5 ? -1 : 1);
    case 2: return r() < 0.5 ? Number.MAX_VALUE : -0;
    case 3: return 'x'.repeat(Math.floor(r() * 300));
    case 4: return r() < 0.5;
    case 5: return pick(r, RESERVED);
    case 6: return Array.from({ length: Math.floor(r() * 5) }, () => junk(r, depth + 1));
    case 7: {
      // Objects whose keys are prototype-pollution names, as JSON.parse makes them (own keys).
      const fields: string[] = [];
      for (let i = 0; i < 1 + Math.floor(r() * 4); i++) {
        fields.push(`${JSON.stringify(pick(r, [...RESERVED, 'token', 'transportId', 'kind', 'rtpParameters', 'data']))}:${JSON.stringify(junk(r, depth + 1)) ?? 'null'}`);
      }
      return JSON.parse(`{${fields.join(',')}}`) as unknown;
    }
    default: {
      let v: unknown = 'deep';
      for (let i = 0; i < 20 + Math.floor(r() * 200); i++) v = { a: v };
      return v;
    }
  }
}

/** One hostile request payload (what a client could emit as the 'request' event's argument). */
export function hostileRequest(r: () => number): unknown {
  const k = r();
  if (k < 0.1) return junk(r);
  if (k < 0.2) return { method: pick(r, [...RESERVED, 'admin', 'join ', 'JOIN', '', 'x'.repeat(5000)]), data: junk(r) };
  if (k < 0.3) return JSON.parse(`{"method":"join","data":{"token":"x","__proto__":{"polluted":true}},"__proto__":{"polluted":true}}`) as unknown;
  // Over the request limit (64 KB) but under the transport's (128 KB): answered E_BAD_REQUEST.
  if (k < 0.32) return { method: 'join', data: { token: 'a'.repeat(100 * 1024) } };
  if (k < 0.34) return { method: pick(r, METHODS), data: { blob: 'b'.repeat(100 * 1024) } };
  // A known method with fields of the wrong type, missing or extra.
  const data: Record<string, unknown> = {};
  for (const key of ['token', 'direction', 'transportId', 'producerId', 'consumerId', 'kind', 'rtpParameters', 'dtlsParameters', 'label', 'targetId', 'spatialLayer', 'sideBySide', 'output']) {
    if (r() < 0.25) data[key] = junk(r);
  }
  return { method: pick(r, METHODS), data: r() < 0.1 ? junk(r) : data };
}

function crc32(buf: Uint8Array): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A valid-looking PNG whose header claims width × height, with a little compressed data. */
export function pngBomb(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
  // A few rows of zeros that would inflate into width × height × 3 bytes if the decoder kept going.
  const rows = deflateSync(Buffer.alloc(Math.min(64 * 1024 * 1024, (width * 3 + 1) * 64)));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), pngChunk('IDAT', rows), pngChunk('IEND', new Uint8Array(0))]);
}

/** A real JPEG with its frame header (SOF0) rewritten to claim width × height. */
export function jpegBomb(jpeg: Uint8Array, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i + 9 < out.length; ) {
    if (out[i] !== 0xff) break;
    const marker = out[i + 1]!;
    const len = out.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xc3) {
      out.writeUInt16BE(Math.min(65535, height), i + 5);
      out.writeUInt16BE(Math.min(65535, width), i + 7);
      return out;
    }
    i += 2 + len;
  }
  throw new Error('no SOF marker found');
}

/** One mutation of a real file: bit flips, byte runs, truncation, a spliced header, a repeated block. */
export function mutate(r: () => number, src: Uint8Array): Buffer {
  const b = Buffer.from(src);
  const k = r();
  if (k < 0.3) {
    for (let i = 0; i < 1 + Math.floor(r() * 20); i++) {
      const at = Math.floor(r() * b.length);
      b[at] = b[at]! ^ (1 << Math.floor(r() * 8));
    }
    return b;
  }
  if (k < 0.45) {
    // Flips in the first 512 bytes: headers, chunk lengths, markers.
    for (let i = 0; i < 1 + Math.floor(r() * 6); i++) {
      const at = Math.floor(r() * Math.min(512, b.length));
      b[at] = Math.floor(r() * 256);
    }
    return b;
  }
  if (k < 0.6) return b.subarray(0, Math.max(4, Math.floor(r() * b.length)));
  if (k < 0.75) {
    const at = Math.floor(r() * b.length);
    b.fill(pick(r, [0x00, 0xff, 0x41]), at, Math.min(b.length, at + Math.floor(r() * 4096)));
    return b;
  }
  if (k < 0.88) {
    // A block repeated many times (lengths and offsets stop matching).
    const at = Math.floor(r() * b.length);
    const block = b.subarray(at, Math.min(b.length, at + 64 + Math.floor(r() * 1024)));
    return Buffer.concat([b.subarray(0, at), ...Array.from({ length: 2 + Math.floor(r() * 30) }, () => block), b.subarray(at)]);
  }
  // Another format's magic on this file's body.
  const magic = pick(r, [Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from([0x89, 0x50, 0x4e, 0x47]), Buffer.from('RIFF\0\0\0\0WEBP', 'latin1')]);
  return Buffer.concat([magic, b.subarray(magic.length)]);
}
