/**
 * Where the model files come from: plain files in @mediapipe/face_detection, and entries of
 * @mediapipe/face_mesh's packed-assets bundle, whose file table lives in the Emscripten loader
 * script (`loadPackage({"files": [{filename, start, end}, ...]})`).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface SourcePackage {
  name: string;
  version: string;
  license: string;
  dir: string;
}

export interface SourceFile {
  pkg: SourcePackage;
  /** Path inside the package, or `<bundle>#<entry>` for packed assets. */
  path: string;
  data: Uint8Array;
}

const require = createRequire(import.meta.url);

export class ModelSourceError extends Error {
  readonly code = 'E_MODEL_SOURCE';
  constructor(message: string) {
    super(message);
    this.name = 'ModelSourceError';
  }
}

export async function findPackage(name: string): Promise<SourcePackage> {
  let pkgJson: string;
  try {
    // The MediaPipe packages have no "exports" map, so package.json resolves directly.
    pkgJson = require.resolve(`${name}/package.json`);
  } catch {
    throw new ModelSourceError(`npm package ${name} is not installed; run npm install`);
  }
  const meta = JSON.parse(await readFile(pkgJson, 'utf8')) as { version?: string; license?: string };
  return { name, version: meta.version ?? 'unknown', license: meta.license ?? 'unknown', dir: dirname(pkgJson) };
}

export async function readPackageFile(pkg: SourcePackage, path: string): Promise<SourceFile> {
  try {
    const data = new Uint8Array(await readFile(join(pkg.dir, path)));
    return { pkg, path, data };
  } catch {
    throw new ModelSourceError(`${pkg.name}@${pkg.version} has no file ${path}; is the package version the expected one?`);
  }
}

interface PackedEntry {
  filename: string;
  start: number;
  end: number;
}

/** Extracts named entries (by basename) from an Emscripten packed-assets bundle. */
export async function readPackedAssets(pkg: SourcePackage, loaderPath: string, dataPath: string, names: string[]): Promise<Map<string, SourceFile>> {
  const loader = await readPackageFile(pkg, loaderPath);
  const text = new TextDecoder().decode(loader.data);
  const match = /loadPackage\((\{"files":.*?\})\)/s.exec(text);
  if (!match?.[1]) throw new ModelSourceError(`${pkg.name}: no file table found in ${loaderPath}`);
  const table = JSON.parse(match[1]) as { files: PackedEntry[]; remote_package_size: number };
  const bundle = await readPackageFile(pkg, dataPath);
  if (bundle.data.length !== table.remote_package_size) {
    throw new ModelSourceError(`${pkg.name}: ${dataPath} has ${bundle.data.length} bytes, its loader says ${table.remote_package_size}`);
  }
  const out = new Map<string, SourceFile>();
  for (const name of names) {
    const entry = table.files.find((f) => f.filename.endsWith(`/${name}`));
    if (!entry) throw new ModelSourceError(`${pkg.name}: ${name} is not in ${dataPath}`);
    out.set(name, { pkg, path: `${dataPath}#${entry.filename}`, data: bundle.data.subarray(entry.start, entry.end) });
  }
  return out;
}
