/**
 * What a viewer saw around one fault: frame rate before, during and after,
 * the longest freeze, glass-to-glass latency, how long after the fault ended
 * the stream was steady again, and what the server's RTP metrics counted.
 */
import { percentile } from './peers.ts';

/** Steady: over the next STEADY_MS at least STEADY_SHARE of the baseline frame rate, no gap above MAX_GAP_MS. */
export const STEADY_MS = 2000;
export const STEADY_SHARE = 0.8;
export const MAX_GAP_MS = 250;
/** Latency is back when every frame over the next STEADY_MS is within this of the baseline p95. */
export const LATENCY_SLACK_MS = 100;

export interface RtpDelta {
  lost: number;
  nacks: number;
  retransmitted: number;
  keyframeRequests: number;
}

export interface FaultOutcome {
  name: string;
  baselineFps: number;
  duringFps: number;
  afterFps: number;
  /** Longest gap between frames while the fault was on, ms. */
  maxGapDuringMs: number;
  /** From the fault's end to the start of the first steady stretch, ms; null if never steady. */
  recoveryMs: number | null;
  /** From the fault's end until glass-to-glass latency is back near its baseline, ms; null if never. */
  latencyRecoveryMs: number | null;
  latencyP95Ms: { baseline: number; during: number; after: number };
  /** Increase of the RTP counters over the fault and the recovery, summed over roles and sides. */
  rtp: RtpDelta;
  relayDropped: { up: number; down: number };
  /** Packets the relay held back (cap queue, delay, jitter), per direction. */
  relayDelayed: { up: number; down: number };
  estimateMinBps: number | null;
  window: { baseline: [number, number]; fault: [number, number] };
}

export interface FaultInput {
  name: string;
  /** Arrival times of the viewer's frames (performance.now()), ascending. */
  frames: number[];
  latency: { at: number; ms: number }[];
  baseline: [number, number];
  fault: [number, number];
  before: Map<string, number>;
  after: Map<string, number>;
  relayDropped: { up: number; down: number };
  relayDelayed: { up: number; down: number };
  estimateMinBps: number | null;
}

/** Parses Prometheus text: `name{labels}` → value. */
export function scrapeValues(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    const v = Number(line.slice(i + 1));
    if (Number.isFinite(v)) out.set(line.slice(0, i), v);
  }
  return out;
}

/** Sum of a metric over all its label sets. */
export function metricSum(values: Map<string, number>, name: string): number {
  let sum = 0;
  for (const [k, v] of values) if (k === name || k.startsWith(`${name}{`)) sum += v;
  return sum;
}

function rate(frames: number[], [a, b]: [number, number]): number {
  return (frames.filter((t) => t > a && t <= b).length * 1000) / Math.max(1, b - a);
}

function maxGap(frames: number[], [a, b]: [number, number]): number {
  let prev = a;
  let gap = 0;
  for (const t of frames) {
    if (t <= a) continue;
    if (t > b) break;
    gap = Math.max(gap, t - prev);
    prev = t;
  }
  return Math.max(gap, b - prev);
}

/** The first time at or after `from` where a steady stretch starts, or null. */
export function steadyFrom(frames: number[], from: number, baselineFps: number): number | null {
  const last = frames[frames.length - 1];
  if (last === undefined) return null;
  const need = STEADY_SHARE * baselineFps * (STEADY_MS / 1000);
  for (const t of [from, ...frames.filter((f) => f >= from)]) {
    if (t + STEADY_MS > last) break;
    const window: [number, number] = [t, t + STEADY_MS];
    if (frames.filter((f) => f > t && f <= t + STEADY_MS).length >= need && maxGap(frames, window) <= MAX_GAP_MS) return t;
  }
  return null;
}

/** The first time at or after `from` from which every latency over the next STEADY_MS is at most `bound`, or null. */
export function latencyBackFrom(latency: { at: number; ms: number }[], from: number, bound: number): number | null {
  const after = latency.filter((l) => l.at >= from).sort((a, b) => a.at - b.at);
  const last = after[after.length - 1];
  if (!last) return null;
  for (const t of [from, ...after.map((l) => l.at)]) {
    if (t + STEADY_MS > last.at) break;
    const w = after.filter((l) => l.at > t && l.at <= t + STEADY_MS);
    if (w.length >= 10 && w.every((l) => l.ms <= bound)) return t;
  }
  return null;
}

export function faultOutcome(input: FaultInput): FaultOutcome {
  const { frames, baseline, fault } = input;
  const end = frames[frames.length - 1] ?? fault[1];
  const afterWindow: [number, number] = [fault[1], end];
  const baselineFps = rate(frames, baseline);
  const steady = steadyFrom(frames, fault[1], baselineFps);
  const p95 = ([a, b]: [number, number]): number => percentile(input.latency.filter((l) => l.at > a && l.at <= b).map((l) => l.ms), 95);
  const delta = (name: string): number => metricSum(input.after, name) - metricSum(input.before, name);
  const round = (x: number): number => Math.round(x * 10) / 10;
  const latencyBack = latencyBackFrom(input.latency, fault[1], p95(baseline) + LATENCY_SLACK_MS);
  return {
    name: input.name,
    baselineFps: round(baselineFps),
    duringFps: round(rate(frames, fault)),
    afterFps: round(rate(frames, afterWindow)),
    maxGapDuringMs: Math.round(maxGap(frames, fault)),
    recoveryMs: steady === null ? null : Math.round(steady - fault[1]),
    latencyRecoveryMs: latencyBack === null ? null : Math.round(latencyBack - fault[1]),
    latencyP95Ms: { baseline: Math.round(p95(baseline)), during: Math.round(p95(fault)), after: Math.round(p95(afterWindow)) },
    rtp: {
      lost: delta('reenact_rtp_packets_lost_total'),
      nacks: delta('reenact_rtp_nacks_total'),
      retransmitted: delta('reenact_rtp_retransmitted_packets_total'),
      keyframeRequests: delta('reenact_rtp_keyframe_requests_total'),
    },
    relayDropped: input.relayDropped,
    relayDelayed: input.relayDelayed,
    estimateMinBps: input.estimateMinBps,
    window: { baseline, fault },
  };
}
