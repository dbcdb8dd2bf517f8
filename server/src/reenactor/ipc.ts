/** Messages between the server (supervisor) and a reenactor child process. */
import type { OutputProfile, SessionState } from '../../../shared/protocol.ts';
import type { StageControl } from './stage.ts';

/**
 * What the server may change in a running session: the stage's settings, or the ceiling on the
 * synthesized video's bitrate (the SFU's estimate toward the slowest viewer, when it is not simulcast).
 */
export type SessionControl = StageControl | { type: 'setMaxBitrate'; bps: number };
import type { AudioRelayStats } from './audio-relay.ts';

export type StageKind = 'passthrough' | 'reenact';

/** What drives a session: the actor's camera video, or landmarks from the actor's device (privacy mode). */
export type SessionSource = 'video' | 'tracks';

export interface SessionSpec {
  sessionId: string;
  roomId: string;
  /** Cluster mode: the placement's epoch (the token carries it too; the edge refuses a stale one). */
  epoch?: number;
  /** Server URL the child connects to, as any peer would. */
  url: string;
  token: string;
  /** The actor's camera producer, or (source 'tracks') its landmark data producer. */
  producerId: string;
  source: SessionSource;
  measurement: boolean;
  stage: StageKind;
  outputBitrate: number;
  /** Publish the synthesized video as three simulcast layers (REENACT_SIMULCAST). */
  simulcast: boolean;
  targetId: string;
  targetPath: string;
  renderSize: number;
  budgetMs: number;
  sideBySide: boolean;
  /** Renderer lip zero (SessionOptions.lipZero). */
  lipZero: boolean;
  /** Provenance watermark payload bits (0/1) for this session, or null when marking is off. */
  watermark: number[] | null;
  /** Output profile (SessionOptions.output). */
  output: OutputProfile;
  /** Only set by tests (REENACT_TEST_HOOKS). */
  testHooks?: { delayMs?: number; delayForMs?: number; throwFromMs?: number; throwToMs?: number };
}

export type ParentMessage =
  | { type: 'start'; spec: SessionSpec }
  | { type: 'stop'; sessionId: string }
  | { type: 'control'; sessionId: string; requestId: number; control: SessionControl }
  | { type: 'prewarm'; targetPath: string; size: number; alsoEnroll: string[] }
  | { type: 'shutdown' };

export interface SessionStats {
  sessionId: string;
  framesIn: number;
  framesOut: number;
  dropped: Record<string, number>;
  /** Stage timings (ms) of frames since the last report. */
  stageMs: Record<string, number[]>;
  /** Arrival → handed to the encoder, ms, for frames since the last report. */
  serverMs: number[];
  degradeLevel: number;
  face: boolean;
  notice?: string;
  targetId: string;
  /** Present once the actor's microphone is relayed: counters since the session began. */
  audio?: AudioRelayStats;
}

/** A child's memory breakdown (process.memoryUsage()), bytes. RSS less heapTotal and external is native memory (ONNX Runtime, wrtc, code). */
export interface ChildMemory {
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
}

export type ChildMessage =
  | { type: 'ready'; pid: number }
  | { type: 'sessionState'; sessionId: string; state: SessionState; message?: string }
  | { type: 'controlResult'; requestId: number; error?: string }
  /** The pipeline is loaded and the default target enrolled. */
  | { type: 'prewarmed'; ms: number; provider: string; warp: 'gpu' | 'cpu'; maxBatch: number }
  /** The pipeline could not load (e.g. E_PROVIDER_UNAVAILABLE): /healthz says why. */
  | { type: 'prewarmFailed'; code?: string; message: string }
  /** The rest of the gallery is in the enrollment cache (or its enrollment gave up: ok false). */
  | { type: 'galleryEnrolled'; ms: number; ok: boolean }
  | {
      type: 'heartbeat';
      /** Event-loop delay p99 over the interval, ms. */
      loopLagP99Ms: number;
      cpuUserUs: number;
      cpuSystemUs: number;
      rssBytes: number;
      /** Where the resident memory sits: V8's heap, memory V8 tracks outside it (buffers), of which ArrayBuffers. */
      memory: ChildMemory;
      sessions: SessionStats[];
    };
