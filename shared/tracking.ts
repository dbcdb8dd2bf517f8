/**
 * What the tracker reports for one frame. Shared by the server (tracker,
 * renderer, live pipeline), the CLIs (`npm run track` writes these as JSON) and
 * the browser (privacy mode sends the same shape over a data channel).
 */

/** Head pose from a Procrustes fit of the landmarks to the canonical face mesh. */
export interface HeadPose {
  /**
   * Degrees, R = Ry(yaw)·Rx(pitch)·Rz(roll): positive yaw turns the face to the image's right,
   * positive pitch looks up, positive roll tilts clockwise in the image. A neutral frontal face
   * reads pitch ≈ -3..-10 (the canonical mesh's own tilt).
   */
  yaw: number;
  pitch: number;
  roll: number;
  /** Image position (input pixels) of the canonical mesh origin, a point inside the head behind the nose. */
  tx: number;
  ty: number;
  /** Pixels per canonical-mesh unit (canonical mesh is in cm-like units). */
  scale: number;
}

/**
 * Named expression parameters. They are measured on pose-normalised landmarks (the tracker
 * removes the fitted head pose and scale first), so head rotation and distance do not move
 * them. Lengths are divided by fixed lengths of the canonical face mesh: face height (landmark
 * 10→152) and eye-corner distance (33→263). Ranges below were measured on the fixture videos
 * (468-point model); values outside them are possible. Left/right are the subject's own.
 */
export interface Expression {
  /** Inner-lip gap (13↔14) over face height: ~0 (closed, ≤ 0.02 while talking quietly) .. ~0.18 (wide open). */
  jawOpen: number;
  /** Mouth-corner distance (61↔291) over eye-corner distance: ~0.47 (pursed) .. ~0.58 (neutral) .. ~0.82 (wide smile). */
  mouthWidth: number;
  /** Mean lip-corner height above the inner-lip centre over face height: ~-0.02 (frown/neutral) .. ~0.05 (broad smile). */
  lipCornerRaise: number;
  /**
   * Eyelid gap (386↔374 left, 159↔145 right) over that eye's corner distance: ~0.1 (closed; the
   * 468-point model rarely reaches 0, a blink typically reads 0.1–0.22) .. ~0.3 (relaxed) .. ~0.43 (wide open).
   */
  eyeOpenLeft: number;
  eyeOpenRight: number;
  /** Brow (105/334) height above the upper eyelid (159/386) over face height: ~0.08 (lowered) .. ~0.19 (raised). */
  browRaise: number;
}

export interface FaceTrack {
  frame: number;
  timeMs: number;
  /** Number of faces seen; the largest is tracked. */
  faces: number;
  /** Face-presence probability 0..1 of the landmark model for the tracked face; 0 when none. */
  score: number;
  /** [x, y, z] per landmark in input pixels (z in the same scale, relative); 468 or 478 points. null when no face. */
  landmarks: [number, number, number][] | null;
  pose: HeadPose | null;
  expression: Expression | null;
}

export const LANDMARK_COUNT = 468;
export const LANDMARK_COUNT_WITH_IRIS = 478;
