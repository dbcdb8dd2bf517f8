/**
 * Per-vertex proportions actor → target: for each landmark, the ratio of the
 * target's to the (aligned) actor's neighbourhood extent along the target
 * face's x and y axes, clamped and smoothed. The neighbourhoods come from the
 * target's neutral once; the ratios are refreshed as the actor's rest shape
 * is learnt.
 *
 * The lips themselves move at the face's scale (ratio 1 after the similarity
 * that maps the actor's face onto the target's), unless `lipsAtFaceScale` is
 * off: how far a mouth opens is the jaw's travel, which scales with the head,
 * not with how full the lips are. Scaled by the local lip extent, a thin-lipped
 * or moustached target opened about 0.6 of the actor's gap and read as shut
 * while the actor spoke (docs/rendering.md). The neighbours around the lips
 * keep their own proportions, blended into the lips' by the smoothing.
 */
import { clamp } from './geometry.ts';
import type { TargetGeometry } from './face-measure.ts';
import { LIPS_LOWER_INNER, LIPS_LOWER_OUTER, LIPS_UPPER_INNER, LIPS_UPPER_OUTER, MESH_POINTS } from './topology.ts';

const LIPS: readonly number[] = [...new Set([...LIPS_UPPER_OUTER, ...LIPS_LOWER_OUTER, ...LIPS_UPPER_INNER, ...LIPS_LOWER_INNER])];

const NEIGHBOURS = 24;
const SMOOTH_NEIGHBOURS = 8;

export class Proportions {
  readonly sx = new Float64Array(MESH_POINTS).fill(1);
  readonly sy = new Float64Array(MESH_POINTS).fill(1);
  readonly #target: TargetGeometry;
  /** NEIGHBOURS nearest landmarks of each landmark on the target, nearest first. */
  readonly #nbrs: Uint16Array;
  readonly #ox = new Float64Array(MESH_POINTS);
  readonly #oy = new Float64Array(MESH_POINTS);
  readonly #lipsAtFaceScale: boolean;

  constructor(target: TargetGeometry, lipsAtFaceScale = true) {
    this.#target = target;
    this.#lipsAtFaceScale = lipsAtFaceScale;
    const t = target.points;
    this.#nbrs = new Uint16Array(MESH_POINTS * NEIGHBOURS);
    const dist = new Float64Array(MESH_POINTS);
    const idx = Array.from({ length: MESH_POINTS }, (_, i) => i);
    for (let i = 0; i < MESH_POINTS; i++) {
      for (let j = 0; j < MESH_POINTS; j++) dist[j] = (t[j * 3]! - t[i * 3]!) ** 2 + (t[j * 3 + 1]! - t[i * 3 + 1]!) ** 2;
      const nb = idx.slice().sort((a, b) => dist[a]! - dist[b]!).slice(1, NEIGHBOURS + 1);
      this.#nbrs.set(nb, i * NEIGHBOURS);
    }
  }

  /** aligned: the actor's rest shape mapped onto the target (stride 3). */
  update(aligned: Float64Array): void {
    const t = this.#target, sx = this.sx, sy = this.sy, nbrs = this.#nbrs;
    const cr = Math.cos(t.roll), sr = Math.sin(t.roll);
    for (let i = 0; i < MESH_POINTS; i++) {
      let ax = 0, ay = 0, tx = 0, ty = 0;
      for (let k = 0; k < NEIGHBOURS; k++) {
        const j = nbrs[i * NEIGHBOURS + k]!;
        const dax = aligned[j * 3]! - aligned[i * 3]!, day = aligned[j * 3 + 1]! - aligned[i * 3 + 1]!;
        const dtx = t.points[j * 3]! - t.points[i * 3]!, dty = t.points[j * 3 + 1]! - t.points[i * 3 + 1]!;
        const au = cr * dax + sr * day, av = -sr * dax + cr * day;
        const tu = cr * dtx + sr * dty, tv = -sr * dtx + cr * dty;
        ax += au * au; ay += av * av; tx += tu * tu; ty += tv * tv;
      }
      sx[i] = clamp(Math.sqrt(tx / Math.max(ax, 1e-9)), 0.7, 1.45);
      sy[i] = clamp(Math.sqrt(ty / Math.max(ay, 1e-9)), 0.7, 1.45);
    }
    if (this.#lipsAtFaceScale) for (const i of LIPS) sx[i] = sy[i] = 1;
    const ox = this.#ox, oy = this.#oy;
    for (let pass = 0; pass < 2; pass++) {
      ox.set(sx);
      oy.set(sy);
      for (let i = 0; i < MESH_POINTS; i++) {
        let mx = ox[i]!, my = oy[i]!;
        for (let k = 0; k < SMOOTH_NEIGHBOURS; k++) {
          const j = nbrs[i * NEIGHBOURS + k]!;
          mx += ox[j]!;
          my += oy[j]!;
        }
        sx[i] = mx / (SMOOTH_NEIGHBOURS + 1);
        sy[i] = my / (SMOOTH_NEIGHBOURS + 1);
      }
      if (this.#lipsAtFaceScale) for (const i of LIPS) sx[i] = sy[i] = 1;
    }
  }
}

/** Keeps the driven inner lips from crossing: a lower-lip point never rises above its upper partner. */
export function separateLips(pts: Float64Array, t: TargetGeometry): void {
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
