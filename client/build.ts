/** Bundles the browser client with esbuild into client/dist/. */
import { build } from 'esbuild';

await build({
  entryPoints: { actor: 'client/src/actor.ts', viewer: 'client/src/viewer.ts' },
  outdir: 'client/dist',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  sourcemap: true,
  minify: true,
  logLevel: 'warning',
});
console.log('client bundled into client/dist/');
