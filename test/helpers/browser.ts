/**
 * Real Chromium for the browser journeys: Debian's /usr/bin/chromium driven by
 * playwright-core, with a fake camera fed from a y4m made from a fixture, a
 * fresh profile per launch, and no network beyond 127.0.0.1.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { RawFrame } from '../../server/src/media/video-io.ts';
import { fixture } from './server.ts';
import { writeStamp } from '../../shared/stamp.ts';

export const CHROMIUM = process.env['REENACT_CHROMIUM'] ?? '/usr/bin/chromium';
export const artifactsDir = new URL('../artifacts/', import.meta.url).pathname;

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err.slice(-500)}`))));
  });
}

export interface FakeCameraOptions {
  /** Fixture path relative to test/fixtures. Default driving/d9.mp4. */
  source?: string;
  /** Start offset and length in seconds. d9 from 8 s has head turns and some speech. */
  startS?: number;
  seconds?: number;
  /** Write a frame-id stamp (shared/stamp.ts, ids 1..n, repeating as Chromium loops) into each frame. */
  stamp?: boolean;
  /** Frame rate of the y4m. Default 30. */
  fps?: number;
}

/**
 * A 640x480 y4m (30 fps unless asked) for --use-file-for-fake-video-capture (Chromium loops
 * it). The clip is letterboxed, not stretched. Cached in test/artifacts.
 */
export async function makeFakeCamera(opts: FakeCameraOptions = {}): Promise<string> {
  const source = opts.source ?? 'driving/d9.mp4';
  const startS = opts.startS ?? 8;
  const seconds = opts.seconds ?? 5;
  await mkdir(artifactsDir, { recursive: true });
  const fps = opts.fps ?? 30;
  const out = join(artifactsDir, `fakecam-${source.replace(/\W+/g, '_')}-${startS}-${seconds}${fps === 30 ? '' : `-${fps}fps`}${opts.stamp ? '-stamped' : ''}.y4m`);
  const frameBytes = 640 * 480 * 1.5;
  if (existsSync(out) && statSync(out).size >= seconds * fps * frameBytes) return out;
  await run('ffmpeg', [
    '-v', 'error', '-y', '-ss', String(startS), '-t', String(seconds), '-i', fixture(source), '-an',
    '-vf', `fps=${fps},scale=-2:480,pad=640:480:(ow-iw)/2:0`, '-pix_fmt', 'yuv420p', '-f', 'yuv4mpegpipe', out,
  ]);
  if (opts.stamp) await stampY4m(out, 640, 480);
  return out;
}

/** Writes stamp ids 1, 2, … into the luma plane of each frame of a 4:2:0 y4m, in place. */
async function stampY4m(path: string, width: number, height: number): Promise<void> {
  const buf = await readFile(path);
  const frameBytes = (width * height * 3) / 2;
  let at = buf.indexOf(0x0a) + 1;
  for (let id = 1; at < buf.length; id++) {
    const headerEnd = buf.indexOf(0x0a, at);
    if (headerEnd < 0 || buf.toString('ascii', at, at + 5) !== 'FRAME') throw new Error(`${path}: no FRAME header at byte ${at}`);
    const y = buf.subarray(headerEnd + 1, headerEnd + 1 + width * height);
    writeStamp(y, width, id);
    at = headerEnd + 1 + frameBytes;
  }
  await writeFile(path, buf);
}

export interface LaunchOptions {
  /** y4m for the fake camera. */
  fakeVideo?: string;
  /** Leave out --use-fake-ui-for-media-stream: camera prompts are then denied. */
  denyCamera?: boolean;
  /** WAV for the fake microphone (Chromium loops it). */
  fakeAudio?: string;
  /** Let pages play sound without a click (the autoplay policy otherwise holds it back). */
  autoplay?: boolean;
  viewport?: { width: number; height: number };
}

export interface TestBrowser {
  context: BrowserContext;
  newPage(): Promise<Page>;
  /**
   * A page in a window of its own. Chromium composites only the front tab of
   * a window, so video frame callbacks run at full rate in several pages at
   * once only when each has its own window.
   */
  newWindow(): Promise<Page>;
  close(): Promise<void>;
}

/** Launches Chromium headless (new mode) with a fresh --user-data-dir; close() removes it. */
export async function launchBrowser(opts: LaunchOptions = {}): Promise<TestBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'reenact-chromium-'));
  const args = [
    '--headless=new',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
    '--disable-sync',
    '--disable-quic',
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
    // Keep rendering (and requestVideoFrameCallback) going in tabs that are not in front.
    '--disable-background-timer-throttling',
    '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows',
    '--use-fake-device-for-media-stream',
  ];
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  if (!opts.denyCamera) args.push('--use-fake-ui-for-media-stream');
  if (opts.fakeVideo) args.push(`--use-file-for-fake-video-capture=${opts.fakeVideo}`);
  if (opts.fakeAudio) args.push(`--use-file-for-fake-audio-capture=${opts.fakeAudio}`);
  if (opts.autoplay) args.push('--autoplay-policy=no-user-gesture-required');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    // Playwright's own headless switch picks the old shell; pass --headless=new ourselves.
    headless: false,
    args,
    viewport: opts.viewport ?? { width: 1280, height: 800 },
  });
  // tsx compiles test files with esbuild's keepNames, which wraps named inner functions of
  // page.evaluate() callbacks in a __name() helper that pages do not have.
  await context.addInitScript('globalThis.__name ??= (fn) => fn;');
  // Content-security-policy violations, for tests to assert there are none (cspViolations()).
  await context.addInitScript(
    "globalThis.__csp = []; document.addEventListener('securitypolicyviolation', (e) => globalThis.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));",
  );
  const newWindow = async (): Promise<Page> => {
    const anchor = context.pages()[0] ?? (await context.newPage());
    const cdp = await context.newCDPSession(anchor);
    const page = context.waitForEvent('page');
    await cdp.send('Target.createTarget', { url: 'about:blank', newWindow: true });
    await cdp.detach();
    return page;
  };
  return {
    context,
    newPage: () => context.newPage(),
    newWindow,
    close: async () => {
      await context.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** What the page's content security policy blocked so far. */
export function cspViolations(page: Page): Promise<string[]> {
  return page.evaluate(() => (globalThis as unknown as { __csp?: string[] }).__csp ?? []);
}

/**
 * A small copy of a screenshot for the docs: 960 px wide, 256-colour PNG
 * (a few hundred KB at most), through ffmpeg.
 */
export async function docScreenshot(src: string, dest: string): Promise<void> {
  await mkdir(new URL('.', `file://${dest}`).pathname, { recursive: true });
  await run('ffmpeg', ['-v', 'error', '-y', '-i', src, '-vf', 'scale=960:-1:flags=lanczos,split[a][b];[a]palettegen=max_colors=256[p];[b][p]paletteuse=dither=sierra2_4a', dest]);
}

/** currentTime and decoded size of a <video>. */
export async function videoState(page: Page, selector: string): Promise<{ currentTime: number; width: number; height: number }> {
  return page.$eval(selector, (v) => {
    const video = v as HTMLVideoElement;
    return { currentTime: video.currentTime, width: video.videoWidth, height: video.videoHeight };
  });
}

/** Resolves when the video's currentTime has advanced by `bySeconds` and it has a size. */
export async function waitForPlayback(page: Page, selector: string, bySeconds = 1, timeoutMs = 20_000): Promise<{ currentTime: number; width: number; height: number }> {
  const start = await videoState(page, selector);
  try {
    await page.waitForFunction(
      ({ sel, t0, by }) => {
        const v = document.querySelector<HTMLVideoElement>(sel);
        return !!v && v.videoWidth > 0 && v.currentTime >= t0 + by;
      },
      { sel: selector, t0: start.currentTime, by: bySeconds },
      { timeout: timeoutMs, polling: 100 },
    );
  } catch (err) {
    // Say what the page was doing, so a failure in CI can be told apart: never connected,
    // connected but never got the video, or got it and it stalled.
    const seen = await page
      .evaluate((sel) => {
        const v = document.querySelector<HTMLVideoElement>(sel);
        const notice = document.getElementById('notice-text')?.textContent?.trim().slice(0, 200);
        return {
          url: location.href,
          state: document.body.dataset['state'],
          notice,
          srcObject: !!v?.srcObject,
          readyState: v?.readyState,
          paused: v?.paused,
          currentTime: v?.currentTime,
          size: v ? `${v.videoWidth}x${v.videoHeight}` : undefined,
        };
      }, selector)
      .catch((e: unknown) => ({ unreadable: String(e) }));
    throw new Error(`${selector} did not play ${bySeconds} s within ${timeoutMs} ms (from currentTime ${start.currentTime}); page: ${JSON.stringify(seen)}`, { cause: err });
  }
  return videoState(page, selector);
}

/**
 * Grabs `count` frames from each of the given <video> elements, every
 * `intervalMs` (all selectors at the same instant), each drawn at its own
 * aspect ratio scaled so its longer side is at most `maxSide`.
 */
export async function grabFrames(page: Page, selectors: string[], opts: { count: number; intervalMs: number; maxSide: number }): Promise<RawFrame[][]> {
  const res = await page.evaluate(
    async ({ selectors, count, intervalMs, maxSide }) => {
      const toBase64 = (bytes: Uint8ClampedArray): string => {
        let s = '';
        for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        return btoa(s);
      };
      const grabs = selectors.map(() => [] as { w: number; h: number; b64: string }[]);
      const canvas = document.createElement('canvas');
      const ctx = canvas.getContext('2d', { willReadFrequently: true });
      if (!ctx) throw new Error('no 2d context');
      for (let n = 0; n < count; n++) {
        const t = performance.now();
        selectors.forEach((sel, i) => {
          const v = document.querySelector<HTMLVideoElement>(sel);
          if (!v || !v.videoWidth) throw new Error(`${sel} has no video`);
          // Always scale the longer side to maxSide: the output's size changes when the session
          // degrades (render size ¾), and frames must stay comparable.
          const k = maxSide / Math.max(v.videoWidth, v.videoHeight);
          const w = Math.round(v.videoWidth * k);
          const h = Math.round(v.videoHeight * k);
          canvas.width = w;
          canvas.height = h;
          ctx.drawImage(v, 0, 0, w, h);
          grabs[i]?.push({ w, h, b64: toBase64(ctx.getImageData(0, 0, w, h).data) });
        });
        await new Promise((r) => setTimeout(r, Math.max(0, t + intervalMs - performance.now())));
      }
      return grabs;
    },
    { selectors, ...opts },
  );
  return res.map((list) => list.map((g): RawFrame => ({ width: g.w, height: g.h, format: 'rgba', data: new Uint8Array(Buffer.from(g.b64, 'base64')) })));
}

/** Mean absolute difference of two RGBA frames over RGB, 0..255. */
export function meanAbsDiff(a: RawFrame, b: RawFrame): number {
  if (a.data.length !== b.data.length) throw new TypeError('frames differ in size');
  let sum = 0;
  let n = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    for (let c = 0; c < 3; c++) sum += Math.abs((a.data[i + c] ?? 0) - (b.data[i + c] ?? 0));
    n += 3;
  }
  return sum / n;
}

/** Pearson correlation of two equal-length series; NaN when either is constant. */
export function correlation(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  if (n < 3) return NaN;
  const ma = a.slice(0, n).reduce((s, x) => s + x, 0) / n;
  const mb = b.slice(0, n).reduce((s, x) => s + x, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = (a[i] ?? 0) - ma;
    const db = (b[i] ?? 0) - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** Best correlation of `later` against `earlier` over lags 0..maxLag samples (later lags behind). */
export function laggedCorrelation(earlier: number[], later: number[], maxLag: number): { r: number; lag: number } {
  let best = { r: -Infinity, lag: 0 };
  for (let lag = 0; lag <= maxLag; lag++) {
    const r = correlation(earlier.slice(0, earlier.length - lag), later.slice(lag));
    if (r > best.r) best = { r, lag };
  }
  return best;
}

export function std(values: number[]): number {
  const m = values.reduce((s, x) => s + x, 0) / values.length;
  return Math.sqrt(values.reduce((s, x) => s + (x - m) ** 2, 0) / values.length);
}

/**
 * A script (an IIFE) that gives a page `globalThis.__stamp`: the same stamp
 * reader the Node viewers use (shared/stamp.ts). Inject it with
 * addInitScript or page.evaluate (pages forbid inline script tags) before
 * startRecording().
 */
export async function stampReaderScript(): Promise<string> {
  const { build } = await import('esbuild');
  const out = await build({
    stdin: { contents: "import { readStamp, stampHeight } from './shared/stamp.ts'; globalThis.__stamp = { readStamp, stampHeight };", resolveDir: new URL('../..', import.meta.url).pathname, loader: 'ts' },
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
  });
  return out.outputFiles[0]?.text ?? '';
}

export interface RecordOptions {
  /** The <video> element's id. Default 'output'. */
  id?: string;
  /** Where the page keeps the records (a global's name). Default '__shown'. */
  key?: string;
  /** Which time to record: when the frame is shown (default), or when it was captured (a camera preview). */
  clock?: 'display' | 'capture';
}

/**
 * Starts recording [stamp id, time as epoch ms] for every presented frame of a
 * <video>, reading the stamp with the page's `__stamp` (stampReaderScript()).
 * The time is the frame's expected display time, or with clock 'capture' its
 * capture time (falling back to display time where the browser gives none).
 */
export async function startRecording(page: Page, opts: RecordOptions = {}): Promise<void> {
  await page.evaluate(({ id, key, clock }) => {
    const g = globalThis as unknown as {
      __stamp: { readStamp: (y: Uint8Array, w: number) => number | null; stampHeight: (w: number) => number };
    } & Record<string, [number, number][]>;
    g[key] = [];
    const video = document.getElementById(id) as HTMLVideoElement;
    const canvas = document.createElement('canvas');
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error('no 2d context');
    const onFrame = (_now: number, meta: VideoFrameCallbackMetadata): void => {
      const w = video.videoWidth;
      const rows = g.__stamp.stampHeight(w);
      if (canvas.width !== w || canvas.height !== rows) {
        canvas.width = w;
        canvas.height = rows;
      }
      ctx.drawImage(video, 0, 0, w, rows, 0, 0, w, rows);
      const rgba = ctx.getImageData(0, 0, w, rows).data;
      const y = new Uint8Array(w * rows);
      for (let i = 0; i < y.length; i++) y[i] = 16 + (65.738 * rgba[i * 4]! + 129.057 * rgba[i * 4 + 1]! + 25.064 * rgba[i * 4 + 2]!) / 256;
      const stamp = g.__stamp.readStamp(y, w);
      const t = clock === 'capture' ? (meta.captureTime ?? meta.expectedDisplayTime) : meta.expectedDisplayTime;
      if (stamp !== null) g[key]!.push([stamp, performance.timeOrigin + t]);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }, { id: opts.id ?? 'output', key: opts.key ?? '__shown', clock: opts.clock ?? 'display' });
}

/** Takes what startRecording() has collected so far ([stamp id, epoch ms]) and clears it. */
export async function recordedStamps(page: Page, key = '__shown'): Promise<[number, number][]> {
  return page.evaluate((k) => {
    const g = globalThis as unknown as Record<string, [number, number][]>;
    const out = g[k] ?? [];
    g[k] = [];
    return out;
  }, key);
}

/**
 * Camera-to-screen per output frame: each shown stamp is matched with the
 * latest capture of that stamp before it (the fake camera loops, so ids
 * repeat). Returns the latencies in ms, sorted.
 */
export function matchStamps(captured: [number, number][], shown: [number, number][]): number[] {
  const byId = new Map<number, number[]>();
  for (const [id, at] of captured) (byId.get(id) ?? byId.set(id, []).get(id)!).push(at);
  const out: number[] = [];
  const seen = new Set<string>();
  for (const [id, at] of shown) {
    const times = byId.get(id);
    if (!times) continue;
    let best = -Infinity;
    for (const t of times) if (t <= at && t > best) best = t;
    if (!Number.isFinite(best) || at - best > 2000) continue;
    const k = `${id}@${best}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(at - best);
  }
  return out.sort((a, b) => a - b);
}
