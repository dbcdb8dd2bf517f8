/**
 * Lids and gaze for the retargeter: each eye's closure and widening from the
 * actor's calibrated openness ratio (actor-calibration.ts), applied to the
 * target's own lid shape, and the iris shift. Each eye is driven on its own,
 * so a wink closes one target eye.
 */
import { clamp } from './geometry.ts';
import { EYES, type EyeTopology } from './topology.ts';
import type { TargetGeometry } from './face-measure.ts';

export interface LidParams {
  /**
   * Lid calibration. The 468-point model under-reads lids (after its smoothing
   * a full blink bottoms out at 0.55–0.7 of the open gap), so an openness
   * ratio (now / open level) at or under closedRatio means fully closed; at or
   * over openRatio, fully open; linear between.
   */
  blinkClosedRatio: number;
  blinkOpenRatio: number;
  /** The same for the 478-point attention model, whose lids read true (a blink reaches 0.00–0.05). */
  blinkClosedRatioIris: number;
  blinkOpenRatioIris: number;
  /** Widest lid opening relative to the target's neutral. */
  maxEyeWiden: number;
}

/** What the lid model writes per frame (per eye: right, left). */
export interface LidOutput {
  points: Float64Array;
  eyeClosure: Float64Array;
  eyeWiden: Float64Array;
  gaze: Float64Array;
}

/**
 * Lid closure from the actor's openness ratio (now / open level), linear between
 * `open` (no closure) and `closed` (shut).
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
 * eyes: per eye openness ratio (0, 1) then iris offset from rest (x, y per eye, over eye width).
 * Overwrites the lid vertices of `out.points` (already carrying the transferred expression).
 */
export function driveLids(out: LidOutput, t: TargetGeometry, eyes: Float64Array, trueLids: boolean, p: LidParams): void {
  const pts = out.points;
  EYES.forEach((eye, e) => {
    const ratio = eyes[e]!;
    const c = trueLids ? lidClosure(ratio, p.blinkOpenRatioIris, p.blinkClosedRatioIris) : lidClosure(ratio, p.blinkOpenRatio, p.blinkClosedRatio);
    out.eyeClosure[e] = c;
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
    const irisFrac = c > 0 ? closeLid(pts, eye, c) : 0;
    const scale = t.eyeWidth[e]!;
    out.gaze[e * 2] = clamp(eyes[2 + e * 2]!, -0.12, 0.12) * scale * (1 - c);
    out.gaze[e * 2 + 1] = clamp(eyes[3 + e * 2]!, -0.06, 0.06) * scale * (1 - irisFrac);
  });
}

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
