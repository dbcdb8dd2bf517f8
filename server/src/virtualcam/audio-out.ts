/**
 * Where the virtual camera's sound goes: a WAV file beside its y4m, or a
 * virtual microphone that video-call apps can pick: a PulseAudio/PipeWire
 * sink (its monitor, or a remapped source, is the microphone) through
 * `pacat`, or an ALSA loopback device through `aplay`.
 *
 * Input is 16-bit PCM in 10 ms chunks as the room's synthesized audio
 * arrives (already lip-synced by the receiver). Writes never wait: a
 * destination that falls more than a second behind has chunks refused and
 * counted, so a stuck player cannot grow memory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { open, type FileHandle } from 'node:fs/promises';

export type AudioTarget = { kind: 'wav'; path: string } | { kind: 'pulse'; device: string } | { kind: 'alsa'; device: string };

export interface PcmFormat {
  sampleRate: number;
  channels: number;
}

export interface AudioOutput {
  readonly description: string;
  /** Writes interleaved 16-bit samples; false when refused (backed up or failed). */
  write(samples: Int16Array): boolean;
  close(): Promise<void>;
  readonly failed: Promise<string>;
}

/** Parses `pulse:<sink>` or `alsa:<device>`. */
export function parseAudioDevice(spec: string): AudioTarget {
  const m = /^(pulse|alsa):(.+)$/.exec(spec);
  if (!m) throw new TypeError(`--audio-device must be pulse:<sink> or alsa:<device>, got ${JSON.stringify(spec)}`);
  return { kind: m[1] as 'pulse' | 'alsa', device: m[2] as string };
}

export function openAudioOutput(target: AudioTarget, fmt: PcmFormat): AudioOutput {
  return target.kind === 'wav' ? new WavOutput(target.path, fmt) : new PlayerOutput(target, fmt);
}

function wavHeader(fmt: PcmFormat, dataBytes: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVE', 8);
  h.write('fmt ', 12);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(fmt.channels, 22);
  h.writeUInt32LE(fmt.sampleRate, 24);
  h.writeUInt32LE(fmt.sampleRate * fmt.channels * 2, 28);
  h.writeUInt16LE(fmt.channels * 2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/** A WAV file: the header is rewritten with the real sizes on close. */
export class WavOutput implements AudioOutput {
  readonly description: string;
  readonly failed: Promise<string>;
  #fail!: (m: string) => void;
  readonly #fmt: PcmFormat;
  readonly #file: Promise<FileHandle | undefined>;
  #chain: Promise<void> = Promise.resolve();
  #bytes = 0;
  #pending = 0;
  #closing: Promise<void> | undefined;

  constructor(path: string, fmt: PcmFormat) {
    this.description = `wav file ${path}`;
    this.#fmt = fmt;
    this.failed = new Promise((r) => (this.#fail = r));
    this.#file = open(path, 'w').then(
      async (f) => {
        await f.write(wavHeader(fmt, 0), 0, 44, 0);
        return f;
      },
      (e: Error) => {
        this.#fail(`${this.description}: ${e.message}`);
        return undefined;
      },
    );
  }

  write(samples: Int16Array): boolean {
    if (this.#closing || this.#pending > this.#fmt.sampleRate * this.#fmt.channels * 2) return false;
    const buf = Buffer.from(samples.buffer.slice(samples.byteOffset, samples.byteOffset + samples.byteLength));
    const at = 44 + this.#bytes;
    this.#bytes += buf.length;
    this.#pending += buf.length;
    this.#chain = this.#chain.then(async () => {
      const f = await this.#file;
      if (f) await f.write(buf, 0, buf.length, at).catch((e: Error) => this.#fail(`${this.description}: ${e.message}`));
      this.#pending -= buf.length;
    });
    return true;
  }

  close(): Promise<void> {
    this.#closing ??= this.#chain.then(async () => {
      const f = await this.#file;
      if (!f) return;
      await f.write(wavHeader(this.#fmt, this.#bytes), 0, 44, 0);
      await f.close();
    });
    return this.#closing;
  }
}

/** Raw PCM into pacat (PulseAudio/PipeWire) or aplay (ALSA), which plays it into the virtual device. */
class PlayerOutput implements AudioOutput {
  readonly description: string;
  readonly failed: Promise<string>;
  #fail!: (m: string) => void;
  readonly #child: ChildProcess;
  readonly #maxQueued: number;
  #closing: Promise<void> | undefined;

  constructor(target: Exclude<AudioTarget, { kind: 'wav' }>, fmt: PcmFormat) {
    this.failed = new Promise((r) => (this.#fail = r));
    this.#maxQueued = fmt.sampleRate * fmt.channels * 2;
    const [cmd, args, pkg] =
      target.kind === 'pulse'
        ? ['pacat', ['--playback', '--raw', '--format=s16le', `--rate=${fmt.sampleRate}`, `--channels=${fmt.channels}`, `--device=${target.device}`, '--latency-msec=40'], 'pulseaudio-utils']
        : ['aplay', ['-q', '-t', 'raw', '-f', 'S16_LE', '-r', String(fmt.sampleRate), '-c', String(fmt.channels), '-D', target.device], 'alsa-utils'];
    this.description = `${target.kind} device ${target.device} (${cmd})`;
    this.#child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    this.#child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 2048) stderr += d.toString();
    });
    this.#child.stdin?.on('error', () => undefined);
    this.#child.on('error', (e) => this.#fail(`${cmd} could not start (${e.message}); install Debian's ${pkg}`));
    this.#child.on('close', (code) => {
      if (!this.#closing) this.#fail(`${cmd} exited (${String(code)}): ${stderr.trim()}`);
    });
  }

  write(samples: Int16Array): boolean {
    const s = this.#child.stdin;
    if (this.#closing || !s || s.destroyed || s.writableLength > this.#maxQueued) return false;
    s.write(Buffer.from(samples.buffer.slice(samples.byteOffset, samples.byteOffset + samples.byteLength)));
    return true;
  }

  close(): Promise<void> {
    this.#closing ??= new Promise((resolve) => {
      if (this.#child.exitCode !== null || !this.#child.stdin) return resolve();
      this.#child.once('close', () => resolve());
      this.#child.stdin.end();
      setTimeout(() => this.#child.kill('SIGTERM'), 2000).unref();
    });
    return this.#closing;
  }
}
