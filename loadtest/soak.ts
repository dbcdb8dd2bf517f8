/**
 * npm run soak — sessions held for a long time through real peers against a spawned server, to
 * see what grows: the server's memory (main process, mediasoup workers, reenactor children),
 * its open file descriptors, dropped frames and glass-to-glass latency, per window over time.
 *
 *   npm run soak -- [--sessions 4] [--minutes 30] [--warmup-minutes 5] [--window 60]
 *                   [--stage reenact|passthrough] [--driving test/fixtures/talking/t6.mp4]
 *                   [--fps 15] [--out loadtest/out/soak]
 *
 * Writes soak.json (every window), soak.md (the summary) and soak-*.svg (the plots). Growth is
 * the least-squares slope over the windows after warm-up, and the last window against the first
 * after warm-up. Bounded: at most 16 sessions and 240 minutes; every peer and the server are
 * closed on the way out, on errors and on SIGINT/SIGTERM.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeClip } from './peers.ts';
import { SpawnedServer } from './server-child.ts';
import { LoadSession } from './session.ts';
import { descendants, listProcesses, ProcTreeSampler } from './proc-stats.ts';
import { pool, round, windowStats } from './stats.ts';
import { chart, PALETTE, type Series } from './svg.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface SoakWindow {
  /** Minutes since the sessions started (window end). */
  atMin: number;
  sessionsLive: number;
  p50Ms: number;
  p95Ms: number;
  outputFps: number;
  dropRate: number;
  rssMb: { total: number; main: number; mediasoup: number; reenactor: number };
  /**
   * The reenactor children's memory at the window's end, from their heartbeats (/metrics): RSS,
   * V8 heap used, external buffers, and native (that RSS less V8's heap and external), MB.
   */
  reenactorMb: { rss: number; heapUsed: number; external: number; native: number } | null;
  fds: number;
  processes: number;
}

export interface SoakReport {
  sessions: number;
  minutes: number;
  warmupMinutes: number;
  stage: string;
  windows: SoakWindow[];
  growth: { rssTotalPct: number; rssMainPct: number; rssSlopeMbPerHour: number; fdsDelta: number; p95DeltaMs: number };
}

/** Open file descriptors of a process tree. */
async function countFds(rootPid: number): Promise<{ fds: number; processes: number }> {
  const procs = descendants(rootPid, await listProcesses());
  let fds = 0;
  for (const p of procs) fds += (await readdir(`/proc/${p.pid}/fd`).catch(() => [] as string[])).length;
  return { fds, processes: procs.length };
}

/**
 * Sums reenact_child_memory_bytes over the reenactor children, per kind, from a /metrics body, with
 * `rss` from reenact_child_rss_bytes for the same children: all from the same heartbeats, so that
 * RSS less V8's heap and external is one moment's split, not a window's mean against an instant.
 */
export function childMemory(metrics: string): Map<string, number> {
  const by = new Map<string, number>();
  const processes = new Set<string>();
  const re = /^reenact_child_memory_bytes\{([^}]*)\} (\S+)$/gm;
  for (let m = re.exec(metrics); m; m = re.exec(metrics)) {
    const kind = /kind="([^"]+)"/.exec(m[1]!)?.[1];
    const proc = /process="([^"]+)"/.exec(m[1]!)?.[1];
    if (proc) processes.add(proc);
    if (kind) by.set(kind, (by.get(kind) ?? 0) + Number(m[2]));
  }
  const rss = /^reenact_child_rss_bytes\{([^}]*)\} (\S+)$/gm;
  for (let m = rss.exec(metrics); m; m = rss.exec(metrics)) {
    const proc = /process="([^"]+)"/.exec(m[1]!)?.[1];
    if (proc && processes.has(proc)) by.set('rss', (by.get('rss') ?? 0) + Number(m[2]));
  }
  return by;
}

async function reenactorMemory(url: string): Promise<SoakWindow['reenactorMb']> {
  const body = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) }).then((r) => r.text()).catch(() => null);
  const by = body ? childMemory(body) : new Map<string, number>();
  const heapUsed = by.get('heap_used'), heapTotal = by.get('heap_total'), external = by.get('external'), rss = by.get('rss');
  if (heapUsed === undefined || heapTotal === undefined || external === undefined || rss === undefined) return null;
  const mb = (b: number): number => round(b / 2 ** 20);
  return { rss: mb(rss), heapUsed: mb(heapUsed), external: mb(external), native: mb(rss - heapTotal - external) };
}

function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  return sxx > 0 ? sxy / sxx : 0;
}

export function growthOf(windows: SoakWindow[], warmupMinutes: number): SoakReport['growth'] {
  const after = windows.filter((w) => w.atMin > warmupMinutes);
  const first = after[0], last = after[after.length - 1];
  if (!first || !last) return { rssTotalPct: NaN, rssMainPct: NaN, rssSlopeMbPerHour: NaN, fdsDelta: NaN, p95DeltaMs: NaN };
  return {
    rssTotalPct: round((last.rssMb.total / first.rssMb.total - 1) * 100, 2),
    rssMainPct: round((last.rssMb.main / first.rssMb.main - 1) * 100, 2),
    rssSlopeMbPerHour: round(slope(after.map((w) => w.atMin / 60), after.map((w) => w.rssMb.total)), 1),
    fdsDelta: last.fds - first.fds,
    p95DeltaMs: round(last.p95Ms - first.p95Ms),
  };
}

export async function soak(o: { sessions: number; minutes: number; warmupMinutes: number; windowS: number; stage: 'reenact' | 'passthrough'; driving: string; fps: number; out: string; signal: AbortSignal }): Promise<SoakReport> {
  mkdirSync(o.out, { recursive: true });
  const clip = await decodeClip(o.driving, 640, 480, o.fps, o.fps * 20);
  const server = await SpawnedServer.start({ stage: o.stage, maxSessions: o.sessions, logPath: join(o.out, 'server.log'), signal: o.signal });
  const sessions: LoadSession[] = [];
  let sampler: ProcTreeSampler | undefined;
  const windows: SoakWindow[] = [];
  try {
    const totalMs = o.minutes * 60_000;
    for (let i = 0; i < o.sessions; i++) {
      sessions.push(await LoadSession.start({ index: i, room: `soak-${i + 1}`, url: server.url, tokens: (room, role) => Promise.resolve(server.token(room, role)), clip, durationMs: totalMs + 30_000 }));
    }
    const origin = performance.now();
    sampler = await ProcTreeSampler.start({ rootPid: server.pid, origin, intervalMs: 5000 });
    const windowMs = o.windowS * 1000;
    for (let k = 0; k < Math.ceil(totalMs / windowMs) && !o.signal.aborted; k++) {
      const from = origin + k * windowMs;
      const to = Math.min(from + windowMs, origin + totalMs);
      await sleep(Math.max(0, to - performance.now()), undefined, { signal: o.signal }).catch(() => undefined);
      await sleep(1500); // frames sent at the window's end have arrived
      const stats = pool(sessions.map((s) => windowStats(s, { from, to })));
      const inWindow = sampler.samples.filter((s) => s.tMs >= from - origin && s.tMs <= to - origin);
      const mean = (f: (s: (typeof inWindow)[number]) => number): number => (inWindow.length ? inWindow.reduce((a, s) => a + f(s), 0) / inWindow.length / 2 ** 20 : NaN);
      const { fds, processes } = await countFds(server.pid);
      const reenactorRss = round(mean((s) => s.byKind['reenactor']?.rssBytes ?? 0));
      windows.push({
        atMin: round((to - origin) / 60_000, 2),
        sessionsLive: sessions.filter((s) => !s.closed).length,
        p50Ms: stats.latency.p50Ms,
        p95Ms: stats.latency.p95Ms,
        outputFps: round(stats.outputFpsTotal),
        dropRate: round(stats.dropRate, 4),
        rssMb: {
          total: round(mean((s) => s.rssBytes)),
          main: round(mean((s) => s.byKind['server']?.rssBytes ?? 0)),
          mediasoup: round(mean((s) => s.byKind['mediasoup-worker']?.rssBytes ?? 0)),
          reenactor: reenactorRss,
        },
        reenactorMb: await reenactorMemory(server.url),
        fds,
        processes,
      });
      const w = windows[windows.length - 1]!;
      process.stderr.write(`${w.atMin.toFixed(1)} min: p95 ${w.p95Ms} ms, ${w.outputFps} fps out, drops ${(w.dropRate * 100).toFixed(1)} %, RSS ${w.rssMb.total} MB (main ${w.rssMb.main}), fds ${w.fds}\n`);
    }
  } finally {
    for (const s of sessions) s.close();
    await sampler?.stop();
    await server.stop();
  }
  const report: SoakReport = { sessions: o.sessions, minutes: o.minutes, warmupMinutes: o.warmupMinutes, stage: o.stage, windows, growth: growthOf(windows, o.warmupMinutes) };
  writeReport(report, o.out);
  return report;
}

function writeReport(r: SoakReport, out: string): void {
  writeFileSync(join(out, 'soak.json'), JSON.stringify(r, null, 1));
  const x = (f: (w: SoakWindow) => number): [number, number][] => r.windows.map((w) => [w.atMin, f(w)]);
  const warm = [{ from: 0, to: r.warmupMinutes, label: 'warm-up' }];
  const plots: [string, Series[], string][] = [
    ['rss', [
      { name: 'all', color: PALETTE[0]!, points: x((w) => w.rssMb.total) },
      { name: 'main', color: PALETTE[1]!, points: x((w) => w.rssMb.main) },
      { name: 'mediasoup', color: PALETTE[2]!, points: x((w) => w.rssMb.mediasoup) },
      { name: 'reenactor', color: PALETTE[3]!, points: x((w) => w.rssMb.reenactor) },
      ...(r.windows.some((w) => w.reenactorMb) ? [
        { name: 'reenactor: V8 heap used', color: PALETTE[4]!, points: r.windows.filter((w) => w.reenactorMb).map((w): [number, number] => [w.atMin, w.reenactorMb!.heapUsed]) },
        { name: 'reenactor: native', color: PALETTE[5]!, points: r.windows.filter((w) => w.reenactorMb).map((w): [number, number] => [w.atMin, w.reenactorMb!.native]) },
      ] : []),
    ], 'RSS, MB'],
    ['latency', [{ name: 'p95', color: PALETTE[0]!, points: x((w) => w.p95Ms) }, { name: 'p50', color: PALETTE[1]!, points: x((w) => w.p50Ms) }], 'glass-to-glass, ms'],
    ['frames', [{ name: 'output fps (all sessions)', color: PALETTE[0]!, points: x((w) => w.outputFps) }, { name: 'dropped, %', color: PALETTE[3]!, points: x((w) => w.dropRate * 100) }], 'fps / %'],
    ['fds', [{ name: 'open fds (server tree)', color: PALETTE[0]!, points: x((w) => w.fds) }], 'file descriptors'],
  ];
  for (const [name, series, yLabel] of plots) {
    writeFileSync(join(out, `soak-${name}.svg`), chart({ title: `${r.sessions} sessions, ${r.stage}: ${yLabel}`, xLabel: 'minutes', yLabel, series, yMin: 0, vBands: warm }));
  }
  const g = r.growth;
  const md = [
    `# Soak: ${r.sessions} sessions, ${r.minutes} min, ${r.stage} (warm-up ${r.warmupMinutes} min)`,
    '',
    `- RSS of the server tree after warm-up: ${g.rssTotalPct} % (main process ${g.rssMainPct} %), slope ${g.rssSlopeMbPerHour} MB/h`,
    `- open fds: ${g.fdsDelta >= 0 ? '+' : ''}${g.fdsDelta}; latency p95: ${g.p95DeltaMs >= 0 ? '+' : ''}${g.p95DeltaMs} ms`,
    '',
    '| min | live | p50 ms | p95 ms | fps out | dropped | RSS MB (main / mediasoup / reenactor) | reenactor MB at the window end: RSS / V8 heap / external / native | fds |',
    '|---|---|---|---|---|---|---|---|---|',
    ...r.windows.map((w) => `| ${w.atMin} | ${w.sessionsLive} | ${w.p50Ms} | ${w.p95Ms} | ${w.outputFps} | ${(w.dropRate * 100).toFixed(1)} % | ${w.rssMb.total} (${w.rssMb.main} / ${w.rssMb.mediasoup} / ${w.rssMb.reenactor}) | ${w.reenactorMb ? `${w.reenactorMb.rss} / ${w.reenactorMb.heapUsed} / ${w.reenactorMb.external} / ${w.reenactorMb.native}` : '–'} | ${w.fds} |`),
  ];
  writeFileSync(join(out, 'soak.md'), md.join('\n') + '\n');
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      sessions: { type: 'string', default: '4' },
      minutes: { type: 'string', default: '30' },
      'warmup-minutes': { type: 'string' },
      window: { type: 'string', default: '60' },
      stage: { type: 'string', default: 'reenact' },
      driving: { type: 'string', default: join(ROOT, 'test', 'fixtures', 'talking', 't6.mp4') },
      fps: { type: 'string', default: '15' },
      out: { type: 'string', default: join(ROOT, 'loadtest', 'out', 'soak') },
    },
  });
  const sessions = Number(a.sessions), minutes = Number(a.minutes), windowS = Number(a.window), fps = Number(a.fps);
  const warmupMinutes = a['warmup-minutes'] !== undefined ? Number(a['warmup-minutes']) : Math.min(5, minutes / 3);
  if (!(sessions >= 1 && sessions <= 16 && Number.isInteger(sessions))) throw new TypeError('--sessions must be 1..16');
  if (!(minutes > 0 && minutes <= 240)) throw new TypeError('--minutes must be in (0, 240]');
  if (!(windowS >= 5 && windowS <= 600)) throw new TypeError('--window must be 5..600 seconds');
  if (!(warmupMinutes >= 0 && warmupMinutes < minutes)) throw new TypeError('--warmup-minutes must be under --minutes');
  if (a.stage !== 'reenact' && a.stage !== 'passthrough') throw new TypeError('--stage must be reenact or passthrough');
  if (!(fps >= 1 && fps <= 30)) throw new TypeError('--fps must be 1..30');
  const ac = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort());
  // A hard stop past the plan: the windows, start-up and teardown.
  const watchdog = setTimeout(() => ac.abort(), minutes * 60_000 + 180_000);
  watchdog.unref();
  const r = await soak({ sessions, minutes, warmupMinutes, windowS, stage: a.stage, driving: a.driving, fps, out: a.out, signal: ac.signal });
  process.stdout.write(`${JSON.stringify({ windows: r.windows.length, growth: r.growth })}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
