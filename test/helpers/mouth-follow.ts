/**
 * How the live output's mouth follows the actor: every stamped output frame
 * is matched to the driving frame with that stamp id, and both are tracked,
 * each sequence with its own tracker (the live pipeline's 468-point model,
 * REENACT_TRACKER_MODEL's default). Returns the mouth-opening pairs.
 */
import type { DecodedClip } from '../../loadtest/peers.ts';
import type { I420Frame } from '../../server/src/rtc/wrtc.ts';
import { i420ToRgba } from '../../server/src/media/convert.ts';
import { mouthOpening } from '../../server/src/render/fidelity.ts';
import { Tracker } from '../../server/src/tracking/tracker.ts';
import { readStamp } from '../../shared/stamp.ts';

export async function mouthPairsByStamp(clip: DecodedClip, outputs: readonly I420Frame[]): Promise<{ driving: number[]; output: number[] }> {
  const driverTracker = await Tracker.create({ threads: 1, attention: false });
  const outputTracker = await Tracker.create({ threads: 1, attention: false });
  const driving: number[] = [];
  const output: number[] = [];
  try {
    const seen = new Set<number>();
    const rgbaIn = new Uint8Array(clip.width * clip.height * 4);
    let rgbaOut = new Uint8Array(0);
    for (const f of outputs) {
      const id = readStamp(f.data, f.width);
      if (id === null || seen.has(id)) continue;
      seen.add(id);
      const src = clip.frames[(id - 1) % clip.frames.length];
      if (!src) continue;
      const timeMs = (id * 1000) / clip.fps;
      i420ToRgba(src, clip.width, clip.height, rgbaIn);
      const dt = await driverTracker.track({ width: clip.width, height: clip.height, format: 'rgba', data: rgbaIn }, timeMs);
      if (rgbaOut.length !== f.width * f.height * 4) rgbaOut = new Uint8Array(f.width * f.height * 4);
      i420ToRgba(f.data, f.width, f.height, rgbaOut);
      const ot = await outputTracker.track({ width: f.width, height: f.height, format: 'rgba', data: rgbaOut }, timeMs);
      const a = mouthOpening(dt);
      const b = mouthOpening(ot);
      if (Number.isFinite(a) && Number.isFinite(b)) {
        driving.push(a);
        output.push(b);
      }
    }
  } finally {
    await driverTracker.close();
    await outputTracker.close();
  }
  return { driving, output };
}
