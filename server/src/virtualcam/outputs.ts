/**
 * Where the virtual camera's frames go: a y4m file or pipe (written here, no
 * encoder involved), or a v4l2loopback device through Debian's ffmpeg
 * (`-f v4l2`). Writes never wait: when the destination has not taken the
 * previous frames yet (more than `maxQueuedFrames` buffered), the frame is
 * refused and counted by the caller, so a slow consumer cannot grow memory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { i420Bytes } from './i420.ts';

export interface FrameOutput {
  readonly description: string;
  /** Writes one I420 frame; false when refused because the destination is backed up. */
  write(frame: Uint8Array): boolean;
  /** Flushes and closes; rejects when the destination failed. Idempotent. */
  close(): Promise<void>;
  /** Resolves with an error message if the destination fails while open. */
  readonly failed: Promise<string>;
}

export interface OutputFormat {
  width: number;
  height: number;
  fps: number;
  maxQueuedFrames?: number;
}

abstract class StreamOutput implements FrameOutput {
  abstract readonly description: string;
  readonly failed: Promise<string>;
  protected failWith!: (msg: string) => void;
  readonly #frameBytes: number;
  readonly #maxQueued: number;
  #closing: Promise<void> | undefined;

  constructor(fmt: OutputFormat) {
    this.#frameBytes = i420Bytes(fmt.width, fmt.height);
    this.#maxQueued = fmt.maxQueuedFrames ?? 4;
    this.failed = new Promise((resolve) => (this.failWith = resolve));
  }

  protected abstract get stream(): Writable;
  protected abstract prefix(): Uint8Array | undefined;
  protected abstract finish(): Promise<void>;

  write(frame: Uint8Array): boolean {
    if (this.#closing) return false;
    if (frame.length !== this.#frameBytes) throw new TypeError(`frame has ${frame.length} bytes, expected ${this.#frameBytes}`);
    const s = this.stream;
    if (s.destroyed || s.writableLength > this.#maxQueued * this.#frameBytes) return false;
    const p = this.prefix();
    if (p) s.write(p);
    // The caller reuses its buffer: hand the stream a copy.
    s.write(Buffer.from(frame));
    return true;
  }

  close(): Promise<void> {
    this.#closing ??= this.finish();
    return this.#closing;
  }
}

/** YUV4MPEG2 to a file, or to stdout for `-`. */
export class Y4mOutput extends StreamOutput {
  readonly description: string;
  readonly #stream: Writable;
  readonly #toStdout: boolean;
  static readonly #frameTag = new TextEncoder().encode('FRAME\n');

  constructor(path: string, fmt: OutputFormat) {
    super(fmt);
    this.#toStdout = path === '-';
    this.description = this.#toStdout ? 'y4m on stdout' : `y4m file ${path}`;
    this.#stream = this.#toStdout ? process.stdout : createWriteStream(path);
    this.#stream.on('error', (e: Error) => this.failWith(`${this.description}: ${e.message}`));
    this.#stream.write(`YUV4MPEG2 W${fmt.width} H${fmt.height} F${fmt.fps}:1 Ip A1:1 C420jpeg XYSCSS=420JPEG\n`);
  }

  protected get stream(): Writable {
    return this.#stream;
  }

  protected prefix(): Uint8Array {
    return Y4mOutput.#frameTag;
  }

  protected finish(): Promise<void> {
    if (this.#toStdout) return new Promise((resolve) => (this.#stream.writableLength === 0 ? resolve() : this.#stream.once('drain', () => resolve())));
    return new Promise((resolve, reject) => {
      this.#stream.once('error', reject);
      this.#stream.end(() => resolve());
    });
  }
}

/** Raw I420 into ffmpeg, which writes it to a v4l2 (v4l2loopback) device. */
export class V4l2Output extends StreamOutput {
  readonly description: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<number>;
  #stderr = '';

  constructor(device: string, fmt: OutputFormat) {
    super(fmt);
    this.description = `v4l2 device ${device}`;
    const args = ['-hide_banner', '-loglevel', 'error', '-nostdin', '-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-s', `${fmt.width}x${fmt.height}`, '-r', String(fmt.fps)];
    args.push('-i', 'pipe:0', '-f', 'v4l2', '-pix_fmt', 'yuv420p', device);
    this.#child = spawn('ffmpeg', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.#child.stderr?.on('data', (d: Buffer) => {
      if (this.#stderr.length < 4096) this.#stderr += d.toString();
    });
    this.#child.stdin?.on('error', () => undefined);
    this.#exited = new Promise((resolve) => {
      this.#child.on('error', (e) => {
        this.failWith(`ffmpeg could not start (${e.message}); install Debian's ffmpeg`);
        resolve(-1);
      });
      this.#child.on('close', (code) => {
        if (code !== 0) this.failWith(this.#explain(device, code));
        resolve(code ?? -1);
      });
    });
  }

  /** ffmpeg's most telling line, plus what to do about the usual causes. */
  #explain(device: string, code: number | null): string {
    const lines = this.#stderr.trim().split('\n');
    const line = lines.find((l) => /Unable to open|No such file|Permission denied|Device or resource busy|Invalid argument/i.test(l)) ?? lines[0] ?? `exit ${code}`;
    let hint = '';
    if (/No such file|Unable to open/i.test(line)) hint = ' Is v4l2loopback loaded (sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=Reenact exclusive_caps=1)? See docs/virtual-camera.md.';
    else if (/Permission denied/i.test(line)) hint = ` Add your user to the "video" group, or check the permissions of ${device}.`;
    else if (/busy/i.test(line)) hint = ' Another program is writing to this device.';
    return `ffmpeg could not write to ${device}: ${line.replace(/^\[[^\]]*\]\s*/, '')}.${hint}`;
  }

  protected get stream(): Writable {
    const stdin = this.#child.stdin;
    if (!stdin) throw new Error('ffmpeg stdin unavailable');
    return stdin;
  }

  protected prefix(): undefined {
    return undefined;
  }

  protected async finish(): Promise<void> {
    this.#child.stdin?.end();
    const t = setTimeout(() => this.#child.kill('SIGKILL'), 3000);
    await this.#exited;
    clearTimeout(t);
    // A failing ffmpeg was already reported through `failed`.
  }
}
