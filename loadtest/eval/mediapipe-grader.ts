/**
 * The project's own tracker as a grader: an unfiltered instance (a filter
 * would lag the measurement by a frame and hide jitter), the face mesh's
 * Procrustes pose, and the same mouth and lid measures the renderer uses.
 */
import type { FaceTrack } from '../../shared/tracking.ts';
import { eyeOpenness, interOcular, mouthGap } from '../../server/src/render/face-measure.ts';
import { EYES, MESH_POINTS, STABLE_POINTS } from '../../server/src/render/topology.ts';
import { Tracker } from '../../server/src/tracking/tracker.ts';
import type { FaceGrader } from './matrix.ts';
import type { Grade } from './measures.ts';

export function gradeTrack(t: FaceTrack): Grade | null {
  if (!t.landmarks || t.landmarks.length < MESH_POINTS || !t.pose) return null;
  const p = new Float64Array(MESH_POINTS * 3);
  for (let i = 0; i < MESH_POINTS; i++) p.set(t.landmarks[i]!, i * 3);
  const rigid = new Float64Array(STABLE_POINTS.length * 2);
  STABLE_POINTS.forEach((i, k) => {
    rigid[k * 2] = p[i * 3]!;
    rigid[k * 2 + 1] = p[i * 3 + 1]!;
  });
  return {
    mouth: mouthGap(p), eyeR: eyeOpenness(p, EYES[0]!), eyeL: eyeOpenness(p, EYES[1]!),
    yaw: t.pose.yaw, pitch: t.pose.pitch, roll: t.pose.roll, rigid, iod: interOcular(p),
  };
}

export class MediapipeGrader implements FaceGrader {
  readonly name = 'mediapipe';
  readonly #tracker: Tracker;

  private constructor(tracker: Tracker) {
    this.#tracker = tracker;
  }

  static async create(): Promise<MediapipeGrader> {
    return new MediapipeGrader(await Tracker.create({ threads: 1, filter: false, detectIntervalMs: 0 }));
  }

  async grade(rgba: Uint8Array, width: number, height: number, timeMs: number): Promise<Grade | null> {
    return gradeTrack(await this.#tracker.track({ width, height, format: 'rgba', data: rgba }, timeMs));
  }

  reset(): void {
    this.#tracker.reset();
  }

  async close(): Promise<void> {
    await this.#tracker.close();
  }
}
