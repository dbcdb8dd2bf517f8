/**
 * Measurements on a landmark set (stride 3, LANDMARK_SLOTS long): inter-ocular
 * distance, lid openness, iris offset, and the target's fixed geometry.
 */
import { LANDMARK_SLOTS } from './mesh.ts';
import { EYES, FACE_OVAL, LEFT_EYE, RIGHT_EYE, STABLE_POINTS, type EyeTopology } from './topology.ts';

export interface TargetGeometry {
  /** Target neutral landmarks in output pixels (stride 3, LANDMARK_SLOTS). */
  points: Float64Array;
  /** Head rotation centre (x, y, z). */
  center: Float64Array;
  iod: number;
  /** Roll of the eye line, radians. */
  roll: number;
  /** Per eye (right, left): lid gap at mid-eye and corner-to-corner width, pixels. */
  eyeGap: Float64Array;
  eyeWidth: Float64Array;
  hasIris: boolean;
}

function centroid(p: ArrayLike<number>, ids: readonly number[], o: number): number {
  let s = 0;
  for (const i of ids) s += p[i * 3 + o]!;
  return s / ids.length;
}

export function eyeCenter(p: ArrayLike<number>, eye: EyeTopology, out: Float64Array, o = 0): void {
  out[o] = (centroid(p, eye.upper, 0) + centroid(p, eye.lower, 0)) / 2;
  out[o + 1] = (centroid(p, eye.upper, 1) + centroid(p, eye.lower, 1)) / 2;
}

const tmp = new Float64Array(4);

export function interOcular(p: ArrayLike<number>): number {
  eyeCenter(p, RIGHT_EYE, tmp, 0);
  eyeCenter(p, LEFT_EYE, tmp, 2);
  return Math.hypot(tmp[2]! - tmp[0]!, tmp[3]! - tmp[1]!);
}

export function eyeWidth(p: ArrayLike<number>, eye: EyeTopology): number {
  return Math.hypot(p[eye.outer * 3]! - p[eye.inner * 3]!, p[eye.outer * 3 + 1]! - p[eye.inner * 3 + 1]!);
}

/** Mean lid gap over the middle pairs, in pixels. */
export function eyeGap(p: ArrayLike<number>, eye: EyeTopology): number {
  let s = 0, n = 0;
  for (let k = 2; k <= eye.upper.length - 3; k++) {
    const a = eye.upper[k]!, b = eye.lower[k]!;
    s += Math.hypot(p[a * 3]! - p[b * 3]!, p[a * 3 + 1]! - p[b * 3 + 1]!);
    n++;
  }
  return s / n;
}

/** Lid gap over eye width. */
export function eyeOpenness(p: ArrayLike<number>, eye: EyeTopology): number {
  return eyeGap(p, eye) / Math.max(eyeWidth(p, eye), 1e-6);
}

/** Iris centre relative to the corners' midpoint, over eye width: writes x, y at out[o]. */
export function irisOffset(p: ArrayLike<number>, eye: EyeTopology, out: Float64Array, o: number): void {
  const w = Math.max(eyeWidth(p, eye), 1e-6);
  const mx = (p[eye.outer * 3]! + p[eye.inner * 3]!) / 2, my = (p[eye.outer * 3 + 1]! + p[eye.inner * 3 + 1]!) / 2;
  out[o] = (p[eye.iris * 3]! - mx) / w;
  out[o + 1] = (p[eye.iris * 3 + 1]! - my) / w;
}

/** For 468-point landmarks: put the 10 iris slots at the eye centres (radius ~ a fifth of the eye width). */
export function placeMissingIris(p: Float64Array): void {
  for (const eye of EYES) {
    eyeCenter(p, eye, tmp, 0);
    const r = eyeWidth(p, eye) * 0.2;
    const z = centroid(p, eye.upper, 2);
    const set = (i: number, x: number, y: number) => {
      p[i * 3] = x;
      p[i * 3 + 1] = y;
      p[i * 3 + 2] = z;
    };
    set(eye.iris, tmp[0]!, tmp[1]!);
    const off = [[r, 0], [0, -r], [-r, 0], [0, r]] as const;
    eye.irisRim.forEach((i, k) => set(i, tmp[0]! + off[k]![0], tmp[1]! + off[k]![1]));
  }
}

/** The target's fixed geometry from its neutral landmarks (already in output pixels). */
export function targetGeometry(points: Float64Array, hasIris: boolean): TargetGeometry {
  if (points.length !== LANDMARK_SLOTS * 3) throw new TypeError(`expected ${LANDMARK_SLOTS * 3} coordinates`);
  eyeCenter(points, RIGHT_EYE, tmp, 0);
  eyeCenter(points, LEFT_EYE, tmp, 2);
  const roll = Math.atan2(tmp[3]! - tmp[1]!, tmp[2]! - tmp[0]!);
  const center = new Float64Array([centroid(points, STABLE_POINTS, 0), centroid(points, STABLE_POINTS, 1), centroid(points, FACE_OVAL, 2)]);
  return {
    points,
    center,
    iod: interOcular(points),
    roll,
    eyeGap: Float64Array.from(EYES, (e) => eyeGap(points, e)),
    eyeWidth: Float64Array.from(EYES, (e) => eyeWidth(points, e)),
    hasIris,
  };
}
