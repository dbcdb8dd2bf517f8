/**
 * Video and image file I/O through Debian's ffmpeg/ffprobe (installed by
 * scripts/setup.sh). Frames come out as raw RGBA or I420 buffers of an exact
 * size; nothing here decodes in JS.
 *
 * Errors are MediaError with a code, so CLIs can map them to exit code 2 and a
 * clear message, and the server can map them to a coded wire error.
 */
import { spawn } from 'node:child_process';
import { access, stat } from 'node:fs/promises';
import { constants } from 'node:fs';

export type MediaErrorCode = 'E_MEDIA_MISSING' | 'E_MEDIA_CORRUPT' | 'E_MEDIA_TOO_LARGE' | 'E_MEDIA_TOOL';

export class MediaError extends Error {
  readonly code: MediaErrorCode;
  constructor(code: MediaErrorCode, message: string) {
    super(message);
    this.name = 'MediaError';
    this.code = code;
  }
}

export type PixelFormat = 'rgba' | 'yuv420p' | 'rgb24';

export interface RawFrame {
  width: number;
  height: number;
  format: PixelFormat;
  data: Uint8Array;
}

export interface MediaInfo {
  width: number;
  height: number;
  /** Frames per second; 0 for a still image. */
  fps: number;
  /** Frame count when the container says (or can be counted); 1 for images. */
  frames: number;
  isVideo: boolean;
  durationMs: number;
}

export function frameBytes(width: number, height: number, format: PixelFormat): number {
  switch (format) {
    case 'rgba':
      return width * height * 4;
    case 'rgb24':
      return width * height * 3;
    case 'yuv420p':
      return width * height + 2 * ((width + 1) >> 1) * ((height + 1) >> 1);
    default: {
      const never: never = format;
      throw new TypeError(`unknown pixel format ${String(never)}`);
    }
  }
}

const IMAGE_CODECS = new Set(['mjpeg', 'png', 'bmp', 'webp', 'tiff', 'gif', 'jpegls', 'jpeg2000']);

async function ensureReadable(path: string): Promise<void> {
  try {
    await access(path, constants.R_OK);
    const s = await stat(path);
    if (!s.isFile()) throw new MediaError('E_MEDIA_MISSING', `not a file: ${path}`);
    if (s.size === 0) throw new MediaError('E_MEDIA_CORRUPT', `empty file: ${path}`);
  } catch (err) {
    if (err instanceof MediaError) throw err;
    throw new MediaError('E_MEDIA_MISSING', `cannot read ${path}: no such file or no permission`);
  }
}

/** A probe or one-shot tool run is killed past these: a hostile file cannot hold it for long or fill memory. */
const TOOL_TIMEOUT_MS = 20_000;
const TOOL_MAX_STDOUT = 16 * 1024 * 1024;

function runTool(cmd: string, args: string[], input?: Uint8Array): Promise<{ stdout: Buffer; stderr: string; code: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let size = 0;
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new MediaError('E_MEDIA_CORRUPT', `${cmd} took over ${TOOL_TIMEOUT_MS / 1000} s on this file; refused`));
    }, TOOL_TIMEOUT_MS);
    child.once('close', () => clearTimeout(timer));
    child.stdout?.on('data', (d: Buffer) => {
      size += d.length;
      if (size > TOOL_MAX_STDOUT) {
        child.kill('SIGKILL');
        return;
      }
      out.push(d);
    });
    child.stderr?.on('data', (d: Buffer) => {
      if (err.length < 8192) err += d.toString();
    });
    child.on('error', (e) => reject(new MediaError('E_MEDIA_TOOL', `${cmd} could not start (${e.message}); run scripts/setup.sh`)));
    child.on('close', (code) => resolve({ stdout: Buffer.concat(out), stderr: err, code: code ?? -1 }));
    if (input && child.stdin) {
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    }
  });
}

/** Reads dimensions, rate and frame count; throws MediaError for missing or undecodable files. */
export async function probeMedia(path: string): Promise<MediaInfo> {
  await ensureReadable(path);
  const { stdout, code } = await runTool('ffprobe', [
    '-v', 'error', '-select_streams', 'v:0',
    '-show_entries', 'stream=codec_name,width,height,r_frame_rate,avg_frame_rate,nb_frames:format=duration,format_name',
    '-of', 'json', path,
  ]);
  if (code !== 0) throw new MediaError('E_MEDIA_CORRUPT', `${path} is not a readable image or video`);
  const parsed = JSON.parse(stdout.toString()) as {
    streams?: { codec_name?: string; width?: number; height?: number; r_frame_rate?: string; avg_frame_rate?: string; nb_frames?: string }[];
    format?: { duration?: string; format_name?: string };
  };
  const s = parsed.streams?.[0];
  if (!s?.width || !s.height) throw new MediaError('E_MEDIA_CORRUPT', `${path} has no video or image stream`);
  const isImage = IMAGE_CODECS.has(s.codec_name ?? '') && (parsed.format?.format_name ?? '').match(/image2|_pipe|png|jpeg|webp|bmp/) !== null;
  const rate = (s.avg_frame_rate && s.avg_frame_rate !== '0/0' ? s.avg_frame_rate : s.r_frame_rate) ?? '0/1';
  const [num, den] = rate.split('/').map(Number);
  const fps = isImage ? 0 : num && den ? num / den : 0;
  const durationMs = Number(parsed.format?.duration ?? 0) * 1000;
  const frames = isImage ? 1 : Number(s.nb_frames ?? 0) || Math.round((durationMs / 1000) * fps);
  return { width: s.width, height: s.height, fps, frames, isVideo: !isImage, durationMs };
}

export interface ReadOptions {
  /** Output size; defaults to the source size. Aspect is not preserved: pass both or neither. */
  width?: number;
  height?: number;
  /** Resample to this rate (ffmpeg fps filter); defaults to the source rate. */
  fps?: number;
  format?: PixelFormat;
  maxFrames?: number;
  /** Loop the input forever (for live actors); stop by breaking out of the loop. */
  loop?: boolean;
}

/**
 * Decodes a video (or image) into raw frames of an exact size. The generator
 * applies backpressure: ffmpeg is paused while the consumer is busy, and killed
 * when the consumer stops early.
 */
export async function* readFrames(path: string, opts: ReadOptions = {}): AsyncGenerator<RawFrame> {
  const info = await probeMedia(path);
  const width = opts.width ?? info.width;
  const height = opts.height ?? info.height;
  const format = opts.format ?? 'rgba';
  const size = frameBytes(width, height, format);
  const filters = [`scale=${width}:${height}:flags=bilinear`];
  if (opts.fps) filters.unshift(`fps=${opts.fps}`);
  const args = ['-v', 'error', '-nostdin'];
  if (opts.loop) args.push('-stream_loop', '-1');
  args.push('-i', path, '-an', '-vf', filters.join(','), '-f', 'rawvideo', '-pix_fmt', format);
  if (opts.maxFrames) args.push('-frames:v', String(opts.maxFrames));
  args.push('pipe:1');
  const child = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  let pending: Buffer = Buffer.alloc(0);
  let produced = 0;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= size) {
        const data = new Uint8Array(size);
        data.set(pending.subarray(0, size));
        pending = pending.subarray(size);
        produced++;
        yield { width, height, format, data };
      }
    }
    const code = await exited;
    if (code !== 0 && produced === 0) throw new MediaError('E_MEDIA_CORRUPT', `cannot decode ${path}: ${stderr.trim().split('\n').pop() ?? ''}`);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** Decodes one image (or a video's first frame) to RGBA, refusing ones over maxPixels. */
export async function decodeImage(path: string, opts: { maxPixels?: number; width?: number; height?: number } = {}): Promise<RawFrame> {
  const info = await probeMedia(path);
  const maxPixels = opts.maxPixels ?? 40_000_000;
  if (info.width * info.height > maxPixels) {
    throw new MediaError('E_MEDIA_TOO_LARGE', `${info.width}x${info.height} is over the limit of ${maxPixels} pixels`);
  }
  for await (const frame of readFrames(path, { width: opts.width, height: opts.height, format: 'rgba', maxFrames: 1 })) return frame;
  throw new MediaError('E_MEDIA_CORRUPT', `no frame could be decoded from ${path}`);
}

export interface WriterOptions {
  width: number;
  height: number;
  fps: number;
  format?: PixelFormat;
  /** Output container is chosen by extension: .mp4 (H.264), .y4m, .png (single image), .jpg. */
  crf?: number;
  /**
   * .mp4 only: copy this file's first audio stream in (AAC), shifted by offsetSec (its start less
   * the start of the video the frames came from) and cut at the last frame.
   */
  audio?: { path: string; offsetSec: number };
}

/**
 * A media file's sound against its picture: the first audio stream's start less the first video
 * stream's, seconds, or null when it has no sound.
 */
export async function probeAudioOffset(path: string): Promise<number | null> {
  const { stdout, code } = await runTool('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,start_time', '-of', 'json', path]);
  if (code !== 0) return null;
  const streams = (JSON.parse(stdout.toString()) as { streams?: { codec_type?: string; start_time?: string }[] }).streams ?? [];
  const start = (type: string): number | undefined => {
    const st = streams.find((x) => x.codec_type === type);
    return st ? Number(st.start_time ?? 0) || 0 : undefined;
  };
  const a = start('audio');
  if (a === undefined) return null;
  return a - (start('video') ?? 0);
}

/** Encodes raw frames to a file with ffmpeg; write() honours backpressure. */
export class VideoWriter {
  readonly #child: ReturnType<typeof spawn>;
  readonly #done: Promise<void>;
  readonly #size: number;
  #stderr = '';
  #closed = false;

  constructor(path: string, opts: WriterOptions) {
    const format = opts.format ?? 'rgba';
    this.#size = frameBytes(opts.width, opts.height, format);
    const args = ['-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', format, '-s', `${opts.width}x${opts.height}`, '-r', String(opts.fps), '-i', 'pipe:0'];
    const audio = path.endsWith('.mp4') ? opts.audio : undefined;
    if (audio) args.push('-itsoffset', audio.offsetSec.toFixed(6), '-i', audio.path, '-map', '0:v:0', '-map', '1:a:0', '-c:a', 'aac', '-b:a', '128k', '-shortest');
    if (path.endsWith('.mp4')) args.push('-c:v', 'libx264', '-preset', 'veryfast', '-crf', String(opts.crf ?? 18), '-pix_fmt', 'yuv420p', '-movflags', '+faststart');
    else if (path.endsWith('.y4m')) args.push('-pix_fmt', 'yuv420p', '-f', 'yuv4mpegpipe');
    else if (path.endsWith('.png') || path.endsWith('.jpg')) args.push('-frames:v', '1', '-update', '1');
    args.push(path);
    this.#child = spawn('ffmpeg', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.#child.stderr?.on('data', (d: Buffer) => {
      if (this.#stderr.length < 4096) this.#stderr += d.toString();
    });
    this.#done = new Promise((resolve, reject) => {
      this.#child.on('error', (e) => reject(new MediaError('E_MEDIA_TOOL', `ffmpeg could not start (${e.message})`)));
      this.#child.on('close', (code) => (code === 0 ? resolve() : reject(new MediaError('E_MEDIA_TOOL', `ffmpeg failed: ${this.#stderr.trim()}`))));
    });
    // Surface the failure through close(); an unhandled rejection here would crash the process.
    this.#done.catch(() => undefined);
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.#closed) throw new Error('VideoWriter is closed');
    if (data.length !== this.#size) throw new TypeError(`frame has ${data.length} bytes, expected ${this.#size}`);
    const stdin = this.#child.stdin;
    if (!stdin) throw new Error('ffmpeg stdin unavailable');
    if (!stdin.write(data)) await new Promise<void>((resolve) => stdin.once('drain', resolve));
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#child.stdin?.end();
    }
    await this.#done;
  }
}

/** Writes a single RGBA image (PNG or JPEG by extension). */
export async function writeImage(path: string, frame: RawFrame): Promise<void> {
  const writer = new VideoWriter(path, { width: frame.width, height: frame.height, fps: 1, format: frame.format });
  await writer.write(frame.data);
  await writer.close();
}
