/**
 * Supervises reenactor child processes (one per N sessions). Places sessions,
 * forwards their stats to metrics, detects dead or hung children (exit or
 * missed heartbeats), tells the affected rooms, restarts the child with
 * backoff and restarts its sessions once it is back.
 *
 * In a cluster (deps.cluster), sessions are placed on reenactor hosts through
 * Redis instead (cluster/edge-link.ts): each host's child for this edge is a
 * RemoteChild, a session of a host that died moves to another with a new epoch,
 * and with no free slot a session waits.
 */
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { TypedEmitter } from '../util/emitter.ts';
import { ErrorCodes, type ErrorCode } from '../../../shared/errors.ts';
import type { SessionOptions, SessionState, SessionStatsData } from '../../../shared/protocol.ts';
import type { ChildMessage, SessionControl, SessionSource, SessionSpec } from './ipc.ts';
import { CodedError } from '../../../shared/errors.ts';
import { ChildHandle, forkReenactorChild, RemoteChild } from './child-handle.ts';
import type { EdgeLink } from '../cluster/edge-link.ts';
import { ClusterPlacement } from './cluster-placement.ts';
import { recordHeartbeat } from './heartbeat-stats.ts';

export interface SupervisorEvents {
  sessionstate: [roomId: string, state: SessionState, code?: ErrorCode, message?: string];
  sessionstats: [roomId: string, stats: SessionStatsData];
  degradechanged: [roomId: string, level: number, reason: string];
  [key: string]: unknown[];
}

export interface SupervisorDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  /** A fresh reenactor-role token for a room. */
  mintToken: (roomId: string, epoch?: number) => string;
  /** The URL children use to reach this server's signalling. */
  serverUrl: () => string;
  /** Resolves a gallery target id to its file. */
  /** The file of a target the room may use (the default target's when it may not, or it is gone). */
  targetPath: (targetId: string, roomId?: string) => string;
  /** The provenance payload for a session starting in a room (logged by the callee), or null when marking is off. */
  watermark?: (roomId: string) => number[] | null;
  /** Cluster mode: place sessions on reenactor hosts through Redis. */
  cluster?: EdgeLink;
  /** A room's session moved to another host (its old reenactor peer must go). */
  sessionMoved?: (roomId: string) => void;
}

/** Per-room session settings that survive reenactor restarts. */
export interface SessionSettings {
  targetId: string;
  options: SessionOptions;
}

interface SessionEntry {
  roomId: string;
  producerId: string;
  source: SessionSource;
  child: ChildHandle;
  state: SessionState;
  settings: SessionSettings;
  degradeLevel: number;
  /** Cluster mode: the placement's epoch (the reenactor's token carries it). */
  epoch?: number;
}

export class ReenactorSupervisor extends TypedEmitter<SupervisorEvents> {
  readonly #deps: SupervisorDeps;
  readonly #log: Logger;
  readonly #children: ChildHandle[] = [];
  /** Cluster mode: placement on reenactor hosts (null: local children). */
  readonly #cluster: ClusterPlacement<SessionEntry> | null;
  readonly #sessions = new Map<string, SessionEntry>();
  readonly #watchdog: NodeJS.Timeout;
  #controlSeq = 0;
  #warm = false;
  #inference: { provider?: string; warp?: 'gpu' | 'cpu'; maxBatch?: number; error?: { code?: string; message: string } } = {};
  #galleryEnrolled = false;
  #closed = false;

  constructor(deps: SupervisorDeps) {
    super();
    this.#deps = deps;
    this.#log = deps.log.child('supervisor');
    this.#watchdog = setInterval(() => this.#checkHeartbeats(), 1000);
    this.#watchdog.unref();
    this.#cluster = deps.cluster
      ? new ClusterPlacement<SessionEntry>({
          link: deps.cluster,
          metrics: deps.metrics,
          log: this.#log,
          sessions: () => this.#sessions.values(),
          session: (room) => this.#sessions.get(room),
          setState: (e, state, code, message) => this.#setState(e, state, code, message),
          spec: (e) => this.#spec(e),
          onMessage: (child, msg) => this.#onMessage(child, msg),
          sessionMoved: deps.sessionMoved,
        })
      : null;
  }

  /** Cluster mode: the epoch of a room's current placement; an edge refuses a reenactor token with another. */
  epochOf(roomId: string): number | undefined {
    return this.#sessions.get(roomId)?.epoch;
  }

  /** Cluster mode: the host serving a room's session, or undefined (waiting, or not in a cluster). */
  hostOf(roomId: string): string | undefined {
    const c = this.#sessions.get(roomId)?.child;
    return c instanceof RemoteChild ? c.hostId : undefined;
  }

  /** The provider the pipeline runs on once loaded (with where it warps and its batch limit), or why it could not load. */
  get inference(): { provider?: string; warp?: 'gpu' | 'cpu'; maxBatch?: number; error?: { code?: string; message: string } } {
    return this.#inference;
  }

  get warm(): boolean {
    return this.#warm || this.#deps.config.stage !== 'reenact' || Boolean(this.#deps.cluster);
  }

  /** True once the prewarmed reenactor has the whole gallery in the enrollment cache (always true for passthrough). */
  get galleryEnrolled(): boolean {
    return this.#galleryEnrolled || this.#deps.config.stage !== 'reenact';
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** The pid of the child serving a room's session, for diagnostics and fault tests. */
  pidOf(roomId: string): number | undefined {
    const p = this.#sessions.get(roomId)?.child.process;
    return p && p.exitCode === null ? p.pid : undefined;
  }

  /** Child pids, for diagnostics and fault tests. */
  get childPids(): number[] {
    return this.#children.flatMap((c) => (c.process?.pid !== undefined && c.process.exitCode === null ? [c.process.pid] : []));
  }

  sessionState(roomId: string): SessionState | undefined {
    return this.#sessions.get(roomId)?.state;
  }

  startSession(roomId: string, producerId: string, settings: SessionSettings, source: SessionSource = 'video'): void {
    if (this.#closed) return;
    const existing = this.#sessions.get(roomId);
    if (existing) {
      if (existing.producerId === producerId) return;
      this.stopSession(roomId);
    }
    const child = this.#cluster ? this.#cluster.waiting : this.#place();
    const entry: SessionEntry = { roomId, producerId, source, child, state: 'starting', settings: { ...settings, options: { ...settings.options } }, degradeLevel: 0 };
    this.#sessions.set(roomId, entry);
    this.#setState(entry, 'starting');
    if (this.#cluster) void this.#cluster.place(entry);
    else if (child.ready) child.send({ type: 'start', spec: this.#spec(entry) });
  }

  /**
   * Applies a control to a room's running session and remembers the setting
   * so a restarted session keeps it. Rejects when the session is not running
   * or the stage refuses (e.g. a target that cannot be enrolled).
   */
  async control(roomId: string, control: SessionControl): Promise<void> {
    const entry = this.#sessions.get(roomId);
    if (!entry) throw new CodedError(ErrorCodes.INVALID_STATE, 'no reenactor session in this room yet');
    if (entry.state !== 'running') throw new CodedError(ErrorCodes.INVALID_STATE, `the session is ${entry.state}`);
    const child = entry.child;
    const requestId = ++this.#controlSeq;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.pendingControls.delete(requestId);
        reject(new CodedError(ErrorCodes.INTERNAL, 'the reenactor did not answer in time'));
      }, 30_000);
      child.pendingControls.set(requestId, { resolve, reject, timer });
      child.send({ type: 'control', sessionId: roomId, requestId, control });
    });
    if (control.type === 'setTarget') entry.settings.targetId = control.targetId;
    if (control.type === 'setOptions') {
      const { type: _type, ...options } = control;
      entry.settings.options = options;
    }
  }

  settings(roomId: string): SessionSettings | undefined {
    return this.#sessions.get(roomId)?.settings;
  }

  /**
   * Starts one reenactor child ahead of the first session and has it load the
   * pipeline (models, default target enrollment), so the first actor sees
   * synthesized video without waiting for cold start.
   */
  prewarm(targetId: string, gallery: string[]): void {
    // In a cluster the hosts warm their own children; an edge forks none.
    if (this.#closed || this.#children.length > 0 || this.#deps.config.stage !== 'reenact' || this.#deps.cluster) return;
    const child = this.#place();
    child.prewarm = {
      targetPath: this.#deps.targetPath(targetId),
      size: this.#deps.config.renderSize,
      alsoEnroll: gallery.filter((id) => id !== targetId).map((id) => this.#deps.targetPath(id)),
    };
  }

  stopSession(roomId: string): void {
    const entry = this.#sessions.get(roomId);
    if (!entry) return;
    this.#sessions.delete(roomId);
    entry.child.send({ type: 'stop', sessionId: roomId });
    this.#cluster?.release(entry);
    this.#updateSessionGauge();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#watchdog);
    await this.#cluster?.releaseAll([...this.#sessions.values()]);
    this.#sessions.clear();
    await Promise.all(
      this.#children.map(
        (c) =>
          new Promise<void>((resolve) => {
            const p = c.process;
            if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
            const kill = setTimeout(() => p.kill('SIGKILL'), 3000);
            p.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            c.send({ type: 'shutdown' });
            if (!p.connected) p.kill('SIGTERM');
          }),
      ),
    );
    this.removeAllListeners();
  }

  #spec(entry: SessionEntry): SessionSpec {
    const { config } = this.#deps;
    return {
      sessionId: entry.roomId,
      roomId: entry.roomId,
      url: this.#deps.serverUrl(),
      token: this.#deps.mintToken(entry.roomId, entry.epoch),
      ...(entry.epoch !== undefined ? { epoch: entry.epoch } : {}),
      producerId: entry.producerId,
      source: entry.source,
      measurement: config.measurement,
      stage: config.stage,
      outputBitrate: config.outputBitrate,
      simulcast: config.simulcast,
      targetId: entry.settings.targetId,
      targetPath: this.#deps.targetPath(entry.settings.targetId, entry.roomId),
      renderSize: config.renderSize,
      budgetMs: config.budgetMs,
      sideBySide: entry.settings.options.sideBySide,
      lipZero: entry.settings.options.lipZero,
      output: entry.settings.options.output,
      watermark: this.#deps.watermark?.(entry.roomId) ?? null,
      testHooks: config.testHooks,
    };
  }

  #place(): ChildHandle {
    const load = (c: ChildHandle): number => [...this.#sessions.values()].filter((s) => s.child === c).length;
    let best: ChildHandle | undefined;
    for (const c of this.#children) if (load(c) < this.#deps.config.sessionsPerReenactor && (!best || load(c) < load(best))) best = c;
    if (best) return best;
    const child = new ChildHandle(this.#children.length);
    this.#children.push(child);
    this.#spawn(child);
    return child;
  }

  #spawn(child: ChildHandle): void {
    child.ready = false;
    child.lastHeartbeat = Date.now();
    child.lastStats.clear();
    const proc = forkReenactorChild(this.#deps.config);
    child.process = proc;
    const log = this.#log.child('child', { index: child.index, pid: proc.pid });
    proc.on('message', (raw: unknown) => this.#onMessage(child, raw as ChildMessage));
    proc.on('error', (err) => log.error('child process error', { err }));
    proc.once('exit', (code, signal) => {
      if (child.process !== proc) return;
      child.process = undefined;
      child.ready = false;
      for (const [id, p] of child.pendingControls) {
        clearTimeout(p.timer);
        p.reject(new CodedError(ErrorCodes.REENACTOR_RESTARTING, 'the reenactor restarted'));
        child.pendingControls.delete(id);
      }
      if (this.#closed) return;
      log.error('reenactor child exited; restarting', { code, signal });
      this.#deps.metrics.reenactorRestarts.inc();
      for (const s of this.#sessions.values()) if (s.child === child) this.#setState(s, 'restarting', ErrorCodes.REENACTOR_RESTARTING, 'reenactor restarting');
      const backoff = Math.min(5000, 250 * 2 ** child.restarts++);
      setTimeout(() => {
        if (!this.#closed) this.#spawn(child);
      }, backoff).unref();
    });
  }

  #onMessage(child: ChildHandle, msg: ChildMessage): void {
    switch (msg.type) {
      case 'ready':
        child.ready = true;
        child.lastHeartbeat = Date.now();
        if (child.prewarm) child.send({ type: 'prewarm', ...child.prewarm });
        for (const s of this.#sessions.values()) if (s.child === child) child.send({ type: 'start', spec: this.#spec(s) });
        break;
      case 'sessionState': {
        const entry = this.#sessions.get(msg.sessionId);
        if (!entry || entry.child !== child) return;
        if (msg.state === 'running') child.restarts = 0;
        this.#setState(entry, msg.state, msg.state === 'failed' ? ErrorCodes.INTERNAL : undefined, msg.message);
        break;
      }
      case 'prewarmed':
        this.#warm = true;
        this.#inference = { provider: msg.provider, warp: msg.warp, maxBatch: msg.maxBatch };
        this.#deps.metrics.inferenceProvider.reset();
        this.#deps.metrics.inferenceProvider.set({ provider: msg.provider }, 1);
        this.#log.info('reenactor pipeline warm', { ms: Math.round(msg.ms), provider: msg.provider, warp: msg.warp, maxBatch: msg.maxBatch });
        break;
      case 'prewarmFailed':
        this.#inference = { error: { code: msg.code, message: msg.message } };
        this.#log.error('the reenactor pipeline cannot load', { code: msg.code, message: msg.message });
        break;
      case 'galleryEnrolled':
        this.#galleryEnrolled = true;
        this.#log.info('gallery enrollment done', { ms: Math.round(msg.ms), ok: msg.ok });
        break;
      case 'controlResult': {
        const p = child.pendingControls.get(msg.requestId);
        if (!p) return;
        child.pendingControls.delete(msg.requestId);
        clearTimeout(p.timer);
        if (msg.error) p.reject(new CodedError(ErrorCodes.MEDIA_INVALID, msg.error));
        else p.resolve();
        break;
      }
      case 'heartbeat':
        child.lastHeartbeat = Date.now();
        recordHeartbeat(
          {
            metrics: this.#deps.metrics,
            entry: (id) => {
              const e = this.#sessions.get(id);
              return e && e.child === child ? e : undefined;
            },
            maxDegradeLevel: () => Math.max(0, ...[...this.#sessions.values()].map((e) => e.degradeLevel)),
            stats: (id, data) => this.safeEmit('sessionstats', id, data),
            degrade: (id, level, reason) => this.safeEmit('degradechanged', id, level, reason),
          },
          child,
          msg,
        );
        break;
      default: {
        const never: never = msg;
        this.#log.warn('unknown child message', { type: String((never as { type: unknown }).type) });
      }
    }
  }

  #checkHeartbeats(): void {
    const timeout = this.#deps.config.heartbeatTimeoutMs;
    for (const c of this.#children) {
      if (c.process && c.ready && Date.now() - c.lastHeartbeat > timeout) {
        this.#log.error('reenactor child missed heartbeats; killing it', { index: c.index });
        c.process.kill('SIGKILL');
      }
    }
  }

  #setState(entry: SessionEntry, state: SessionState, code?: ErrorCode, message?: string): void {
    entry.state = state;
    this.#updateSessionGauge();
    this.safeEmit('sessionstate', entry.roomId, state, code, message);
  }

  #updateSessionGauge(): void {
    const counts: Record<string, number> = { starting: 0, waiting: 0, running: 0, restarting: 0, failed: 0 };
    for (const s of this.#sessions.values()) counts[s.state] = (counts[s.state] ?? 0) + 1;
    for (const [state, n] of Object.entries(counts)) this.#deps.metrics.sessions.set({ state }, n);
  }
}
