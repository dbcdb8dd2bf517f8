/** Markdown tables of the fidelity matrix: one row a pair, and the distribution per bar. */
import { shareMeetingAll, summarise, type PairMeasures } from './measures.ts';

const f = (x: number, d = 3): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const pct = (x: number): string => `${(x * 100).toFixed(0)} %`;

export function pairTable(pairs: ReadonlyMap<string, PairMeasures>): string {
  const rows = ['| pair | mouth r | mouth err | open/closed | eye r R / L | pose err y/p/r ° | yaw gain | jitter × | found |', '|---|---|---|---|---|---|---|---|---|'];
  for (const [name, m] of pairs) {
    rows.push(`| ${name} | ${f(m.mouthR)} | ${f(m.mouthAbsErr)} | ${f(m.openAgree, 2)} | ${f(m.eyeRR, 2)} / ${f(m.eyeLR, 2)} | ${f(m.yawErr, 1)} / ${f(m.pitchErr, 1)} / ${f(m.rollErr, 1)} | ${f(m.yawGain, 2)} | ${f(m.jitterRatio, 2)} | ${pct(m.detection)} |`);
  }
  return rows.join('\n');
}

export function summaryTable(pairs: ReadonlyMap<string, PairMeasures>): string {
  const rows = ['| measure | goal | median | worst (pair) | pairs meeting the goal |', '|---|---|---|---|---|'];
  for (const s of summarise(pairs)) {
    rows.push(`| ${s.bar.name} | ${s.bar.higher ? '≥' : '≤'} ${s.bar.goal} | ${f(s.median)} | ${f(s.worst)} (${s.worstPair}) | ${Number.isFinite(s.share) ? pct(s.share) : 'n/a'}${s.defined < pairs.size ? ` of ${s.defined}` : ''} |`);
  }
  rows.push(`| all bars together | | | | ${pct(shareMeetingAll(pairs))} |`);
  return rows.join('\n');
}
