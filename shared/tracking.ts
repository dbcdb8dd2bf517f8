/**
 * What the tracker reports for one frame. Shared by the server (tracker,
 * renderer, live pipeline), the CLIs (`npm run track` writes these as JSON) and
 * the browser (privacy mode sends the same shape over a data channel).
 */

/** Head pose from a Procrustes fit of the landmarks to the canonical face mesh. */
export interface HeadPose {
  /** Degrees; positive yaw turns the face to the image's right, positive pitch looks up, positive roll tilts clockwise. */
  yaw: number;
  pitch: number;
  roll: number;
  /** Translation of the face centre in input pixels. */
  tx: number;
  ty: number;
  /** Pixels per canonical-mesh unit (canonical mesh is in cm-like units). */
  scale: number;
}

/**
 * Named expression parameters. Ranges are documented per field; the values are
 * measured in pose-normalised space so head rotation does not move them.
 */
export interface Expression {
  /** Inner-lip gap over face height, 0 (closed) .. ~0.35 (wide open). */
  jawOpen: number;
  /** Mouth-corner distance over inter-ocular distance, ~0.6 (pursed) .. ~1.2 (wide smile). */
  mouthWidth: number;
  /** Lip-corner height above the lip centre over face height, ~-0.05 (frown) .. ~0.08 (smile). */
  lipCornerRaise: number;
  /** Eyelid gap over eye width, 0 (closed) .. ~0.45 (wide open). */
  eyeOpenLeft: number;
  eyeOpenRight: number;
  /** Brow-to-eye distance over face height, ~0.08 .. ~0.2. */
  browRaise: number;
}

export interface FaceTrack {
  frame: number;
  timeMs: number;
  /** Number of faces seen; the largest is tracked. */
  faces: number;
  /** Face-presence score 0..1 for the tracked face. */
  score: number;
  /** [x, y, z] per landmark in input pixels (z in the same scale, relative); 468 or 478 points. null when no face. */
  landmarks: [number, number, number][] | null;
  pose: HeadPose | null;
  expression: Expression | null;
}

export const LANDMARK_COUNT = 468;
export const LANDMARK_COUNT_WITH_IRIS = 478;
