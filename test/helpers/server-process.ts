/**
 * The server as its own process (`server/src/main.ts`, as `npm start` runs it), for tests that
 * signal it, fault it or measure it apart from the test's own clients.
 */
import { SERVER_NODE_FLAGS } from '../../server/src/process-flags.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenSigner } from '../../server/src/auth/tokens.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
export const PROCESS_SECRET = 'server-process-test-secret-0123456789';

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  dataDir: string;
  tokens: TokenSigner;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>;
  /** The server process's resident memory, bytes (from /proc). */
  rss(): Promise<number>;
  /** Its log so far (stderr, the first 8 MB). */
  log(): string;
  stop(): Promise<void>;
}

let rtcBase = 47000 + (process.pid % 20) * 100;

/** Starts the server with these REENACT_* settings (on 127.0.0.1, an ephemeral port, a fresh data folder). */
export async function startServerProcess(env: Record<string, string> = {}): Promise<ServerProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'reenact-proc-'));
  const rtcMin = rtcBase;
  rtcBase += 100;
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, '--import', 'tsx', 'server/src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env, NODE_TEST_CONTEXT: undefined, REENACT_PORT: '0', REENACT_HOST: '127.0.0.1', REENACT_STAGE: 'passthrough', REENACT_WORKERS: '1',
      REENACT_LOG_LEVEL: 'info', REENACT_DATA_DIR: dataDir, REENACT_TOKEN_SECRET: PROCESS_SECRET, REENACT_RTC_MIN_PORT: String(rtcMin), REENACT_RTC_MAX_PORT: String(rtcMin + 99),
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, atMs: Date.now() })));
  let buf = '';
  let listening = false;
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start: ${buf.slice(-2000)}`)), 60_000);
    child.stderr.on('data', (d: Buffer) => {
      if (buf.length < 8_000_000) buf += d.toString();
      if (listening) return;
      const m = /"msg":"listening","url":"([^"]+)"/.exec(buf);
      if (m?.[1]) {
        listening = true;
        clearTimeout(t);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening: ${buf.slice(-2000)}`)));
  });
  return {
    child, url, dataDir, exit,
    tokens: new TokenSigner(PROCESS_SECRET, 3_600_000),
    log: () => buf,
    rss: async () => Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(t);
    },
  };
}
