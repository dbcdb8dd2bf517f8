/**
 * The live pipeline's handler (server/src/pipeline/reenact-handler.ts) run
 * in-process on real models, a real target (s1, whose lips are parted) and
 * real actor landmarks (d9, resting with a closed mouth), through the
 * privacy-mode 'landmarks' op: a session's lip-zero option reaches its
 * renderer, per session and from the next frame on.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { rootLogger } from '../server/src/logger.ts';
import { LocalRunner } from '../server/src/inference/local-runner.ts';
import { REENACT_HANDLER, reenactHandlerSpec, type FrameResult } from '../server/src/pipeline/reenact-handler.ts';
import { trackClip } from '../server/src/render/fidelity.ts';
import { enrollTarget } from '../server/src/render/target.ts';
import { LIPS_LOWER_INNER, LIPS_UPPER_INNER } from '../server/src/render/topology.ts';
import { Tracker } from '../server/src/tracking/tracker.ts';

const FIX = fileURLToPath(new URL('./fixtures/', import.meta.url));
const TARGET = join(FIX, 'targets', 's1.jpg');
const SIZE = 256;

let actorPoints: Float32Array;
/** Luma boxes in output pixels: around the target's inner lips, and around its eyes. */
let mouthBox: [number, number, number, number];
let eyeBox: [number, number, number, number];

before(async () => {
  const tracker = await Tracker.create({ threads: 1, detectIntervalMs: 0, attention: false });
  try {
    const { tracks } = await trackClip(join(FIX, 'driving', 'd9.mp4'), tracker, 1, 3);
    actorPoints = Float32Array.from(tracks[2]!.landmarks!.flat());
    const t = await enrollTarget(TARGET, tracker, { size: SIZE, cacheDir: null });
    const box = (ids: number[], pad: number): [number, number, number, number] => {
      const xs = ids.map((i) => t.landmarks[i * 3]!), ys = ids.map((i) => t.landmarks[i * 3 + 1]!);
      return [Math.floor(Math.min(...xs)) - pad, Math.floor(Math.min(...ys)) - pad, Math.ceil(Math.max(...xs)) + pad, Math.ceil(Math.max(...ys)) + pad];
    };
    mouthBox = box([...LIPS_UPPER_INNER, ...LIPS_LOWER_INNER], 1);
    eyeBox = box([33, 133, 263, 362, 159, 145, 386, 374], 3);
  } finally {
    await tracker.close();
  }
}, { timeout: 60_000 });

/**
 * Three sessions on one handler, fed the same still actor for 12 frames: lip zero on,
 * off, and on for 9 frames then switched off (as the page's checkbox does mid-session).
 * Returns each session's last output luma plane.
 */
async function renderSessions(): Promise<{ on: Uint8Array; off: Uint8Array; switched: Uint8Array }> {
  const runner = await LocalRunner.create([reenactHandlerSpec({ threads: 1, cacheDir: undefined })], rootLogger.child('test'));
  try {
    const plan = { on: () => true, off: () => false, switched: (i: number) => i < 9 };
    const last: Partial<Record<keyof typeof plan, Uint8Array>> = {};
    for (const id of Object.keys(plan)) await runner.run(REENACT_HANDLER, { op: 'open', sessionId: id, targetPath: TARGET, size: SIZE });
    for (let i = 0; i < 12; i++) {
      for (const [id, lipZero] of Object.entries(plan) as [keyof typeof plan, (i: number) => boolean][]) {
        const out = await runner.run<FrameResult>(REENACT_HANDLER, { op: 'landmarks', sessionId: id, points: Float32Array.from(actorPoints), size: SIZE, lipZero: lipZero(i), timeMs: i * 33 });
        assert.ok(out.face, 'the landmarks were not taken as a face');
        last[id] = out.data.slice(0, SIZE * SIZE);
      }
    }
    return { on: last.on!, off: last.off!, switched: last.switched! };
  } finally {
    await runner.close();
  }
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array, [x0, y0, x1, y1]: [number, number, number, number]): number {
  let s = 0, n = 0;
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++, n++) s += Math.abs(a[y * SIZE + x]! - b[y * SIZE + x]!);
  return s / n;
}

describe('reenact handler', () => {
  let out: Awaited<ReturnType<typeof renderSessions>>;
  before(async () => {
    out = await renderSessions();
  }, { timeout: 120_000 });

  it('lipZero reaches the renderer per session: with it the parted lips of the target close at the actor rest, without it they stay, and nothing else changes', () => {
    const mouth = meanAbsDiff(out.on, out.off, mouthBox), eyes = meanAbsDiff(out.on, out.off, eyeBox);
    console.log('lip zero on/off: mean luma difference, mouth', mouth.toFixed(2), 'eyes', eyes.toFixed(2));
    assert.ok(mouth > 4, `mouth region differs by only ${mouth.toFixed(2)} grey levels`);
    assert.ok(eyes < 0.5, `eye region differs by ${eyes.toFixed(2)} grey levels`);
  });

  it('switching lip zero off mid-session takes effect on the next frames: the output matches a session that never had it', () => {
    const toOff = meanAbsDiff(out.switched, out.off, mouthBox), toOn = meanAbsDiff(out.switched, out.on, mouthBox);
    console.log('switched session vs off / on, mouth', toOff.toFixed(2), toOn.toFixed(2));
    assert.ok(toOff < 0.5, `after the switch the mouth still differs from lip zero off by ${toOff.toFixed(2)} grey levels`);
    assert.ok(toOn > 4, `after the switch the mouth differs from lip zero on by only ${toOn.toFixed(2)} grey levels`);
  });
});

describe('enrollment cache', () => {
  it('a corrupt, truncated or foreign cache file is enrolled again, not trusted, and replaced by a good one', { timeout: 60_000 }, async () => {
    const tracker = await Tracker.create({ threads: 1, detectIntervalMs: 0, attention: false });
    const cacheDir = await mkdtemp(join(tmpdir(), 'reenact-cache-'));
    try {
      const good = await enrollTarget(TARGET, tracker, { size: SIZE, cacheDir });
      const [file] = (await readdir(cacheDir)).filter((f) => f.endsWith('.bin'));
      assert.ok(file, 'nothing was cached');
      const path = join(cacheDir, file);
      const bytes = await readFile(path);
      const damaged: [string, Buffer][] = [
        ['garbage', Buffer.from(bytes.map((_, i) => (i * 2654435761) >>> 24))],
        ['truncated', bytes.subarray(0, Math.floor(bytes.length / 2))],
        ['flipped header', Buffer.concat([bytes.subarray(0, 12), Buffer.from('}}}}'), bytes.subarray(16)])],
        ['empty', Buffer.alloc(0)],
      ];
      for (const [what, body] of damaged) {
        await writeFile(path, body);
        const again = await enrollTarget(TARGET, tracker, { size: SIZE, cacheDir });
        assert.deepEqual([...again.landmarks].map((v) => Math.round(v * 100)), [...good.landmarks].map((v) => Math.round(v * 100)), `${what}: the target came back different`);
        assert.deepEqual(await readFile(path), bytes, `${what}: the cache file was not rewritten whole`);
      }
    } finally {
      await tracker.close();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});
