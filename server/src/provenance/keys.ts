/**
 * The server's provenance identity: the key that signs watermark payloads
 * (kept in the data folder, created once, readable by the owner only, so
 * recordings made before a restart still verify) and the log that maps the
 * payload's hashes back to names.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { encodePayload, nameHash, type Provenance } from './payload.ts';

export const KEY_FILE = 'provenance.key';
export const LOG_FILE = 'provenance.jsonl';

/** The signing key in dataDir, created on first use. */
export async function provenanceKey(dataDir: string): Promise<string> {
  const path = join(dataDir, KEY_FILE);
  const existing = await provenanceKeyIfPresent(dataDir);
  if (existing) return existing;
  await mkdir(dataDir, { recursive: true });
  const key = randomBytes(32).toString('hex');
  // 'wx': never overwrite a key another process wrote meanwhile; read theirs instead.
  try {
    await writeFile(path, `${key}\n`, { mode: 0o600, flag: 'wx' });
    return key;
  } catch {
    return (await readFile(path, 'utf8')).trim();
  }
}

/** The server's name in payloads: REENACT_SERVER_ID when set, else the host name. */
export function serverName(configured?: string): string {
  return configured || hostname();
}

export interface LogEntry extends Provenance {
  serverHash: number;
  roomHash: number;
  sessionHash: number;
}

/** Appends a session's provenance to the log (one JSON line). */
export async function logProvenance(dataDir: string, p: Provenance): Promise<void> {
  const entry: LogEntry = { ...p, serverHash: nameHash(p.server, 12), roomHash: nameHash(p.room, 16), sessionHash: nameHash(p.session, 16) };
  await mkdir(dataDir, { recursive: true });
  await appendFile(join(dataDir, LOG_FILE), `${JSON.stringify(entry)}\n`);
}

/** Log entries matching a decoded payload's hashes and time. */
export async function lookupProvenance(dataDir: string, match: { serverHash: number; roomHash: number; sessionHash: number; time: number }): Promise<LogEntry[]> {
  let text: string;
  try {
    text = await readFile(join(dataDir, LOG_FILE), 'utf8');
  } catch {
    return [];
  }
  const out: LogEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const e = JSON.parse(line) as LogEntry;
      if (e.serverHash === match.serverHash && e.roomHash === match.roomHash && e.sessionHash === match.sessionHash && Math.floor(e.time) === match.time) out.push(e);
    } catch {
      // A torn last line: skip it.
    }
  }
  return out;
}

/** The key if the data folder has one (the verifier never creates it). */
export async function provenanceKeyIfPresent(dataDir: string): Promise<string | null> {
  try {
    const k = (await readFile(join(dataDir, KEY_FILE), 'utf8')).trim();
    return k.length >= 32 ? k : null;
  } catch {
    return null;
  }
}

/**
 * The server's payload maker: for a session starting in a room, its payload bits, logged first
 * (a failed log write is reported, never fatal). Null when marking is off.
 */
export async function createPayloadMaker(opts: { enabled: boolean; dataDir: string; serverId?: string; onLogError: (err: unknown) => void }): Promise<((roomId: string) => number[]) | null> {
  if (!opts.enabled) return null;
  const key = await provenanceKey(opts.dataDir);
  const server = serverName(opts.serverId);
  let seq = 0;
  return (room) => {
    const time = Date.now() / 1000;
    // Session: the room and when this session started (a restarted reenactor starts a new one).
    const p: Provenance = { server, room, session: `${room}@${Math.floor(time)}.${++seq}`, time };
    logProvenance(opts.dataDir, p).catch(opts.onLogError);
    return Array.from(encodePayload(p, key));
  };
}
