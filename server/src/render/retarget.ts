/**
 * Motion retargeting: the actor's change from its own neutral, measured in
 * pose-normalised space, transferred onto the target's neutral and scaled to
 * the target's proportions; head rotation/translation transferred relative to
 * each side's neutral with soft limits; eyes through a calibrated lid model.
 *
 * All per-frame work writes into buffers allocated once.
 */
import type { FaceTrack } from '../../../shared/tracking.ts';
import { OneEuroVector } from './filter.ts';
import {
  applySimilarity, clamp, smoothstep, eulerToMat3, fitSimilarity, mat3, mat3ToEuler, mat3Transpose, newSimilarityFit, softLimit,
} from './geometry.ts';
import { LANDMARK_SLOTS } from './mesh.ts';
import { EYES, LIPS_LOWER_INNER, LIPS_UPPER_INNER, MESH_POINTS, STABLE_POINTS, type EyeTopology } from './topology.ts';
import { eyeOpenness, interOcular, irisOffset, mouthGap, placeMissingIris, type TargetGeometry } from './face-measure.ts';

export interface RetargetParams {
  /** Soft limits on the transferred head rotation, degrees. */
  maxYawDeg: number;
  maxPitchDeg: number;
  maxRollDeg: number;
  /** Soft limit on the transferred head translation, in target inter-ocular distances. */
  maxShiftIod: number;
  /** Soft limit on the relative scale change (0.15 = ±15%). */
  maxScaleChange: number;
  /**
   * Lid calibration. The 468-point model under-reads lids (after its smoothing
   * a full blink bottoms out at 0.55–0.7 of the neutral gap), so an openness
   * ratio (now / neutral) at or under closedRatio means fully closed; at or
   * over openRatio, fully open; linear between.
   */
  blinkClosedRatio: number;
  blinkOpenRatio: number;
  /**
   * The same for an actor tracked with the 478-point attention model (a track with irises), whose
   * lids read true: a full blink bottoms out at 0.00–0.05 of the neutral gap, a half-closed eye
   * near 0.5.
   */
  blinkClosedRatioIris: number;
  blinkOpenRatioIris: number;
  /** Widest lid opening relative to the target's neutral. */
  maxEyeWiden: number;
  /** No face: hold the last pose this long, then ease to neutral over easeMs. */
  holdMs: number;
  easeMs: number;
  /** Neutral capture: this many consecutive steady frames (motion under steadyIod per frame). */
  neutralFrames: number;
  steadyIod: number;
  /** Give up waiting for steady frames after this many and take the calmest window seen. */
  neutralMaxWait: number;
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
  /** Expression gain (1 = the actor's relative motion at the target's proportions). */
  expressionGain: number;
  /**
   * Depth used when rotating the target, as a fraction of the tracker's z. The
   * face-mesh z is steep at the silhouette; at full depth a 15° turn already
   * folds the far cheek in a 2D warp.
   */
  depthScale: number;
  /**
   * Close the target's own parted lips when the actor rests with a closed
   * mouth (as LivePortrait's lip-zero does): the actor's mouth opening then
   * drives the target's from shut, instead of adding to a painted gap that a
   * closed mouth can never take away.
   */
  lipZero: boolean;
}

export const DEFAULT_RETARGET: Readonly<RetargetParams> = Object.freeze({
  maxYawDeg: 22,
  maxPitchDeg: 16,
  maxRollDeg: 25,
  maxShiftIod: 0.6,
  maxScaleChange: 0.15,
  blinkClosedRatio: 0.6,
  blinkOpenRatio: 0.97,
  blinkClosedRatioIris: 0.3,
  blinkOpenRatioIris: 0.97,
  maxEyeWiden: 1.35,
  holdMs: 500,
  easeMs: 1000,
  neutralFrames: 5,
  steadyIod: 0.012,
  neutralMaxWait: 45,
  minCutoffHz: 4,
  beta: 20,
  poseMinCutoffHz: 2.5,
  poseBeta: 5,
  expressionGain: 1,
  depthScale: 0.5,
  lipZero: true,
});

export type DriveState = 'waiting-neutral' | 'tracking' | 'holding' | 'easing';

/** The retargeter's per-frame output, reused across frames. */
export interface DrivenFrame {
  /** Driven landmark positions in target pixels (stride 3, LANDMARK_SLOTS): expression + head pose. */
  points: Float64Array;
  /** Driven expression before the head pose (target neutral frame): for pose-free lookups. */
  exprPoints: Float64Array;
  /** Target neutral moved by the head pose only: the anchor rings follow these. */
  posePoints: Float64Array;
  /** Per eye (right, left): lid closure 0 (neutral) .. 1 (shut), and lid widening ≥ 1. */
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

interface ActorNeutral {
  points: Float64Array;
  iod: number;
  open: Float64Array;
  iris: Float64Array | null;
}

/** Number of filtered scalars: deltas (468*3), pose (6: yaw,pitch,roll,dx,dy,log-scale), eye ratios (2), gaze (4). */
const POSE_N = 6;

export class Retargeter {
  readonly #params: RetargetParams;
  readonly #target: TargetGeometry;
  readonly #out: DrivenFrame;
  // Scratch.
  readonly #raw = new Float64Array(LANDMARK_SLOTS * 3);
  readonly #norm = new Float64Array(LANDMARK_SLOTS * 3);
  readonly #delta = new Float64Array(MESH_POINTS * 3);
  readonly #pose = new Float64Array(POSE_N);
  readonly #eyes = new Float64Array(6);
  readonly #fit = newSimilarityFit();
  readonly #toTarget = newSimilarityFit();
  readonly #rot = mat3();
  readonly #rotT = mat3();
  readonly #euler = new Float64Array(3);
  readonly #fDelta: OneEuroVector;
  readonly #fPose: OneEuroVector;
  readonly #fEyes: OneEuroVector;
  /** Per-vertex anisotropic scale actor→target in the target face frame. */
  readonly #sx = new Float64Array(MESH_POINTS);
  readonly #sy = new Float64Array(MESH_POINTS);
  // Neutral capture.
  readonly #window: Float64Array[];
  readonly #motion: Float64Array;
  #seen = 0;
  #bestWindowMotion = Infinity;
  readonly #bestWindow: Float64Array;
  #neutral: ActorNeutral | null = null;
  #lastTimeMs = -1;
  #lastGoodMs = -Infinity;
  /** The actor track carries irises (attention model): its lids read true and use the iris calibration. */
  #actorHasIris = false;
  #hasGood = false;
  #actorIris = false;
  /** Share of the target's lip gap the actor's neutral lacks, 0..1; applied only while lipZero is on. */
  #lipClose = 0;

  readonly #weights: Float64Array;

  /**
   * deltaWeights: per-landmark gain on the transferred expression (468). The
   * tracker's silhouette points slide along the face when the actor turns, so
   * their "expression" is mostly pose leakage: the renderer damps them.
   */
  constructor(target: TargetGeometry, params: Partial<RetargetParams> = {}, deltaWeights?: Float64Array) {
    this.#params = { ...DEFAULT_RETARGET, ...params };
    this.#target = target;
    this.#weights = deltaWeights ?? new Float64Array(MESH_POINTS).fill(1);
    const n = LANDMARK_SLOTS * 3;
    this.#out = {
      points: Float64Array.from(target.points), exprPoints: Float64Array.from(target.points), posePoints: Float64Array.from(target.points),
      eyeClosure: new Float64Array(2), eyeWiden: new Float64Array([1, 1]), gaze: new Float64Array(4),
      yawDeg: 0, pitchDeg: 0, rollDeg: 0, state: 'waiting-neutral',
    };
    const p = this.#params;
    this.#fDelta = new OneEuroVector(MESH_POINTS * 3, { minCutoffHz: p.minCutoffHz, beta: p.beta, dCutoffHz: 1 }, 3);
    this.#fPose = new OneEuroVector(POSE_N, { minCutoffHz: p.poseMinCutoffHz, beta: p.poseBeta, dCutoffHz: 1 });
    this.#fEyes = new OneEuroVector(6, { minCutoffHz: 4, beta: 8, dCutoffHz: 1 }, 1);
    this.#window = Array.from({ length: p.neutralFrames }, () => new Float64Array(n));
    this.#motion = new Float64Array(p.neutralFrames);
    this.#bestWindow = new Float64Array(n);
  }

  get lipZero(): boolean {
    return this.#params.lipZero;
  }

  /** Switches lip zero from the next update on, keeping the neutral (the share is known either way). */
  set lipZero(on: boolean) {
    this.#params.lipZero = on;
  }

  get hasNeutral(): boolean {
    return this.#neutral !== null;
  }

  /** Forget the actor's neutral; the next steady frames become the new one. */
  resetNeutral(): void {
    this.#neutral = null;
    this.#seen = 0;
    this.#bestWindowMotion = Infinity;
    this.#fDelta.reset();
    this.#fPose.reset();
    this.#fEyes.reset();
    this.#out.state = 'waiting-neutral';
  }

  /** Takes this actor shape as the neutral right away (tests, or a UI "capture neutral" button). */
  setNeutral(track: FaceTrack): void {
    if (!track.landmarks) throw new TypeError('setNeutral needs a track with landmarks');
    this.#load(track);
    this.#adoptNeutral(this.#raw);
  }

  /** Advances one frame. track.landmarks null (or track null) means no face this frame. */
  update(track: FaceTrack | null, timeMs: number): DrivenFrame {
    const dtMs = this.#lastTimeMs < 0 ? 33 : clamp(timeMs - this.#lastTimeMs, 1, 1000);
    this.#lastTimeMs = timeMs;
    const out = this.#out;
    if (track?.landmarks && track.landmarks.length >= MESH_POINTS) {
      this.#actorHasIris = track.landmarks.length >= LANDMARK_SLOTS;
      this.#load(track);
      if (!this.#neutral) {
        this.#collectNeutral();
        if (!this.#neutral) {
          // Until the neutral is known, the actor's current mouth decides whether the target's lips show shut.
          this.#lipClose = lipZeroShare(mouthGap(this.#raw), this.#target.mouthGap);
          out.state = 'waiting-neutral';
          this.#compose(true);
          return out;
        }
      }
      this.#measure();
      this.#fDelta.update(this.#delta, dtMs);
      this.#fPose.update(this.#pose, dtMs);
      this.#fEyes.update(this.#eyes, dtMs);
      this.#lastGoodMs = timeMs;
      this.#hasGood = true;
      out.state = 'tracking';
    } else if (!this.#neutral || !this.#hasGood) {
      out.state = 'waiting-neutral';
      this.#compose(true);
      return out;
    } else if (timeMs - this.#lastGoodMs <= this.#params.holdMs) {
      out.state = 'holding';
    } else {
      out.state = 'easing';
      const k = Math.exp((-3 * dtMs) / this.#params.easeMs);
      this.#decay(this.#fDelta, k, null);
      this.#decay(this.#fPose, k, null);
      this.#decay(this.#fEyes, k, [1, 1, 0, 0, 0, 0]);
    }
    this.#compose(false);
    return out;
  }

  #decay(f: OneEuroVector, k: number, rest: number[] | null): void {
    const v = f.value;
    for (let i = 0; i < v.length; i++) {
      const r = rest?.[i] ?? 0;
      v[i] = r + (v[i]! - r) * k;
    }
  }

  #load(track: FaceTrack): void {
    const lm = track.landmarks!;
    const raw = this.#raw;
    for (let i = 0; i < LANDMARK_SLOTS; i++) {
      const p = lm[i];
      if (p) {
        raw[i * 3] = p[0];
        raw[i * 3 + 1] = p[1];
        raw[i * 3 + 2] = p[2];
      } else raw[i * 3] = Number.NaN;
    }
    this.#actorIris = !Number.isNaN(raw[MESH_POINTS * 3]!);
    if (!this.#actorIris) placeMissingIris(raw);
  }

  #collectNeutral(): void {
    const p = this.#params;
    const K = p.neutralFrames;
    const slot = this.#seen % K;
    const prev = this.#window[(this.#seen + K - 1) % K]!;
    const iod = interOcular(this.#raw);
    this.#motion[slot] = this.#seen === 0 ? Infinity : rmsMotion(prev, this.#raw) / Math.max(iod, 1e-6);
    this.#window[slot]!.set(this.#raw);
    this.#seen++;
    if (this.#seen < K) return;
    let worst = 0;
    for (let k = 0; k < K; k++) if (k !== (this.#seen - K) % K) worst = Math.max(worst, this.#motion[k]!);
    const mean = new Float64Array(this.#raw.length);
    const average = (): Float64Array => {
      mean.fill(0);
      for (const w of this.#window) for (let i = 0; i < mean.length; i++) mean[i]! += w[i]! / K;
      return mean;
    };
    if (worst < p.steadyIod) {
      this.#adoptNeutral(average());
      return;
    }
    if (worst < this.#bestWindowMotion) {
      this.#bestWindowMotion = worst;
      this.#bestWindow.set(average());
    }
    if (this.#seen >= p.neutralMaxWait) this.#adoptNeutral(this.#bestWindow);
  }

  #adoptNeutral(points: Float64Array): void {
    const pts = Float64Array.from(points);
    const t = this.#target;
    const open = new Float64Array(2);
    EYES.forEach((eye, e) => (open[e] = Math.max(eyeOpenness(pts, eye), 0.05)));
    const iris = new Float64Array(4);
    EYES.forEach((eye, e) => irisOffset(pts, eye, iris, e * 2));
    this.#neutral = { points: pts, iod: interOcular(pts), open, iris };
    this.#lipClose = lipZeroShare(mouthGap(pts), t.mouthGap);
    // Global similarity actor neutral → target neutral, then per-vertex proportions.
    fitSimilarity(pts, t.points, STABLE_POINTS, this.#toTarget);
    const aligned = new Float64Array(MESH_POINTS * 3);
    for (let i = 0; i < MESH_POINTS; i++) applySimilarity(this.#toTarget, pts, i, aligned, i * 3);
    computeProportions(aligned, t, this.#sx, this.#sy);
    this.#fDelta.reset();
    this.#fPose.reset();
    this.#fEyes.reset();
  }

  /** Pose-normalise the current frame against the actor neutral; fill delta, pose and eye inputs. */
  #measure(): void {
    const n = this.#neutral!;
    const fit = fitSimilarity(this.#raw, n.points, STABLE_POINTS, this.#fit);
    const norm = this.#norm;
    for (let i = 0; i < LANDMARK_SLOTS; i++) applySimilarity(fit, this.#raw, i, norm, i * 3);
    const d = this.#delta;
    const inv = 1 / n.iod;
    for (let i = 0; i < MESH_POINTS * 3; i++) d[i] = (norm[i]! - n.points[i]!) * inv;
    // fit maps current → neutral, so the head's rotation from neutral is its transpose.
    mat3Transpose(fit.rotation, this.#rotT);
    mat3ToEuler(this.#rotT, this.#euler);
    const pose = this.#pose;
    pose[0] = this.#euler[0]!;
    pose[1] = this.#euler[1]!;
    pose[2] = this.#euler[2]!;
    pose[3] = (fit.ca[0]! - fit.cb[0]!) * inv;
    pose[4] = (fit.ca[1]! - fit.cb[1]!) * inv;
    pose[5] = -Math.log(Math.max(fit.scale, 1e-3));
    const eyes = this.#eyes;
    EYES.forEach((eye, e) => {
      eyes[e] = eyeOpenness(norm, eye) / n.open[e]!;
      if (this.#actorIris) {
        irisOffset(norm, eye, eyes, 2 + e * 2);
        eyes[2 + e * 2]! -= n.iris![e * 2]!;
        eyes[3 + e * 2]! -= n.iris![e * 2 + 1]!;
      } else eyes[2 + e * 2] = eyes[3 + e * 2] = 0;
    });
  }

  /** Writes the driven target geometry from the filtered state (or the target neutral). */
  #compose(neutralOnly: boolean): void {
    const out = this.#out, t = this.#target, p = this.#params;
    if (neutralOnly) {
      out.points.set(t.points);
      this.#closeLips(out.points);
      out.exprPoints.set(out.points);
      out.posePoints.set(t.points);
      out.eyeClosure.fill(0);
      out.eyeWiden.fill(1);
      out.gaze.fill(0);
      out.yawDeg = out.pitchDeg = out.rollDeg = 0;
      return;
    }
    const d = this.#fDelta.value, pose = this.#fPose.value, eyes = this.#fEyes.value;
    const toT = this.#toTarget, R = toT.rotation;
    const g = toT.scale * this.#neutral!.iod * p.expressionGain;
    const cr = Math.cos(t.roll), sr = Math.sin(t.roll);
    const pts = out.points;
    // Expression: delta (actor neutral frame, IOD units) → target frame, scaled per region.
    const wts = this.#weights;
    for (let i = 0; i < MESH_POINTS; i++) {
      const w = wts[i]!;
      const dx = d[i * 3]! * w, dy = d[i * 3 + 1]! * w, dz = d[i * 3 + 2]! * w;
      const ex = g * (R[0]! * dx + R[1]! * dy + R[2]! * dz);
      const ey = g * (R[3]! * dx + R[4]! * dy + R[5]! * dz);
      const ez = g * (R[6]! * dx + R[7]! * dy + R[8]! * dz);
      // Into the target's upright face frame, scale, and back.
      const u = (cr * ex + sr * ey) * this.#sx[i]!, v = (-sr * ex + cr * ey) * this.#sy[i]!;
      pts[i * 3] = t.points[i * 3]! + cr * u - sr * v;
      pts[i * 3 + 1] = t.points[i * 3 + 1]! + sr * u + cr * v;
      pts[i * 3 + 2] = t.points[i * 3 + 2]! + ez;
    }
    for (let i = MESH_POINTS * 3; i < LANDMARK_SLOTS * 3; i++) pts[i] = t.points[i]!;
    this.#closeLips(pts);
    this.#eyeModel(eyes);
    separateLips(pts, t);
    out.exprPoints.set(pts);
    // Head pose, soft-limited, about the target's head centre.
    const D2R = Math.PI / 180;
    const yaw = softLimit(pose[0]!, p.maxYawDeg * D2R), pitch = softLimit(pose[1]!, p.maxPitchDeg * D2R), roll = softLimit(pose[2]!, p.maxRollDeg * D2R);
    out.yawDeg = yaw / D2R;
    out.pitchDeg = pitch / D2R;
    out.rollDeg = roll / D2R;
    eulerToMat3(yaw, pitch, roll, this.#rot);
    const shiftX = softLimit(pose[3]!, p.maxShiftIod) * t.iod, shiftY = softLimit(pose[4]!, p.maxShiftIod) * t.iod;
    const s = Math.exp(softLimit(pose[5]!, p.maxScaleChange));
    transformAbout(pts, t.center, this.#rot, s, shiftX, shiftY, p.depthScale, pts);
    transformAbout(t.points, t.center, this.#rot, s, shiftX, shiftY, p.depthScale, out.posePoints);
  }

  /** lipZero: shuts the share #lipClose of the target's own lip gap. */
  #closeLips(pts: Float64Array): void {
    const lc = this.#lipClose, f = this.#target.lipClose;
    if (!this.#params.lipZero || lc <= 0) return;
    for (let i = 0; i < MESH_POINTS; i++) {
      pts[i * 3]! += lc * f[i * 2]!;
      pts[i * 3 + 1]! += lc * f[i * 2 + 1]!;
    }
  }

  /** Lids: calibrated closure / widening per eye; iris shift from the actor's gaze. */
  #eyeModel(eyes: Float64Array): void {
    const out = this.#out, p = this.#params, t = this.#target;
    const pts = out.points;
    EYES.forEach((eye, e) => {
      const ratio = eyes[e]!;
      out.eyeClosure[e] = this.#actorHasIris ? lidClosure(ratio, p.blinkOpenRatioIris, p.blinkClosedRatioIris) : lidClosure(ratio, p.blinkOpenRatio, p.blinkClosedRatio);
      out.eyeWiden[e] = 1 + clamp(ratio - 1.03, 0, p.maxEyeWiden - 1);
      // The lids' own vertices keep the target's neutral shape, moved with the brow region and lifted
      // for wide eyes; a closing lid then slides down over the eyeball (closeLid), the eye layer
      // finishes its surface and lashes.
      let bx = 0, by = 0;
      for (const i of eye.upper2) {
        bx += pts[i * 3]! - t.points[i * 3]!;
        by += pts[i * 3 + 1]! - t.points[i * 3 + 1]!;
      }
      bx /= eye.upper2.length;
      by /= eye.upper2.length;
      const lift = (out.eyeWiden[e] - 1) * t.eyeGap[e]!;
      const upx = Math.sin(t.roll), upy = -Math.cos(t.roll);
      eye.upper.forEach((i, k) => {
        const w = lift * Math.sin((Math.PI * k) / (eye.upper.length - 1));
        pts[i * 3] = t.points[i * 3]! + bx * 0.6 + w * upx;
        pts[i * 3 + 1] = t.points[i * 3 + 1]! + by * 0.6 + w * upy;
      });
      for (const i of eye.upper1) {
        pts[i * 3] = t.points[i * 3]! + bx * 0.8 + lift * 0.5 * upx;
        pts[i * 3 + 1] = t.points[i * 3 + 1]! + by * 0.8 + lift * 0.5 * upy;
      }
      // The lower lid keeps its own transferred motion (it rises in a smile's squint).
      const c = out.eyeClosure[e];
      const irisFrac = c > 0 ? closeLid(pts, eye, c) : 0;
      const scale = t.eyeWidth[e]!;
      out.gaze[e * 2] = clamp(eyes[2 + e * 2]!, -0.12, 0.12) * scale * (1 - c);
      out.gaze[e * 2 + 1] = clamp(eyes[3 + e * 2]!, -0.06, 0.06) * scale * (1 - irisFrac);
    });
  }
}

/**
 * How much of the target's lip gap to close (lipZero): none when the target's
 * lips are (nearly) shut, else the share the actor's resting gap lacks. Gaps
 * are over each side's inter-ocular distance.
 */
export function lipZeroShare(actorGap: number, targetGap: number): number {
  return clamp(1 - actorGap / Math.max(targetGap, 1e-6), 0, 1) * smoothstep(0.015, 0.035, targetGap);
}

/**
 * Lid closure from the actor's openness ratio (now / neutral), linear between
 * `open` (no closure) and `closed` (shut). The 468-point model under-reads
 * lids: after the pipeline tracker's smoothing a full blink bottoms out at
 * 0.55–0.7 of the neutral gap (d3's closed-eye frowns 0.54, d9's blinks
 * 0.64–0.72), and a squint to 85% is a visibly narrower eye, so the slope is
 * steeper than one to one.
 */
export function lidClosure(ratio: number, open: number, closed: number): number {
  return clamp((open - ratio) / Math.max(open - closed, 1e-6), 0, 1);
}

/** Share of the open lid gap the lower lid rises at full closure. */
const LOWER_RISE = 0.15;
/** Share of the open lid gap the upper margin travels at full closure: the lids meet just above the lower lid. */
export const LID_TRAVEL = 0.97 - LOWER_RISE;
/** Share of that travel the lid skin at the crease (upper1 ring) follows: the fold slides down with the lid. */
const CREASE_TRAVEL = 0.8;

/**
 * Closes one eye geometrically: each upper-lid vertex slides toward its lower
 * partner, the crease ring follows part of the way, the lower lid rises a
 * little, and the iris vertex stays between them (the eyeball fan squashes
 * instead of folding). Returns how far the eye opening shrank, 0..1.
 */
function closeLid(pts: Float64Array, eye: EyeTopology, c: number): number {
  const n = eye.upper.length;
  const down = c * LID_TRAVEL, up = c * LOWER_RISE;
  let mx = 0, my = 0;
  for (let k = 1; k < n - 1; k++) {
    const a = eye.upper[k]! * 3, b = eye.lower[k]! * 3;
    const gx = pts[b]! - pts[a]!, gy = pts[b + 1]! - pts[a + 1]!;
    pts[a] = pts[a]! + gx * down;
    pts[a + 1] = pts[a + 1]! + gy * down;
    pts[b] = pts[b]! - gx * up;
    pts[b + 1] = pts[b + 1]! - gy * up;
    // upper1[j] lies above upper[j + 1].
    const r = eye.upper1[k - 1];
    if (r !== undefined) {
      pts[r * 3] = pts[r * 3]! + gx * down * CREASE_TRAVEL;
      pts[r * 3 + 1] = pts[r * 3 + 1]! + gy * down * CREASE_TRAVEL;
    }
    if (k === n >> 1) {
      mx = gx;
      my = gy;
    }
  }
  // The iris vertex keeps its fraction of the way between the lids.
  const m = eye.upper[n >> 1]! * 3, i = eye.iris * 3;
  const g2 = mx * mx + my * my;
  if (g2 < 1e-9) return 0;
  // Fraction measured against the open lids (before this call moved them).
  const openAx = pts[m]! - mx * down, openAy = pts[m + 1]! - my * down;
  const f = clamp(((pts[i]! - openAx) * mx + (pts[i + 1]! - openAy) * my) / g2, 0.1, 0.9);
  const shrink = down + up;
  pts[i] = pts[i]! + mx * (down - f * shrink);
  pts[i + 1] = pts[i + 1]! + my * (down - f * shrink);
  return shrink;
}

function rmsMotion(a: Float64Array, b: Float64Array): number {
  let ax = 0, ay = 0, bx = 0, by = 0;
  for (let i = 0; i < MESH_POINTS; i++) {
    ax += a[i * 3]!; ay += a[i * 3 + 1]!; bx += b[i * 3]!; by += b[i * 3 + 1]!;
  }
  const ox = (bx - ax) / MESH_POINTS, oy = (by - ay) / MESH_POINTS;
  let ss = 0;
  for (let i = 0; i < MESH_POINTS; i++) {
    const dx = b[i * 3]! - a[i * 3]! - ox, dy = b[i * 3 + 1]! - a[i * 3 + 1]! - oy;
    ss += dx * dx + dy * dy;
  }
  return Math.sqrt(ss / MESH_POINTS);
}

/**
 * Per-vertex proportions: for each landmark, the ratio of the target's to the
 * (aligned) actor's neighbourhood extent along the target face's x and y axes,
 * clamped and smoothed. A big-mouthed target scales the actor's lip motion up.
 */
export function computeProportions(aligned: Float64Array, t: TargetGeometry, sx: Float64Array, sy: Float64Array): void {
  const K = 24;
  const cr = Math.cos(t.roll), sr = Math.sin(t.roll);
  const dist = new Float64Array(MESH_POINTS);
  const idx = Array.from({ length: MESH_POINTS }, (_, i) => i);
  const nbrs: number[][] = [];
  for (let i = 0; i < MESH_POINTS; i++) {
    for (let j = 0; j < MESH_POINTS; j++) dist[j] = (aligned[j * 3]! - aligned[i * 3]!) ** 2 + (aligned[j * 3 + 1]! - aligned[i * 3 + 1]!) ** 2;
    const nb = idx.slice().sort((a, b) => dist[a]! - dist[b]!).slice(1, K + 1);
    nbrs.push(nb);
    let ax = 0, ay = 0, tx = 0, ty = 0;
    for (const j of nb) {
      const dax = aligned[j * 3]! - aligned[i * 3]!, day = aligned[j * 3 + 1]! - aligned[i * 3 + 1]!;
      const dtx = t.points[j * 3]! - t.points[i * 3]!, dty = t.points[j * 3 + 1]! - t.points[i * 3 + 1]!;
      const au = cr * dax + sr * day, av = -sr * dax + cr * day;
      const tu = cr * dtx + sr * dty, tv = -sr * dtx + cr * dty;
      ax += au * au; ay += av * av; tx += tu * tu; ty += tv * tv;
    }
    sx[i] = clamp(Math.sqrt(tx / Math.max(ax, 1e-9)), 0.7, 1.45);
    sy[i] = clamp(Math.sqrt(ty / Math.max(ay, 1e-9)), 0.7, 1.45);
  }
  for (let pass = 0; pass < 2; pass++) {
    const ox = Float64Array.from(sx), oy = Float64Array.from(sy);
    for (let i = 0; i < MESH_POINTS; i++) {
      let mx = ox[i]!, my = oy[i]!;
      const nb = nbrs[i]!.slice(0, 8);
      for (const j of nb) {
        mx += ox[j]!;
        my += oy[j]!;
      }
      sx[i] = mx / (nb.length + 1);
      sy[i] = my / (nb.length + 1);
    }
  }
}

/** Keeps the driven inner lips from crossing: a lower-lip point never rises above its upper partner. */
function separateLips(pts: Float64Array, t: TargetGeometry): void {
  const ux = -Math.sin(t.roll), uy = Math.cos(t.roll); // face "down" axis
  for (let k = 1; k < LIPS_UPPER_INNER.length - 1; k++) {
    const a = LIPS_UPPER_INNER[k]!, b = LIPS_LOWER_INNER[k]!;
    const gap = (pts[b * 3]! - pts[a * 3]!) * ux + (pts[b * 3 + 1]! - pts[a * 3 + 1]!) * uy;
    if (gap < 0) {
      const h = gap / 2;
      pts[a * 3]! += h * ux; pts[a * 3 + 1]! += h * uy;
      pts[b * 3]! -= h * ux; pts[b * 3 + 1]! -= h * uy;
    }
  }
}

function transformAbout(src: Float64Array, c: Float64Array, R: Float64Array, s: number, tx: number, ty: number, depth: number, dst: Float64Array): void {
  const cx = c[0]!, cy = c[1]!, cz = c[2]!;
  for (let i = 0; i < LANDMARK_SLOTS; i++) {
    const x = src[i * 3]! - cx, y = src[i * 3 + 1]! - cy, z = (src[i * 3 + 2]! - cz) * depth;
    dst[i * 3] = cx + tx + s * (R[0]! * x + R[1]! * y + R[2]! * z);
    dst[i * 3 + 1] = cy + ty + s * (R[3]! * x + R[4]! * y + R[5]! * z);
    dst[i * 3 + 2] = cz + (s * (R[6]! * x + R[7]! * y + R[8]! * z)) / depth;
  }
}
