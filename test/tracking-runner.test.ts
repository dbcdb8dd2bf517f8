/**
 * InferenceRunner: worker life cycle, transfer semantics, failure classification and restart,
 * with the diagnostic echo handler and the real face-model handler.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildModels } from '../models/build.ts';
import { setLogLevel } from '../server/src/logger.ts';
import { echoHandlerSpec } from '../server/src/inference/echo-handler.ts';
import { InferenceError, InvalidStateError } from '../server/src/inference/errors.ts';
import { InferenceRunner } from '../server/src/inference/runner.ts';
import { faceHandlerSpec } from '../server/src/tracking/face-models-handler.ts';
import { Tracker } from '../server/src/tracking/tracker.ts';
import { decodeImage } from '../server/src/media/video-io.ts';

setLogLevel('error');

function isCode(code: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof Error, `expected an Error, got ${String(err)}`);
    assert.equal((err as { code?: string }).code, code, `expected ${code}, got ${(err as { code?: string }).code}: ${err.message}`);
    return true;
  };
}

describe('InferenceRunner', { timeout: 60_000 }, () => {
  test('echoes a buffer that is moved to the worker and moved back, not copied', { timeout: 20_000 }, async () => {
    const runner = await InferenceRunner.create({ name: 't-echo', handlers: [echoHandlerSpec()] });
    try {
      const data = new Float32Array([1, 2, 3]);
      const back = await runner.run<{ data: Float32Array }>('echo', { op: 'echo', data, scale: 2 }, [data.buffer]);
      assert.equal(data.byteLength, 0, 'the sent buffer is detached (transferred)');
      assert.deepEqual([...back.data], [2, 4, 6]);
      assert.equal(runner.state, 'ready');
      assert.deepEqual(runner.info['echo'], { kind: 'echo' });
    } finally {
      await runner.close();
    }
  });

  test('a handler that throws fails only that run (transient E_INFER_RUN_FAILED)', { timeout: 20_000 }, async () => {
    const runner = await InferenceRunner.create({ name: 't-throw', handlers: [echoHandlerSpec()] });
    try {
      await assert.rejects(runner.run('echo', { op: 'throw' }), (err: unknown) => isCode('E_INFER_RUN_FAILED')(err) && !(err as InferenceError).permanent);
      await assert.rejects(runner.run('nope', { op: 'echo' }), isCode('E_INFER_UNKNOWN_HANDLER'));
      assert.equal(await runner.run('echo', { op: 'sleep', ms: 1 }), 'slept');
    } finally {
      await runner.close();
    }
  });

  test('a crashed worker rejects pending runs with E_INFER_WORKER_CRASHED and is restarted', { timeout: 30_000 }, async () => {
    const runner = await InferenceRunner.create({ name: 't-crash', handlers: [echoHandlerSpec()] });
    try {
      const restarted = new Promise<void>((resolve) => runner.on('restarted', () => resolve()));
      // Runs execute one at a time: the crash runs first, and the sleep queued behind it is pending when the thread dies.
      const crash = runner.run('echo', { op: 'crash' });
      const pending = runner.run('echo', { op: 'sleep', ms: 5_000 });
      await assert.rejects(crash, isCode('E_INFER_WORKER_CRASHED'));
      await assert.rejects(pending, isCode('E_INFER_WORKER_CRASHED'));
      // A run issued while restarting waits for the new worker.
      assert.equal(await runner.run('echo', { op: 'sleep', ms: 1 }), 'slept');
      await restarted;
      assert.equal(runner.restarts, 1);
    } finally {
      await runner.close();
    }
  });

  test('a hung worker is detected by the heartbeat (E_INFER_WORKER_HUNG) and restarted', { timeout: 30_000 }, async () => {
    const runner = await InferenceRunner.create({ name: 't-hang', handlers: [echoHandlerSpec()], heartbeatIntervalMs: 100, heartbeatTimeoutMs: 400 });
    try {
      await assert.rejects(runner.run('echo', { op: 'hang', ms: 3_000 }), isCode('E_INFER_WORKER_HUNG'));
      assert.equal(await runner.run('echo', { op: 'sleep', ms: 1 }), 'slept');
    } finally {
      await runner.close();
    }
  });

  test('more crashes than maxRestarts make the runner dead with a permanent E_INFER_DEAD', { timeout: 30_000 }, async () => {
    const runner = await InferenceRunner.create({ name: 't-dead', handlers: [echoHandlerSpec()], maxRestarts: 1 });
    const dead = new Promise<InferenceError>((resolve) => runner.on('dead', resolve));
    try {
      await assert.rejects(runner.run('echo', { op: 'crash' }), isCode('E_INFER_WORKER_CRASHED'));
      await assert.rejects(runner.run('echo', { op: 'crash' }), (e: unknown) => e instanceof InferenceError);
      const err = await dead;
      assert.equal(err.code, 'E_INFER_DEAD');
      assert.equal(err.permanent, true);
      assert.equal(runner.state, 'dead');
      await assert.rejects(runner.run('echo', { op: 'sleep', ms: 1 }), isCode('E_INFER_DEAD'));
    } finally {
      await runner.close();
    }
  });

  test('initialisation fails with E_INFER_INIT_FAILED or E_INFER_INIT_TIMEOUT', { timeout: 30_000 }, async () => {
    await assert.rejects(InferenceRunner.create({ name: 't-init', handlers: [echoHandlerSpec('echo', { failInit: true })] }), isCode('E_INFER_INIT_FAILED'));
    await assert.rejects(
      InferenceRunner.create({ name: 't-init', handlers: [{ name: 'x', module: '/nonexistent/handler.ts' }] }),
      isCode('E_INFER_INIT_FAILED'),
    );
    await assert.rejects(
      InferenceRunner.create({ name: 't-init', handlers: [echoHandlerSpec('echo', { initDelayMs: 5_000 })], initTimeoutMs: 300 }),
      isCode('E_INFER_INIT_TIMEOUT'),
    );
    // @ts-expect-error handlers is required
    await assert.rejects(InferenceRunner.create({ name: 'bad' }), TypeError);
  });

  test('close() rejects pending runs with InvalidStateError, is idempotent, and refuses later runs', { timeout: 20_000 }, async () => {
    const runner = await InferenceRunner.create({ name: 't-close', handlers: [echoHandlerSpec()] });
    const pending = runner.run('echo', { op: 'sleep', ms: 2_000 });
    const closing = runner.close();
    await assert.rejects(pending, InvalidStateError);
    await Promise.all([closing, runner.close()]);
    assert.equal(runner.state, 'closed');
    await assert.rejects(runner.run('echo', { op: 'sleep', ms: 1 }), InvalidStateError);
  });
});

describe('closing mid-inference', { timeout: 120_000 }, () => {
  // Ending a worker thread inside a native onnxruntime call aborted the whole process ("terminate
  // called after throwing an instance of 'Napi::Error'"; found when a server closed while its
  // enroller was enrolling an upload, reproduced here on the first try before the fix): close()
  // now lets the run in progress end first.
  test('closing a runner while the face models run back to back leaves this process alive', async () => {
    await buildModels();
    const frame = await decodeImage(new URL('./fixtures/targets/s42.jpg', import.meta.url).pathname);
    for (let i = 0; i < 6; i++) {
      const runner = await InferenceRunner.create({ name: `t-close-busy-${i}`, handlers: [faceHandlerSpec({ threads: 1 })] });
      const tracker = await Tracker.create({ runner });
      let runs = 0;
      let stop = false;
      const loop = (async (): Promise<unknown> => {
        while (!stop) {
          tracker.reset();
          try {
            await tracker.process(frame, 0);
            runs++;
          } catch (err) {
            return err;
          }
        }
        return null;
      })();
      await new Promise((r) => setTimeout(r, 200 + 37 * i));
      await runner.close();
      stop = true;
      const ended = await loop;
      assert.ok(runs > 0, 'no model run completed before the close: this would test nothing');
      assert.ok(ended === null || ended instanceof InvalidStateError, `the run in flight ended with ${String(ended)}`);
    }
    // Reaching here is the point: an abort ends this file's process, which is reported as failed.
  });
});

describe('shared face-model runner', { timeout: 90_000 }, () => {
  let runner: InferenceRunner;
  before(async () => {
    await buildModels();
    runner = await InferenceRunner.create({ name: 't-shared', handlers: [faceHandlerSpec({ threads: 1 }), echoHandlerSpec()] });
  });
  after(async () => {
    await runner.close();
  });

  test('two trackers share one loaded model in one worker, next to another handler, on CPU', { timeout: 60_000 }, async () => {
    assert.equal(runner.info['face']?.['provider'], 'cpu', 'no CUDA EP libraries here: CPU fallback');
    assert.equal(runner.info['face']?.['threads'], 1);
    const a = await Tracker.create({ runner });
    const b = await Tracker.create({ runner });
    const img = await decodeImage('test/fixtures/targets/s42.jpg');
    const [ra, rb] = await Promise.all([a.process(img, 0), b.process(img, 0)]);
    assert.equal(ra.faces, 1);
    assert.deepEqual([...(ra.landmarks ?? [])], [...(rb.landmarks ?? [])], 'same model, same input, same output');
    await a.close();
    // The runner belongs to the caller: closing a tracker leaves it running for the other one.
    assert.equal(runner.state, 'ready');
    assert.equal((await b.process(img, 0)).faces, 1);
    await b.close();
    await assert.rejects(Tracker.create({ runner, handler: 'echo' }), TypeError);
  });
});
