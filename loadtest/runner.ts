/**
 * One load-test run: decode the footage once, get a server (spawned or
 * --url, loopback only), run the fixed or ramp plan, then close every peer,
 * stop the sampling and the spawned server, and build the report.
 *
 * Everything that must be torn down is registered in `Resources` as soon as
 * it exists, so run.ts can also tear it down synchronously on a second
 * Ctrl-C, a watchdog timeout or an uncaught error.
 */
import { audioReport, decodeVoice, type Voice } from './audio.ts';
import { loadavg, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { TokenSigner } from '../server/src/auth/tokens.ts';
import { frameBytes } from '../server/src/media/video-io.ts';
import { decodeClip, percentile, trackLandmarks, type DecodedClip, type TrackedClip } from './peers.ts';
import { CAPS, hardCapMs, type LoadtestOptions } from './options.ts';
import { SpawnedServer } from './server-child.ts';
import { LoadSession, type TokenSource } from './session.ts';
import { Monitor } from './monitor.ts';
import { findListeningPid, summarize } from './proc-stats.ts';
import { scrape, type Scrape } from './prom.ts';
import { latencySeries, pool, round, windowStats, type Window } from './stats.ts';
import { REPORT_VERSION, serverWindow, type Aggregate, type RampReport, type RampStep, type Report, type SessionReport } from './report.ts';

/** The pieces of a run that need tearing down, owned by run.ts. */
export class Resources {
  readonly sessions = new Set<LoadSession>();
  server: SpawnedServer | undefined;

  /** Synchronous teardown for emergencies: closes every peer, SIGKILLs the server's process group. */
  closeAllNow(): void {
    for (const s of this.sessions) s.close();
    this.server?.killNow();
  }
}

const DRAIN_MS = 1500; // > the reenactor's 1 s heartbeat, so the server's histogram has caught up too
const CLIP_BUDGET_BYTES = 192 * 1024 * 1024;

interface Ctx {
  o: LoadtestOptions;
  signal: AbortSignal;
  res: Resources;
  url: string;
  tokens: TokenSource;
  clip: DecodedClip;
  tracked: TrackedClip | undefined;
  voice: Voice | undefined;
  runId: string;
  /** performance.now() at the first session start; report times count from here. */
  origin: number;
  monitor: Monitor;
  notes: string[];
}

interface Measured {
  /** The measurement window of each session, by index. */
  windows: Map<number, Window>;
  scrapeA: Scrape | undefined;
  scrapeB: Scrape | undefined;
  ramp: RampReport | null;
}

async function sleepUntil(t: number, signal: AbortSignal): Promise<void> {
  const ms = t - performance.now();
  if (ms > 0) await sleep(ms, undefined, { signal });
  signal.throwIfAborted();
}

/** Awaits `p`, failing after `ms` or on abort; leaves no timer behind. */
async function within<T>(p: Promise<T>, ms: number, signal: AbortSignal, what: string): Promise<T> {
  const timer = new AbortController();
  const onAbort = (): void => timer.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const timeout = sleep(ms, undefined, { signal: timer.signal }).then(() => {
      throw new Error(`${what} did not happen within ${ms} ms`);
    });
    return await Promise.race([p, timeout]);
  } finally {
    signal.removeEventListener('abort', onAbort);
    timer.abort();
    signal.throwIfAborted();
  }
}

async function tryScrape(url: string, notes: string[]): Promise<Scrape | undefined> {
  try {
    return await scrape(url);
  } catch (err) {
    notes.push(`a /metrics scrape failed (${(err as Error).message}); server-side numbers for that window are missing`);
    return undefined;
  }
}

function tokenSource(o: LoadtestOptions, url: string, server: SpawnedServer | undefined): TokenSource {
  if (server) return (room, role) => Promise.resolve(server.token(room, role));
  if (o.tokenSecret) {
    const signer = new TokenSigner(o.tokenSecret, 3600_000);
    return (room, role) => Promise.resolve(signer.sign(room, role));
  }
  return async (room, role) => {
    const res = await fetch(`${url}/api/token?room=${encodeURIComponent(room)}&role=${role}`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`GET /api/token answered ${res.status}; set REENACT_TOKEN_SECRET to the server's secret to mint tokens here`);
    return ((await res.json()) as { token: string }).token;
  };
}

async function startSession(ctx: Ctx, index: number, durationMs: number): Promise<LoadSession> {
  ctx.signal.throwIfAborted();
  const s = await LoadSession.start({ index, room: `lt-${ctx.runId}-${index + 1}`, url: ctx.url, tokens: ctx.tokens, clip: ctx.clip, tracked: ctx.tracked, voice: ctx.voice, durationMs });
  ctx.res.sessions.add(s);
  return s;
}

async function runFixed(ctx: Ctx): Promise<Measured> {
  const { o, signal } = ctx;
  const started = await Promise.allSettled(Array.from({ length: o.sessions }, (_, i) => startSession(ctx, i, o.warmupMs + o.durationMs)));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw new Error(`a session failed to start: ${(failed.reason as Error).message}`);
  const sessions = [...ctx.res.sessions];
  const windows = new Map<number, Window>();
  for (const s of sessions) windows.set(s.index, { from: s.publishedAt + o.warmupMs, to: s.publishedAt + o.warmupMs + o.durationMs });
  const m: Measured = { windows, scrapeA: undefined, scrapeB: undefined, ramp: null };
  await sleepUntil(Math.max(...[...windows.values()].map((w) => w.from)), signal);
  m.scrapeA = await tryScrape(ctx.url, ctx.notes);
  await within(Promise.all(sessions.map((s) => s.actor.finished())), o.durationMs + o.warmupMs + 5000, signal, 'the actors finishing');
  await sleep(DRAIN_MS, undefined, { signal });
  m.scrapeB = await tryScrape(ctx.url, ctx.notes);
  return m;
}

async function runRamp(ctx: Ctx, deadline: number): Promise<Measured> {
  const { o, signal } = ctx;
  const windows = new Map<number, Window>();
  const ramp: RampReport = { p95LimitMs: o.p95LimitMs, maxSessions: o.maxSessions, stepWindowMs: o.stepWindowMs, knee: null, maxSustainedSessions: 0, stopReason: '', steps: [] };
  const m: Measured = { windows, scrapeA: undefined, scrapeB: undefined, ramp };
  for (let k = 1; k <= o.maxSessions; k++) {
    if (performance.now() + o.warmupMs + o.stepWindowMs + DRAIN_MS + 5000 > deadline) {
      ramp.stopReason = `time cap: no room for step ${k} within ${Math.round(hardCapMs(o) / 1000)} s`;
      break;
    }
    let s: LoadSession;
    try {
      s = await startSession(ctx, k - 1, deadline - performance.now());
    } catch (err) {
      if (k === 1 || signal.aborted) throw err;
      ramp.knee = k;
      ramp.stopReason = `session ${k} failed to start: ${(err as Error).message}`;
      break;
    }
    windows.set(s.index, { from: s.publishedAt + o.warmupMs, to: Infinity });
    await sleepUntil(s.publishedAt + o.warmupMs, signal);
    const a = await tryScrape(ctx.url, ctx.notes);
    m.scrapeA ??= a;
    const w: Window = { from: performance.now(), to: 0 };
    await sleep(o.stepWindowMs, undefined, { signal });
    w.to = performance.now();
    await sleep(DRAIN_MS, undefined, { signal });
    const b = await tryScrape(ctx.url, ctx.notes);
    m.scrapeB = b;
    const per = [...ctx.res.sessions].map((x) => windowStats(x, w));
    const agg = aggregate(ctx, per, [...ctx.res.sessions], serverWindow(a, b), w);
    const p95 = agg.latency.p95Ms;
    const exceeded = !(p95 <= o.p95LimitMs);
    ramp.steps.push({ sessions: k, window: rel(ctx, w), aggregate: agg, perSessionP95Ms: per.map((x) => x.latency.p95Ms), exceeded } satisfies RampStep);
    if (exceeded) {
      ramp.knee = k;
      ramp.stopReason = Number.isFinite(p95) ? `p95 ${round(p95)} ms > ${o.p95LimitMs} ms at ${k} sessions` : `no frame came back at ${k} sessions`;
      break;
    }
    ramp.maxSustainedSessions = k;
  }
  if (ramp.stopReason === '') ramp.stopReason = `reached --max-sessions ${o.maxSessions} within the p95 limit`;
  const end = performance.now();
  for (const [i, w] of windows) windows.set(i, { from: w.from, to: Math.min(w.to, end) });
  return m;
}

function rel(ctx: Ctx, w: Window): { fromMs: number; toMs: number } {
  return { fromMs: Math.round(w.from - ctx.origin), toMs: Math.round(w.to - ctx.origin) };
}

/** `windowOf` gives each session's own measured window (default: the pooled one). */
function aggregate(ctx: Ctx, per: ReturnType<typeof windowStats>[], sessions: LoadSession[], server: Aggregate['server'], w: Window, windowOf: (s: LoadSession) => Window = () => w): Aggregate {
  const ttff = sessions.map((s) => (s.firstFrameAt ?? NaN) - s.startedAt);
  const finite = ttff.filter(Number.isFinite);
  const { fromMs, toMs } = rel(ctx, w);
  const voiced = sessions.filter((s) => s.voice);
  const audio = voiced.length
    ? audioReport(
        voiced.map((s) => {
          const win = windowOf(s);
          const voice = s.voice as NonNullable<LoadSession['voice']>;
          return {
            index: s.index,
            // Markers sent inside the window, and what became of them.
            samples: s.avSamples().filter((x) => x.sentAt >= win.from && x.sentAt <= win.to),
            markersSent: voice.sender.markerSentAt.filter((t) => t >= win.from && t <= win.to).length,
            listener: voice.listener,
          };
        }),
      )
    : null;
  return {
    ...pool(per),
    audio,
    timeToFirstFrameMs: {
      meanMs: finite.length === ttff.length && finite.length ? round(finite.reduce((a, b) => a + b, 0) / finite.length) : NaN,
      maxMs: finite.length === ttff.length && finite.length ? round(Math.max(...finite)) : NaN,
    },
    server,
    resources: {
      server: ctx.monitor.serverPid === undefined ? null : summarize(ctx.monitor.serverSamples, fromMs, toMs + 1000),
      client: summarize(ctx.monitor.clientSamples, fromMs, toMs + 1000),
    },
  };
}

function sessionReport(ctx: Ctx, s: LoadSession, w: Window): SessionReport {
  const st = windowStats(s, w);
  const { samplesMs: _samples, ...rest } = st;
  return {
    index: s.index,
    room: s.room,
    startedAtMs: Math.round(s.startedAt - ctx.origin),
    publishedAtMs: Math.round(s.publishedAt - ctx.origin),
    firstFrameAtMs: s.firstFrameAt === undefined ? NaN : Math.round(s.firstFrameAt - ctx.origin),
    timeToFirstFrameMs: s.firstFrameAt === undefined ? NaN : round(s.firstFrameAt - s.startedAt),
    window: rel(ctx, w),
    ...rest,
  };
}

/** Why the run failed although it completed, or undefined. */
function qualityFailure(sessions: readonly SessionReport[], ramp: RampReport | null): string | undefined {
  const dead = ramp ? sessions.filter((s) => s.index === 0) : sessions;
  for (const s of dead) {
    if (s.framesReceived > 0) continue;
    if (s.framesUnstamped > 0) return `session ${s.index + 1}: frames arrived but no stamp could be read; is the server in measurement mode (REENACT_MEASUREMENT=1)?`;
    return `session ${s.index + 1}: no synthesized frame came back`;
  }
  return undefined;
}

/** The spawned server, or the --url one after a health check; and the pid to sample, if we can find it. */
async function acquireTarget(
  o: LoadtestOptions,
  signal: AbortSignal,
  res: Resources,
  log: (line: string) => void,
  notes: string[],
): Promise<{ url: string; serverPid: number | undefined; serverNote: string | null }> {
  if (o.url === undefined) {
    log('starting a server …');
    res.server = await SpawnedServer.start({ stage: o.stage, output: o.output, renderSize: o.renderSize, provider: o.provider, batchMax: o.batchMax, maxSessions: o.mode === 'ramp' ? o.maxSessions : o.sessions, logPath: join(o.outDir, 'server.log'), signal });
    return { url: res.server.url, serverPid: res.server.pid, serverNote: null };
  }
  const url = o.url;
  const h = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) }).catch((err: Error) => {
    throw new Error(`cannot reach ${url}/healthz: ${err.message}`);
  });
  if (h.status !== 200) throw new Error(`${url}/healthz answered ${h.status}: ${await h.text()}`);
  notes.push('--url: unless the server runs with REENACT_MEASUREMENT=1, a stage that redraws the picture drops the stamps; its stage and limits are its own');
  const u = new URL(url);
  const serverPid = await findListeningPid(Number(u.port || (u.protocol === 'https:' ? 443 : 80)));
  return { url, serverPid, serverNote: serverPid === undefined ? `no process of ours listens on ${url}; server CPU/RSS were not sampled` : null };
}

export async function runLoadtest(o: LoadtestOptions, signal: AbortSignal, res: Resources, log: (line: string) => void): Promise<Report> {
  const wall0 = performance.now();
  const startedAt = new Date().toISOString();
  const load0 = loadavg()[0] ?? NaN;
  const notes: string[] = ['the machine may be shared with other work: compare load averages and the load-test process CPU before trusting small differences'];
  let ctx: Ctx | undefined;
  let measured: Measured | undefined;
  let error: string | null = null;
  let serverNote: string | null = null;
  let closedAt = NaN;
  try {
    const maxFrames = Math.max(1, Math.min(600, Math.floor(CLIP_BUDGET_BYTES / frameBytes(o.width, o.height, 'yuv420p'))));
    log(`decoding ${o.driving} at ${o.width}x${o.height}@${o.fps} …`);
    const clip = await decodeClip(o.driving, o.width, o.height, o.fps, maxFrames);
    let tracked: TrackedClip | undefined;
    if (o.privacy) {
      log(`privacy mode: tracking ${clip.frames.length} frames up front …`);
      tracked = await trackLandmarks(clip);
      notes.push(`privacy mode: actors send landmarks tracked up front with the server's tracker (p50 ${percentile(tracked.trackMs, 50).toFixed(1)} ms/frame here); glass-to-glass starts when a frame's landmarks are sent, so on-device tracking time is not in it`);
    }
    const { url, serverPid, serverNote: note } = await acquireTarget(o, signal, res, log, notes);
    serverNote = note;
    const origin = performance.now();
    const monitor = await Monitor.start({ url, origin, serverPid });
    const voice = o.audio ? await decodeVoice(o.driving, (clip.frames.length * 1000) / clip.fps) : undefined;
    ctx = { o, signal, res, url, tokens: tokenSource(o, url, res.server), clip, tracked, voice, runId: randomBytes(3).toString('hex'), origin, monitor, notes };
    log(`${o.mode === 'ramp' ? `ramping up to ${o.maxSessions} sessions` : `running ${o.sessions} session(s) for ${(o.warmupMs + o.durationMs) / 1000} s`} against ${url} …`);
    measured = o.mode === 'ramp' ? await runRamp(ctx, wall0 + hardCapMs(o) - 20_000) : await runFixed(ctx);
  } catch (err) {
    error = signal.aborted ? `aborted: ${String(signal.reason)}` : (err as Error).message;
  } finally {
    closedAt = performance.now();
    for (const s of res.sessions) s.close();
    await ctx?.monitor.stop();
    await res.server?.stop();
  }
  return buildReport({ o, ctx, measured, error, aborted: signal.aborted, serverNote, notes, startedAt, wall0, load0, closedAt });
}

interface BuildInput {
  o: LoadtestOptions;
  ctx: Ctx | undefined;
  measured: Measured | undefined;
  error: string | null;
  aborted: boolean;
  serverNote: string | null;
  notes: string[];
  startedAt: string;
  wall0: number;
  load0: number;
  /** When the peers were closed; windows cut short (abort, failure) end a drain before it. */
  closedAt: number;
}

function buildReport(b: BuildInput): Report {
  const { o, ctx, measured } = b;
  const now = performance.now();
  const cut = b.closedAt - DRAIN_MS;
  const sessions = ctx ? [...ctx.res.sessions].sort((x, y) => x.index - y.index) : [];
  const windowOf = (s: LoadSession): Window => {
    const w = measured?.windows.get(s.index) ?? { from: s.publishedAt + o.warmupMs, to: cut };
    return { from: w.from, to: Math.max(w.from, Math.min(w.to, cut)) };
  };
  const sessionReports = ctx ? sessions.map((s) => sessionReport(ctx, s, windowOf(s))) : [];
  let overall: Aggregate | null = null;
  if (ctx && sessions.length) {
    const ws = sessions.map(windowOf);
    const span: Window = { from: Math.min(...ws.map((w) => w.from)), to: Math.max(...ws.map((w) => w.to)) };
    overall = aggregate(ctx, sessions.map((s) => windowStats(s, windowOf(s))), sessions, serverWindow(measured?.scrapeA, measured?.scrapeB), span, windowOf);
  }
  let error = b.error;
  if (!error && ctx) error = qualityFailure(sessionReports, measured?.ramp ?? null) ?? null;
  if (measured?.ramp && measured.ramp.steps.length === 0 && !error) error = 'the ramp measured no step';
  const res = b.ctx?.res;
  return {
    tool: 'reenact-loadtest',
    version: REPORT_VERSION,
    status: b.aborted ? 'aborted' : error ? 'failed' : 'ok',
    error,
    notes: b.notes,
    startedAt: b.startedAt,
    finishedAt: new Date().toISOString(),
    wallMs: Math.round(now - b.wall0),
    config: {
      mode: o.mode,
      sessions: o.mode === 'fixed' ? o.sessions : null,
      durationMs: o.mode === 'fixed' ? o.durationMs : null,
      warmupMs: o.warmupMs,
      driving: o.driving,
      fps: o.fps,
      width: o.width,
      height: o.height,
      stage: o.url ? 'as configured on the target server' : o.stage,
      output: o.output ?? (o.url ? 'as configured on the target server' : 'server default'),
      renderSize: o.renderSize ?? null,
      provider: o.provider ?? (o.url ? 'as configured on the target server' : 'server default'),
      batchMax: o.batchMax ?? null,
      privacy: o.privacy,
      audio: o.audio,
      p95LimitMs: o.mode === 'ramp' ? o.p95LimitMs : null,
      maxSessions: o.mode === 'ramp' ? o.maxSessions : null,
      stepWindowMs: o.mode === 'ramp' ? o.stepWindowMs : null,
      url: o.url ?? null,
      spawnedServer: o.url === undefined,
      serverRtcPorts: res?.server?.rtcPorts ?? null,
      tokenSource: o.url === undefined ? 'spawned server secret' : o.tokenSecret ? 'REENACT_TOKEN_SECRET' : 'GET /api/token',
      runId: ctx?.runId ?? null,
      clipFrames: ctx?.clip.frames.length ?? null,
      plannedMs: o.plannedMs,
      caps: CAPS,
    },
    environment: { node: process.version, platform: `${process.platform}-${process.arch}`, cpus: availableParallelism(), loadavg1mStart: b.load0, loadavg1mEnd: loadavg()[0] ?? NaN },
    overall,
    sessions: sessionReports,
    ramp: measured?.ramp ?? null,
    resources: {
      sampleIntervalMs: 1000,
      server: { pid: ctx?.monitor.serverPid ?? null, samples: [...(ctx?.monitor.serverSamples ?? [])], note: b.serverNote },
      client: { pid: process.pid, samples: [...(ctx?.monitor.clientSamples ?? [])] },
      serverGauges: ctx?.monitor.gauges ?? [],
    },
    series: ctx ? sessions.map((s) => ({ session: s.index, points: latencySeries(s, ctx.origin) })) : [],
  };
}
