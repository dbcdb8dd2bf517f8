/**
 * Merges the attention model's refined regions into its 468-point mesh, as MediaPipe's
 * landmarks refinement for face_landmark_with_attention does:
 *
 * - lips (80 points) and each eye with its brow (71 points) overwrite x y of the mesh points
 *   listed below; their z stays the mesh's;
 * - each iris (5 points: centre, then 4 on the contour) becomes points 468..472 (left) and
 *   473..477 (right), with z = the mean z of that eye's 16 lid-contour points (the first 16 of
 *   its list).
 *
 * "Left" is MediaPipe's naming: the left eye is the one around point 33, on the image's left for
 * a frontal face (the subject's right eye). The index lists are the ones the model itself uses to
 * place its attention crops (Landmarks2TransformMatrix subset_idxs; a test checks they agree).
 */
import { LANDMARK_COUNT } from '../../../shared/tracking.ts';

export const LIPS_INDICES: readonly number[] = [
  61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409, 78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312,
  311, 310, 415, 76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306, 184, 74, 73, 72, 11, 302, 303, 304, 408, 62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292, 183, 42,
  41, 38, 12, 268, 271, 272, 407,
];

export const LEFT_EYE_INDICES: readonly number[] = [
  33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173, 130, 25, 110, 24, 23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190, 226, 31, 228, 229,
  230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221, 189, 35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121, 128, 245, 156, 70, 63, 105, 66, 107, 55, 193,
];

export const RIGHT_EYE_INDICES: readonly number[] = [
  263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398, 359, 255, 339, 254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414, 446,
  261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444, 443, 442, 441, 413, 265, 353, 276, 283, 282, 295, 372, 340, 346, 347, 348, 349, 350, 357, 465, 383, 300, 293,
  334, 296, 336, 285, 417,
];

/** First index of each iris (centre first): 468 left, 473 right. */
export const LEFT_IRIS_START = LANDMARK_COUNT;
export const RIGHT_IRIS_START = LANDMARK_COUNT + 5;
const EYE_CONTOUR = 16;
const IRIS_POINTS = 5;

function overwriteXy(points: Float32Array | undefined, indices: readonly number[], what: string, out: Float32Array): void {
  if (!points || points.length !== indices.length * 2) throw new TypeError(`attention output ${what} has the wrong size`);
  indices.forEach((idx, i) => {
    out[idx * 3] = points[i * 2] ?? 0;
    out[idx * 3 + 1] = points[i * 2 + 1] ?? 0;
  });
}

function placeIris(points: Float32Array | undefined, start: number, eye: readonly number[], what: string, out: Float32Array): void {
  if (!points || points.length !== IRIS_POINTS * 2) throw new TypeError(`attention output ${what} has the wrong size`);
  let z = 0;
  for (let i = 0; i < EYE_CONTOUR; i++) z += out[(eye[i] ?? 0) * 3 + 2] ?? 0;
  z /= EYE_CONTOUR;
  for (let i = 0; i < IRIS_POINTS; i++) {
    out[(start + i) * 3] = points[i * 2] ?? 0;
    out[(start + i) * 3 + 1] = points[i * 2 + 1] ?? 0;
    out[(start + i) * 3 + 2] = z;
  }
}

/**
 * `outputs` in manifest order: mesh, lips, left eye, right eye, left iris, right iris, face flag.
 * `out` (478 × 3) already holds the mesh in its first 468 points.
 */
export function refineWithAttention(outputs: Float32Array[], out: Float32Array): void {
  if (out.length !== (LANDMARK_COUNT + 2 * IRIS_POINTS) * 3) throw new TypeError('refined landmark buffer must hold 478 points');
  const [, lips, leftEye, rightEye, leftIris, rightIris] = outputs;
  overwriteXy(lips, LIPS_INDICES, 'lips', out);
  overwriteXy(leftEye, LEFT_EYE_INDICES, 'left_eye', out);
  overwriteXy(rightEye, RIGHT_EYE_INDICES, 'right_eye', out);
  placeIris(leftIris, LEFT_IRIS_START, LEFT_EYE_INDICES, 'left_iris', out);
  placeIris(rightIris, RIGHT_IRIS_START, RIGHT_EYE_INDICES, 'right_iris', out);
}
