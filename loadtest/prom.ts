/**
 * Just enough of the Prometheus text format to read the server's /metrics:
 * samples by name and labels, counter/histogram deltas between two scrapes,
 * and quantiles estimated from histogram buckets the way PromQL's
 * histogram_quantile() does (linear interpolation inside the bucket).
 */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  /** performance.now() when the scrape was answered. */
  at: number;
  samples: PromSample[];
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function parseValue(v: string): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  return Number(v);
}

export function parsePrometheus(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1]!, labels, value: parseValue(m[3]!) });
  }
  return out;
}

export async function scrape(baseUrl: string, timeoutMs = 5000): Promise<Scrape> {
  const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`);
  const text = await res.text();
  return { at: performance.now(), samples: parsePrometheus(text) };
}

/** Sum of every sample of `name` whose labels include `match`. */
export function sumOf(s: Scrape | undefined, name: string, match: Record<string, string> = {}): number | undefined {
  if (!s) return undefined;
  let found = false;
  let total = 0;
  for (const x of s.samples) {
    if (x.name !== name) continue;
    if (!Object.entries(match).every(([k, v]) => x.labels[k] === v)) continue;
    found = true;
    total += x.value;
  }
  return found ? total : undefined;
}

/** Counter increase between two scrapes, per value of one label. */
export function deltaByLabel(a: Scrape | undefined, b: Scrape | undefined, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  if (!b) return out;
  const before = new Map<string, number>();
  for (const x of a?.samples ?? []) if (x.name === name) before.set(x.labels[label] ?? '', x.value);
  for (const x of b.samples) {
    if (x.name !== name) continue;
    const key = x.labels[label] ?? '';
    out[key] = Math.max(0, x.value - (before.get(key) ?? 0));
  }
  return out;
}

export interface HistogramDelta {
  /** Cumulative counts per upper bound (seconds or whatever the metric's unit is), ascending, last = +Inf. */
  buckets: { le: number; count: number }[];
  count: number;
  sum: number;
}

/** The observations a histogram gained between two scrapes. */
export function histogramDelta(a: Scrape | undefined, b: Scrape, name: string): HistogramDelta | undefined {
  const read = (s: Scrape | undefined): Map<number, number> => {
    const m = new Map<number, number>();
    for (const x of s?.samples ?? []) if (x.name === `${name}_bucket` && x.labels['le'] !== undefined) m.set(parseValue(x.labels['le']), (m.get(parseValue(x.labels['le'])) ?? 0) + x.value);
    return m;
  };
  const after = read(b);
  if (after.size === 0) return undefined;
  const before = read(a);
  const buckets = [...after.entries()].map(([le, count]) => ({ le, count: Math.max(0, count - (before.get(le) ?? 0)) })).sort((x, y) => x.le - y.le);
  const count = Math.max(0, (sumOf(b, `${name}_count`) ?? 0) - (sumOf(a, `${name}_count`) ?? 0));
  const sum = Math.max(0, (sumOf(b, `${name}_sum`) ?? 0) - (sumOf(a, `${name}_sum`) ?? 0));
  return { buckets, count, sum };
}

/**
 * The q-quantile (0..1) of a histogram, interpolated linearly inside its
 * bucket (lower edge 0 for the first bucket). When it falls in the +Inf
 * bucket the highest finite bound is returned: a lower bound, not an estimate.
 */
export function histogramQuantile(q: number, h: HistogramDelta): number {
  if (h.count <= 0 || h.buckets.length === 0) return NaN;
  const rank = q * h.count;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of h.buckets) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return prevLe;
      const inBucket = b.count - prevCount;
      return inBucket <= 0 ? b.le : prevLe + (b.le - prevLe) * ((rank - prevCount) / inBucket);
    }
    prevLe = Number.isFinite(b.le) ? b.le : prevLe;
    prevCount = b.count;
  }
  return prevLe;
}
