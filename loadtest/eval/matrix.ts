/**
 * The fidelity matrix: every driver onto every target, each output frame and
 * each actor frame graded by every grader, measured per pair (measures.ts).
 *
 * The actor is graded on a fixed square crop of its face resized to the
 * output size, so both sides are seen at the same resolution by the same
 * grader. Drivers are tracked once by the pipeline tracker (One Euro filter,
 * as live); outputs are rendered frame by frame as the live pipeline does.
 */
import { basename, extname } from 'node:path';
import type { FaceTrack } from '../../shared/tracking.ts';
import { probeMedia, readFrames } from '../../server/src/media/video-io.ts';
import { cropResize, type CropRect } from '../../server/src/render/image-ops.ts';
import { GeometricRenderer } from '../../server/src/render/renderer.ts';
import type { RetargetParams } from '../../server/src/render/retarget.ts';
import { enrollTarget, faceCrop, type FaceTrackerPort } from '../../server/src/render/target.ts';
import { measurePair, median, type Grade, type PairMeasures } from './measures.ts';

/** Grades one RGBA frame; null when it sees no face. */
export interface FaceGrader {
  readonly name: string;
  grade(rgba: Uint8Array, width: number, height: number, timeMs: number): Promise<Grade | null>;
  /** Forget temporal state (a new clip starts). */
  reset(): void;
}

export interface Clip {
  name: string;
  path: string;
}

export const clipOf = (path: string): Clip => ({ name: basename(path, extname(path)), path });

export interface MatrixOptions {
  drivers: readonly Clip[];
  targets: readonly Clip[];
  size: number;
  /** Driving frames per clip, from the first. */
  maxFrames: number;
  /** Tracks the driving clips (filtered, as in the pipeline) and enrolls targets. */
  tracker: FaceTrackerPort;
  graders: readonly FaceGrader[];
  retarget?: Partial<RetargetParams>;
  /** Enrolled-target cache (null: none). */
  cacheDir?: string | null;
  onPair?: (pair: string, byGrader: ReadonlyMap<string, PairMeasures>) => void;
}

export interface MatrixResult {
  /** grader name → pair ("d3->s1") → measures. */
  byGrader: Map<string, Map<string, PairMeasures>>;
  renderMs: number[];
}

interface DriverRun {
  tracks: FaceTrack[];
  /** Per grader, the actor's grades on its face crop. */
  grades: Map<string, (Grade | null)[]>;
}

function flat(track: FaceTrack): Float64Array | null {
  if (!track.landmarks) return null;
  return Float64Array.from(track.landmarks.flat());
}

/** One square crop for the whole clip: the per-coordinate median of the per-frame face crops. */
function clipCrop(tracks: readonly FaceTrack[], width: number, height: number): CropRect {
  const xs: number[] = [], ys: number[] = [], ss: number[] = [];
  for (const t of tracks) {
    const p = flat(t);
    if (!p) continue;
    const c = faceCrop(p, width, height);
    xs.push(c.x);
    ys.push(c.y);
    ss.push(c.side);
  }
  if (!ss.length) return { x: 0, y: 0, side: Math.min(width, height) };
  return { x: median(xs), y: median(ys), side: median(ss) };
}

export async function runDriver(clip: Clip, opts: MatrixOptions): Promise<DriverRun> {
  const info = await probeMedia(clip.path);
  const tracks: FaceTrack[] = [];
  opts.tracker.reset();
  let n = 0;
  for await (const f of readFrames(clip.path, { format: 'rgba', maxFrames: opts.maxFrames })) {
    tracks.push(await opts.tracker.track(f, (n++ * 1000) / info.fps));
  }
  const crop = clipCrop(tracks, info.width, info.height);
  const grades = new Map<string, (Grade | null)[]>(opts.graders.map((g) => [g.name, []]));
  for (const g of opts.graders) g.reset();
  n = 0;
  for await (const f of readFrames(clip.path, { format: 'rgba', maxFrames: opts.maxFrames })) {
    const c = cropResize(f, crop, opts.size).data;
    for (const g of opts.graders) grades.get(g.name)!.push(await g.grade(c, opts.size, opts.size, (n * 1000) / info.fps));
    n++;
  }
  return { tracks, grades };
}

export async function runMatrix(opts: MatrixOptions): Promise<MatrixResult> {
  const byGrader = new Map(opts.graders.map((g) => [g.name, new Map<string, PairMeasures>()]));
  const renderMs: number[] = [];
  const targets = [];
  for (const t of opts.targets) targets.push({ clip: t, enrolled: await enrollTarget(t.path, opts.tracker, { size: opts.size, cacheDir: opts.cacheDir ?? null }) });
  const renderer = await GeometricRenderer.create({ size: opts.size, retarget: opts.retarget });
  try {
    const out = new Uint8Array(opts.size * opts.size * 4);
    for (const d of opts.drivers) {
      const run = await runDriver(d, opts);
      for (const t of targets) {
        const pair = `${d.name}->${t.clip.name}`;
        await renderer.enroll(t.enrolled);
        for (const g of opts.graders) g.reset();
        const outGrades = new Map<string, (Grade | null)[]>(opts.graders.map((g) => [g.name, []]));
        for (const track of run.tracks) {
          const info = renderer.renderSync(track, out, track.timeMs);
          renderMs.push(info.ms);
          for (const g of opts.graders) outGrades.get(g.name)!.push(await g.grade(out, opts.size, opts.size, track.timeMs));
        }
        const measures = new Map<string, PairMeasures>();
        for (const g of opts.graders) {
          const m = measurePair(run.grades.get(g.name)!, outGrades.get(g.name)!);
          byGrader.get(g.name)!.set(pair, m);
          measures.set(g.name, m);
        }
        opts.onPair?.(pair, measures);
      }
    }
  } finally {
    renderer.close();
  }
  return { byGrader, renderMs };
}
