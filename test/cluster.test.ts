/**
 * Cluster mode end to end (issue 17) with real parts: a real redis-server, an edge (the server
 * with REENACT_REDIS_URL), reenactor hosts as separate processes (`npm run agent`), and wrtc
 * actors and viewers. Sessions are placed on a host, a host that dies or is cut off loses its
 * session to the other within the bound after its heartbeat expires, a cut-off host that comes
 * back publishes nothing (fenced by the epoch), and with no free slot a session waits and starts
 * when a host joins. The passthrough stage keeps it cheap: placement and failover do not depend
 * on what the stage renders.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FootageActor, StampViewer, decodeClip, type DecodedClip } from '../loadtest/peers.ts';
import type { ReenactServer } from '../server/src/server.ts';
import { ClusterStore } from '../server/src/cluster/store.ts';
import { setLogLevel } from '../server/src/logger.ts';
import { fixture, settleWrtc, startServer, waitFor } from './helpers/server.ts';
import { startRedis, type TestRedis } from './helpers/redis.ts';

setLogLevel('warn');
const repo = fileURLToPath(new URL('../', import.meta.url));
const HEARTBEAT_MS = 500;
const TTL_MS = 1500;

let redis: TestRedis;
let dataDir: string;
let clip: DecodedClip;
let prefixN = 0;

interface Host {
  id: string;
  proc: ChildProcess;
  log: string[];
}

/** `npm run agent` as its own process group (so a fault reaches its children too). */
function startHost(id: string, prefix: string, slots = 1): Host {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'server/src/cluster/cli.ts', '--redis', redis.url, '--slots', String(slots), '--id', id, '--prefix', prefix, '--heartbeat-ms', String(HEARTBEAT_MS), '--ttl-ms', String(TTL_MS)], {
    cwd: repo,
    env: { ...process.env, REENACT_DATA_DIR: dataDir, REENACT_LOG_LEVEL: 'warn' },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  proc.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
  proc.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
  return { id, proc, log };
}

function signalHost(h: Host, signal: NodeJS.Signals): void {
  try {
    if (h.proc.pid) process.kill(-h.proc.pid, signal);
  } catch {
    // already gone
  }
}

async function stopHost(h: Host): Promise<void> {
  if (h.proc.exitCode !== null || h.proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => h.proc.once('exit', () => r()));
  signalHost(h, 'SIGCONT');
  signalHost(h, 'SIGKILL');
  await exited;
}

async function edge(prefix: string): Promise<ReenactServer> {
  return startServer({ stage: 'passthrough', redisUrl: redis.url, clusterPrefix: prefix, clusterReapGraceMs: TTL_MS + HEARTBEAT_MS, measurement: true });
}

/** ms from `since` until the viewer has had `n` frames after it. */
async function framesAfter(viewer: StampViewer, since: number, n: number, timeoutMs: number): Promise<number> {
  await waitFor(() => viewer.received.filter((f) => f.at > since).length >= n, timeoutMs, `${n} frames`);
  return viewer.received.filter((f) => f.at > since)[0]!.at - since;
}

interface Cluster {
  server: ReenactServer;
  prefix: string;
  hosts: Host[];
  room: string;
  actor: FootageActor;
  viewer: StampViewer | undefined;
}

/**
 * An edge, hosts and one room with a live actor (and a viewer that has had its first frame,
 * unless `watch` is false), torn down after `body` whatever happens.
 */
async function withCluster(hostIds: string[], room: string, body: (c: Cluster) => Promise<void>, watch = true): Promise<void> {
  const prefix = `c${++prefixN}:`;
  const server = await edge(prefix);
  const hosts = hostIds.map((id) => startHost(id, prefix));
  let actor: FootageActor | undefined;
  let viewer: StampViewer | undefined;
  let c: Cluster | undefined;
  try {
    actor = await FootageActor.start({ url: server.url, token: server.tokens.sign(room, 'actor'), clip, durationMs: 200_000 });
    if (watch) {
      viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign(room, 'viewer') });
      await viewer.firstFrame(60_000);
    }
    c = { server, prefix, hosts, room, actor, viewer };
    await body(c);
  } finally {
    (c?.viewer ?? viewer)?.close();
    actor?.stop();
    await server.close();
    await Promise.all(hosts.map(stopHost));
    await settleWrtc();
  }
}

/** Waits until the room's session runs on a host other than `from`. */
async function movedOff(c: Cluster, from: string, timeoutMs: number): Promise<void> {
  await waitFor(() => c.server.supervisor.hostOf(c.room) !== undefined && c.server.supervisor.hostOf(c.room) !== from, timeoutMs, 'the session to move');
}

before(async () => {
  redis = await startRedis();
  dataDir = await mkdtemp(join(tmpdir(), 'reenact-cluster-'));
  clip = await decodeClip(fixture('driving/d9.mp4'), 320, 240, 15, 45);
});

after(async () => {
  await redis.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('cluster: edge, reenactor hosts and placement on Redis', { timeout: 240_000 }, () => {
  it('a session goes to a host and reaches the viewer; when that host dies (SIGKILL) it moves to the other and the video resumes', async () => {
    await withCluster(['hostA', 'hostB'], 'cl1', async (c) => {
      const first = c.server.supervisor.hostOf(c.room);
      assert.ok(first === 'hostA' || first === 'hostB', `placed on ${first}`);
      const killedAt = performance.now();
      signalHost(c.hosts.find((h) => h.id === first)!, 'SIGKILL');
      await movedOff(c, first, 20_000);
      const back = await framesAfter(c.viewer!, killedAt + 50, 15, 30_000);
      const afterExpiry = back - TTL_MS;
      console.log('cluster failover (SIGKILL)', JSON.stringify({ from: first, to: c.server.supervisor.hostOf(c.room), resumedAfterKillMs: Math.round(back), afterHeartbeatExpiryMs: Math.round(afterExpiry) }));
      assert.ok(afterExpiry <= 5000, `the video resumed ${Math.round(afterExpiry)} ms after the heartbeat expired (goal ≤ 5000)`);
      assert.match((await c.server.metrics.render()).body, /reenact_cluster_failovers_total 1/);
    });
  });

  it('a host cut off (SIGSTOP) loses its session; when it comes back it is fenced and publishes nothing', async () => {
    await withCluster(['hostC', 'hostD'], 'cl2', async (c) => {
      const first = c.server.supervisor.hostOf(c.room)!;
      const victim = c.hosts.find((h) => h.id === first)!;
      const stoppedAt = performance.now();
      signalHost(victim, 'SIGSTOP');
      await movedOff(c, first, 20_000);
      const back = await framesAfter(c.viewer!, stoppedAt + 50, 15, 30_000);
      console.log('cluster failover (SIGSTOP)', JSON.stringify({ from: first, to: c.server.supervisor.hostOf(c.room), resumedAfterStopMs: Math.round(back), afterHeartbeatExpiryMs: Math.round(back - TTL_MS) }));
      assert.ok(back - TTL_MS <= 5000);
      // The cut-off host comes back: its heartbeat finds nothing placed on it and it stops its session.
      signalHost(victim, 'SIGCONT');
      await waitFor(() => victim.log.join('').includes('fenced'), 15_000, 'the returning host to fence its session');
      await new Promise((r) => setTimeout(r, 2000));
      const reenactors = [...c.server.rooms.get(c.room)!.peers.values()].filter((p) => p.role === 'reenactor' && !p.closed);
      assert.equal(reenactors.length, 1, 'one reenactor in the room: the new host');
      assert.equal(c.server.supervisor.hostOf(c.room), c.hosts.find((h) => h !== victim)!.id);
      await framesAfter(c.viewer!, performance.now(), 15, 10_000);
    });
  });

  it('SIGTERM drains a host: its session is handed over to the other host, and the host exits 0', async () => {
    await withCluster(['hostE', 'hostF'], 'cl4', async (c) => {
      const first = c.server.supervisor.hostOf(c.room)!;
      const leaving = c.hosts.find((h) => h.id === first)!;
      const exited = new Promise<number | null>((r) => leaving.proc.once('exit', (code) => r(code)));
      const termAt = performance.now();
      leaving.proc.kill('SIGTERM');
      await movedOff(c, first, 10_000);
      const movedMs = performance.now() - termAt;
      const back = await framesAfter(c.viewer!, termAt + 50, 15, 30_000);
      const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), 15_000))]);
      console.log('cluster drain', JSON.stringify({ from: first, to: c.server.supervisor.hostOf(c.room), handedOverMs: Math.round(movedMs), videoBackMs: Math.round(back), exit: code }));
      assert.equal(code, 0, 'the drained host exits 0');
      assert.ok(movedMs < TTL_MS, 'handed over before its heartbeat would have expired');
      assert.doesNotMatch((await c.server.metrics.render()).body, /reenact_cluster_failovers_total [1-9]/, 'a handover is not a failover');
    });
  });

  it('a Redis restart (with its append-only file): hosts and the edge reconnect, and nothing is placed again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'reenact-redis-'));
    const saved = redis;
    let own = await startRedis({ dir });
    redis = own;
    try {
      await withCluster(['hostG', 'hostH'], 'cl5', async (c) => {
        const host = c.server.supervisor.hostOf(c.room);
        const epoch = c.server.supervisor.epochOf(c.room);
        const downAt = performance.now();
        await own.stop();
        await new Promise((r) => setTimeout(r, 1000));
        own = await startRedis({ dir, port: own.port });
        // A few heartbeats and edge ticks after the restart.
        await new Promise((r) => setTimeout(r, 4 * HEARTBEAT_MS + 1000));
        const seen = c.viewer!.received.filter((f) => f.at > downAt).map((f) => f.at);
        const longestGap = Math.max(0, ...seen.slice(1).map((t, i) => t - seen[i]!));
        console.log('cluster redis restart', JSON.stringify({ host, epoch, after: { host: c.server.supervisor.hostOf(c.room), epoch: c.server.supervisor.epochOf(c.room) }, framesSinceDown: seen.length, longestGapMs: Math.round(longestGap) }));
        assert.equal(c.server.supervisor.hostOf(c.room), host, 'the same host');
        assert.equal(c.server.supervisor.epochOf(c.room), epoch, 'the same placement: nothing was placed again');
        assert.doesNotMatch((await c.server.metrics.render()).body, /reenact_cluster_failovers_total [1-9]/);
        assert.ok(longestGap < 1000, 'the media never went through Redis: the video kept going');
        const store = await ClusterStore.connect({ url: own.url, prefix: c.prefix });
        const hostsNow = await store.hosts();
        await store.close();
        assert.deepEqual(hostsNow.map((h) => h.id), ['hostG', 'hostH'], 'both hosts renewed their records');
      });
    } finally {
      await own.stop();
      redis = saved;
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('with every slot taken a session waits, and starts when a host joins', async () => {
    await withCluster(
      [],
      'cl3',
      async (c) => {
        await waitFor(() => c.server.supervisor.sessionState(c.room) === 'waiting', 10_000, 'the session to wait');
        // The cluster's state reaches /healthz and the metrics within one read (every 2 s).
        await new Promise((r) => setTimeout(r, 2500));
        const health = (await (await fetch(`${c.server.url}/healthz`)).json()) as { cluster?: { waiting?: number; slots?: number } };
        assert.deepEqual({ waiting: health.cluster?.waiting, slots: health.cluster?.slots }, { waiting: 1, slots: 0 });
        assert.match((await c.server.metrics.render()).body, /reenact_cluster_sessions_waiting 1/);
        const joinedAt = performance.now();
        c.hosts.push(startHost('late', c.prefix));
        c.viewer = await StampViewer.start({ url: c.server.url, token: c.server.tokens.sign(c.room, 'viewer') });
        await c.viewer.firstFrame(60_000);
        console.log('cluster waiting', JSON.stringify({ firstFrameAfterHostStartMs: Math.round(performance.now() - joinedAt) }));
        assert.equal(c.server.supervisor.hostOf(c.room), 'late');
        assert.equal(c.server.supervisor.sessionState(c.room), 'running');
      },
      false,
    );
  });
});
