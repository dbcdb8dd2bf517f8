/**
 * node --import tsx loadtest/eval/grader-agreement.ts [--frames 150] [--size 256]
 *
 * How far the two graders agree on the actors themselves: every driver in
 * test/fixtures (driving/ and talking/), on the same fixed face crop the
 * fidelity matrix grades, measured by our tracker and by dlib; the Pearson
 * correlation of each measure between the two. This is the ceiling on what a
 * pair's correlation graded by dlib can show (a perfect copy of the actor is
 * still read through two different trackers' noise).
 *
 * `--blink d9`: the same driver's deepest blink (its most closed frame by our
 * tracker) and a rest frame (its median openness) rendered onto every target,
 * each output read by both graders: where dlib's eye r on a target is low, this
 * shows whether dlib reads that target's closed lids as closed at all.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pearson } from '../../server/src/render/fidelity.ts';
import { DEFAULT_FILTER_MODE, Tracker } from '../../server/src/tracking/tracker.ts';
import { DlibFaceGrader } from './dlib-grader.ts';
import { fixtureClips } from './fidelity.ts';
import { runDriver, type FaceGrader } from './matrix.ts';
import { GeometricRenderer } from '../../server/src/render/renderer.ts';
import { enrollTarget } from '../../server/src/render/target.ts';
import { MediapipeGrader } from './mediapipe-grader.ts';
import type { Grade } from './measures.ts';

const sd = (x: readonly number[]): number => {
  const m = x.reduce((p, c) => p + c, 0) / x.length;
  return Math.sqrt(x.reduce((p, c) => p + (c - m) ** 2, 0) / x.length);
};

/** Eye openness (right / left, eye widths) at the blink and at rest, per grader, on each target's output. */
async function blink(driver: string, size: number, frames: number, tracker: Tracker, mp: FaceGrader, dl: FaceGrader): Promise<string[]> {
  const clip = fixtureClips('driving', driver)[0] ?? fixtureClips('talking', driver)[0];
  if (!clip) throw new Error(`no driver ${driver} in test/fixtures`);
  const run = await runDriver(clip, { drivers: [], targets: [], size, maxFrames: frames, tracker, graders: [mp, dl] });
  const ours = run.grades.get(mp.name)!;
  const open = (g: Grade | null): number => (g ? (g.eyeR + g.eyeL) / 2 : Number.NaN);
  const seen = ours.map((g, i) => [i, open(g)] as const).filter(([, v]) => Number.isFinite(v));
  if (!seen.length) throw new Error(`${driver}: no frame graded`);
  const closed = seen.reduce((m, x) => (x[1] < m[1] ? x : m))[0];
  const sorted = [...seen].sort((x, y) => x[1] - y[1]);
  const rest = sorted[Math.floor(sorted.length / 2)]![0];
  const eyes = (g: Grade | null | undefined): string => (g ? `${g.eyeR.toFixed(3)} / ${g.eyeL.toFixed(3)}` : 'no face');
  const rows = [
    `${clip.name}: blink at frame ${closed}, rest at frame ${rest}; eye openness right / left (eye widths)`,
    '',
    '| face | ours at rest | ours at the blink | dlib at rest | dlib at the blink |',
    '|---|---|---|---|---|',
    `| actor | ${eyes(ours[rest])} | ${eyes(ours[closed])} | ${eyes(run.grades.get(dl.name)![rest])} | ${eyes(run.grades.get(dl.name)![closed])} |`,
  ];
  const renderer = await GeometricRenderer.create({ size });
  try {
    const out = new Uint8Array(size * size * 4);
    const last = Math.max(closed, rest);
    for (const t of fixtureClips('targets')) {
      await renderer.enroll(await enrollTarget(t.path, tracker, { size, cacheDir: null }));
      for (const g of [mp, dl]) g.reset();
      const got = new Map<string, (Grade | null)[]>([[mp.name, []], [dl.name, []]]);
      // Rendered and graded frame by frame up to the later of the two, as live (both keep state).
      for (const track of run.tracks.slice(0, last + 1)) {
        renderer.renderSync(track, out, track.timeMs);
        for (const g of [mp, dl]) got.get(g.name)!.push(await g.grade(out, size, size, track.timeMs));
      }
      const m = got.get(mp.name)!, d = got.get(dl.name)!;
      rows.push(`| ${t.name} | ${eyes(m[rest])} | ${eyes(m[closed])} | ${eyes(d[rest])} | ${eyes(d[closed])} |`);
      process.stderr.write(`${rows[rows.length - 1]}\n`);
    }
  } finally {
    renderer.close();
  }
  return rows;
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({ options: { frames: { type: 'string', default: '150' }, size: { type: 'string', default: '256' }, blink: { type: 'string' } } });
  const tracker = await Tracker.create({ threads: 1, detectIntervalMs: 0, filterMode: DEFAULT_FILTER_MODE });
  const mp = await MediapipeGrader.create();
  const dl = await DlibFaceGrader.create();
  if (a.blink) {
    try {
      process.stdout.write(`${(await blink(a.blink, Number(a.size), Number(a.frames), tracker, mp, dl)).join('\n')}\n`);
    } finally {
      await dl.close();
      await mp.close();
      await tracker.close();
    }
    return;
  }
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
