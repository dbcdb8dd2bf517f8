/**
 * Offline reenactment of a driving video onto a target (image or clip): the
 * engine behind `npm run reenact`, also used by tests and the benchmark.
 * One output frame per driving frame at the driving fps, size×size at the
 * target's framing; optionally driving | output side by side.
 */
import type { FaceTrack } from '../../../shared/tracking.ts';
import { MediaError, probeAudioOffset, probeMedia, readFrames, VideoWriter, type RawFrame } from '../media/video-io.ts';
import { RenderError } from './errors.ts';
import { cropResize, type CropRect } from './image-ops.ts';
import { GeometricRenderer, type RenderInfo } from './renderer.ts';
import type { RetargetParams } from './retarget.ts';
import { enrollTarget, faceCrop, referencePicture, type EnrolledTarget, type FaceTrackerPort } from './target.ts';
import { compositorFor } from './compositor.ts';
import { i420Size, rgbaToI420 } from '../media/convert.ts';
import { WatermarkEmbedder } from '../provenance/watermark.ts';
import type { OutputProfile } from '../../../shared/protocol.ts';
import { LANDMARK_SLOTS } from './mesh.ts';
import { MESH_POINTS } from './topology.ts';

export interface ReenactOptions {
  driving: string;
  target: string;
  /** Output video path (.mp4 / .y4m); omit to only call onFrame. */
  out?: string;
  /** .mp4 output: carry the driving clip's sound, aligned to the frames (default true). */
  audio?: boolean;
  /** Face render side, 256 or 512 from the CLI (any 64..2048 works). */
  size: number;
  /** What the written video shows (canvas.ts); default 'face'. Not with sideBySide. */
  output?: OutputProfile;
  /** Provenance payload bits: every written frame is marked (docs/provenance.md). */
  watermark?: Uint8Array;
  sideBySide?: boolean;
  /** Stop after this many driving frames. */
  maxFrames?: number;
  /** Tracker for the driving video, and one for the target (may be the same instance). */
  tracker: FaceTrackerPort;
  targetTracker?: FaceTrackerPort;
  cacheDir?: string | null;
  retarget?: Partial<RetargetParams>;
  /** Largest still target accepted, pixels. */
  maxPixels?: number;
  onProgress?: (done: number, total: number) => void;
  /** Called once the target is enrolled (before the first frame). */
  onEnrolled?: (target: EnrolledTarget) => void;
  /** Called per frame with the rendered face (size×size RGBA, reused: copy to keep), the driving frame and its track. */
  onFrame?: (index: number, output: Uint8Array, driving: RawFrame, track: FaceTrack, info: RenderInfo) => void | Promise<void>;
}

export interface ReenactResult {
  frames: number;
  fps: number;
  /** Frames where the driving video had no face. */
  framesWithoutFace: number;
  renderMsP50: number;
  renderMsP95: number;
  target: EnrolledTarget;
  width: number;
  height: number;
}

export async function reenactVideo(opts: ReenactOptions): Promise<ReenactResult> {
  const size = opts.size;
  if (!Number.isInteger(size) || size < 64 || size > 2048) throw new RenderError('E_RENDER_BAD_ARG', `--size must be 256 or 512 (got ${String(size)})`);
  const drivingInfo = await probeMedia(opts.driving);
  if (!drivingInfo.isVideo || drivingInfo.fps <= 0) throw new MediaError('E_MEDIA_CORRUPT', `${opts.driving} is not a video`);
  const target = await enrollTarget(opts.target, opts.targetTracker ?? opts.tracker, { size, cacheDir: opts.cacheDir, maxPixels: opts.maxPixels });
  opts.onEnrolled?.(target);
  const renderer = await GeometricRenderer.create({ size, retarget: opts.retarget });
  let writer: VideoWriter | null = null;
  const output = opts.output ?? 'face';
  if (opts.sideBySide && output !== 'face') throw new RenderError('E_RENDER_BAD_ARG', 'side by side shows the face square; it does not combine with an output profile');
  // Paste-back at the picture's native size: the offline tool has no frame budget.
  const canvas = output === 'face' ? null : compositorFor(await referencePicture(opts.target, target, opts.maxPixels), target, output);
  const width = canvas ? canvas.width : opts.sideBySide ? size * 2 : size;
  const mark = opts.watermark ? new WatermarkEmbedder(opts.watermark, 0) : null;
  const height = canvas ? canvas.height : size;
  const times: number[] = [];
  let frames = 0, noFace = 0;
  try {
    await renderer.enroll(target);
    if (opts.out) {
      // Output frame i is driving frame i at the driving rate, so the driving sound lines up as it was.
      const offsetSec = opts.audio === false ? null : await probeAudioOffset(opts.driving);
      const audio = offsetSec === null ? undefined : { path: opts.driving, offsetSec };
      writer = new VideoWriter(opts.out, { width, height, fps: drivingInfo.fps, format: canvas || mark ? 'yuv420p' : 'rgba', audio });
    }
    const out = new Uint8Array(size * size * 4);
    const composed = canvas || mark ? new Uint8Array(i420Size(width, height)) : null;
    const sbs = opts.sideBySide ? new Uint8Array(width * size * 4) : null;
    let drivingCrop: CropRect | null = null;
    const total = opts.maxFrames ? Math.min(opts.maxFrames, drivingInfo.frames || opts.maxFrames) : drivingInfo.frames;
    opts.tracker.reset();
    for await (const frame of readFrames(opts.driving, { format: 'rgba', maxFrames: opts.maxFrames })) {
      const timeMs = (frames * 1000) / drivingInfo.fps;
      const track = await opts.tracker.track(frame, timeMs);
      if (!track.landmarks) noFace++;
      const info = await renderer.render(track, out, timeMs);
      times.push(info.ms);
      if (sbs) {
        if (!drivingCrop && track.landmarks && track.landmarks.length >= MESH_POINTS) drivingCrop = faceCrop(flat(track), frame.width, frame.height);
        const left = cropResize(frame, drivingCrop ?? centreSquare(frame), size);
        for (let y = 0; y < size; y++) {
          sbs.set(left.data.subarray(y * size * 4, (y + 1) * size * 4), y * width * 4);
          sbs.set(out.subarray(y * size * 4, (y + 1) * size * 4), (y * width + size) * 4);
        }
      }
      if (canvas && composed) canvas.compose(out, size, composed);
      else if (composed) rgbaToI420(sbs ?? out, width, height, composed, width, height);
      if (mark && composed) mark.mark(composed, width, height, timeMs);
      if (writer) await writer.write(composed ?? sbs ?? out);
      if (opts.onFrame) await opts.onFrame(frames, out, frame, track, info);
      frames++;
      opts.onProgress?.(frames, Math.max(total, frames));
    }
    if (frames === 0) throw new MediaError('E_MEDIA_CORRUPT', `no frame could be decoded from ${opts.driving}`);
    if (writer) {
      const w = writer;
      writer = null;
      await w.close();
    }
  } finally {
    renderer.close();
    if (writer) await writer.close().catch(() => undefined);
  }
  times.sort((a, b) => a - b);
  return {
    frames, fps: drivingInfo.fps, framesWithoutFace: noFace, target, width, height,
    renderMsP50: times[Math.floor(times.length * 0.5)] ?? 0, renderMsP95: times[Math.min(times.length - 1, Math.floor(times.length * 0.95))] ?? 0,
  };
}

function flat(track: FaceTrack): Float64Array {
  const out = new Float64Array(LANDMARK_SLOTS * 3);
  track.landmarks!.forEach((p, i) => {
    if (i < LANDMARK_SLOTS) out.set(p, i * 3);
  });
  return out;
}

function centreSquare(f: RawFrame): CropRect {
  const side = Math.min(f.width, f.height);
  return { x: (f.width - side) / 2, y: (f.height - side) / 2, side };
}
