/**
 * An edge's side of the cluster (issue 17): placement through the store, messages to and from
 * reenactor hosts over the bus, and a tick that reaps dead hosts and lets waiting sessions try
 * again. The supervisor (reenactor/supervisor.ts) uses it in place of forking local children.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../logger.ts';
import { TypedEmitter } from '../util/emitter.ts';
import type { ChildMessage, ParentMessage } from '../reenactor/ipc.ts';
import { ClusterBus } from './bus.ts';
import { ClusterStore, type Placement } from './store.ts';

/** Edge → host. */
export interface EdgeToHost {
  edge: string;
  msg: ParentMessage | { type: 'hello' };
}

/**
 * Host → edge: its child's messages; that its child for this edge exited (it restarts it); or,
 * from a draining host, that a session was handed over to another host.
 */
export interface HostToEdge {
  host: string;
  msg: ChildMessage | { type: 'childExit' } | { type: 'handedOver'; room: string; to: Placement };
}

export interface EdgeLinkEvents {
  message: [host: string, msg: HostToEdge['msg']];
  /** A dead host's session moved (to null: it waits for a free slot). */
  moved: [room: string, to: Placement | null];
  /** Every tick, after reaping: waiting sessions may try again. */
  tick: [];
  [key: string]: unknown[];
}

export interface EdgeLinkOptions {
  url: string;
  prefix?: string;
  edgeId?: string;
  /** How often dead hosts are reaped and waiting sessions retried, ms. Default 500. */
  tickMs?: number;
  /**
   * After the link to Redis comes back (a Redis restart, a partition), no host is reaped for
   * this long, so hosts whose records lapsed during the outage can renew them first: no storm of
   * re-placements. At least the hosts' record lifetime (agent --ttl-ms). Default 6000.
   */
  reapGraceMs?: number;
  maxLoad?: number;
  log: Logger;
}

export class EdgeLink extends TypedEmitter<EdgeLinkEvents> {
  readonly edgeId: string;
  readonly store: ClusterStore;
  readonly #bus: ClusterBus;
  readonly #timer: NodeJS.Timeout;
  readonly #log: Logger;
  readonly #reapGraceMs: number;
  #ticking = false;
  #closed = false;

  private constructor(store: ClusterStore, bus: ClusterBus, edgeId: string, tickMs: number, reapGraceMs: number, log: Logger) {
    super(log);
    this.#reapGraceMs = reapGraceMs;
    this.store = store;
    this.#bus = bus;
    this.edgeId = edgeId;
    this.#log = log;
    this.#timer = setInterval(() => void this.#tick(), tickMs);
    this.#timer.unref();
  }

  static async connect(opts: EdgeLinkOptions): Promise<EdgeLink> {
    const prefix = opts.prefix ?? 'reenact:';
    const store = await ClusterStore.connect({ url: opts.url, prefix, maxLoad: opts.maxLoad });
    const bus = await ClusterBus.connect(opts.url, prefix);
    const edgeId = opts.edgeId ?? `edge-${randomBytes(4).toString('hex')}`;
    const link = new EdgeLink(store, bus, edgeId, opts.tickMs ?? 500, opts.reapGraceMs ?? 6000, opts.log.child('cluster', { edge: edgeId }));
    await bus.subscribe(bus.edgeChannel(edgeId), (raw) => {
      const m = raw as Partial<HostToEdge>;
      if (typeof m.host === 'string' && m.msg && typeof m.msg === 'object' && typeof (m.msg as { type?: unknown }).type === 'string') link.safeEmit('message', m.host, m.msg);
    });
    return link;
  }

  place(room: string): Promise<Placement | null> {
    return this.store.place(room, this.edgeId);
  }

  placement(room: string): Promise<Placement | null> {
    return this.store.placement(room);
  }

  release(room: string, epoch: number): Promise<boolean> {
    return this.store.release(room, epoch);
  }

  send(host: string, msg: EdgeToHost['msg']): void {
    this.#bus.publish(this.#bus.hostChannel(host), { edge: this.edgeId, msg } satisfies EdgeToHost).catch((err: unknown) => this.#log.warn('could not reach a reenactor host', { host, err }));
  }

  async #tick(): Promise<void> {
    if (this.#ticking || this.#closed) return;
    this.#ticking = true;
    try {
      // Never queued for a reconnect: a reap decided before an outage would run right after it,
      // before the hosts could renew the records that lapsed meanwhile.
      const reap = this.store.ready && Date.now() - this.store.readySince >= this.#reapGraceMs;
      for (const m of reap ? await this.store.reap() : []) {
        this.#log.warn('a reenactor host expired; its session moves', { room: m.room, from: m.from, to: m.to?.host ?? 'waiting' });
        this.safeEmit('moved', m.room, m.to);
      }
      this.safeEmit('tick');
    } catch (err) {
      this.#log.warn('cluster tick failed (Redis unreachable?)', { err: err instanceof Error ? err.message : String(err) });
    } finally {
      this.#ticking = false;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#bus.close();
    await this.store.close();
  }
}
