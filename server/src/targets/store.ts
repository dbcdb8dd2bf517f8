/**
 * The target gallery: bundled demo portraits (server/assets/targets) and
 * validated uploads. An upload is checked for type (by its bytes, not only
 * the header), size, pixel dimensions and decodability, and must show a face;
 * anything else is refused with a coded error. Uploads are stored by content
 * hash, so the same image uploaded twice is one target.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { CodedError, ErrorCodes } from '../../../shared/errors.ts';
import type { TargetInfo } from '../../../shared/protocol.ts';
import { MediaError, probeMedia } from '../media/video-io.ts';
import type { Logger } from '../logger.ts';

const bundledDir = fileURLToPath(new URL('../../assets/targets/', import.meta.url));

const NAMES: Record<string, string> = {
  s1: 'Photo',
  s2: 'Black-and-white photo',
  s5: 'Painting: child',
  s9: 'Painting: Mona Lisa',
  s10: 'Painting: pearl earring',
  s12: 'Old photo',
  s42: 'Photo 2',
  s18: 'Clip: woman',
};

export const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;
const MAX_SIDE = 4096;
const MIN_SIDE = 64;

interface Entry {
  info: TargetInfo;
  path: string;
}

/** Sniffs the image type from magic bytes. */
function sniff(bytes: Uint8Array): 'jpg' | 'png' | 'webp' | null {
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpg';
  if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (Buffer.from(bytes.subarray(0, 4)).toString('latin1') === 'RIFF' && Buffer.from(bytes.subarray(8, 12)).toString('latin1') === 'WEBP') return 'webp';
  return null;
}

export class TargetStore {
  readonly #entries = new Map<string, Entry>();
  readonly #thumbs = new Map<string, Promise<Buffer>>();
  readonly #uploadDir: string;
  readonly #enroll: (path: string) => Promise<void>;
  readonly #accepted: (path: string) => void;
  readonly #log: Logger;
  readonly defaultId: string;

  private constructor(uploadDir: string, defaultId: string, enroll: (path: string) => Promise<void>, accepted: (path: string) => void, log: Logger) {
    this.#uploadDir = uploadDir;
    this.defaultId = defaultId;
    this.#enroll = enroll;
    this.#accepted = accepted;
    this.#log = log;
  }

  /**
   * `enroll` enrolls an image as a target off the event loop (tracking, crop, mesh, written to
   * the enrollment cache) and rejects when it has no face; it is the uploads' face check, and it
   * makes a later switch to the upload a cache read. It sees the upload at a temporary path.
   * `accepted` is told the upload's final path once it is stored (the server enrolls it at
   * the degraded render size from there, in the background).
   */
  static async create(opts: { uploadDir: string; defaultId: string; enroll: (path: string) => Promise<void>; accepted?: (path: string) => void; log: Logger }): Promise<TargetStore> {
    const store = new TargetStore(opts.uploadDir, opts.defaultId, opts.enroll, opts.accepted ?? (() => undefined), opts.log.child('targets'));
    for (const file of (await readdir(bundledDir)).sort()) {
      const m = /^(s\d+)\.(jpg|png|mp4)$/.exec(file);
      if (!m?.[1]) continue;
      const id = m[1];
      store.#add({ id, name: NAMES[id] ?? id, kind: m[2] === 'mp4' ? 'clip' : 'image', source: 'bundled', thumbnailUrl: `/api/targets/${id}/thumb.jpg` }, join(bundledDir, file));
    }
    await mkdir(opts.uploadDir, { recursive: true });
    for (const file of await readdir(opts.uploadDir)) {
      const m = /^(u[0-9a-f]{16})\.(jpg|png|webp)$/.exec(file);
      if (m?.[1]) store.#add({ id: m[1], name: 'Upload', kind: 'image', source: 'upload', thumbnailUrl: `/api/targets/${m[1]}/thumb.jpg` }, join(opts.uploadDir, file));
    }
    if (!store.#entries.has(opts.defaultId)) throw new Error(`default target ${opts.defaultId} is not in the gallery`);
    return store;
  }

  list(): TargetInfo[] {
    return [...this.#entries.values()].map((e) => e.info);
  }

  get(id: string): Entry | undefined {
    return this.#entries.get(id);
  }

  /** A small JPEG preview, made once per target. */
  thumbnail(id: string): Promise<Buffer> {
    const entry = this.#entries.get(id);
    if (!entry) return Promise.reject(new CodedError(ErrorCodes.NOT_FOUND, 'no such target'));
    let p = this.#thumbs.get(id);
    if (!p) {
      p = ffmpegThumb(entry.path);
      p.catch(() => this.#thumbs.delete(id));
      this.#thumbs.set(id, p);
    }
    return p;
  }

  /** Validates and stores an upload; throws CodedError with a catalogue code when refused. */
  async upload(bytes: Buffer, contentType: string): Promise<TargetInfo> {
    if (bytes.length === 0) throw new CodedError(ErrorCodes.MEDIA_INVALID, 'empty upload');
    if (bytes.length > MAX_UPLOAD_BYTES) throw new CodedError(ErrorCodes.MEDIA_TOO_LARGE, `upload is ${bytes.length} bytes; the limit is ${MAX_UPLOAD_BYTES}`);
    const kind = sniff(bytes);
    if (!kind || !/^image\/(jpeg|png|webp)$/.test(contentType)) throw new CodedError(ErrorCodes.MEDIA_INVALID, 'only JPEG, PNG or WebP images are accepted');
    const id = `u${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}`;
    const existing = this.#entries.get(id);
    if (existing) return existing.info;
    const tmp = join(this.#uploadDir, `.incoming-${id}.${kind}`);
    await writeFile(tmp, bytes);
    try {
      const info = await probeMedia(tmp).catch((err: unknown) => {
        throw new CodedError(ErrorCodes.MEDIA_INVALID, err instanceof MediaError ? err.message.replace(tmp, 'upload') : 'not a readable image');
      });
      if (info.isVideo) throw new CodedError(ErrorCodes.MEDIA_INVALID, 'animated or video uploads are not accepted');
      if (info.width > MAX_SIDE || info.height > MAX_SIDE) throw new CodedError(ErrorCodes.MEDIA_TOO_LARGE, `${info.width}x${info.height} is over ${MAX_SIDE}x${MAX_SIDE}`);
      if (info.width < MIN_SIDE || info.height < MIN_SIDE) throw new CodedError(ErrorCodes.MEDIA_INVALID, `${info.width}x${info.height} is under ${MIN_SIDE}x${MIN_SIDE}`);
      await this.#assertFace(tmp);
      const path = join(this.#uploadDir, `${id}.${kind}`);
      await rename(tmp, path);
      const target: TargetInfo = { id, name: 'Upload', kind: 'image', source: 'upload', thumbnailUrl: `/api/targets/${id}/thumb.jpg` };
      this.#add(target, path);
      this.#log.info('target uploaded', { id, bytes: bytes.length });
      this.#accepted(path);
      return target;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async #assertFace(path: string): Promise<void> {
    try {
      await this.#enroll(path);
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      if (/E_RENDER_NO_FACE/.test(text)) throw new CodedError(ErrorCodes.NO_FACE, 'no face was found in the image');
      if (/E_MEDIA_TOO_LARGE/.test(text)) throw new CodedError(ErrorCodes.MEDIA_TOO_LARGE, 'the image has too many pixels');
      if (/E_MEDIA_/.test(text)) throw new CodedError(ErrorCodes.MEDIA_INVALID, 'the image could not be decoded');
      throw err;
    }
  }

  #add(info: TargetInfo, path: string): void {
    this.#entries.set(info.id, { info, path });
  }
}

function ffmpegThumb(path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('ffmpeg', ['-v', 'error', '-i', path, '-frames:v', '1', '-vf', 'scale=160:-2', '-f', 'mjpeg', 'pipe:1'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`thumbnail failed (${code})`))));
  });
}
