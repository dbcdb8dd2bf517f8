/**
 * Per-session and pooled statistics over a measurement window, from the
 * actors' send times and the viewers' stamped receive times (one clock:
 * performance.now() in this process). NaN means "not measurable" and is
 * written as null in report.json.
 */
import { latencies, percentile } from './peers.ts';
import type { LoadSession } from './session.ts';

/** An interval of performance.now() time. Frames count when they were sent in [from, to). */
export interface Window {
  from: number;
  to: number;
}

export interface LatencyStats {
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

export interface WindowStats {
  /** Frames the actor handed to its encoder inside the window. */
  framesSent: number;
  /** Of those, unique stamped frames the viewer got back. */
  framesReceived: number;
  /** All frames the viewer decoded with an arrival time inside the window (stamped or not, duplicates included). */
  framesArrived: number;
  /** Arrivals inside the window whose stamp could not be read. */
  framesUnstamped: number;
  latency: LatencyStats;
  /** framesArrived per second of window. */
  outputFps: number;
  /** 1 − framesReceived / framesSent. */
  dropRate: number;
  /** Glass-to-glass latencies (ms) of the received frames, for pooling. */
  samplesMs: number[];
}

export function latencyStats(ms: readonly number[]): LatencyStats {
  const m = [...ms];
  return {
    p50Ms: round(percentile(m, 50)),
    p95Ms: round(percentile(m, 95)),
    p99Ms: round(percentile(m, 99)),
    maxMs: m.length ? round(m.reduce((a, b) => (b > a ? b : a), -Infinity)) : NaN,
    meanMs: m.length ? round(m.reduce((a, b) => a + b, 0) / m.length) : NaN,
  };
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Number.isFinite(x) ? Math.round(x * f) / f : x;
}

/** Statistics of one session over a window. */
export function windowStats(s: LoadSession, w: Window): WindowStats {
  let framesSent = 0;
  for (const at of s.actor.sentAt.values()) if (at >= w.from && at < w.to) framesSent++;
  const samplesMs: number[] = [];
  for (const l of latencies(s.actor, s.viewer)) {
    const sent = l.at - l.ms;
    if (sent >= w.from && sent < w.to) samplesMs.push(l.ms);
  }
  let framesArrived = 0;
  let framesUnstamped = 0;
  for (const r of s.viewer.received) {
    if (r.at < w.from || r.at >= w.to) continue;
    framesArrived++;
    if (r.id === null) framesUnstamped++;
  }
  const seconds = (w.to - w.from) / 1000;
  return {
    framesSent,
    framesReceived: samplesMs.length,
    framesArrived,
    framesUnstamped,
    latency: latencyStats(samplesMs),
    outputFps: seconds > 0 ? round(framesArrived / seconds, 2) : NaN,
    dropRate: framesSent > 0 ? round(1 - samplesMs.length / framesSent, 4) : NaN,
    samplesMs,
  };
}

export interface PooledStats {
  sessions: number;
  framesSent: number;
  framesReceived: number;
  framesUnstamped: number;
  /** Over every received frame of every session. */
  latency: LatencyStats;
  outputFpsMeanPerSession: number;
  outputFpsTotal: number;
  dropRate: number;
}

export function pool(list: readonly WindowStats[]): PooledStats {
  const sent = list.reduce((a, s) => a + s.framesSent, 0);
  const received = list.reduce((a, s) => a + s.framesReceived, 0);
  const fps = list.map((s) => s.outputFps).filter(Number.isFinite);
  const total = fps.reduce((a, b) => a + b, 0);
  return {
    sessions: list.length,
    framesSent: sent,
    framesReceived: received,
    framesUnstamped: list.reduce((a, s) => a + s.framesUnstamped, 0),
    latency: latencyStats(list.flatMap((s) => s.samplesMs)),
    outputFpsMeanPerSession: fps.length ? round(total / fps.length, 2) : NaN,
    outputFpsTotal: round(total, 2),
    dropRate: sent > 0 ? round(1 - received / sent, 4) : NaN,
  };
}

/** Per-frame [send time since origin, latency] of every stamped frame that came back, for plots. */
export function latencySeries(s: LoadSession, origin: number): [number, number][] {
  return latencies(s.actor, s.viewer).map((l) => [Math.round(l.at - l.ms - origin), round(l.ms)]);
}
