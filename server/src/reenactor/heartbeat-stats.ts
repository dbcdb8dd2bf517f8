/**
 * A reenactor child's heartbeat (process figures and per-session stats since the last one) into
 * the metrics and the rooms: fps, drops, stage and server latency, degrade changes, audio.
 * The supervisor calls it for local and remote children alike.
 */
import type { Metrics } from '../metrics/metrics.ts';
import type { SessionStatsData } from '../../../shared/protocol.ts';
import type { ChildHandle } from './child-handle.ts';
import type { ChildMessage, SessionStats } from './ipc.ts';

export interface HeartbeatContext {
  metrics: Metrics;
  /** The session's entry when this child serves it (else its stats only feed the metrics). */
  entry(sessionId: string): { degradeLevel: number } | undefined;
  /** The highest degrade level over all sessions. */
  maxDegradeLevel(): number;
  stats(sessionId: string, data: SessionStatsData): void;
  degrade(sessionId: string, level: number, reason: string): void;
}

export function recordHeartbeat(ctx: HeartbeatContext, child: ChildHandle, hb: Extract<ChildMessage, { type: 'heartbeat' }>): void {
  const m = ctx.metrics;
  const name = `reenactor-${child.index}`;
  m.eventLoopLagSeconds.set({ process: name }, hb.loopLagP99Ms / 1000);
  m.childCpuSeconds.set({ process: name }, (hb.cpuUserUs + hb.cpuSystemUs) / 1e6);
  m.childRssBytes.set({ process: name }, hb.rssBytes);
  m.childMemoryBytes.set({ process: name, kind: 'heap_used' }, hb.memory.heapUsedBytes);
  m.childMemoryBytes.set({ process: name, kind: 'heap_total' }, hb.memory.heapTotalBytes);
  m.childMemoryBytes.set({ process: name, kind: 'external' }, hb.memory.externalBytes);
  m.childMemoryBytes.set({ process: name, kind: 'array_buffers' }, hb.memory.arrayBuffersBytes);
  let fpsIn = 0;
  let fpsOut = 0;
  for (const s of hb.sessions) {
    const f = recordSession(ctx, child, s);
    fpsIn += f.fpsIn;
    fpsOut += f.fpsOut;
  }
  m.fps.set({ direction: 'in' }, fpsIn);
  m.fps.set({ direction: 'out' }, fpsOut);
  m.degradeLevel.set(ctx.maxDegradeLevel());
}

/** Feeds one session's heartbeat stats into metrics and the room; returns its fps over the interval. */
function recordSession(ctx: HeartbeatContext, child: ChildHandle, s: SessionStats): { fpsIn: number; fpsOut: number } {
  const m = ctx.metrics;
  const prev = child.lastStats.get(s.sessionId) ?? { framesIn: 0, framesOut: 0, dropped: {} };
  const fpsIn = Math.max(0, s.framesIn - prev.framesIn);
  const fpsOut = Math.max(0, s.framesOut - prev.framesOut);
  const entry = ctx.entry(s.sessionId);
  if (entry) {
    if (s.degradeLevel !== entry.degradeLevel) {
      entry.degradeLevel = s.degradeLevel;
      ctx.degrade(s.sessionId, s.degradeLevel, s.degradeLevel > 0 ? 'over the frame budget' : 'recovered');
    }
    const sorted = [...s.serverMs].sort((a, b) => a - b);
    const pct = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
    const drops: Record<string, number> = {};
    for (const [reason, n] of Object.entries(s.dropped)) drops[reason] = Math.max(0, n - (prev.dropped[reason] ?? 0));
    ctx.stats(s.sessionId, {
      fpsIn,
      fpsOut,
      serverMsP50: pct(0.5),
      serverMsP95: pct(0.95),
      degradeLevel: s.degradeLevel,
      drops,
      face: s.face,
      notice: s.notice,
      targetId: s.targetId,
      ...(s.audio ? { audioDelayMs: s.audio.delayMs } : {}),
    });
  }
  m.framesIn.inc(Math.max(0, s.framesIn - prev.framesIn));
  m.framesOut.inc(Math.max(0, s.framesOut - prev.framesOut));
  for (const [reason, n] of Object.entries(s.dropped)) m.framesDropped.inc({ reason }, Math.max(0, n - (prev.dropped[reason] ?? 0)));
  for (const [stage, values] of Object.entries(s.stageMs)) for (const v of values) m.stageSeconds.observe({ stage }, v / 1000);
  for (const v of s.serverMs) m.serverLatencySeconds.observe(v / 1000);
  if (s.audio) {
    const a = s.audio;
    const was = prev.audio;
    m.audioFrames.inc({ direction: 'in' }, Math.max(0, a.chunksIn - (was?.chunksIn ?? 0)));
    m.audioFrames.inc({ direction: 'out' }, Math.max(0, a.chunksOut - (was?.chunksOut ?? 0)));
    m.audioAdjustments.inc({ kind: 'inserted' }, Math.max(0, a.inserted - (was?.inserted ?? 0)));
    m.audioAdjustments.inc({ kind: 'dropped' }, Math.max(0, a.dropped - (was?.dropped ?? 0)));
    m.audioDelaySeconds.observe(a.delayMs / 1000);
    m.audioSyncErrorSeconds.observe(Math.abs(a.delayMs - a.targetMs) / 1000);
  }
  child.lastStats.set(s.sessionId, { framesIn: s.framesIn, framesOut: s.framesOut, dropped: s.dropped, audio: s.audio });
  return { fpsIn, fpsOut };
}
