/**
 * Paste-back benchmark: ms per frame (p50, p95) of composing a rendered face
 * into each output profile's canvas (Compositor.compose: background copy,
 * face resample, I420 conversion, feathered blend), at render sizes 256 and
 * 512, for a large still (s1, 1145²) and a clip target's frame (s18, 1280×720).
 * The face is the enrolled reference image: composition cost does not depend
 * on what the face shows.
 *
 *   node --import tsx loadtest/bench-compose.ts        (prints JSON)
 */
import { fileURLToPath } from 'node:url';
import { compositorFor } from '../server/src/render/compositor.ts';
import { LIVE_FRAME_MAX_SIDE } from '../server/src/pipeline/reenact-handler.ts';
import { enrollTarget, referencePicture } from '../server/src/render/target.ts';
import { Tracker } from '../server/src/tracking/tracker.ts';
import { OUTPUT_PROFILES } from '../shared/protocol.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TARGETS = ['s1.jpg', 's18.mp4'];
const FRAMES = 200;

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

export async function benchCompose(): Promise<object> {
  const tracker = await Tracker.create({ threads: 1 });
  const rows: object[] = [];
  try {
    for (const name of TARGETS) {
      const path = `${ROOT}test/fixtures/targets/${name}`;
      for (const size of [256, 512]) {
        const target = await enrollTarget(path, tracker, { size });
        const picture = await referencePicture(path, target);
        for (const profile of OUTPUT_PROFILES) {
          const c = compositorFor(picture, target, profile, LIVE_FRAME_MAX_SIDE);
          if (!c) continue;
          const out = new Uint8Array(c.frameBytes);
          for (let i = 0; i < 20; i++) c.compose(target.image.data, size, out);
          const times: number[] = [];
          for (let i = 0; i < FRAMES; i++) {
            const t0 = performance.now();
            c.compose(target.image.data, size, out);
            times.push(performance.now() - t0);
          }
          times.sort((a, b) => a - b);
          rows.push({ target: name, size, profile, canvas: `${c.width}x${c.height}`, faceSide: Math.round(c.layout.face.side), msP50: +pct(times, 0.5).toFixed(2), msP95: +pct(times, 0.95).toFixed(2) });
        }
      }
    }
  } finally {
    await tracker.close();
  }
  return { frames: FRAMES, rows };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(JSON.stringify(await benchCompose(), null, 2));
}
