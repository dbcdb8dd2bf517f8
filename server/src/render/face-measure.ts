/**
 * Measurements on a landmark set (stride 3, LANDMARK_SLOTS long): inter-ocular
 * distance, lid openness, iris offset, and the target's fixed geometry.
 */
import { ContourFrame } from './contour.ts';
import { smoothstep } from './geometry.ts';
import { LANDMARK_SLOTS } from './mesh.ts';
import {
  EYES, FACE_OVAL, LEFT_EYE, LIPS_LOWER_INNER, LIPS_UPPER_INNER, MESH_POINTS, RIGHT_EYE, STABLE_POINTS, type EyeTopology,
} from './topology.ts';

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
  /** Inner-lip gap at mid-mouth over the inter-ocular distance (mouthGap()). */
  mouthGap: number;
  /**
   * Per landmark (x, y; 468): the displacement that shuts the target's own
   * parted lips (lipClosingField()), applied when the actor rests with a
   * closed mouth.
   */
  lipClose: Float64Array;
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
    mouthGap: mouthGap(points),
    lipClose: lipClosingField(points),
  };
}

/**
 * Mouth opening: the mean inner-lip gap over the five middle lip pairs, over
 * the inter-ocular distance (rotation and scale invariant; averaging five
 * pairs keeps the tracker's per-point noise below small speech movements).
 */
export function mouthGap(p: ArrayLike<number>): number {
  let g = 0;
  for (let k = 3; k < 8; k++) {
    const a = LIPS_UPPER_INNER[k]! * 3, b = LIPS_LOWER_INNER[k]! * 3;
    g += Math.hypot(p[b]! - p[a]!, p[b + 1]! - p[a + 1]!) / 5;
  }
  return g / Math.max(interOcular(p), 1e-6);
}

const lipFrame = new ContourFrame();

/** How far past the inner lips the closing reaches, in inter-ocular distances (about two lip thicknesses). */
const LIP_CLOSE_REACH = 0.22;

/**
 * The displacement field (x, y per landmark, 468) that shuts parted lips: each
 * inner-lip point moves half the gap at its place along the mouth toward the
 * other lip, and the lip bodies and the skin beyond follow with a weight that
 * falls from 1 at the inner contour to 0 at LIP_CLOSE_REACH, so the lips
 * translate rather than stretch. Zero at the corners, where the gap is zero.
 */
export function lipClosingField(p: ArrayLike<number>, out = new Float64Array(MESH_POINTS * 2)): Float64Array {
  out.fill(0);
  const f = lipFrame;
  f.set(p, LIPS_UPPER_INNER, LIPS_LOWER_INNER);
  const reach = LIP_CLOSE_REACH * interOcular(p);
  // v points down the face: (-ay, ax) in image axes.
  const vx = -f.ay, vy = f.ax;
  for (let i = 0; i < MESH_POINTS; i++) {
    const x = p[i * 3]!, y = p[i * 3 + 1]!;
    const u = f.u(x, y);
    if (u <= 0 || u >= f.width) continue;
    const v = f.v(x, y), up = f.at(f.upper, u), lo = f.at(f.lower, u);
    const half = Math.max(0, lo - up) / 2;
    if (half === 0) continue;
    let m: number;
    if (v <= (up + lo) / 2) m = half * (1 - smoothstep(0, reach, up - v));
    else m = -half * (1 - smoothstep(0, reach, v - lo));
    out[i * 2] = m * vx;
    out[i * 2 + 1] = m * vy;
  }
  return out;
}
