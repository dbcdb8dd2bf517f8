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
