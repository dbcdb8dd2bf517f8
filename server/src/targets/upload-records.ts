/**
 * Who may use an uploaded face, and for how long. Every upload belongs to the room whose actor
 * uploaded it: a record beside the image (`<id>.json`: room, time) says so, written before the
 * image is put in place, so an image on disk without a record is one whose upload never
 * finished (or one stored by a version without records): it is used, listed and shown to
 * nobody, and swept with the expired ones. Ids hash the room with the bytes, so the same photo
 * uploaded in two rooms is two targets, and an id reveals nothing about another room's uploads.
 */
import { createHash } from 'node:crypto';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOM_ID_PATTERN } from '../auth/tokens.ts';

export interface UploadRecord {
  room: string;
  /** When it was uploaded, ms since the epoch. */
  createdMs: number;
}

export const UPLOAD_FILE = /^(u[0-9a-f]{16})\.(jpg|png|webp)$/;

export function uploadId(room: string, bytes: Uint8Array): string {
  return `u${createHash('sha256').update(room).update('\0').update(bytes).digest('hex').slice(0, 16)}`;
}

export function recordPath(dir: string, id: string): string {
  return join(dir, `${id}.json`);
}

/** Writes the record atomically (temporary file, then rename). */
export async function writeRecord(dir: string, id: string, rec: UploadRecord): Promise<void> {
  const tmp = join(dir, `.incoming-${id}.json`);
  try {
    await writeFile(tmp, JSON.stringify({ v: 1, room: rec.room, createdMs: rec.createdMs }), { mode: 0o600 });
    await rename(tmp, recordPath(dir, id));
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** The record of an upload, or null when it is missing or unreadable. */
export async function readRecord(dir: string, id: string): Promise<UploadRecord | null> {
  try {
    const r = JSON.parse(await readFile(recordPath(dir, id), 'utf8')) as Partial<UploadRecord>;
    if (typeof r.room !== 'string' || !ROOM_ID_PATTERN.test(r.room) || typeof r.createdMs !== 'number' || !Number.isFinite(r.createdMs)) return null;
    return { room: r.room, createdMs: r.createdMs };
  } catch {
    return null;
  }
}

/** Modification time of a file, ms (0 when it is gone). */
export async function mtimeMs(path: string): Promise<number> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return 0;
  }
}

export async function removeRecord(dir: string, id: string): Promise<void> {
  await rm(recordPath(dir, id), { force: true });
}
