/**
 * report.json's shape, the server-side numbers derived from /metrics
 * scrapes, writing report.json + report.html, and the short stdout summary.
 * Numbers that could not be measured are NaN in memory and null on disk.
 */
import type { AudioReport } from './audio.ts';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deltaByLabel, histogramDelta, histogramQuantile, sumOf, type Scrape } from './prom.ts';
import type { ProcSample, ResourceSummary } from './proc-stats.ts';
import type { GaugeSample } from './monitor.ts';
import { round, type LatencyStats, type PooledStats } from './stats.ts';
import { renderHtml } from './report-html.ts';

export const REPORT_VERSION = 1;

/** What the server itself says about a window, from two /metrics scrapes. */
export interface ServerWindow {
  /** reenact_server_added_latency_seconds: reenactor input → output handed to the encoder. */
  addedLatency: {
    p50Ms: number;
    p95Ms: number;
    meanMs: number;
    frames: number;
    /** The p95 fell in the +Inf bucket: the value is the top finite bucket bound, a lower bound. */
    p95IsLowerBound: boolean;
  } | null;
  framesIn: number;
  framesOut: number;
  dropped: Record<string, number>;
}

export interface Aggregate extends PooledStats {
  timeToFirstFrameMs: { meanMs: number; maxMs: number };
  server: ServerWindow | null;
  /** With --audio: the voice at the viewers and its offset from the face. */
  audio?: AudioReport | null;
  resources: { server: ResourceSummary | null; client: ResourceSummary };
}

export interface SessionReport {
  index: number;
  room: string;
  /** Times since the run's origin (first session start). */
  startedAtMs: number;
  publishedAtMs: number;
  firstFrameAtMs: number;
  /** Actor start (connect, join, produce) → first synthesized frame at the viewer. */
  timeToFirstFrameMs: number;
  window: { fromMs: number; toMs: number };
  framesSent: number;
  framesReceived: number;
  framesArrived: number;
  framesUnstamped: number;
  latency: LatencyStats;
  outputFps: number;
  dropRate: number;
}

export interface RampStep {
  sessions: number;
  window: { fromMs: number; toMs: number };
  aggregate: Aggregate;
  perSessionP95Ms: number[];
  exceeded: boolean;
}

export interface RampReport {
  p95LimitMs: number;
  maxSessions: number;
  stepWindowMs: number;
  /** Session count at which the pooled p95 first passed the limit (or a session got no frames); null = never within maxSessions. */
  knee: number | null;
  /** The most sessions that stayed within the limit. */
  maxSustainedSessions: number;
  stopReason: string;
  steps: RampStep[];
}

export interface ReportConfig {
  mode: 'fixed' | 'ramp';
  sessions: number | null;
  durationMs: number | null;
  warmupMs: number;
  driving: string;
  fps: number;
  width: number;
  height: number;
  stage: string;
  /** Output profile and face render size the spawned server ran with. */
  output: string;
  renderSize: number | null;
  /** Inference provider and batch limit the spawned server ran with (--provider, --batch-max). */
  provider: string;
  batchMax: number | null;
  /** Actors sent landmarks instead of video (privacy mode). */
  privacy: boolean;
  /** Actors sent the clip's sound as their microphone (--audio). */
  audio: boolean;
  p95LimitMs: number | null;
  maxSessions: number | null;
  stepWindowMs: number | null;
  url: string | null;
  spawnedServer: boolean;
  serverRtcPorts: [number, number] | null;
  tokenSource: string;
  runId: string | null;
  clipFrames: number | null;
  plannedMs: number;
  caps: Readonly<Record<string, number>>;
}

export interface Report {
  tool: 'reenact-loadtest';
  version: number;
  status: 'ok' | 'failed' | 'aborted';
  error: string | null;
  notes: string[];
  startedAt: string;
  finishedAt: string;
  wallMs: number;
  config: ReportConfig;
  environment: { node: string; platform: string; cpus: number; loadavg1mStart: number; loadavg1mEnd: number };
  overall: Aggregate | null;
  sessions: SessionReport[];
  ramp: RampReport | null;
  resources: {
    sampleIntervalMs: number;
    server: { pid: number | null; samples: ProcSample[]; note: string | null };
    client: { pid: number; samples: ProcSample[] };
    serverGauges: GaugeSample[];
  };
  /** Per session: [send time since origin, glass-to-glass latency] of every frame that came back. */
  series: { session: number; points: [number, number][] }[];
}

const HIST = 'reenact_server_added_latency_seconds';

export function serverWindow(a: Scrape | undefined, b: Scrape | undefined): ServerWindow | null {
  if (!a || !b) return null;
  const h = histogramDelta(a, b, HIST);
  let addedLatency: ServerWindow['addedLatency'] = null;
  if (h && h.count > 0) {
    const underTopBound = h.buckets.filter((x) => Number.isFinite(x.le)).at(-1)?.count ?? 0;
    const p95 = histogramQuantile(0.95, h);
    addedLatency = {
      p50Ms: round(histogramQuantile(0.5, h) * 1000, 2),
      p95Ms: round(p95 * 1000, 2),
      meanMs: round((h.sum / h.count) * 1000, 2),
      frames: h.count,
      p95IsLowerBound: underTopBound < 0.95 * h.count,
    };
  }
  const d = (name: string): number => Math.max(0, (sumOf(b, name) ?? 0) - (sumOf(a, name) ?? 0));
  return { addedLatency, framesIn: d('reenact_frames_in_total'), framesOut: d('reenact_frames_out_total'), dropped: deltaByLabel(a, b, 'reenact_frames_dropped_total', 'reason') };
}

/** JSON with NaN/±Infinity written as null. */
export function toJson(report: Report): string {
  return JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1);
}

export async function writeReport(outDir: string, report: Report): Promise<{ json: string; html: string }> {
  await mkdir(outDir, { recursive: true });
  const json = join(outDir, 'report.json');
  const html = join(outDir, 'report.html');
  await writeFile(json, toJson(report));
  await writeFile(html, renderHtml(report));
  return { json, html };
}

const ms = (x: number | undefined | null): string => (x === undefined || x === null || !Number.isFinite(x) ? 'n/a' : `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`);
const pct = (x: number | null | undefined, digits = 0): string => (x === undefined || x === null || !Number.isFinite(x) ? 'n/a' : `${x.toFixed(digits)} %`);
const mb = (x: number | null | undefined): string => (x === undefined || x === null || !Number.isFinite(x) ? 'n/a' : `${Math.round(x / 1048576)} MB`);

function aggregateLines(a: Aggregate): string[] {
  const lat = a.latency;
  const srv = a.server?.addedLatency;
  const lines = [
    `  glass-to-glass  p50 ${ms(lat.p50Ms)}  p95 ${ms(lat.p95Ms)}  p99 ${ms(lat.p99Ms)}  max ${ms(lat.maxMs)}  (${a.framesReceived}/${a.framesSent} frames back)`,
    `  server-added    ${srv ? `p50 ${ms(srv.p50Ms)}  p95 ${srv.p95IsLowerBound ? '>' : ''}${ms(srv.p95Ms)}  mean ${ms(srv.meanMs)}  (${srv.frames} frames)` : 'n/a'}`,
    `  output          ${Number.isFinite(a.outputFpsMeanPerSession) ? a.outputFpsMeanPerSession.toFixed(1) : 'n/a'} fps per session, drop rate ${pct(a.dropRate * 100, 1)}, first frame after ${ms(a.timeToFirstFrameMs.meanMs)} mean / ${ms(a.timeToFirstFrameMs.maxMs)} max`,
  ];
  const s = a.resources.server;
  if (s) lines.push(`  server CPU      mean ${pct(s.cpuPercentMean)}  max ${pct(s.cpuPercentMax)} of one core; RSS max ${mb(s.rssBytesMax)} (server + all children)`);
  const au = a.audio;
  if (au) {
    const heard = au.sessions.reduce((n, x) => n + x.markersHeard, 0);
    const sent = au.sessions.reduce((n, x) => n + x.markersSent, 0);
    lines.push(`  A/V offset      p5 ${ms(au.offsetP5Ms)}  p50 ${ms(au.offsetP50Ms)}  p95 ${ms(au.offsetP95Ms)} (+ = audio early; EBU R37 −60…+40: ${pct(au.withinEbuR37 * 100, 1)} of ${heard}/${sent} markers); gaps ${au.gaps}`);
  }
  const c = a.resources.client;
  lines.push(`  load-test CPU   mean ${pct(c.cpuPercentMean)}  max ${pct(c.cpuPercentMax)} (actors + viewers in this process)`);
  return lines;
}

/** The short human summary printed to stdout. */
export function summaryText(r: Report, files?: { json: string; html: string }): string {
  const c = r.config;
  const out: string[] = [];
  const what = r.ramp ? `ramp to ≤${r.ramp.maxSessions} sessions (p95 limit ${r.ramp.p95LimitMs} ms)` : `${c.sessions ?? '?'} session(s) × ${(c.durationMs ?? NaN) / 1000} s`;
  out.push(`reenact loadtest [${r.status}]: ${what}, ${c.width}x${c.height}@${c.fps} fps, ${c.stage}${c.privacy ? " (privacy mode: landmarks in)" : ""}, ${c.url ? `server ${c.url}` : 'spawned server'}`);
  if (r.error) out.push(`  error: ${r.error}`);
  if (r.ramp) {
    for (const s of r.ramp.steps) {
      out.push(`  ${String(s.sessions).padStart(2)} sessions: p95 ${ms(s.aggregate.latency.p95Ms)}  p50 ${ms(s.aggregate.latency.p50Ms)}  fps ${s.aggregate.outputFpsMeanPerSession.toFixed(1)}  drops ${pct(s.aggregate.dropRate * 100, 1)}  server CPU ${pct(s.aggregate.resources.server?.cpuPercentMean)}${s.exceeded ? '  ← over limit' : ''}`);
    }
    out.push(`  knee: ${r.ramp.knee ?? `none up to ${r.ramp.maxSessions}`} (${r.ramp.stopReason}); sustained ${r.ramp.maxSustainedSessions} session(s)`);
  } else if (r.overall) {
    out.push(...aggregateLines(r.overall));
  }
  for (const n of r.notes) out.push(`  note: ${n}`);
  if (files) out.push(`  report: ${files.json}`, `          ${files.html}`);
  return out.join('\n');
}
