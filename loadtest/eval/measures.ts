/**
 * Per-pair fidelity measures of a reenactment, from per-frame grades of the
 * actor and of the output taken by one grader (our tracker or the independent
 * dlib one). All lengths are over the grader's inter-ocular distance, so the
 * numbers are absolute (a shut mouth reads 0 for every face) and comparable
 * across people, sizes and graders.
 */

import { median } from '../../server/src/util/stats.ts';
import { pearson as seriesPearson } from '../../server/src/render/fidelity.ts';

/** What a grader reads from one frame. */
export interface Grade {
  /** Inner-lip gap over the inter-ocular distance (0 = lips shut). */
  mouth: number;
  /** Lid aperture over eye width, subject's right then left eye. */
  eyeR: number;
  eyeL: number;
  /** Head pose, degrees (this project's convention: shared/tracking.ts HeadPose). */
  yaw: number;
  pitch: number;
  roll: number;
  /** Rigid points (x, y interleaved, pixels) for jitter, and the inter-ocular distance in pixels. */
  rigid: Float64Array;
  iod: number;
}

export interface PairMeasures {
  frames: number;
  /** Share of output frames where the grader found a face. */
  detection: number;
  mouthR: number;
  /** Median |output − actor| mouth gap, inter-ocular distances. */
  mouthAbsErr: number;
  /** Share of frames, where the actor's mouth is clearly shut or clearly open, in which the output agrees. */
  openAgree: number;
  eyeRR: number;
  eyeLR: number;
  /** Mean absolute pose error per axis after removing the pair's constant offset (the target's own rest pose), degrees. */
  yawErr: number;
  pitchErr: number;
  rollErr: number;
  /** Least-squares slope output-on-actor per axis: 1 is full transfer, < 1 is damped. */
  yawGain: number;
  pitchGain: number;
  /** Output jitter over the actor's (median frame-to-frame acceleration of rigid points). */
  jitterRatio: number;
}

/** Open/closed: the actor's mouth counts as clearly shut under SHUT and clearly open over OPEN; the output is judged at the midpoint. */
export const MOUTH_SHUT = 0.03;
export const MOUTH_OPEN = 0.08;

/** Pearson r over the frames both series have; a flat series (a mouth that never moves) correlates 0, not NaN. */
export function pearson(a: readonly number[], b: readonly number[]): number {
  const r = seriesPearson(a, b);
  if (!Number.isNaN(r)) return r;
  let n = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i]) && Number.isFinite(b[i])) n++;
  return n >= 3 ? 0 : Number.NaN;
}

export { median };

/** Pose gain is only defined where the actor moves: this many degrees of standard deviation at least. */
const GAIN_MIN_SD_DEG = 3;

function slope(x: readonly number[], y: readonly number[]): number {
  let n = 0, mx = 0, my = 0;
  for (let i = 0; i < x.length; i++) if (Number.isFinite(x[i]) && Number.isFinite(y[i])) { mx += x[i]!; my += y[i]!; n++; }
  if (n < 3) return Number.NaN;
  mx /= n;
  my /= n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i]) || !Number.isFinite(y[i])) continue;
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
  }
  return n > 2 && Math.sqrt(sxx / n) >= GAIN_MIN_SD_DEG ? sxy / sxx : Number.NaN;
}

/** Mean absolute error after removing the median difference (the pair's constant pose offset). */
function offsetFreeMae(a: readonly number[], b: readonly number[]): number {
  const d: number[] = [];
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i]) && Number.isFinite(b[i])) d.push(b[i]! - a[i]!);
  if (!d.length) return Number.NaN;
  const m = median(d);
  return d.reduce((s, x) => s + Math.abs(x - m), 0) / d.length;
}

/** Median over frames of the RMS second difference of the rigid points, over inter-ocular distance. */
export function jitter(grades: readonly (Grade | null)[]): number {
  const acc: number[] = [];
  for (let t = 1; t + 1 < grades.length; t++) {
    const a = grades[t - 1], b = grades[t], c = grades[t + 1];
    if (!a || !b || !c) continue;
    let ss = 0;
    for (let k = 0; k < b.rigid.length; k++) ss += (c.rigid[k]! - 2 * b.rigid[k]! + a.rigid[k]!) ** 2;
    acc.push(Math.sqrt(ss / (b.rigid.length / 2)) / b.iod);
  }
  return median(acc);
}

/** Eye correlation is only defined where the actor's lids move (a blink, a squint): this standard deviation of openness at least. */
const EYE_MIN_SD = 0.015;

function sd(x: readonly number[]): number {
  const v = x.filter(Number.isFinite);
  if (v.length < 3) return 0;
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
}

function eyeCorr(a: readonly number[], b: readonly number[]): number {
  return sd(a) >= EYE_MIN_SD ? pearson(a, b) : Number.NaN;
}

const series = (gs: readonly (Grade | null)[], f: (g: Grade) => number): number[] => gs.map((g) => (g ? f(g) : Number.NaN));

export function measurePair(actor: readonly (Grade | null)[], output: readonly (Grade | null)[]): PairMeasures {
  if (actor.length !== output.length) throw new TypeError(`actor has ${actor.length} grades, output ${output.length}`);
  const am = series(actor, (g) => g.mouth), om = series(output, (g) => g.mouth);
  const errs: number[] = [];
  let agree = 0, judged = 0;
  for (let i = 0; i < am.length; i++) {
    if (!Number.isFinite(am[i]) || !Number.isFinite(om[i])) continue;
    errs.push(Math.abs(om[i]! - am[i]!));
    const a = am[i]!;
    if (a > MOUTH_SHUT && a < MOUTH_OPEN) continue;
    judged++;
    if (a >= MOUTH_OPEN === om[i]! >= (MOUTH_SHUT + MOUTH_OPEN) / 2) agree++;
  }
  const ay = series(actor, (g) => g.yaw), oy = series(output, (g) => g.yaw);
  const ap = series(actor, (g) => g.pitch), op = series(output, (g) => g.pitch);
  const ja = jitter(actor), jo = jitter(output);
  return {
    frames: output.length,
    detection: output.filter((g) => g !== null).length / Math.max(output.length, 1),
    mouthR: pearson(am, om),
    mouthAbsErr: median(errs),
    openAgree: judged ? agree / judged : Number.NaN,
    eyeRR: eyeCorr(series(actor, (g) => g.eyeR), series(output, (g) => g.eyeR)),
    eyeLR: eyeCorr(series(actor, (g) => g.eyeL), series(output, (g) => g.eyeL)),
    yawErr: offsetFreeMae(ay, oy),
    pitchErr: offsetFreeMae(ap, op),
    rollErr: offsetFreeMae(series(actor, (g) => g.roll), series(output, (g) => g.roll)),
    yawGain: slope(ay, oy),
    pitchGain: slope(ap, op),
    jitterRatio: ja > 0 ? jo / ja : Number.NaN,
  };
}

/** The lower of the two eyes' correlations where both are defined, else the defined one. */
function worseEye(m: PairMeasures): number {
  if (Number.isFinite(m.eyeRR) && Number.isFinite(m.eyeLR)) return Math.min(m.eyeRR, m.eyeLR);
  return Number.isFinite(m.eyeRR) ? m.eyeRR : m.eyeLR;
}

/** A bar each pair should meet (the goals). */
export interface Bar {
  name: string;
  value: (m: PairMeasures) => number;
  /** true when higher is better. */
  higher: boolean;
  goal: number;
}

export const BARS: readonly Bar[] = [
  { name: 'mouth r', value: (m) => m.mouthR, higher: true, goal: 0.9 },
  { name: 'open/closed agreement', value: (m) => m.openAgree, higher: true, goal: 0.85 },
  { name: 'mouth abs err (IOD)', value: (m) => m.mouthAbsErr, higher: false, goal: 0.05 },
  { name: 'eye r (worse eye)', value: (m) => worseEye(m), higher: true, goal: 0.8 },
  { name: 'pose err (worst axis, °)', value: (m) => Math.max(m.yawErr, m.pitchErr, m.rollErr), higher: false, goal: 2 },
  { name: 'yaw gain', value: (m) => m.yawGain, higher: true, goal: 0.9 },
  { name: 'jitter ratio', value: (m) => m.jitterRatio, higher: false, goal: 1.2 },
  { name: 'detection', value: (m) => m.detection, higher: true, goal: 1 },
];

export interface BarSummary {
  bar: Bar;
  median: number;
  worst: number;
  worstPair: string;
  /** Share of pairs meeting the goal, over the pairs where the measure is defined. */
  share: number;
  /** Pairs where the measure is defined (pose gain needs head motion; open/closed needs clear states). */
  defined: number;
}

export function summarise(pairs: ReadonlyMap<string, PairMeasures>): BarSummary[] {
  return BARS.map((bar) => {
    let worst = bar.higher ? Infinity : -Infinity, worstPair = '', met = 0, defined = 0;
    const vals: number[] = [];
    for (const [name, m] of pairs) {
      const v = bar.value(m);
      if (!Number.isFinite(v)) continue;
      defined++;
      vals.push(v);
      if (bar.higher ? v >= bar.goal : v <= bar.goal) met++;
      if (bar.higher ? v < worst : v > worst) {
        worst = v;
        worstPair = name;
      }
    }
    return { bar, median: median(vals), worst: defined ? worst : Number.NaN, worstPair, share: defined ? met / defined : Number.NaN, defined };
  });
}

/** All bars met together: share of pairs. */
export function shareMeetingAll(pairs: ReadonlyMap<string, PairMeasures>, bars: readonly Bar[] = BARS): number {
  let n = 0;
  const meets = (b: Bar, m: PairMeasures): boolean => {
    const v = b.value(m);
    return !Number.isFinite(v) || (b.higher ? v >= b.goal : v <= b.goal);
  };
  // An undefined measure (no head motion to gain on) does not fail a pair.
  for (const m of pairs.values()) if (bars.every((b) => meets(b, m))) n++;
  return pairs.size ? n / pairs.size : 0;
}
