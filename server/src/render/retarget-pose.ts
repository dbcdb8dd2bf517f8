/**
 * The head-pose half of retargeting: the target's depth and head centre for a
 * turn (targetRelief), the part of a turned portrait's own rotation the pose
 * rest takes back, the soft angle limits, the rotation about the head centre,
 * and the compensation for what one target's warp shows of a commanded turn
 * (measured at enrollment by pose-gain.ts).
 */
import { clamp, eulerToMat3, fitSimilarity, mat3, mat3ToEuler, mat3Transpose, newSimilarityFit } from './geometry.ts';
import { LANDMARK_SLOTS } from './mesh.ts';
import { EYES, FACE_OVAL, MESH_POINTS, STABLE_POINTS } from './topology.ts';
import type { TargetGeometry } from './face-measure.ts';

/**
 * What the warp of one target shows of a commanded head rotation, as read back by a tracker
 * (pose-gain.ts measures it at enrollment). `matrix` is row-major 3×3 over (yaw, pitch, roll) in
 * the retargeter's signs: shown = matrix · commanded, locally. The identity is a warp that shows
 * every turn as commanded. A 2D warp of one picture shows less than the geometry commands on
 * most faces (hair, ears and background stay), and on a portrait that is itself turned a turn
 * about one axis reads partly as another.
 */
export interface PoseGain {
  matrix: readonly number[];
}

/** The diagonal (each axis' own gain) is compensated within this range, as its nearer end beyond. */
export const POSE_GAIN_RANGE: readonly [number, number] = [0.6, 1.25];
/** Below this |determinant| (after the diagonal is bounded) the cross terms are not trusted: diagonal only. */
const MIN_DET = 0.2;

/** The diagonal of a gain (each axis' own gain): yaw, pitch, roll. */
export function gainDiagonal(g: PoseGain): [number, number, number] {
  return [g.matrix[0]!, g.matrix[4]!, g.matrix[8]!];
}

/**
 * Commanded angles per shown angles (3×3, row-major): the inverse of the gain with its diagonal
 * bounded to POSE_GAIN_RANGE. An axis read with a gain ≤ 0 (a failed reading) is left alone and
 * so are its cross terms; a matrix that is near-singular once bounded falls back to its diagonal.
 */
export function poseCompensation(g: PoseGain | null | undefined): Float64Array {
  const id = Float64Array.of(1, 0, 0, 0, 1, 0, 0, 0, 1);
  if (!g || g.matrix.length !== 9 || !g.matrix.every(Number.isFinite)) return id;
  const m = Float64Array.from(g.matrix);
  for (let a = 0; a < 3; a++) {
    if (m[a * 4]! <= 0) {
      for (let k = 0; k < 3; k++) m[a * 3 + k] = m[k * 3 + a] = 0;
      m[a * 4] = 1;
    } else m[a * 4] = clamp(m[a * 4]!, POSE_GAIN_RANGE[0], POSE_GAIN_RANGE[1]);
  }
  const inv = invert3(m);
  if (inv) return inv;
  return Float64Array.of(1 / m[0]!, 0, 0, 0, 1 / m[4]!, 0, 0, 0, 1 / m[8]!);
}

function invert3(m: Float64Array): Float64Array | null {
  const [a, b, c, d, e, f, g, h, i] = m as unknown as number[] as [number, number, number, number, number, number, number, number, number];
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  if (!(Math.abs(det) >= MIN_DET)) return null;
  const k = 1 / det;
  return Float64Array.of(
    A * k, -(b * i - c * h) * k, (b * f - c * e) * k,
    B * k, (a * i - c * g) * k, -(a * f - c * d) * k,
    C * k, -(a * h - b * g) * k, (a * e - b * d) * k,
  );
}

/**
 * Identity up to `linear`, then eased toward `max` (continuous slope at the knee).
 */
export function limitAngle(x: number, linear: number, max: number): number {
  const a = Math.abs(x);
  if (a <= linear || max <= linear) return a <= max ? x : Math.sign(x) * max;
  const room = max - linear;
  return Math.sign(x) * (linear + room * Math.tanh((a - linear) / room));
}

/**
 * The part of the target's own head rotation (canonical face → target landmarks) the pose rest
 * takes back: each Euler angle clamped to ±limitDeg. Returns its transpose; identity without a
 * canonical face.
 */
export function targetRestRotation(points: Float64Array, frontal: Float64Array | undefined, limitDeg: number): Float64Array {
  const out = mat3();
  if (!frontal) return eulerToMat3(0, 0, 0, out);
  const fit = fitSimilarity(frontal, points, STABLE_POINTS, newSimilarityFit());
  const e = new Float64Array(3);
  mat3ToEuler(fit.rotation, e);
  const lim = (limitDeg * Math.PI) / 180;
  eulerToMat3(clamp(e[0]!, -lim, lim), clamp(e[1]!, -lim, lim), clamp(e[2]!, -lim, lim), out);
  return mat3Transpose(out, mat3());
}

/**
 * Rotates src about the head centre c (x, y from c; depth from `relief`, the face's own depth
 * per landmark, times `depth`), scales, shifts; writes dst. dst's z is the rotated depth
 * (draw order only).
 */
export function transformAbout(
  src: Float64Array, relief: Float64Array, c: Float64Array, R: Float64Array, s: number, tx: number, ty: number, depth: number, dst: Float64Array,
): void {
  const cx = c[0]!, cy = c[1]!, cz = c[2]!;
  for (let i = 0; i < LANDMARK_SLOTS; i++) {
    const x = src[i * 3]! - cx, y = src[i * 3 + 1]! - cy, z = (relief[i]! - cz) * depth;
    dst[i * 3] = cx + tx + s * (R[0]! * x + R[1]! * y + R[2]! * z);
    dst[i * 3 + 1] = cy + ty + s * (R[3]! * x + R[4]! * y + R[5]! * z);
    dst[i * 3 + 2] = cz + (s * (R[6]! * x + R[7]! * y + R[8]! * z)) / depth;
  }
}

/**
 * The target's depth for head rotation: the canonical face fitted to the target's landmarks
 * (its z at each landmark), so a turn shows the parallax of a real head (what any tracker
 * reads as rotation). The tracker's own z on a still is flat after smoothing and read a turn
 * as a half turn. Iris slots take their eye's depth. Without the canonical face: the tracker's z.
 * Returns the depth per landmark and, in `center`, the head centre with the depth's centroid.
 */
export function targetRelief(t: TargetGeometry, frontal: Float64Array | undefined): { relief: Float64Array; center: Float64Array } {
  const relief = new Float64Array(LANDMARK_SLOTS);
  const center = Float64Array.from(t.center);
  if (!frontal) {
    for (let i = 0; i < LANDMARK_SLOTS; i++) relief[i] = t.points[i * 3 + 2]!;
    return { relief, center };
  }
  const fit = fitSimilarity(frontal, t.points, STABLE_POINTS, newSimilarityFit());
  const R = fit.rotation;
  for (let i = 0; i < MESH_POINTS; i++) {
    const x = frontal[i * 3]! - fit.ca[0]!, y = frontal[i * 3 + 1]! - fit.ca[1]!, z = frontal[i * 3 + 2]! - fit.ca[2]!;
    relief[i] = fit.cb[2]! + fit.scale * (R[6]! * x + R[7]! * y + R[8]! * z);
  }
  for (const eye of EYES) {
    let z = 0;
    for (const i of eye.upper) z += relief[i]!;
    z /= eye.upper.length;
    relief[eye.iris] = z;
    for (const i of eye.irisRim) relief[i] = z;
  }
  let cz = 0;
  for (const i of FACE_OVAL) cz += relief[i]!;
  center[2] = cz / FACE_OVAL.length;
  return { relief, center };
}
