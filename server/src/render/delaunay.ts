/**
 * Bowyer–Watson Delaunay triangulation of 2D points, used once per enrollment
 * as the fallback face triangulation (until the canonical mesh is available)
 * and for small auxiliary meshes. O(n²) worst case, fine for a few hundred points.
 */
export function delaunay(xs: ArrayLike<number>, ys: ArrayLike<number>): Uint32Array {
  const n = xs.length;
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (let i = 0; i < n; i++) {
    minX = Math.min(minX, xs[i]!); maxX = Math.max(maxX, xs[i]!);
    minY = Math.min(minY, ys[i]!); maxY = Math.max(maxY, ys[i]!);
  }
  const d = Math.max(maxX - minX, maxY - minY, 1) * 20;
  const cx = (minX + maxX) / 2, cy = (minY + maxY) / 2;
  const px = Float64Array.from({ length: n + 3 }, (_, i) => (i < n ? xs[i]! : 0));
  const py = Float64Array.from({ length: n + 3 }, (_, i) => (i < n ? ys[i]! : 0));
  px[n] = cx - d; py[n] = cy - d;
  px[n + 1] = cx + d; py[n + 1] = cy - d;
  px[n + 2] = cx; py[n + 2] = cy + d;

  interface Tri { a: number; b: number; c: number; x: number; y: number; r2: number }
  const circum = (a: number, b: number, c: number): Tri => {
    const ax = px[a]!, ay = py[a]!, bx = px[b]!, by = py[b]!, cxx = px[c]!, cyy = py[c]!;
    const dd = 2 * (ax * (by - cyy) + bx * (cyy - ay) + cxx * (ay - by));
    const a2 = ax * ax + ay * ay, b2 = bx * bx + by * by, c2 = cxx * cxx + cyy * cyy;
    const ux = (a2 * (by - cyy) + b2 * (cyy - ay) + c2 * (ay - by)) / dd;
    const uy = (a2 * (cxx - bx) + b2 * (ax - cxx) + c2 * (bx - ax)) / dd;
    return { a, b, c, x: ux, y: uy, r2: (ax - ux) ** 2 + (ay - uy) ** 2 };
  };
  let tris: Tri[] = [circum(n, n + 1, n + 2)];
  for (let i = 0; i < n; i++) {
    const x = px[i]!, y = py[i]!;
    const edges = new Map<string, [number, number]>();
    const keep: Tri[] = [];
    for (const t of tris) {
      if ((x - t.x) ** 2 + (y - t.y) ** 2 <= t.r2 * (1 + 1e-12)) {
        for (const [u, v] of [[t.a, t.b], [t.b, t.c], [t.c, t.a]] as const) {
          const key = u < v ? `${u},${v}` : `${v},${u}`;
          if (edges.has(key)) edges.delete(key);
          else edges.set(key, [u, v]);
        }
      } else keep.push(t);
    }
    for (const [u, v] of edges.values()) keep.push(circum(u, v, i));
    tris = keep;
  }
  const out: number[] = [];
  for (const t of tris) {
    if (t.a >= n || t.b >= n || t.c >= n) continue;
    // Counter-clockwise in image coordinates is irrelevant to the rasteriser; keep a fixed orientation anyway.
    const cross = (px[t.b]! - px[t.a]!) * (py[t.c]! - py[t.a]!) - (py[t.b]! - py[t.a]!) * (px[t.c]! - px[t.a]!);
    if (cross > 0) out.push(t.a, t.b, t.c);
    else out.push(t.a, t.c, t.b);
  }
  return Uint32Array.from(out);
}
