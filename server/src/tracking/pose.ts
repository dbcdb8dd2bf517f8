/**
 * Head pose from a weighted similarity Procrustes fit of the landmarks to MediaPipe's canonical
 * face mesh (Horn's quaternion method), using MediaPipe's Procrustes landmark basis and weights.
 *
 * Frames: the canonical mesh is right-handed with x towards the subject's left (image right for
 * a frontal face), y up and z towards the camera. Image landmarks (x right, y down, z away from
 * the camera) are mapped to (x, -y, -z) before fitting, so the fitted rotation is proper.
 */
import { readFileSync } from 'node:fs';
import { canonicalMeshPath, type CanonicalMesh } from '../../../models/manifest.ts';
import type { HeadPose } from '../../../shared/tracking.ts';

export interface PoseFit {
  /** Row-major 3×3 rotation, canonical → camera (y up). */
  rotation: Float64Array;
  scale: number;
  /** Translation in the y-up frame (pixels): camera = s·R·canonical + t. */
  t: Float64Array;
}

export function loadCanonicalMesh(modelsDir?: string): CanonicalMesh {
  const mesh = JSON.parse(readFileSync(canonicalMeshPath(modelsDir), 'utf8')) as CanonicalMesh;
  if (mesh.vertices.length !== 468 * 3) throw new TypeError(`canonical mesh has ${mesh.vertices.length / 3} vertices, expected 468`);
  return mesh;
}

/** Largest-eigenvalue eigenvector of a symmetric 4×4 matrix (cyclic Jacobi). */
function maxEigenvector4(n: Float64Array): Float64Array {
  const a = Float64Array.from(n);
  const v = new Float64Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
  for (let sweep = 0; sweep < 12; sweep++) {
    let off = 0;
    for (let p = 0; p < 3; p++) for (let q = p + 1; q < 4; q++) off += (a[4 * p + q] ?? 0) ** 2;
    if (off < 1e-18) break;
    for (let p = 0; p < 3; p++) {
      for (let q = p + 1; q < 4; q++) {
        const apq = a[4 * p + q] ?? 0;
        if (Math.abs(apq) < 1e-30) continue;
        const theta = ((a[4 * q + q] ?? 0) - (a[4 * p + p] ?? 0)) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < 4; k++) {
          const akp = a[4 * k + p] ?? 0;
          const akq = a[4 * k + q] ?? 0;
          a[4 * k + p] = c * akp - s * akq;
          a[4 * k + q] = s * akp + c * akq;
        }
        for (let k = 0; k < 4; k++) {
          const apk = a[4 * p + k] ?? 0;
          const aqk = a[4 * q + k] ?? 0;
          a[4 * p + k] = c * apk - s * aqk;
          a[4 * q + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < 4; k++) {
          const vkp = v[4 * k + p] ?? 0;
          const vkq = v[4 * k + q] ?? 0;
          v[4 * k + p] = c * vkp - s * vkq;
          v[4 * k + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  let best = 0;
  for (let i = 1; i < 4; i++) if ((a[5 * i] ?? 0) > (a[5 * best] ?? 0)) best = i;
  return new Float64Array([v[best] ?? 0, v[4 + best] ?? 0, v[8 + best] ?? 0, v[12 + best] ?? 0]);
}

/** Fits camera ≈ s·R·canonical + t over the Procrustes basis. Preallocate one per tracker. */
export class PoseSolver {
  readonly #ids: Int32Array;
  readonly #weights: Float64Array;
  readonly #canon: Float32Array;
  readonly #fit: PoseFit = { rotation: new Float64Array(9), scale: 1, t: new Float64Array(3) };
  readonly #n = new Float64Array(16);

  constructor(mesh: CanonicalMesh) {
    this.#ids = Int32Array.from(mesh.procrustes.landmarks);
    this.#weights = Float64Array.from(mesh.procrustes.weights);
    this.#canon = Float32Array.from(mesh.vertices);
  }

  /** `lm` holds x, y, z image-pixel triples. The returned object is reused by the next call. */
  solve(lm: Float32Array): PoseFit {
    const ids = this.#ids;
    const w = this.#weights;
    const c = this.#canon;
    let sw = 0;
    let ax = 0, ay = 0, az = 0, bx = 0, by = 0, bz = 0;
    for (let k = 0; k < ids.length; k++) {
      const i = ids[k] ?? 0;
      const wk = w[k] ?? 0;
      sw += wk;
      ax += wk * (c[3 * i] ?? 0);
      ay += wk * (c[3 * i + 1] ?? 0);
      az += wk * (c[3 * i + 2] ?? 0);
      bx += wk * (lm[3 * i] ?? 0);
      by -= wk * (lm[3 * i + 1] ?? 0);
      bz -= wk * (lm[3 * i + 2] ?? 0);
    }
    ax /= sw; ay /= sw; az /= sw; bx /= sw; by /= sw; bz /= sw;
    let sxx = 0, sxy = 0, sxz = 0, syx = 0, syy = 0, syz = 0, szx = 0, szy = 0, szz = 0, saa = 0;
    for (let k = 0; k < ids.length; k++) {
      const i = ids[k] ?? 0;
      const wk = w[k] ?? 0;
      const px = (c[3 * i] ?? 0) - ax;
      const py = (c[3 * i + 1] ?? 0) - ay;
      const pz = (c[3 * i + 2] ?? 0) - az;
      const qx = (lm[3 * i] ?? 0) - bx;
      const qy = -(lm[3 * i + 1] ?? 0) - by;
      const qz = -(lm[3 * i + 2] ?? 0) - bz;
      sxx += wk * px * qx; sxy += wk * px * qy; sxz += wk * px * qz;
      syx += wk * py * qx; syy += wk * py * qy; syz += wk * py * qz;
      szx += wk * pz * qx; szy += wk * pz * qy; szz += wk * pz * qz;
      saa += wk * (px * px + py * py + pz * pz);
    }
    const n = this.#n;
    n.set([
      sxx + syy + szz, syz - szy, szx - sxz, sxy - syx,
      syz - szy, sxx - syy - szz, sxy + syx, szx + sxz,
      szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy,
      sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz,
    ]);
    const [q0 = 1, qx = 0, qy = 0, qz = 0] = maxEigenvector4(n);
    const r = this.#fit.rotation;
    r[0] = 1 - 2 * (qy * qy + qz * qz); r[1] = 2 * (qx * qy - qz * q0); r[2] = 2 * (qx * qz + qy * q0);
    r[3] = 2 * (qx * qy + qz * q0); r[4] = 1 - 2 * (qx * qx + qz * qz); r[5] = 2 * (qy * qz - qx * q0);
    r[6] = 2 * (qx * qz - qy * q0); r[7] = 2 * (qy * qz + qx * q0); r[8] = 1 - 2 * (qx * qx + qy * qy);
    // s = Σ w q·(R p) / Σ w |p|² = trace(Rᵀ S') / saa where S'[i][j] = Σ w q_i p_j = S[j][i].
    const dot =
      (r[0] ?? 0) * sxx + (r[1] ?? 0) * syx + (r[2] ?? 0) * szx +
      (r[3] ?? 0) * sxy + (r[4] ?? 0) * syy + (r[5] ?? 0) * szy +
      (r[6] ?? 0) * sxz + (r[7] ?? 0) * syz + (r[8] ?? 0) * szz;
    const s = saa > 0 ? dot / saa : 1;
    this.#fit.scale = s;
    const t = this.#fit.t;
    t[0] = bx - s * ((r[0] ?? 0) * ax + (r[1] ?? 0) * ay + (r[2] ?? 0) * az);
    t[1] = by - s * ((r[3] ?? 0) * ax + (r[4] ?? 0) * ay + (r[5] ?? 0) * az);
    t[2] = bz - s * ((r[6] ?? 0) * ax + (r[7] ?? 0) * ay + (r[8] ?? 0) * az);
    return this.#fit;
  }
}

const DEG = 180 / Math.PI;

/**
 * Euler angles (R = Ry(yaw)·Rx(pitch)·Rz(roll) in the y-up frame), reported with the signs of
 * shared/tracking.ts: +yaw turns the face to the image's right, +pitch looks up, +roll tilts
 * clockwise in the image.
 */
export function poseFromFit(fit: PoseFit): HeadPose {
  const r = fit.rotation;
  const r02 = r[2] ?? 0, r10 = r[3] ?? 0, r11 = r[4] ?? 0, r12 = r[5] ?? 0, r22 = r[8] ?? 1;
  return {
    yaw: Math.atan2(r02, r22) * DEG,
    pitch: Math.asin(Math.max(-1, Math.min(1, r12))) * DEG,
    roll: -Math.atan2(r10, r11) * DEG,
    tx: fit.t[0] ?? 0,
    ty: -(fit.t[1] ?? 0),
    scale: fit.scale,
  };
}

/** Pose-normalised landmarks: canonical-space positions Rᵀ(L − t)/s (y up), written to `out`. */
export function toCanonicalSpace(lm: Float32Array, count: number, fit: PoseFit, out: Float32Array): void {
  const r = fit.rotation;
  const inv = 1 / fit.scale;
  const t0 = fit.t[0] ?? 0, t1 = fit.t[1] ?? 0, t2 = fit.t[2] ?? 0;
  for (let i = 0; i < count; i++) {
    const x = (lm[3 * i] ?? 0) - t0;
    const y = -(lm[3 * i + 1] ?? 0) - t1;
    const z = -(lm[3 * i + 2] ?? 0) - t2;
    out[3 * i] = ((r[0] ?? 0) * x + (r[3] ?? 0) * y + (r[6] ?? 0) * z) * inv;
    out[3 * i + 1] = ((r[1] ?? 0) * x + (r[4] ?? 0) * y + (r[7] ?? 0) * z) * inv;
    out[3 * i + 2] = ((r[2] ?? 0) * x + (r[5] ?? 0) * y + (r[8] ?? 0) * z) * inv;
  }
}

/** The inverse of toCanonicalSpace: image landmarks s·R·c + t (y and z flipped back), written to `out`. */
export function fromCanonicalSpace(canon: Float32Array, count: number, fit: PoseFit, out: Float32Array): void {
  const r = fit.rotation;
  const s = fit.scale;
  const t0 = fit.t[0] ?? 0, t1 = fit.t[1] ?? 0, t2 = fit.t[2] ?? 0;
  for (let i = 0; i < count; i++) {
    const x = canon[3 * i] ?? 0, y = canon[3 * i + 1] ?? 0, z = canon[3 * i + 2] ?? 0;
    out[3 * i] = s * ((r[0] ?? 0) * x + (r[1] ?? 0) * y + (r[2] ?? 0) * z) + t0;
    out[3 * i + 1] = -(s * ((r[3] ?? 0) * x + (r[4] ?? 0) * y + (r[5] ?? 0) * z) + t1);
    out[3 * i + 2] = -(s * ((r[6] ?? 0) * x + (r[7] ?? 0) * y + (r[8] ?? 0) * z) + t2);
  }
}
