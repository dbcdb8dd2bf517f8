/**
 * Supervises reenactor child processes (one per N sessions). Places sessions,
 * forwards their stats to metrics, detects dead or hung children (exit or
 * missed heartbeats), tells the affected rooms, restarts the child with
 * backoff and restarts its sessions once it is back.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { TypedEmitter } from '../util/emitter.ts';
import { ErrorCodes, type ErrorCode } from '../../../shared/errors.ts';
import type { SessionState } from '../../../shared/protocol.ts';
import type { ChildMessage, ParentMessage, SessionSpec, SessionStats } from './ipc.ts';

const childEntry = fileURLToPath(new URL('./child.ts', import.meta.url));

export interface SupervisorEvents {
  sessionstate: [roomId: string, state: SessionState, code?: ErrorCode, message?: string];
  [key: string]: unknown[];
}

export interface SupervisorDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  /** A fresh reenactor-role token for a room. */
  mintToken: (roomId: string) => string;
  /** The URL children use to reach this server's signalling. */
  serverUrl: () => string;
}

interface SessionEntry {
  roomId: string;
  producerId: string;
  child: ChildHandle;
  state: SessionState;
}

class ChildHandle {
  readonly index: number;
  process: ChildProcess | undefined;
  ready = false;
  lastHeartbeat = Date.now();
  restarts = 0;
  lastStats = new Map<string, { framesIn: number; framesOut: number; dropped: Record<string, number> }>();

  constructor(index: number) {
    this.index = index;
  }

  send(msg: ParentMessage): void {
    if (this.process?.connected) this.process.send(msg);
  }
}

export class ReenactorSupervisor extends TypedEmitter<SupervisorEvents> {
  readonly #deps: SupervisorDeps;
  readonly #log: Logger;
  readonly #children: ChildHandle[] = [];
  readonly #sessions = new Map<string, SessionEntry>();
  readonly #watchdog: NodeJS.Timeout;
  #closed = false;

  constructor(deps: SupervisorDeps) {
    super();
    this.#deps = deps;
    this.#log = deps.log.child('supervisor');
    this.#watchdog = setInterval(() => this.#checkHeartbeats(), 1000);
    this.#watchdog.unref();
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Child pids, for diagnostics and fault tests. */
  get childPids(): number[] {
    return this.#children.flatMap((c) => (c.process?.pid !== undefined && c.process.exitCode === null ? [c.process.pid] : []));
  }

  sessionState(roomId: string): SessionState | undefined {
    return this.#sessions.get(roomId)?.state;
  }

  startSession(roomId: string, producerId: string): void {
    if (this.#closed) return;
    const existing = this.#sessions.get(roomId);
    if (existing) {
      if (existing.producerId === producerId) return;
      this.stopSession(roomId);
    }
    const child = this.#place();
    const entry: SessionEntry = { roomId, producerId, child, state: 'starting' };
    this.#sessions.set(roomId, entry);
    this.#setState(entry, 'starting');
    if (child.ready) child.send({ type: 'start', spec: this.#spec(entry) });
  }

  stopSession(roomId: string): void {
    const entry = this.#sessions.get(roomId);
    if (!entry) return;
    this.#sessions.delete(roomId);
    entry.child.send({ type: 'stop', sessionId: roomId });
    this.#updateSessionGauge();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#watchdog);
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
      token: this.#deps.mintToken(entry.roomId),
      producerId: entry.producerId,
      measurement: config.measurement,
      stage: config.stage,
      outputBitrate: config.outputBitrate,
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
    const proc = fork(childEntry, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.process = proc;
    const log = this.#log.child('child', { index: child.index, pid: proc.pid });
    proc.on('message', (raw: unknown) => this.#onMessage(child, raw as ChildMessage));
    proc.on('error', (err) => log.error('child process error', { err }));
    proc.once('exit', (code, signal) => {
      if (child.process !== proc) return;
      child.process = undefined;
      child.ready = false;
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
        for (const s of this.#sessions.values()) if (s.child === child) child.send({ type: 'start', spec: this.#spec(s) });
        break;
      case 'sessionState': {
        const entry = this.#sessions.get(msg.sessionId);
        if (!entry || entry.child !== child) return;
        if (msg.state === 'running') child.restarts = 0;
        this.#setState(entry, msg.state, msg.state === 'failed' ? ErrorCodes.INTERNAL : undefined, msg.message);
        break;
      }
      case 'heartbeat':
        child.lastHeartbeat = Date.now();
        this.#recordStats(child, msg);
        break;
      default: {
        const never: never = msg;
        this.#log.warn('unknown child message', { type: String((never as { type: unknown }).type) });
      }
    }
  }

  #recordStats(child: ChildHandle, hb: Extract<ChildMessage, { type: 'heartbeat' }>): void {
    const m = this.#deps.metrics;
    const name = `reenactor-${child.index}`;
    m.eventLoopLagSeconds.set({ process: name }, hb.loopLagP99Ms / 1000);
    m.childCpuSeconds.set({ process: name }, (hb.cpuUserUs + hb.cpuSystemUs) / 1e6);
    m.childRssBytes.set({ process: name }, hb.rssBytes);
    for (const s of hb.sessions) this.#recordSession(child, s);
  }

  #recordSession(child: ChildHandle, s: SessionStats): void {
    const m = this.#deps.metrics;
    const prev = child.lastStats.get(s.sessionId) ?? { framesIn: 0, framesOut: 0, dropped: {} };
    m.framesIn.inc(Math.max(0, s.framesIn - prev.framesIn));
    m.framesOut.inc(Math.max(0, s.framesOut - prev.framesOut));
    for (const [reason, n] of Object.entries(s.dropped)) m.framesDropped.inc({ reason }, Math.max(0, n - (prev.dropped[reason] ?? 0)));
    for (const [stage, values] of Object.entries(s.stageMs)) for (const v of values) m.stageSeconds.observe({ stage }, v / 1000);
    for (const v of s.serverMs) m.serverLatencySeconds.observe(v / 1000);
    child.lastStats.set(s.sessionId, { framesIn: s.framesIn, framesOut: s.framesOut, dropped: s.dropped });
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
    const counts: Record<string, number> = { starting: 0, running: 0, restarting: 0, failed: 0 };
    for (const s of this.#sessions.values()) counts[s.state] = (counts[s.state] ?? 0) + 1;
    for (const [state, n] of Object.entries(counts)) this.#deps.metrics.sessions.set({ state }, n);
  }
}
