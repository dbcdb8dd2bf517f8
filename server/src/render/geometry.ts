/**
 * Small fixed-size linear algebra for the renderer: 3x3 matrices (row-major
 * Float64Array(9)), Euler angles, and the least-squares similarity fit of two
 * 3D point sets (Horn's quaternion method). No per-call allocation in the
 * per-frame paths: callers pass output arrays.
 */

export type Mat3 = Float64Array;

export function mat3(): Mat3 {
  const m = new Float64Array(9);
  m[0] = m[4] = m[8] = 1;
  return m;
}

export function mat3Mul(a: Mat3, b: Mat3, out: Mat3): Mat3 {
  const a0 = a[0]!, a1 = a[1]!, a2 = a[2]!, a3 = a[3]!, a4 = a[4]!, a5 = a[5]!, a6 = a[6]!, a7 = a[7]!, a8 = a[8]!;
  const b0 = b[0]!, b1 = b[1]!, b2 = b[2]!, b3 = b[3]!, b4 = b[4]!, b5 = b[5]!, b6 = b[6]!, b7 = b[7]!, b8 = b[8]!;
  out[0] = a0 * b0 + a1 * b3 + a2 * b6;
  out[1] = a0 * b1 + a1 * b4 + a2 * b7;
  out[2] = a0 * b2 + a1 * b5 + a2 * b8;
  out[3] = a3 * b0 + a4 * b3 + a5 * b6;
  out[4] = a3 * b1 + a4 * b4 + a5 * b7;
  out[5] = a3 * b2 + a4 * b5 + a5 * b8;
  out[6] = a6 * b0 + a7 * b3 + a8 * b6;
  out[7] = a6 * b1 + a7 * b4 + a8 * b7;
  out[8] = a6 * b2 + a7 * b5 + a8 * b8;
  return out;
}

export function mat3Transpose(a: Mat3, out: Mat3): Mat3 {
  const a1 = a[1]!, a2 = a[2]!, a5 = a[5]!;
  out[0] = a[0]!;
  out[4] = a[4]!;
  out[8] = a[8]!;
  out[1] = a[3]!;
  out[3] = a1;
  out[2] = a[6]!;
  out[6] = a2;
  out[5] = a[7]!;
  out[7] = a5;
  return out;
}

/** Rotation R = Rz(roll) · Ry(yaw) · Rx(pitch), angles in radians. */
export function eulerToMat3(yaw: number, pitch: number, roll: number, out: Mat3): Mat3 {
  const cy = Math.cos(yaw), sy = Math.sin(yaw);
  const cp = Math.cos(pitch), sp = Math.sin(pitch);
  const cr = Math.cos(roll), sr = Math.sin(roll);
  out[0] = cr * cy;
  out[1] = cr * sy * sp - sr * cp;
  out[2] = cr * sy * cp + sr * sp;
  out[3] = sr * cy;
  out[4] = sr * sy * sp + cr * cp;
  out[5] = sr * sy * cp - cr * sp;
  out[6] = -sy;
  out[7] = cy * sp;
  out[8] = cy * cp;
  return out;
}

/** Inverse of eulerToMat3: writes [yaw, pitch, roll] in radians. */
export function mat3ToEuler(r: Mat3, out: Float64Array | number[]): void {
  const s = Math.max(-1, Math.min(1, -r[6]!));
  out[0] = Math.asin(s);
  out[1] = Math.atan2(r[7]!, r[8]!);
  out[2] = Math.atan2(r[3]!, r[0]!);
}

/** Result of fitting b ≈ scale · R · (a − ca) + cb. */
export interface SimilarityFit {
  scale: number;
  rotation: Mat3;
  /** Centroids of the a and b point subsets. */
  ca: Float64Array;
  cb: Float64Array;
}

export function newSimilarityFit(): SimilarityFit {
  return { scale: 1, rotation: mat3(), ca: new Float64Array(3), cb: new Float64Array(3) };
}

const nMat = new Float64Array(16);
const eVec = new Float64Array(16);

/**
 * Least-squares similarity from points a to points b (stride 3) over the given
 * indices. With planar=true only x,y enter the fit and R is an in-plane rotation.
 */
export function fitSimilarity(a: ArrayLike<number>, b: ArrayLike<number>, indices: readonly number[], out: SimilarityFit): SimilarityFit {
  const ca = out.ca, cb = out.cb;
  ca.fill(0);
  cb.fill(0);
  const n = indices.length;
  for (const i of indices) {
    for (let k = 0; k < 3; k++) {
      ca[k]! += a[i * 3 + k]!;
      cb[k]! += b[i * 3 + k]!;
    }
  }
  for (let k = 0; k < 3; k++) {
    ca[k]! /= n;
    cb[k]! /= n;
  }
  let sxx = 0, sxy = 0, sxz = 0, syx = 0, syy = 0, syz = 0, szx = 0, szy = 0, szz = 0, aa = 0;
  for (const i of indices) {
    const ax = a[i * 3]! - ca[0]!, ay = a[i * 3 + 1]! - ca[1]!, az = a[i * 3 + 2]! - ca[2]!;
    const bx = b[i * 3]! - cb[0]!, by = b[i * 3 + 1]! - cb[1]!, bz = b[i * 3 + 2]! - cb[2]!;
    sxx += ax * bx; sxy += ax * by; sxz += ax * bz;
    syx += ay * bx; syy += ay * by; syz += ay * bz;
    szx += az * bx; szy += az * by; szz += az * bz;
    aa += ax * ax + ay * ay + az * az;
  }
  const N = nMat;
  N[0] = sxx + syy + szz; N[1] = syz - szy; N[2] = szx - sxz; N[3] = sxy - syx;
  N[5] = sxx - syy - szz; N[6] = sxy + syx; N[7] = szx + sxz;
  N[10] = -sxx + syy - szz; N[11] = syz + szy;
  N[15] = -sxx - syy + szz;
  N[4] = N[1]; N[8] = N[2]; N[12] = N[3]; N[9] = N[6]; N[13] = N[7]; N[14] = N[11];
  jacobiEigen4(N, eVec);
  let best = 0;
  for (let k = 1; k < 4; k++) if (N[k * 5]! > N[best * 5]!) best = k;
  const w = eVec[best]!, x = eVec[4 + best]!, y = eVec[8 + best]!, z = eVec[12 + best]!;
  const R = out.rotation;
  R[0] = w * w + x * x - y * y - z * z; R[1] = 2 * (x * y - w * z); R[2] = 2 * (x * z + w * y);
  R[3] = 2 * (x * y + w * z); R[4] = w * w - x * x + y * y - z * z; R[5] = 2 * (y * z - w * x);
  R[6] = 2 * (x * z - w * y); R[7] = 2 * (y * z + w * x); R[8] = w * w - x * x - y * y + z * z;
  // scale = Σ b·(R a) / Σ |a|², the trace of R·M.
  const tr = R[0] * sxx + R[1] * syx + R[2] * szx + R[3] * sxy + R[4] * syy + R[5] * szy + R[6] * sxz + R[7] * syz + R[8] * szz;
  out.scale = aa > 0 ? tr / aa : 1;
  return out;
}

/** Applies a fit to point i of `a`, writing x,y,z into out at offset o. */
export function applySimilarity(fit: SimilarityFit, a: ArrayLike<number>, i: number, out: Float64Array | Float32Array, o: number): void {
  const R = fit.rotation, s = fit.scale;
  const x = a[i * 3]! - fit.ca[0]!, y = a[i * 3 + 1]! - fit.ca[1]!, z = a[i * 3 + 2]! - fit.ca[2]!;
  out[o] = s * (R[0]! * x + R[1]! * y + R[2]! * z) + fit.cb[0]!;
  out[o + 1] = s * (R[3]! * x + R[4]! * y + R[5]! * z) + fit.cb[1]!;
  out[o + 2] = s * (R[6]! * x + R[7]! * y + R[8]! * z) + fit.cb[2]!;
}

/** Cyclic Jacobi for a symmetric 4x4 (row-major): eigenvalues end on the diagonal, eigenvectors in columns of v. */
function jacobiEigen4(a: Float64Array, v: Float64Array): void {
  v.fill(0);
  v[0] = v[5] = v[10] = v[15] = 1;
  for (let sweep = 0; sweep < 30; sweep++) {
    let off = 0;
    for (let p = 0; p < 3; p++) for (let q = p + 1; q < 4; q++) off += a[p * 4 + q]! * a[p * 4 + q]!;
    if (off < 1e-22) return;
    for (let p = 0; p < 3; p++) {
      for (let q = p + 1; q < 4; q++) {
        const apq = a[p * 4 + q]!;
        if (Math.abs(apq) < 1e-30) continue;
        const app = a[p * 5]!, aqq = a[q * 5]!;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < 4; k++) {
          const akp = a[k * 4 + p]!, akq = a[k * 4 + q]!;
          a[k * 4 + p] = c * akp - s * akq;
          a[k * 4 + q] = s * akp + c * akq;
        }
        for (let k = 0; k < 4; k++) {
          const apk = a[p * 4 + k]!, aqk = a[q * 4 + k]!;
          a[p * 4 + k] = c * apk - s * aqk;
          a[q * 4 + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < 4; k++) {
          const vkp = v[k * 4 + p]!, vkq = v[k * 4 + q]!;
          v[k * 4 + p] = c * vkp - s * vkq;
          v[k * 4 + q] = s * vkp + c * vkq;
        }
      }
    }
  }
}

/** Smooth saturation: identity near 0, approaches ±limit. */
export function softLimit(x: number, limit: number): number {
  return limit * Math.tanh(x / limit);
}

export function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

export function smoothstep(e0: number, e1: number, x: number): number {
  const t = clamp((x - e0) / (e1 - e0), 0, 1);
  return t * t * (3 - 2 * t);
}
