/**
 * npm run eval:watermark — the provenance watermark's detection and false-positive rates.
 *
 * Detection, on what the product sends: every driver in test/fixtures
 * (driving/ and talking/) reenacted onto each of three targets (a photo, a
 * painting, a clip) by the offline renderer at 256², each output frame marked
 * as the live pipeline marks it, encoded the way a real-time sender would
 * (libvpx VP8 realtime, or libx264 zerolatency; constant bitrate, one
 * keyframe) at each bitrate, decoded and read back: the share of one-second
 * windows found, and whether the payload came back whole and correct.
 *
 * Detection, on raw camera footage (harder: auto-exposure, sensor noise and a
 * moving background, none of which a render has): every fixture clip looped to
 * --seconds, marked, at 256² (VP8 and H.264) and 1280×720 (VP8), 300 kbit/s.
 *
 * False positives: the same clips unmarked, both as they are (every frame of
 * the original file) and through VP8 at 300 kbit/s, plus every still target
 * held for five seconds: the share of one-second windows the reader calls
 * marked, and recordings it calls marked at all.
 *
 *   npm run eval:watermark -- [--seconds 12] [--out loadtest/out/watermark] [--quick]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { probeMedia, readFrames, VideoWriter } from '../../server/src/media/video-io.ts';
import { i420Size, rgbaToI420 } from '../../server/src/media/convert.ts';
import { reenactVideo } from '../../server/src/render/offline.ts';
import { Tracker } from '../../server/src/tracking/tracker.ts';
import { detect } from '../../server/src/provenance/detect.ts';
import { decodePayload, encodePayload, PAYLOAD_BITS } from '../../server/src/provenance/payload.ts';
import { readCellFrames } from '../../server/src/provenance/read.ts';
import { WatermarkEmbedder } from '../../server/src/provenance/watermark.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIX = join(ROOT, 'test', 'fixtures');

export type Codec = 'vp8' | 'h264';

export function encoderArgs(codec: Codec, kbps: number): string[] {
  const rate = ['-b:v', `${kbps}k`, '-maxrate', `${kbps}k`, '-bufsize', `${kbps}k`, '-g', '100000'];
  return codec === 'h264'
    ? ['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', ...rate]
    : ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-lag-in-frames', '0', '-error-resilient', '1', ...rate];
}

/** Writes `clip` looped to `frames` frames at w×h, 30 fps, marked when `payload` is given, as y4m. */
export async function writeClip(clip: string, out: string, w: number, h: number, frames: number, payload: Uint8Array | null): Promise<void> {
  const emb = payload ? new WatermarkEmbedder(payload, 0) : null;
  const writer = new VideoWriter(out, { width: w, height: h, fps: 30, format: 'yuv420p' });
  const still = !(await probeMedia(clip)).isVideo;
  let n = 0;
  try {
    while (n < frames) {
      // A still is one decoded frame, held; a clip loops.
      for await (const f of readFrames(clip, { width: w, height: h, fps: still ? undefined : 30, format: 'yuv420p', loop: !still })) {
        for (let rep = 0; rep < (still ? frames : 1) && n < frames; rep++) {
          const frame = still ? Uint8Array.from(f.data) : f.data;
          // A start that is not on a chip boundary, as a recording's would be.
          emb?.mark(frame, w, h, (n * 1000) / 30 + 1234);
          await writer.write(frame);
          n++;
        }
        if (n >= frames) break;
      }
    }
  } finally {
    await writer.close();
  }
}

/** Targets for the rendered-output rows: a photo, a painting and a clip. */
const RENDER_TARGETS = ['s1.jpg', 's9.jpg', 's18.mp4'];

/** Reenacts `driver` onto `target` at 256² and writes the output, marked, as y4m. */
async function writeRender(driver: string, target: string, out: string, tracker: Tracker, payload: Uint8Array): Promise<void> {
  const SIZE = 256;
  const emb = new WatermarkEmbedder(payload, 0);
  const info = await probeMedia(driver);
  const writer = new VideoWriter(out, { width: SIZE, height: SIZE, fps: info.fps, format: 'yuv420p' });
  const yuv = new Uint8Array(i420Size(SIZE, SIZE));
  try {
    await reenactVideo({
      driving: driver, target, size: SIZE, tracker, cacheDir: join(ROOT, '.cache', 'reenact', 'targets'),
      onFrame: async (i, face) => {
        rgbaToI420(face, SIZE, SIZE, yuv, SIZE, SIZE);
        emb.mark(yuv, SIZE, SIZE, (i * 1000) / info.fps + 1234);
        await writer.write(yuv);
      },
    });
  } finally {
    await writer.close();
  }
}

export function encode(src: string, out: string, codec: Codec, kbps: number): void {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', '-i', src, ...encoderArgs(codec, kbps), out]);
  if (r.status !== 0) throw new Error(`ffmpeg: ${r.stderr.toString()}`);
}

interface Row {
  clip: string;
  size: string;
  codec: Codec | 'none';
  kbps: number | null;
  marked: boolean;
  windows: number;
  windowsFound: number;
  recordingFound: boolean;
  payload: 'ok' | 'wrong' | 'unread' | null;
  z: number;
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({ options: { seconds: { type: 'string', default: '12' }, out: { type: 'string', default: join(ROOT, 'loadtest', 'out', 'watermark') }, quick: { type: 'boolean', default: false } } });
  const frames = Number(a.seconds) * 30;
  const clips = [
    ...readdirSync(join(FIX, 'driving')).map((f) => join(FIX, 'driving', f)),
    ...readdirSync(join(FIX, 'talking')).map((f) => join(FIX, 'talking', f)),
    ...readdirSync(join(FIX, 'targets')).filter((f) => f.endsWith('.mp4')).map((f) => join(FIX, 'targets', f)),
  ].filter((f) => f.endsWith('.mp4')).sort();
  const stills = readdirSync(join(FIX, 'targets')).filter((f) => /\.(jpg|png)$/.test(f)).map((f) => join(FIX, 'targets', f)).sort();
  const tmp = mkdtempSync(join(tmpdir(), 'reenact-wm-'));
  const payload = encodePayload({ server: 'eval', room: 'room', session: 'session', time: 1_765_000_000 }, 'eval-key-eval-key-eval-key-eval-key');
  const configs: [number, number, Codec, number][] = a.quick
    ? [[256, 256, 'vp8', 300]]
    : [[256, 256, 'vp8', 300], [256, 256, 'h264', 300], [1280, 720, 'vp8', 300]];
  const rows: Row[] = [];
  const name = (p: string): string => p.split('/').slice(-2).join('/');
  const read = async (file: string, row: Omit<Row, 'windows' | 'windowsFound' | 'recordingFound' | 'payload' | 'z'>): Promise<void> => {
    const d = detect(await readCellFrames(file), PAYLOAD_BITS);
    const p = d.marked ? decodePayload(d.bits) : null;
    const ok = p !== null && d.bits.every((b, i) => b === payload[i]);
    rows.push({ ...row, windows: d.windows.length, windowsFound: d.windows.filter((w) => w.marked).length, recordingFound: d.marked, payload: row.marked ? (ok ? 'ok' : p ? 'wrong' : 'unread') : null, z: Number(d.z.toFixed(1)) });
    const r = rows[rows.length - 1]!;
    process.stderr.write(`${r.clip} ${r.size} ${r.codec} ${r.kbps ?? '-'}k marked=${r.marked}: ${r.windowsFound}/${r.windows} windows, recording ${r.recordingFound ? 'found' : 'not found'}, z ${r.z}${r.payload ? `, payload ${r.payload}` : ''}\n`);
  };
  try {
    if (!a.quick) {
      const tracker = await Tracker.create({ threads: 1 });
      try {
        for (const driver of clips.filter((c) => !c.includes('/targets/'))) {
          for (const target of RENDER_TARGETS.map((t) => join(FIX, 'targets', t))) {
            const raw = join(tmp, 'render.y4m');
            await writeRender(driver, target, raw, tracker, payload);
            for (const [codec, kbps] of [['vp8', 300], ['h264', 300], ['vp8', 2000]] as const) {
              const enc = join(tmp, codec === 'h264' ? 'render.mp4' : 'render.webm');
              encode(raw, enc, codec, kbps);
              await read(enc, { clip: `${name(driver)} → ${name(target)}`, size: 'render 256x256', codec, kbps, marked: true });
            }
          }
        }
      } finally {
        await tracker.close();
      }
    }
    for (const clip of clips) {
      // False positives on the original file, every frame as it is.
      await read(clip, { clip: name(clip), size: 'native', codec: 'none', kbps: null, marked: false });
      for (const [w, h, codec, kbps] of configs) {
        for (const marked of [true, false]) {
          if (!marked && !(codec === 'vp8' && kbps === 300)) continue;
          const raw = join(tmp, 'clip.y4m'), enc = join(tmp, codec === 'h264' ? 'clip.mp4' : 'clip.webm');
          await writeClip(clip, raw, w, h, frames, marked ? payload : null);
          encode(raw, enc, codec, kbps);
          await read(enc, { clip: name(clip), size: `${w}x${h}`, codec, kbps, marked });
        }
      }
    }
    for (const still of stills) {
      const raw = join(tmp, 'still.y4m');
      await writeClip(still, raw, 256, 256, 150, null);
      await read(raw, { clip: name(still), size: '256x256', codec: 'none', kbps: null, marked: false });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const summary = summarise(rows);
  console.log(summary);
  mkdirSync(a.out, { recursive: true });
  writeFileSync(join(a.out, 'rows.json'), JSON.stringify(rows, null, 1));
  writeFileSync(join(a.out, 'summary.md'), `${summary}\n`);
}

export function summarise(rows: Row[]): string {
  const lines = ['| marked | size | codec | bitrate | recordings | one-second windows found | recordings found | payload read correctly |', '|---|---|---|---|---|---|---|---|'];
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const k = `${r.marked}|${r.size}|${r.codec}|${r.kbps ?? '-'}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  for (const [k, g] of groups) {
    const [marked, size, codec, kbps] = k.split('|');
    const windows = g.reduce((s, r) => s + r.windows, 0), found = g.reduce((s, r) => s + r.windowsFound, 0);
    const pct = (n: number, d: number): string => `${((100 * n) / Math.max(d, 1)).toFixed(2)} % (${n}/${d})`;
    lines.push(`| ${marked === 'true' ? 'yes' : 'no'} | ${size} | ${codec} | ${kbps === '-' ? '-' : `${kbps} kbit/s`} | ${g.length} | ${pct(found, windows)} | ${pct(g.filter((r) => r.recordingFound).length, g.length)} | ${marked === 'true' ? pct(g.filter((r) => r.payload === 'ok').length, g.length) : '-'} |`);
  }
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
