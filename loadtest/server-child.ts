/**
 * The server under test, spawned as a child process: loopback only, a free
 * HTTP port, its own RTC port range and token secret, measurement mode on.
 * It runs in its own process group so stop() can make sure nothing it
 * started (mediasoup workers, reenactor children) outlives the load test.
 */
import { SERVER_NODE_FLAGS } from '../server/src/process-flags.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { randomBytes, randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { TokenSigner } from '../server/src/auth/tokens.ts';
import type { Role } from '../shared/protocol.ts';
import type { Stage } from './options.ts';

const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const serverEntry = fileURLToPath(new URL('../server/src/main.ts', import.meta.url));

export interface SpawnOptions {
  stage: Stage;
  /** REENACT_OUTPUT and REENACT_RENDER_SIZE; undefined leaves the server's defaults. */
  output?: string;
  renderSize?: number;
  /** REENACT_PROVIDER and REENACT_BATCH_MAX; undefined leaves the server's defaults. */
  provider?: string;
  batchMax?: number;
  /** Server-wide session limit; at least the sessions the run will open. */
  maxSessions: number;
  logPath: string;
  signal: AbortSignal;
  startTimeoutMs?: number;
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export class SpawnedServer {
  readonly url: string;
  readonly pid: number;
  readonly logPath: string;
  readonly rtcPorts: [number, number];
  readonly #tokens: TokenSigner;
  readonly #proc: ChildProcess;
  #exit: Promise<void>;
  #exited = false;
  #stopping: Promise<void> | undefined;

  private constructor(proc: ChildProcess, url: string, tokens: TokenSigner, logPath: string, rtcPorts: [number, number]) {
    this.#proc = proc;
    this.pid = proc.pid!;
    this.url = url;
    this.#tokens = tokens;
    this.logPath = logPath;
    this.rtcPorts = rtcPorts;
    this.#exited = proc.exitCode !== null || proc.signalCode !== null;
    this.#exit = new Promise((resolve) => {
      if (this.#exited) resolve();
      const done = (): void => {
        this.#exited = true;
        resolve();
      };
      proc.once('exit', done);
      proc.once('error', done);
    });
  }

  static async start(opts: SpawnOptions): Promise<SpawnedServer> {
    const port = await freePort();
    // Below the usual ephemeral range (32768+) so the peers' own sockets never take our ports.
    const rtcMin = 20_000 + 200 * randomInt(0, 63);
    const secret = randomBytes(24).toString('hex');
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('REENACT_') || k === 'REENACT_LOG_LEVEL') env[k] = v;
    Object.assign(env, {
      REENACT_HOST: '127.0.0.1',
      REENACT_PORT: String(port),
      REENACT_MEASUREMENT: '1',
      REENACT_STAGE: opts.stage,
      REENACT_MAX_SESSIONS: String(opts.maxSessions),
      REENACT_RTC_MIN_PORT: String(rtcMin),
      REENACT_RTC_MAX_PORT: String(rtcMin + 199),
      REENACT_TOKEN_SECRET: secret,
      REENACT_AUTO_TOKENS: '0',
      // Its peers are closed before it is stopped: SIGTERM should close it at once, not drain.
      REENACT_DRAIN_GRACE_MS: '0',
    });
    if (opts.output) env['REENACT_OUTPUT'] = opts.output;
    if (opts.renderSize) env['REENACT_RENDER_SIZE'] = String(opts.renderSize);
    if (opts.provider) env['REENACT_PROVIDER'] = opts.provider;
    if (opts.batchMax) env['REENACT_BATCH_MAX'] = String(opts.batchMax);
    const log = openSync(opts.logPath, 'w');
    let proc: ChildProcess;
    try {
      proc = spawn(process.execPath, [...SERVER_NODE_FLAGS, '--import', 'tsx', serverEntry], { cwd: repoRoot, env, detached: true, stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    if (proc.pid === undefined) throw new Error('could not spawn the server');
    const server = new SpawnedServer(proc, `http://127.0.0.1:${port}`, new TokenSigner(secret, 3600_000), opts.logPath, [rtcMin, rtcMin + 199]);
    try {
      await server.#waitHealthy(opts.startTimeoutMs ?? 60_000, opts.signal);
      return server;
    } catch (err) {
      await server.stop();
      throw err;
    }
  }

  get exited(): boolean {
    return this.#exited;
  }

  token(room: string, role: Extract<Role, 'actor' | 'viewer'>): string {
    return this.#tokens.sign(room, role);
  }

  /** SIGTERM (graceful close), then SIGKILL to the whole process group after a grace period. */
  stop(graceMs = 8000): Promise<void> {
    this.#stopping ??= (async () => {
      if (!this.#exited) {
        this.#signal(this.pid, 'SIGTERM');
        await Promise.race([this.#exit, new Promise((r) => setTimeout(r, graceMs).unref())]);
      }
      this.killNow();
      await Promise.race([this.#exit, new Promise((r) => setTimeout(r, 2000).unref())]);
    })();
    return this.#stopping;
  }

  /** Synchronous last resort (exit handlers): SIGKILL to the server's process group. */
  killNow(): void {
    this.#signal(-this.pid, 'SIGKILL');
  }

  #signal(target: number, sig: NodeJS.Signals): void {
    try {
      process.kill(target, sig);
    } catch {
      // ESRCH: already gone.
    }
  }

  async #waitHealthy(timeoutMs: number, signal: AbortSignal): Promise<void> {
    const t0 = performance.now();
    let last = 'no answer';
    while (performance.now() - t0 < timeoutMs) {
      if (signal.aborted) throw new Error(`aborted while waiting for the server: ${String(signal.reason)}`);
      if (this.#exited) throw new Error(`the server exited during start-up (code ${this.#proc.exitCode}, signal ${this.#proc.signalCode}); last log lines:\n${tail(this.logPath)}`);
      try {
        const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(2000) });
        const body = await res.text();
        // Wait for the reenactor pipeline too, so time-to-first-frame measures a warm server.
        if (res.status === 200 && (JSON.parse(body) as { warm?: boolean }).warm !== false) return;
        last = `HTTP ${res.status}: ${body}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`the server did not become healthy within ${timeoutMs} ms (${last}); last log lines:\n${tail(this.logPath)}`);
  }
}
