/**
 * The retargeter's configuration (RetargetParams and its defaults) and its
 * per-frame output (DrivenFrame): what callers of retarget.ts set and read,
 * apart from the per-frame logic.
 */
import { DEFAULT_CALIBRATION, type CalibrationParams } from './actor-calibration.ts';
import type { LidParams } from './retarget-lids.ts';

export interface RetargetParams extends LidParams, CalibrationParams {
  /**
   * Head rotation, degrees: transferred one to one up to the linear range,
   * then eased toward the maximum (a graceful limit a 2D warp of one photo
   * can still show).
   */
  yawLinearDeg: number;
  maxYawDeg: number;
  pitchLinearDeg: number;
  maxPitchDeg: number;
  rollLinearDeg: number;
  maxRollDeg: number;
  /**
   * Head rotation is the actor's rotation from the frontal face, applied as the change from the
   * target's own rotation, of which it takes back at most this much per axis, degrees. A
   * near-frontal portrait (or a self-reenactment) then matches the actor's pose; a strongly
   * turned one is turned back by this much and keeps the rest of its turn.
   */
  targetPoseCompDeg: number;
  /** Soft limit on the transferred head translation, in target inter-ocular distances. */
  maxShiftIod: number;
  /** Soft limit on the relative scale change (0.15 = ±15%). */
  maxScaleChange: number;
  /** No face: hold the last pose this long, then ease to rest over easeMs. */
  holdMs: number;
  easeMs: number;
  /**
   * Landmark smoothing (One Euro, per point; speed in inter-ocular distances
   * per second). Light by default: the tracker already filters its landmarks,
   * and a second heavy filter lags speech by frames.
   */
  minCutoffHz: number;
  beta: number;
  /** Head-pose smoothing (One Euro over yaw/pitch/roll in radians, shift in IODs, log-scale). */
  poseMinCutoffHz: number;
  poseBeta: number;
  /** Expression gain (1 = the actor's motion at the target's proportions). */
  expressionGain: number;
  /**
   * Depth used when rotating the target, as a fraction of the canonical face's
   * relief fitted to the target (targetRelief): 1 turns the target as a real
   * head turns, so a tracker reads the actor's angle back.
   */
  depthScale: number;
  /**
   * Close the target's own parted lips when the actor's lips are shut (as
   * LivePortrait's lip zero does): the actor's mouth gap then drives the
   * target's from shut, instead of adding to a painted gap.
   */
  lipZero: boolean;
  /**
   * The lips move at the face's scale (the jaw's travel scales with the head), not at the
   * target's local lip proportions (retarget-proportions.ts). Off: the lips take their local
   * proportions too (for comparisons).
   */
  lipsAtFaceScale: boolean;
}

export const DEFAULT_RETARGET: Readonly<RetargetParams> = Object.freeze({
  ...DEFAULT_CALIBRATION,
  yawLinearDeg: 30,
  maxYawDeg: 42,
  pitchLinearDeg: 20,
  maxPitchDeg: 30,
  rollLinearDeg: 25,
  maxRollDeg: 40,
  targetPoseCompDeg: 15,
  maxShiftIod: 0.6,
  maxScaleChange: 0.15,
  blinkClosedRatio: 0.6,
  blinkOpenRatio: 0.97,
  blinkClosedRatioIris: 0.3,
  blinkOpenRatioIris: 0.97,
  maxEyeWiden: 1.35,
  holdMs: 500,
  easeMs: 1000,
  minCutoffHz: 4,
  beta: 20,
  poseMinCutoffHz: 2.5,
  poseBeta: 5,
  expressionGain: 1,
  depthScale: 1,
  lipZero: true,
  lipsAtFaceScale: true,
});

/** 'waiting-neutral' only until the first face: calibration is online and never blocks output. */
export type DriveState = 'waiting-neutral' | 'tracking' | 'holding' | 'easing';

/** The retargeter's per-frame output, reused across frames. */
export interface DrivenFrame {
  /** Driven landmark positions in target pixels (stride 3, LANDMARK_SLOTS): expression + head pose. */
  points: Float64Array;
  /** Driven expression before the head pose (target neutral frame): for pose-free lookups. */
  exprPoints: Float64Array;
  /** Target neutral moved by the head pose only: the anchor rings follow these. */
  posePoints: Float64Array;
  /** Per eye (right, left): lid closure 0 (open) .. 1 (shut), and lid widening ≥ 1. */
  eyeClosure: Float64Array;
  eyeWiden: Float64Array;
  /** Per eye iris shift in target pixels (x, y), in the pose-normalised frame. */
  gaze: Float64Array;
  /** Transferred head rotation, degrees, after limits. */
  yawDeg: number;
  pitchDeg: number;
  rollDeg: number;
  state: DriveState;
}
