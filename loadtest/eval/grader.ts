/**
 * An independent face grader: dlib's HOG face detector and 68-point shape predictor
 * (loadtest/eval/dlib68.cpp, built by scripts/build-dlib-grader.sh), run as one child process
 * that serves frames one at a time. It grades rendered output with a landmark model that shares
 * nothing with the project's MediaPipe tracker. Measures on its 68 points: grade-measures.ts.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export * from './grade-measures.ts';

export const DLIB_POINTS = 68;

export class GraderError extends Error {
  readonly code: 'E_GRADER_MISSING' | 'E_GRADER_EXITED' | 'E_GRADER_PROTOCOL' | 'E_GRADER_CLOSED';
  constructor(code: GraderError['code'], message: string) {
    super(message);
    this.name = 'GraderError';
    this.code = code;
  }
}

export interface GraderBuild {
  bin: string;
  model: string;
}

/** Folder the build script writes to: ${XDG_CACHE_HOME:-~/.cache}/reenact/dlib-grader. */
export function graderCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'reenact', 'dlib-grader');
}

/** Reads current.json from the build script; throws an actionable GraderError when anything is missing. */
export function locateGrader(dir: string = graderCacheDir()): GraderBuild {
  const file = join(dir, 'current.json');
  const hint = 'run npm run setup (or bash scripts/build-dlib-grader.sh)';
  if (!existsSync(file)) throw new GraderError('E_GRADER_MISSING', `the dlib grader is not built (${file} is missing): ${hint}`);
  let parsed: Partial<GraderBuild>;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<GraderBuild>;
  } catch (err) {
    throw new GraderError('E_GRADER_MISSING', `${file} is unreadable (${(err as Error).message}): ${hint}`);
  }
  const { bin, model } = parsed;
  if (typeof bin !== 'string' || typeof model !== 'string') throw new GraderError('E_GRADER_MISSING', `${file} lacks bin or model: ${hint}`);
  if (!existsSync(bin)) throw new GraderError('E_GRADER_MISSING', `the dlib grader binary ${bin} is missing: ${hint}`);
  if (!existsSync(model)) throw new GraderError('E_GRADER_MISSING', `the dlib model ${model} is missing: ${hint}`);
  return { bin, model };
}

interface Waiter {
  resolve: (line: string) => void;
  reject: (err: Error) => void;
}

export class DlibGrader {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #exited: Promise<void>;
  #stdout = '';
  #stderr = '';
  #waiter: Waiter | null = null;
  /** The last request in the queue; each request starts when the previous one settles. */
  #tail: Promise<unknown> = Promise.resolve();
  #failure: GraderError | null = null;
  #closing: Promise<void> | null = null;

  private constructor(build: GraderBuild) {
    this.#child = spawn(build.bin, [build.model], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stdout.setEncoding('latin1');
    this.#child.stdout.on('data', (d: string) => this.#onData(d));
    this.#child.stderr.setEncoding('utf8');
    this.#child.stderr.on('data', (d: string) => {
      this.#stderr = (this.#stderr + d).slice(-2000);
    });
    // A write after the child died reports EPIPE here; the exit handler rejects the request.
    this.#child.stdin.on('error', () => undefined);
    this.#exited = new Promise((resolve) => {
      this.#child.on('error', (err) => {
        this.#fail(new GraderError('E_GRADER_EXITED', `the dlib grader could not start (${err.message}): run npm run setup`));
        resolve();
      });
      this.#child.on('close', (code, signal) => {
        const why = signal ? `signal ${signal}` : `status ${code ?? '?'}`;
        const detail = this.#stderr.trim();
        this.#fail(
          this.#closing
            ? new GraderError('E_GRADER_CLOSED', 'the grader is closed')
            : new GraderError('E_GRADER_EXITED', `the dlib grader exited (${why})${detail ? `: ${detail}` : ''}`),
        );
        resolve();
      });
    });
  }

  /**
   * Starts the grader (binary and model from the build script's current.json) and waits until it
   * has loaded the model and answered a blank frame, so a broken build fails here.
   */
  static async create(opts: { dir?: string } = {}): Promise<DlibGrader> {
    const grader = new DlibGrader(locateGrader(opts.dir));
    try {
      const blank = await grader.grade(new Uint8Array(16 * 16 * 3), 16, 16);
      if (blank !== null) throw new GraderError('E_GRADER_PROTOCOL', 'the dlib grader found a face in a blank frame');
    } catch (err) {
      await grader.close();
      throw err;
    }
    return grader;
  }

  /** Whether the child process is still serving. */
  get alive(): boolean {
    return this.#failure === null && this.#closing === null;
  }

  /**
   * The 68 points (x0, y0, …, x67, y67, image pixels) of the largest face, or null when there is
   * none. `pixels` is packed RGBA (4 bytes a pixel) or RGB (3 bytes a pixel), row-major, told apart
   * by its length. Requests queue: one frame is in the child at a time.
   */
  grade(pixels: Uint8Array, width: number, height: number): Promise<Float64Array | null> {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 8192 || height > 8192) {
      return Promise.reject(new RangeError(`bad frame size ${width}x${height}`));
    }
    if (this.#closing) return Promise.reject(new GraderError('E_GRADER_CLOSED', 'the grader is closed'));
    const n = width * height;
    let rgb: Uint8Array;
    if (pixels.length === n * 3) rgb = pixels;
    else if (pixels.length === n * 4) rgb = rgbaToRgb(pixels, n);
    else return Promise.reject(new TypeError(`${pixels.length} bytes is neither RGB nor RGBA for ${width}x${height}`));
    const header = Buffer.from(`${width} ${height}\n`, 'latin1');
    const run = this.#tail.then(
      () => this.#request(header, rgb),
      () => this.#request(header, rgb),
    );
    this.#tail = run.catch(() => undefined);
    return run.then(parseAnswer);
  }

  /**
   * Ends the child once the frames queued so far are answered, and waits for it; frames offered
   * after this reject with E_GRADER_CLOSED. Safe to call more than once.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#tail;
      if (this.#child.exitCode === null && this.#child.signalCode === null) {
        this.#child.stdin.end();
        const timer = setTimeout(() => this.#child.kill('SIGKILL'), 3000);
        await this.#exited;
        clearTimeout(timer);
      }
      await this.#exited;
    })();
    return this.#closing;
  }

  #request(header: Buffer, rgb: Uint8Array): Promise<string> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<string>((resolve, reject) => {
      this.#waiter = { resolve, reject };
      this.#child.stdin.write(header);
      this.#child.stdin.write(rgb);
    });
  }

  #onData(chunk: string): void {
    this.#stdout += chunk;
    let nl: number;
    while ((nl = this.#stdout.indexOf('\n')) >= 0) {
      const line = this.#stdout.slice(0, nl);
      this.#stdout = this.#stdout.slice(nl + 1);
      const w = this.#waiter;
      this.#waiter = null;
      if (w) w.resolve(line);
      else this.#fail(new GraderError('E_GRADER_PROTOCOL', `unrequested output from the dlib grader: ${line.slice(0, 80)}`));
    }
  }

  #fail(err: GraderError): void {
    this.#failure ??= err;
    const w = this.#waiter;
    this.#waiter = null;
    w?.reject(this.#failure);
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
  }
}

function rgbaToRgb(rgba: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n * 3);
  for (let i = 0, j = 0; i < n * 4; i += 4, j += 3) {
    out[j] = rgba[i]!;
    out[j + 1] = rgba[i + 1]!;
    out[j + 2] = rgba[i + 2]!;
  }
  return out;
}

function parseAnswer(line: string): Float64Array | null {
  const parts = line.trim().split(' ');
  if (parts[0] === '0' && parts.length === 1) return null;
  if (parts[0] !== '1' || parts.length !== 1 + DLIB_POINTS * 2) {
    throw new GraderError('E_GRADER_PROTOCOL', `unexpected answer from the dlib grader: ${line.slice(0, 80)}`);
  }
  const out = new Float64Array(DLIB_POINTS * 2);
  for (let i = 0; i < out.length; i++) {
    const v = Number(parts[i + 1]);
    if (!Number.isFinite(v)) throw new GraderError('E_GRADER_PROTOCOL', `non-numeric coordinate in the dlib grader's answer: ${parts[i + 1]}`);
    out[i] = v;
  }
  return out;
}
