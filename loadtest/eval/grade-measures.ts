/**
 * Measures on dlib's 68 points (x0, y0, …, x67, y67, image pixels; the iBUG 300-W layout: jaw
 * 0–16, brows 17–26, nose 27–35, the subject's right eye 36–41 (image left), left eye 42–47,
 * outer lips 48–59, inner lips 60–67), made comparable with the tracker's measures in
 * server/src/render/face-measure.ts and the pose in server/src/tracking/pose.ts.
 */
import type { CanonicalMesh } from '../../models/manifest.ts';
import type { HeadPose } from '../../shared/tracking.ts';
import { loadCanonicalMesh, poseFromFit } from '../../server/src/tracking/pose.ts';

const X = (p: ArrayLike<number>, i: number): number => p[2 * i]!;
const Y = (p: ArrayLike<number>, i: number): number => p[2 * i + 1]!;

function mean2(p: ArrayLike<number>, from: number, to: number, out: Float64Array, o: number): void {
  let sx = 0, sy = 0;
  for (let i = from; i <= to; i++) {
    sx += X(p, i);
    sy += Y(p, i);
  }
  out[o] = sx / (to - from + 1);
  out[o + 1] = sy / (to - from + 1);
}

const eyes = new Float64Array(4);

/** Distance between the eye centres (means of 36–41 and 42–47), pixels. */
export function interOcular68(p: ArrayLike<number>): number {
  mean2(p, 36, 41, eyes, 0);
  mean2(p, 42, 47, eyes, 2);
  return Math.hypot(eyes[2]! - eyes[0]!, eyes[3]! - eyes[1]!);
}

/**
 * Mouth opening: the mean inner-lip gap of the pairs (61, 67), (62, 66), (63, 65), measured along
 * the face's vertical axis (perpendicular to the eye line, so lips sliding sideways do not count),
 * clamped at 0, over the inter-ocular distance. Comparable in scale with face-measure's mouthGap().
 */
export function mouthGap68(p: ArrayLike<number>): number {
  const iod = interOcular68(p);
  if (!(iod > 1e-6)) return 0;
  // Eye line from the image-left eye to the image-right one; "down the face" is it turned +90°.
  const ex = (eyes[2]! - eyes[0]!) / iod, ey = (eyes[3]! - eyes[1]!) / iod;
  const vx = -ey, vy = ex;
  let g = 0;
  for (const [upper, lower] of [[61, 67], [62, 66], [63, 65]] as const) {
    g += Math.max(0, (X(p, lower) - X(p, upper)) * vx + (Y(p, lower) - Y(p, upper)) * vy);
  }
  return g / 3 / iod;
}

const dist = (p: ArrayLike<number>, a: number, b: number): number => Math.hypot(X(p, a) - X(p, b), Y(p, a) - Y(p, b));

/**
 * Eye openness: the mean lid gap of the two middle lid pairs over the corner-to-corner width.
 * Eye 0 is the subject's right eye (image left, points 36–41), eye 1 the left (42–47).
 */
export function eyeOpen68(p: ArrayLike<number>, eye: 0 | 1): number {
  const b = eye === 0 ? 36 : 42;
  const gap = (dist(p, b + 1, b + 5) + dist(p, b + 2, b + 4)) / 2;
  return gap / Math.max(dist(p, b, b + 3), 1e-6);
}

/**
 * The MediaPipe face-mesh vertex that stands for each of dlib's 68 points. Chosen from where the
 * two trackers put their points on the fixtures (d3, d9, d12, d19, t4; 1140 frames with
 * |yaw| ≤ 12°): the mesh vertex at the least mean distance from each dlib point, in inter-ocular
 * distances (0.02–0.06 for eyes, nose, lips and brows, 0.06–0.13 on the jaw), with left and right
 * kept mirror images of each other and the jaw kept on the mesh's face-oval contour.
 */
export const DLIB68_TO_MESH: readonly number[] = [
  // jaw 0–16: the face-oval contour from the image-left ear (127) through the chin (152) to 356
  127, 234, 93, 58, 172, 136, 149, 176, 152, 400, 378, 365, 397, 288, 323, 454, 356,
  // brows 17–21 (subject's right, outer → inner), 22–26 (left, inner → outer)
  70, 63, 105, 66, 55, 285, 296, 334, 293, 300,
  // nose bridge 27–30 (top → tip), lower nose 31–35 (image left → right, 33 under the tip)
  168, 197, 5, 4, 75, 97, 2, 326, 305,
  // right eye 36–41: outer corner, upper lid ×2, inner corner, lower lid ×2
  33, 160, 158, 155, 153, 144,
  // left eye 42–47: inner corner, upper lid ×2, outer corner, lower lid ×2
  382, 385, 387, 263, 373, 380,
  // outer lips 48–59: right corner, upper lip to the left corner, lower lip back
  61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
  // inner lips 60–67: right corner, upper, left corner, lower
  78, 82, 13, 312, 308, 317, 14, 87,
];

/**
 * Points that fit the head pose: the upper jaw (0–3, 13–16: the lower jaw drops as the mouth
 * opens), the brows' inner halves, the nose, the eyes and the mouth corners. Chosen over the
 * variants (no jaw, whole jaw, all 60 outer points) by agreement with the tracker's pose on the
 * five driving and talking fixtures: this set gave the highest pitch correlation and the smallest
 * offsets, with yaw and roll as good as the best.
 */
export const POSE_POINTS_68: readonly number[] = [
  0, 1, 2, 3, 13, 14, 15, 16,
  19, 20, 21, 22, 23, 24,
  27, 28, 29, 30, 31, 32, 33, 34, 35,
  36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
  48, 54,
];

/** The 68 points' 3D positions (x, y, z; canonical units, y up, z towards the viewer) on the mesh. */
export function reference68(mesh: CanonicalMesh): Float64Array {
  const out = new Float64Array(68 * 3);
  DLIB68_TO_MESH.forEach((v, i) => {
    for (let k = 0; k < 3; k++) out[3 * i + k] = mesh.vertices[3 * v + k]!;
  });
  return out;
}

let defaultRef: Float64Array | null = null;

/** reference68() of the project's canonical mesh (models/out), loaded once. */
export function defaultReference68(): Float64Array {
  defaultRef ??= reference68(loadCanonicalMesh());
  return defaultRef;
}

function inverse3(m: Float64Array): Float64Array | null {
  const [a, b, c, d, e, f, g, h, i] = m as unknown as [number, number, number, number, number, number, number, number, number];
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  if (Math.abs(det) < 1e-12) return null;
  const s = 1 / det;
  return new Float64Array([
    A * s, -(b * i - c * h) * s, (b * f - c * e) * s,
    B * s, (a * i - c * g) * s, -(a * f - c * d) * s,
    C * s, -(a * h - b * g) * s, (a * e - b * d) * s,
  ]);
}

function normalize3(v: Float64Array, o: number): number {
  const n = Math.hypot(v[o]!, v[o + 1]!, v[o + 2]!);
  if (n > 0) for (let k = 0; k < 3; k++) v[o + k]! /= n;
  return n;
}

/**
 * Head pose from the 68 points by a scaled-orthographic fit to the reference shape: the 2×3
 * affine projection (image y flipped up) by least squares over POSE_POINTS_68, its rows made
 * orthonormal (symmetrically) and the third row their cross product. Angles, signs and the
 * translation follow shared/tracking.ts HeadPose, as the tracker's pose (poseFromFit).
 */
export function headPose68(p: ArrayLike<number>, ref: Float64Array = defaultReference68(), points: readonly number[] = POSE_POINTS_68): HeadPose {
  const n = points.length;
  let mx = 0, my = 0, mz = 0, qx = 0, qy = 0;
  for (const i of points) {
    mx += ref[3 * i]!;
    my += ref[3 * i + 1]!;
    mz += ref[3 * i + 2]!;
    qx += X(p, i);
    qy -= Y(p, i);
  }
  mx /= n; my /= n; mz /= n; qx /= n; qy /= n;
  // XX = Σ x xᵀ (3×3), QX = Σ q xᵀ (2×3), over centred points.
  const xx = new Float64Array(9), qxm = new Float64Array(6);
  for (const i of points) {
    const x: readonly number[] = [ref[3 * i]! - mx, ref[3 * i + 1]! - my, ref[3 * i + 2]! - mz];
    const q: readonly number[] = [X(p, i) - qx, -Y(p, i) - qy];
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) xx[3 * r + c]! += x[r]! * x[c]!;
    for (let r = 0; r < 2; r++) for (let c = 0; c < 3; c++) qxm[3 * r + c]! += q[r]! * x[c]!;
  }
  const inv = inverse3(xx);
  const rot = new Float64Array(9);
  if (!inv) return { yaw: Number.NaN, pitch: Number.NaN, roll: Number.NaN, tx: Number.NaN, ty: Number.NaN, scale: Number.NaN };
  // A = QX · XX⁻¹, rows into rot[0..2] and rot[3..5].
  for (let r = 0; r < 2; r++) {
    for (let c = 0; c < 3; c++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += qxm[3 * r + k]! * inv[3 * k + c]!;
      rot[3 * r + c] = s;
    }
  }
  const s1 = normalize3(rot, 0), s2 = normalize3(rot, 3);
  // Nearest orthonormal pair: rotate both rows symmetrically about their bisector.
  const sum = new Float64Array(3), diff = new Float64Array(3);
  for (let k = 0; k < 3; k++) {
    sum[k] = rot[k]! + rot[3 + k]!;
    diff[k] = rot[k]! - rot[3 + k]!;
  }
  normalize3(sum, 0);
  normalize3(diff, 0);
  for (let k = 0; k < 3; k++) {
    rot[k] = (sum[k]! + diff[k]!) / Math.SQRT2;
    rot[3 + k] = (sum[k]! - diff[k]!) / Math.SQRT2;
  }
  rot[6] = rot[1]! * rot[5]! - rot[2]! * rot[4]!;
  rot[7] = rot[2]! * rot[3]! - rot[0]! * rot[5]!;
  rot[8] = rot[0]! * rot[4]! - rot[1]! * rot[3]!;
  const scale = (s1 + s2) / 2;
  const t = new Float64Array([
    qx - scale * (rot[0]! * mx + rot[1]! * my + rot[2]! * mz),
    qy - scale * (rot[3]! * mx + rot[4]! * my + rot[5]! * mz),
    0,
  ]);
  return poseFromFit({ rotation: rot, scale, t });
}
