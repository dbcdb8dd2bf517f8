/**
 * npm run eval:paste-back — how well the `frame` profile keeps the target's
 * picture: every driver in test/fixtures onto every target, the face rendered
 * and pasted back at the picture's native size, each output frame's luma
 * compared with the target's own picture (the same I420 conversion).
 *
 * Regions, in the picture:
 * - `outside`: everything beyond the pasted square (the face crop, 1.9 face
 *   heights: the head and what the head's motion drags). The bar,
 *   PSNR ≥ 35 dB, is measured here. Identical pixels give Infinity.
 * - `band`: inside the square but beyond the head (the reference face oval
 *   grown by HEAD_GROWTH about its centre): the render's pixels, resampled
 *   twice (picture → render size → picture) and stretched by the outer mesh
 *   rings as the head moves. Reported per pair as the median frame and the
 *   worst frame.
 *
 *   npm run eval:paste-back -- [--frames 60] [--size 512] [--drivers d3,t1] [--targets s1,s18] [--out loadtest/out/paste-back]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { rgbaToI420 } from '../../server/src/media/convert.ts';
import { compositorFor, type Compositor } from '../../server/src/render/compositor.ts';
import { reenactVideo } from '../../server/src/render/offline.ts';
import { referencePicture, type EnrolledTarget } from '../../server/src/render/target.ts';
import { FACE_OVAL } from '../../server/src/render/topology.ts';
import { Tracker } from '../../server/src/tracking/tracker.ts';
import type { RawFrame } from '../../server/src/media/video-io.ts';
import { fixtureClips } from './fidelity.ts';
import { median } from './measures.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The face region: the oval grown by this factor about its centre. */
export const HEAD_GROWTH = 1.5;

export interface PasteBackPair {
  driver: string;
  target: string;
  width: number;
  height: number;
  frames: number;
  /** Worst frame's luma PSNR outside the pasted square, dB. */
  outsideDb: number;
  /** Median and worst frame's luma PSNR in the band between the head and the square's edge, dB. */
  bandMedianDb: number;
  bandWorstDb: number;
}

/** 1 where a picture pixel is outside the pasted square, 2 inside it but beyond the head, 0 on the head. */
function regionMask(target: EnrolledTarget, width: number, height: number): Uint8Array {
  const k = target.crop.side / target.size;
  const poly = FACE_OVAL.map((i) => [target.landmarks[i * 3]! * k + target.crop.x, target.landmarks[i * 3 + 1]! * k + target.crop.y] as const);
  const cx = poly.reduce((s, p) => s + p[0], 0) / poly.length, cy = poly.reduce((s, p) => s + p[1], 0) / poly.length;
  const grown = poly.map(([x, y]) => [cx + (x - cx) * HEAD_GROWTH, cy + (y - cy) * HEAD_GROWTH] as const);
  const mask = new Uint8Array(width * height);
  const { x: sx, y: sy, side } = target.crop;
  for (let y = 0; y < height; y++) {
    // Even-odd scanline fill of the grown oval.
    const xs: number[] = [];
    for (let i = 0, j = grown.length - 1; i < grown.length; j = i++) {
      const [xi, yi] = grown[i]!, [xj, yj] = grown[j]!;
      const yc = y + 0.5;
      if (yi > yc !== yj > yc) xs.push(xi + ((yc - yi) / (yj - yi)) * (xj - xi));
    }
    xs.sort((a, b) => a - b);
    for (let x = 0; x < width; x++) {
      const xc = x + 0.5;
      let inside = false;
      for (const v of xs) if (v < xc) inside = !inside;
      if (inside) continue;
      mask[y * width + x] = xc >= sx && xc < sx + side && y + 0.5 >= sy && y + 0.5 < sy + side ? 2 : 1;
    }
  }
  return mask;
}

function psnr(a: Uint8Array, b: Uint8Array, mask: Uint8Array, want: (m: number) => boolean): number {
  let se = 0, n = 0;
  for (let i = 0; i < mask.length; i++) {
    if (!want(mask[i]!)) continue;
    const d = a[i]! - b[i]!;
    se += d * d;
    n++;
  }
  if (n === 0 || se === 0) return Infinity;
  return 10 * Math.log10((255 * 255) / (se / n));
}

/** One pair: the driver onto the target with the `frame` profile, each frame compared with the picture. */
export async function measurePasteBack(driving: string, target: string, opts: { tracker: Tracker; size: number; frames: number }): Promise<PasteBackPair> {
  let canvas: Compositor | null = null;
  let mask: Uint8Array | null = null;
  let reference: Uint8Array | null = null;
  let out: Uint8Array | null = null;
  let picture: RawFrame | null = null;
  let enrolled: EnrolledTarget | null = null;
  const outside: number[] = [], band: number[] = [];
  await reenactVideo({
    driving, target, size: opts.size, maxFrames: opts.frames, tracker: opts.tracker, cacheDir: join(ROOT, '.cache', 'reenact', 'targets'),
    onEnrolled: (t) => {
      enrolled = t;
    },
    onFrame: async (_i, face) => {
      if (!canvas) {
        const t = enrolled!;
        picture = await referencePicture(target, t);
        canvas = compositorFor(picture, t, 'frame')!;
        out = new Uint8Array(canvas.frameBytes);
        reference = new Uint8Array(canvas.frameBytes);
        rgbaToI420(picture.data, picture.width, picture.height, reference, canvas.width, canvas.height);
        mask = regionMask(t, canvas.width, canvas.height);
      }
      canvas.compose(face, opts.size, out!);
      outside.push(psnr(out!, reference!, mask!, (m) => m === 1));
      band.push(psnr(out!, reference!, mask!, (m) => m === 2));
    },
  });
  const c = canvas as Compositor | null;
  return {
    driver: name(driving), target: name(target), width: c?.width ?? 0, height: c?.height ?? 0, frames: outside.length,
    outsideDb: Math.min(...outside), bandMedianDb: median(band), bandWorstDb: Math.min(...band),
  };
}

const name = (p: string): string => p.split('/').pop()!.replace(/\.[^.]+$/, '');

/** Markdown table of the distribution: median, worst, share ≥ 35 dB. */
export function pasteBackSummary(pairs: PasteBackPair[]): string {
  const row = (label: string, v: number[]): string => {
    const fmt = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '∞');
    return `| ${label} | ${fmt(median(v))} | ${fmt(Math.min(...v))} | ${((100 * v.filter((x) => x >= 35).length) / v.length).toFixed(0)} % |`;
  };
  return [
    `| luma PSNR vs the target picture (worst frame per pair, ${pairs.length} pairs) | median | worst pair | pairs ≥ 35 dB |`,
    '|---|---|---|---|',
    row('outside the pasted square, worst frame', pairs.map((p) => p.outsideDb)),
    row('inside the square beyond the head, median frame', pairs.map((p) => p.bandMedianDb)),
    row('inside the square beyond the head, worst frame', pairs.map((p) => p.bandWorstDb)),
  ].join('\n');
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      frames: { type: 'string', default: '60' },
      size: { type: 'string', default: '512' },
      drivers: { type: 'string' },
      targets: { type: 'string' },
      out: { type: 'string', default: join(ROOT, 'loadtest', 'out', 'paste-back') },
    },
  });
  const drivers = [...fixtureClips('driving', a.drivers), ...fixtureClips('talking', a.drivers)];
  const targets = fixtureClips('targets', a.targets);
  const tracker = await Tracker.create({ attention: true });
  const pairs: PasteBackPair[] = [];
  try {
    for (const d of drivers) {
      for (const t of targets) {
        const p = await measurePasteBack(d.path, t.path, { tracker, size: Number(a.size), frames: Number(a.frames) });
        pairs.push(p);
        process.stderr.write(`${p.driver} → ${p.target} ${p.width}x${p.height}: outside ${p.outsideDb.toFixed(1)} dB, band median ${p.bandMedianDb.toFixed(1)} dB, worst ${p.bandWorstDb.toFixed(1)} dB\n`);
      }
    }
  } finally {
    await tracker.close();
  }
  const summary = pasteBackSummary(pairs);
  console.log(summary);
  mkdirSync(a.out, { recursive: true });
  writeFileSync(join(a.out, 'pairs.json'), JSON.stringify(pairs, (_k, v: unknown) => (v === Infinity ? 'Infinity' : v), 1));
  writeFileSync(join(a.out, 'summary.md'), `${summary}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
