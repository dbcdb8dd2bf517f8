/**
 * `npm run bench`: tracker (both landmark models) and renderer benchmarks
 * (ms/frame percentiles, 1 and 2 threads) on the fixture footage. Writes loadtest/out/bench.json. Numbers
 * are for comparison on one machine; this box is shared and noisy.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { benchTracker } from './bench-tracker.ts';
import { benchRender } from './bench-render.ts';

const out: Record<string, unknown> = { machine: { cpus: (await import('node:os')).cpus().length, node: process.version }, startedAt: new Date().toISOString() };
console.log('benchmarking the tracker (468-point mesh, the live pipeline default)…');
out['tracker'] = await benchTracker();
console.log(JSON.stringify(out['tracker'], null, 2));
console.log('benchmarking the tracker (478-point attention model, the offline tools default)…');
out['trackerAttention'] = await benchTracker({ attention: true });
console.log(JSON.stringify(out['trackerAttention'], null, 2));
console.log('benchmarking the renderer…');
out['renderer'] = await benchRender();
console.log(JSON.stringify(out['renderer'], null, 2));
const dir = new URL('./out/', import.meta.url);
await mkdir(dir, { recursive: true });
await writeFile(new URL('bench.json', dir), JSON.stringify(out, null, 2));
console.log('wrote loadtest/out/bench.json');
