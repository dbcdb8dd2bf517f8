/**
 * Turns landmark-model outputs into x y z triples in 192×192 crop pixels. The 468-point model
 * gives them directly; the attention model's refined lips, eyes and irises are merged in by
 * attention-refinement.ts (478 points).
 */
import { LANDMARK_COUNT, LANDMARK_COUNT_WITH_IRIS } from '../../../shared/tracking.ts';
import { refineWithAttention } from './attention-refinement.ts';

export function landmarkCountFor(attention: boolean): number {
  return attention ? LANDMARK_COUNT_WITH_IRIS : LANDMARK_COUNT;
}

/** `outputs` are the landmark model's outputs in manifest order. */
export function assembleLandmarks(outputs: Float32Array[], attention: boolean, out: Float32Array): void {
  const mesh = outputs[0];
  if (!mesh || mesh.length !== LANDMARK_COUNT * 3) throw new TypeError('landmark output has the wrong size');
  out.set(mesh);
  if (attention) refineWithAttention(outputs, out);
}

/** Eye contours of the 468-point mesh (outer corner, lids, inner corner) and their iris slots in the 478-point layout. */
const EYE_IRIS: readonly { contour: readonly number[]; iris: number }[] = [
  { contour: [33, 160, 159, 158, 133, 153, 145, 144], iris: 468 },
  { contour: [263, 387, 386, 385, 362, 380, 374, 373], iris: 473 },
];

/**
 * Fills the 10 iris points (468–477) of a 478-point buffer whose first 468 points are set: each
 * iris centre at its eye contour's centroid, looking straight ahead, and its four rim points a
 * fifth of the eye's width around it (right, up, left, down, as the model orders them).
 */
export function placeIrisesAtEyeCentres(p: Float32Array): void {
  if (p.length < LANDMARK_COUNT_WITH_IRIS * 3) throw new TypeError('buffer holds fewer than 478 points');
  for (const { contour, iris } of EYE_IRIS) {
    let x = 0, y = 0, z = 0;
    for (const i of contour) {
      x += p[i * 3]!;
      y += p[i * 3 + 1]!;
      z += p[i * 3 + 2]!;
    }
    x /= contour.length;
    y /= contour.length;
    z /= contour.length;
    const a = contour[0]!, b = contour[4]!;
    const r = 0.2 * Math.hypot(p[a * 3]! - p[b * 3]!, p[a * 3 + 1]! - p[b * 3 + 1]!);
    const pts: [number, number][] = [[x, y], [x + r, y], [x, y - r], [x - r, y], [x, y + r]];
    pts.forEach(([px, py], k) => {
      p[(iris + k) * 3] = px;
      p[(iris + k) * 3 + 1] = py;
      p[(iris + k) * 3 + 2] = z;
    });
  }
}
