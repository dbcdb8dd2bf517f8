/**
 * `npm run virtualcam -- --room <id> (--device /dev/videoN | --y4m <file|->) [options]`
 *
 * Watches a room's synthesized video as a viewer and writes it at a steady
 * frame rate to a v4l2loopback device (through ffmpeg) or to a y4m file or
 * pipe, and (--wav, --audio-device) its sound to a WAV file or a virtual
 * microphone. See docs/virtual-camera.md.
 *
 * Exit codes: 0 when the duration was reached, the room ended, or on
 * SIGINT/SIGTERM; 1 when the server or the output failed; 2 for bad usage.
 */
import { parseArgs } from 'node:util';
import { rootLogger } from '../logger.ts';
import { VirtualCamera, type OutputTarget, type VirtualCameraStats } from './virtual-camera.ts';
import { parseAudioDevice, type AudioTarget } from './audio-out.ts';

const USAGE = `usage: npm run virtualcam -- --room <id> (--device /dev/videoN | --y4m <file|->) [options]

  --room <id>        room to watch (its synthesized video)
  --device <path>    v4l2loopback device to write to (through ffmpeg -f v4l2)
  --y4m <file|->     write YUV4MPEG2 to a file, or to stdout with -
  --url <url>        server (default http://127.0.0.1:8080)
  --token <token>    viewer token (default: fetched from <url>/api/token)
  --fps <n>          output frame rate (default 30); the last frame repeats when input stalls
  --size <WxH>       output size (default 640x480 for --device, the first frame's size for --y4m)
  --duration <s>     stop after this many seconds of output (default: until the room ends)
  --wait <s>         give up if no video appears within this long (default: wait forever)
  --grace <s>        keep repeating the last frame this long after the video stops (default 10)
  --wav <file>       write the room's sound (the actor's voice) to a WAV file, starting with the first frame
  --audio-device <d> play the room's sound into a virtual microphone: pulse:<sink> (PulseAudio or
                     PipeWire; e.g. a null sink made with pactl load-module module-null-sink) or
                     alsa:<device> (e.g. an snd-aloop loopback, hw:Loopback,0)
`;

class UsageError extends Error {}

function positive(name: string, v: string | undefined, allowZero = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) throw new UsageError(`--${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${v}`);
  return n;
}

function parse(argv: string[]): Parameters<typeof VirtualCamera.create>[0] {
  const { values } = parseArgs({
    args: argv,
    options: {
      room: { type: 'string' },
      device: { type: 'string' },
      y4m: { type: 'string' },
      url: { type: 'string', default: 'http://127.0.0.1:8080' },
      token: { type: 'string' },
      fps: { type: 'string' },
      size: { type: 'string' },
      duration: { type: 'string' },
      wait: { type: 'string' },
      grace: { type: 'string' },
      wav: { type: 'string' },
      'audio-device': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  if (!values.room || !/^[A-Za-z0-9_-]{1,64}$/.test(values.room)) throw new UsageError('--room <id> is required ([A-Za-z0-9_-]{1,64})');
  if (!values.device === !values.y4m) throw new UsageError('give exactly one of --device /dev/videoN or --y4m <file|->');
  if (values.wav && values['audio-device']) throw new UsageError('give at most one of --wav <file> or --audio-device <pulse:sink|alsa:device>');
  let audio: AudioTarget | undefined;
  try {
    audio = values.wav ? { kind: 'wav', path: values.wav } : values['audio-device'] ? parseAudioDevice(values['audio-device']) : undefined;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const output: OutputTarget = values.device ? { kind: 'v4l2', device: values.device } : { kind: 'y4m', path: values.y4m ?? '-' };
  let size: { width: number; height: number } | undefined;
  if (values.size) {
    const m = /^(\d+)x(\d+)$/.exec(values.size);
    if (!m) throw new UsageError(`--size must look like 640x480, got ${values.size}`);
    size = { width: Number(m[1]), height: Number(m[2]) };
    if (size.width % 2 || size.height % 2 || size.width < 2 || size.height < 2) throw new UsageError('--size must be even in both dimensions');
  }
  const fps = positive('fps', values.fps) ?? 30;
  if (fps > 120) throw new UsageError('--fps must be at most 120');
  const seconds = (name: string, v: string | undefined): number | undefined => {
    const s = positive(name, v, true);
    return s === undefined ? undefined : Math.round(s * 1000);
  };
  return {
    url: values.url ?? 'http://127.0.0.1:8080',
    room: values.room,
    token: values.token,
    output,
    fps,
    size,
    durationMs: seconds('duration', values.duration),
    waitMs: seconds('wait', values.wait),
    graceMs: seconds('grace', values.grace),
    audio,
    log: rootLogger.child('virtualcam', { room: values.room }),
  };
}

function summary(s: Readonly<VirtualCameraStats>): Record<string, number> {
  const measuredFps = s.outputMs > 0 ? ((s.framesOut - 1) * 1000) / s.outputMs : 0;
  return { ...s, measuredFps: Math.round(measuredFps * 100) / 100 };
}

async function main(): Promise<number> {
  let opts: Parameters<typeof VirtualCamera.create>[0];
  try {
    opts = parse(process.argv.slice(2));
  } catch (err) {
    console.error(`virtualcam: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  let cam: VirtualCamera;
  try {
    cam = await VirtualCamera.create(opts);
  } catch (err) {
    console.error(`virtualcam: cannot join room ${opts.room} at ${opts.url}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  const stop = (): void => void cam.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const reason = await cam.done;
  await cam.close().catch((err: unknown) => console.error(`virtualcam: closing the output failed: ${String(err)}`));
  const text: Record<typeof reason.kind, string> = {
    duration: 'done',
    'room-closed': 'the room ended',
    'video-ended': 'the room’s video ended',
    'no-video': 'no video',
    disconnected: 'the server went away',
    'output-failed': 'the output failed',
    closed: 'stopped',
  };
  console.error(`virtualcam: ${text[reason.kind]}: ${reason.message}`);
  console.error(`virtualcam summary ${JSON.stringify({ end: reason.kind, ...summary(cam.stats) })}`);
  return reason.kind === 'output-failed' || reason.kind === 'disconnected' || reason.kind === 'no-video' ? 1 : 0;
}

const code = await main();
// wrtc tears its threads down asynchronously after the last peer connection closes: let it settle, then exit.
setTimeout(() => process.exit(code), 300);
