/**
 * Converters for the MediaPipe custom operators of face_landmark_with_attention.tflite
 * (Landmarks2TransformMatrix, TransformTensorBilinear, TransformLandmarks; Apache-2.0 sources in
 * mediapipe/util/tflite/operations/). Not implemented yet: they map onto MatMul/Gather for the
 * landmark transforms and GridSample for the bilinear crop, and the model also needs
 * STRIDED_SLICE. Until then the build lists the attention model under `skipped` in
 * models/out/manifest.json and the tracker uses the 468-point model.
 */
import type { CustomOpConverter } from './convert.ts';

const notYet =
  (name: string): CustomOpConverter =>
  () => {
    throw new TypeError(`MediaPipe custom op ${name} is not converted yet (docs/tracking.md, "Attention model")`);
  };

export const attentionCustomOps: Record<string, CustomOpConverter> = {
  Landmarks2TransformMatrix: notYet('Landmarks2TransformMatrix'),
  TransformTensorBilinear: notYet('TransformTensorBilinear'),
  TransformLandmarks: notYet('TransformLandmarks'),
};
