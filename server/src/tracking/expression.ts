/**
 * Named expression parameters, measured on pose-normalised landmarks (canonical-mesh space, y
 * up), so head rotation and distance do not move them. Distances are divided by fixed lengths of
 * the canonical mesh (face height 10→152, eye-corner distance 33→263), not by the subject's own
 * (which expressions change). Ranges measured on the fixture videos are documented in
 * shared/tracking.ts and docs/tracking.md.
 *
 * Left and right are the subject's own: eyeOpenLeft is the person's left eye, on the image's
 * right in an unmirrored camera.
 */
import type { CanonicalMesh } from '../../../models/manifest.ts';
import type { Expression } from '../../../shared/tracking.ts';

/** Landmark indices of the 468-point MediaPipe face mesh used here. */
export const LM = Object.freeze({
  foreheadTop: 10,
  chin: 152,
  upperInnerLip: 13,
  lowerInnerLip: 14,
  mouthRight: 61,
  mouthLeft: 291,
  rightEyeOuter: 33,
  rightEyeInner: 133,
  rightEyeUpper: 159,
  rightEyeLower: 145,
  leftEyeOuter: 263,
  leftEyeInner: 362,
  leftEyeUpper: 386,
  leftEyeLower: 374,
  rightBrow: 105,
  leftBrow: 334,
});

function dist(p: ArrayLike<number>, i: number, j: number): number {
  const dx = (p[3 * i] ?? 0) - (p[3 * j] ?? 0);
  const dy = (p[3 * i + 1] ?? 0) - (p[3 * j + 1] ?? 0);
  const dz = (p[3 * i + 2] ?? 0) - (p[3 * j + 2] ?? 0);
  return Math.hypot(dx, dy, dz);
}

const y = (p: ArrayLike<number>, i: number): number => p[3 * i + 1] ?? 0;

export class ExpressionSolver {
  readonly #faceHeight: number;
  readonly #eyeDistance: number;
  readonly #canon: Float32Array;

  constructor(mesh: CanonicalMesh) {
    this.#canon = Float32Array.from(mesh.vertices);
    this.#faceHeight = dist(this.#canon, LM.foreheadTop, LM.chin);
    this.#eyeDistance = dist(this.#canon, LM.rightEyeOuter, LM.leftEyeOuter);
  }

  /** Offsets from the canonical mesh, 3 per landmark (468 points), written to `out`. */
  offsets(cs: Float32Array, out: Float32Array): void {
    const c = this.#canon;
    for (let i = 0; i < c.length; i++) out[i] = (cs[i] ?? 0) - (c[i] ?? 0);
  }

  /** Named parameters from canonical-space landmarks `cs` (x, y, z triples, y up). */
  named(cs: Float32Array): Expression {
    const h = this.#faceHeight;
    const lipCentre = (y(cs, LM.upperInnerLip) + y(cs, LM.lowerInnerLip)) / 2;
    const cornerHeight = (y(cs, LM.mouthRight) + y(cs, LM.mouthLeft)) / 2;
    const eyeOpen = (upper: number, lower: number, outer: number, inner: number): number => {
      const width = dist(cs, outer, inner);
      return width > 0 ? Math.max(0, y(cs, upper) - y(cs, lower)) / width : 0;
    };
    const brow = (y(cs, LM.rightBrow) - y(cs, LM.rightEyeUpper) + y(cs, LM.leftBrow) - y(cs, LM.leftEyeUpper)) / 2;
    return {
      jawOpen: Math.max(0, y(cs, LM.upperInnerLip) - y(cs, LM.lowerInnerLip)) / h,
      mouthWidth: dist(cs, LM.mouthRight, LM.mouthLeft) / this.#eyeDistance,
      lipCornerRaise: (cornerHeight - lipCentre) / h,
      eyeOpenLeft: eyeOpen(LM.leftEyeUpper, LM.leftEyeLower, LM.leftEyeOuter, LM.leftEyeInner),
      eyeOpenRight: eyeOpen(LM.rightEyeUpper, LM.rightEyeLower, LM.rightEyeOuter, LM.rightEyeInner),
      browRaise: brow / h,
    };
  }
}
