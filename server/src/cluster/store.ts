/**
 * Shared cluster state in Redis (issue 17, docs/deploy.md): reenactor hosts with their
 * heartbeat, slots, load, provider and state; session placement with a per-session epoch; and
 * the rooms waiting for a renderer. Every change that must not race is one Lua script
 * (scripts.ts), so several edges can place, release and reap at once.
 *
 * - Placement takes the least-loaded serving host with a free slot under the load threshold;
 *   a burst never over-commits a host (the slot check and the claim are one script).
 * - A host's record expires unless its heartbeat renews it; reap() moves the sessions of an
 *   expired host to other hosts, each with a new epoch, or makes them wait.
 * - A host acts only on the placements its heartbeat returns: a session moved away while the
 *   host was cut off (SIGSTOP, a partition) is not in that list, and the host stops it. Edges
 *   also refuse a stale epoch (fencing), so a host that comes back publishes nothing stale.
 *
 * Valkey runs the same scripts. The single-machine default never opens this.
 */
import { createClient } from 'redis';
import { HANDOVER, HEARTBEAT, PLACE, REAP, RELEASE, RETRY_WAITING } from './scripts.ts';

export type HostState = 'serving' | 'draining';

export interface HostRecord {
  id: string;
  slots: number;
  /** The host's own load figure, 0..1000 (per mille of its budget); placement avoids hosts over the threshold. */
  load: number;
  provider: string;
  state: HostState;
  /** Rooms placed on it. */
  used: number;
  /** When it last renewed its record (ms since the epoch, its clock). */
  seen: number;
}

export interface Placement {
  room: string;
  host: string;
  epoch: number;
}

export interface Move {
  room: string;
  /** The host that died. */
  from: string;
  /** Where the room went; null when no host had a slot and it waits. */
  to: Placement | null;
}

export interface ClusterStoreOptions {
  url: string;
  /** Key prefix, so several deployments (or tests) share one Redis. Default 'reenact:'. */
  prefix?: string;
  /** Hosts whose load is above this (per mille) get no new sessions. Default 900. */
  maxLoad?: number;
}

type Client = ReturnType<typeof createClient>;

export class ClusterStore {
  readonly #client: Client;
  readonly prefix: string;
  readonly #maxLoad: number;
  /** When the connection last came back after a loss (a Redis restart, a partition), ms since the epoch; 0 before any. */
  readySince = 0;

  private constructor(client: Client, prefix: string, maxLoad: number) {
    this.#client = client;
    this.prefix = prefix;
    this.#maxLoad = maxLoad;
    client.on('ready', () => (this.readySince = Date.now()));
  }

  static async connect(opts: ClusterStoreOptions): Promise<ClusterStore> {
    const client = createClient({ url: opts.url, socket: { reconnectStrategy: (retries) => Math.min(100 * 2 ** retries, 2000) } });
    // Errors while reconnecting are reported by the commands that fail; the client retries on its own.
    client.on('error', () => undefined);
    await client.connect();
    return new ClusterStore(client, opts.prefix ?? 'reenact:', opts.maxLoad ?? 900);
  }

  async #eval(script: string, args: (string | number)[]): Promise<unknown> {
    return this.#client.eval(script, { keys: [], arguments: [this.prefix, ...args.map(String)] });
  }

  /**
   * Renews a host's record (registers it when new or expired) and returns the placements it
   * holds in Redis. `renewed` is false when the record had expired: the host was reaped (or is
   * new), and its old sessions have gone elsewhere.
   */
  async heartbeat(host: { id: string; slots: number; load: number; provider: string; state: HostState }, ttlMs: number): Promise<{ renewed: boolean; placements: Placement[] }> {
    const r = (await this.#eval(HEARTBEAT, [host.id, host.slots, Math.round(host.load), host.provider, host.state, Date.now(), ttlMs])) as (string | number)[];
    const placements: Placement[] = [];
    for (let i = 1; i + 1 < r.length; i += 2) placements.push({ room: String(r[i]), host: host.id, epoch: Number(r[i + 1]) });
    return { renewed: Number(r[0]) === 1, placements };
  }

  /** Places a room (or returns its live placement); null when it waits for a free slot. */
  async place(room: string, edge: string): Promise<Placement | null> {
    const r = (await this.#eval(PLACE, [room, edge, Date.now(), this.#maxLoad])) as [string, string] | null;
    return r ? { room, host: r[0], epoch: Number(r[1]) } : null;
  }

  /** Ends a room's placement if it still has this epoch (0 for a waiting room); false when fenced. */
  async release(room: string, epoch: number): Promise<boolean> {
    return Number(await this.#eval(RELEASE, [room, epoch === 0 ? '' : epoch])) === 1;
  }

  /** The connection is up (commands are not waiting in the client's queue for a reconnect). */
  get ready(): boolean {
    return this.#client.isReady;
  }

  /** Moves the sessions of every host whose record expired; returns what moved where. */
  async reap(): Promise<Move[]> {
    const r = (await this.#eval(REAP, [Date.now(), this.#maxLoad])) as string[];
    const out: Move[] = [];
    for (let i = 0; i + 4 <= r.length; i += 4) {
      const [room, from, to, epoch] = [r[i]!, r[i + 1]!, r[i + 2]!, r[i + 3]!];
      out.push({ room, from, to: to ? { room, host: to, epoch: Number(epoch) } : null });
    }
    return out;
  }

  /**
   * A draining host hands its sessions over: each one another host can take moves there with a
   * new epoch (returned with the edge that serves it); the rest stay and finish on this host.
   */
  async handover(hostId: string): Promise<(Placement & { edge: string })[]> {
    const r = (await this.#eval(HANDOVER, [hostId, Date.now(), this.#maxLoad])) as string[];
    const out: (Placement & { edge: string })[] = [];
    for (let i = 0; i + 4 <= r.length; i += 4) out.push({ room: r[i]!, edge: r[i + 1]!, host: r[i + 2]!, epoch: Number(r[i + 3]) });
    return out;
  }

  /** Places waiting rooms, oldest first, while hosts have free slots. */
  async retryWaiting(limit = 100): Promise<Placement[]> {
    const r = (await this.#eval(RETRY_WAITING, [Date.now(), this.#maxLoad, limit])) as string[];
    const out: Placement[] = [];
    for (let i = 0; i + 3 <= r.length; i += 3) out.push({ room: r[i]!, host: r[i + 1]!, epoch: Number(r[i + 2]) });
    return out;
  }

  /** The room's placement, or null when it has none (or waits). */
  async placement(room: string): Promise<Placement | null> {
    const s = await this.#client.hGetAll(`${this.prefix}session:${room}`);
    return s['state'] === 'placed' && s['host'] ? { room, host: s['host'], epoch: Number(s['epoch']) } : null;
  }

  /** Live hosts with their records. */
  async hosts(): Promise<HostRecord[]> {
    const ids = await this.#client.sMembers(`${this.prefix}hosts`);
    const out: HostRecord[] = [];
    for (const id of ids.sort()) {
      const h = await this.#client.hGetAll(`${this.prefix}host:${id}`);
      if (!h['slots']) continue;
      out.push({
        id,
        slots: Number(h['slots']),
        load: Number(h['load']),
        provider: h['provider'] ?? 'cpu',
        state: h['state'] === 'draining' ? 'draining' : 'serving',
        used: await this.#client.sCard(`${this.prefix}host:${id}:rooms`),
        seen: Number(h['seen']),
      });
    }
    return out;
  }

  /** Rooms waiting for a renderer, oldest first. */
  async waiting(): Promise<string[]> {
    return this.#client.zRange(`${this.prefix}waiting`, 0, -1);
  }

  async close(): Promise<void> {
    await this.#client.quit().catch(() => this.#client.disconnect());
  }
}
