/**
 * npm run track -- <image-or-video> [--out track.json] [--threads N] [--provider cpu|webgpu|cuda|auto] [--max-side PX] [--raw]
 *
 * Writes one FaceTrack record per frame (a JSON array; JSON Lines when --out ends in .jsonl;
 * stdout without --out). Landmarks are in input pixels; faces is 0 and landmarks null when no
 * face is found. Exit codes: 0 done, 2 bad input (missing, corrupt, not an image or video, too
 * large), 1 anything else.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { isProviderChoice, PROVIDERS, type ProviderChoice } from '../inference/ort-session.ts';
import { parseArgs } from 'node:util';
import { buildModels } from '../../../models/build.ts';
import { ModelFileError } from '../../../models/manifest.ts';
import type { FaceTrack } from '../../../shared/tracking.ts';
import { setLogLevel } from '../logger.ts';
import { MediaError, probeMedia, readFrames, type MediaInfo } from '../media/video-io.ts';
import { toFaceTrack, Tracker } from './tracker.ts';

const USAGE = 'usage: npm run track -- <image-or-video> [--out track.json] [--threads N] [--max-side PX] [--raw] [--verbose]';
/** Inputs above this many pixels are refused outright (decoding alone would take too long). */
const MAX_PIXELS = 100_000_000;

class UsageError extends Error {}

interface Args {
  input: string;
  out: string | null;
  threads: number;
  maxSide: number;
  raw: boolean;
  verbose: boolean;
  provider: ProviderChoice;
}

function parse(argv: string[]): Args {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string', short: 'o' },
      threads: { type: 'string', default: '1' },
      provider: { type: 'string', default: 'auto' },
      'max-side': { type: 'string', default: '1920' },
      raw: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) throw new UsageError(USAGE);
  const input = positionals[0];
  if (!input || positionals.length > 1) throw new UsageError(USAGE);
  const threads = Number(values.threads);
  const maxSide = Number(values['max-side']);
  if (!Number.isInteger(threads) || threads < 1 || threads > 16) throw new UsageError('--threads must be an integer 1..16');
  if (!Number.isInteger(maxSide) || maxSide < 64) throw new UsageError('--max-side must be an integer >= 64');
  const provider = values.provider;
  if (!isProviderChoice(provider)) throw new UsageError(`--provider must be auto, ${PROVIDERS.join(', ')}`);
  return { input, out: values.out ?? null, threads, provider, maxSide, raw: values.raw, verbose: values.verbose };
}

/** Scales a record from the decoded (possibly downscaled) size back to input pixels. */
function rescale(t: FaceTrack, k: number): FaceTrack {
  if (k === 1) return t;
  const r = (v: number): number => Math.round(v * k * 100) / 100;
  return {
    ...t,
    landmarks: t.landmarks && t.landmarks.map(([x, y, z]) => [r(x), r(y), r(z)]),
    pose: t.pose && { ...t.pose, tx: r(t.pose.tx), ty: r(t.pose.ty), scale: Math.round(t.pose.scale * k * 1e4) / 1e4 },
  };
}

class RecordWriter {
  readonly #stream: WriteStream | NodeJS.WriteStream;
  readonly #jsonl: boolean;
  #count = 0;

  constructor(out: string | null) {
    this.#stream = out ? createWriteStream(out) : process.stdout;
    this.#jsonl = out?.endsWith('.jsonl') ?? false;
    if (!this.#jsonl) this.#stream.write('[');
  }

  async write(t: FaceTrack): Promise<void> {
    const line = JSON.stringify(t);
    const text = this.#jsonl ? `${line}\n` : `${this.#count === 0 ? '\n' : ',\n'}${line}`;
    this.#count++;
    if (!this.#stream.write(text)) await new Promise<void>((resolve) => this.#stream.once('drain', resolve));
  }

  async close(): Promise<void> {
    if (!this.#jsonl) this.#stream.write('\n]\n');
    if (this.#stream === process.stdout) return;
    await new Promise<void>((resolve, reject) => {
      this.#stream.once('error', reject);
      (this.#stream as WriteStream).end(resolve);
    });
  }
}

async function createTracker(threads: number, provider: ProviderChoice): Promise<Tracker> {
  try {
    return await Tracker.create({ threads, provider });
  } catch (err) {
    if (!(err instanceof ModelFileError)) throw err;
    console.error('models are not built yet: building them once (npm run build:models)');
    await buildModels({ log: (l) => console.error(`  ${l}`) });
    return Tracker.create({ threads, provider });
  }
}

function plan(info: MediaInfo, maxSide: number): { width: number; height: number; k: number } {
  const longSide = Math.max(info.width, info.height);
  if (longSide <= maxSide) return { width: info.width, height: info.height, k: 1 };
  const s = maxSide / longSide;
  // Even sizes keep ffmpeg's scaler happy for every pixel format.
  const width = Math.max(2, Math.round((info.width * s) / 2) * 2);
  const height = Math.max(2, Math.round((info.height * s) / 2) * 2);
  return { width, height, k: info.width / width };
}

async function run(args: Args): Promise<void> {
  const info = await probeMedia(args.input);
  if (info.width * info.height > MAX_PIXELS) {
    throw new MediaError('E_MEDIA_TOO_LARGE', `${info.width}x${info.height} is over the limit of ${MAX_PIXELS / 1e6} megapixels`);
  }
  const { width, height, k } = plan(info, args.maxSide);
  if (k !== 1) console.error(`input is ${info.width}x${info.height}: tracking on a ${width}x${height} downscale (--max-side ${args.maxSide}); coordinates are reported in input pixels`);
  const tracker = await createTracker(args.threads, args.provider);
  const writer = new RecordWriter(args.out);
  const fps = info.fps > 0 ? info.fps : 30;
  const started = performance.now();
  let frame = 0;
  let withFace = 0;
  let lastProgress = 0;
  try {
    for await (const f of readFrames(args.input, { width, height, format: 'rgba', maxFrames: info.isVideo ? undefined : 1 })) {
      const result = await tracker.process(f, info.isVideo ? (frame * 1000) / fps : 0);
      const rec = rescale(toFaceTrack(result), k);
      if (rec.landmarks) withFace++;
      await writer.write(args.raw ? rec : { ...rec, timeMs: Math.round(rec.timeMs * 100) / 100 });
      frame++;
      const now = performance.now();
      // Progress: redrawn in place on a terminal, one line every 2 s otherwise, and always after
      // the first frame (so a short or fast run says how far it got too).
      const tty = process.stderr.isTTY === true;
      if (info.isVideo && (frame === 1 || now - lastProgress > (tty ? 250 : 2000))) {
        lastProgress = now;
        const pct = info.frames > 0 ? ` (${Math.min(100, Math.round((100 * frame) / info.frames))}%)` : '';
        const line = `frame ${frame}/${info.frames || '?'}${pct}, ${(frame / ((now - started) / 1000)).toFixed(0)} fps`;
        process.stderr.write(tty ? `\r${line}   ` : `${line}\n`);
      }
    }
  } finally {
    await writer.close();
    await tracker.close();
  }
  if (frame === 0) throw new MediaError('E_MEDIA_CORRUPT', `no frame could be decoded from ${args.input}`);
  const secs = (performance.now() - started) / 1000;
  if (info.isVideo && process.stderr.isTTY === true) process.stderr.write('\n');
  console.error(`${frame} frame(s), face in ${withFace}, ${secs.toFixed(1)} s${args.out ? `, wrote ${args.out}` : ''}`);
}

async function main(): Promise<void> {
  let args: Args;
  try {
    args = parse(process.argv.slice(2));
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 2;
    return;
  }
  setLogLevel(args.verbose ? 'debug' : 'warn');
  try {
    await run(args);
  } catch (err) {
    if (err instanceof MediaError) {
      console.error(`track: ${err.message} [${err.code}]`);
      process.exitCode = 2;
      return;
    }
    console.error(`track: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}

await main();
