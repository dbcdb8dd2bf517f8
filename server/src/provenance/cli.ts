/**
 * `npm run verify -- <recording> [--data-dir DIR] [--json]`
 *
 * Looks for the provenance watermark in a recording (mp4, webm, y4m, or
 * anything ffmpeg reads). Exit codes: 0 the watermark is there (the payload
 * is printed when the recording was long enough to read it: about 15 s or
 * more), 1 it is not, 2 the file cannot be read. With the server's data
 * folder at hand (default REENACT_DATA_DIR or ~/.cache/reenact) the payload's
 * signature is checked with its key and the room and session are named from
 * its provenance log.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MediaError } from '../media/video-io.ts';
import { detect } from './detect.ts';
import { lookupProvenance, provenanceKeyIfPresent } from './keys.ts';
import { decodePayload, PAYLOAD_BITS, tagValid } from './payload.ts';
import { readCellFrames } from './read.ts';

const USAGE = 'usage: npm run verify -- <recording.mp4|webm|y4m> [--data-dir DIR] [--json]';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: process.argv.slice(2), allowPositionals: true, options: { 'data-dir': { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    console.error(`verify: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    console.error(`verify: one recording is needed\n${USAGE}`);
    return 2;
  }
  const dataDir = values['data-dir'] ?? process.env['REENACT_DATA_DIR'] ?? join(homedir(), '.cache', 'reenact');
  let frames;
  try {
    frames = await readCellFrames(positionals[0]!);
  } catch (err) {
    console.error(`verify: ${(err as Error).message}${err instanceof MediaError ? ` (${err.code})` : ''}`);
    return 2;
  }
  if (frames.length < 30) {
    console.error(`verify: ${positionals[0]} has ${frames.length} frames; at least one second is needed`);
    return 2;
  }
  const d = detect(frames, PAYLOAD_BITS);
  const payload = d.marked ? decodePayload(d.bits) : null;
  const key = payload ? await provenanceKeyIfPresent(dataDir) : null;
  const signature = !payload ? null : key === null ? 'unchecked (no key in the data folder)' : tagValid(payload, key) ? 'valid' : 'INVALID for this server\'s key';
  const names = payload ? await lookupProvenance(dataDir, payload) : [];
  const marked = d.windows.filter((w) => w.marked).length;
  const report = {
    file: positionals[0],
    watermark: d.marked,
    z: Number(d.z.toFixed(2)),
    windows: { total: d.windows.length, marked },
    payload: payload ? { ...payload, isoTime: new Date(payload.time * 1000).toISOString(), signature, names } : d.marked ? 'present, but not read cleanly (a longer recording is needed)' : null,
  };
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else if (!d.marked) console.log(`no provenance watermark found in ${report.file} (best z ${report.z}, ${marked}/${d.windows.length} one-second windows above threshold)`);
  else {
    console.log(`provenance watermark FOUND in ${report.file}: z ${report.z}, ${marked}/${d.windows.length} one-second windows marked`);
    if (payload) {
      console.log(`  made ${report.payload && typeof report.payload === 'object' ? report.payload.isoTime : ''}; server #${payload.serverHash}, room #${payload.roomHash}, session #${payload.sessionHash}; signature ${signature}`);
      for (const n of names) console.log(`  = server ${n.server}, room ${n.room}, session ${n.session}`);
    } else console.log('  payload not read cleanly: a longer recording is needed');
  }
  return d.marked ? 0 : 1;
}

process.exitCode = await main();
