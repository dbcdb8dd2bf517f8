/**
 * The tracker's per-frame result: the public FaceTrack fields plus internal detail (raw and
 * canonical-space landmarks, pose-normalised expression offsets, ROI, timings).
 */
import type { Expression, FaceTrack, HeadPose } from '../../../shared/tracking.ts';
import type { Rect } from './roi.ts';

export type TrackerErrorCode = 'E_TRACKER_BUSY';

export class TrackerError extends Error {
  readonly code: TrackerErrorCode;
  constructor(code: TrackerErrorCode, message: string) {
    super(message);
    this.name = 'TrackerError';
    this.code = code;
  }
}

export interface TrackTimings {
  /** Detector pre/post-processing + inference round trip, ms (0 when the detector did not run). */
  detectMs: number;
  /** Landmark crop + inference round trip + projection, ms. */
  landmarksMs: number;
  /** Model time inside the worker, ms: detector, landmark model, and both together. */
  detectorModelMs: number;
  landmarksModelMs: number;
  inferMs: number;
  /** Whole process() call, ms. */
  totalMs: number;
  /** Requests in the landmark-model call that served this frame (a batch across sessions; 0 when it did not run). */
  landmarksBatch: number;
}

export interface TrackResult {
  frame: number;
  timeMs: number;
  /** Faces seen (detector count, refreshed every detectIntervalMs); 0 when no face is tracked. */
  faces: number;
  /** Face-presence probability of the landmark model, 0..1; 0 when no face. */
  score: number;
  landmarkCount: number;
  /** Filtered landmarks, x y z per point in input pixels (z relative, same scale as x). */
  landmarks: Float32Array | null;
  /** Unfiltered landmarks (same layout). */
  rawLandmarks: Float32Array | null;
  /** First 468 landmarks in canonical-mesh space (pose removed; y up, canonical units). */
  canonicalLandmarks: Float32Array | null;
  /** canonicalLandmarks minus the canonical mesh: the pose-normalised expression, 468 × 3. */
  expressionOffsets: Float32Array | null;
  pose: HeadPose | null;
  expression: Expression | null;
  /** The crop the landmarks came from. */
  roi: Rect | null;
  /** Whether the detector ran on this frame. */
  detected: boolean;
  timings: TrackTimings;
}

export function emptyResult(frame: number, timeMs: number, landmarkCount: number): TrackResult {
  return {
    frame,
    timeMs,
    faces: 0,
    score: 0,
    landmarkCount,
    landmarks: null,
    rawLandmarks: null,
    canonicalLandmarks: null,
    expressionOffsets: null,
    pose: null,
    expression: null,
    roi: null,
    detected: false,
    timings: { detectMs: 0, landmarksMs: 0, detectorModelMs: 0, landmarksModelMs: 0, inferMs: 0, totalMs: 0, landmarksBatch: 0 },
  };
}

/** The public, JSON-friendly FaceTrack (copies the landmark buffer). */
export function toFaceTrack(r: TrackResult, digits = 2): FaceTrack {
  const k = 10 ** digits;
  const round = (v: number): number => Math.round(v * k) / k;
  let landmarks: [number, number, number][] | null = null;
  if (r.landmarks) {
    landmarks = new Array<[number, number, number]>(r.landmarkCount);
    const l = r.landmarks;
    for (let i = 0; i < r.landmarkCount; i++) landmarks[i] = [round(l[3 * i] ?? 0), round(l[3 * i + 1] ?? 0), round(l[3 * i + 2] ?? 0)];
  }
  const r4 = (v: number): number => Math.round(v * 1e4) / 1e4;
  return {
    frame: r.frame,
    timeMs: r.timeMs,
    faces: r.faces,
    score: r4(r.score),
    landmarks,
    pose: r.pose && { yaw: round(r.pose.yaw), pitch: round(r.pose.pitch), roll: round(r.pose.roll), tx: round(r.pose.tx), ty: round(r.pose.ty), scale: r4(r.pose.scale) },
    expression: r.expression && {
      jawOpen: r4(r.expression.jawOpen),
      mouthWidth: r4(r.expression.mouthWidth),
      lipCornerRaise: r4(r.expression.lipCornerRaise),
      eyeOpenLeft: r4(r.expression.eyeOpenLeft),
      eyeOpenRight: r4(r.expression.eyeOpenRight),
      browRaise: r4(r.expression.browRaise),
    },
  };
}
