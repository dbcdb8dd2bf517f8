/**
 * Motion retargeting. The actor's expression is measured against its own
 * rest shape, learnt online (actor-calibration.ts: lips shut, a weighted
 * running mean of frontalised frames) in pose-free space, then transferred
 * onto the target's neutral, scaled to the target's proportions
 * (retarget-proportions.ts). Head rotation is measured against the frontal
 * face and the target takes the actor's pose (less what a strongly turned
 * portrait cannot show), about its head centre with the depth of a real
 * head, in full up to a stated range and with a soft limit beyond. Lids and gaze: retarget-lids.ts.
 *
 * Nothing depends on the first frames being neutral: a session that starts
 * mid-sentence, smiling or turned converges to the same output as one that
 * starts at rest, as soon as the actor's lips meet once.
 *
 * All per-frame work writes into buffers allocated once.
 */
import type { FaceTrack } from '../../../shared/tracking.ts';
import { ActorCalibration } from './actor-calibration.ts';
import { OneEuroVector } from './filter.ts';
import {
  applySimilarity, clamp, eulerToMat3, fitSimilarity, mat3, mat3Mul, mat3ToEuler, mat3Transpose, newSimilarityFit, smoothstep, softLimit,
} from './geometry.ts';
import { LANDMARK_SLOTS } from './mesh.ts';
import { EYES, MESH_POINTS, STABLE_POINTS } from './topology.ts';
import { eyeOpenness, irisOffset, placeMissingIris, type TargetGeometry } from './face-measure.ts';
import { driveLids } from './retarget-lids.ts';
import { DEFAULT_RETARGET, type DrivenFrame, type RetargetParams } from './retarget-params.ts';
import { Proportions, separateLips } from './retarget-proportions.ts';
import { limitAngle, poseCompensation, targetRelief, targetRestRotation, transformAbout, type PoseGain } from './retarget-pose.ts';

export { LID_TRAVEL, lidClosure } from './retarget-lids.ts';
export { DEFAULT_RETARGET, type DrivenFrame, type DriveState, type RetargetParams } from './retarget-params.ts';
export { gainDiagonal, limitAngle, POSE_GAIN_RANGE, poseCompensation, targetRelief, type PoseGain } from './retarget-pose.ts';

const IDENTITY3 = Float64Array.of(1, 0, 0, 0, 1, 0, 0, 0, 1);

/** Pose vector: yaw, pitch, roll (radians), dx, dy (actor IODs), log-scale. */
const POSE_N = 6;
/** Refresh the proportions this often (frames) while the rest is young, then every PROP_LATE frames. */
const PROP_EARLY = 15;
const PROP_LATE = 150;

export class Retargeter {
  readonly #params: RetargetParams;
  readonly #target: TargetGeometry;
  readonly #out: DrivenFrame;
  readonly #calib: ActorCalibration;
  // Scratch.
  readonly #raw = new Float64Array(LANDMARK_SLOTS * 3);
  readonly #norm = new Float64Array(LANDMARK_SLOTS * 3);
  readonly #aligned = new Float64Array(MESH_POINTS * 3);
  readonly #delta = new Float64Array(MESH_POINTS * 3);
  readonly #pose = new Float64Array(POSE_N);
  readonly #eyes = new Float64Array(6);
  readonly #fit = newSimilarityFit();
  readonly #toTarget = newSimilarityFit();
  readonly #rot = mat3();
  readonly #rotT = mat3();
  readonly #restT = mat3();
  /** Transpose of the part of the target's own rotation the 'frontal' pose rest takes back. */
  readonly #targetRestT: Float64Array;
  readonly #euler = new Float64Array(3);
  readonly #fDelta: OneEuroVector;
  readonly #fPose: OneEuroVector;
  readonly #fEyes: OneEuroVector;
  readonly #props: Proportions;
  #lastTimeMs = -1;
  #lastGoodMs = -Infinity;
  /** The actor track carries irises (attention model): its lids read true and use the iris calibration. */
  #actorIris = false;
  #hasGood = false;
  readonly #weights: Float64Array;
  /** Target depth for rotation and the head centre (targetRelief). */
  readonly #relief: Float64Array;
  readonly #center: Float64Array;
  /** Share of the target's own lip gap lip zero shuts (the actor's rest always has shut lips). */
  readonly #lipShut: number;
  /** Commanded angles per shown angles (3×3, the inverse of the target's measured PoseGain). */
  readonly #poseComp: Float64Array;

  /**
   * deltaWeights: per-landmark gain on the transferred expression (468). The
   * tracker's silhouette points slide along the face when the actor turns, so
   * their "expression" is mostly pose leakage: the renderer damps them.
   * frontal: the canonical face in image axes (actor-calibration frontalCanonical); without it
   * the first face seen is taken as frontal.
   * poseGain: what this target's warp shows of a commanded rotation (pose-gain.ts); none: all of it.
   */
  constructor(
    target: TargetGeometry, params: Partial<RetargetParams> = {}, deltaWeights?: Float64Array, frontal?: Float64Array, targetLandmarks?: Float64Array,
    poseGain?: PoseGain | null,
  ) {
    this.#params = { ...DEFAULT_RETARGET, ...params };
    this.#target = target;
    this.#weights = deltaWeights ?? new Float64Array(MESH_POINTS).fill(1);
    this.#out = {
      points: Float64Array.from(target.points), exprPoints: Float64Array.from(target.points), posePoints: Float64Array.from(target.points),
      eyeClosure: new Float64Array(2), eyeWiden: new Float64Array([1, 1]), gaze: new Float64Array(4),
      yawDeg: 0, pitchDeg: 0, rollDeg: 0, state: 'waiting-neutral',
    };
    const p = this.#params;
    this.#calib = new ActorCalibration(frontal ?? null, p);
    this.#props = new Proportions(target, p.lipsAtFaceScale);
    ({ relief: this.#relief, center: this.#center } = targetRelief(target, frontal));
    this.#lipShut = lipZeroShare(0, target.mouthGap);
    this.#poseComp = poseCompensation(poseGain);
    this.#targetRestT = targetRestRotation(targetLandmarks ?? target.points, frontal, this.#params.targetPoseCompDeg);
    this.#fDelta = new OneEuroVector(MESH_POINTS * 3, { minCutoffHz: p.minCutoffHz, beta: p.beta, dCutoffHz: 1 }, 3);
    this.#fPose = new OneEuroVector(POSE_N, { minCutoffHz: p.poseMinCutoffHz, beta: p.poseBeta, dCutoffHz: 1 });
    this.#fEyes = new OneEuroVector(6, { minCutoffHz: 4, beta: 8, dCutoffHz: 1 }, 1);
  }

  get lipZero(): boolean {
    return this.#params.lipZero;
  }

  /** Switches lip zero from the next update on. */
  set lipZero(on: boolean) {
    this.#params.lipZero = on;
  }

  /** True once the actor has been seen (the rest shape is being learnt). */
  get hasNeutral(): boolean {
    return this.#calib.ready;
  }

  /** Forget what was learnt about the actor; calibration starts again from the next frame. */
  resetNeutral(): void {
    this.#calib.reset();
    this.#fDelta.reset();
    this.#fPose.reset();
    this.#fEyes.reset();
    this.#hasGood = false;
    this.#out.state = 'waiting-neutral';
  }

  /** "This is my neutral": adopts this shape as the rest at once and its head pose as the zero. */
  setNeutral(track: FaceTrack): void {
    if (!track.landmarks) throw new TypeError('setNeutral needs a track with landmarks');
    this.#load(track);
    this.#calib.pin(this.#raw);
    this.#fDelta.reset();
    this.#fPose.reset();
    this.#fEyes.reset();
    this.#refreshTargetMap(true);
  }

  /**
   * The target's neutral turned by this rotation (degrees; no limits): what pose-gain.ts renders
   * to measure what the warp shows. `compensated` commands it as a drive does (over the target's
   * pose gain), else exactly. Leaves the actor state alone.
   */
  posed(yawDeg: number, pitchDeg: number, rollDeg: number, compensated = false): DrivenFrame {
    this.#compose(true);
    const out = this.#out, t = this.#target, D2R = Math.PI / 180, depth = this.#params.depthScale;
    const c = compensated ? this.#poseComp : IDENTITY3;
    this.#command(yawDeg * D2R, pitchDeg * D2R, rollDeg * D2R, c);
    transformAbout(out.points, this.#relief, this.#center, this.#rot, 1, 0, 0, depth, out.points);
    out.exprPoints.set(t.points);
    transformAbout(t.points, this.#relief, this.#center, this.#rot, 1, 0, 0, depth, out.posePoints);
    out.yawDeg = yawDeg;
    out.pitchDeg = pitchDeg;
    out.rollDeg = rollDeg;
    return out;
  }

  /** Advances one frame. track.landmarks null (or track null) means no face this frame. */
  update(track: FaceTrack | null, timeMs: number): DrivenFrame {
    const dtMs = this.#lastTimeMs < 0 ? 33 : clamp(timeMs - this.#lastTimeMs, 1, 1000);
    this.#lastTimeMs = timeMs;
    const out = this.#out;
    if (track?.landmarks && track.landmarks.length >= MESH_POINTS) {
      this.#load(track);
      this.#calib.observe(this.#raw, dtMs);
      this.#refreshTargetMap(false);
      this.#measure();
      this.#fDelta.update(this.#delta, dtMs);
      this.#fPose.update(this.#pose, dtMs);
      this.#fEyes.update(this.#eyes, dtMs);
      this.#lastGoodMs = timeMs;
      this.#hasGood = true;
      out.state = 'tracking';
    } else if (!this.#hasGood) {
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

  /** Actor rest → target similarity every frame; the per-vertex proportions now and then. */
  #refreshTargetMap(force: boolean): void {
    const rest = this.#calib.rest, t = this.#target;
    fitSimilarity(rest, t.points, STABLE_POINTS, this.#toTarget);
    const n = this.#calib.frames;
    if (!force && n !== 1 && n % (n < 300 ? PROP_EARLY : PROP_LATE) !== 0) return;
    for (let i = 0; i < MESH_POINTS; i++) applySimilarity(this.#toTarget, rest, i, this.#aligned, i * 3);
    this.#props.update(this.#aligned);
  }

  /** Pose-normalise the current frame against the actor's rest; fill delta, pose and eye inputs. */
  #measure(): void {
    const c = this.#calib, rest = c.rest;
    const fit = fitSimilarity(this.#raw, rest, STABLE_POINTS, this.#fit);
    const norm = this.#norm;
    for (let i = 0; i < LANDMARK_SLOTS; i++) applySimilarity(fit, this.#raw, i, norm, i * 3);
    const d = this.#delta;
    const inv = 1 / c.restIod;
    for (let i = 0; i < MESH_POINTS * 3; i++) d[i] = (norm[i]! - rest[i]!) * inv;
    // fit maps current → rest (frontal), so the head's rotation is its transpose.
    mat3Transpose(fit.rotation, this.#rotT);
    const pin = c.pinnedRotation;
    // The head relative to its rest, head · restᵀ: the rest is an explicit neutral's rotation, or
    // the target's own (near-frontal) rotation, so the target takes the actor's pose; never the
    // first frame, so a session that starts turned shows the turn at once.
    mat3ToEuler(mat3Mul(this.#rotT, pin ? mat3Transpose(pin, this.#restT) : this.#targetRestT, this.#rot), this.#euler);
    const pose = this.#pose;
    pose[0] = this.#euler[0]!;
    pose[1] = this.#euler[1]!;
    pose[2] = this.#euler[2]!;
    // Position and size against their slow running rests; fit.scale is rest units per pixel.
    const iodPx = c.restIod / Math.max(fit.scale, 1e-9);
    pose[3] = (fit.ca[0]! - c.restPosition[0]!) / iodPx;
    pose[4] = (fit.ca[1]! - c.restPosition[1]!) / iodPx;
    pose[5] = -Math.log(Math.max(fit.scale, 1e-9)) - c.restLogScale;
    const eyes = this.#eyes;
    EYES.forEach((eye, e) => {
      eyes[e] = eyeOpenness(norm, eye) / c.openLevel(e);
      if (this.#actorIris) {
        irisOffset(norm, eye, eyes, 2 + e * 2);
        eyes[2 + e * 2]! -= c.restGaze[e * 2]!;
        eyes[3 + e * 2]! -= c.restGaze[e * 2 + 1]!;
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
    const g = toT.scale * this.#calib.restIod * p.expressionGain;
    const cr = Math.cos(t.roll), sr = Math.sin(t.roll);
    const pts = out.points, sx = this.#props.sx, sy = this.#props.sy;
    // Expression: delta (frontal rest frame, IOD units) → target frame, scaled per region.
    const wts = this.#weights;
    for (let i = 0; i < MESH_POINTS; i++) {
      const w = wts[i]!;
      const dx = d[i * 3]! * w, dy = d[i * 3 + 1]! * w, dz = d[i * 3 + 2]! * w;
      const ex = g * (R[0]! * dx + R[1]! * dy + R[2]! * dz);
      const ey = g * (R[3]! * dx + R[4]! * dy + R[5]! * dz);
      const ez = g * (R[6]! * dx + R[7]! * dy + R[8]! * dz);
      // Into the target's upright face frame, scale, and back.
      const u = (cr * ex + sr * ey) * sx[i]!, v = (-sr * ex + cr * ey) * sy[i]!;
      pts[i * 3] = t.points[i * 3]! + cr * u - sr * v;
      pts[i * 3 + 1] = t.points[i * 3 + 1]! + sr * u + cr * v;
      pts[i * 3 + 2] = t.points[i * 3 + 2]! + ez;
    }
    for (let i = MESH_POINTS * 3; i < LANDMARK_SLOTS * 3; i++) pts[i] = t.points[i]!;
    this.#closeLips(pts);
    driveLids(out, t, eyes, this.#actorIris, p);
    separateLips(pts, t);
    out.exprPoints.set(pts);
    // Head pose about the target's head centre: one to one within the linear range (as shown: the
    // command is the shown angle over what this target's warp shows, #poseComp).
    const D2R = Math.PI / 180, comp = this.#poseComp;
    const yaw = limitAngle(pose[0]!, p.yawLinearDeg * D2R, p.maxYawDeg * D2R);
    const pitch = limitAngle(pose[1]!, p.pitchLinearDeg * D2R, p.maxPitchDeg * D2R);
    const roll = limitAngle(pose[2]!, p.rollLinearDeg * D2R, p.maxRollDeg * D2R);
    out.yawDeg = yaw / D2R;
    out.pitchDeg = pitch / D2R;
    out.rollDeg = roll / D2R;
    this.#command(yaw, pitch, roll, comp);
    const shiftX = softLimit(pose[3]!, p.maxShiftIod) * t.iod, shiftY = softLimit(pose[4]!, p.maxShiftIod) * t.iod;
    const s = Math.exp(softLimit(pose[5]!, p.maxScaleChange));
    transformAbout(pts, this.#relief, this.#center, this.#rot, s, shiftX, shiftY, p.depthScale, pts);
    transformAbout(t.points, this.#relief, this.#center, this.#rot, s, shiftX, shiftY, p.depthScale, out.posePoints);
  }

  /** The rotation commanded for shown angles (radians) through compensation c (3×3), into #rot. */
  #command(yaw: number, pitch: number, roll: number, c: Float64Array): void {
    eulerToMat3(
      c[0]! * yaw + c[1]! * pitch + c[2]! * roll, c[3]! * yaw + c[4]! * pitch + c[5]! * roll, c[6]! * yaw + c[7]! * pitch + c[8]! * roll, this.#rot,
    );
  }

  /** lipZero: the actor's rest has shut lips, so the target's own lip gap is shut too (its share by lipZeroShare). */
  #closeLips(pts: Float64Array): void {
    const lc = this.#lipShut, f = this.#target.lipClose;
    if (!this.#params.lipZero || lc <= 0) return;
    for (let i = 0; i < MESH_POINTS; i++) {
      pts[i * 3]! += lc * f[i * 2]!;
      pts[i * 3 + 1]! += lc * f[i * 2 + 1]!;
    }
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
