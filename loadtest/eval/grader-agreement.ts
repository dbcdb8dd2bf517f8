/**
 * node --import tsx loadtest/eval/grader-agreement.ts [--frames 150] [--size 256]
 *
 * How far the two graders agree on the actors themselves: every driver in
 * test/fixtures (driving/ and talking/), on the same fixed face crop the
 * fidelity matrix grades, measured by our tracker and by dlib; the Pearson
 * correlation of each measure between the two. This is the ceiling on what a
 * pair's correlation graded by dlib can show (a perfect copy of the actor is
 * still read through two different trackers' noise).
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pearson } from '../../server/src/render/fidelity.ts';
import { DEFAULT_FILTER_MODE, Tracker } from '../../server/src/tracking/tracker.ts';
import { DlibFaceGrader } from './dlib-grader.ts';
import { fixtureClips } from './fidelity.ts';
import { runDriver } from './matrix.ts';
import { MediapipeGrader } from './mediapipe-grader.ts';
import type { Grade } from './measures.ts';

const sd = (x: readonly number[]): number => {
  const m = x.reduce((p, c) => p + c, 0) / x.length;
  return Math.sqrt(x.reduce((p, c) => p + (c - m) ** 2, 0) / x.length);
};

async function main(): Promise<void> {
  const { values: a } = parseArgs({ options: { frames: { type: 'string', default: '150' }, size: { type: 'string', default: '256' } } });
  const tracker = await Tracker.create({ threads: 1, detectIntervalMs: 0, filterMode: DEFAULT_FILTER_MODE });
  const mp = await MediapipeGrader.create();
  const dl = await DlibFaceGrader.create();
  const rows = ['| driver | frames | eye R r | eye L r | mouth r | eye R SD (ours / dlib) |', '|---|---|---|---|---|---|'];
  try {
    for (const clip of [...fixtureClips('driving'), ...fixtureClips('talking')]) {
      const run = await runDriver(clip, { drivers: [], targets: [], size: Number(a.size), maxFrames: Number(a.frames), tracker, graders: [mp, dl] });
      const ours = run.grades.get(mp.name)!, theirs = run.grades.get(dl.name)!;
      const both = ours.flatMap((g, i) => (g && theirs[i] ? [[g, theirs[i]] as [Grade, Grade]] : []));
      const r = (k: 'eyeR' | 'eyeL' | 'mouth'): string => pearson(both.map((p) => p[0][k]), both.map((p) => p[1][k])).toFixed(2);
      rows.push(`| ${clip.name} | ${both.length} | ${r('eyeR')} | ${r('eyeL')} | ${r('mouth')} | ${sd(both.map((p) => p[0].eyeR)).toFixed(3)} / ${sd(both.map((p) => p[1].eyeR)).toFixed(3)} |`);
      process.stderr.write(`${rows[rows.length - 1]}\n`);
    }
  } finally {
    await dl.close();
    await mp.close();
    await tracker.close();
  }
  process.stdout.write(`${rows.join('\n')}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(() => process.exit(0), (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
