/**
 * Loads one ONNX model from models/out with onnxruntime-node: explicit thread counts, the
 * execution provider chosen by REENACT_PROVIDER, and a check of input and output names and shapes
 * against models/manifest.ts. Runs inside an inference worker.
 *
 * Providers and fallback:
 * - `cpu`: onnxruntime's CPU provider, bundled; always there.
 * - `webgpu`: bundled with onnxruntime-node on Linux x64 (Dawn over Vulkan). Needs a Vulkan
 *   adapter: a GPU's driver, or Mesa's llvmpipe on the CPU (Debian mesa-vulkan-drivers from
 *   bookworm-backports; the 22.x in bookworm is too old for Dawn). Ops it lacks run on the CPU
 *   provider inside the same session.
 * - `cuda`: only when its libraries were fetched (not offline); needs CUDA and cuDNN.
 * - `auto` (default): CUDA when its libraries are installed, else CPU; a CUDA that fails to
 *   start falls back to the CPU with a warning. It never picks WebGPU by itself: on llvmpipe it
 *   is slower than the CPU provider, and a machine cannot tell a real adapter from it cheaply.
 * An explicitly chosen `webgpu` or `cuda` that cannot start is an error
 * (E_PROVIDER_UNAVAILABLE, with what to install), never a silent fall back to the CPU.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ort from 'onnxruntime-node';
import { MODELS, modelPath, ModelFileError, sameShape, type ModelName } from '../../../models/manifest.ts';
import type { Logger } from '../logger.ts';
import { CodedError, ErrorCodes } from '../../../shared/errors.ts';

export const PROVIDERS = ['cpu', 'webgpu', 'cuda'] as const;
export type Provider = (typeof PROVIDERS)[number];
export type ProviderChoice = 'auto' | Provider;

export function isProviderChoice(v: string): v is ProviderChoice {
  return v === 'auto' || (PROVIDERS as readonly string[]).includes(v);
}

const CUDA_FIX = 'install its libraries with network access: ONNXRUNTIME_NODE_INSTALL=1 npm rebuild onnxruntime-node (they need CUDA and cuDNN on the library path)';
const WEBGPU_FIX = 'it needs a Vulkan adapter: a GPU driver, or on Debian 12 mesa-vulkan-drivers from bookworm-backports (npm run setup installs it)';

/** The chosen provider cannot start here; the message says what to install. */
export class ProviderUnavailableError extends CodedError {
  constructor(provider: Provider, detail: string) {
    super(ErrorCodes.PROVIDER_UNAVAILABLE, `the ${provider} inference provider cannot start: ${detail}; ${provider === 'cuda' ? CUDA_FIX : WEBGPU_FIX}`);
    this.name = 'ProviderUnavailableError';
  }
}

export interface OrtSessionOptions {
  /** intraOpNumThreads; interOpNumThreads is always 1 (the graphs are sequential). Default 1. */
  threads?: number;
  /** Provider choice (see above). Default 'auto'. */
  provider?: ProviderChoice;
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
    executionProviders: provider === 'cpu' ? ['cpu'] : [provider, 'cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

/**
 * Runs a WebGPU session once on zeros while the handler loads. The first run compiles the
 * model's shaders: about 8 s a model on llvmpipe with a cold Mesa shader cache, during which
 * the worker's thread does not answer heartbeats. Done here, it falls within the init timeout;
 * left to the first frame, the runner took the worker for hung and restarted it, over and over.
 */
async function compileShaders(name: ModelName, session: ort.InferenceSession): Promise<void> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of MODELS[name].inputs) {
    const dims = input.shape.map((d) => (d > 0 ? d : 1));
    feeds[input.name] = new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
  }
  await session.run(feeds);
}

/** Loads and verifies a model; throws ModelFileError with a fix when the file is missing or stale. */
export async function loadModel(name: ModelName, opts: OrtSessionOptions): Promise<LoadedModel> {
  const threads = opts.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new TypeError(`threads must be a positive integer, got ${threads}`);
  const path = modelPath(name, opts.modelsDir);
  const choice = opts.provider ?? 'auto';
  const message = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 400);
  let provider: Provider = 'cpu';
  let session: ort.InferenceSession | null = null;
  if (choice === 'webgpu' || choice === 'cuda') {
    if (choice === 'cuda' && !cudaProviderAvailable()) throw new ProviderUnavailableError('cuda', 'its libraries are not installed');
    if (choice === 'webgpu' && !ort.listSupportedBackends().some((b) => b.name === 'webgpu')) throw new ProviderUnavailableError('webgpu', 'this onnxruntime-node build has no WebGPU backend');
    try {
      session = await createWith(path, choice, threads);
      provider = choice;
    } catch (err) {
      if (err instanceof ModelFileError) throw err;
      throw new ProviderUnavailableError(choice, message(err));
    }
  } else if (choice === 'auto' && cudaProviderAvailable()) {
    try {
      session = await createWith(path, 'cuda', threads);
      provider = 'cuda';
    } catch (err) {
      opts.logger.warn('CUDA execution provider failed to load; falling back to CPU', { model: name, err: message(err) });
    }
  }
  session ??= await createWith(path, 'cpu', threads);
  verifySession(name, session, path);
  if (provider === 'webgpu') await compileShaders(name, session);
  opts.logger.debug('model loaded', { model: name, provider, threads });
  return { name, session, provider, threads };
}
