/**
 * Online calibration of the actor: what "at rest" means for this person,
 * learnt from everything seen so far instead of captured once from the first
 * frames (an actor who is already talking, smiling or turned at the start
 * would otherwise get a "neutral" that is not neutral for the whole session).
 *
 * - Anchored measures need no calibration: shut lips are a zero gap for
 *   everyone, so the rest shape always has its lips closed (lipClosingField).
 * - The rest shape is an exponentially weighted mean of frontalised frames
 *   (canonical-face space, image axes), each weighted by how shut its mouth
 *   is: frames with lips together dominate, so a talker's rest converges as
 *   soon as the lips meet (every "m", "b", "p" or pause).
 * - Lid openness is scaled per eye by a running upper quantile of that eye's
 *   own openness (eyes are open most of the time; blinks are short), so
 *   neither a blink at the start nor a narrow-eyed person reads as a squint.
 * - Head rotation needs no calibration either: it is measured against the
 *   frontal canonical face (retarget.ts), so a session that starts turned
 *   shows the turn at once.
 * - Head size, position and gaze rest are slow running means.
 *
 * All per-frame work writes into buffers allocated once.
 */
import { clamp, fitSimilarity, mat3Transpose, newSimilarityFit, smoothstep, type SimilarityFit } from './geometry.ts';
import { LANDMARK_SLOTS } from './mesh.ts';
import { eyeOpenness, interOcular, irisOffset, lipClosingField, mouthGap } from './face-measure.ts';
import { EYES, MESH_POINTS, STABLE_POINTS } from './topology.ts';

export interface CalibrationParams {
  /** Memory of the rest shape, position and gaze, ms (an exponential window). */
  restWindowMs: number;
  /** Mouth gaps (over inter-ocular distance) between which a frame's weight falls from 1 to openWeight. */
  shutGap: number;
  openGap: number;
  openWeight: number;
  /** Lid openness history per eye, frames, and the quantile of it taken as "open". */
  lidHistory: number;
  lidQuantile: number;
  /** Until this many frames are seen the open level is at least this share of the population's typical openness. */
  lidPriorFrames: number;
  /** Typical relaxed lid openness (gap over eye width) of the tracker. */
  lidPrior: number;
}

export const DEFAULT_CALIBRATION: Readonly<CalibrationParams> = Object.freeze({
  restWindowMs: 12_000,
  shutGap: 0.02,
  openGap: 0.07,
  openWeight: 0.03,
  lidHistory: 300,
  lidQuantile: 0.75,
  lidPriorFrames: 45,
  lidPrior: 0.28,
});

/**
 * The canonical face mesh in image axes (x right, y down, z away from the camera), centred;
 * the frame in which rest shapes live. Built from the renderer's canonical mesh vertices.
 */
export function frontalCanonical(vertices: ArrayLike<number>): Float64Array {
  const out = new Float64Array(LANDMARK_SLOTS * 3);
  for (let i = 0; i < MESH_POINTS; i++) {
    out[i * 3] = vertices[i * 3]!;
    out[i * 3 + 1] = -vertices[i * 3 + 1]!;
    out[i * 3 + 2] = -vertices[i * 3 + 2]!;
  }
  return out;
}

export class ActorCalibration {
  readonly #p: CalibrationParams;
  /** Frontal reference used to frontalise each frame (canonical mesh in image axes); without one, the first face seen. */
  #frontal: Float64Array | null;
  readonly #fit: SimilarityFit = newSimilarityFit();
  readonly #front = new Float64Array(LANDMARK_SLOTS * 3);
  /** Weighted running mean of frontalised frames, and its lips-shut version (the rest shape). */
  readonly #mean = new Float64Array(LANDMARK_SLOTS * 3);
  readonly #rest = new Float64Array(LANDMARK_SLOTS * 3);
  readonly #field = new Float64Array(MESH_POINTS * 2);
  #weight = 0;
  #frames = 0;
  #restIod = 1;
  // Lids: a ring of openness per eye and its quantile.
  readonly #lids: Float64Array[];
  readonly #open = new Float64Array(2);
  /** Lid samples held (≤ lidHistory); an explicit neutral fills the history. */
  #lidCount = 0;
  // Slow rests: log scale, image position (pixels), gaze.
  #logScale = 0;
  readonly #pos = new Float64Array(2);
  readonly #gaze = new Float64Array(4);
  #restWeight = 0;
  /** An explicit neutral (setNeutral) pins the rest pose; null while the frontal face is the zero. */
  #pinnedRotation: Float64Array | null = null;
  /** Scratch for the lid quantiles. */
  readonly #sorted: Float64Array;

  constructor(frontal: Float64Array | null, params: Partial<CalibrationParams> = {}) {
    if (frontal && frontal.length !== LANDMARK_SLOTS * 3) throw new TypeError(`frontal reference needs ${LANDMARK_SLOTS * 3} coordinates`);
    this.#p = { ...DEFAULT_CALIBRATION, ...params };
    this.#frontal = frontal;
    this.#lids = [new Float64Array(this.#p.lidHistory), new Float64Array(this.#p.lidHistory)];
    this.#sorted = new Float64Array(this.#p.lidHistory);
  }

  get ready(): boolean {
    return this.#frames > 0;
  }

  get frames(): number {
    return this.#frames;
  }

  /** The actor's rest shape (lips shut) in the frontal frame, LANDMARK_SLOTS × 3. Valid once ready. */
  get rest(): Float64Array {
    return this.#rest;
  }

  get restIod(): number {
    return this.#restIod;
  }

  /** Rotation (row-major) of an explicit neutral, or null when the frontal face is the zero. */
  get pinnedRotation(): Float64Array | null {
    return this.#pinnedRotation;
  }

  /** Forget everything learnt; the next frame starts a new calibration. */
  reset(): void {
    this.#weight = 0;
    this.#frames = 0;
    this.#lidCount = 0;
    this.#restWeight = 0;
    this.#pinnedRotation = null;
  }

  /**
   * Adopts this frame as the rest at once, with the weight of a full window (a "this is my
   * neutral" aid; later frames still refine it). Its head rotation becomes the zero.
   */
  pin(raw: Float64Array): void {
    this.reset();
    this.observe(raw, 33);
    this.#weight = this.#p.restWindowMs / 33;
    this.#restWeight = this.#weight;
    // The frontalising fit maps this frame onto the frontal face: its transpose is the head's rotation.
    this.#pinnedRotation = mat3Transpose(this.#fit.rotation, new Float64Array(9));
    // Its lids are open: they fill the history.
    for (let e = 0; e < 2; e++) this.#lids[e]!.fill(this.#lids[e]![0]!);
    this.#lidCount = this.#p.lidHistory;
    this.#updateLids();
  }

  /** Frontalises `raw` (LANDMARK_SLOTS × 3, image pixels) into the frontal frame: returned buffer is reused. */
  frontalise(raw: Float64Array): Float64Array {
    this.#frontal ??= Float64Array.from(raw);
    const fit = fitSimilarity(raw, this.#frontal, STABLE_POINTS, this.#fit);
    for (let i = 0; i < LANDMARK_SLOTS; i++) {
      const x = raw[i * 3]! - fit.ca[0]!, y = raw[i * 3 + 1]! - fit.ca[1]!, z = raw[i * 3 + 2]! - fit.ca[2]!;
      const R = fit.rotation, s = fit.scale;
      this.#front[i * 3] = fit.cb[0]! + s * (R[0]! * x + R[1]! * y + R[2]! * z);
      this.#front[i * 3 + 1] = fit.cb[1]! + s * (R[3]! * x + R[4]! * y + R[5]! * z);
      this.#front[i * 3 + 2] = fit.cb[2]! + s * (R[6]! * x + R[7]! * y + R[8]! * z);
    }
    return this.#front;
  }

  /**
   * Learns from one frame (raw image landmarks with iris slots filled). dtMs is the time since
   * the previous frame.
   */
  observe(raw: Float64Array, dtMs: number): void {
    const p = this.#p;
    const front = this.frontalise(raw);
    const fit = this.#fit;
    const decay = Math.exp(-clamp(dtMs, 1, 1000) / p.restWindowMs);
    // Rest shape: mouth-shut frames dominate.
    const gap = mouthGap(front);
    const w = p.openWeight + (1 - p.openWeight) * (1 - smoothstep(p.shutGap, p.openGap, gap));
    this.#weight = this.#weight * decay + w;
    const k = w / this.#weight;
    const m = this.#mean;
    if (this.#frames === 0) m.set(front);
    else for (let i = 0; i < m.length; i++) m[i] = m[i]! + k * (front[i]! - m[i]!);
    this.#updateRest();
    // Slow rests of size, position and gaze.
    this.#restWeight = this.#restWeight * decay + 1;
    const kr = 1 / this.#restWeight;
    const logS = -Math.log(Math.max(fit.scale, 1e-6));
    if (this.#frames === 0) {
      this.#logScale = logS;
      this.#pos[0] = fit.ca[0]!;
      this.#pos[1] = fit.ca[1]!;
    } else {
      this.#logScale += kr * (logS - this.#logScale);
      this.#pos[0]! += kr * (fit.ca[0]! - this.#pos[0]!);
      this.#pos[1]! += kr * (fit.ca[1]! - this.#pos[1]!);
    }
    EYES.forEach((eye, e) => {
      irisOffset(front, eye, scratch4, 0);
      for (let c = 0; c < 2; c++) {
        const j = e * 2 + c;
        this.#gaze[j] = this.#frames === 0 ? scratch4[c]! : this.#gaze[j]! + kr * (scratch4[c]! - this.#gaze[j]!);
      }
      // Lids: history ring, quantile refreshed every few frames.
      this.#lids[e]![this.#frames % p.lidHistory] = eyeOpenness(front, eye);
    });
    this.#frames++;
    this.#lidCount = Math.min(this.#lidCount + 1, p.lidHistory);
    if (this.#frames <= 8 || this.#frames % 4 === 0) this.#updateLids();
  }

  #updateRest(): void {
    const r = this.#rest;
    r.set(this.#mean);
    // Shut lips are a zero gap for everyone: close whatever gap the mean still has.
    const field = lipClosingField(r, this.#field);
    for (let i = 0; i < MESH_POINTS; i++) {
      r[i * 3]! += field[i * 2]!;
      r[i * 3 + 1]! += field[i * 2 + 1]!;
    }
    this.#restIod = Math.max(interOcular(r), 1e-6);
  }

  #updateLids(): void {
    const p = this.#p;
    const n = this.#lidCount;
    const prior = p.lidPrior * clamp(1 - n / p.lidPriorFrames, 0, 1);
    for (let e = 0; e < 2; e++) this.#open[e] = Math.max(quantile(this.#lids[e]!, n, 1, 0, p.lidQuantile, this.#sorted), prior, 0.02);
  }

  /** The open lid level of eye e (gap over width). */
  openLevel(e: number): number {
    return this.#open[e]!;
  }

  /** The rest log-scale (−log of the frontalising scale) and image position of the rigid centroid. */
  get restLogScale(): number {
    return this.#logScale;
  }

  get restPosition(): Float64Array {
    return this.#pos;
  }

  /** Rest iris offset (x, y per eye, over eye width). */
  get restGaze(): Float64Array {
    return this.#gaze;
  }
}

const scratch4 = new Float64Array(4);

/**
 * The q-quantile (0..1, the sample at floor(q·n)) of n samples read from `src` at
 * offset + k·stride; `scratch` holds at least n values.
 */
function quantile(src: Float64Array, n: number, stride: number, offset: number, q: number, scratch: Float64Array): number {
  const s = scratch.subarray(0, n);
  for (let k = 0; k < n; k++) s[k] = src[offset + k * stride]!;
  s.sort();
  return s[Math.min(n - 1, Math.floor(q * n))]!;
}
