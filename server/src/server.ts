/**
 * The server process: HTTP (pages, /healthz, /metrics), socket.io signalling,
 * mediasoup workers and rooms, and the reenactor supervisor, wired together in
 * this one place (children never import their owners).
 */
import { createPayloadMaker } from './provenance/keys.ts';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Server as IoServer } from 'socket.io';
import { isLoopbackHost, type Config } from './config.ts';
import { rootLogger, type Logger } from './logger.ts';
import { Metrics } from './metrics/metrics.ts';
import { TokenSigner } from './auth/tokens.ts';
import { WorkerPool } from './sfu/worker-pool.ts';
import { Room } from './sfu/room.ts';
import { mediaCodecs } from './sfu/media-codecs.ts';
import { attachSignalling, kickRevoked, type SignalServer } from './signalling.ts';
import { createRequestHandler } from './http/routes.ts';
import { EdgeLink } from './cluster/edge-link.ts';
import { ReenactorSupervisor, type SessionSettings } from './reenactor/supervisor.ts';
import { CodedError, ErrorCodes } from '../../shared/errors.ts';
import { MAX_REQUEST_BYTES, SIGNALLING_PATH, type SessionOptions } from '../../shared/protocol.ts';
import { TargetStore } from './targets/store.ts';
import { forgetEnrollments } from './render/target.ts';
import { createLimiters, type Limiters } from './http/rate-limit.ts';
import { InferenceRunner } from './inference/runner.ts';
import { REENACT_HANDLER, reenactHandlerSpec, type PipelineRequest } from './pipeline/reenact-handler.ts';
import { degradedRenderSize } from './pipeline/reenact-stage.ts';
import { join } from 'node:path';
import { ViewerBitrateFollower } from './sfu/viewer-bitrate.ts';

export class ReenactServer {
  readonly config: Config;
  readonly metrics: Metrics;
  readonly tokens: TokenSigner;
  readonly #log: Logger;
  readonly #http: HttpServer;
  readonly #io: SignalServer;
  readonly #pool: WorkerPool;
  readonly #supervisor: ReenactorSupervisor;
  readonly #rooms = new Map<string, Room>();
  readonly #roomsCreating = new Map<string, Promise<Room>>();
  /** Per-room session settings chosen by the actor (may precede the session). */
  readonly #settings = new Map<string, SessionSettings>();
  #draining: Promise<void> | null = null;
  readonly #targets: TargetStore;
  readonly #enroller: { current?: Promise<InferenceRunner> };
  readonly #follower: ViewerBitrateFollower | null;
  /** Cluster mode: placement on reenactor hosts through Redis (null: the single-machine server). */
  readonly #cluster: EdgeLink | null;
  #clusterView: { hosts: number; slots: number; used: number; waiting: number } | null = null;
  readonly #clusterTimer: NodeJS.Timeout | null;
  #closed = false;

  private constructor(
    config: Config,
    pool: WorkerPool,
    http: HttpServer,
    metrics: Metrics,
    tokens: TokenSigner,
    log: Logger,
    targets: TargetStore,
    enroller: { current?: Promise<InferenceRunner> },
    watermark: ((roomId: string) => number[]) | null,
    limiters: Limiters | undefined,
    cluster: EdgeLink | null,
  ) {
    this.#cluster = cluster;
    this.config = config;
    this.#targets = targets;
    this.#enroller = enroller;
    this.metrics = metrics;
    this.tokens = tokens;
    this.#log = log;
    this.#pool = pool;
    this.#http = http;
    // The transport refuses a message of over twice the request limit before buffering it (the
    // connection closes): a request between the two is answered E_BAD_REQUEST.
    this.#io = new IoServer(http, { path: SIGNALLING_PATH, serveClient: false, maxHttpBufferSize: 2 * MAX_REQUEST_BYTES, cors: { origin: false } });
    this.#supervisor = new ReenactorSupervisor({
      config,
      log,
      metrics,
      mintToken: (room, epoch) => tokens.sign(room, 'reenactor', undefined, undefined, epoch),
      serverUrl: () => this.url,
      targetPath: (id, room) => (targets.get(id, room ?? '') ?? targets.get(targets.defaultId, ''))!.path,
      watermark: watermark ?? undefined,
      cluster: cluster ?? undefined,
      // The host that served the room is gone: its reenactor peer (and a stale rejoin) must not publish.
      sessionMoved: (room) => {
        for (const p of this.#rooms.get(room)?.peers.values() ?? []) if (p.role === 'reenactor') p.close();
      },
    });
    this.#clusterTimer = cluster ? setInterval(() => void this.#readCluster(cluster), 2000) : null;
    this.#clusterTimer?.unref();
    this.#supervisor.on('sessionstate', (roomId, state, code, message) => {
      this.#rooms.get(roomId)?.broadcast({ method: 'sessionStatus', data: { state, code, message } });
      if (state === 'running') void this.#catchUp(roomId);
    });
    this.#supervisor.on('sessionstats', (roomId, stats) => this.#rooms.get(roomId)?.broadcast({ method: 'sessionStats', data: stats }));
    this.#supervisor.on('degradechanged', (roomId, level, reason) => this.#rooms.get(roomId)?.broadcast({ method: 'degradeChanged', data: { level, reason } }));
    // Rooms on a dead worker close themselves with E_WORKER_DIED (Room); the pool replaces the worker.
    pool.on('workerdied', () => this.metrics.workerDeaths.inc());
    this.#follower = config.followViewers
      ? new ViewerBitrateFollower({
          rooms: () => this.#rooms.entries(),
          configured: config.outputBitrate,
          apply: async (roomId, bps, direction) => {
            if (this.#supervisor.sessionState(roomId) !== 'running') throw new Error('no running session');
            await this.#supervisor.control(roomId, { type: 'setMaxBitrate', bps });
            this.metrics.bitrateLadderSteps.inc({ direction });
            this.#log.info('synthesized video bitrate follows the slowest viewer', { roomId, bps, direction });
          },
        })
      : null;
    metrics.rtpSources = () => [...this.#rooms.values()].flatMap((r) => [...r.peers.values()]).map((p) => ({ role: p.role, producers: p.producers.values(), consumers: p.consumers.values(), transports: p.transports.values() }));
    attachSignalling(this.#io, {
      config,
      log,
      metrics,
      tokens,
      getOrCreateRoom: (id) => this.#getOrCreateRoom(id),
      overloaded: () => this.#supervisor.sessionCount >= config.maxSessions,
      // Cluster mode: a reenactor must hold the room's current placement (its token's epoch).
      reenactorAdmitted: cluster ? (room, epoch) => epoch !== undefined && this.#supervisor.epochOf(room) === epoch : undefined,
      draining: () => this.#draining !== null,
      limiters,
      controls: {
        listTargets: (roomId) => ({ targets: targets.list(roomId), current: this.#roomSettings(roomId).targetId }),
        setTarget: (roomId, targetId) => this.#setTarget(roomId, targetId),
        resetNeutral: (roomId) => this.#supervisor.control(roomId, { type: 'resetNeutral' }),
        setOptions: (roomId, options) => this.#setOptions(roomId, options),
      },
    });
  }

  get targets(): TargetStore {
    return this.#targets;
  }

  #roomSettings(roomId: string): SessionSettings {
    let s = this.#settings.get(roomId);
    if (!s) {
      s = { targetId: this.#targets.defaultId, options: { sideBySide: false, lipZero: this.config.lipZero, output: this.config.output } };
      this.#settings.set(roomId, s);
    }
    return s;
  }

  async #setTarget(roomId: string, targetId: string): Promise<void> {
    const target = this.#targets.get(targetId, roomId);
    if (!target) throw new CodedError(ErrorCodes.NOT_FOUND, 'no such target');
    if (this.#supervisor.sessionState(roomId) === 'running') await this.#supervisor.control(roomId, { type: 'setTarget', targetId, targetPath: target.path });
    this.#roomSettings(roomId).targetId = targetId;
  }

  /** A room whose upload was deleted or expired goes back to the default target. */
  #targetRemoved(id: string, room: string | null): void {
    if (!room || this.#settings.get(room)?.targetId !== id) return;
    this.#setTarget(room, this.#targets.defaultId).catch((err: unknown) => this.#log.warn('could not switch a room off its removed upload', { room, err }));
  }

  /**
   * A target or option chosen while the session was starting or restarting is stored for the
   * room but never reached the session, which started from the settings it had: apply it now.
   */
  async #catchUp(roomId: string): Promise<void> {
    const want = this.#settings.get(roomId);
    const have = this.#supervisor.settings(roomId);
    if (!want || !have) return;
    try {
      const target = this.#targets.get(want.targetId, roomId);
      if (target && want.targetId !== have.targetId) await this.#supervisor.control(roomId, { type: 'setTarget', targetId: want.targetId, targetPath: target.path });
      if (!sameOptions(want.options, have.options)) await this.#supervisor.control(roomId, { type: 'setOptions', ...want.options });
    } catch (err) {
      this.#log.warn('could not apply the room settings chosen while its session started', { room: roomId, err });
    }
  }

  async #setOptions(roomId: string, options: Partial<SessionOptions>): Promise<SessionOptions> {
    const settings = this.#roomSettings(roomId);
    const next = { ...settings.options, ...options };
    if (!sameOptions(next, settings.options) && this.#supervisor.sessionState(roomId) === 'running') await this.#supervisor.control(roomId, { type: 'setOptions', ...next });
    settings.options = next;
    return next;
  }

  static async create(config: Config): Promise<ReenactServer> {
    const log = rootLogger.child('server');
    const metrics = new Metrics();
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    const tokens = new TokenSigner(config.tokenSecret, config.tokenTtlMs, join(config.dataDir, 'revocations.json'));
    // Uploads are enrolled (which is also their face check) in a worker thread started on first
    // use, into the same cache the reenactors read: nothing of it runs on this event loop.
    const enroller: { current?: Promise<InferenceRunner> } = {};
    const holder: { server?: ReenactServer } = {};
    const enrollRunner = (): Promise<InferenceRunner> => {
      enroller.current ??= InferenceRunner.create({
        name: 'enroller',
        handlers: [reenactHandlerSpec({ threads: 1, cacheDir: join(config.dataDir, 'targets'), attention: config.trackerModel === 'attention', provider: config.provider })],
        initTimeoutMs: 60_000,
        logger: log,
      });
      enroller.current.catch(() => (enroller.current = undefined));
      return enroller.current;
    };
    const targets = await TargetStore.create({
      uploadDir: join(config.dataDir, 'uploads'),
      defaultId: config.defaultTarget,
      log,
      enroll: async (path) => {
        const runner = await enrollRunner();
        await runner.run(REENACT_HANDLER, { op: 'enroll', targetPath: path, size: config.renderSize } satisfies PipelineRequest);
      },
      uploadTtlMs: config.uploadTtlHours * 3_600_000,
      forget: async (bytes) => void (await forgetEnrollments(join(config.dataDir, 'targets'), bytes)),
      removed: (id, room) => {
        if (holder.server) holder.server.#targetRemoved(id, room);
      },
      // The degraded render size too, in the background, from the stored file: the upload is
      // accepted once the face check passed.
      accepted: (path) => {
        enrollRunner()
          .then((runner) => runner.run(REENACT_HANDLER, { op: 'enroll', targetPath: path, size: degradedRenderSize(config.renderSize) } satisfies PipelineRequest))
          .catch((err: unknown) => log.warn('enrolling an upload at the degraded size failed; degrading onto it will enroll it then', { err }));
      },
    });
    const watermark = await createPayloadMaker({ enabled: config.watermark, dataDir: config.dataDir, serverId: config.serverId, onLogError: (err) => log.warn('could not append to the provenance log', { err }) });
    const pool = await WorkerPool.create(config);
    const limiters = config.rateLimits ? createLimiters() : undefined;
    const handler = createRequestHandler({
      autoTokens: config.autoTokens,
      tls: Boolean(config.tlsCert && config.tlsKey),
      signToken: (room, role) => tokens.sign(room, role),
      verifyToken: (token) => tokens.verify(token),
      targets,
      health: () => holder.server?.health() ?? { status: 503, body: { status: 'starting' } },
      draining: () => holder.server?.draining ?? false,
      limiters,
      admin: config.adminSecret
        ? { secret: config.adminSecret, revokeRoom: (room) => (holder.server ? holder.server.revokeRoom(room) : Promise.reject(new Error('the server is starting'))) }
        : undefined,
      metrics: () => metrics.render(),
    });
    const http =
      config.tlsCert && config.tlsKey
        ? createHttpsServer({ cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) }, handler)
        : createHttpServer(handler);
    try {
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(config.port, config.host, () => {
          http.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      pool.close();
      throw err;
    }
    let cluster: EdgeLink | null = null;
    if (config.redisUrl) {
      try {
        cluster = await EdgeLink.connect({ url: config.redisUrl, prefix: config.clusterPrefix, edgeId: config.edgeId, reapGraceMs: config.clusterReapGraceMs, log });
      } catch (err) {
        pool.close();
        http.close();
        throw err;
      }
      log.info('cluster mode: sessions go to reenactor hosts', { edge: cluster.edgeId, prefix: config.clusterPrefix });
    }
    const server = new ReenactServer(config, pool, http, metrics, tokens, log, targets, enroller, watermark, limiters, cluster);
    holder.server = server;
    server.#supervisor.prewarm(
      config.defaultTarget,
      targets.list().filter((t) => t.source === 'bundled' && t.kind === 'image').map((t) => t.id),
    );
    log.info('listening', { url: server.url, tokenMinting: config.autoTokens });
    if (config.autoTokens && !isLoopbackHost(config.host)) log.warn('REENACT_AUTO_TOKENS=1 on a non-loopback address: anyone who reaches this port can mint an actor token for any room');
    return server;
  }

  get url(): string {
    const addr = this.#http.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address;
    return `${this.config.tlsCert ? 'https' : 'http'}://${host}:${addr.port}`;
  }

  get supervisor(): ReenactorSupervisor {
    return this.#supervisor;
  }

  get workerPool(): WorkerPool {
    return this.#pool;
  }

  get rooms(): ReadonlyMap<string, Room> {
    return this.#rooms;
  }

  /** Revokes every token for `room` issued until now and disconnects the peers that hold one. */
  async revokeRoom(room: string): Promise<{ revokedUntil: number; disconnected: number }> {
    const revokedUntil = this.tokens.revokeRoom(room);
    const disconnected = await kickRevoked(this.#io, room, revokedUntil);
    this.#log.info('room tokens revoked', { room, disconnected });
    return { revokedUntil, disconnected };
  }

  /** Whether a drain has begun (SIGTERM): joins and token requests are refused. */
  get draining(): boolean {
    return this.#draining !== null;
  }

  /**
   * Drains the server: refuses new joins (E_DRAINING; /healthz, /api/token and uploads answer 503
   * with Retry-After), tells every room (serverDraining), waits for the actors to leave or for
   * `graceMs`, whichever comes first, then closes. Resolves once closed; idempotent.
   */
  drain(graceMs = this.config.drainGraceMs): Promise<void> {
    this.#draining ??= (async () => {
      this.#log.info('draining', { graceMs, sessions: this.#supervisor.sessionCount, rooms: this.#rooms.size });
      for (const room of this.#rooms.values()) room.broadcast({ method: 'serverDraining', data: { graceMs } });
      const until = Date.now() + graceMs;
      while (Date.now() < until && this.#actorCount() > 0 && !this.#closed) await new Promise((r) => setTimeout(r, 100));
      this.#log.info('drained', { actorsLeft: this.#actorCount(), waitedMs: graceMs - Math.max(0, until - Date.now()) });
      await this.close();
    })();
    return this.#draining;
  }

  /** Cluster mode: hosts, slots and waiting sessions, for /healthz and the autoscaling metrics. */
  async #readCluster(cluster: EdgeLink): Promise<void> {
    try {
      const hosts = (await cluster.store.hosts()).filter((h) => h.state === 'serving');
      const waiting = (await cluster.store.waiting()).length;
      const slots = hosts.reduce((n, h) => n + h.slots, 0);
      const used = hosts.reduce((n, h) => n + Math.min(h.used, h.slots), 0);
      this.#clusterView = { hosts: hosts.length, slots, used, waiting };
      this.metrics.clusterSlots.set({ state: 'free' }, slots - used);
      this.metrics.clusterSlots.set({ state: 'used' }, used);
      this.metrics.clusterWaiting.set(waiting);
    } catch (err) {
      this.#log.warn('could not read the cluster state', { err: err instanceof Error ? err.message : String(err) });
    }
  }

  #actorCount(): number {
    let n = 0;
    for (const room of this.#rooms.values()) for (const p of room.peers.values()) if (p.role === 'actor' && !p.closed) n++;
    return n;
  }

  health(): { status: number; body: Record<string, unknown> } {
    if (this.#draining) return { status: 503, body: { status: 'draining', sessions: this.#supervisor.sessionCount, rooms: this.#rooms.size } };
    const sessions = this.#supervisor.sessionCount;
    const load = sessions / this.config.maxSessions;
    const workers = this.#pool.workers.length;
    const inference = this.#supervisor.inference;
    const unavailable = inference.error?.code === ErrorCodes.PROVIDER_UNAVAILABLE;
    const ok = !this.#closed && workers > 0 && sessions < this.config.maxSessions && !unavailable;
    return {
      status: ok ? 200 : 503,
      body: {
        status: ok ? 'ok' : unavailable ? 'inference-unavailable' : 'busy',
        /** The configured provider, the one the pipeline runs on, and why it could not load. */
        inference: { configured: this.config.provider, ...inference },
        sessions,
        maxSessions: this.config.maxSessions,
        load,
        rooms: this.#rooms.size,
        workers,
        /** The reenactor pipeline is loaded: first frames will not wait for a cold start. */
        warm: this.#supervisor.warm,
        ...(this.#cluster ? { cluster: { edge: this.#cluster.edgeId, ...(this.#clusterView ?? {}) } } : {}),
      },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#targets.close();
    this.#follower?.close();
    await this.#supervisor.close();
    if (this.#clusterTimer) clearInterval(this.#clusterTimer);
    await this.#cluster?.close();
    for (const room of [...this.#rooms.values()]) room.close(ErrorCodes.ROOM_CLOSED, 'server shutting down');
    await new Promise<void>((resolve) => void this.#io.close(() => resolve()));
    this.#http.closeAllConnections?.();
    this.#pool.close();
    await this.#enroller.current?.then((r) => r.close()).catch(() => undefined);
  }

  async #getOrCreateRoom(id: string): Promise<Room> {
    const existing = this.#rooms.get(id);
    if (existing && !existing.closed) return existing;
    const pending = this.#roomsCreating.get(id);
    if (pending) return pending;
    const creating = Room.create(id, () => this.#pool.createRouter(mediaCodecs), this.#log).then((room) => {
      this.#rooms.set(id, room);
      this.metrics.rooms.set(this.#rooms.size);
      room.on('actorvideo', (producer) => this.#supervisor.startSession(id, producer.id, this.#roomSettings(id)));
      room.on('actorvideoclosed', () => this.#supervisor.stopSession(id));
      room.on('actortracks', (dataProducer) => this.#supervisor.startSession(id, dataProducer.id, this.#roomSettings(id), 'tracks'));
      room.on('actortracksclosed', () => this.#supervisor.stopSession(id));
      room.on('idle', () => room.close(ErrorCodes.ROOM_CLOSED, 'room empty'));
      room.once('close', () => {
        this.#supervisor.stopSession(id);
        this.#settings.delete(id);
        if (this.#rooms.get(id) === room) this.#rooms.delete(id);
        this.metrics.rooms.set(this.#rooms.size);
      });
      return room;
    });
    this.#roomsCreating.set(id, creating);
    try {
      return await creating;
    } finally {
      this.#roomsCreating.delete(id);
    }
  }
}

function sameOptions(a: SessionOptions, b: SessionOptions): boolean {
  return (Object.keys(a) as (keyof SessionOptions)[]).every((k) => a[k] === b[k]);
}
