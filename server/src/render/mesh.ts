/**
 * The warp mesh: the face triangulation (canonical 898-triangle mesh, or a
 * Delaunay fallback). Triangles spanning the mouth opening are replaced by a
 * strip between the inner lips (which opens with the jaw), those over each eye
 * opening by a fan around the iris (which turns with the gaze). The mesh is
 * extended past the face by four anchor rings:
 *   ring 1 just outside the face oval (hair line, ears, jaw) moves with the head,
 *   ring 2 further out moves with a fraction of the head motion,
 *   ring 3 on the image border and ring 4 far outside never move, so the
 *   border maps onto itself (nothing is sampled from outside the image) and
 *   the background away from the head stays put.
 * Consecutive rings are joined by quad strips, so the extension never folds.
 */
import { readFile } from 'node:fs/promises';
import { canonicalMeshPath, type CanonicalMesh } from '../../../models/manifest.ts';
import { delaunay } from './delaunay.ts';
import { EYES, FACE_OVAL, LIPS_LOWER_INNER, LIPS_UPPER_INNER, MESH_POINTS } from './topology.ts';

export const LANDMARK_SLOTS = 478;
export const RING_SIZE = FACE_OVAL.length;
export const RING1 = LANDMARK_SLOTS;
export const RING2 = LANDMARK_SLOTS + RING_SIZE;
export const RING3 = LANDMARK_SLOTS + 2 * RING_SIZE;
export const RING4 = LANDMARK_SLOTS + 3 * RING_SIZE;
export const VERTEX_COUNT = LANDMARK_SLOTS + 4 * RING_SIZE;

/** How far out the rings sit, as multiples of the oval's radius along each ray. */
export const RING1_SCALE = 1.3;
export const RING2_SCALE = 1.85;

export interface RenderMesh {
  /** Vertex triples; face triangles first (faceCount of them), then ring strips. */
  triangles: Uint32Array;
  faceCount: number;
  /** Index of the first hole-fill triangle (mouth strip, eye fans); they end at faceCount. */
  holeStart: number;
  /** 'canonical' when the canonical mesh's triangles were used, else 'delaunay'. */
  source: 'canonical' | 'delaunay';
  /** 1-ring neighbours of each landmark (CSR). */
  adjStart: Uint32Array;
  adjList: Uint32Array;
}

/**
 * The canonical face mesh's 898 triangles from models/out (built by
 * `npm run build:models`), or null when that file is missing or malformed.
 */
export async function loadCanonicalTriangles(dir?: string): Promise<Uint32Array | null> {
  try {
    const mesh = JSON.parse(await readFile(canonicalMeshPath(dir), 'utf8')) as Partial<CanonicalMesh>;
    const t = mesh.triangles;
    if (!Array.isArray(t) || t.length % 3 !== 0 || t.some((v) => !Number.isInteger(v) || v < 0 || v >= MESH_POINTS)) return null;
    return Uint32Array.from(t);
  } catch {
    return null;
  }
}

/** The canonical face mesh's 468 vertices (canonical units, y up) from models/out, or null. */
export async function loadCanonicalVertices(dir?: string): Promise<Float64Array | null> {
  try {
    const v = (JSON.parse(await readFile(canonicalMeshPath(dir), 'utf8')) as Partial<CanonicalMesh>).vertices;
    if (!Array.isArray(v) || v.length !== MESH_POINTS * 3 || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) return null;
    return Float64Array.from(v);
  } catch {
    return null;
  }
}

/** Delaunay over the 468 landmarks' x,y: the fallback face triangulation. */
export function delaunayFaceTriangles(points: ArrayLike<number>): Uint32Array {
  const xs = new Float64Array(MESH_POINTS), ys = new Float64Array(MESH_POINTS);
  for (let i = 0; i < MESH_POINTS; i++) {
    xs[i] = points[i * 3]!;
    ys[i] = points[i * 3 + 1]!;
  }
  return delaunay(xs, ys);
}

function stripBetween(a: readonly number[], b: readonly number[], out: number[]): void {
  for (let k = 0; k + 1 < a.length; k++) {
    const p = a[k]!, q = a[k + 1]!, r = b[k + 1]!, s = b[k]!;
    if (p !== q && q !== r && r !== p) out.push(p, q, r);
    if (p !== r && r !== s && s !== p) out.push(p, r, s);
  }
}

/**
 * Builds the warp mesh. faceTris are triangles over landmark ids 0..467; any
 * that lie entirely on one eye contour or on the inner-lip contour span a hole
 * and are replaced by the hole strips.
 */
export function buildRenderMesh(faceTris: Uint32Array, source: 'canonical' | 'delaunay'): RenderMesh {
  const holeSets = [new Set([...LIPS_UPPER_INNER, ...LIPS_LOWER_INNER]), ...EYES.map((e) => new Set([...e.upper, ...e.lower]))];
  const tris: number[] = [];
  for (let t = 0; t < faceTris.length; t += 3) {
    const a = faceTris[t]!, b = faceTris[t + 1]!, c = faceTris[t + 2]!;
    if (a >= MESH_POINTS || b >= MESH_POINTS || c >= MESH_POINTS) throw new TypeError(`face triangle ${t / 3} uses vertex ≥ ${MESH_POINTS}`);
    if (holeSets.some((s) => s.has(a) && s.has(b) && s.has(c))) continue;
    tris.push(a, b, c);
  }
  const holeStart = tris.length / 3;
  stripBetween(LIPS_UPPER_INNER, LIPS_LOWER_INNER, tris);
  // Eyes: a fan around the iris slot, so moving that vertex turns the eyeball (gaze).
  for (const eye of EYES) {
    for (let k = 0; k + 1 < eye.upper.length; k++) {
      tris.push(eye.iris, eye.upper[k]!, eye.upper[k + 1]!);
      tris.push(eye.iris, eye.lower[k + 1]!, eye.lower[k]!);
    }
  }
  const faceCount = tris.length / 3;
  const oval = [...FACE_OVAL, FACE_OVAL[0]!];
  const ring = (base: number) => [...FACE_OVAL.map((_, k) => base + k), base];
  stripBetween(oval, ring(RING1), tris);
  stripBetween(ring(RING1), ring(RING2), tris);
  stripBetween(ring(RING2), ring(RING3), tris);
  stripBetween(ring(RING3), ring(RING4), tris);

  const nb: Set<number>[] = Array.from({ length: MESH_POINTS }, () => new Set<number>());
  for (let t = 0; t < faceCount * 3; t += 3) {
    const v = [tris[t]!, tris[t + 1]!, tris[t + 2]!];
    for (const a of v) for (const b of v) if (a !== b && a < MESH_POINTS && b < MESH_POINTS) nb[a]!.add(b);
  }
  const adjStart = new Uint32Array(MESH_POINTS + 1);
  const list: number[] = [];
  for (let i = 0; i < MESH_POINTS; i++) {
    adjStart[i] = list.length;
    list.push(...nb[i]!);
  }
  adjStart[MESH_POINTS] = list.length;
  return { triangles: Uint32Array.from(tris), faceCount, holeStart, source, adjStart, adjList: Uint32Array.from(list) };
}

/**
 * Places the anchor rings for a face whose landmarks (stride 3) sit in a
 * size×size image; writes x,y of ring vertices into pts2 (stride 2, VERTEX_COUNT).
 */
export function placeRings(landmarks: ArrayLike<number>, size: number, pts2: Float32Array): void {
  let cx = 0, cy = 0;
  for (const i of FACE_OVAL) {
    cx += landmarks[i * 3]!;
    cy += landmarks[i * 3 + 1]!;
  }
  cx /= RING_SIZE;
  cy /= RING_SIZE;
  FACE_OVAL.forEach((i, k) => {
    const dx = landmarks[i * 3]! - cx, dy = landmarks[i * 3 + 1]! - cy;
    // Distance along the ray to the image border (from the oval centre), and to a square well outside it.
    const tx = dx > 0 ? (size - cx) / dx : dx < 0 ? -cx / dx : Infinity;
    const ty = dy > 0 ? (size - cy) / dy : dy < 0 ? -cy / dy : Infinity;
    // Faces reaching the border get their rings squeezed in between (ring 3 always sits on the border).
    const t3 = Math.max(1.1, Math.min(tx, ty));
    const t4 = Math.max((2 * size) / Math.max(Math.abs(dx), Math.abs(dy), 1e-6), t3 * 1.5);
    const t2 = Math.min(RING2_SCALE, 1 + 0.85 * (t3 - 1));
    const t1 = Math.min(RING1_SCALE, 1 + 0.6 * (t2 - 1));
    pts2[(RING1 + k) * 2] = cx + dx * t1;
    pts2[(RING1 + k) * 2 + 1] = cy + dy * t1;
    pts2[(RING2 + k) * 2] = cx + dx * t2;
    pts2[(RING2 + k) * 2 + 1] = cy + dy * t2;
    pts2[(RING3 + k) * 2] = cx + dx * t3;
    pts2[(RING3 + k) * 2 + 1] = cy + dy * t3;
    pts2[(RING4 + k) * 2] = cx + dx * t4;
    pts2[(RING4 + k) * 2 + 1] = cy + dy * t4;
  });
}

/**
 * Laplacian smoothing of the landmarks' depth over the mesh (in place). The
 * face-mesh z is steep at the silhouette; rotating with it folds the thin
 * triangles along the oval. A smoothed depth keeps parallax on the nose and
 * brows but turns the sides like a rounder, softer head.
 */
export function smoothDepth(points: Float64Array, mesh: RenderMesh, iterations = 30, lambda = 0.6): void {
  const z = new Float64Array(MESH_POINTS);
  for (let i = 0; i < MESH_POINTS; i++) z[i] = points[i * 3 + 2]!;
  const next = new Float64Array(MESH_POINTS);
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < MESH_POINTS; i++) {
      const a = mesh.adjStart[i]!, b = mesh.adjStart[i + 1]!;
      if (b === a) {
        next[i] = z[i]!;
        continue;
      }
      let m = 0;
      for (let k = a; k < b; k++) m += z[mesh.adjList[k]!]!;
      m /= b - a;
      next[i] = z[i]! + lambda * (m - z[i]!);
    }
    z.set(next);
  }
  for (let i = 0; i < MESH_POINTS; i++) points[i * 3 + 2] = z[i]!;
}

/**
 * Expression gain per landmark: 1 inside the face, damped on the silhouette
 * (oval) and its neighbours except toward the chin, where the jaw really moves.
 */
export function silhouetteWeights(points: ArrayLike<number>, mesh: RenderMesh, roll: number): Float64Array {
  const w = new Float64Array(MESH_POINTS).fill(1);
  let cx = 0, cy = 0;
  for (const i of FACE_OVAL) {
    cx += points[i * 3]!;
    cy += points[i * 3 + 1]!;
  }
  cx /= FACE_OVAL.length;
  cy /= FACE_OVAL.length;
  const downX = -Math.sin(roll), downY = Math.cos(roll);
  const chin = (i: number): number => {
    const dx = points[i * 3]! - cx, dy = points[i * 3 + 1]! - cy;
    const c = (dx * downX + dy * downY) / (Math.hypot(dx, dy) || 1);
    const t = Math.min(1, Math.max(0, (c - 0.3) / 0.5));
    return t * t * (3 - 2 * t);
  };
  for (const i of FACE_OVAL) {
    for (let k = mesh.adjStart[i]!; k < mesh.adjStart[i + 1]!; k++) {
      const j = mesh.adjList[k]!;
      w[j] = Math.min(w[j]!, 0.6 + 0.4 * chin(j));
    }
  }
  for (const i of FACE_OVAL) w[i] = 0.25 + 0.75 * chin(i);
  return w;
}

export function holeTriangleStart(mesh: RenderMesh): number {
  return mesh.holeStart;
}

/**
 * Draw order before depth sorting: triangle indices by position, the ring
 * strips first (the hair, neck and background around the head stay under the
 * face wherever the driven face overlaps them), then the face triangles, which
 * the renderer sorts far to near every frame.
 */
export function initialDrawOrder(mesh: RenderMesh): Uint32Array<ArrayBuffer> {
  const n = mesh.triangles.length / 3, rings = n - mesh.faceCount;
  const order = new Uint32Array(n);
  for (let k = 0; k < n; k++) order[k] = k < rings ? mesh.faceCount + k : k - rings;
  return order;
}
