/**
 * Target enrollment: track the target (a still or a short clip), fix its
 * neutral reference frame and landmarks, crop it to the output framing, and
 * for a clip index every frame's mouth into a mouth library. The result is
 * plain typed arrays (transferable to a worker) and is cached on disk keyed
 * by the file's content hash and the enrollment options.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FaceTrack } from '../../../shared/tracking.ts';
import { decodeImage, MediaError, probeMedia, readFrames, type MediaInfo, type RawFrame } from '../media/video-io.ts';
import { RenderError } from './errors.ts';
import { cropResize, fitSimilarity2D, type CropRect } from './image-ops.ts';
import { LANDMARK_SLOTS } from './mesh.ts';
import { eyeOpenness, interOcular, mouthGap, placeMissingIris } from './face-measure.ts';
import { LIP_IDS, type MouthLibraryData } from './mouth-library.ts';
import { warpTriangle, type RgbaImage } from './raster.ts';
import { CHIN, EYES, FACE_OVAL, FOREHEAD_TOP, MESH_POINTS, STABLE_POINTS } from './topology.ts';
import type { PoseGain } from './retarget.ts';
import { measurePoseGain } from './pose-gain.ts';

export const ENROLL_VERSION = 3;

/** What enrollment needs from a tracker (server/src/tracking's Tracker satisfies it). */
export interface FaceTrackerPort {
  track(frame: RawFrame, timeMs: number): Promise<FaceTrack>;
  reset(): void;
}

export interface EnrolledTarget {
  version: number;
  /** Cache key: content hash + options. */
  key: string;
  size: number;
  /** Reference frame cropped to the output framing, RGBA size×size. */
  image: RgbaImage;
  /** Reference landmarks in output pixels (stride 3, LANDMARK_SLOTS; iris slots estimated when hasIris is false). */
  landmarks: Float64Array;
  hasIris: boolean;
  /** Crop of the reference frame, in source pixels. */
  crop: CropRect;
  source: MediaInfo;
  /** Index of the reference frame in the clip (0 for a still). */
  referenceFrame: number;
  mouthLibrary: MouthLibraryData | null;
  /** What the warp of this target shows of a commanded head rotation (pose-gain.ts); null: not measured. */
  poseGain: PoseGain | null;
}

export interface EnrollOptions {
  size: number;
  /** Refuse stills over this many pixels (E_MEDIA_TOO_LARGE). Default 40 M. */
  maxPixels?: number;
  /** Clip frames to index at most (evenly spaced). Default 300. */
  maxClipFrames?: number;
  /** Cache folder; null disables the cache. Default .cache/reenact/targets. */
  cacheDir?: string | null;
  /** Distinguishes tracker builds in the cache key. */
  trackerId?: string;
  /** Measure what the warp shows of a head turn (pose-gain.ts, about 0.3 s at 256²). Default true. */
  measurePoseGain?: boolean;
}

/** Crop side over the face oval's height; the crop centre sits this far above the oval centre (in oval heights). */
const CROP_SCALE = 1.9;
const CROP_LIFT = 0.12;

function flatten(track: FaceTrack): Float64Array | null {
  const lm = track.landmarks;
  if (!lm || lm.length < MESH_POINTS) return null;
  const out = new Float64Array(LANDMARK_SLOTS * 3).fill(Number.NaN);
  for (let i = 0; i < Math.min(lm.length, LANDMARK_SLOTS); i++) {
    out[i * 3] = lm[i]![0];
    out[i * 3 + 1] = lm[i]![1];
    out[i * 3 + 2] = lm[i]![2];
  }
  return out;
}

/**
 * Square crop around the face: side CROP_SCALE × oval height, centred a little
 * above the face centre, then shifted (and if need be shrunk, never below
 * 1.3 face heights) to stay inside a width×height frame so no border is invented.
 */
export function faceCrop(points: Float64Array, width = Infinity, height = Infinity): CropRect {
  let cx = 0, cy = 0;
  for (const i of FACE_OVAL) {
    cx += points[i * 3]!;
    cy += points[i * 3 + 1]!;
  }
  cx /= FACE_OVAL.length;
  cy /= FACE_OVAL.length;
  const h = Math.hypot(points[FOREHEAD_TOP * 3]! - points[CHIN * 3]!, points[FOREHEAD_TOP * 3 + 1]! - points[CHIN * 3 + 1]!);
  let side = Math.max(16, h * CROP_SCALE);
  side = Math.max(Math.min(side, width, height), h * 1.3);
  const fit = (c: number, limit: number) => (side <= limit ? Math.min(Math.max(c - side / 2, 0), limit - side) : c - side / 2);
  return { x: fit(cx, width), y: fit(cy - CROP_LIFT * h, height), side };
}

function toCrop(points: Float64Array, crop: CropRect, size: number): Float64Array {
  const k = size / crop.side;
  const out = new Float64Array(points.length);
  for (let i = 0; i < points.length; i += 3) {
    out[i] = (points[i]! - crop.x) * k;
    out[i + 1] = (points[i + 1]! - crop.y) * k;
    out[i + 2] = points[i + 2]! * k;
  }
  return out;
}

/** Neutral-ness of a frame: closed mouth, open eyes, frontal. Lower is better. */
function neutralScore(track: FaceTrack, pts: Float64Array): number {
  const eyes = EYES.reduce((s, e) => s + eyeOpenness(pts, e), 0) / 2;
  const pose = track.pose ? Math.abs(track.pose.yaw) / 30 + Math.abs(track.pose.pitch) / 30 + Math.abs(track.pose.roll) / 45 : 1;
  return mouthGap(pts) * 4 + Math.max(0, 0.25 - eyes) * 4 + pose;
}

/**
 * Cache key: the picture's content hash, then a hash of the options, 16 hex digits each, so every
 * enrollment of one picture (at any size) can be found from its bytes (forgetEnrollments).
 */
async function hashFile(path: string, opts: EnrollOptions): Promise<string> {
  const o = createHash('sha256').update(JSON.stringify({ v: ENROLL_VERSION, size: opts.size, n: opts.maxClipFrames ?? 300, t: opts.trackerId ?? '', g: opts.measurePoseGain !== false }));
  return contentKey(await readFile(path)) + o.digest('hex').slice(0, 16);
}

function contentKey(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

/** Deletes every cached enrollment of a picture (all sizes and trackers), given its bytes. */
export async function forgetEnrollments(cacheDir: string, bytes: Uint8Array): Promise<number> {
  const prefix = contentKey(bytes);
  let n = 0;
  for (const f of await readdir(cacheDir).catch(() => [] as string[])) {
    if (f.length === 36 && f.startsWith(prefix) && f.endsWith('.bin')) {
      await rm(join(cacheDir, f), { force: true });
      n++;
    }
  }
  return n;
}

/**
 * Enrolls a target from a still image or a clip. Throws RenderError
 * E_RENDER_NO_FACE when no face is found, MediaError for unreadable files.
 */
export async function enrollTarget(path: string, tracker: FaceTrackerPort, opts: EnrollOptions): Promise<EnrolledTarget> {
  if (opts.size !== Math.round(opts.size) || opts.size < 64 || opts.size > 2048) throw new RenderError('E_RENDER_BAD_ARG', `size must be an integer in 64..2048, got ${opts.size}`);
  const info = await probeMedia(path);
  const cacheDir = opts.cacheDir === undefined ? join(process.cwd(), '.cache', 'reenact', 'targets') : opts.cacheDir;
  const key = await hashFile(path, opts);
  if (cacheDir) {
    const cached = await loadCached(join(cacheDir, `${key}.bin`));
    if (cached) return cached;
  }
  const target = info.isVideo ? await enrollClip(path, info, tracker, opts, key) : await enrollStill(path, info, tracker, opts, key);
  if (opts.measurePoseGain !== false) target.poseGain = (await measurePoseGain(target, tracker)).gain;
  if (cacheDir) await saveCached(cacheDir, key, target);
  return target;
}

async function enrollStill(path: string, info: MediaInfo, tracker: FaceTrackerPort, opts: EnrollOptions, key: string): Promise<EnrolledTarget> {
  const frame = await decodeImage(path, { maxPixels: opts.maxPixels });
  tracker.reset();
  let pts: Float64Array | null = null;
  let hasIris = false;
  // Track the still a few times: each pass re-crops around the previous landmarks and tightens them.
  for (let pass = 0; pass < 3; pass++) {
    const track = await tracker.track(frame, pass * 33);
    const p = flatten(track);
    if (!p) break;
    pts = p;
    hasIris = (track.landmarks?.length ?? 0) >= LANDMARK_SLOTS;
  }
  tracker.reset();
  if (!pts) throw new RenderError('E_RENDER_NO_FACE', `no face found in the target ${path}`);
  if (!hasIris) placeMissingIris(pts);
  const crop = faceCrop(pts, frame.width, frame.height);
  return {
    version: ENROLL_VERSION, key, size: opts.size, image: cropResize(frame, crop, opts.size), landmarks: toCrop(pts, crop, opts.size),
    hasIris, crop, source: info, referenceFrame: 0, mouthLibrary: null, poseGain: null,
  };
}

async function enrollClip(path: string, info: MediaInfo, tracker: FaceTrackerPort, opts: EnrollOptions, key: string): Promise<EnrolledTarget> {
  const maxFrames = opts.maxClipFrames ?? 300;
  const step = Math.max(1, Math.ceil((info.frames || maxFrames) / maxFrames));
  if (info.width * info.height > (opts.maxPixels ?? 40_000_000)) throw new MediaError('E_MEDIA_TOO_LARGE', `clip frames of ${info.width}x${info.height} are over the pixel limit`);
  // Pass 1: track every frame (the tracker needs continuity), keep landmarks of every step-th.
  tracker.reset();
  const pts = new Map<number, Float64Array>();
  const tracks = new Map<number, FaceTrack>();
  let hasIris = false;
  let n = 0;
  for await (const frame of readFrames(path, { format: 'rgba' })) {
    const track = await tracker.track(frame, (n * 1000) / (info.fps || 30));
    const p = flatten(track);
    if (p && n % step === 0 && pts.size < maxFrames) {
      hasIris = (track.landmarks?.length ?? 0) >= LANDMARK_SLOTS;
      if (!hasIris) placeMissingIris(p);
      pts.set(n, p);
      tracks.set(n, track);
    }
    n++;
  }
  tracker.reset();
  if (pts.size === 0) throw new RenderError('E_RENDER_NO_FACE', `no face found in any frame of the target ${path}`);
  let ref = -1;
  let best = Infinity;
  for (const [i, p] of pts) {
    const sc = neutralScore(tracks.get(i)!, p);
    if (sc < best) {
      best = sc;
      ref = i;
    }
  }
  const refPts = pts.get(ref)!;
  const crop = faceCrop(refPts, info.width, info.height);
  const landmarks = toCrop(refPts, crop, opts.size);
  // Pass 2: decode again and cut the reference crop and every indexed frame's aligned mouth.
  const lib = new LibraryBuilder([...pts.values()], refPts, crop, opts.size, interOcular(landmarks));
  let image: RgbaImage | null = null;
  n = 0;
  let k = 0;
  for await (const frame of readFrames(path, { format: 'rgba' })) {
    if (n === ref) image = cropResize(frame, crop, opts.size);
    if (pts.has(n)) lib.add(k++, frame);
    n++;
  }
  if (!image) throw new MediaError('E_MEDIA_CORRUPT', `${path} changed while it was being enrolled`);
  return { version: ENROLL_VERSION, key, size: opts.size, image, landmarks, hasIris, crop, source: info, referenceFrame: ref, mouthLibrary: lib.data, poseGain: null };
}

/** Aligns each indexed frame's mouth to the reference crop and stores its texture and lip points. */
class LibraryBuilder {
  readonly data: MouthLibraryData;
  readonly #sims: [number, number, number, number][];
  readonly #crop: CropRect;
  readonly #k: number;

  constructor(pts: Float64Array[], refPts: Float64Array, crop: CropRect, size: number, iod: number) {
    const k = size / crop.side;
    this.#k = k;
    this.#crop = crop;
    this.#sims = pts.map((p) => fitSimilarity2D(p, refPts, STABLE_POINTS));
    const lipsAll: Float64Array[] = [];
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    pts.forEach((p, f) => {
      const [a, b, tx, ty] = this.#sims[f]!;
      const lips = new Float64Array(LIP_IDS.length * 2);
      LIP_IDS.forEach((id, j) => {
        const sx = a * p[id * 3]! - b * p[id * 3 + 1]! + tx, sy = b * p[id * 3]! + a * p[id * 3 + 1]! + ty;
        lips[j * 2] = (sx - crop.x) * k;
        lips[j * 2 + 1] = (sy - crop.y) * k;
        x0 = Math.min(x0, lips[j * 2]!); x1 = Math.max(x1, lips[j * 2]!);
        y0 = Math.min(y0, lips[j * 2 + 1]!); y1 = Math.max(y1, lips[j * 2 + 1]!);
      });
      lipsAll.push(lips);
    });
    const pad = 0.15 * (x1 - x0) + 4;
    const roiX = Math.max(0, Math.floor(x0 - pad)), roiY = Math.max(0, Math.floor(y0 - pad));
    const roiW = Math.min(size, Math.ceil(x1 + pad)) - roiX, roiH = Math.min(size, Math.ceil(y1 + pad)) - roiY;
    const count = pts.length;
    const lips = new Float32Array(count * LIP_IDS.length * 2);
    lipsAll.forEach((l, f) => {
      for (let j = 0; j < LIP_IDS.length; j++) {
        lips[(f * LIP_IDS.length + j) * 2] = l[j * 2]! - roiX;
        lips[(f * LIP_IDS.length + j) * 2 + 1] = l[j * 2 + 1]! - roiY;
      }
    });
    this.data = { roiX, roiY, roiW, roiH, count, textures: new Uint8Array(count * roiW * roiH * 4), lips, iod };
  }

  /** Cuts entry f's ROI out of its frame: ROI pixel -> reference source -> this frame (inverse similarity). */
  add(f: number, frame: RawFrame): void {
    const { roiX, roiY, roiW, roiH } = this.data;
    const [a, b, tx, ty] = this.#sims[f]!;
    const k = this.#k, crop = this.#crop;
    const det = a * a + b * b;
    const src = new Float32Array(8), dst = new Float32Array(8);
    const corners = [[roiX, roiY], [roiX + roiW, roiY], [roiX + roiW, roiY + roiH], [roiX, roiY + roiH]] as const;
    const shrink = 1 / k > 1.6 ? Math.round(1 / k) : 1;
    corners.forEach(([qx, qy], c) => {
      const sx = qx / k + crop.x - tx, sy = qy / k + crop.y - ty;
      src[c * 2] = (a * sx + b * sy) / det / shrink;
      src[c * 2 + 1] = (-b * sx + a * sy) / det / shrink;
      dst[c * 2] = qx - roiX;
      dst[c * 2 + 1] = qy - roiY;
    });
    const full: RgbaImage = { width: frame.width, height: frame.height, data: frame.data };
    const srcImg = shrink > 1 ? boxShrink(full, shrink) : full;
    const px = roiW * roiH * 4;
    const layer: RgbaImage = { width: roiW, height: roiH, data: this.data.textures.subarray(f * px, (f + 1) * px) };
    warpTriangle(srcImg, src, layer, dst, 0, 1, 2);
    warpTriangle(srcImg, src, layer, dst, 0, 2, 3);
  }
}

/** Box-filter shrink by an integer factor (anti-aliasing before the library warp). */
function boxShrink(src: RgbaImage, factor: number): RgbaImage {
  const w = Math.max(1, Math.floor(src.width / factor)), h = Math.max(1, Math.floor(src.height / factor));
  const out = new Uint8Array(w * h * 4);
  const n = factor * factor;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 4; c++) {
        let s = 0;
        for (let dy = 0; dy < factor; dy++) for (let dx = 0; dx < factor; dx++) s += src.data[((y * factor + dy) * src.width + x * factor + dx) * 4 + c]!;
        out[(y * w + x) * 4 + c] = s / n;
      }
    }
  }
  return { width: w, height: h, data: out };
}

// ---- Cache: [magic "RNT1"][u32 header length][JSON header][8-aligned binary sections]. ----

interface CacheHeader {
  meta: Omit<EnrolledTarget, 'image' | 'landmarks' | 'mouthLibrary'> & { library: Omit<MouthLibraryData, 'textures' | 'lips'> | null };
  sections: Record<string, [offset: number, bytes: number]>;
}

async function saveCached(dir: string, key: string, t: EnrolledTarget): Promise<void> {
  const blobs: [string, Uint8Array][] = [
    ['image', t.image.data],
    ['landmarks', new Uint8Array(t.landmarks.buffer, t.landmarks.byteOffset, t.landmarks.byteLength)],
  ];
  if (t.mouthLibrary) {
    blobs.push(['textures', t.mouthLibrary.textures]);
    blobs.push(['lips', new Uint8Array(t.mouthLibrary.lips.buffer, t.mouthLibrary.lips.byteOffset, t.mouthLibrary.lips.byteLength)]);
  }
  const sections: CacheHeader['sections'] = {};
  let off = 0;
  for (const [name, b] of blobs) {
    sections[name] = [off, b.byteLength];
    off += Math.ceil(b.byteLength / 8) * 8;
  }
  const { image: _i, landmarks: _l, mouthLibrary, ...meta } = t;
  const lib = mouthLibrary ? { roiX: mouthLibrary.roiX, roiY: mouthLibrary.roiY, roiW: mouthLibrary.roiW, roiH: mouthLibrary.roiH, count: mouthLibrary.count, iod: mouthLibrary.iod } : null;
  const header = Buffer.from(JSON.stringify({ meta: { ...meta, library: lib }, sections } satisfies CacheHeader));
  const headLen = Math.ceil((8 + header.length) / 8) * 8;
  const file = Buffer.alloc(headLen + off);
  file.write('RNT1', 0, 'ascii');
  file.writeUInt32LE(header.length, 4);
  header.copy(file, 8);
  for (const [name, b] of blobs) file.set(b, headLen + sections[name]![0]);
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${key}.bin`);
  // A unique temporary name: several processes may enroll the same target at once.
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    await writeFile(tmp, file);
    await rename(tmp, path);
  } catch (err) {
    // The cache only saves time: a full disk (or any write error) leaves the target enrolled, uncached.
    await rm(tmp, { force: true }).catch(() => undefined);
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC' && (err as NodeJS.ErrnoException).code !== 'EDQUOT') throw err;
  }
}

/** Reads a cached enrollment; null when absent, stale or unreadable (it is then rebuilt). */
export async function loadCached(path: string): Promise<EnrolledTarget | null> {
  let file: Buffer;
  try {
    file = await readFile(path);
  } catch {
    return null;
  }
  try {
    if (file.toString('ascii', 0, 4) !== 'RNT1') return null;
    const len = file.readUInt32LE(4);
    const header = JSON.parse(file.toString('utf8', 8, 8 + len)) as CacheHeader;
    if (header.meta.version !== ENROLL_VERSION) return null;
    const headLen = Math.ceil((8 + len) / 8) * 8;
    const section = (name: string): ArrayBuffer => {
      const s = header.sections[name];
      if (!s) throw new Error(`section ${name} missing`);
      // A truncated or altered file: a section past its end is not read as an empty one.
      if (!(s[0] >= 0 && s[1] >= 0 && headLen + s[0] + s[1] <= file.length)) throw new Error(`section ${name} is outside the file`);
      const start = file.byteOffset + headLen + s[0];
      return file.buffer.slice(start, start + s[1]) as ArrayBuffer;
    };
    const { library, ...meta } = header.meta;
    const image = new Uint8Array(section('image'));
    const landmarks = new Float64Array(section('landmarks'));
    if (image.length !== meta.size * meta.size * 4 || landmarks.length === 0 || landmarks.length % 3 !== 0) return null;
    return {
      ...meta,
      image: { width: meta.size, height: meta.size, data: image },
      landmarks,
      mouthLibrary: library ? { ...library, textures: new Uint8Array(section('textures')), lips: new Float32Array(section('lips')) } : null,
    };
  } catch {
    return null;
  }
}

/** The target's whole reference picture (the still, or the clip's reference frame) as RGBA, for paste-back. */
export async function referencePicture(path: string, target: EnrolledTarget, maxPixels?: number): Promise<RawFrame> {
  if (!target.source.isVideo) return decodeImage(path, { maxPixels });
  let n = 0;
  for await (const frame of readFrames(path, { format: 'rgba' })) {
    if (n++ === target.referenceFrame) return frame;
  }
  throw new MediaError('E_MEDIA_CORRUPT', `${path} changed since it was enrolled (frame ${target.referenceFrame} is gone)`);
}
