/**
 * The Renderer seam and the default geometric renderer.
 *
 * A Renderer turns the actor's per-frame FaceTrack into a frame of the
 * enrolled target wearing the actor's expression and head pose. The geometric
 * renderer does it in three steps: (1) a dense warp field from the face mesh
 * (retargeted landmarks + anchor rings), (2) bilinear sampling of the target's
 * reference frame through it, (3) synthesis of what a warp cannot show:
 * closing lids and the mouth interior. A learned generator (e.g. a
 * LivePortrait-style ONNX model) implements the same interface.
 *
 * Per frame nothing is allocated except what the retargeter's input arrays
 * force and the mouth painters' per-call pixel visitors (one small closure
 * each); all buffers are sized at enroll().
 */
import type { FaceTrack } from '../../../shared/tracking.ts';
import { rootLogger, type Logger } from '../logger.ts';
import { ContourFrame } from './contour.ts';
import { InvalidStateError, RenderError } from './errors.ts';
import { measureEye, paintLid, type EyeAppearance } from './eyes.ts';
import { targetGeometry, type TargetGeometry } from './face-measure.ts';
import { smoothstep } from './geometry.ts';
import {
  buildRenderMesh, delaunayFaceTriangles, initialDrawOrder, LANDMARK_SLOTS, loadCanonicalTriangles, loadCanonicalVertices, holeTriangleStart, placeRings, silhouetteWeights, smoothDepth, RING1, RING2, RING3, RING4, RING_SIZE, VERTEX_COUNT, type RenderMesh,
} from './mesh.ts';
import { MouthLayer } from './mouth-layer.ts';
import { warpTriangles, type RgbaImage } from './raster.ts';
import type { GpuWarp } from './gpu-warp.ts';
import { frontalCanonical } from './actor-calibration.ts';
import { DEFAULT_RETARGET, LID_TRAVEL, Retargeter, type DriveState, type DrivenFrame, type RetargetParams } from './retarget.ts';
import type { EnrolledTarget } from './target.ts';
import { EYES, FACE_OVAL } from './topology.ts';

/** What one render() reports. */
export interface RenderInfo {
  state: DriveState;
  /** Time spent in render(), ms. */
  ms: number;
  /** Transferred head rotation after limits, degrees. */
  yawDeg: number;
  pitchDeg: number;
  rollDeg: number;
  /** Lid closure per eye (right, left) and mouth-interior strength, 0..1. */
  eyeClosure: [number, number];
  mouthFill: number;
}

/** Every renderer, geometric or learned, implements this. */
export interface Renderer {
  readonly kind: string;
  /** Output side in pixels; render() writes size×size RGBA. */
  readonly size: number;
  readonly enrolled: boolean;
  /** Adopts a target (from enrollTarget()); replaces any previous one. */
  enroll(target: EnrolledTarget): Promise<void>;
  /** Renders one frame for the actor's track (null or landmarks null = no face) into out (size*size*4 bytes). */
  render(actor: FaceTrack | null, out: Uint8Array, timeMs?: number): Promise<RenderInfo>;
  /** Re-captures the actor's neutral from the next steady frames. */
  resetNeutral(): void;
  close(): void;
}

export interface GeometricRendererOptions {
  size: number;
  /** 'canonical' (default; falls back to 'delaunay' when models/out lacks the mesh) or 'delaunay'. */
  triangulation?: 'canonical' | 'delaunay';
  modelsDir?: string;
  retarget?: Partial<RetargetParams>;
  /** Mouth-library candidates per frame (clip targets). Default 5. */
  mouthCandidates?: number;
  logger?: Logger;
}

/** Enrolled-target state: everything render() needs, sized once. */
interface Scene {
  target: EnrolledTarget;
  geo: TargetGeometry;
  mesh: RenderMesh;
  srcPts: Float32Array;
  retarget: Retargeter;
  eyes: EyeAppearance[];
  /** Per ring vertex: how much of the head motion rings 1 and 2 follow. */
  ringFollow: Float64Array;
  /** Orientation (±1) of each face triangle in the source; 0 for the hole fills (not checked). */
  srcSign: Int8Array;
}

export class GeometricRenderer implements Renderer {
  readonly kind = 'geometric';
  readonly size: number;
  readonly #faceTris: Uint32Array | null;
  /** The canonical face in image axes: the actor's head rotation is measured against it. */
  readonly #frontal: Float64Array | null;
  readonly #opts: GeometricRendererOptions;
  readonly #logger: Logger;
  readonly #dstPts = new Float32Array(VERTEX_COUNT * 2);
  readonly #outImg: RgbaImage;
  readonly #eyeFrames = [new ContourFrame(), new ContourFrame()];
  readonly #mouth: MouthLayer;
  #order = new Uint32Array(0);
  #gpu: GpuWarp | null = null;
  #depth = new Float64Array(0);
  #scene: Scene | null = null;
  #closed = false;

  private constructor(opts: GeometricRendererOptions, faceTris: Uint32Array | null, frontal: Float64Array | null, logger: Logger) {
    this.size = opts.size;
    this.#opts = { ...opts };
    this.#faceTris = faceTris;
    this.#frontal = frontal;
    this.#logger = logger;
    this.#outImg = { width: opts.size, height: opts.size, data: new Uint8Array(0) };
    this.#mouth = new MouthLayer(opts.size);
  }

  static async create(opts: GeometricRendererOptions): Promise<GeometricRenderer> {
    if (!Number.isInteger(opts.size) || opts.size < 64 || opts.size > 2048) throw new TypeError(`size must be an integer in 64..2048, got ${String(opts.size)}`);
    const logger = (opts.logger ?? rootLogger).child('renderer');
    let tris: Uint32Array | null = null;
    if ((opts.triangulation ?? 'canonical') === 'canonical') {
      tris = await loadCanonicalTriangles(opts.modelsDir);
      if (!tris) logger.warn('canonical face mesh unavailable; using a Delaunay triangulation (run npm run build:models)');
    }
    const vertices = await loadCanonicalVertices(opts.modelsDir);
    if (!vertices) logger.warn('canonical face vertices unavailable; the first face seen is taken as frontal (run npm run build:models)');
    return new GeometricRenderer(opts, tris, vertices && frontalCanonical(vertices), logger);
  }

  get enrolled(): boolean {
    return this.#scene !== null;
  }

  /** The enrolled target (InvalidStateError before enroll()). */
  get target(): EnrolledTarget {
    if (!this.#scene) throw new InvalidStateError('no target enrolled');
    return this.#scene.target;
  }

  /** Last frame's warp vertices (x, y in output pixels) and the mesh, for debugging overlays. */
  get debugMesh(): { vertices: Float32Array; triangles: Uint32Array; source: Float32Array } | null {
    const sc = this.#scene;
    return sc ? { vertices: this.#dstPts, triangles: sc.mesh.triangles, source: sc.srcPts } : null;
  }

  get meshSource(): 'canonical' | 'delaunay' | null {
    return this.#scene?.mesh.source ?? null;
  }

  enroll(target: EnrolledTarget): Promise<void> {
    try {
      this.enrollSync(target);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  enrollSync(target: EnrolledTarget): void {
    this.#assertOpen();
    if (target.size !== this.size) throw new RenderError('E_RENDER_BAD_ARG', `target was enrolled at ${target.size}px, renderer renders ${this.size}px`);
    const pts = Float64Array.from(target.landmarks);
    const faceTris = this.#faceTris ?? delaunayFaceTriangles(pts);
    const mesh = buildRenderMesh(faceTris, this.#faceTris ? 'canonical' : 'delaunay');
    smoothDepth(pts, mesh);
    const geo = targetGeometry(pts, target.hasIris);
    const srcPts = new Float32Array(VERTEX_COUNT * 2);
    for (let i = 0; i < LANDMARK_SLOTS; i++) {
      srcPts[i * 2] = pts[i * 3]!;
      srcPts[i * 2 + 1] = pts[i * 3 + 1]!;
    }
    placeRings(pts, this.size, srcPts);
    // The outer two rings never move: fix them in the destination once.
    this.#dstPts.set(srcPts.subarray(RING3 * 2, (RING4 + RING_SIZE) * 2), RING3 * 2);
    const eyes = EYES.map((e) => measureEye(target.image, pts, e));
    this.#mouth.enroll(target.image, pts, eyes, geo.iod, target.mouthLibrary, this.#opts.mouthCandidates ?? 5);
    const triCount = mesh.triangles.length / 3;
    this.#order = initialDrawOrder(mesh);
    this.#depth = new Float64Array(triCount);
    // Fold repair watches the triangles along the silhouette (where tracker points slide).
    const weights = silhouetteWeights(pts, mesh, geo.roll);
    const srcSign = new Int8Array(mesh.faceCount);
    const holes = holeTriangleStart(mesh);
    for (let t = 0; t < holes; t++) {
      const near = [0, 1, 2].some((k) => weights[mesh.triangles[t * 3 + k]!]! < 1);
      srcSign[t] = near ? Math.sign(triArea(srcPts, 2, mesh.triangles, t)) : 0;
    }
    const ringFollow = new Float64Array(RING_SIZE * 2);
    const cx = FACE_OVAL.reduce((a, i) => a + pts[i * 3]!, 0) / RING_SIZE, cy = FACE_OVAL.reduce((a, i) => a + pts[i * 3 + 1]!, 0) / RING_SIZE;
    FACE_OVAL.forEach((i, k) => {
      const dx = pts[i * 3]! - cx, dy = pts[i * 3 + 1]! - cy;
      const down = smoothstep(0.2, 0.8, (-Math.sin(geo.roll) * dx + Math.cos(geo.roll) * dy) / (Math.hypot(dx, dy) || 1));
      ringFollow[k * 2] = 1 - 0.6 * down;
      ringFollow[k * 2 + 1] = 0.35 - 0.25 * down;
    });
    this.#scene = { target, geo, mesh, srcPts, retarget: new Retargeter(geo, this.#opts.retarget, weights, this.#frontal ?? undefined, target.landmarks, target.poseGain), eyes, srcSign, ringFollow };
    this.#logger.debug('target enrolled', { mesh: mesh.source, triangles: triCount, library: this.#mouth.librarySize });
  }

  /**
   * Lip zero (RetargetParams.lipZero) on or off, from the next frame on; it survives
   * target switches. The actor's neutral is kept.
   */
  setLipZero(on: boolean): void {
    this.#assertOpen();
    this.#opts.retarget = { ...this.#opts.retarget, lipZero: on };
    if (this.#scene) this.#scene.retarget.lipZero = on;
  }

  get lipZero(): boolean {
    return this.#opts.retarget?.lipZero ?? DEFAULT_RETARGET.lipZero;
  }

  resetNeutral(): void {
    this.#assertOpen();
    this.#scene?.retarget.resetNeutral();
  }

  /** Takes this actor frame as the neutral immediately. */
  setNeutral(track: FaceTrack): void {
    this.#assertOpen();
    this.#scene?.retarget.setNeutral(track);
  }

  /**
   * The warp on the GPU (render() then warps there; renderSync() always on the CPU); null
   * turns it off. The caller owns the GpuWarp (one can serve many renderers).
   */
  setGpuWarp(gpu: GpuWarp | null): void {
    this.#gpu = gpu;
  }

  async render(actor: FaceTrack | null, out: Uint8Array, timeMs?: number): Promise<RenderInfo> {
    const gpu = this.#gpu;
    if (!gpu) return this.renderSync(actor, out, timeMs);
    const t0 = performance.now();
    const { sc, d } = this.#drive(actor, out, timeMs);
    const img = this.#outImg;
    img.data = out;
    try {
      await gpu.warp(sc.target.image, sc.srcPts, img, this.#dstPts, sc.mesh.triangles, this.#order);
      return this.#finish(sc, d, img, t0);
    } finally {
      img.data = new Uint8Array(0);
    }
  }

  /** The synchronous core of render(), warping on the CPU, for worker loops and benchmarks. */
  renderSync(actor: FaceTrack | null, out: Uint8Array, timeMs?: number): RenderInfo {
    const t0 = performance.now();
    return this.#warpSync(this.#drive(actor, out, timeMs), out, t0);
  }

  /**
   * The target's neutral turned by this rotation (degrees), on the CPU; the actor state is kept.
   * For measuring what the warp shows of a turn (pose-gain.ts); `compensated`: commanded over the
   * target's pose gain, as a drive is.
   */
  renderPoseSync(yawDeg: number, pitchDeg: number, rollDeg: number, out: Uint8Array, compensated = false): RenderInfo {
    const t0 = performance.now();
    return this.#warpSync(this.#place(out, (r) => r.posed(yawDeg, pitchDeg, rollDeg, compensated)), out, t0);
  }

  #warpSync({ sc, d }: { sc: Scene; d: DrivenFrame }, out: Uint8Array, t0: number): RenderInfo {
    const img = this.#outImg;
    img.data = out;
    warpTriangles(sc.target.image, sc.srcPts, img, this.#dstPts, sc.mesh.triangles, this.#order);
    try {
      return this.#finish(sc, d, img, t0);
    } finally {
      img.data = new Uint8Array(0);
    }
  }

  /** Retargets the actor's frame and places the warp's destination points and draw order. */
  #drive(actor: FaceTrack | null, out: Uint8Array, timeMs?: number): { sc: Scene; d: DrivenFrame } {
    return this.#place(out, (r) => r.update(actor, timeMs ?? actor?.timeMs ?? 0));
  }

  /** Places the warp's destination points and draw order for the frame the retargeter drives. */
  #place(out: Uint8Array, drive: (r: Retargeter) => DrivenFrame): { sc: Scene; d: DrivenFrame } {
    this.#assertOpen();
    const sc = this.#scene;
    if (!sc) throw new RenderError('E_RENDER_NOT_ENROLLED', 'render() before enroll()');
    if (out.length !== this.size * this.size * 4) throw new RenderError('E_RENDER_BAD_ARG', `out has ${out.length} bytes, expected ${this.size * this.size * 4}`);
    const d = drive(sc.retarget);
    this.#unfold(sc, d.points, d.posePoints);
    const dst = this.#dstPts, src = sc.srcPts, T = sc.geo.points;
    for (let i = 0; i < LANDMARK_SLOTS; i++) {
      dst[i * 2] = d.points[i * 3]!;
      dst[i * 2 + 1] = d.points[i * 3 + 1]!;
    }
    EYES.forEach((eye, e) => {
      dst[eye.iris * 2]! += d.gaze[e * 2]!;
      dst[eye.iris * 2 + 1]! += d.gaze[e * 2 + 1]!;
    });
    // Rings: ring 1 follows the head (hair, ears) but only partly below the chin, where the neck and body
    // stay; ring 2 follows a fraction; rings 3 and 4 are fixed (set at enroll).
    const follow = sc.ringFollow;
    for (let k = 0; k < RING_SIZE; k++) {
      const i = FACE_OVAL[k]!;
      const hx = d.posePoints[i * 3]! - T[i * 3]!, hy = d.posePoints[i * 3 + 1]! - T[i * 3 + 1]!;
      const ex = d.points[i * 3]! - d.posePoints[i * 3]!, ey = d.points[i * 3 + 1]! - d.posePoints[i * 3 + 1]!;
      const f1 = follow[k * 2]!, f2 = follow[k * 2 + 1]!;
      dst[(RING1 + k) * 2] = src[(RING1 + k) * 2]! + f1 * hx + 0.3 * ex;
      dst[(RING1 + k) * 2 + 1] = src[(RING1 + k) * 2 + 1]! + f1 * hy + 0.3 * ey;
      dst[(RING2 + k) * 2] = src[(RING2 + k) * 2]! + f2 * hx;
      dst[(RING2 + k) * 2 + 1] = src[(RING2 + k) * 2 + 1]! + f2 * hy;
    }
    this.#sortFaceTriangles(sc, d.points);
    return { sc, d };
  }

  /** Paints what a warp cannot show (lids, mouth interior) over the warped square. */
  #finish(sc: Scene, d: DrivenFrame, img: RgbaImage, t0: number): RenderInfo {
    // Lids.
    EYES.forEach((eye, e) => {
      const f = this.#eyeFrames[e]!;
      f.set(d.points, eye.upper, eye.lower);
      paintLid(img, f, d.eyeClosure[e]!, d.eyeClosure[e]! * LID_TRAVEL, sc.eyes[e]!);
    });
    const fill = this.#mouth.paint(img, d.points, d.exprPoints);
    return {
      state: d.state, ms: performance.now() - t0, yawDeg: d.yawDeg, pitchDeg: d.pitchDeg, rollDeg: d.rollDeg,
      eyeClosure: [d.eyeClosure[0]!, d.eyeClosure[1]!], mouthFill: fill,
    };
  }

  /**
   * Fold repair: a face triangle whose orientation flipped against the source
   * (the actor's silhouette points slide when it turns, noise near thin
   * triangles) has its vertices pulled halfway back to the pose-only shape,
   * a few rounds at most. Untouched where nothing folds.
   */
  #unfold(sc: Scene, pts: Float64Array, pose: Float64Array): void {
    const tris = sc.mesh.triangles, sign = sc.srcSign;
    for (let round = 0; round < 4; round++) {
      let folded = 0;
      for (let t = 0; t < sign.length; t++) {
        const sg = sign[t]!;
        if (sg === 0 || Math.sign(triArea(pts, 3, tris, t)) === sg) continue;
        folded++;
        for (let k = 0; k < 3; k++) {
          const i = tris[t * 3 + k]!;
          pts[i * 3] = (pts[i * 3]! + pose[i * 3]!) / 2;
          pts[i * 3 + 1] = (pts[i * 3 + 1]! + pose[i * 3 + 1]!) / 2;
        }
      }
      if (folded === 0) return;
    }
  }

  /** Ring triangles first, then face triangles far to near (insertion sort: the order barely changes between frames). */
  #sortFaceTriangles(sc: Scene, pts: Float64Array): void {
    const tris = sc.mesh.triangles, order = this.#order, depth = this.#depth;
    const ringCount = order.length - sc.mesh.faceCount;
    for (let t = 0; t < sc.mesh.faceCount; t++) {
      depth[t] = pts[tris[t * 3]! * 3 + 2]! + pts[tris[t * 3 + 1]! * 3 + 2]! + pts[tris[t * 3 + 2]! * 3 + 2]!;
    }
    for (let k = ringCount + 1; k < order.length; k++) {
      const t = order[k]!, z = depth[t]!;
      let j = k;
      while (j > ringCount && depth[order[j - 1]!]! < z) {
        order[j] = order[j - 1]!;
        j--;
      }
      order[j] = t;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#scene = null;
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidStateError('renderer is closed');
  }
}

/** Twice the signed area of triangle t over points with the given stride. */
function triArea(p: ArrayLike<number>, stride: number, tris: Uint32Array, t: number): number {
  const a = tris[t * 3]! * stride, b = tris[t * 3 + 1]! * stride, c = tris[t * 3 + 2]! * stride;
  return (p[b]! - p[a]!) * (p[c + 1]! - p[a + 1]!) - (p[c]! - p[a]!) * (p[b + 1]! - p[a + 1]!);
}

