/**
 * The independent grader: dlib's HOG face detector and 68-point shape model
 * (Debian's libdlib, built by scripts/build-dlib-grader.sh), with the pose
 * fitted to the canonical face through a 68-point correspondence
 * (grade-measures.ts). Nothing here shares code with the tracker the renderer
 * is driven by, except the canonical face the pose is expressed against.
 */
import type { FaceGrader } from './matrix.ts';
import type { Grade } from './measures.ts';
import { DlibGrader, eyeOpen68, headPose68, interOcular68, mouthGap68, POSE_POINTS_68 } from './grader.ts';

export function grade68(p: Float64Array): Grade {
  const pose = headPose68(p);
  const rigid = new Float64Array(POSE_POINTS_68.length * 2);
  POSE_POINTS_68.forEach((i, k) => {
    rigid[k * 2] = p[i * 2]!;
    rigid[k * 2 + 1] = p[i * 2 + 1]!;
  });
  return {
    mouth: mouthGap68(p), eyeR: eyeOpen68(p, 0), eyeL: eyeOpen68(p, 1),
    yaw: pose.yaw, pitch: pose.pitch, roll: pose.roll, rigid, iod: interOcular68(p),
  };
}

export class DlibFaceGrader implements FaceGrader {
  readonly name = 'dlib';
  readonly #dlib: DlibGrader;

  private constructor(dlib: DlibGrader) {
    this.#dlib = dlib;
  }

  static async create(): Promise<DlibFaceGrader> {
    return new DlibFaceGrader(await DlibGrader.create());
  }

  async grade(rgba: Uint8Array, width: number, height: number): Promise<Grade | null> {
    const p = await this.#dlib.grade(rgba, width, height);
    return p ? grade68(p) : null;
  }

  /** dlib detects every frame afresh: nothing to forget. */
  reset(): void {}

  close(): Promise<void> {
    return this.#dlib.close();
  }
}
