/**
 * Entry point of a reenactor child process (forked by the supervisor with an
 * IPC channel). wrtc lives on this process's main thread; inference stages
 * run their models in worker threads.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { rootLogger } from '../logger.ts';
import type { ChildMessage, ParentMessage, SessionSpec } from './ipc.ts';
import { ReenactSession } from './session.ts';
import { PassthroughStage, type Stage } from './stage.ts';

const log = rootLogger.child('reenactor', { pid: process.pid });
const sessions = new Map<string, ReenactSession>();
const starting = new Set<string>();

function send(msg: ChildMessage): void {
  if (process.connected) process.send?.(msg);
}

function createStage(spec: SessionSpec): Stage {
  switch (spec.stage) {
    case 'passthrough':
      return new PassthroughStage();
    case 'reenact':
      // The live reenactment stage is wired in by the real-time pipeline; until then refuse loudly.
      throw new Error('stage "reenact" is not available in this build');
    default: {
      const never: never = spec.stage;
      throw new TypeError(`unknown stage ${String(never)}`);
    }
  }
}

async function start(spec: SessionSpec): Promise<void> {
  if (sessions.has(spec.sessionId) || starting.has(spec.sessionId)) return;
  starting.add(spec.sessionId);
  send({ type: 'sessionState', sessionId: spec.sessionId, state: 'starting' });
  try {
    const session = await ReenactSession.create(spec, createStage(spec), log.child('session', { session: spec.sessionId }));
    if (!starting.has(spec.sessionId)) {
      // Stopped while starting.
      session.close();
      return;
    }
    sessions.set(spec.sessionId, session);
    session.on('ended', (reason) => {
      log.info('session ended', { session: spec.sessionId, reason });
      stop(spec.sessionId);
    });
    send({ type: 'sessionState', sessionId: spec.sessionId, state: 'running' });
  } catch (err) {
    log.error('session failed to start', { session: spec.sessionId, err });
    send({ type: 'sessionState', sessionId: spec.sessionId, state: 'failed', message: err instanceof Error ? err.message : String(err) });
  } finally {
    starting.delete(spec.sessionId);
  }
}

function stop(sessionId: string): void {
  starting.delete(sessionId);
  const s = sessions.get(sessionId);
  if (!s) return;
  sessions.delete(sessionId);
  s.close();
  send({ type: 'sessionState', sessionId, state: 'stopped' });
}

function shutdown(): void {
  for (const id of [...sessions.keys()]) stop(id);
  clearInterval(heartbeat);
  loop.disable();
  // wrtc needs a moment to tear down its threads after the last pc closes.
  setTimeout(() => process.exit(0), 200);
}

process.on('message', (raw: unknown) => {
  const msg = raw as ParentMessage;
  switch (msg.type) {
    case 'start':
      void start(msg.spec);
      break;
    case 'stop':
      stop(msg.sessionId);
      break;
    case 'shutdown':
      shutdown();
      break;
    default: {
      const never: never = msg;
      log.warn('unknown message from parent', { type: String((never as { type: unknown }).type) });
    }
  }
});

// Orphaned (parent died): leave rather than linger with open peer connections.
process.on('disconnect', () => shutdown());

const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const heartbeat = setInterval(() => {
  const cpu = process.cpuUsage();
  send({
    type: 'heartbeat',
    loopLagP99Ms: loop.percentile(99) / 1e6,
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    rssBytes: process.memoryUsage.rss(),
    sessions: [...sessions.values()].map((s) => s.takeStats()),
  });
  loop.reset();
}, 1000);

send({ type: 'ready', pid: process.pid });
