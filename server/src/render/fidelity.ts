/**
 * Fidelity measurement with the project's own tracker: reenact a driving clip
 * onto a target, track the rendered frames, and correlate the driving and the
 * output mouth opening and eye openness. Used by the tests, the benchmark and
 * docs/rendering.md.
 */
import type { FaceTrack } from '../../../shared/tracking.ts';
import { decodeImage, probeMedia, readFrames, writeImage, type RawFrame } from '../media/video-io.ts';
import { GeometricRenderer } from './renderer.ts';
import { cropResize, type CropRect } from './image-ops.ts';
import { reenactVideo, type ReenactOptions } from './offline.ts';
import type { EnrolledTarget, FaceTrackerPort } from './target.ts';
import { eyeOpenness, irisOffset, mouthGap } from './face-measure.ts';
import { EYES } from './topology.ts';

export interface FidelityResult {
  frames: number;
  /** Output frames where the tracker found a face, 0..1. */
  faceFound: number;
  /** Pearson correlation, driving vs output. */
  mouthCorr: number;
  eyeCorr: number;
  /** Horizontal gaze (iris across the eye), when both sides have 478-point tracks; NaN otherwise. */
  gazeCorr: number;
  /** Per-frame series (driving, output), NaN where no face. */
  mouthDriving: number[];
  mouthOutput: number[];
  eyeDriving: number[];
  eyeOutput: number[];
  renderMsP50: number;
}

export interface FidelityOptions extends Omit<ReenactOptions, 'onFrame' | 'out' | 'onEnrolled'> {
  /** Tracks the rendered frames (a separate instance from the driving tracker). */
  outputTracker: FaceTrackerPort;
  /** Also write the output here. */
  out?: string;
  /** Called with each output frame (reused buffer) and both tracks, e.g. to save a strip. */
  onFrame?: (index: number, output: Uint8Array, driving: FaceTrack, rendered: FaceTrack) => void;
}

export function pearson(a: readonly number[], b: readonly number[]): number {
  const idx: number[] = [];
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i]) && Number.isFinite(b[i])) idx.push(i);
  if (idx.length < 3) return Number.NaN;
  let ma = 0, mb = 0;
  for (const i of idx) {
    ma += a[i]!;
    mb += b[i]!;
  }
  ma /= idx.length;
  mb /= idx.length;
  let sab = 0, saa = 0, sbb = 0;
  for (const i of idx) {
    const x = a[i]! - ma, y = b[i]! - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : Number.NaN;
}

const flat = new Float64Array(468 * 3);

function load(t: FaceTrack): boolean {
  if (!t.landmarks || t.landmarks.length < 468) return false;
  for (let i = 0; i < 468; i++) flat.set(t.landmarks[i]!, i * 3);
  return true;
}

/** Mouth opening of a track: mouthGap() (inner-lip gap over the inter-ocular distance), NaN without a face. */
export function mouthOpening(t: FaceTrack): number {
  return load(t) ? mouthGap(flat) : Number.NaN;
}

/** Eye openness: lid gap over eye width, mean of both eyes. */
export function eyeOpening(t: FaceTrack): number {
  if (!load(t)) return Number.NaN;
  return (eyeOpenness(flat, EYES[0]!) + eyeOpenness(flat, EYES[1]!)) / 2;
}

/**
 * Horizontal gaze: the iris centre's offset from the eye's centre along the
 * corner-to-corner line, in eye widths, mean of both eyes (NaN without irises).
 */
export function gazeOffset(t: FaceTrack): number {
  if (!t.landmarks || t.landmarks.length < 478) return Number.NaN;
  const pts = new Float64Array(478 * 3);
  for (let i = 0; i < 478; i++) pts.set(t.landmarks[i]!, i * 3);
  const o = new Float64Array(4);
  EYES.forEach((eye, e) => irisOffset(pts, eye, o, e * 2));
  return (o[0]! + o[2]!) / 2;
}

const eyeOf = eyeOpening;
const mouthOf = mouthOpening;

export async function measureFidelity(opts: FidelityOptions): Promise<FidelityResult> {
  const md: number[] = [], mo: number[] = [], ed: number[] = [], eo: number[] = [];
  let found = 0;
  opts.outputTracker.reset();
  const r = await reenactVideo({
    ...opts,
    onFrame: async (index, output, _driving, track, info) => {
      const rendered = await opts.outputTracker.track({ width: opts.size, height: opts.size, format: 'rgba', data: output }, (index * 1000) / 30);
      if (rendered.landmarks) found++;
      md.push(mouthOf(track));
      mo.push(mouthOf(rendered));
      ed.push(eyeOf(track));
      eo.push(eyeOf(rendered));
      void info;
      opts.onFrame?.(index, output, track, rendered);
    },
  });
  return {
    frames: r.frames, faceFound: found / Math.max(r.frames, 1), mouthCorr: pearson(md, mo), eyeCorr: pearson(ed, eo), gazeCorr: Number.NaN,
    mouthDriving: md, mouthOutput: mo, eyeDriving: ed, eyeOutput: eo, renderMsP50: r.renderMsP50,
  };
}

/** PSNR of two RGBA images over RGB, dB. */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  let se = 0, n = 0;
  for (let i = 0; i < a.length; i += 4) {
    for (let c = 0; c < 3; c++) {
      const d = a[i + c]! - b[i + c]!;
      se += d * d;
    }
    n += 3;
  }
  const mse = se / n;
  return mse === 0 ? 99 : 10 * Math.log10((255 * 255) / mse);
}

function luma(a: Uint8Array, n: number): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = 0.299 * a[i * 4]! + 0.587 * a[i * 4 + 1]! + 0.114 * a[i * 4 + 2]!;
  return y;
}

function boxBlur(src: Float64Array, w: number, h: number, r: number): Float64Array {
  const tmp = new Float64Array(w * h), out = new Float64Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0, n = 0;
      for (let k = Math.max(0, x - r); k <= Math.min(w - 1, x + r); k++, n++) s += src[y * w + k]!;
      tmp[y * w + x] = s / n;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0, n = 0;
      for (let k = Math.max(0, y - r); k <= Math.min(h - 1, y + r); k++, n++) s += tmp[k * w + x]!;
      out[y * w + x] = s / n;
    }
  }
  return out;
}

/** Mean SSIM on luma with 7×7 box windows (Wang et al. 2004 constants). */
export function ssim(a: Uint8Array, b: Uint8Array, w: number, h: number): number {
  const n = w * h;
  const x = luma(a, n), y = luma(b, n);
  const xx = new Float64Array(n), yy = new Float64Array(n), xy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    xx[i] = x[i]! * x[i]!;
    yy[i] = y[i]! * y[i]!;
    xy[i] = x[i]! * y[i]!;
  }
  const mx = boxBlur(x, w, h, 3), my = boxBlur(y, w, h, 3);
  const sxx = boxBlur(xx, w, h, 3), syy = boxBlur(yy, w, h, 3), sxy = boxBlur(xy, w, h, 3);
  const c1 = (0.01 * 255) ** 2, c2 = (0.03 * 255) ** 2;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const vx = sxx[i]! - mx[i]! * mx[i]!, vy = syy[i]! - my[i]! * my[i]!, cxy = sxy[i]! - mx[i]! * my[i]!;
    s += ((2 * mx[i]! * my[i]! + c1) * (2 * cxy + c2)) / ((mx[i]! * mx[i]! + my[i]! * my[i]! + c1) * (vx + vy + c2));
  }
  return s / n;
}

export interface SelfReenactResult {
  frames: number;
  /** Output vs the real frame, mean over frames. */
  psnr: number;
  ssim: number;
  /** Baseline: the first frame held still vs the real frame (what doing nothing scores). */
  staticPsnr: number;
  staticSsim: number;
  /** Per-frame PSNR of the output and of the static baseline. */
  psnrSeries: number[];
  staticPsnrSeries: number[];
}

/**
 * Self-reenactment: the video's first frame is the target (written to
 * firstFramePath), the video itself drives it; every output frame is compared
 * with the real frame cropped the same way.
 */
export async function measureSelfReenactment(opts: Omit<ReenactOptions, 'target' | 'onFrame' | 'out' | 'onEnrolled'> & { firstFramePath: string }): Promise<SelfReenactResult> {
  const first = await decodeImage(opts.driving);
  await writeImage(opts.firstFramePath, first);
  let sp = 0, ss = 0, bp = 0, bs = 0, n = 0;
  let still: Uint8Array | null = null;
  let cropOf: CropRect | null = null;
  const ps: number[] = [], qs: number[] = [];
  const size = opts.size;
  await reenactVideo({
    ...opts,
    target: opts.firstFramePath,
    cacheDir: null,
    onFrame: (_i, output, driving) => {
      if (!cropOf) return;
      const real = cropResize(driving, cropOf, size).data;
      still ??= Uint8Array.from(real);
      const p = psnr(output, real), q = psnr(still, real);
      ps.push(p);
      qs.push(q);
      sp += p;
      ss += ssim(output, real, size, size);
      bp += q;
      bs += ssim(still, real, size, size);
      n++;
    },
    onEnrolled: (t) => {
      cropOf = t.crop;
    },
  });
  return { frames: n, psnr: sp / n, ssim: ss / n, staticPsnr: bp / n, staticSsim: bs / n, psnrSeries: ps, staticPsnrSeries: qs };
}

/**
 * Tracks every `stride`-th frame of a clip (up to maxFrames kept); returns the
 * tracks, the kept frames whose track index is in `keep`, and the kept fps.
 */
export async function trackClip(
  path: string, tracker: FaceTrackerPort, stride = 1, maxFrames = Infinity, keep: ReadonlySet<number> = new Set(),
): Promise<{ tracks: FaceTrack[]; frames: Map<number, RawFrame>; fps: number }> {
  const info = await probeMedia(path);
  const tracks: FaceTrack[] = [];
  const frames = new Map<number, RawFrame>();
  tracker.reset();
  let n = 0;
  for await (const f of readFrames(path, { format: 'rgba' })) {
    if (n % stride === 0 && tracks.length < maxFrames) {
      if (keep.has(tracks.length)) frames.set(tracks.length, f);
      tracks.push(await tracker.track(f, (n * 1000) / info.fps));
    }
    n++;
  }
  return { tracks, frames, fps: info.fps / stride };
}

/**
 * Fidelity from pre-tracked driving frames: render each track onto the
 * target, track the output with `outputTracker`, correlate.
 */
export async function fidelityFromTracks(
  tracks: readonly FaceTrack[],
  target: EnrolledTarget,
  outputTracker: FaceTrackerPort,
  onFrame?: (index: number, output: Uint8Array, rendered: FaceTrack) => void,
): Promise<FidelityResult> {
  const renderer = await GeometricRenderer.create({ size: target.size });
  const md: number[] = [], mo: number[] = [], ed: number[] = [], eo: number[] = [], gd: number[] = [], go: number[] = [];
  const times: number[] = [];
  let found = 0;
  try {
    await renderer.enroll(target);
    const out = new Uint8Array(target.size * target.size * 4);
    outputTracker.reset();
    for (const [i, track] of tracks.entries()) {
      const info = renderer.renderSync(track, out, track.timeMs);
      times.push(info.ms);
      const rendered = await outputTracker.track({ width: target.size, height: target.size, format: 'rgba', data: out }, track.timeMs);
      if (rendered.landmarks) found++;
      md.push(mouthOf(track));
      mo.push(mouthOf(rendered));
      ed.push(eyeOf(track));
      eo.push(eyeOf(rendered));
      gd.push(gazeOffset(track));
      go.push(gazeOffset(rendered));
      onFrame?.(i, out, rendered);
    }
  } finally {
    renderer.close();
  }
  times.sort((a, b) => a - b);
  return {
    frames: tracks.length, faceFound: found / Math.max(tracks.length, 1), mouthCorr: pearson(md, mo), eyeCorr: pearson(ed, eo), gazeCorr: pearson(gd, go),
    mouthDriving: md, mouthOutput: mo, eyeDriving: ed, eyeOutput: eo, renderMsP50: times[times.length >> 1] ?? 0,
  };
}
