/**
 * The target gallery: bundled demo portraits (server/assets/targets), the operator's and listed
 * to everyone, and validated uploads, each private to the room whose actor uploaded it
 * (upload-records.ts): listed, shown, used and deleted only with a token for that room, and
 * removed after a set time. An upload is checked for type (by its bytes, not only the header),
 * size, pixel dimensions and decodability, and must show a face; anything else is refused with
 * a coded error. The same image uploaded twice in one room is one target.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { CodedError, ErrorCodes } from '../../../shared/errors.ts';
import type { TargetInfo } from '../../../shared/protocol.ts';
import { MediaError, probeMedia } from '../media/video-io.ts';
import type { Logger } from '../logger.ts';
import { mtimeMs, readRecord, removeRecord, UPLOAD_FILE, uploadId, writeRecord } from './upload-records.ts';

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
  /** Uploads: the room it belongs to (null: no record, used by nobody) and when it came. */
  room?: string | null;
  createdMs?: number;
}

export interface TargetStoreOptions {
  uploadDir: string;
  defaultId: string;
  enroll: (path: string) => Promise<void>;
  accepted?: (path: string) => void;
  /** Called after an upload is deleted or expires, with the rooms it belonged to. */
  removed?: (id: string, room: string | null) => void;
  /** Forget an upload's enrollments (its bytes identify them). */
  forget?: (bytes: Uint8Array) => Promise<void>;
  /** Uploads are removed this long after they came; 0 keeps them. */
  uploadTtlMs?: number;
  log: Logger;
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
  readonly #opts: TargetStoreOptions;
  readonly #log: Logger;
  readonly defaultId: string;
  #sweepTimer: NodeJS.Timeout | null = null;

  private constructor(opts: TargetStoreOptions) {
    this.#uploadDir = opts.uploadDir;
    this.defaultId = opts.defaultId;
    this.#opts = opts;
    this.#log = opts.log.child('targets');
  }

  /**
   * `enroll` enrolls an image as a target off the event loop (tracking, crop, mesh, written to
   * the enrollment cache) and rejects when it has no face; it is the uploads' face check, and it
   * makes a later switch to the upload a cache read. It sees the upload at a temporary path.
   * `accepted` is told the upload's final path once it is stored (the server enrolls it at
   * the degraded render size from there, in the background).
   */
  static async create(opts: TargetStoreOptions): Promise<TargetStore> {
    const store = new TargetStore(opts);
    for (const file of (await readdir(bundledDir)).sort()) {
      const m = /^(s\d+)\.(jpg|png|mp4)$/.exec(file);
      if (!m?.[1]) continue;
      const id = m[1];
      store.#add({ id, name: NAMES[id] ?? id, kind: m[2] === 'mp4' ? 'clip' : 'image', source: 'bundled', thumbnailUrl: `/api/targets/${id}/thumb.jpg` }, join(bundledDir, file));
    }
    if (!store.#entries.has(opts.defaultId) || store.#entries.get(opts.defaultId)?.info.source !== 'bundled') {
      throw new Error(`default target ${opts.defaultId} is not in the gallery`);
    }
    await mkdir(opts.uploadDir, { recursive: true, mode: 0o700 });
    let hidden = 0;
    for (const file of await readdir(opts.uploadDir)) {
      const m = UPLOAD_FILE.exec(file);
      if (!m?.[1]) continue;
      const path = join(opts.uploadDir, file);
      const rec = await readRecord(opts.uploadDir, m[1]);
      if (!rec) hidden++;
      store.#add(uploadInfo(m[1]), path, rec?.room ?? null, rec?.createdMs ?? (await mtimeMs(path)));
    }
    if (hidden > 0) store.#log.warn('uploads without an owner record are used by no room until they expire', { count: hidden });
    await store.sweep();
    const ttl = opts.uploadTtlMs ?? 0;
    if (ttl > 0) {
      store.#sweepTimer = setInterval(() => void store.sweep(), Math.min(3_600_000, Math.max(1000, ttl / 10)));
      store.#sweepTimer.unref();
    }
    return store;
  }

  /** The bundled targets, and the uploads of `room` when given. */
  list(room?: string): TargetInfo[] {
    return [...this.#entries.values()].filter((e) => e.info.source === 'bundled' || (room !== undefined && e.room === room)).map((e) => e.info);
  }

  /** A target `room` may use: a bundled one, or one of the room's own uploads. */
  get(id: string, room: string): Entry | undefined {
    const e = this.#entries.get(id);
    return e && (e.info.source === 'bundled' || e.room === room) ? e : undefined;
  }

  /** A small JPEG preview, made once per target; uploads only for their own room. */
  thumbnail(id: string, room?: string): Promise<Buffer> {
    const entry = room === undefined ? this.#entries.get(id) : this.get(id, room);
    if (!entry || (entry.info.source !== 'bundled' && room === undefined)) return Promise.reject(new CodedError(ErrorCodes.NOT_FOUND, 'no such target'));
    let p = this.#thumbs.get(id);
    if (!p) {
      p = ffmpegThumb(entry.path);
      p.catch(() => this.#thumbs.delete(id));
      this.#thumbs.set(id, p);
    }
    return p;
  }

  /** Validates and stores an upload; throws CodedError with a catalogue code when refused. */
  async upload(bytes: Buffer, contentType: string, room: string): Promise<TargetInfo> {
    if (bytes.length === 0) throw new CodedError(ErrorCodes.MEDIA_INVALID, 'empty upload');
    if (bytes.length > MAX_UPLOAD_BYTES) throw new CodedError(ErrorCodes.MEDIA_TOO_LARGE, `upload is ${bytes.length} bytes; the limit is ${MAX_UPLOAD_BYTES}`);
    const kind = sniff(bytes);
    if (!kind || !/^image\/(jpeg|png|webp)$/.test(contentType)) throw new CodedError(ErrorCodes.MEDIA_INVALID, 'only JPEG, PNG or WebP images are accepted');
    const id = uploadId(room, bytes);
    const existing = this.#entries.get(id);
    if (existing && existing.room === room) return existing.info;
    const tmp = join(this.#uploadDir, `.incoming-${id}.${kind}`);
    try {
      await writeFile(tmp, bytes).catch(storageError);
      const info = await probeMedia(tmp).catch((err: unknown) => {
        throw new CodedError(ErrorCodes.MEDIA_INVALID, err instanceof MediaError ? err.message.replace(tmp, 'upload') : 'not a readable image');
      });
      if (info.isVideo) throw new CodedError(ErrorCodes.MEDIA_INVALID, 'animated or video uploads are not accepted');
      if (info.width > MAX_SIDE || info.height > MAX_SIDE) throw new CodedError(ErrorCodes.MEDIA_TOO_LARGE, `${info.width}x${info.height} is over ${MAX_SIDE}x${MAX_SIDE}`);
      if (info.width < MIN_SIDE || info.height < MIN_SIDE) throw new CodedError(ErrorCodes.MEDIA_INVALID, `${info.width}x${info.height} is under ${MIN_SIDE}x${MIN_SIDE}`);
      await this.#assertFace(tmp);
      const path = join(this.#uploadDir, `${id}.${kind}`);
      const createdMs = Date.now();
      // The record first: an image in place without one is used by nobody.
      await writeRecord(this.#uploadDir, id, { room, createdMs }).catch(storageError);
      await rename(tmp, path).catch(storageError);
      const target = uploadInfo(id);
      this.#add(target, path, room, createdMs);
      this.#log.info('target uploaded', { id, room, bytes: bytes.length });
      this.#opts.accepted?.(path);
      return target;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Deletes one of `room`'s uploads (E_NOT_FOUND for anything else, another room's included). */
  async remove(id: string, room: string): Promise<void> {
    const e = this.#entries.get(id);
    if (!e || e.info.source !== 'upload' || e.room !== room) throw new CodedError(ErrorCodes.NOT_FOUND, 'no such upload in this room');
    await this.#delete(id, e, 'deleted');
  }

  /** Removes uploads older than the configured time (and ownerless ones as old). Returns how many. */
  async sweep(now = Date.now()): Promise<number> {
    const ttl = this.#opts.uploadTtlMs ?? 0;
    if (!(ttl > 0)) return 0;
    let n = 0;
    for (const [id, e] of [...this.#entries]) {
      if (e.info.source !== 'upload' || now - (e.createdMs ?? 0) < ttl) continue;
      await this.#delete(id, e, 'expired').catch((err: unknown) => this.#log.warn('could not remove an expired upload', { id, err }));
      n++;
    }
    return n;
  }

  close(): void {
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    this.#sweepTimer = null;
  }

  async #delete(id: string, e: Entry, why: 'deleted' | 'expired'): Promise<void> {
    this.#entries.delete(id);
    this.#thumbs.delete(id);
    const bytes = await readFile(e.path).catch(() => null);
    await rm(e.path, { force: true });
    await removeRecord(this.#uploadDir, id);
    if (bytes) await this.#opts.forget?.(bytes);
    this.#log.info(`upload ${why}`, { id, room: e.room ?? undefined });
    this.#opts.removed?.(id, e.room ?? null);
  }

  async #assertFace(path: string): Promise<void> {
    try {
      await this.#opts.enroll(path);
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      if (/E_RENDER_NO_FACE/.test(text)) throw new CodedError(ErrorCodes.NO_FACE, 'no face was found in the image');
      if (/E_MEDIA_TOO_LARGE/.test(text)) throw new CodedError(ErrorCodes.MEDIA_TOO_LARGE, 'the image has too many pixels');
      if (/E_MEDIA_/.test(text)) throw new CodedError(ErrorCodes.MEDIA_INVALID, 'the image could not be decoded');
      throw err;
    }
  }

  #add(info: TargetInfo, path: string, room?: string | null, createdMs?: number): void {
    this.#entries.set(info.id, { info, path, room, createdMs });
  }
}

/** A full disk as a coded error (E_STORAGE_FULL); anything else as it was. */
function storageError(err: unknown): never {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') throw new CodedError(ErrorCodes.STORAGE_FULL, "the server's disk is full; the upload was not stored");
  throw err;
}

function uploadInfo(id: string): TargetInfo {
  return { id, name: 'Upload', kind: 'image', source: 'upload', thumbnailUrl: `/api/targets/${id}/thumb.jpg` };
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
