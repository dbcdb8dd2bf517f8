/**
 * `npm run bench`: tracker (both landmark models), batching across sessions and renderer
 * benchmarks (ms/frame percentiles) on the fixture footage. Writes loadtest/out/bench.json.
 * Numbers are for comparison on one machine; this box is shared and noisy.
 *
 *   npm run bench -- [--provider cpu|webgpu|cuda|auto] [--batch 1,4,16,32] [--skip-render]
 *
 * `--provider` (default auto) and `--batch` (default 1,4) choose the batching bench's runs
 * (loadtest/bench-batch.ts): it prints the provider, the batch size and ms per frame per
 * session. The single-session tracker benches run on the CPU provider.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { benchTracker } from './bench-tracker.ts';
import { benchRender } from './bench-render.ts';
import { benchBatch, fixtureFrames } from './bench-batch.ts';
import { isProviderChoice, PROVIDERS } from '../server/src/inference/ort-session.ts';
import { setLogLevel } from '../server/src/logger.ts';

setLogLevel('warn');
const { values } = parseArgs({ options: { provider: { type: 'string', default: 'auto' }, batch: { type: 'string', default: '1,4' }, 'skip-render': { type: 'boolean', default: false } } });
const provider: string = values.provider;
if (!isProviderChoice(provider)) throw new TypeError(`--provider must be auto, ${PROVIDERS.join(', ')}; got ${provider}`);
const batches = values.batch.split(',').map(Number);
if (batches.some((b) => !Number.isInteger(b) || b < 1 || b > 64)) throw new TypeError(`--batch takes sizes 1..64, got ${values.batch}`);

const out: Record<string, unknown> = { machine: { cpus: (await import('node:os')).cpus().length, node: process.version }, startedAt: new Date().toISOString() };
console.log('benchmarking the tracker (468-point mesh, the live pipeline default)…');
out['tracker'] = await benchTracker();
console.log(JSON.stringify(out['tracker'], null, 2));
console.log('benchmarking the tracker (478-point attention model, the offline tools default)…');
out['trackerAttention'] = await benchTracker({ attention: true });
console.log(JSON.stringify(out['trackerAttention'], null, 2));
console.log(`benchmarking sessions batched on one face handler (provider ${provider}, batch ${batches.join(', ')})…`);
out['batching'] = await benchBatch({ provider, batches, frames: await fixtureFrames(8, 480, 360), log: (l) => console.log(l) });
if (!values['skip-render']) {
  console.log('benchmarking the renderer…');
  out['renderer'] = await benchRender();
  console.log(JSON.stringify(out['renderer'], null, 2));
}
const dir = new URL('./out/', import.meta.url);
await mkdir(dir, { recursive: true });
await writeFile(new URL('bench.json', dir), JSON.stringify(out, null, 2));
console.log('wrote loadtest/out/bench.json');
