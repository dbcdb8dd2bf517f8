/**
 * Loads one ONNX model from models/out with onnxruntime-node: explicit thread counts, provider
 * order CUDA (when its execution-provider libraries are installed) then CPU, and a check of input
 * and output names and shapes against models/manifest.ts. Runs inside an inference worker.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ort from 'onnxruntime-node';
import { MODELS, modelPath, ModelFileError, sameShape, type ModelName } from '../../../models/manifest.ts';
import type { Logger } from '../logger.ts';

export type Provider = 'cuda' | 'cpu';

export interface OrtSessionOptions {
  /** intraOpNumThreads; interOpNumThreads is always 1 (the graphs are sequential). Default 1. */
  threads?: number;
  /** Provider preference; 'auto' = CUDA when available, else CPU. Default 'auto'. */
  provider?: 'auto' | Provider;
  modelsDir?: string;
  logger: Logger;
}

export interface LoadedModel {
  name: ModelName;
  session: ort.InferenceSession;
  provider: Provider;
  threads: number;
}

const require = createRequire(import.meta.url);

/**
 * onnxruntime-node does not bundle the CUDA execution provider; it is present only when its
 * install script fetched it (ONNXRUNTIME_NODE_INSTALL=cuda12). Checks for the provider library.
 */
export function cudaProviderAvailable(): boolean {
  if (process.platform !== 'linux' || process.arch !== 'x64') return false;
  try {
    const binDir = join(dirname(require.resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', 'linux', 'x64');
    return existsSync(join(binDir, 'libonnxruntime_providers_cuda.so')) && existsSync(join(binDir, 'libonnxruntime_providers_shared.so'));
  } catch {
    return false;
  }
}

function verifySession(name: ModelName, session: ort.InferenceSession, path: string): void {
  const spec = MODELS[name];
  const fix = 'run npm run build:models -- --force';
  const names = (list: readonly string[]): string => list.join(', ');
  if (names(session.inputNames) !== names(spec.inputs.map((i) => i.name)) || names(session.outputNames) !== names(spec.outputs.map((o) => o.name))) {
    throw new ModelFileError(
      `${path}: inputs [${names(session.inputNames)}] outputs [${names(session.outputNames)}] do not match the manifest ` +
        `(inputs [${names(spec.inputs.map((i) => i.name))}] outputs [${names(spec.outputs.map((o) => o.name))}]); ${fix}`,
    );
  }
  const meta = [...session.inputMetadata, ...session.outputMetadata];
  const expected = [...spec.inputs, ...spec.outputs];
  meta.forEach((m, i) => {
    const want = expected[i];
    if (want && m.isTensor && !sameShape(m.shape, want.shape)) {
      throw new ModelFileError(`${path}: ${m.name} has shape [${m.shape.join(', ')}], expected [${want.shape.join(', ')}]; ${fix}`);
    }
  });
}

async function createWith(path: string, provider: Provider, threads: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(path, {
    executionProviders: provider === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

/** Loads and verifies a model; throws ModelFileError with a fix when the file is missing or stale. */
export async function loadModel(name: ModelName, opts: OrtSessionOptions): Promise<LoadedModel> {
  const threads = opts.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new TypeError(`threads must be a positive integer, got ${threads}`);
  const path = modelPath(name, opts.modelsDir);
  const wantCuda = opts.provider === 'cuda' || ((opts.provider ?? 'auto') === 'auto' && cudaProviderAvailable());
  let provider: Provider = 'cpu';
  let session: ort.InferenceSession | null = null;
  if (wantCuda) {
    try {
      session = await createWith(path, 'cuda', threads);
      provider = 'cuda';
    } catch (err) {
      opts.logger.warn('CUDA execution provider failed to load; falling back to CPU', { model: name, err: err instanceof Error ? err.message : String(err) });
    }
  } else if (opts.provider !== 'cpu') {
    opts.logger.debug('CUDA execution provider libraries not installed; using CPU', { model: name });
  }
  session ??= await createWith(path, 'cpu', threads);
  verifySession(name, session, path);
  opts.logger.debug('model loaded', { model: name, provider, threads });
  return { name, session, provider, threads };
}
