/**
 * What one target's warp shows of a head rotation, measured at enrollment in
 * closed loop: the target's neutral is rendered turned by known angles on
 * each axis, the enrollment tracker reads each picture's pose back, and the
 * slope of read-back angle on commanded angle is the target's gain on that
 * axis. The retargeter then commands angle / gain, so the output shows the
 * actor's angle whatever the face.
 *
 * Why it is needed: the geometry turns the landmarks one to one, but a 2D warp
 * of one picture keeps the hair, ears and background where they were and the
 * silhouette anchored, so what a viewer (or any tracker) reads as the turn
 * depends on the face: on this project's targets from 0.76 to 1.07 of the
 * command in yaw (docs/rendering.md). The gain is a property of the target and
 * the renderer, not of any actor, and is measured on every target the same way.
 */
import type { FaceTrack } from '../../../shared/tracking.ts';
import { rootLogger, type Logger } from '../logger.ts';
import { GeometricRenderer } from './renderer.ts';
import type { PoseGain } from './retarget-pose.ts';
import type { EnrolledTarget, FaceTrackerPort } from './target.ts';

type Axis = 'yaw' | 'pitch' | 'roll';
const AXES: readonly Axis[] = ['yaw', 'pitch', 'roll'];

/** Commanded angles per axis, degrees: well inside the linear range, wide enough to read. */
const POSE_PROBE_DEG: Readonly<Record<Axis, number>> = Object.freeze({ yaw: 20, pitch: 12, roll: 15 });

/**
 * The tracker's pose sign relative to the retargeter's rotation, per axis (the tracker
 * reports yaw and pitch mirrored from eulerToMat3's convention).
 */
const TRACKER_SIGN: Readonly<Record<Axis, number>> = Object.freeze({ yaw: -1, pitch: -1, roll: 1 });

const STEPS = [-1, -0.5, 0, 0.5, 1];

export interface PoseGainReading {
  /** The gain read (the retargeter bounds what it compensates); identity where a column could not be read. */
  gain: PoseGain;
  /** Pictures the tracker found a face in, of those rendered. */
  found: number;
  rendered: number;
}

/** Reads one rendered picture's pose: two passes (the second re-crops around the first's landmarks). */
async function readPose(tracker: FaceTrackerPort, rgba: Uint8Array, size: number): Promise<FaceTrack['pose'] | null> {
  tracker.reset();
  const frame = { width: size, height: size, format: 'rgba' as const, data: rgba };
  let pose: FaceTrack['pose'] | null = null;
  for (let pass = 0; pass < 2; pass++) {
    const t = await tracker.track(frame, pass * 33);
    if (!t.landmarks || !t.pose) return null;
    pose = t.pose;
  }
  return pose;
}

function slope(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  if (n < 4) return Number.NaN;
  const mx = x.reduce((a, b) => a + b, 0) / n, my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
  }
  return sxx > 0 ? sxy / sxx : Number.NaN;
}

/**
 * Renders the target turned about each axis in turn and reads every axis back: column c of the
 * gain is the slope of each read axis on commanded axis c. Leaves the tracker reset. 15 renders
 * and 30 tracker calls (about 0.3 s at 256² on one core).
 * `compensated`: turned as a drive turns it, through the target's own poseGain (what is left is
 * the residual, ideally the identity).
 */
export async function measurePoseGain(
  target: EnrolledTarget, tracker: FaceTrackerPort, opts: { compensated?: boolean; log?: Logger } = {},
): Promise<PoseGainReading> {
  const log = opts.log ?? rootLogger.child('pose-gain');
  const renderer = await GeometricRenderer.create({ size: target.size });
  const out = new Uint8Array(target.size * target.size * 4);
  const matrix = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  let found = 0, rendered = 0;
  try {
    renderer.enrollSync(opts.compensated ? target : { ...target, poseGain: null });
    for (let c = 0; c < 3; c++) {
      const axis = AXES[c]!;
      const cmd: number[] = [];
      const read: number[][] = [[], [], []];
      for (const k of STEPS) {
        const a = k * POSE_PROBE_DEG[axis];
        renderer.renderPoseSync(c === 0 ? a : 0, c === 1 ? a : 0, c === 2 ? a : 0, out, opts.compensated);
        rendered++;
        const pose = await readPose(tracker, out, target.size);
        if (!pose) continue;
        found++;
        cmd.push(a);
        AXES.forEach((r, i) => read[i]!.push(pose[r] * TRACKER_SIGN[r]));
      }
      const col = read.map((y) => slope(cmd, y));
      if (col.every(Number.isFinite) && col[c]! > 0) for (let r = 0; r < 3; r++) matrix[r * 3 + c] = col[r]!;
      else log.warn('pose gain not measurable on this axis; no compensation', { axis, column: col, key: target.key });
    }
  } finally {
    tracker.reset();
    renderer.close();
  }
  return { gain: { matrix }, found, rendered };
}
