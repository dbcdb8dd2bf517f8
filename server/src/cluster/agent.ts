/**
 * A reenactor host (issue 17): `npm run agent -- --redis <url> --slots N`. It registers in the
 * cluster store and renews its record about every 2 s (slots, load, provider, state), runs one
 * reenactor child process per edge that places sessions on it (the same child.ts a single
 * server forks), and relays messages between each edge and its child over the bus. The child
 * joins the edge's room over WebRTC, as today's reenactor does.
 *
 * Fencing: every heartbeat returns the placements the store holds for this host. A session the
 * host runs that is not among them (it was moved while the host was cut off) is stopped at
 * once; its old token carries the old epoch, which the edge refuses.
 *
 * SIGTERM drains: the host turns `draining` (no new sessions), waits for its sessions to end
 * (up to the grace period), then exits 0.
 */
import type { ChildProcess } from 'node:child_process';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { forkReenactorChild } from '../reenactor/child-handle.ts';
import type { ChildMessage, ParentMessage } from '../reenactor/ipc.ts';
import { ClusterBus } from './bus.ts';
import type { EdgeToHost, HostToEdge } from './edge-link.ts';
import { ClusterStore, type HostState } from './store.ts';

export interface AgentOptions {
  redisUrl: string;
  prefix?: string;
  id: string;
  slots: number;
  /** Heartbeat period and record lifetime, ms. Defaults 2000 and 6000. */
  heartbeatMs?: number;
  ttlMs?: number;
  /** The reenactor children's configuration (data folder for the target cache, provider, models). */
  config: Config;
  log: Logger;
}

interface EdgeChild {
  edge: string;
  proc: ChildProcess | undefined;
  ready: boolean;
  restarts: number;
}

export class ReenactorAgent {
  readonly #o: AgentOptions;
  readonly #store: ClusterStore;
  readonly #bus: ClusterBus;
  readonly #log: Logger;
  readonly #children = new Map<string, EdgeChild>();
  /** Sessions this host runs: room → the edge it serves and the placement's epoch. */
  readonly #sessions = new Map<string, { edge: string; epoch: number; at: number }>();
  #state: HostState = 'serving';
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Sessions stopped by the heartbeat's fencing, for tests and logs. */
  fenced = 0;

  private constructor(o: AgentOptions, store: ClusterStore, bus: ClusterBus) {
    this.#o = o;
    this.#store = store;
    this.#bus = bus;
    this.#log = o.log.child('agent', { host: o.id });
  }

  static async start(o: AgentOptions): Promise<ReenactorAgent> {
    const prefix = o.prefix ?? 'reenact:';
    const store = await ClusterStore.connect({ url: o.redisUrl, prefix });
    const bus = await ClusterBus.connect(o.redisUrl, prefix);
    const agent = new ReenactorAgent(o, store, bus);
    await bus.subscribe(bus.hostChannel(o.id), (raw) => agent.#onEdge(raw as Partial<EdgeToHost>));
    await agent.#heartbeat();
    agent.#timer = setInterval(() => void agent.#heartbeat(), o.heartbeatMs ?? 2000);
    agent.#log.info('reenactor host registered', { slots: o.slots, provider: o.config.provider });
    return agent;
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  async #heartbeat(): Promise<void> {
    if (this.#closed) return;
    // A session started after this heartbeat was sent may be missing from its answer: keep it.
    const sentAt = Date.now();
    try {
      const load = Math.round((this.#sessions.size / Math.max(1, this.#o.slots)) * 1000);
      const r = await this.#store.heartbeat({ id: this.#o.id, slots: this.#o.slots, load, provider: this.#o.config.provider, state: this.#state }, this.#o.ttlMs ?? 6000);
      if (!r.renewed && this.#sessions.size > 0) this.#log.warn('this host record had lapsed (cut off, or Redis restarted): only what is still placed here keeps running', { placed: r.placements.length, running: this.#sessions.size });
      const held = new Map(r.placements.map((p) => [p.room, p.epoch]));
      for (const [room, s] of this.#sessions) {
        if (held.get(room) === s.epoch || s.at >= sentAt) continue;
        this.#log.warn('fenced: a session placed elsewhere stops here', { room, epoch: s.epoch });
        this.fenced++;
        this.#sessions.delete(room);
        this.#children.get(s.edge)?.proc?.send({ type: 'stop', sessionId: room } satisfies ParentMessage);
      }
    } catch (err) {
      this.#log.warn('heartbeat failed (Redis unreachable?)', { err: err instanceof Error ? err.message : String(err) });
    }
  }

  #onEdge(m: Partial<EdgeToHost>): void {
    if (this.#closed || typeof m.edge !== 'string' || !m.msg || typeof m.msg !== 'object') return;
    const edge = m.edge;
    const msg = m.msg;
    const child = this.#child(edge);
    switch (msg.type) {
      case 'hello':
        if (child.ready) this.#toEdge(edge, { type: 'ready', pid: child.proc?.pid ?? 0 });
        return;
      case 'start': {
        const epoch = msg.spec.epoch ?? 0;
        const had = this.#sessions.get(msg.spec.roomId);
        // Placed here again under a new epoch: the old session (old token) goes first.
        if (had && had.epoch !== epoch && child.ready) child.proc?.send({ type: 'stop', sessionId: msg.spec.sessionId } satisfies ParentMessage);
        this.#sessions.set(msg.spec.roomId, { edge, epoch, at: Date.now() });
        break;
      }
      case 'stop':
        this.#sessions.delete(msg.sessionId);
        break;
      case 'shutdown':
        return; // an edge does not shut a shared host down
      default:
        break;
    }
    if (child.ready) child.proc?.send(msg);
  }

  /** This edge's child process, forked on first use and restarted when it exits. */
  #child(edge: string): EdgeChild {
    let c = this.#children.get(edge);
    if (c) return c;
    c = { edge, proc: undefined, ready: false, restarts: 0 };
    this.#children.set(edge, c);
    this.#spawn(c);
    return c;
  }

  #spawn(c: EdgeChild): void {
    const proc = forkReenactorChild(this.#o.config);
    c.proc = proc;
    c.ready = false;
    proc.on('message', (raw: unknown) => {
      const msg = raw as ChildMessage;
      if (msg.type === 'ready') {
        c.ready = true;
        c.restarts = 0;
      }
      this.#toEdge(c.edge, msg);
    });
    proc.once('exit', (code, signal) => {
      if (c.proc !== proc) return;
      c.proc = undefined;
      c.ready = false;
      if (this.#closed) return;
      this.#log.error('reenactor child exited; restarting', { edge: c.edge, code, signal });
      this.#toEdge(c.edge, { type: 'childExit' });
      setTimeout(() => !this.#closed && this.#spawn(c), Math.min(5000, 250 * 2 ** c.restarts++)).unref();
    });
  }

  #toEdge(edge: string, msg: HostToEdge['msg']): void {
    this.#bus.publish(this.#bus.edgeChannel(edge), { host: this.#o.id, msg } satisfies HostToEdge).catch((err: unknown) => this.#log.warn('could not reach an edge', { edge, err }));
  }

  /**
   * Takes no new sessions and hands the ones it has to other hosts (each edge starts its session
   * there; this host's copy is then fenced and stops); what no host can take finishes here.
   * Waits up to graceMs for its sessions to end, then closes.
   */
  async drain(graceMs: number): Promise<void> {
    this.#state = 'draining';
    try {
      for (const m of await this.#store.handover(this.#o.id)) {
        this.#log.info('handing a session over', { room: m.room, to: m.host });
        if (m.edge) this.#toEdge(m.edge, { type: 'handedOver', room: m.room, to: { room: m.room, host: m.host, epoch: m.epoch } });
      }
    } catch (err) {
      this.#log.warn('handover failed; the sessions finish here', { err: err instanceof Error ? err.message : String(err) });
    }
    await this.#heartbeat();
    const deadline = Date.now() + graceMs;
    while (this.#sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await this.close();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await Promise.all(
      [...this.#children.values()].map(
        (c) =>
          new Promise<void>((resolve) => {
            const p = c.proc;
            if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
            const kill = setTimeout(() => p.kill('SIGKILL'), 3000);
            p.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            p.send({ type: 'shutdown' } satisfies ParentMessage);
          }),
      ),
    );
    await this.#bus.close();
    await this.#store.close();
  }
}
