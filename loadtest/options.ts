/**
 * Command-line options of `npm run loadtest`, validated once and frozen.
 * Every run is bounded: the caps below are enforced here, before anything
 * starts, and again by a watchdog in run.ts. Targets are loopback only.
 *
 * All times are in milliseconds unless the name says otherwise.
 */
import { isProviderChoice } from '../server/src/inference/ort-session.ts';
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { isOutputProfile, OUTPUT_PROFILES, type OutputProfile } from '../shared/protocol.ts';

/** Hard limits; no flag lifts them. */
export const CAPS = Object.freeze({
  maxSessions: 16,
  /** Wall-clock budget of one whole run, server start to report. */
  maxTotalMs: 600_000,
  maxFps: 30,
  maxWidth: 1280,
  maxHeight: 720,
});

/** Time allowed, on top of warm-up and measurement, for server start, session start-up, drain and teardown. */
export const OVERHEAD_ALLOWANCE_MS = 60_000;

export type Stage = 'passthrough' | 'reenact';

export interface LoadtestOptions {
  mode: 'fixed' | 'ramp';
  /** Fixed mode: sessions run concurrently. Ramp mode: unused (see maxSessions). */
  sessions: number;
  /** Fixed mode: measured time after warm-up. */
  durationMs: number;
  warmupMs: number;
  driving: string;
  outDir: string;
  fps: number;
  width: number;
  height: number;
  stage: Stage;
  /** Spawned server: the rooms' output profile and the face render size (REENACT_OUTPUT, REENACT_RENDER_SIZE); undefined = its defaults. */
  output: OutputProfile | undefined;
  renderSize: number | undefined;
  /** Spawned server: REENACT_PROVIDER and REENACT_BATCH_MAX; undefined = its defaults. */
  provider: string | undefined;
  batchMax: number | undefined;
  /** Actors send landmarks (tracked from the footage up front) instead of video: privacy mode. */
  privacy: boolean;
  /** Actors also publish the driving clip's sound (with a marker tone each second) as their microphone. */
  audio: boolean;
  /** Ramp mode: stop when the step's pooled p95 glass-to-glass latency exceeds this. */
  p95LimitMs: number;
  /** Ramp mode: the most sessions to add. */
  maxSessions: number;
  /** Ramp mode: measured window per step, after the new session's warm-up. */
  stepWindowMs: number;
  /** Existing server to target (loopback only); undefined = spawn our own. */
  url: string | undefined;
  /** Upper bound on the whole run, derived from the plan; the watchdog aborts past it. */
  plannedMs: number;
  /** --url mode: REENACT_TOKEN_SECRET of the target server, to mint tokens here instead of GET /api/token. */
  tokenSecret: string | undefined;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const USAGE = `usage: npm run loadtest -- --driving <video> --out <dir> [options]

  --sessions N          concurrent sessions (default 1, max ${CAPS.maxSessions})
  --duration S          measured seconds after warm-up (default 20)
  --warmup S            seconds excluded from the stats at the start of each session (default 3)
  --driving PATH        footage each actor publishes (decoded once, looped)
  --out DIR             where report.json, report.html and server.log go
  --fps N               actor frame rate (default 15, max ${CAPS.maxFps})
  --width W --height H  actor frame size (default 640x480, max ${CAPS.maxWidth}x${CAPS.maxHeight})
  --stage S             passthrough | reenact, for the spawned server (default passthrough)
  --output P            the spawned server's output profile: ${OUTPUT_PROFILES.join(' | ')} (default: its own)
  --render-size N       the spawned server's face render size, 128..1024 in steps of 16 (default: its own)
  --provider P          the spawned server's inference provider: auto | cpu | webgpu | cuda (default: its own)
  --batch-max N         the spawned server's batch across sessions, 1..64 (default: the provider's)
  --privacy             actors send face landmarks over a data channel instead of video
                        (privacy mode; the footage is tracked once, up front)
  --audio               actors also send the clip's own sound as their microphone, with a
                        1 kHz marker each second; viewers measure the A/V offset (overall.audio)
  --ramp                add sessions one at a time until p95 > --p95-limit or --max-sessions
  --p95-limit MS        ramp stop threshold (default 250)
  --max-sessions M      ramp ceiling (default 8, max ${CAPS.maxSessions})
  --step S              ramp: measured seconds per step (default 10)
  --url URL             target a running server instead of spawning one (loopback only)

Every run is capped at ${CAPS.maxTotalMs / 1000} s in total.`;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** Throws UsageError unless `raw` is an http(s) URL on 127.0.0.1, localhost or ::1. */
export function assertLoopbackUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(raw)} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`--url must be http(s), got ${u.protocol}`);
  if (!LOOPBACK_HOSTS.has(u.hostname.toLowerCase())) {
    throw new UsageError(`refusing --url ${u.host}: load tests only ever target loopback (127.0.0.1, localhost, ::1)`);
  }
  if (u.username || u.password) throw new UsageError('--url must not carry credentials');
  return `${u.protocol}//${u.host}`;
}

function num(name: string, v: string | undefined, def: number, min: number, max: number, integer = true): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(v)}`);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/**
 * Parses argv (without node and script), applies defaults and caps. The only
 * environment variable read is REENACT_TOKEN_SECRET, and only with --url.
 */
export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): LoadtestOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        sessions: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        driving: { type: 'string' },
        out: { type: 'string' },
        fps: { type: 'string' },
        width: { type: 'string' },
        height: { type: 'string' },
        stage: { type: 'string' },
        output: { type: 'string' },
        'render-size': { type: 'string' },
        provider: { type: 'string' },
        'batch-max': { type: 'string' },
        privacy: { type: 'boolean' },
        audio: { type: 'boolean' },
        ramp: { type: 'boolean' },
        'p95-limit': { type: 'string' },
        'max-sessions': { type: 'string' },
        step: { type: 'string' },
        url: { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) throw new UsageError('');
  if (!values.driving) throw new UsageError('--driving <video> is required');
  if (!values.out) throw new UsageError('--out <dir> is required');
  const stage = values.stage ?? 'passthrough';
  if (stage !== 'passthrough' && stage !== 'reenact') throw new UsageError(`--stage must be passthrough or reenact, got ${JSON.stringify(stage)}`);
  const url = values.url === undefined ? undefined : assertLoopbackUrl(values.url);
  if (url !== undefined && values.stage !== undefined) throw new UsageError('--stage applies to the spawned server only; with --url the server runs its own stage');
  if (values.output !== undefined && !isOutputProfile(values.output)) throw new UsageError(`--output must be one of ${OUTPUT_PROFILES.join(', ')}, got ${JSON.stringify(values.output)}`);
  if (url !== undefined && (values.output !== undefined || values['render-size'] !== undefined)) throw new UsageError('--output and --render-size apply to the spawned server only');
  const renderSize = values['render-size'] === undefined ? undefined : num('render-size', values['render-size'], 256, 128, 1024);
  if (renderSize !== undefined && renderSize % 16 !== 0) throw new UsageError('--render-size must be a multiple of 16');
  if (values.provider !== undefined && !isProviderChoice(values.provider)) throw new UsageError(`--provider must be auto, cpu, webgpu or cuda, got ${JSON.stringify(values.provider)}`);
  if (url !== undefined && (values.provider !== undefined || values['batch-max'] !== undefined)) throw new UsageError('--provider and --batch-max apply to the spawned server only');
  const batchMax = values['batch-max'] === undefined ? undefined : num('batch-max', values['batch-max'], 1, 1, 64);

  const mode = values.ramp ? 'ramp' : 'fixed';
  const capS = CAPS.maxTotalMs / 1000;
  const warmupMs = num('warmup', values.warmup, 3, 0, 60, false) * 1000;
  const width = num('width', values.width, 640, 64, CAPS.maxWidth);
  const height = num('height', values.height, 480, 64, CAPS.maxHeight);
  if (width % 2 !== 0 || height % 2 !== 0) throw new UsageError('--width and --height must be even (I420)');
  const opts: LoadtestOptions = {
    mode,
    sessions: num('sessions', values.sessions, 1, 1, CAPS.maxSessions),
    durationMs: num('duration', values.duration, 20, 1, capS, false) * 1000,
    warmupMs,
    driving: resolve(values.driving),
    outDir: resolve(values.out),
    fps: num('fps', values.fps, 15, 1, CAPS.maxFps),
    width,
    height,
    stage,
    output: values.output,
    renderSize,
    provider: values.provider,
    batchMax,
    privacy: values.privacy ?? false,
    audio: values.audio ?? false,
    p95LimitMs: num('p95-limit', values['p95-limit'], 250, 1, 60_000, false),
    maxSessions: num('max-sessions', values['max-sessions'], 8, 1, CAPS.maxSessions),
    stepWindowMs: num('step', values.step, 10, 2, 120, false) * 1000,
    url,
    plannedMs: 0,
    tokenSecret: url !== undefined && env['REENACT_TOKEN_SECRET'] ? env['REENACT_TOKEN_SECRET'] : undefined,
  };
  if (mode === 'ramp' && values.sessions !== undefined) throw new UsageError('--sessions does not apply to --ramp; use --max-sessions');
  if (mode === 'ramp' && values.duration !== undefined) throw new UsageError('--duration does not apply to --ramp; use --step');
  opts.plannedMs = plannedMs(opts);
  if (opts.plannedMs > CAPS.maxTotalMs) {
    throw new UsageError(
      `this run would take up to ${Math.ceil(opts.plannedMs / 1000)} s (including ${OVERHEAD_ALLOWANCE_MS / 1000} s for start-up and teardown); the cap is ${capS} s. ` +
        (mode === 'ramp' ? 'Lower --max-sessions, --step or --warmup.' : 'Lower --duration or --warmup.'),
    );
  }
  return Object.freeze(opts);
}

/** Worst-case wall time of the plan, including the start-up/teardown allowance. */
export function plannedMs(o: Pick<LoadtestOptions, 'mode' | 'durationMs' | 'warmupMs' | 'maxSessions' | 'stepWindowMs'>): number {
  const DRAIN_MS = 1000;
  const STEP_START_MS = 3000;
  const measured = o.mode === 'ramp' ? o.maxSessions * (STEP_START_MS + o.warmupMs + o.stepWindowMs + DRAIN_MS) : o.warmupMs + o.durationMs + DRAIN_MS;
  return measured + OVERHEAD_ALLOWANCE_MS;
}

/** The watchdog's limit for a run: the plan plus 30 s of slack, never more than the hard cap. */
export function hardCapMs(o: Pick<LoadtestOptions, 'plannedMs'>): number {
  return Math.min(CAPS.maxTotalMs, o.plannedMs + 30_000);
}
