/**
 * The supervisor's placement in cluster mode (issue 17, docs/deploy.md): sessions go to
 * reenactor hosts through the edge's link to Redis instead of to local children. Each host's
 * child for this edge is a RemoteChild; a session waits on a handle that sends nothing while no
 * host has a slot; a session of a dead (or draining) host moves with a new epoch.
 */
import { ErrorCodes, type ErrorCode } from '../../../shared/errors.ts';
import type { SessionState } from '../../../shared/protocol.ts';
import type { EdgeLink, HostToEdge } from '../cluster/edge-link.ts';
import type { Placement } from '../cluster/store.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { ChildHandle, RemoteChild } from './child-handle.ts';
import type { ChildMessage, SessionSpec } from './ipc.ts';

/** What placement needs of a supervisor's session entry. */
export interface PlacedSession {
  roomId: string;
  child: ChildHandle;
  state: SessionState;
  /** The placement's epoch (the reenactor's token carries it). */
  epoch?: number;
}

export interface ClusterPlacementDeps<E extends PlacedSession> {
  link: EdgeLink;
  metrics: Metrics;
  log: Logger;
  sessions(): Iterable<E>;
  session(roomId: string): E | undefined;
  setState(entry: E, state: SessionState, code?: ErrorCode, message?: string): void;
  spec(entry: E): SessionSpec;
  /** A host's child's message, handled as a local child's would be. */
  onMessage(child: ChildHandle, msg: ChildMessage): void;
  /** A room's session moved to another host (its old reenactor peer must go). */
  sessionMoved?: (roomId: string) => void;
}

export class ClusterPlacement<E extends PlacedSession> {
  /** Sessions waiting for a free slot sit on this handle, which sends nothing. */
  readonly waiting = new ChildHandle(-1);
  readonly #d: ClusterPlacementDeps<E>;
  readonly #remotes = new Map<string, RemoteChild>();
  readonly #placing = new Set<E>();

  constructor(deps: ClusterPlacementDeps<E>) {
    this.#d = deps;
    deps.link.on('message', (host, msg) => this.#onHostMessage(host, msg));
    deps.link.on('moved', (room, to) => this.#onMoved(room, to));
    deps.link.on('tick', () => void this.#retryWaiting());
  }

  /** Places the session on a host, or leaves it waiting (state 'waiting') for the next tick. */
  async place(entry: E): Promise<void> {
    const link = this.#d.link;
    if (this.#placing.has(entry)) return;
    this.#placing.add(entry);
    let p: Placement | null = null;
    const t0 = performance.now();
    try {
      p = await link.place(entry.roomId);
      this.#d.metrics.placementSeconds.observe((performance.now() - t0) / 1000);
    } catch (err) {
      this.#d.log.warn('placement failed; the session retries', { room: entry.roomId, err: err instanceof Error ? err.message : String(err) });
    } finally {
      this.#placing.delete(entry);
    }
    if (this.#d.session(entry.roomId) !== entry) {
      if (p) void link.release(entry.roomId, p.epoch);
      return;
    }
    if (!p) {
      if (entry.state !== 'waiting') this.#d.setState(entry, 'waiting', ErrorCodes.BUSY, 'waiting for a renderer: every reenactor host is busy');
      return;
    }
    if (entry.state === 'waiting') this.#d.setState(entry, 'starting');
    this.#assign(entry, p);
  }

  /** The session ended: its slot (or its place in the queue) is freed. */
  release(entry: E): void {
    if (entry.epoch === undefined && entry.child !== this.waiting) return;
    this.#d.link.release(entry.roomId, entry.epoch ?? 0).catch((err: unknown) => this.#d.log.warn('could not release a placement', { room: entry.roomId, err }));
  }

  /** The edge closes: every session stops on its host and frees its slot. */
  async releaseAll(entries: readonly E[]): Promise<void> {
    await Promise.all(
      entries.map((e) => {
        e.child.send({ type: 'stop', sessionId: e.roomId });
        return this.#d.link.release(e.roomId, e.epoch ?? 0).catch(() => false);
      }),
    );
  }

  #assign(entry: E, p: Placement): void {
    const child = this.#remote(p.host);
    entry.child = child;
    entry.epoch = p.epoch;
    if (child.ready) child.send({ type: 'start', spec: this.#d.spec(entry) });
    else child.send({ type: 'hello' });
  }

  #remote(host: string): RemoteChild {
    let r = this.#remotes.get(host);
    if (!r) {
      r = new RemoteChild(1000 + this.#remotes.size, host, (msg) => this.#d.link.send(host, msg));
      this.#remotes.set(host, r);
    }
    return r;
  }

  #onHostMessage(host: string, msg: HostToEdge['msg']): void {
    const child = this.#remote(host);
    if (msg.type === 'handedOver') {
      if (this.#d.session(msg.room)?.child === child) this.#onMoved(msg.room, msg.to, 'handover');
      return;
    }
    if (msg.type !== 'childExit') return this.#d.onMessage(child, msg);
    child.ready = false;
    for (const s of this.#d.sessions()) if (s.child === child) this.#d.setState(s, 'restarting', ErrorCodes.REENACTOR_RESTARTING, 'reenactor restarting');
  }

  /** A session moved off a dead (or draining) host: its old reenactor peer goes, and it starts on the new host (or waits). */
  #onMoved(room: string, to: Placement | null, why: 'failover' | 'handover' = 'failover'): void {
    const entry = this.#d.session(room);
    if (!entry) return;
    this.#d.sessionMoved?.(room);
    if (why === 'failover') this.#d.metrics.clusterFailovers.inc();
    if (!to) {
      entry.child = this.waiting;
      entry.epoch = undefined;
      this.#d.setState(entry, 'waiting', ErrorCodes.BUSY, 'the reenactor host was lost and no other has a free slot');
      return;
    }
    this.#d.setState(entry, 'restarting', ErrorCodes.REENACTOR_RESTARTING, why === 'failover' ? 'the reenactor host was lost; the session moves to another' : 'the reenactor host is draining; the session moves to another');
    this.#assign(entry, to);
  }

  async #retryWaiting(): Promise<void> {
    for (const entry of [...this.#d.sessions()]) if (entry.child === this.waiting) await this.place(entry);
  }
}
