/**
 * Batching across sessions (issue 16): the converted models take a symbolic batch dimension,
 * the batcher gathers requests into one model call, and the live pipeline handler serves
 * several sessions' frames from shared calls with the same output, byte for byte, as one at a
 * time. Real models, real footage (t6 talking from frame 0, d12 turning its head).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { BATCH_DIM, MODELS, modelPath, type ModelName } from '../models/manifest.ts';
import { ModelBatcher } from '../server/src/inference/batcher.ts';
import { LocalRunner } from '../server/src/inference/local-runner.ts';
import { rootLogger } from '../server/src/logger.ts';
import { readFrames } from '../server/src/media/video-io.ts';
import { REENACT_HANDLER, reenactHandlerSpec, type FrameResult } from '../server/src/pipeline/reenact-handler.ts';
import { resolveBatch } from '../server/src/tracking/face-models-handler.ts';

const FIX = fileURLToPath(new URL('./fixtures/', import.meta.url));
const TARGET = join(FIX, 'targets', 's1.jpg');

/** A smooth, item-dependent test image in the model's input range. */
function image(name: ModelName, item: number): Float32Array {
  const size = MODELS[name].inputs[0]!.shape.slice(1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = 0.5 + 0.45 * Math.sin(i * 0.0123 + item * 1.7) * Math.cos(i * 0.00071 - item);
  return out;
}

function outputs(name: ModelName): Float32Array[] {
  return MODELS[name].outputs.map((o) => new Float32Array(o.shape.slice(1).reduce((a, b) => a * b, 1)));
}

describe('models with a batch dimension', () => {
  for (const name of Object.keys(MODELS) as ModelName[]) {
    it(`${name}: declares ${BATCH_DIM} and gives each item of a batch of 5 what it gives alone`, async () => {
      const session = await ort.InferenceSession.create(modelPath(name), { executionProviders: ['cpu'] });
      try {
        assert.equal(session.inputMetadata[0]?.isTensor && session.inputMetadata[0].shape[0], BATCH_DIM);
        for (const m of session.outputMetadata) assert.equal(m.isTensor && m.shape[0], BATCH_DIM, m.name);
        const spec = MODELS[name];
        const input = spec.inputs[0]!;
        const items = [0, 1, 2, 3, 4].map((i) => image(name, i));
        const per = items[0]!.length;
        const stacked = new Float32Array(per * items.length);
        items.forEach((x, i) => stacked.set(x, i * per));
        const all = await session.run({ [input.name]: new ort.Tensor('float32', stacked, [items.length, ...input.shape.slice(1)]) });
        let worst = 0;
        for (const [i, x] of items.entries()) {
          const one = await session.run({ [input.name]: new ort.Tensor('float32', x, input.shape) });
          for (const o of spec.outputs) {
            const a = one[o.name]!.data as Float32Array;
            const b = (all[o.name]!.data as Float32Array).subarray(i * a.length, (i + 1) * a.length);
            assert.equal(all[o.name]!.dims[0], items.length);
            for (let k = 0; k < a.length; k++) worst = Math.max(worst, Math.abs(a[k]! - b[k]!));
          }
        }
        assert.ok(worst <= 1e-4, `largest difference ${worst}`);
      } finally {
        await session.release();
      }
    });
  }
});

describe('ModelBatcher', () => {
  const name: ModelName = 'faceLandmarks';
  const spec = MODELS[name];

  it('gathers requests that arrive together, up to maxBatch, and splits the outputs back', async () => {
    const session = await ort.InferenceSession.create(modelPath(name), { executionProviders: ['cpu'] });
    try {
      const calls: number[] = [];
      const b = new ModelBatcher(
        (feeds) => {
          calls.push(feeds['input']!.dims[0]!);
          return session.run(feeds);
        },
        spec.inputs[0]!,
        spec.outputs,
        { maxBatch: 4, windowMs: 0 },
      );
      const inputs = [0, 1, 2, 3, 4, 5].map((i) => image(name, i));
      const outs = inputs.map(() => outputs(name));
      const runs = await Promise.all(inputs.map((x, i) => b.submit(x, outs[i]!)));
      // Four fill the first call at once; the two left gather while it runs and go next.
      assert.deepEqual(calls, [4, 2]);
      assert.deepEqual(runs.map((r) => r.batch), [4, 4, 4, 4, 2, 2]);
      assert.deepEqual(b.stats.sizes, [0, 0, 1, 0, 1]);
      for (const [i, x] of inputs.entries()) {
        const alone = await session.run({ input: new ort.Tensor('float32', x, spec.inputs[0]!.shape) });
        spec.outputs.forEach((o, k) => assert.deepEqual(outs[i]![k], alone[o.name]!.data, `item ${i} output ${o.name}`));
      }
      // Alone, a request does not wait for company.
      const t0 = performance.now();
      const alone = await b.submit(inputs[0]!, outputs(name));
      assert.equal(alone.batch, 1);
      assert.ok(alone.waitMs < 50, `a lone request waited ${alone.waitMs} ms`);
      assert.ok(performance.now() - t0 < 2000);
    } finally {
      await session.release();
    }
  });

  it('a failed call rejects every request in it, and the next batch runs', async () => {
    let fail = true;
    const b = new ModelBatcher(
      (feeds) => {
        if (fail) {
          fail = false;
          return Promise.reject(new Error('device lost'));
        }
        const n = feeds['input']!.dims[0]!;
        return Promise.resolve(Object.fromEntries(spec.outputs.map((o) => [o.name, new ort.Tensor('float32', new Float32Array(n * o.shape.slice(1).reduce((a, c) => a * c, 1)).fill(n), [n, ...o.shape.slice(1)])])));
      },
      spec.inputs[0]!,
      spec.outputs,
      { maxBatch: 8, windowMs: 0 },
    );
    const first = await Promise.allSettled([0, 1, 2].map((i) => b.submit(image(name, i), outputs(name))));
    assert.deepEqual(first.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
    const out = outputs(name);
    const r = await b.submit(image(name, 9), out);
    assert.equal(r.batch, 1);
    assert.equal(out[0]![0], 1);
    await assert.rejects(b.submit(new Float32Array(3), outputs(name)), /input has 3 values/);
    await assert.rejects(b.submit(image(name, 0), [new Float32Array(2)]), /output buffer 0/);
  });

  it('the default is no gathering on the CPU and 16 on a GPU provider', () => {
    assert.deepEqual(resolveBatch('cpu'), { maxBatch: 1, windowMs: 0 });
    assert.deepEqual(resolveBatch('webgpu'), { maxBatch: 16, windowMs: 0 });
    assert.deepEqual(resolveBatch('cuda', { maxBatch: 32, windowMs: 2 }), { maxBatch: 32, windowMs: 2 });
  });
});

describe('the live pipeline handler with batching', () => {
  /** Runs two sessions (t6 and d12 onto s1) frame by frame, both frames of a step at once. */
  async function run(maxBatch: number, frames: number): Promise<{ out: Record<string, Uint8Array[]>; batches: number[] }> {
    const runner = await LocalRunner.create([reenactHandlerSpec({ threads: 1, cacheDir: undefined, provider: 'cpu', batch: { maxBatch } })], rootLogger.child('test'));
    try {
      const clips = { t6: join(FIX, 'talking', 't6.mp4'), d12: join(FIX, 'driving', 'd12.mp4') };
      const decoded: Record<string, Uint8Array[]> = {};
      for (const [id, path] of Object.entries(clips)) {
        decoded[id] = [];
        for await (const f of readFrames(path, { width: 320, height: 240, format: 'yuv420p', maxFrames: frames })) decoded[id].push(Uint8Array.from(f.data));
        await runner.run(REENACT_HANDLER, { op: 'open', sessionId: id, targetPath: TARGET, size: 256 });
      }
      const out: Record<string, Uint8Array[]> = { t6: [], d12: [] };
      const batches: number[] = [];
      for (let i = 0; i < frames; i++) {
        const results = await Promise.all(
          Object.keys(clips).map((id) => runner.run<FrameResult>(REENACT_HANDLER, { op: 'frame', sessionId: id, width: 320, height: 240, data: decoded[id]![i]!.slice(), size: 256, timeMs: i * 40 })),
        );
        results.forEach((r, k) => {
          out[Object.keys(clips)[k]!]!.push(r.data.slice(0, 256 * 256));
          batches.push(r.batch ?? 0);
        });
      }
      return { out, batches };
    } finally {
      await runner.close();
    }
  }

  it('serves two sessions from shared model calls, with the same pictures as one at a time', async () => {
    const frames = 12;
    const serial = await run(1, frames);
    const batched = await run(4, frames);
    assert.ok(serial.batches.every((b) => b <= 1), `unbatched runs: ${serial.batches.join(',')}`);
    const shared = batched.batches.filter((b) => b === 2).length;
    // The first frame of each session runs the detector first; after that the two sessions' landmark requests meet.
    assert.ok(shared >= frames, `frames served by a batch of 2: ${shared} of ${batched.batches.length} (${batched.batches.join(',')})`);
    for (const id of ['t6', 'd12']) {
      for (let i = 0; i < frames; i++) assert.deepEqual(batched.out[id]![i], serial.out[id]![i], `${id} frame ${i}`);
    }
  });
});
