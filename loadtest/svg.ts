/**
 * Tiny inline-SVG charts for report.html: line/dot series and bars on linear
 * axes with nice ticks, reference lines and shaded bands. No scripts, no
 * external resources.
 */

export const PALETTE = [
  '#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
  '#bcbd22', '#17becf', '#393b79', '#ad494a', '#637939', '#e6550d', '#7b4173', '#3182bd',
];

export type Point = readonly [number, number];

export interface Series {
  name: string;
  color: string;
  points: readonly Point[];
  style?: 'line' | 'dots';
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series?: Series[];
  bars?: { x0: number; x1: number; y: number; color: string }[];
  width?: number;
  height?: number;
  xMin?: number;
  xMax?: number;
  yMin?: number;
  yMax?: number;
  hLines?: { y: number; label: string; color: string }[];
  vLines?: { x: number; label: string; color?: string }[];
  vBands?: { from: number; to: number; label: string }[];
}

/** Min and max without spreading (arrays can be far longer than the argument limit). */
export function minMax(values: Iterable<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function niceStep(range: number, target = 5): number {
  if (!(range > 0) || !Number.isFinite(range)) return 1;
  const raw = range / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const r = raw / mag;
  return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 2.5 ? 2.5 : r <= 5 ? 5 : 10) * mag;
}

/** Keeps at most ~maxPoints points: per x-bin the lowest and highest y, so spikes stay visible. */
export function decimate(points: readonly Point[], maxPoints = 1500): Point[] {
  if (points.length <= maxPoints) return [...points];
  const [lo, hi] = minMax(points.map((p) => p[0]));
  const bins = Math.max(1, Math.floor(maxPoints / 2));
  const width = (hi - lo) / bins || 1;
  const acc: { min?: Point; max?: Point }[] = Array.from({ length: bins }, () => ({}));
  for (const p of points) {
    const b = acc[Math.min(bins - 1, Math.floor((p[0] - lo) / width))]!;
    if (!b.min || p[1] < b.min[1]) b.min = p;
    if (!b.max || p[1] > b.max[1]) b.max = p;
  }
  const out: Point[] = [];
  for (const b of acc) {
    if (!b.min || !b.max) continue;
    if (b.min === b.max) out.push(b.min);
    else out.push(...(b.min[0] <= b.max[0] ? [b.min, b.max] : [b.max, b.min]));
  }
  return out;
}

function fmt(v: number, step: number): string {
  const digits = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step)));
  return v.toFixed(digits);
}

function extent(values: number[], min?: number, max?: number): [number, number] {
  const [fLo, fHi] = minMax(values);
  let lo = min ?? (Number.isFinite(fLo) ? fLo : 0);
  let hi = max ?? (Number.isFinite(fHi) ? fHi : 1);
  if (hi <= lo) hi = lo + 1;
  if (min === undefined && lo > 0 && lo < (hi - lo) * 0.5) lo = 0;
  return [lo, hi];
}

export function chart(c: ChartSpec): string {
  const W = c.width ?? 820;
  const H = c.height ?? 280;
  const series = c.series ?? [];
  const named = series.filter((s) => s.name !== '');
  // The legend sits to the right of the plot, never over the data.
  const legendW = named.length ? 12 + 6.5 * Math.max(...named.map((s) => s.name.length)) + 18 : 0;
  const m = { l: 62, r: 16 + legendW, t: 30, b: 44 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const bars = c.bars ?? [];
  const xs = [...series.flatMap((s) => s.points.map((p) => p[0])), ...bars.flatMap((b) => [b.x0, b.x1])];
  const ys = [...series.flatMap((s) => s.points.map((p) => p[1])), ...bars.map((b) => b.y), ...(c.hLines ?? []).map((h) => h.y)];
  const [x0, x1] = extent(xs, c.xMin, c.xMax);
  const [y0, yTop] = extent(ys, c.yMin ?? 0, c.yMax);
  const yStep = niceStep(yTop - y0);
  const y1 = c.yMax ?? Math.ceil(yTop / yStep) * yStep;
  const xStep = niceStep(x1 - x0, 8);
  const sx = (x: number): number => m.l + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number): number => m.t + ph - ((Math.min(Math.max(y, y0), y1) - y0) / (y1 - y0)) * ph;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(c.title)}" font-family="sans-serif" font-size="11">`);
  parts.push(`<text x="${m.l}" y="18" font-size="13" font-weight="bold">${esc(c.title)}</text>`);
  for (const b of c.vBands ?? []) {
    const a = sx(Math.max(b.from, x0));
    const z = sx(Math.min(b.to, x1));
    if (z > a) parts.push(`<rect x="${a.toFixed(1)}" y="${m.t}" width="${(z - a).toFixed(1)}" height="${ph}" fill="#000" fill-opacity="0.06"/><text x="${(a + 3).toFixed(1)}" y="${m.t + 12}" fill="#666">${esc(b.label)}</text>`);
  }
  for (let y = Math.ceil(y0 / yStep) * yStep; y <= y1 + 1e-9; y += yStep) {
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${sy(y).toFixed(1)}" y2="${sy(y).toFixed(1)}" stroke="#e4e4e4"/><text x="${m.l - 6}" y="${(sy(y) + 4).toFixed(1)}" text-anchor="end">${fmt(y, yStep)}</text>`);
  }
  for (let x = Math.ceil(x0 / xStep) * xStep; x <= x1 + 1e-9; x += xStep) {
    parts.push(`<line x1="${sx(x).toFixed(1)}" x2="${sx(x).toFixed(1)}" y1="${m.t + ph}" y2="${m.t + ph + 4}" stroke="#444"/><text x="${sx(x).toFixed(1)}" y="${m.t + ph + 16}" text-anchor="middle">${fmt(x, xStep)}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 6}" text-anchor="middle">${esc(c.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}</text>`);
  for (const b of bars) {
    const a = sx(b.x0);
    const w = Math.max(0.5, sx(b.x1) - a - 0.5);
    parts.push(`<rect x="${a.toFixed(1)}" y="${sy(b.y).toFixed(1)}" width="${w.toFixed(1)}" height="${(m.t + ph - sy(b.y)).toFixed(1)}" fill="${b.color}"/>`);
  }
  for (const s of series) {
    if (s.points.length === 0) continue;
    if (s.style === 'dots') {
      parts.push(`<g fill="${s.color}" fill-opacity="0.7">${s.points.map((p) => `<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="1.4"/>`).join('')}</g>`);
    } else {
      const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${sx(p[0]).toFixed(1)} ${sy(p[1]).toFixed(1)}`).join('');
      parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.3"/>`);
    }
  }
  for (const h of c.hLines ?? []) {
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${sy(h.y).toFixed(1)}" y2="${sy(h.y).toFixed(1)}" stroke="${h.color}" stroke-dasharray="5 3"/><text x="${m.l + pw - 4}" y="${(sy(h.y) - 4).toFixed(1)}" text-anchor="end" fill="${h.color}">${esc(h.label)}</text>`);
  }
  for (const v of c.vLines ?? []) {
    if (v.x < x0 || v.x > x1) continue;
    parts.push(`<line x1="${sx(v.x).toFixed(1)}" x2="${sx(v.x).toFixed(1)}" y1="${m.t}" y2="${m.t + ph}" stroke="${v.color ?? '#999'}" stroke-dasharray="2 3"/><text x="${(sx(v.x) + 3).toFixed(1)}" y="${m.t + ph - 4}" fill="${v.color ?? '#777'}">${esc(v.label)}</text>`);
  }
  named.forEach((s, i) => {
    const lx = m.l + pw + 14;
    const ly = m.t + 12 + i * 14;
    parts.push(`<rect x="${lx}" y="${ly - 8}" width="10" height="10" fill="${s.color}"/><text x="${lx + 14}" y="${ly + 1}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
