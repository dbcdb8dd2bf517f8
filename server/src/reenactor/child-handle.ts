/**
 * The supervisor's handle on one reenactor process: a local child (forked, IPC) or, in a
 * cluster, a remote host's child for this edge (messages over Redis; cluster/bus.ts). The
 * supervisor places sessions on handles and reads their messages the same way for both.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AudioRelayStats } from './audio-relay.ts';
import type { Config } from '../config.ts';
import type { ParentMessage } from './ipc.ts';

const childEntry = fileURLToPath(new URL('./child.ts', import.meta.url));

/** The child's GPU options, as its argv[5] (JSON: batch, where a maxBatch of 0 leaves the provider's default, and gpuWarp). */
function gpuArg(config: Pick<Config, 'batchMax' | 'batchWindowMs' | 'gpuWarp'>): string {
  return JSON.stringify({ batch: { ...(config.batchMax > 0 ? { maxBatch: config.batchMax } : {}), windowMs: config.batchWindowMs }, gpuWarp: config.gpuWarp });
}

/** Forks a reenactor child process (server/src/reenactor/child.ts) for this configuration. */
export function forkReenactorChild(config: Pick<Config, 'dataDir' | 'trackerModel' | 'provider' | 'batchMax' | 'batchWindowMs' | 'gpuWarp'>): ChildProcess {
  return fork(childEntry, [join(config.dataDir, 'targets'), config.trackerModel, config.provider, gpuArg(config)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

export class ChildHandle {
  readonly index: number;
  process: ChildProcess | undefined;
  ready = false;
  lastHeartbeat = Date.now();
  restarts = 0;
  lastStats = new Map<string, { framesIn: number; framesOut: number; dropped: Record<string, number>; audio?: AudioRelayStats }>();
  prewarm: { targetPath: string; size: number; alsoEnroll: string[] } | undefined;
  readonly pendingControls = new Map<number, { resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(index: number) {
    this.index = index;
  }

  send(msg: ParentMessage): void {
    if (this.process?.connected) this.process.send(msg);
  }
}

/** A remote host's reenactor child serving this edge; `send` publishes to the host. */
export class RemoteChild extends ChildHandle {
  readonly hostId: string;
  readonly #publish: (msg: ParentMessage | { type: 'hello' }) => void;

  constructor(index: number, hostId: string, publish: (msg: ParentMessage | { type: 'hello' }) => void) {
    super(index);
    this.hostId = hostId;
    this.#publish = publish;
  }

  override send(msg: ParentMessage | { type: 'hello' }): void {
    this.#publish(msg);
  }
}
