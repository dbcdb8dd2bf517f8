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
    const prefix = `c${++prefixN}:`;
    const server = await edge(prefix);
    const hosts = [startHost('hostA', prefix), startHost('hostB', prefix)];
    let actor: FootageActor | undefined;
    let viewer: StampViewer | undefined;
    try {
      const room = 'cl1';
      actor = await FootageActor.start({ url: server.url, token: server.tokens.sign(room, 'actor'), clip, durationMs: 200_000 });
      viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign(room, 'viewer') });
      await viewer.firstFrame(60_000);
      const first = server.supervisor.hostOf(room);
      assert.ok(first === 'hostA' || first === 'hostB', `placed on ${first}`);
      const victim = hosts.find((h) => h.id === first)!;
      const killedAt = performance.now();
      signalHost(victim, 'SIGKILL');
      await waitFor(() => server.supervisor.hostOf(room) !== undefined && server.supervisor.hostOf(room) !== first, 20_000, 'the session to move');
      const back = await framesAfter(viewer, killedAt + 50, 15, 30_000);
      const afterExpiry = back - TTL_MS;
      console.log('cluster failover (SIGKILL)', JSON.stringify({ from: first, to: server.supervisor.hostOf(room), resumedAfterKillMs: Math.round(back), afterHeartbeatExpiryMs: Math.round(afterExpiry) }));
      assert.ok(afterExpiry <= 5000, `the video resumed ${Math.round(afterExpiry)} ms after the heartbeat expired (goal ≤ 5000)`);
      const metrics = (await server.metrics.render()).body;
      assert.match(metrics, /reenact_cluster_failovers_total 1/);
    } finally {
      viewer?.close();
      actor?.stop();
      await server.close();
      await Promise.all(hosts.map(stopHost));
      await settleWrtc();
    }
  });

  it('a host cut off (SIGSTOP) loses its session; when it comes back it is fenced and publishes nothing', async () => {
    const prefix = `c${++prefixN}:`;
    const server = await edge(prefix);
    const hosts = [startHost('hostC', prefix), startHost('hostD', prefix)];
    let actor: FootageActor | undefined;
    let viewer: StampViewer | undefined;
    try {
      const room = 'cl2';
      actor = await FootageActor.start({ url: server.url, token: server.tokens.sign(room, 'actor'), clip, durationMs: 200_000 });
      viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign(room, 'viewer') });
      await viewer.firstFrame(60_000);
      const first = server.supervisor.hostOf(room)!;
      const victim = hosts.find((h) => h.id === first)!;
      const stoppedAt = performance.now();
      signalHost(victim, 'SIGSTOP');
      await waitFor(() => server.supervisor.hostOf(room) !== undefined && server.supervisor.hostOf(room) !== first, 20_000, 'the session to move');
      const back = await framesAfter(viewer, stoppedAt + 50, 15, 30_000);
      console.log('cluster failover (SIGSTOP)', JSON.stringify({ from: first, to: server.supervisor.hostOf(room), resumedAfterStopMs: Math.round(back), afterHeartbeatExpiryMs: Math.round(back - TTL_MS) }));
      assert.ok(back - TTL_MS <= 5000);
      // The cut-off host comes back: its heartbeat finds nothing placed on it and it stops its session.
      signalHost(victim, 'SIGCONT');
      await waitFor(() => victim.log.join('').includes('fenced'), 15_000, 'the returning host to fence its session');
      await new Promise((r) => setTimeout(r, 2000));
      const room1 = server.rooms.get(room)!;
      const reenactors = [...room1.peers.values()].filter((p) => p.role === 'reenactor' && !p.closed);
      assert.equal(reenactors.length, 1, 'one reenactor in the room: the new host');
      assert.equal(server.supervisor.hostOf(room), hosts.find((h) => h !== victim)!.id);
      const t0 = performance.now();
      await framesAfter(viewer, t0, 15, 10_000);
    } finally {
      viewer?.close();
      actor?.stop();
      await server.close();
      await Promise.all(hosts.map(stopHost));
      await settleWrtc();
    }
  });

  it('SIGTERM drains a host: its session is handed over to the other host, and the host exits 0', async () => {
    const prefix = `c${++prefixN}:`;
    const server = await edge(prefix);
    const hosts = [startHost('hostE', prefix), startHost('hostF', prefix)];
    let actor: FootageActor | undefined;
    let viewer: StampViewer | undefined;
    try {
      const room = 'cl4';
      actor = await FootageActor.start({ url: server.url, token: server.tokens.sign(room, 'actor'), clip, durationMs: 200_000 });
      viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign(room, 'viewer') });
      await viewer.firstFrame(60_000);
      const first = server.supervisor.hostOf(room)!;
      const leaving = hosts.find((h) => h.id === first)!;
      const exited = new Promise<number | null>((r) => leaving.proc.once('exit', (code) => r(code)));
      const termAt = performance.now();
      leaving.proc.kill('SIGTERM');
      await waitFor(() => server.supervisor.hostOf(room) !== undefined && server.supervisor.hostOf(room) !== first, 10_000, 'the session to be handed over');
      const movedMs = performance.now() - termAt;
      const back = await framesAfter(viewer, termAt + 50, 15, 30_000);
      const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), 15_000))]);
      console.log('cluster drain', JSON.stringify({ from: first, to: server.supervisor.hostOf(room), handedOverMs: Math.round(movedMs), videoBackMs: Math.round(back), exit: code }));
      assert.equal(code, 0, 'the drained host exits 0');
      assert.ok(movedMs < TTL_MS, 'handed over before its heartbeat would have expired');
      assert.doesNotMatch((await server.metrics.render()).body, /reenact_cluster_failovers_total [1-9]/, 'a handover is not a failover');
    } finally {
      viewer?.close();
      actor?.stop();
      await server.close();
      await Promise.all(hosts.map(stopHost));
      await settleWrtc();
    }
  });

  it('a Redis restart (with its append-only file): hosts and the edge reconnect, and nothing is placed again', async () => {
    const prefix = `c${++prefixN}:`;
    const dir = await mkdtemp(join(tmpdir(), 'reenact-redis-'));
    let own = await startRedis({ dir });
    const saved = redis;
    redis = own;
    const server = await edge(prefix);
    const hosts = [startHost('hostG', prefix), startHost('hostH', prefix)];
    let actor: FootageActor | undefined;
    let viewer: StampViewer | undefined;
    try {
      const room = 'cl5';
      actor = await FootageActor.start({ url: server.url, token: server.tokens.sign(room, 'actor'), clip, durationMs: 200_000 });
      viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign(room, 'viewer') });
      await viewer.firstFrame(60_000);
      const host = server.supervisor.hostOf(room);
      const epoch = server.supervisor.epochOf(room);
      const downAt = performance.now();
      await own.stop();
      await new Promise((r) => setTimeout(r, 1000));
      own = await startRedis({ dir, port: own.port });
      // A few heartbeats and edge ticks after the restart.
      await new Promise((r) => setTimeout(r, 4 * HEARTBEAT_MS + 1000));
      const gaps: number[] = [];
      const seen = viewer.received.filter((f) => f.at > downAt).map((f) => f.at);
      for (let i = 1; i < seen.length; i++) gaps.push(seen[i]! - seen[i - 1]!);
      console.log('cluster redis restart', JSON.stringify({ host, epoch, after: { host: server.supervisor.hostOf(room), epoch: server.supervisor.epochOf(room) }, framesSinceDown: seen.length, longestGapMs: Math.round(Math.max(0, ...gaps)) }));
      assert.equal(server.supervisor.hostOf(room), host, 'the same host');
      assert.equal(server.supervisor.epochOf(room), epoch, 'the same placement: nothing was placed again');
      assert.doesNotMatch((await server.metrics.render()).body, /reenact_cluster_failovers_total [1-9]/);
      assert.ok(Math.max(0, ...gaps) < 1000, 'the media never went through Redis: the video kept going');
      const hostsNow = await (await import('../server/src/cluster/store.ts')).ClusterStore.connect({ url: own.url, prefix }).then(async (s) => {
        const h = await s.hosts();
        await s.close();
        return h;
      });
      assert.deepEqual(hostsNow.map((h) => h.id), ['hostG', 'hostH'], 'both hosts renewed their records');
    } finally {
      viewer?.close();
      actor?.stop();
      await server.close();
      await Promise.all(hosts.map(stopHost));
      await own.stop();
      redis = saved;
      await rm(dir, { recursive: true, force: true });
      await settleWrtc();
    }
  });

  it('with every slot taken a session waits, and starts when a host joins', async () => {
    const prefix = `c${++prefixN}:`;
    const server = await edge(prefix);
    const hosts: Host[] = [];
    let actor: FootageActor | undefined;
    let viewer: StampViewer | undefined;
    try {
      const room = 'cl3';
      actor = await FootageActor.start({ url: server.url, token: server.tokens.sign(room, 'actor'), clip, durationMs: 200_000 });
      await waitFor(() => server.supervisor.sessionState(room) === 'waiting', 10_000, 'the session to wait');
      // The cluster's state reaches /healthz and the metrics within one read (every 2 s).
      await new Promise((r) => setTimeout(r, 2500));
      const health = (await (await fetch(`${server.url}/healthz`)).json()) as { cluster?: { waiting?: number; slots?: number } };
      assert.deepEqual({ waiting: health.cluster?.waiting, slots: health.cluster?.slots }, { waiting: 1, slots: 0 });
      assert.match((await server.metrics.render()).body, /reenact_cluster_sessions_waiting 1/);
      const joinedAt = performance.now();
      hosts.push(startHost('late', prefix));
      viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign(room, 'viewer') });
      await viewer.firstFrame(60_000);
      console.log('cluster waiting', JSON.stringify({ firstFrameAfterHostStartMs: Math.round(performance.now() - joinedAt) }));
      assert.equal(server.supervisor.hostOf(room), 'late');
      assert.equal(server.supervisor.sessionState(room), 'running');
    } finally {
      viewer?.close();
      actor?.stop();
      await server.close();
      await Promise.all(hosts.map(stopHost));
      await settleWrtc();
    }
  });
});
