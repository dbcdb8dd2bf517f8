/**
 * `npm run reenact -- --driving <video> --target <image-or-video> --out <out.mp4> [--size 256|512] [--output face|frame|720p|1080p|720x1280] [--side-by-side] [--no-lip-zero] [--no-audio] [--no-watermark]`
 *
 * An .mp4 carries the driving clip's sound (AAC), aligned to the frames, unless --no-audio;
 * every frame carries the provenance watermark (docs/provenance.md), unless --no-watermark.
 *
 * Re-renders the target with the driving actor's expression and head pose,
 * one output frame per driving frame at the driving fps. Progress (fps, ETA)
 * goes to stderr. Exit codes: 0 done, 2 bad input (missing/corrupt file, no
 * face in the target, bad option), 1 anything else.
 */
import { InferenceError } from '../inference/errors.ts';
import { ErrorCodes } from '../../../shared/errors.ts';
import { isProviderChoice, PROVIDERS } from '../inference/ort-session.ts';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { createPayloadMaker } from '../provenance/keys.ts';
import { MediaError } from '../media/video-io.ts';
import { Tracker } from '../tracking/tracker.ts';
import { RenderError } from './errors.ts';
import { reenactVideo } from './offline.ts';
import { isOutputProfile, OUTPUT_PROFILES } from '../../../shared/protocol.ts';

const USAGE = 'usage: npm run reenact -- --driving <video> --target <image-or-video> --out <out.mp4> [--size 256|512] [--output face|frame|720p|1080p|720x1280] [--side-by-side] [--max-frames N] [--no-cache] [--no-lip-zero] [--no-audio] [--no-watermark] [--provider auto|cpu|webgpu|cuda]';

class UsageError extends Error {}

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      driving: { type: 'string' },
      target: { type: 'string' },
      out: { type: 'string' },
      size: { type: 'string', default: '256' },
      output: { type: 'string', default: 'face' },
      'side-by-side': { type: 'boolean', default: false },
      'max-frames': { type: 'string' },
      'no-cache': { type: 'boolean', default: false },
      // Keep a target's own parted lips while the actor rests with a closed mouth (lipZero off).
      'no-lip-zero': { type: 'boolean', default: false },
      // Leave the driving clip's sound out of an .mp4 (it is copied in, aligned, by default).
      'no-audio': { type: 'boolean', default: false },
      // Leave the provenance watermark out (docs/provenance.md); it is on by default.
      'no-watermark': { type: 'boolean', default: false },
      // The face models' inference provider (docs/gpu.md); REENACT_PROVIDER when not given.
      provider: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return null;
  if (!values.driving || !values.target || !values.out) throw new UsageError('--driving, --target and --out are required');
  const size = Number(values.size);
  if (size !== 256 && size !== 512) throw new UsageError(`--size must be 256 or 512, got ${values.size}`);
  const output = values.output;
  if (!isOutputProfile(output)) throw new UsageError(`--output must be one of ${OUTPUT_PROFILES.join(', ')}, got ${output}`);
  if (values['side-by-side'] && output !== 'face') throw new UsageError('--side-by-side shows the face square: leave --output out');
  if (!/\.(mp4|y4m)$/i.test(values.out)) throw new UsageError('--out must end in .mp4 or .y4m');
  const maxFrames = values['max-frames'] === undefined ? undefined : Number(values['max-frames']);
  if (maxFrames !== undefined && !(Number.isInteger(maxFrames) && maxFrames > 0)) throw new UsageError('--max-frames must be a positive integer');
  const provider = values.provider ?? process.env['REENACT_PROVIDER'] ?? 'auto';
  if (!isProviderChoice(provider)) throw new UsageError(`--provider must be auto, ${PROVIDERS.join(', ')}; got ${provider}`);
  return { provider, driving: values.driving, target: values.target, out: values.out, size, output, sideBySide: values['side-by-side'], maxFrames, noCache: values['no-cache'], lipZero: !values['no-lip-zero'], audio: !values['no-audio'], watermark: !values['no-watermark'] };
}

function progressBar(): (done: number, total: number) => void {
  const t0 = performance.now();
  let lastLine = 0;
  const tty = process.stderr.isTTY;
  return (done, total) => {
    const now = performance.now();
    if (done < total && now - lastLine < (tty ? 200 : 2000)) return;
    lastLine = now;
    const fps = done / Math.max((now - t0) / 1000, 1e-3);
    const eta = Math.max(0, (total - done) / Math.max(fps, 1e-3));
    const width = 30;
    const filled = Math.round((Math.min(done, total) / Math.max(total, 1)) * width);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} frames  ${fps.toFixed(1)} fps  ETA ${eta.toFixed(0)}s`;
    process.stderr.write(tty ? `\r${line}${done >= total ? '\n' : ''}` : `${line}\n`);
  };
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(process.argv.slice(2));
  } catch (err) {
    console.error(`reenact: ${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    return 2;
  }
  if (!args) {
    console.log(USAGE);
    return 0;
  }
  let tracker: Tracker | null = null;
  try {
    tracker = await Tracker.create({ threads: 1, provider: args.provider });
    // The same signing key and log as a server using this data folder (REENACT_DATA_DIR).
    const makePayload = await createPayloadMaker({
      enabled: args.watermark, dataDir: process.env['REENACT_DATA_DIR'] ?? join(homedir(), '.cache', 'reenact'), serverId: process.env['REENACT_SERVER_ID'],
      onLogError: (err) => console.error(`reenact: could not append to the provenance log (${err instanceof Error ? err.message : String(err)})`),
    });
    const t0 = performance.now();
    const r = await reenactVideo({
      driving: args.driving, target: args.target, out: args.out, size: args.size, output: args.output, sideBySide: args.sideBySide,
      maxFrames: args.maxFrames, audio: args.audio, tracker, cacheDir: args.noCache ? null : undefined, onProgress: progressBar(),
      retarget: { lipZero: args.lipZero },
      watermark: makePayload ? Uint8Array.from(makePayload(`offline:${basename(args.out)}`)) : undefined,
    });
    const s = (performance.now() - t0) / 1000;
    console.error(
      `reenact: wrote ${args.out}: ${r.frames} frames ${r.width}x${r.height} at ${r.fps.toFixed(2)} fps in ${s.toFixed(1)} s; ` +
        `render p50 ${r.renderMsP50.toFixed(1)} ms, p95 ${r.renderMsP95.toFixed(1)} ms; driving frames without a face: ${r.framesWithoutFace}`,
    );
    return 0;
  } catch (err) {
    if (err instanceof MediaError || err instanceof RenderError) {
      console.error(`reenact: ${err.message} (${err.code})`);
      return 2;
    }
    if (err instanceof InferenceError && err.originCode === ErrorCodes.PROVIDER_UNAVAILABLE) {
      console.error(`reenact: ${err.message.replace(/ \(E_PROVIDER_UNAVAILABLE\)$/, '')} (${err.originCode})`);
      return 2;
    }
    console.error(`reenact: failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  } finally {
    await tracker?.close();
  }
}

process.exitCode = await main();
