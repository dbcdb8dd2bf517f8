/**
 * The face overlay's model bundle, assembled at build time from the npm
 * TFLite files (client/tools/face-task.ts): a stored zip with the two files
 * MediaPipe Tasks looks for, each a valid TFLite model with input metadata,
 * the landmark output padded to 478 points, and the original weights intact.
 * Chromium runs it in test/browser.test.ts (face overlay journey).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { faceLandmarkerTask, storedZip } from '../client/tools/face-task.ts';
import { editModel, imageInputMetadata } from '../client/tools/tflite-metadata.ts';
import { readTflite } from '../models/tflite-reader.ts';
import { findPackage, readPackageFile } from '../models/sources.ts';

/** Entries of a stored zip: name → bytes. */
function unzip(zip: Uint8Array): Map<string, Uint8Array> {
  const v = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const out = new Map<string, Uint8Array>();
  let p = 0;
  while (v.getUint32(p, true) === 0x04034b50) {
    assert.equal(v.getUint16(p + 8, true), 0, 'entries are stored, not deflated');
    const size = v.getUint32(p + 18, true);
    const nameLen = v.getUint16(p + 26, true);
    const name = new TextDecoder().decode(zip.subarray(p + 30, p + 30 + nameLen));
    out.set(name, zip.subarray(p + 30 + nameLen, p + 30 + nameLen + size));
    p += 30 + nameLen + size;
  }
  return out;
}

test('the face_landmarker.task bundle holds a detector and a 478-point landmark model, both with input metadata', { timeout: 30_000 }, async () => {
  const files = unzip(await faceLandmarkerTask());
  assert.deepEqual([...files.keys()], ['face_detector.tflite', 'face_landmarks_detector.tflite']);
  const det = readTflite(files.get('face_detector.tflite')!);
  assert.deepEqual(det.tensors[det.inputs[0]!]?.shape, [1, 128, 128, 3]);
  const lm = readTflite(files.get('face_landmarks_detector.tflite')!);
  assert.deepEqual(lm.tensors[lm.inputs[0]!]?.shape, [1, 192, 192, 3]);
  assert.deepEqual(lm.outputs.map((i) => lm.tensors[i]?.shape), [[1, 1, 1, 1434], [1, 1, 1, 1]]);
  for (const bytes of files.values()) assert.ok(Buffer.from(bytes).includes('TFLITE_METADATA'), 'no TFLITE_METADATA entry');
});

test('editModel keeps every original tensor and its weights byte for byte, at the same alignment', { timeout: 30_000 }, async () => {
  const pkg = await findPackage('@mediapipe/face_detection');
  const original = (await readPackageFile(pkg, 'face_detection_short_range.tflite')).data;
  const edited = editModel(original, { metadata: imageInputMetadata('face_detector', 127.5, 127.5) });
  const a = readTflite(original);
  const b = readTflite(edited);
  assert.equal(b.tensors.length, a.tensors.length);
  assert.deepEqual(b.outputs, a.outputs);
  for (const [i, t] of a.tensors.entries()) {
    const u = b.tensors[i];
    assert.equal(u?.name, t.name);
    assert.deepEqual(u?.shape, t.shape);
    assert.deepEqual(u?.data, t.data);
    // The old file moves by a multiple of 16, so every buffer keeps its alignment.
    if (u?.data && t.data) assert.equal((u.data.byteOffset - edited.byteOffset) % 16, (t.data.byteOffset - original.byteOffset) % 16, `${t.name} moved alignment`);
  }
  // @ts-expect-error: metadata is required
  assert.throws(() => editModel(original, {}));
});

test('storedZip writes a zip whose entries read back', { timeout: 5_000 }, () => {
  const zip = storedZip([{ name: 'a.txt', data: new TextEncoder().encode('hello') }]);
  assert.equal(new TextDecoder().decode(unzip(zip).get('a.txt')), 'hello');
});
