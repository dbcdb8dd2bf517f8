/** Starts a real server (real mediasoup workers, real reenactor children) on an ephemeral port. */
import { loadConfig } from '../../server/src/config.ts';
import { ReenactServer } from '../../server/src/server.ts';
import { setLogLevel, type LogLevel } from '../../server/src/logger.ts';

// Keep test output readable: warnings and errors only, here and in the reenactor children
// (they inherit the environment). REENACT_LOG_LEVEL=info brings the rest back.
process.env['REENACT_LOG_LEVEL'] ??= 'warn';
setLogLevel((process.env['REENACT_LOG_LEVEL'] as LogLevel | undefined) ?? 'warn');

let portBase = 40000 + (process.pid % 50) * 200;

export async function startServer(overrides: Parameters<typeof loadConfig>[0] = {}): Promise<ReenactServer> {
  // Each server in a test process gets its own RTC port range so parallel files never collide.
  const rtcMinPort = portBase;
  portBase += 100;
  const config = loadConfig({ port: 0, host: '127.0.0.1', workers: 1, rtcMinPort, rtcMaxPort: rtcMinPort + 99, stage: 'passthrough', ...overrides }, {});
  const server = await ReenactServer.create(config);
  // Sessions should meet a loaded pipeline and a filled enrollment cache, as they would on a server
  // that has been up a while: a cold cache (a fresh machine) otherwise enrolls the gallery in the
  // background during the first sessions, on the same two cores.
  await waitFor(() => server.supervisor.warm && server.supervisor.galleryEnrolled, 300_000, 'the reenactor pipeline to warm up and the gallery to be enrolled');
  return server;
}

export function fixture(rel: string): string {
  return new URL(`../fixtures/${rel}`, import.meta.url).pathname;
}

export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * wrtc tears its threads down asynchronously after the last peer connection
 * closes; exiting before that can crash the process. Call after closing peers.
 */
export async function settleWrtc(ms = 500): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}
