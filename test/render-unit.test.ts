/**
 * Unit tests of the geometric renderer's parts on synthetic data: rasteriser,
 * triangulation, similarity fit, smoothing, retargeting maths, blending,
 * enrollment cache, and the Renderer's error contract. The synthetic face is
 * the canonical face mesh (models/out, built by npm run build:models) scaled
 * into pixels, so the topology is the real one.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { FaceTrack } from '../shared/tracking.ts';
import { canonicalMeshPath, type CanonicalMesh } from '../models/manifest.ts';
import { PyramidBlender } from '../server/src/render/blend.ts';
import { delaunay } from '../server/src/render/delaunay.ts';
import { InvalidStateError, RenderError } from '../server/src/render/errors.ts';
import { eulerToMat3, fitSimilarity, mat3ToEuler, newSimilarityFit } from '../server/src/render/geometry.ts';
import { OneEuroVector } from '../server/src/render/filter.ts';
import { targetGeometry } from '../server/src/render/face-measure.ts';
import { buildRenderMesh, initialDrawOrder, LANDMARK_SLOTS, loadCanonicalTriangles, placeRings, RING4, RING_SIZE, VERTEX_COUNT } from '../server/src/render/mesh.ts';
import { fillPolygon, newImage, warpTriangles } from '../server/src/render/raster.ts';
import { ContourFrame } from '../server/src/render/contour.ts';
import { paintLipSeam } from '../server/src/render/mouth.ts';
import { GeometricRenderer } from '../server/src/render/renderer.ts';
import { lipZeroShare, Retargeter } from '../server/src/render/retarget.ts';
import { enrollTarget, type FaceTrackerPort } from '../server/src/render/target.ts';
import { LIPS_LOWER_INNER, LIPS_UPPER_INNER, RIGHT_EYE, LEFT_EYE } from '../server/src/render/topology.ts';
import { placeMissingIris } from '../server/src/render/face-measure.ts';
import { writeImage } from '../server/src/media/video-io.ts';

const T = { timeout: 20_000 };

/** The canonical mesh as a frontal face in a size×size image (y down, z away from the camera). */
function syntheticFace(size: number, widthFrac = 0.45): Float64Array {
  const mesh = JSON.parse(readFileSync(canonicalMeshPath(), 'utf8')) as CanonicalMesh;
  const v = mesh.vertices;
  let minX = Infinity, maxX = -Infinity;
  for (let i = 0; i < 468; i++) {
    minX = Math.min(minX, v[i * 3]!);
    maxX = Math.max(maxX, v[i * 3]!);
  }
  const k = (size * widthFrac) / (maxX - minX);
  const p = new Float64Array(LANDMARK_SLOTS * 3);
  for (let i = 0; i < 468; i++) {
    p[i * 3] = size / 2 + v[i * 3]! * k;
    p[i * 3 + 1] = size * 0.52 - v[i * 3 + 1]! * k;
    p[i * 3 + 2] = -v[i * 3 + 2]! * k;
  }
  placeMissingIris(p);
  return p;
}

function track(points: Float64Array, frame = 0): FaceTrack {
  const lm: [number, number, number][] = [];
  for (let i = 0; i < 468; i++) lm.push([points[i * 3]!, points[i * 3 + 1]!, points[i * 3 + 2]!]);
  return { frame, timeMs: frame * 33, faces: 1, score: 1, landmarks: lm, pose: null, expression: null };
}

function testImage(size: number): ReturnType<typeof newImage> {
  const img = newImage(size, size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const o = (y * size + x) * 4;
      img.data[o] = (x * 7) & 255;
      img.data[o + 1] = (y * 5) & 255;
      img.data[o + 2] = ((x ^ y) * 3) & 255;
      img.data[o + 3] = 255;
    }
  }
  return img;
}

function gap(p: Float64Array): number {
  return p[LIPS_LOWER_INNER[5]! * 3 + 1]! - p[LIPS_UPPER_INNER[5]! * 3 + 1]!;
}

describe('rasteriser', () => {
  it('an identity warp over a watertight mesh reproduces the source exactly, no cracks or double fills', T, () => {
    const size = 96;
    const src = testImage(size);
    const xs: number[] = [], ys: number[] = [];
    for (let i = 0; i < 200; i++) {
      xs.push(Math.random() * size);
      ys.push(Math.random() * size);
    }
    xs.push(-1, size + 1, -1, size + 1);
    ys.push(-1, -1, size + 1, size + 1);
    const tris = delaunay(xs, ys);
    const pts = new Float32Array(xs.length * 2);
    xs.forEach((x, i) => {
      pts[i * 2] = x;
      pts[i * 2 + 1] = ys[i]!;
    });
    const out = newImage(size, size);
    warpTriangles(src, pts, out, pts, tris, null);
    assert.deepEqual(out.data, src.data);
  });

  it('a translated mesh shifts the image by that many pixels', T, () => {
    const size = 64;
    const src = testImage(size);
    const s = new Float32Array([-50, -50, 200, -50, 200, 200, -50, 200]);
    const d = s.map((v, i) => v + (i % 2 === 0 ? 3 : 2));
    const out = newImage(size, size);
    warpTriangles(src, s, out, d, Uint32Array.from([0, 1, 2, 0, 2, 3]), null);
    for (const [x, y] of [[10, 10], [40, 20], [63, 63]] as const) {
      const o = (y * size + x) * 4, so = ((y - 2) * size + (x - 3)) * 4;
      assert.deepEqual([...out.data.subarray(o, o + 3)], [...src.data.subarray(so, so + 3)]);
    }
  });

  it('fillPolygon covers a square exactly at pixel centres', T, () => {
    const mask = new Uint8Array(16 * 16);
    fillPolygon([2, 2, 10, 2, 10, 6, 2, 6], 4, mask, 16, 16);
    assert.equal(mask.reduce((a, b) => a + (b ? 1 : 0), 0), 8 * 4);
  });
});

describe('triangulation and mesh', () => {
  it('Delaunay triangulates n random points into 2n-2-h triangles with empty circumcircles', T, () => {
    const xs = [0, 100, 100, 0], ys = [0, 0, 100, 100];
    for (let i = 0; i < 60; i++) {
      xs.push(5 + Math.random() * 90);
      ys.push(5 + Math.random() * 90);
    }
    const t = delaunay(xs, ys);
    assert.equal(t.length / 3, 2 * xs.length - 2 - 4);
    for (let k = 0; k < t.length; k += 3) {
      const [a, b, c] = [t[k]!, t[k + 1]!, t[k + 2]!];
      const ax = xs[a]!, ay = ys[a]!, bx = xs[b]!, by = ys[b]!, cx = xs[c]!, cy = ys[c]!;
      for (let p = 0; p < xs.length; p++) {
        if (p === a || p === b || p === c) continue;
        const dx = xs[p]!, dy = ys[p]!;
        const det = (ax - dx) * ((by - dy) * ((cx - dx) ** 2 + (cy - dy) ** 2) - (cy - dy) * ((bx - dx) ** 2 + (by - dy) ** 2))
          - (ay - dy) * ((bx - dx) * ((cx - dx) ** 2 + (cy - dy) ** 2) - (cx - dx) * ((bx - dx) ** 2 + (by - dy) ** 2))
          + ((ax - dx) ** 2 + (ay - dy) ** 2) * ((bx - dx) * (cy - dy) - (cx - dx) * (by - dy));
        assert.ok(det <= 1e-6 * 1e8, 'a point lies inside a circumcircle');
      }
    }
  });

  it('the canonical mesh has 898 triangles and the warp mesh covers the whole image once', T, async () => {
    const tris = await loadCanonicalTriangles();
    assert.ok(tris, 'models/out/canonical_face_mesh.json missing: run npm run build:models');
    assert.equal(tris.length / 3, 898);
    const size = 128;
    // The mesh's UV layout: a fold-free 2D face (an orthographic view of the 3D mesh folds under the nose and lips).
    const uv = (JSON.parse(readFileSync(canonicalMeshPath(), 'utf8')) as CanonicalMesh).uv;
    const face = new Float64Array(LANDMARK_SLOTS * 3);
    for (let i = 0; i < 468; i++) {
      face[i * 3] = 24 + uv[i * 2]! * 80;
      face[i * 3 + 1] = 20 + (1 - uv[i * 2 + 1]!) * 80;
    }
    placeMissingIris(face);
    const mesh = buildRenderMesh(tris, 'canonical');
    const pts = new Float32Array(VERTEX_COUNT * 2);
    for (let i = 0; i < LANDMARK_SLOTS; i++) {
      pts[i * 2] = face[i * 3]!;
      pts[i * 2 + 1] = face[i * 3 + 1]!;
    }
    placeRings(face, size, pts);
    assert.ok(pts[RING4 * 2]! < -size || pts[RING4 * 2]! > 2 * size || pts[RING4 * 2 + 1]! < -size || pts[RING4 * 2 + 1]! > 2 * size);
    // Count how often each pixel is written: draw with a source whose red channel is 1, accumulating.
    const one = newImage(size, size);
    one.data.fill(1);
    const count = new Uint16Array(size * size);
    const out = newImage(size, size);
    for (let t = 0; t < mesh.triangles.length / 3; t++) {
      out.data.fill(0);
      warpTriangles(one, pts, out, pts, mesh.triangles, Uint32Array.of(t));
      for (let i = 0; i < size * size; i++) count[i]! += out.data[i * 4]!;
    }
    const bad = count.reduce((n, c) => n + (c === 1 ? 0 : 1), 0);
    assert.equal(bad, 0, `${bad} pixels not covered exactly once`);
    assert.equal(RING_SIZE, 36);
  });

  it('the draw order paints every ring triangle (hair, neck, background) before any face triangle', T, async () => {
    const mesh = buildRenderMesh((await loadCanonicalTriangles())!, 'canonical');
    const order = initialDrawOrder(mesh);
    const n = mesh.triangles.length / 3, rings = n - mesh.faceCount;
    assert.equal(new Set(order).size, n, 'not a permutation');
    const touchesRing = (t: number): boolean => [0, 1, 2].some((k) => mesh.triangles[t * 3 + k]! >= LANDMARK_SLOTS);
    const misplaced = [...order].filter((t, k) => touchesRing(t) !== k < rings);
    assert.deepEqual(misplaced, []);
  });
});

describe('geometry and filtering', () => {
  it('the similarity fit recovers a known rotation, scale and translation', T, () => {
    const a = syntheticFace(256);
    const R = eulerToMat3(0.2, -0.1, 0.15, new Float64Array(9));
    const b = new Float64Array(a.length);
    for (let i = 0; i < a.length / 3; i++) {
      const x = a[i * 3]!, y = a[i * 3 + 1]!, z = a[i * 3 + 2]!;
      b[i * 3] = 1.3 * (R[0]! * x + R[1]! * y + R[2]! * z) + 10;
      b[i * 3 + 1] = 1.3 * (R[3]! * x + R[4]! * y + R[5]! * z) - 4;
      b[i * 3 + 2] = 1.3 * (R[6]! * x + R[7]! * y + R[8]! * z);
    }
    const fit = fitSimilarity(a, b, Array.from({ length: 468 }, (_, i) => i), newSimilarityFit());
    assert.ok(Math.abs(fit.scale - 1.3) < 1e-6);
    const e = new Float64Array(3);
    mat3ToEuler(fit.rotation, e);
    assert.deepEqual([...e].map((v) => v.toFixed(6)), ['0.200000', '-0.100000', '0.150000']);
  });

  it('the One Euro filter holds a noisy still signal steady and follows a fast step', T, () => {
    const f = new OneEuroVector(1, { minCutoffHz: 2.5, beta: 6, dCutoffHz: 1 });
    let maxDev = 0;
    for (let i = 0; i < 60; i++) {
      const v = f.update([Math.sin(i * 2.1) * 0.01], 33)[0]!;
      if (i > 5) maxDev = Math.max(maxDev, Math.abs(v));
    }
    assert.ok(maxDev < 0.006, `jitter ${maxDev}`);
    let v = 0;
    for (let i = 0; i < 4; i++) v = f.update([1], 33)[0]!;
    assert.ok(v > 0.8, `step reached only ${v} after 4 frames`);
  });
});

describe('retargeting', () => {
  const size = 256;
  const target = syntheticFace(size, 0.4);
  const actor = syntheticFace(640, 0.3);

  function openMouth(p: Float64Array, amount: number): Float64Array {
    const q = Float64Array.from(p);
    for (const i of new Set([...LIPS_LOWER_INNER.slice(1, -1), 17, 84, 314, 152, 148, 377])) q[i * 3 + 1]! += amount;
    return q;
  }

  /** The actor with its inner lips shut (each lower inner-lip point at its upper partner). */
  function shut(p: Float64Array): Float64Array {
    const q = Float64Array.from(p);
    LIPS_LOWER_INNER.forEach((id, k) => (q[id * 3 + 1] = q[LIPS_UPPER_INNER[k]! * 3 + 1]!));
    return q;
  }

  it('an actor at rest with shut lips drives the target to exactly its neutral (lip zero off)', T, () => {
    const r = new Retargeter(targetGeometry(target, false), { lipZero: false });
    r.setNeutral(track(shut(actor)));
    const d = r.update(track(shut(actor), 1), 33);
    assert.equal(d.state, 'tracking');
    let maxErr = 0, at = -1;
    for (let i = 0; i < 468 * 3; i++) {
      const e = Math.abs(d.points[i]! - target[i]!);
      if (e > maxErr) [maxErr, at] = [e, i];
    }
    // The rest's lips are closed by the lip field, which leaves a few hundredths of a pixel at the corners.
    assert.ok(maxErr < 0.05, `max error ${maxErr} at coordinate ${at}`);
  });

  it('the mouth gap is absolute: an actor talking from its first frame, never seen shut, parts the target\'s lips by its own gap scaled to the target', T, () => {
    const geo = targetGeometry(Float64Array.from(target), false);
    const aIod = targetGeometry(Float64Array.from(actor), false).iod;
    // No neutral is ever set and the actor's lips are never together: open by 0.2 IOD beyond the
    // canonical face's own parting, from frame 0 on.
    const open = openMouth(shut(actor), 0.2 * aIod);
    const actorGap = gap(open) / aIod;
    const r = new Retargeter(geo);
    let d = r.update(track(open, 0), 0);
    for (let i = 1; i < 20; i++) d = r.update(track(open, i), i * 33);
    const outGap = gap(d.points) / geo.iod;
    // The target's lips start shut (lip zero) and part by the actor's gap, times the mouth-size ratio (≤ 1.45).
    assert.ok(outGap > 0.8 * actorGap && outGap < 1.5 * actorGap, `actor gap ${actorGap.toFixed(3)} IOD, output ${outGap.toFixed(3)} IOD`);
  });

  it('starting mid-sentence converges to the output of a neutral start once the lips meet', T, () => {
    const geo = targetGeometry(Float64Array.from(target), false);
    const aIod = targetGeometry(Float64Array.from(actor), false).iod;
    const talk = (i: number): Float64Array => (i % 10 < 3 ? shut(actor) : openMouth(shut(actor), (0.05 + 0.03 * (i % 4)) * aIod));
    const run = (first: Float64Array): Float64Array[] => {
      const r = new Retargeter(geo);
      // The opening second: the actor holds a wide-open mouth (as a talker caught mid-vowel).
      for (let i = 0; i < 30; i++) r.update(track(first, i), i * 33);
      const outs: Float64Array[] = [];
      for (let i = 30; i < 120; i++) outs.push(Float64Array.from(r.update(track(talk(i), i), i * 33).points));
      return outs;
    };
    const fromOpen = run(openMouth(shut(actor), 0.25 * aIod)), fromRest = run(shut(actor));
    // Over the last second, the two sessions' mouths agree within 2 % of the target's IOD.
    for (let k = fromOpen.length - 30; k < fromOpen.length; k++) {
      const e = Math.abs(gap(fromOpen[k]!) - gap(fromRest[k]!)) / geo.iod;
      assert.ok(e < 0.02, `frame ${k}: gaps differ by ${e.toFixed(3)} IOD`);
    }
  });

  it('lip zero: a target with parted lips shows them shut while the actor rests with a closed mouth, and opens by the actor change from there', T, () => {
    // The canonical face's lips are parted (gap 0.085 IOD): it serves as the target, and the actor rests with its mouth shut.
    const geo = targetGeometry(Float64Array.from(target), false);
    assert.ok(geo.mouthGap > 0.07, `target gap ${geo.mouthGap}`);
    const shutActor = Float64Array.from(actor);
    LIPS_LOWER_INNER.forEach((id, k) => (shutActor[id * 3 + 1] = shutActor[LIPS_UPPER_INNER[k]! * 3 + 1]!));
    const aIod = targetGeometry(Float64Array.from(actor), false).iod;
    const drive = (params: { lipZero: boolean }, amount: number): Float64Array => {
      const r = new Retargeter(geo, params);
      r.setNeutral(track(shutActor));
      let d = r.update(track(openMouth(shutActor, amount), 1), 33);
      for (let i = 2; i < 20; i++) d = r.update(track(openMouth(shutActor, amount), i), i * 33);
      return d.points;
    };
    // At the actor's neutral: shut with lipZero, the target's own gap without.
    const shut = drive({ lipZero: true }, 0);
    assert.ok(Math.abs(gap(shut)) < 0.01 * geo.iod, `gap ${gap(shut)}`);
    // (The actor's rest is closed by the same lip field: it leaves about 1e-5 px.)
    assert.ok(Math.abs(gap(drive({ lipZero: false }, 0)) - gap(target)) < 1e-3);
    // The actor opens by 0.15 of its IOD: the target's lips part from shut by as much as they part
    // from the painted gap without lipZero (about 0.2 IOD: the shut actor's mouth region is
    // shorter than the target's, so its motion is scaled up).
    const opened = gap(drive({ lipZero: true }, 0.15 * aIod)) / geo.iod;
    const change = (gap(drive({ lipZero: false }, 0.15 * aIod)) - gap(target)) / geo.iod;
    assert.ok(change > 0.12 && Math.abs(opened - change) < 0.02, `opened ${opened.toFixed(3)} IOD from shut, ${change.toFixed(3)} from the painted gap`);
    // The lip bodies move with the inner lips; points far from the mouth do not move.
    for (const i of [1, 152, 33, 263, 10]) {
      assert.ok(Math.hypot(shut[i * 3]! - target[i * 3]!, shut[i * 3 + 1]! - target[i * 3 + 1]!) < 1e-6, `landmark ${i} moved`);
    }
    assert.ok(shut[0 * 3 + 1]! - target[0 * 3 + 1]! > 0.25 * gap(target), 'the upper lip did not follow its inner contour');
  });

  it('lip zero switched mid-stream: the next frame shows the painted gap (or shuts it again), and the neutral is kept', T, () => {
    const geo = targetGeometry(Float64Array.from(target), false);
    const shutActor = Float64Array.from(actor);
    LIPS_LOWER_INNER.forEach((id, k) => (shutActor[id * 3 + 1] = shutActor[LIPS_UPPER_INNER[k]! * 3 + 1]!));
    const r = new Retargeter(geo, { lipZero: true });
    r.setNeutral(track(shutActor));
    let i = 1;
    const step = (): Float64Array => r.update(track(shutActor, i), i++ * 33).points;
    for (let k = 0; k < 5; k++) step();
    assert.ok(Math.abs(gap(step())) < 0.01 * geo.iod, 'not shut with lip zero on');
    r.lipZero = false;
    assert.equal(r.lipZero, false);
    assert.ok(Math.abs(gap(step()) - gap(target)) < 1e-3, 'the painted gap did not come back on the next frame');
    assert.ok(r.hasNeutral, 'switching lost the neutral');
    r.lipZero = true;
    assert.ok(Math.abs(gap(step())) < 0.01 * geo.iod, 'not shut again after switching back on');
  });

  it('lip zero closes only what the actor lacks: none for a target with shut lips or an actor resting as open as the target', T, () => {
    assert.ok(lipZeroShare(0.002, 0.07) > 0.95);
    assert.equal(lipZeroShare(0.002, 0.005), 0);
    assert.equal(lipZeroShare(0.07, 0.07), 0);
    assert.ok(Math.abs(lipZeroShare(0.035, 0.07) - 0.5) < 1e-9);
  });

  it('a lid at half its neutral opening (a full blink as the 468-point model reports it) closes the target eye fully', T, () => {
    const r = new Retargeter(targetGeometry(Float64Array.from(target), false));
    r.setNeutral(track(actor));
    const blink = Float64Array.from(actor);
    for (const eye of [RIGHT_EYE, LEFT_EYE]) {
      eye.upper.forEach((i, k) => {
        const j = eye.lower[k]!;
        blink[i * 3 + 1] = blink[i * 3 + 1]! + (blink[j * 3 + 1]! - blink[i * 3 + 1]!) * 0.55;
      });
    }
    let d = r.update(track(blink, 1), 33);
    for (let i = 2; i < 8; i++) d = r.update(track(blink, i), i * 33);
    assert.ok(d.eyeClosure[0]! > 0.97 && d.eyeClosure[1]! > 0.97, `closure ${[...d.eyeClosure].join(',')}`);
  });

  function turn(p: Float64Array, yawDeg: number): Float64Array {
    const R = eulerToMat3((yawDeg * Math.PI) / 180, 0, 0, new Float64Array(9));
    const q = Float64Array.from(p);
    for (let i = 0; i < 468; i++) {
      const x = p[i * 3]! - 320, z = p[i * 3 + 2]!;
      q[i * 3] = 320 + R[0]! * x + R[2]! * z;
      q[i * 3 + 2] = R[6]! * x + R[8]! * z;
    }
    return q;
  }

  it('head turns transfer one to one within the linear range and are eased below the maximum beyond it', T, () => {
    const yawAfter = (deg: number): number => {
      const r = new Retargeter(targetGeometry(Float64Array.from(target), false), { yawLinearDeg: 30, maxYawDeg: 40 });
      r.setNeutral(track(actor));
      let d = r.update(track(turn(actor, deg), 1), 33);
      for (let i = 2; i < 40; i++) d = r.update(track(turn(actor, deg), i), i * 33);
      return d.yawDeg;
    };
    assert.ok(Math.abs(yawAfter(25) - 25) < 0.5, `25° → ${yawAfter(25)}`);
    const far = yawAfter(70);
    assert.ok(far > 35 && far < 40, `70° → ${far}`);
  });

  it('a session that starts with the head turned shows the turn at once (rotation is measured against the frontal face, not the first frame)', T, () => {
    // The frontal reference is the untouched synthetic face; the actor's first frame is already turned 20°.
    const r = new Retargeter(targetGeometry(Float64Array.from(target), false), {}, undefined, Float64Array.from(actor));
    let d = r.update(track(turn(actor, 20), 0), 0);
    for (let i = 1; i < 20; i++) d = r.update(track(turn(actor, 20), i), i * 33);
    assert.ok(Math.abs(d.yawDeg - 20) < 1, `yaw ${d.yawDeg}`);
  });

  it('the target takes the actor\'s pose: a portrait turned 8° faces the camera for a frontal actor; one turned 30° is turned back by 15° and keeps the rest', T, () => {
    const frontal = Float64Array.from(actor);
    const turnedTarget = (deg: number): Float64Array => {
      const q = Float64Array.from(target);
      const R = eulerToMat3((deg * Math.PI) / 180, 0, 0, new Float64Array(9));
      for (let i = 0; i < 468; i++) {
        const x = target[i * 3]! - 128, z = target[i * 3 + 2]!;
        q[i * 3] = 128 + R[0]! * x + R[2]! * z;
        q[i * 3 + 2] = R[6]! * x + R[8]! * z;
      }
      return q;
    };
    const yawFor = (deg: number): number => {
      const r = new Retargeter(targetGeometry(turnedTarget(deg), false), {}, undefined, frontal);
      let d = r.update(track(actor, 0), 0);
      for (let i = 1; i < 10; i++) d = r.update(track(actor, i), i * 33);
      return d.yawDeg;
    };
    // A frontal actor turns the 8° portrait back by its 8°, and the 30° one by the 15° limit.
    assert.ok(Math.abs(yawFor(8) + 8) < 0.5, `8° portrait: ${yawFor(8)}`);
    assert.ok(Math.abs(yawFor(30) + 15) < 0.5, `30° portrait: ${yawFor(30)}`);
  });

  it('with no face it holds the last pose, then eases back to the neutral', T, () => {
    const r = new Retargeter(targetGeometry(Float64Array.from(target), false), { holdMs: 300, easeMs: 600, lipZero: false });
    r.setNeutral(track(actor));
    const open = openMouth(actor, 30);
    let d = r.update(track(open, 0), 0);
    for (let i = 1; i < 15; i++) d = r.update(track(open, i), i * 33);
    const held = gap(d.points);
    d = r.update(null, 15 * 33 + 200);
    assert.equal(d.state, 'holding');
    assert.ok(Math.abs(gap(d.points) - held) < 1e-9);
    for (let t = 800; t <= 3000; t += 33) d = r.update(null, 15 * 33 + t);
    assert.equal(d.state, 'easing');
    assert.ok(Math.abs(gap(d.points) - gap(target)) < 0.05 * Math.abs(held - gap(target)), 'did not ease back to neutral');
  });

  it('output starts on the first frame with a face and reset neutral starts the calibration again', T, () => {
    const r = new Retargeter(targetGeometry(Float64Array.from(target), false));
    assert.equal(r.update(null, 0).state, 'waiting-neutral');
    const d = r.update(track(actor, 1), 33);
    assert.equal(d.state, 'tracking');
    assert.ok(r.hasNeutral);
    r.resetNeutral();
    assert.equal(r.hasNeutral, false);
  });
});

describe('mouth', () => {
  it('the lip seam paints a dark contact line over a squeezed opening and leaves the lips around it', T, () => {
    // Inner lips 1 px apart across x 20..80 at y 50, with a bright (teeth) row between them.
    const pts = new Float64Array(LANDMARK_SLOTS * 3);
    const n = LIPS_UPPER_INNER.length;
    LIPS_UPPER_INNER.forEach((id, k) => {
      pts[id * 3] = 20 + (60 * k) / (n - 1);
      pts[id * 3 + 1] = k === 0 || k === n - 1 ? 50.5 : 50;
    });
    LIPS_LOWER_INNER.forEach((id, k) => {
      pts[id * 3] = 20 + (60 * k) / (n - 1);
      pts[id * 3 + 1] = k === 0 || k === n - 1 ? 50.5 : 51;
    });
    const f = new ContourFrame();
    f.set(pts, LIPS_UPPER_INNER, LIPS_LOWER_INNER);
    const lipRgb = [180, 60, 60];
    const app = { lip: Float32Array.from(lipRgb), teeth: new Float32Array(3), cavity: new Float32Array(3), tongue: new Float32Array(3) };
    const paint = (squeeze: number): Uint8Array => {
      const img = newImage(100, 100);
      for (let i = 0; i < 100 * 100; i++) img.data.set([...lipRgb, 255], i * 4);
      for (let x = 20; x < 80; x++) img.data.set([240, 240, 230, 255], (50 * 100 + x) * 4);
      paintLipSeam(img, f, squeeze, app);
      return img.data;
    };
    const at = (d: Uint8Array, x: number, y: number): number => d[(y * 100 + x) * 4]!;
    assert.equal(at(paint(0), 50, 50), 240, 'no squeeze, no seam');
    const shut = paint(1);
    assert.ok(at(shut, 50, 50) < 0.5 * 180, `seam ${at(shut, 50, 50)}`);
    assert.equal(at(shut, 50, 45), 180, 'the upper lip was painted over');
    assert.equal(at(shut, 50, 56), 180, 'the lower lip was painted over');
    assert.equal(at(shut, 10, 50), 180, 'painted past the mouth corner');
    const half = paint(0.5);
    assert.ok(at(half, 50, 50) > at(shut, 50, 50) && at(half, 50, 50) < 240);
  });
});

describe('blending', () => {
  it('Laplacian-pyramid blending leaves the image under a zero mask and writes the patch under a full mask', T, () => {
    const b = new PyramidBlender(64 * 64, 3);
    const dst = new Uint8Array(32 * 32 * 4).fill(100);
    const patch = new Float32Array(20 * 20 * 3).fill(200);
    b.blend(dst, 32, 32, 5, 5, 20, 20, patch, new Float32Array(400));
    assert.ok(dst.every((v) => v === 100));
    b.blend(dst, 32, 32, 5, 5, 20, 20, patch, new Float32Array(400).fill(1));
    assert.equal(dst[(15 * 32 + 15) * 4], 200);
    assert.equal(dst[(2 * 32 + 2) * 4], 100);
  });

  it('a blender reused across regions of different sizes gives what a fresh one gives (no state carried between calls)', T, () => {
    let seed = 11;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const scene = Uint8Array.from({ length: 96 * 96 * 4 }, () => Math.floor(rnd() * 256));
    const job = (w: number, h: number): { patch: Float32Array; mask: Float32Array } => ({
      patch: Float32Array.from({ length: w * h * 3 }, () => rnd() * 255),
      mask: Float32Array.from({ length: w * h }, (_, i) => Math.min(1, Math.max(0, Math.sin(i / 9) * 1.4))),
    });
    const big = job(80, 70), small = job(23, 31);
    const used = new PyramidBlender(96 * 96, 3);
    used.blend(scene.slice(), 96, 96, 4, 6, 80, 70, big.patch, big.mask);
    const a = scene.slice(), b = scene.slice();
    used.blend(a, 96, 96, 40, 30, 23, 31, small.patch, small.mask);
    new PyramidBlender(96 * 96, 3).blend(b, 96, 96, 40, 30, 23, 31, small.patch, small.mask);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, scene, 'the blend wrote nothing');
  });
});

describe('renderer contract and enrollment', () => {
  const size = 128;
  const face = syntheticFace(size * 2, 0.3);
  const fake: FaceTrackerPort = { track: () => Promise.resolve(track(face)), reset: () => undefined };
  const noFace: FaceTrackerPort = { track: () => Promise.resolve({ ...track(face), landmarks: null, faces: 0 }), reset: () => undefined };

  it('enrollment is cached on disk by content hash and reloads identically; a faceless target is E_RENDER_NO_FACE', T, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'render-unit-'));
    try {
      const img = join(dir, 't.png');
      await writeImage(img, { ...testImage(size * 2), format: 'rgba' });
      const a = await enrollTarget(img, fake, { size, cacheDir: dir });
      const b = await enrollTarget(img, noFace, { size, cacheDir: dir }); // served from the cache
      assert.equal(a.key, b.key);
      assert.deepEqual(b.image.data, a.image.data);
      assert.deepEqual(b.landmarks, a.landmarks);
      await assert.rejects(enrollTarget(img, noFace, { size, cacheDir: null }), (e: unknown) => e instanceof RenderError && e.code === 'E_RENDER_NO_FACE');
      await writeFile(join(dir, 'bad.png'), 'not an image');
      await assert.rejects(enrollTarget(join(dir, 'bad.png'), fake, { size, cacheDir: null }), { code: 'E_MEDIA_CORRUPT' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('render() needs an enrolled target and a buffer of the right size, and is unusable after close()', T, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'render-unit-'));
    try {
      const img = join(dir, 't.png');
      await writeImage(img, { ...testImage(size * 2), format: 'rgba' });
      const r = await GeometricRenderer.create({ size });
      const out = new Uint8Array(size * size * 4);
      await assert.rejects(r.render(track(face), out), { code: 'E_RENDER_NOT_ENROLLED' });
      await r.enroll(await enrollTarget(img, fake, { size, cacheDir: null }));
      await assert.rejects(r.render(track(face), new Uint8Array(10)), { code: 'E_RENDER_BAD_ARG' });
      const info = await r.render(null, out, 0);
      assert.equal(info.state, 'waiting-neutral');
      // @ts-expect-error: size must be a number
      await assert.rejects(GeometricRenderer.create({ size: '256' }), TypeError);
      r.close();
      r.close();
      await assert.rejects(r.render(null, out), InvalidStateError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
