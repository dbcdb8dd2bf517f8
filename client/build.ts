/**
 * Bundles the browser client with esbuild into client/dist/, and assembles
 * the face overlay's model bundle and runtime into client/dist/face/. The
 * face overlay's code is a separate chunk, loaded only when switched on.
 */
import { rm } from 'node:fs/promises';
import { build } from 'esbuild';
import { buildFaceAssets } from './tools/face-task.ts';

// Chunk names carry content hashes: drop the previous build's.
await rm('client/dist/chunks', { recursive: true, force: true });

await build({
  entryPoints: { actor: 'client/src/actor.ts', viewer: 'client/src/viewer.ts' },
  outdir: 'client/dist',
  bundle: true,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  sourcemap: true,
  minify: true,
  logLevel: 'warning',
});
// Privacy mode's tracker runs in a classic worker: Tasks loads its wasm runtime with importScripts,
// which module workers do not have.
await build({
  entryPoints: { 'track-worker': 'client/src/track-worker.ts' },
  outdir: 'client/dist',
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  sourcemap: true,
  minify: true,
  logLevel: 'warning',
});
try {
  await buildFaceAssets('client/dist');
} catch (err) {
  // The overlay is optional: the pages work without it and say so when it is switched on.
  process.stderr.write(`face overlay assets not built: ${err instanceof Error ? err.message : String(err)}\n`);
}
process.stdout.write('client bundled into client/dist/\n');
