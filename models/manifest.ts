/**
 * What `npm run build:models` produces and what the loaders expect. Checked in; the generated
 * `models/out/manifest.json` adds provenance (package, version, sha256, licence) per file.
 *
 * Every ONNX model takes one float32 NCHW image tensor named `input`.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export type ModelName = 'faceDetector' | 'faceLandmarks' | 'faceLandmarksAttention';

export interface TensorSpec {
  name: string;
  shape: number[];
}

export interface ModelSpec {
  file: string;
  /** The npm package and the path inside it (or packed-assets entry) that the model comes from. */
  source: { package: string; path: string };
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Pixel values are mapped linearly from 0..255 to this range. */
  inputRange: [number, number];
  /** Optional models may be missing from a build (their conversion can be skipped). */
  optional: boolean;
}

export const MODELS: Readonly<Record<ModelName, ModelSpec>> = Object.freeze({
  faceDetector: {
    file: 'face_detection_short_range.onnx',
    source: { package: '@mediapipe/face_detection', path: 'face_detection_short_range.tflite' },
    inputs: [{ name: 'input', shape: [1, 3, 128, 128] }],
    outputs: [
      { name: 'regressors', shape: [1, 896, 16] },
      { name: 'classificators', shape: [1, 896, 1] },
    ],
    inputRange: [-1, 1],
    optional: false,
  },
  faceLandmarks: {
    file: 'face_landmark.onnx',
    source: { package: '@mediapipe/face_mesh', path: 'face_mesh_solution_packed_assets.data#face_landmark.tflite' },
    inputs: [{ name: 'input', shape: [1, 3, 192, 192] }],
    outputs: [
      { name: 'landmarks', shape: [1, 1, 1, 1404] },
      { name: 'face_flag', shape: [1, 1, 1, 1] },
    ],
    inputRange: [0, 1],
    optional: false,
  },
  faceLandmarksAttention: {
    file: 'face_landmark_with_attention.onnx',
    source: { package: '@mediapipe/face_mesh', path: 'face_mesh_solution_packed_assets.data#face_landmark_with_attention.tflite' },
    inputs: [{ name: 'input', shape: [1, 3, 192, 192] }],
    outputs: [
      { name: 'landmarks', shape: [1, 1, 1, 1404] },
      { name: 'lips', shape: [1, 1, 1, 160] },
      { name: 'left_eye', shape: [1, 1, 1, 142] },
      { name: 'right_eye', shape: [1, 1, 1, 142] },
      { name: 'left_iris', shape: [1, 1, 1, 10] },
      { name: 'right_iris', shape: [1, 1, 1, 10] },
      { name: 'face_flag', shape: [1, 1, 1, 1] },
    ],
    inputRange: [0, 1],
    optional: false,
  },
});

/** Canonical face mesh and Procrustes basis extracted from geometry_pipeline_metadata_landmarks.binarypb. */
export const CANONICAL_MESH_FILE = 'canonical_face_mesh.json';
export const MANIFEST_FILE = 'manifest.json';

export interface CanonicalMesh {
  /** 468 × [x, y, z], canonical units (≈ cm), y up, z towards the viewer. */
  vertices: number[];
  /** 468 × [u, v] texture coordinates. */
  uv: number[];
  /** 898 × 3 vertex indices. */
  triangles: number[];
  /** Landmarks used for the Procrustes pose fit, with their weights. */
  procrustes: { landmarks: number[]; weights: number[] };
}

export interface BuiltFile {
  file: string;
  bytes: number;
  sha256: string;
  source: { package: string; version: string; license: string; path: string; sha256: string };
}

export interface BuildManifest {
  buildKey: string;
  createdAt: string;
  files: BuiltFile[];
  /** Models whose conversion was skipped, with the reason. */
  skipped: Record<string, string>;
}

export const DEFAULT_MODELS_DIR = fileURLToPath(new URL('./out/', import.meta.url));

export class ModelFileError extends Error {
  readonly code = 'E_MODEL_MISSING';
  constructor(message: string) {
    super(message);
    this.name = 'ModelFileError';
  }
}

/** Absolute path of a built model; throws an actionable ModelFileError when it is missing. */
export function modelPath(name: ModelName, dir: string = DEFAULT_MODELS_DIR): string {
  const spec = MODELS[name];
  const path = join(dir, spec.file);
  if (!existsSync(path)) throw new ModelFileError(`model ${name} (${path}) is missing: run npm run build:models`);
  return path;
}

export function canonicalMeshPath(dir: string = DEFAULT_MODELS_DIR): string {
  const path = join(dir, CANONICAL_MESH_FILE);
  if (!existsSync(path)) throw new ModelFileError(`canonical face mesh (${path}) is missing: run npm run build:models`);
  return path;
}

/**
 * The symbolic batch dimension of every converted model's input and outputs. The shapes in
 * MODELS are a batch of one; a model takes N images stacked on the leading axis.
 */
export const BATCH_DIM = 'N';

/** A model's reported shape against the manifest's batch-of-one shape. */
export function sameShape(a: readonly (number | string)[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i] || (i === 0 && b[0] === 1 && d === BATCH_DIM));
}
