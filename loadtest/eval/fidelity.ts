/**
 * npm run eval:fidelity — the whole fidelity matrix: every driver in
 * test/fixtures (driving/ and talking/) onto every target, graded by our
 * tracker and by the independent dlib 68-point grader. Prints the per-pair
 * tables and the distribution per bar, and writes them (with the raw
 * measures) under loadtest/out/.
 *
 *   npm run eval:fidelity -- [--frames 150] [--size 256] [--drivers d3,t1] [--targets s1,s18]
 *                            [--graders mediapipe,dlib] [--out loadtest/out/fidelity] [--strips docs/img]
 *                            [--retarget JSON] [--tracker-filter off|JSON] [--tracker-mode rigid [--expression-filter JSON]]
 *                            [--tracker-mode regional [--region-filters JSON]]
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { RetargetParams } from '../../server/src/render/retarget.ts';
import type { OneEuroParams } from '../../server/src/tracking/one-euro.ts';
import type { RegionFilterParams } from '../../server/src/tracking/regional-filter.ts';
import { DEFAULT_FILTER_MODE, Tracker } from '../../server/src/tracking/tracker.ts';
import { clipOf, runMatrix, type Clip, type FaceGrader } from './matrix.ts';
import { MediapipeGrader } from './mediapipe-grader.ts';
import { pairTable, summaryTable } from './report.ts';
import { median } from './measures.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIX = join(ROOT, 'test', 'fixtures');

export function fixtureClips(dir: string, only?: string): Clip[] {
  const want = only ? new Set(only.split(',')) : null;
  return readdirSync(join(FIX, dir))
    .filter((f) => /\.(mp4|jpg|png)$/.test(f))
    .map((f) => clipOf(join(FIX, dir, f)))
    .filter((c) => !want || want.has(c.name))
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      frames: { type: 'string', default: '150' },
      size: { type: 'string', default: '256' },
      drivers: { type: 'string' },
      targets: { type: 'string' },
      graders: { type: 'string', default: 'mediapipe,dlib' },
      out: { type: 'string', default: join(ROOT, 'loadtest', 'out', 'fidelity') },
      /** Retargeter parameters as JSON, e.g. '{"depthScale":0.8}' (for measured comparisons). */
      retarget: { type: 'string' },
      /** The driving tracker's landmark filter: 'off', or One Euro parameters as JSON. Default: the tracker's. */
      'tracker-filter': { type: 'string' },
      /** The driving tracker's filter mode: regional (the default), landmarks or rigid (Tracker filterMode). */
      'tracker-mode': { type: 'string' },
      /** With --tracker-mode rigid: One Euro parameters for the expression as JSON (default none). */
      'expression-filter': { type: 'string' },
      /** With --tracker-mode regional: per region (lips, eyes) One Euro parameters or false (unfiltered, the default), as JSON. */
      'region-filters': { type: 'string' },
    },
  });
  const drivers = [...fixtureClips('driving', a.drivers), ...fixtureClips('talking', a.drivers)];
  const targets = fixtureClips('targets', a.targets);
  const graders: (FaceGrader & { close(): Promise<void> | void })[] = [];
  for (const g of a.graders.split(',')) {
    if (g === 'mediapipe') graders.push(await MediapipeGrader.create());
    else if (g === 'dlib') graders.push(await (await import('./dlib-grader.ts')).DlibFaceGrader.create());
    else throw new TypeError(`unknown grader ${g} (mediapipe, dlib)`);
  }
  const tf = a['tracker-filter'];
  const mode = a['tracker-mode'] ?? DEFAULT_FILTER_MODE;
  if (mode !== 'landmarks' && mode !== 'rigid' && mode !== 'regional') throw new TypeError(`--tracker-mode must be landmarks, rigid or regional, got ${mode}`);
  const ef = a['expression-filter'];
  const rf = a['region-filters'];
  const tracker = await Tracker.create({
    threads: 1, detectIntervalMs: 0, filter: tf === 'off' ? false : tf ? (JSON.parse(tf) as Partial<OneEuroParams>) : undefined,
    filterMode: mode, expressionFilter: ef ? (JSON.parse(ef) as Partial<OneEuroParams>) : undefined,
    regionFilters: rf ? (JSON.parse(rf) as Partial<RegionFilterParams>) : undefined,
  });
  const t0 = Date.now();
  try {
    process.stderr.write(`${drivers.length} drivers × ${targets.length} targets, ${a.frames} frames, ${a.size}², graders ${a.graders}\n`);
    const r = await runMatrix({
      drivers, targets, size: Number(a.size), maxFrames: Number(a.frames), tracker, graders,
      retarget: a.retarget ? (JSON.parse(a.retarget) as Partial<RetargetParams>) : undefined,
      onPair: (pair, m) => process.stderr.write(`${pair}: ${[...m].map(([g, x]) => `${g} mouth ${x.mouthR.toFixed(2)} eye ${Math.min(x.eyeRR, x.eyeLR).toFixed(2)} pose ${Math.max(x.yawErr, x.pitchErr, x.rollErr).toFixed(1)}`).join(' | ')}\n`),
    });
    mkdirSync(a.out, { recursive: true });
    const md: string[] = [`# Fidelity matrix (${new Date().toISOString().slice(0, 10)}; ${drivers.length} drivers × ${targets.length} targets, first ${a.frames} frames, ${a.size}²)`];
    for (const [g, pairs] of r.byGrader) md.push(`\n## Graded by ${g}\n\n${summaryTable(pairs)}\n\n${pairTable(pairs)}`);
    const sorted = [...r.renderMs].sort((x, y) => x - y);
    md.push(`\nRender ms/frame p50 ${median(r.renderMs).toFixed(2)}, p95 ${sorted[Math.floor(sorted.length * 0.95)]?.toFixed(2) ?? 'n/a'}; wall ${((Date.now() - t0) / 1000).toFixed(0)} s.`);
    writeFileSync(join(a.out, 'fidelity.md'), md.join('\n') + '\n');
    writeFileSync(join(a.out, 'fidelity.json'), JSON.stringify(Object.fromEntries([...r.byGrader].map(([g, p]) => [g, Object.fromEntries(p)])), null, 1));
    process.stdout.write(md.join('\n') + '\n');
  } finally {
    await tracker.close();
    for (const g of graders) await g.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
