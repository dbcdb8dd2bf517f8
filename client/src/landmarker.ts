/**
 * The browser's face-mesh landmarker: MediaPipe Tasks' FaceLandmarker on the
 * CPU, with the model bundle and wasm runtime served by our own server
 * (assembled at build time from the npm packages' TFLite files, see
 * docs/face-overlay.md). Used by the face overlay and by privacy mode.
 */
import { FaceLandmarker, FilesetResolver } from '@mediapipe/tasks-vision';

const ASSETS = '/dist/face';
/** The face-mesh model has 468 points; Tasks pads its output to 478 (irises) for this model. */
export const MESH_POINTS = 468;

export async function createFaceLandmarker(): Promise<FaceLandmarker> {
  const fileset = await FilesetResolver.forVisionTasks(`${ASSETS}/wasm`);
  return FaceLandmarker.createFromOptions(fileset, {
    baseOptions: { modelAssetPath: `${ASSETS}/face_landmarker.task`, delegate: 'CPU' },
    runningMode: 'VIDEO',
    numFaces: 1,
  });
}
